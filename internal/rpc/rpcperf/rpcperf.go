// Package rpcperf measures the data-plane RPC transport on loopback, in the spirit
// of DAOS's self_test: round-trip latency and rates for given message sizes and
// numbers of RPCs in flight, each bulk size beside a raw Go TCP stream of the
// same size measured in the same run (interleaved in rounds, so both see the
// machine in the same state).
//
// cmd/self_test is the command-line front end.
package rpcperf

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/godaos/godaos/internal/rpc"
)

// Config says what to measure.
type Config struct {
	Sizes    []int // bulk bytes per request (0: an empty RPC)
	Inflight []int // RPCs in flight at once
	Count    int   // RPCs per (size, inflight) case, split over the rounds (default: 20000 for small, 2000 for 1 MiB+)
	Rounds   int   // RPC and raw blocks alternate this many times (default 4)
}

// Row is one measured case.
type Row struct {
	What     string  `json:"what"` // "rpc" or "raw tcp"
	Size     int     `json:"size"`
	Inflight int     `json:"inflight"`
	Ops      int     `json:"ops"`
	OpsPerS  float64 `json:"ops_per_sec"`
	MiBPerS  float64 `json:"mib_per_sec"`
	P50us    float64 `json:"p50_us,omitempty"`
	P99us    float64 `json:"p99_us,omitempty"`
	VsRaw    float64 `json:"vs_raw,omitempty"` // RPC MiB/s over raw MiB/s of the same size
}

const opSink = 1 // the benchmark's one opcode: takes bulk, replies empty

// Run measures every (size, inflight) case against a server on 127.0.0.1.
func Run(ctx context.Context, cfg Config) ([]Row, error) {
	if cfg.Rounds <= 0 {
		cfg.Rounds = 4
	}
	srv := rpc.NewServer(rpc.ServerOptions{Targets: 1, WorkersPerTarget: 4})
	srv.Handle(opSink, func(ctx context.Context, r *rpc.Request) (rpc.Response, error) { return rpc.Response{}, nil })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	cl, err := rpc.Dial(ctx, l.Addr().String(), rpc.ClientOptions{})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	raw, err := newRawStream()
	if err != nil {
		return nil, err
	}
	defer raw.close()

	var rows []Row
	for _, size := range cfg.Sizes {
		for _, inflight := range cfg.Inflight {
			n := cfg.Count
			if n <= 0 {
				n = 20000
				if size >= 1<<20 {
					n = 2000
				}
			}
			per := max(1, n/cfg.Rounds)
			var rpcLat []time.Duration
			var rpcTime, rawTime time.Duration
			var rawBytes int64
			buf := make([]byte, size)
			for range cfg.Rounds {
				if err := ctx.Err(); err != nil {
					return rows, err
				}
				lat, d, err := rpcBlock(ctx, cl, buf, inflight, per)
				if err != nil {
					return rows, fmt.Errorf("rpc size %d inflight %d: %w", size, inflight, err)
				}
				rpcLat, rpcTime = append(rpcLat, lat...), rpcTime+d
				if size > 0 {
					d, err := raw.stream(buf, per)
					if err != nil {
						return rows, fmt.Errorf("raw tcp size %d: %w", size, err)
					}
					rawTime, rawBytes = rawTime+d, rawBytes+int64(per)*int64(size)
				}
			}
			r := Row{What: "rpc", Size: size, Inflight: inflight, Ops: len(rpcLat)}
			r.OpsPerS = float64(r.Ops) / rpcTime.Seconds()
			r.MiBPerS = r.OpsPerS * float64(size) / (1 << 20)
			slices.Sort(rpcLat)
			r.P50us = float64(rpcLat[len(rpcLat)/2].Nanoseconds()) / 1e3
			r.P99us = float64(rpcLat[len(rpcLat)*99/100].Nanoseconds()) / 1e3
			if size > 0 {
				rawMiB := float64(rawBytes) / (1 << 20) / rawTime.Seconds()
				r.VsRaw = r.MiBPerS / rawMiB
				rows = append(rows, r, Row{What: "raw tcp", Size: size, Inflight: 1, Ops: int(rawBytes) / size,
					OpsPerS: float64(rawBytes) / float64(size) / rawTime.Seconds(), MiBPerS: rawMiB})
				continue
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// rpcBlock sends n RPCs with inflight of them outstanding at a time and returns
// each one's latency and the block's wall time.
func rpcBlock(ctx context.Context, cl *rpc.Client, buf []byte, inflight, n int) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	var bulk [][]byte
	if len(buf) > 0 {
		bulk = [][]byte{buf}
	}
	start := time.Now()
	for range inflight {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				t0 := time.Now()
				if _, err := cl.Call(ctx, rpc.Message{Opcode: opSink, Bulk: bulk}, nil); err != nil {
					firstErr.Store(&err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return nil, 0, *e
	}
	return lat, time.Since(start), nil
}

// RawTCP is the raw baseline alone: how long n size-byte buffers take to
// stream over one loopback connection.
func RawTCP(ctx context.Context, size, n int) (time.Duration, error) {
	if size <= 0 || n <= 0 {
		return 0, fmt.Errorf("raw tcp: size %d, count %d", size, n)
	}
	raw, err := newRawStream()
	if err != nil {
		return 0, err
	}
	defer raw.close()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	d, err := raw.stream(make([]byte, size), n)
	if err != nil {
		return 0, fmt.Errorf("raw tcp size %d: %w", size, err)
	}
	return d, nil
}

// rawStream is the baseline: one loopback TCP connection on which n buffers are
// written back to back and read by the other side into one buffer.
type rawStream struct {
	w, r net.Conn
}

func newRawStream() (*rawStream, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	w, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return nil, err
	}
	r := <-accepted
	if r == nil {
		w.Close()
		return nil, fmt.Errorf("raw tcp: accept failed")
	}
	return &rawStream{w: w, r: r}, nil
}

func (s *rawStream) stream(buf []byte, n int) (time.Duration, error) {
	done := make(chan error, 1)
	go func() {
		rb := make([]byte, len(buf))
		for range n {
			if _, err := io.ReadFull(s.r, rb); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	start := time.Now()
	for range n {
		if _, err := s.w.Write(buf); err != nil {
			return 0, err
		}
	}
	err := <-done
	return time.Since(start), err
}

func (s *rawStream) close() {
	s.w.Close()
	s.r.Close()
}

// WriteText prints rows as a table.
func WriteText(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WHAT\tSIZE\tIN FLIGHT\tOPS\tOPS/S\tMiB/S\tP50\tP99\tVS RAW")
	for _, r := range rows {
		p50, p99, vs := "-", "-", ""
		if r.What == "rpc" {
			p50, p99 = fmt.Sprintf("%.1fµs", r.P50us), fmt.Sprintf("%.1fµs", r.P99us)
		}
		if r.VsRaw > 0 {
			vs = fmt.Sprintf("%.0f%%", 100*r.VsRaw)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%.1f\t%s\t%s\t%s\n", r.What, r.Size, r.Inflight, r.Ops, r.OpsPerS, r.MiBPerS, p50, p99, vs)
	}
	return tw.Flush()
}
