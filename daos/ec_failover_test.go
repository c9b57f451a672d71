package daos

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/godaos/godaos/internal/placement"
)

// ecWorkload: writers each own dkeys of one EC object and write random
// extents of one array akey (full stripes, partial ones, both), reading back
// an earlier dkey after each write. Any error is recorded: failover must be
// invisible.
type ecWorkload struct {
	wlProgress
	o      *Obj
	models []map[string][]byte // per writer: dkey -> the array's bytes
	hist   map[string][][]byte // dkey -> every version (diagnostics)
}

const ecWLSize = 40 << 10 // bytes of each dkey's array (1-byte records)

func startECWorkload(ctx context.Context, o *Obj, writers int) *ecWorkload {
	wl := &ecWorkload{o: o, hist: map[string][][]byte{}}
	for w := range writers {
		wl.models = append(wl.models, map[string][]byte{})
		wl.wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			for n := 0; !wl.stop.Load(); n++ {
				dkey := fmt.Sprintf("w%d-k%d", w, n%16)
				off := rng.IntN(ecWLSize - 1)
				ln := 1 + rng.IntN(ecWLSize-off)
				buf := make([]byte, ln)
				fillRandom(rng, buf)
				iod := []IOD{{Akey: []byte("a"), Type: Array, Size: 1, Recxs: []Recx{{Idx: uint64(off), Nr: uint64(ln)}}}}
				if _, err := o.Update(ctx, []byte(dkey), iod, [][]byte{buf}); err != nil {
					wl.fail(fmt.Errorf("writer %d update %s #%d: %w", w, dkey, n, err))
					return
				}
				wl.mu.Lock()
				m := wl.models[w][dkey]
				if m == nil {
					m = make([]byte, ecWLSize)
					wl.models[w][dkey] = m
				}
				copy(m[off:], buf)
				wl.hist[dkey] = append(wl.hist[dkey], bytes.Clone(m))
				wl.mu.Unlock()
				wl.acked.Add(1)
				old := fmt.Sprintf("w%d-k%d", w, (n*7)%16)
				wl.mu.Lock()
				want := bytes.Clone(wl.models[w][old])
				wl.mu.Unlock()
				if want == nil {
					continue
				}
				if err := wl.check(ctx, old, want, o.Fetch); err != nil {
					wl.fail(fmt.Errorf("writer %d: %w", w, err))
					return
				}
			}
		})
	}
	return wl
}

func (wl *ecWorkload) check(ctx context.Context, dkey string, want []byte, fetch fetcher) error {
	got := make([]byte, ecWLSize)
	iod := []IOD{{Akey: []byte("a"), Type: Array, Size: 1, Recxs: []Recx{{Idx: 0, Nr: ecWLSize}}}}
	if _, err := fetch(ctx, []byte(dkey), iod, [][]byte{got}); err != nil {
		return fmt.Errorf("fetch %s: %w", dkey, err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		l, _ := wl.o.currentLayout()
		grp := l.Group(wl.o.dkeyGroup([]byte(dkey)))
		var lost []int
		for pos, s := range grp {
			if s.Rebuilding {
				lost = append(lost, pos)
			}
		}
		diag := ""
		for _, miss := range [][]int{nil, {0}, {1}, {2}, {3}, {4}, {5}} {
			g := make([]byte, ecWLSize)
			_, err := degraded(wl.o, miss...)(ctx, []byte(dkey), iod, [][]byte{g})
			match := -1
			wl.mu.Lock()
			for v, h := range wl.hist[dkey] {
				if bytes.Equal(h, g) {
					match = v
				}
			}
			nv := len(wl.hist[dkey])
			wl.mu.Unlock()
			diag += fmt.Sprintf(" missing %v: equal %v, version %d of %d (%v);", miss, bytes.Equal(g, want), match, nv, err)
		}
		for _, q := range []int{4, 5} {
			xs, err := wl.o.ecListRecx(ctx, dest{grp[q], l.Version}, 0, []byte(dkey), []byte("a"), 0, ^uint64(0))
			diag += fmt.Sprintf(" LIST%d %v %v;", q, xs, err)
		}
		for pos, s := range grp {
			diag += fmt.Sprintf(" [%d %d:%d remapped %v absent %v]", pos, s.Rank, s.Target, s.Remapped, wl.o.ecAbsent(grp)[pos])
		}
		return fmt.Errorf("fetch %s: differs from byte %d (map version %d, rebuilding positions %v):%s", dkey, i, l.Version, lost, diag)
	}
	return nil
}

// verify checks every dkey with fetch.
func (wl *ecWorkload) verify(t *testing.T, fetch fetcher, what string) {
	t.Helper()
	n := 0
	for _, m := range wl.models {
		for dkey, want := range m {
			if err := wl.check(context.Background(), dkey, want, fetch); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			n++
		}
	}
	t.Logf("%s: %d dkeys verified", what, n)
}

// TestFailoverEC4P2: kill -9 one server, then a second, during a write+read
// workload on an EC_4P2GX object: no error is seen, rebuild completes, and
// every byte reads back healthy (the rebuilt shards serve the data cells),
// and with each set of data or parity positions forced missing (the rebuilt
// parity shards serve reconstruction and replicas).
func TestFailoverEC4P2(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process fault test (minutes): run in the full pass")
	}
	t.Setenv("GODAOS_SWIM_FAST", "1")
	sys, h := ecSystem(t, 6, 2, "rd_fac", "2")
	ctx := context.Background()
	oid, err := h.GenerateOID(ctx, placement.MakeClass(placement.RS4P2, placement.MaxGroups), placement.OTMultiHashed)
	if err != nil {
		t.Fatal(err)
	}
	o, err := h.Obj(oid)
	if err != nil {
		t.Fatal(err)
	}
	wl := startECWorkload(ctx, o, 4)
	defer wl.stop.Store(true)
	wl.waitAcked(t, 100)
	// Servers 0-2 run the management service; 3-5 only engines.
	for _, i := range []int{5, 4} {
		rank := rankOf(t, sys, i)
		t.Logf("kill -9 server %d (rank %d) after %d writes", i, rank, wl.acked.Load())
		if err := sys.KillServer(i); err != nil {
			t.Fatal(err)
		}
		waitExcluded(t, sys, rank)
		wl.waitAcked(t, 150)
	}
	wl.stop.Store(true)
	wl.wg.Wait()
	if len(wl.errs) > 0 {
		t.Fatalf("the application saw errors: %v", wl.errs)
	}
	wl.verify(t, o.Fetch, "after the failures")
	waitRebuilt(t, sys, "DOWNOUT")
	if err := h.Pool.refreshMap(ctx, h.Pool.CurrentMapVersion()); err != nil {
		t.Fatal(err)
	}
	l, err := o.currentLayout()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Shards {
		if s.Rebuilding {
			t.Fatalf("shard %+v still rebuilding after rebuild", s)
		}
	}
	wl.verify(t, degraded(o), "rebuilt, healthy reads (data shards only)")
	for _, miss := range [][]int{{0, 1}, {2, 3}, {0, 4}, {0, 5}, {1, 4}, {3, 5}, {4, 5}} {
		wl.verify(t, degraded(o, miss...), fmt.Sprintf("rebuilt, without positions %v", miss))
	}
}
