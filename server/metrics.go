package server

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
)

// metrics exports the server's state to Prometheus: each engine's request
// counters by target and opcode (read from the engines' own counters at
// scrape time, so the data path pays only its atomic adds), engine states and
// reserved space, and whether this server leads the management service.
type metrics struct{ s *Server }

var (
	labelsOp      = []string{"engine", "rank", "target", "opcode"}
	descRequests  = prometheus.NewDesc("godaos_engine_rpc_requests_total", "Requests served.", labelsOp, nil)
	descErrors    = prometheus.NewDesc("godaos_engine_rpc_errors_total", "Requests answered with an error.", labelsOp, nil)
	descService   = prometheus.NewDesc("godaos_engine_rpc_service_seconds_total", "Time spent in handlers.", labelsOp, nil)
	descBytesIn   = prometheus.NewDesc("godaos_engine_rpc_bulk_received_bytes_total", "Request bulk received.", labelsOp, nil)
	descBytesOut  = prometheus.NewDesc("godaos_engine_rpc_bulk_sent_bytes_total", "Reply bulk sent.", labelsOp, nil)
	descState     = prometheus.NewDesc("godaos_engine_running", "1 if the engine is running, 0 if stopped or unformatted.", []string{"engine", "rank", "state"}, nil)
	descPools     = prometheus.NewDesc("godaos_engine_pools", "Pools with targets on the engine.", []string{"engine", "rank"}, nil)
	descReserved  = prometheus.NewDesc("godaos_engine_reserved_bytes", "Space the pools' targets hold on the engine.", []string{"engine", "rank", "tier"}, nil)
	descMSLeader  = prometheus.NewDesc("godaos_ms_leader", "1 if this server leads the management service.", nil, nil)
	descMSReplica = prometheus.NewDesc("godaos_ms_replica", "1 if this server is a management service replica.", nil, nil)
)

func (m metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descErrors, descService, descBytesIn, descBytesOut, descState, descPools, descReserved, descMSLeader, descMSReplica} {
		ch <- d
	}
}

func (m metrics) Collect(ch chan<- prometheus.Metric) {
	for _, re := range m.s.engines {
		re.mu.Lock()
		eng, state, rank := re.eng, re.state, strconv.FormatInt(re.rank, 10)
		re.mu.Unlock()
		idx := strconv.Itoa(re.idx)
		running := 0.0
		if eng != nil {
			running = 1
		}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, running, idx, rank, state)
		if eng == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descPools, prometheus.GaugeValue, float64(len(eng.Pools())), idx, rank)
		scm, nvme := eng.Reserved()
		ch <- prometheus.MustNewConstMetric(descReserved, prometheus.GaugeValue, float64(scm), idx, rank, "scm")
		ch <- prometheus.MustNewConstMetric(descReserved, prometheus.GaugeValue, float64(nvme), idx, rank, "nvme")
		eng.RPCStats(func(target int, op uint16, st *rpc.OpStats) {
			l := []string{idx, rank, strconv.Itoa(target), enginepb.OpName(op)}
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(st.Requests.Load()), l...)
			ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(st.Errors.Load()), l...)
			ch <- prometheus.MustNewConstMetric(descService, prometheus.CounterValue, float64(st.Nanos.Load())/1e9, l...)
			ch <- prometheus.MustNewConstMetric(descBytesIn, prometheus.CounterValue, float64(st.BytesIn.Load()), l...)
			ch <- prometheus.MustNewConstMetric(descBytesOut, prometheus.CounterValue, float64(st.BytesOut.Load()), l...)
		})
	}
	leader, replica := 0.0, 0.0
	if ms := m.s.ms; ms != nil {
		replica = 1
		if ms.IsLeader() {
			leader = 1
		}
	}
	ch <- prometheus.MustNewConstMetric(descMSLeader, prometheus.GaugeValue, leader)
	ch <- prometheus.MustNewConstMetric(descMSReplica, prometheus.GaugeValue, replica)
}
