package rpc

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCall measures calls carrying bulk (as an update does) on one
// connection to an in-process server whose handler takes the bulk and
// replies empty, with a number of calls in flight. Beside the wall time it
// reports the CPU time of the process per call (cpu-ns/op): on a machine
// whose cores are shared, that is what a call costs.
//
//	go test -run '^$' -bench Call ./internal/rpc
func BenchmarkCall(b *testing.B) {
	s := NewServer(ServerOptions{Targets: 4, WorkersPerTarget: 2})
	s.Handle(opEcho, func(ctx context.Context, r *Request) (Response, error) { return Response{}, nil })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(l)
	defer s.Shutdown(context.Background())
	c, err := Dial(context.Background(), l.Addr().String(), ClientOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, size := range []int{0, 4 << 10, 1 << 20} {
		for _, inflight := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%d/%d", size, inflight), func(b *testing.B) {
				buf := make([]byte, size)
				var bulk [][]byte
				if size > 0 {
					bulk = [][]byte{buf}
				}
				b.SetBytes(int64(size))
				var next atomic.Int64
				var wg sync.WaitGroup
				cpu0 := cpuTime()
				b.ResetTimer()
				for g := range inflight {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							if _, err := c.Call(context.Background(), Message{Opcode: opEcho, Target: uint32(g % 4), Bulk: bulk}, nil); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
