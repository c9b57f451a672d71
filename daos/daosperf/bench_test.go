package daosperf

import (
	"context"
	"fmt"
	"os/user"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/testsys/inproc"
)

// BenchmarkObjIO runs updates and fetches through the client API and an
// in-process engine (its storage in $TMPDIR), so that one CPU profile shows
// the client and the server side of the data path together (cpu-ns/op is the
// process's CPU time per operation, both sides):
//
//	go test -run '^$' -bench ObjIO -cpuprofile cpu.out ./daos/daosperf
//
// Keys cycle over a fixed set, so fetches find data and the pool does not
// fill however large b.N grows (overwritten values are versions VOS keeps, so
// each case writes at most keys × size bytes more than one version).
func BenchmarkObjIO(b *testing.B) {
	s := inproc.Start(b, false)
	u, _ := user.Current()
	r, err := ctlclient.Retry(context.Background(), func(ctx context.Context) (*ctlpb.PoolCreateResp, error) {
		return s.Admin.PoolCreate(ctx, &ctlpb.PoolCreateReq{Label: "bench", ScmSize: 512 << 20, NvmeSize: 8 << 30, User: u.Username, Group: u.Username})
	})
	if err := ctlclient.Err(err, r.GetError(), "pool create"); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	cl, err := daos.Init(ctx, daos.Options{AgentSocket: s.Agent.Socket(), Logger: inproc.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Fini()
	pool, err := cl.PoolConnect(ctx, "bench", daos.RW)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pool.ContCreate(ctx, daos.ContCreateOptions{Label: "bench"}); err != nil {
		b.Fatal(err)
	}
	cont, err := pool.ContOpen(ctx, "bench", daos.RW)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		size, inflight, keys int
	}{{1 << 20, 8, 64}, {4 << 10, 64, 4096}} {
		class, _ := daos.ParseClass("SX")
		oid, err := cont.GenerateOID(ctx, class, daos.OTMultiHashed)
		if err != nil {
			b.Fatal(err)
		}
		obj, err := cont.Obj(oid)
		if err != nil {
			b.Fatal(err)
		}
		for _, phase := range []string{"update", "fetch"} {
			b.Run(fmt.Sprintf("%s/%d/%d", phase, tc.size, tc.inflight), func(b *testing.B) {
				if phase == "fetch" { // every key written once
					if err := benchIO(ctx, obj, "update", tc.size, tc.inflight, tc.keys, tc.keys); err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(int64(tc.size))
				cpu0 := sampleCPU(nil)
				b.ResetTimer()
				if err := benchIO(ctx, obj, phase, tc.size, tc.inflight, tc.keys, b.N); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				b.ReportMetric(float64(sampleCPU(nil).self-cpu0.self)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// benchIO runs n operations, inflight at a time, over keys keys.
func benchIO(ctx context.Context, obj *daos.Obj, phase string, size, inflight, keys, n int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, inflight)
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, size)
			iod := []daos.IOD{{Akey: []byte("v"), Type: daos.Single, Size: uint64(size)}}
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				dkey := []byte(fmt.Sprintf("k%d", i%keys))
				var err error
				if phase == "update" {
					_, err = obj.Update(ctx, dkey, iod, [][]byte{buf})
				} else {
					_, err = obj.Fetch(ctx, dkey, iod, [][]byte{buf})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
