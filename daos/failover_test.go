package daos

import (
	"bytes"
	"context"
	"fmt"
	"os/user"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/testsys/cluster"
	"google.golang.org/protobuf/proto"
)

// Fault tests: real multi-process systems whose servers are killed while a
// workload runs. They take a minute or more each, so the -short (race) pass
// leaves them to the full pass.

// workload writes and reads back dkeys of one object from several
// goroutines: each writer owns its dkeys, so a read must return exactly
// the last value acknowledged. Any error an operation returns is recorded:
// failover must be invisible to the application.
type workload struct {
	wlProgress
	o       *Obj
	latest  []map[string][]byte // per writer: dkey -> value last acknowledged
	writers int
}

// wlProgress is a fault-test workload's bookkeeping: its writers, the
// writes acknowledged, and the errors the application saw.
type wlProgress struct {
	stop  atomic.Bool
	wg    sync.WaitGroup
	acked atomic.Int64
	mu    sync.Mutex // errs, and the workload's models
	errs  []error
}

// wlValue is writer w's value number n of dkey: 4 KiB whose bytes name it.
func wlValue(w, n int, dkey string) []byte {
	tag := []byte(fmt.Sprintf("%s/%d/%d;", dkey, w, n))
	return bytes.Repeat(tag, 4096/len(tag)+1)[:4096]
}

func startWorkload(ctx context.Context, o *Obj, writers int) *workload {
	wl := &workload{o: o, writers: writers}
	for w := range writers {
		wl.latest = append(wl.latest, map[string][]byte{})
		wl.wg.Go(func() {
			iod := []IOD{{Akey: []byte("v"), Type: Single, Size: 4096}}
			got := make([]byte, 4096)
			for n := 0; !wl.stop.Load(); n++ {
				dkey := fmt.Sprintf("w%d-k%d", w, n%64)
				val := wlValue(w, n, dkey)
				if _, err := o.Update(ctx, []byte(dkey), iod, [][]byte{val}); err != nil {
					wl.fail(fmt.Errorf("writer %d update %s #%d: %w", w, dkey, n, err))
					return
				}
				wl.mu.Lock()
				wl.latest[w][dkey] = val
				wl.mu.Unlock()
				wl.acked.Add(1)
				// read back one written earlier (or this one)
				old := fmt.Sprintf("w%d-k%d", w, (n*7)%64)
				wl.mu.Lock()
				want := wl.latest[w][old]
				wl.mu.Unlock()
				if want == nil {
					continue
				}
				if _, err := o.Fetch(ctx, []byte(old), iod, [][]byte{got}); err != nil {
					wl.fail(fmt.Errorf("writer %d fetch %s: %w", w, old, err))
					return
				}
				if !bytes.Equal(got, want) {
					wl.fail(fmt.Errorf("writer %d fetch %s: got %.40q, want %.40q", w, old, got, want))
					return
				}
			}
		})
	}
	return wl
}

func (wl *wlProgress) fail(err error) {
	wl.mu.Lock()
	wl.errs = append(wl.errs, err)
	wl.mu.Unlock()
}

// waitAcked waits (bounded) until n more writes are acknowledged.
func (wl *wlProgress) waitAcked(t *testing.T, n int64) {
	t.Helper()
	target := wl.acked.Load() + n
	deadline := time.Now().Add(3 * time.Minute)
	for wl.acked.Load() < target {
		wl.mu.Lock()
		errs := wl.errs
		wl.mu.Unlock()
		if len(errs) > 0 {
			t.Fatalf("workload failed: %v", errs)
		}
		if time.Now().After(deadline) {
			t.Fatalf("workload stalled: %d acknowledged writes, waiting for %d", wl.acked.Load(), target)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// finish stops the workload and checks that it saw no error, then that
// every dkey holds its last acknowledged value.
func (wl *workload) finish(t *testing.T, ctx context.Context) {
	t.Helper()
	wl.stop.Store(true)
	wl.wg.Wait()
	if len(wl.errs) > 0 {
		t.Fatalf("the application saw errors: %v", wl.errs)
	}
	iod := []IOD{{Akey: []byte("v"), Type: Single, Size: 4096}}
	got := make([]byte, 4096)
	n := 0
	for w := range wl.writers {
		for dkey, want := range wl.latest[w] {
			if _, err := wl.o.Fetch(ctx, []byte(dkey), iod, [][]byte{got}); err != nil {
				t.Fatalf("verify %s: %v", dkey, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("verify %s: got %.40q, want %.40q", dkey, got, want)
			}
			n++
		}
	}
	t.Logf("%d acknowledged writes; %d dkeys verified", wl.acked.Load(), n)
}

// waitExcluded waits (bounded) until pool's map has rank's targets out.
func waitExcluded(t *testing.T, sys *cluster.System, rank uint32) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := sys.Admin.PoolQuery(context.Background(), &ctlpb.PoolReq{Id: sys.Pool})
		if err == nil && resp.Pool != nil {
			for _, d := range resp.Pool.DisabledTargets {
				if bytes.HasPrefix([]byte(d), fmt.Appendf(nil, "%d:", rank)) {
					t.Logf("rank %d excluded: pool map version %d, disabled %v", rank, resp.Pool.MapVersion, resp.Pool.DisabledTargets)
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("rank %d not excluded from the pool map in time (last: %v %v)", rank, resp.GetPool().GetDisabledTargets(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rankOf is the rank of server i (its engine's), from the system map.
func rankOf(t *testing.T, sys *cluster.System, i int) uint32 {
	t.Helper()
	resp, err := sys.Admin.SystemQuery(context.Background(), &ctlpb.SystemQueryReq{})
	if err != nil {
		t.Fatal(err)
	}
	want := sys.AccessPoints[i]
	for _, m := range resp.Members {
		if m.ControlAddr == want {
			return m.Rank
		}
	}
	t.Fatalf("server %d (%s) has no rank in %v", i, want, resp.Members)
	return 0
}

// sysCont connects a client to pool through sys's agent, and creates and
// opens a container label with props in it.
func sysCont(t *testing.T, sys *cluster.System, pool, label string, props map[string]string) *Cont {
	t.Helper()
	ctx := context.Background()
	c, err := Init(ctx, Options{AgentSocket: sys.AgentSocket, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Fini() })
	p, err := c.PoolConnect(ctx, pool, RW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ContCreate(ctx, ContCreateOptions{Label: label, Props: props}); err != nil {
		t.Fatal(err)
	}
	h, err := p.ContOpen(ctx, label, RW)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// testPool creates pool label on ranks (all joined: none) with props,
// owned by the user running the test.
func testPool(t *testing.T, sys *cluster.System, label string, ranks []uint32, props map[string]string) {
	t.Helper()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	cr, err := ctlclient.Retry(context.Background(), func(ctx context.Context) (*ctlpb.PoolCreateResp, error) {
		return sys.Admin.PoolCreate(ctx, &ctlpb.PoolCreateReq{Label: label, ScmSize: 256 << 20, NvmeSize: 1 << 30, Ranks: ranks,
			User: me.Username, Group: me.Username, Props: props})
	})
	if err := ctlclient.Err(err, cr.GetError(), "pool create "+label); err != nil {
		t.Fatal(err)
	}
}

// newObj opens a new object of class in h.
func newObj(t *testing.T, h *Cont, class placement.ClassID) *Obj {
	t.Helper()
	oid, err := h.GenerateOID(context.Background(), class, placement.OTMultiHashed)
	if err != nil {
		t.Fatal(err)
	}
	o, err := h.Obj(oid)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestFailoverRP3: kill -9 one server, then a second, during a sustained
// write+read workload on an RP_3GX object: the workload sees no error (the
// client places its requests again once SWIM has excluded the dead rank),
// and every acknowledged write reads back.
func TestFailoverRP3(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process fault test (minutes): run in the full pass")
	}
	t.Setenv("GODAOS_SWIM_FAST", "1") // the servers' SWIM detects deaths in seconds
	sys := cluster.Start(t, cluster.Options{Servers: 5, Targets: 2})
	ctx := context.Background()
	// rd_fac 2: the container survives two failed servers (rd_fac 0 would
	// be UNCLEAN after the first)
	o := newObj(t, sysCont(t, sys, sys.Pool, "rp3", map[string]string{"rd_fac": "2"}), placement.RP3GX)
	wl := startWorkload(ctx, o, 4)
	defer wl.stop.Store(true)
	wl.waitAcked(t, 200)

	// Servers 0-2 run the management service; 3 and 4 only engines.
	for _, i := range []int{4, 3} {
		rank := rankOf(t, sys, i)
		t.Logf("kill -9 server %d (rank %d) after %d writes", i, rank, wl.acked.Load())
		if err := sys.KillServer(i); err != nil {
			t.Fatal(err)
		}
		waitExcluded(t, sys, rank)
		wl.waitAcked(t, 300)
	}
	wl.finish(t, ctx)

	// Rebuild: the DOWN targets become DOWNOUT once the surviving servers
	// have copied every shard they held to its new target; then every
	// replica, rebuilt ones included, holds every dkey's last value.
	waitRebuilt(t, sys, "DOWNOUT")
	wl.verifyReplicas(t, ctx)

	// The killed servers come back and are reintegrated: their targets are
	// emptied, rebuilt, and UPIN again, with the same data.
	for _, i := range []int{4, 3} {
		if err := sys.RestartServer(i); err != nil {
			log := sys.ServerLog(i)
			t.Fatalf("%v\n%s", err, log[max(0, len(log)-3000):])
		}
		rank := rankOf(t, sys, i)
		resp, err := sys.Admin.PoolTargets(ctx, &ctlpb.PoolTargetsReq{Id: sys.Pool, Op: "reintegrate", Rank: rank})
		if err == nil && resp.Error != nil {
			err = fmt.Errorf("%s", resp.Error.Msg)
		}
		if err != nil {
			t.Fatalf("reintegrate rank %d: %v", rank, err)
		}
	}
	waitRebuilt(t, sys, "")
	wl.verifyReplicas(t, ctx)
}

// waitRebuilt waits (bounded) until the pool's rebuild is done and every
// target not UPIN is in state want ("" : every target UPIN).
func waitRebuilt(t *testing.T, sys *cluster.System, want string) *ctlpb.Pool {
	t.Helper()
	return waitPoolRebuilt(t, sys, sys.Pool, want)
}

// waitPoolRebuilt is waitRebuilt for pool, returning its query.
func waitPoolRebuilt(t *testing.T, sys *cluster.System, pool, want string) *ctlpb.Pool {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := sys.Admin.PoolQuery(context.Background(), &ctlpb.PoolReq{Id: pool})
		p := resp.GetPool()
		ok := err == nil && p != nil && p.Rebuild.GetState() != "busy"
		for _, d := range p.GetDisabledTargets() {
			if want == "" || !strings.HasSuffix(d, " "+want) {
				ok = false
			}
		}
		if ok {
			t.Logf("rebuilt: map version %d, disabled %v, rebuild %v", p.MapVersion, p.DisabledTargets, p.Rebuild)
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool not rebuilt in time: %v (%v)", p, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// verifyReplicas reads every dkey the workload wrote from every shard of
// its group under the current map, each directly.
func (wl *workload) verifyReplicas(t *testing.T, ctx context.Context) {
	t.Helper()
	o := wl.o
	if err := o.cont.Pool.refreshMap(ctx, o.cont.Pool.CurrentMapVersion()); err != nil {
		t.Fatal(err)
	}
	l, err := o.currentLayout()
	if err != nil {
		t.Fatal(err)
	}
	iod := []IOD{{Akey: []byte("v"), Type: Single, Size: 4096}}
	got := make([]byte, 4096)
	n := 0
	for w := range wl.writers {
		for dkey, want := range wl.latest[w] {
			for _, s := range l.Group(o.dkeyGroup([]byte(dkey))) {
				m, _ := o.ioReq([]byte(dkey), iod, 0)
				clear(got)
				if _, err := o.rpc(ctx, dest{s, l.Version}, enginepb.OpObjFetch, m, nil, [][]byte{got}); err != nil {
					t.Fatalf("dkey %s on rank %d target %d: %v", dkey, s.Rank, s.Target, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("dkey %s on rank %d target %d (rebuilding %v): got %.40q, want %.40q", dkey, s.Rank, s.Target, s.Rebuilding, got, want)
				}
				n++
			}
		}
	}
	t.Logf("map version %d: %d replicas of %d dkeys verified", l.Version, n, len(wl.latest)*64)
}

// TestRdFacExceeded: a container with rd_fac 1 holding RP_2 objects loses
// two fault domains. Its I/O and new opens then fail cleanly with DER_RF
// (UNCLEAN) instead of returning what a lost shard no longer holds, until
// its owner accepts the loss (status:healthy); a class weaker than rd_fac
// is refused.
func TestRdFacExceeded(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process fault test (minutes): run in the full pass")
	}
	t.Setenv("GODAOS_SWIM_FAST", "1")
	sys := cluster.Start(t, cluster.Options{Servers: 5, Targets: 2})
	ctx := context.Background()
	h := sysCont(t, sys, sys.Pool, "rf1", map[string]string{"rd_fac": "1"})
	p := h.Pool
	if _, err := h.Obj(placement.MakeOID(9, 0, placement.S1, placement.OTMultiHashed)); !daoserr.Is(err, daoserr.Inval) {
		t.Fatalf("S1 object in an rd_fac 1 container: %v", err)
	}
	oid, err := h.GenerateOID(ctx, placement.RP2GX, placement.OTMultiHashed)
	if err != nil {
		t.Fatal(err)
	}
	o, err := h.Obj(oid)
	if err != nil {
		t.Fatal(err)
	}
	iod := []IOD{{Akey: []byte("v"), Type: Single, Size: 8}}
	for i := range 64 {
		if _, err := o.Update(ctx, fmt.Appendf(nil, "k%d", i), iod, [][]byte{fmt.Appendf(nil, "val-%04d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// One domain lost: within rd_fac, everything reads.
	r3 := rankOf(t, sys, 3)
	if err := sys.KillServer(3); err != nil {
		t.Fatal(err)
	}
	waitExcluded(t, sys, r3)
	got := make([]byte, 8)
	for i := range 64 {
		if _, err := o.Fetch(ctx, fmt.Appendf(nil, "k%d", i), iod, [][]byte{got}); err != nil || string(got) != fmt.Sprintf("val-%04d", i) {
			t.Fatalf("after one failure: k%d = %q, %v", i, got, err)
		}
	}
	// A second: more than rd_fac 1.
	r4 := rankOf(t, sys, 4)
	if err := sys.KillServer(4); err != nil {
		t.Fatal(err)
	}
	waitExcluded(t, sys, r4)
	_, err = o.Fetch(ctx, []byte("k1"), iod, [][]byte{got})
	if !daoserr.Is(err, daoserr.RF) || !strings.Contains(err.Error(), "UNCLEAN") {
		t.Fatalf("I/O on an UNCLEAN container: %v", err)
	}
	if _, err := o.Update(ctx, []byte("k1"), iod, [][]byte{[]byte("xxxxxxxx")}); !daoserr.Is(err, daoserr.RF) {
		t.Fatalf("update on an UNCLEAN container: %v", err)
	}
	if _, err := p.ContOpen(ctx, "rf1", RW); !daoserr.Is(err, daoserr.RF) {
		t.Fatalf("open of an UNCLEAN container: %v", err)
	}
	props, err := p.ContProps(ctx, "rf1", nil)
	if err != nil || props["status"] != "UNCLEAN" {
		t.Fatalf("status %q (%v)", props["status"], err)
	}
	// The owner accepts the loss: the container opens and what survived reads.
	if _, err := p.ContProps(ctx, "rf1", map[string]string{"status": "healthy"}); err != nil {
		t.Fatal(err)
	}
	h2, err := p.ContOpen(ctx, "rf1", RW)
	if err != nil {
		t.Fatal(err)
	}
	o2, err := h2.Obj(oid)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for i := range 64 {
		_, err := o2.Fetch(ctx, fmt.Appendf(nil, "k%d", i), iod, [][]byte{got})
		switch {
		case daoserr.Is(err, daoserr.DataLoss):
			lost++ // both replicas were on the lost servers, and no rebuild copied them
		case err != nil:
			t.Fatalf("k%d after status:healthy: %v", i, err)
		case string(got) != fmt.Sprintf("val-%04d", i) && string(got) != "\x00\x00\x00\x00\x00\x00\x00\x00":
			t.Fatalf("k%d after status:healthy: %q", i, got)
		}
	}
	t.Logf("after accepting the loss: %d of 64 dkeys report DER_DATA_LOSS", lost)
}

// TestDrainExtend: a rank is drained, then the pool is extended by a new
// rank, while a workload runs on an RP_3GX object and an SX object holds
// data: the workload sees no error, everything verifies on every replica,
// and the extension copies exactly the shards placement moved to the new
// rank, no more.
func TestDrainExtend(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process fault test (minutes): run in the full pass")
	}
	t.Setenv("GODAOS_SWIM_FAST", "1")
	sys := cluster.Start(t, cluster.Options{Servers: 5, Targets: 2, NoPool: true})
	ctx := context.Background()
	spare := rankOf(t, sys, 4)
	var ranks []uint32
	for i := range 4 {
		ranks = append(ranks, rankOf(t, sys, i))
	}
	testPool(t, sys, "ext", ranks, nil)
	h := sysCont(t, sys, "ext", "c", map[string]string{"rd_fac": "0"})
	p := h.Pool
	rpOID, err := h.GenerateOID(ctx, placement.RP3GX, placement.OTMultiHashed)
	if err != nil {
		t.Fatal(err)
	}
	sxOID, err := h.GenerateOID(ctx, placement.SX, placement.OTMultiHashed)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := h.Obj(rpOID)
	if err != nil {
		t.Fatal(err)
	}
	sx, err := h.Obj(sxOID)
	if err != nil {
		t.Fatal(err)
	}
	sxIOD := []IOD{{Akey: []byte("a"), Type: Single, Size: 16}}
	sxVal := func(i int) []byte { return fmt.Appendf(nil, "sx-value-%07d", i) }
	for i := range 200 {
		if _, err := sx.Update(ctx, fmt.Appendf(nil, "d%d", i), sxIOD, [][]byte{sxVal(i)}); err != nil {
			t.Fatal(err)
		}
	}
	checkSX := func(when string) {
		t.Helper()
		got := make([]byte, 16)
		for i := range 200 {
			if _, err := sx.Fetch(ctx, fmt.Appendf(nil, "d%d", i), sxIOD, [][]byte{got}); err != nil || !bytes.Equal(got, sxVal(i)) {
				l, _ := sx.currentLayout()
				d, derr := sx.readShard(l, fmt.Appendf(nil, "d%d", i))
				for j := range 5 {
					for _, line := range strings.Split(sys.ServerLog(j), "\n") {
						if strings.Contains(line, "reclaim") || strings.Contains(line, "rebuild") {
							t.Logf("server %d: %s", j, line)
						}
					}
				}
				t.Fatalf("%s: SX dkey d%d = %q, %v (map version %d, group %+v, read from %+v %v)", when, i, got, err, l.Version,
					l.Group(sx.dkeyGroup(fmt.Appendf(nil, "d%d", i))), d, derr)
			}
		}
	}
	wl := startWorkload(ctx, rp, 4)
	defer wl.stop.Store(true)
	wl.waitAcked(t, 100)

	// Drain: the rank's targets are emptied onto the others while the
	// workload runs; SX shards leaving it are read from it until then.
	drained := ranks[1]
	resp, err := sys.Admin.PoolTargets(ctx, &ctlpb.PoolTargetsReq{Id: "ext", Op: "drain", Rank: drained})
	if err = ctlclient.Err(err, resp.GetError(), "drain"); err != nil {
		t.Fatal(err)
	}
	checkSX("during the drain")
	waitPoolRebuilt(t, sys, "ext", "DOWNOUT")
	wl.waitAcked(t, 100)
	checkSX("after the drain")

	// Extend by the spare rank: placement moves some shards there.
	if err := p.refreshMap(ctx, p.CurrentMapVersion()); err != nil {
		t.Fatal(err)
	}
	before, err := p.poolMap()
	if err != nil {
		t.Fatal(err)
	}
	er, err := sys.Admin.PoolExtend(ctx, &ctlpb.PoolExtendReq{Id: "ext", Ranks: []uint32{spare}})
	if err = ctlclient.Err(err, er.GetError(), "extend"); err != nil {
		t.Fatal(err)
	}
	checkSX("during the extension")
	wl.waitAcked(t, 100)
	wl.stop.Store(true) // the copies counted below are of a fixed set of dkeys
	wl.wg.Wait()
	final := waitPoolRebuilt(t, sys, "ext", "DOWNOUT")
	checkSX("after the extension")
	if err := p.refreshMap(ctx, p.CurrentMapVersion()); err != nil {
		t.Fatal(err)
	}
	after, err := p.poolMap()
	if err != nil {
		t.Fatal(err)
	}
	// Every (dkey, shard) placement that moved is at most one akey copied
	// by the extension's rebuild, and nothing else is: the SX object's
	// (static data) all are; the workload's may have been written to their
	// new place directly, after the scan passed them.
	count := func(oid placement.OID, dkeys []string) (moved, total int) {
		a, err := before.Layout(oid)
		if err != nil {
			t.Fatal(err)
		}
		b, err := after.Layout(oid)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dkeys {
			g := placement.DkeyGroupOf(oid, []byte(d))
			for i, s := range b.Group(g) {
				total++
				if was := a.Group(g)[i]; s.Rank != was.Rank || s.Target != was.Target { // ids shift as ranks join
					moved++ // mostly to the new rank (see placement's TestExtend for the fraction)
				}
			}
		}
		return moved, total
	}
	var sxKeys, rpKeys []string
	for i := range 200 {
		sxKeys = append(sxKeys, fmt.Sprintf("d%d", i))
	}
	for w := range wl.writers {
		for d := range wl.latest[w] {
			rpKeys = append(rpKeys, d)
		}
	}
	sxMoved, sxTotal := count(sxOID, sxKeys)
	rpMoved, rpTotal := count(rpOID, rpKeys)
	moved, total, copied := sxMoved+rpMoved, sxTotal+rpTotal, int(final.Rebuild.GetRecords())
	t.Logf("extension moved %d of %d (dkey, shard) placements (%.1f%%; one new rank of %d: %.1f%%); rebuild copied %d records (SX: %d moved)",
		moved, total, 100*float64(moved)/float64(total), len(ranks)+1, 100/float64(len(ranks)+1), copied, sxMoved)
	if sxMoved == 0 || 2*moved > total || copied < sxMoved || copied > moved {
		t.Fatalf("the extension's rebuild copied %d records; placement moved %d (%d of them static SX data)", copied, moved, sxMoved)
	}
	wl.finish(t, ctx)
	wl.verifyReplicas(t, ctx)

	// Reclaim: the targets SX shards moved away from delete their copies.
	bl, err := before.Layout(sxOID)
	if err != nil {
		t.Fatal(err)
	}
	al, err := after.Layout(sxOID)
	if err != nil {
		t.Fatal(err)
	}
	stale := func() (n int) {
		for i := range 200 {
			dkey := fmt.Appendf(nil, "d%d", i)
			g := placement.DkeyGroupOf(sxOID, dkey)
			old, now := bl.Group(g)[0], al.Group(g)[0]
			if old.Rank == now.Rank && old.Target == now.Target {
				continue
			}
			m, _ := sx.ioReq(dkey, sxIOD, 0)
			rep, err := sx.rpc(ctx, dest{old, al.Version}, enginepb.OpObjFetch, m, nil, [][]byte{make([]byte, 16)})
			var r enginepb.ObjFetchRep
			if err == nil && proto.Unmarshal(rep.Header, &r) == nil && r.Results[0].Size != 0 {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		n := stale()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d SX dkeys still held where they moved away from", n)
		}
	}
}

// TestRebuildDelayStopStart: a pool whose self_heal is
// "exclude;delay_rebuild" excludes a dead server's targets but waits for
// the administrator: dmg pool rebuild stop holds it, start runs it, and the
// targets end DOWNOUT with every replica whole.
func TestRebuildDelayStopStart(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process fault test (minutes): run in the full pass")
	}
	t.Setenv("GODAOS_SWIM_FAST", "1")
	sys := cluster.Start(t, cluster.Options{Servers: 4, Targets: 2, NoPool: true})
	ctx := context.Background()
	testPool(t, sys, "delay", nil, map[string]string{"self_heal": "exclude;delay_rebuild"})
	o := newObj(t, sysCont(t, sys, "delay", "c", map[string]string{"rd_fac": "1"}), placement.RP2GX)
	wl := startWorkload(ctx, o, 2)
	defer wl.stop.Store(true)
	wl.waitAcked(t, 100)
	rank := rankOf(t, sys, 3)
	if err := sys.KillServer(3); err != nil {
		t.Fatal(err)
	}
	query := func() *ctlpb.Pool {
		t.Helper()
		resp, err := sys.Admin.PoolQuery(ctx, &ctlpb.PoolReq{Id: "delay"})
		if err = ctlclient.Err(err, resp.GetError(), "pool query"); err != nil {
			t.Fatal(err)
		}
		return resp.Pool
	}
	waitState := func(want string) *ctlpb.Pool {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			if q := query(); q.Rebuild.GetState() == want {
				return q
			}
			if time.Now().After(deadline) {
				t.Fatalf("rebuild state %q, want %q", query().Rebuild.GetState(), want)
			}
		}
	}
	q := waitState("waiting")
	if !slices.Contains(q.DisabledTargets, fmt.Sprintf("%d:0 DOWN", rank)) {
		t.Fatalf("held back, the dead rank's targets should stay DOWN: %v", q.DisabledTargets)
	}
	wl.waitAcked(t, 100) // degraded, not rebuilt, and still no error
	rebuildCmd := func(stop bool) {
		t.Helper()
		resp, err := sys.Admin.PoolRebuild(ctx, &ctlpb.PoolRebuildReq{Id: "delay", Stop: stop})
		if err = ctlclient.Err(err, resp.GetError(), "pool rebuild"); err != nil {
			t.Fatal(err)
		}
	}
	rebuildCmd(true)
	waitState("stopped")
	time.Sleep(2 * time.Second) // a few of the leader's steps: nothing starts while stopped
	if q := query(); q.Rebuild.GetState() != "stopped" || !slices.Contains(q.DisabledTargets, fmt.Sprintf("%d:0 DOWN", rank)) {
		t.Fatalf("after stop: %v %v", q.Rebuild, q.DisabledTargets)
	}
	rebuildCmd(false)
	waitPoolRebuilt(t, sys, "delay", "DOWNOUT")
	wl.finish(t, ctx)
	wl.verifyReplicas(t, ctx)
}
