package rpc

import (
	"sync/atomic"
	"time"
)

// OpStats count one opcode's requests on one target. Each target has its own
// counters, so targets never write to a shared cache line.
type OpStats struct {
	Requests atomic.Uint64
	Errors   atomic.Uint64
	Nanos    atomic.Uint64 // time spent in the handler
	BytesIn  atomic.Uint64 // request bulk
	BytesOut atomic.Uint64 // reply bulk
}

// statOpcodes is how many opcodes are counted (0 to statOpcodes-1).
const statOpcodes = 64

type targetStats struct {
	ops [statOpcodes]OpStats
	_   [64]byte // keeps the next target's counters off this one's last cache line
}

func (s *Server) record(c *serverCall, start time.Time, resp *Response, err error) {
	op := c.req.Opcode
	if op >= statOpcodes || int(c.req.Target) >= len(s.stats) {
		return
	}
	st := &s.stats[c.req.Target].ops[op]
	st.Requests.Add(1)
	if err != nil {
		st.Errors.Add(1)
	}
	st.Nanos.Add(uint64(time.Since(start)))
	st.BytesIn.Add(uint64(len(c.req.Bulk)))
	var out uint64
	for _, b := range resp.Bulk {
		out += uint64(len(b))
	}
	st.BytesOut.Add(out)
}

// Stats calls fn with the counters of every opcode that has served requests,
// by target.
func (s *Server) Stats(fn func(target int, opcode uint16, st *OpStats)) {
	for t := range s.stats {
		for op := range s.stats[t].ops {
			st := &s.stats[t].ops[op]
			if st.Requests.Load() > 0 {
				fn(t, uint16(op), st)
			}
		}
	}
}
