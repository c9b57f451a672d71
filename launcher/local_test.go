package launcher

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/testsys"
)

// The integration test: three real daos_server processes; pools are
// created, the management service leader is killed with SIGKILL mid-way, the
// pool metadata survives re-election and the system keeps working; then
// everything stops and starts again and the pools are still there.
func TestThreeProcessesLeaderKillAndRestart(t *testing.T) {
	o := LocalOptions{N: 3, Targets: 2, Dir: t.TempDir(), BasePort: testsys.FreeBase(t, 3), Bin: daosServer(t)}
	ctx := context.Background()
	s, err := StartLocal(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)

	c := testsys.CtlClient(t, s.HostList[0])
	cr, err := c.PoolCreate(ctx, &ctlpb.PoolCreateReq{Label: "tank", TotalSize: 1 << 30})
	if err != nil || cr.Error != nil {
		t.Fatalf("pool create: %v %v", err, cr.GetError())
	}
	sq, err := c.SystemQuery(ctx, &ctlpb.SystemQueryReq{})
	if err != nil || len(sq.Members) != 3 {
		t.Fatalf("system query: %v %v", err, sq)
	}
	lq, err := c.LeaderQuery(ctx, &ctlpb.LeaderQueryReq{})
	if err != nil || lq.Leader == "" {
		t.Fatalf("leader query: %v %v", err, lq)
	}
	dead := slices.Index(s.HostList, lq.Leader)
	if dead < 0 {
		t.Fatalf("leader %s is none of %v", lq.Leader, s.HostList)
	}
	var live []uint32
	for _, m := range sq.Members {
		if m.ControlAddr != lq.Leader {
			live = append(live, m.Rank)
		}
	}
	s.Kill(dead, syscall.SIGKILL)
	s.Wait(dead)

	other := testsys.CtlClient(t, s.HostList[(dead+1)%3])
	deadline := time.Now().Add(60 * time.Second)
	for {
		l, err := other.PoolList(ctx, &ctlpb.PoolListReq{})
		if err == nil && l.Error == nil {
			if len(l.Pools) != 1 || l.Pools[0].Uuid != cr.Pool.Uuid {
				t.Fatalf("pools after killing the MS leader: %v", l.Pools)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no management service 60 s after killing its leader: %v %v", err, l.GetError())
		}
		time.Sleep(100 * time.Millisecond)
	}
	ar, err := other.PoolCreate(ctx, &ctlpb.PoolCreateReq{Label: "after", TotalSize: 1 << 30, Ranks: live})
	if err != nil || ar.Error != nil {
		t.Fatalf("pool create after re-election: %v %v", err, ctlclient.ToError(ar.GetError()))
	}

	// stop everything, start again: ranks and pools come back
	s.Stop()
	s2, err := StartLocal(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s2.Stop)
	c = testsys.CtlClient(t, s2.HostList[2])
	l, err := c.PoolList(ctx, &ctlpb.PoolListReq{})
	if err != nil || l.Error != nil || len(l.Pools) != 2 {
		t.Fatalf("pools after restart: %v %v", err, l)
	}
	sq2, err := c.SystemQuery(ctx, &ctlpb.SystemQueryReq{})
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]uint32{}
	for _, m := range sq.Members {
		before[m.Uuid] = m.Rank
	}
	for _, m := range sq2.Members {
		if r, ok := before[m.Uuid]; !ok || r != m.Rank || m.Incarnation < 2 {
			t.Errorf("after restart %+v: rank before %d (known %v)", m, r, ok)
		}
	}
	q, err := c.PoolQuery(ctx, &ctlpb.PoolReq{Id: "tank"})
	if err != nil || q.Error != nil || q.Pool.Targets != 6 {
		t.Errorf("query tank after restart: %v %v", err, q)
	}
}

func TestStartLocalRefusesRunningSystem(t *testing.T) {
	o := LocalOptions{N: 1, Targets: 1, Dir: t.TempDir(), BasePort: testsys.FreeBase(t, 1), Bin: daosServer(t)}
	s, err := StartLocal(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	if _, err := StartLocal(context.Background(), o); err == nil {
		t.Fatal("a second system started in the same directory")
	}
	if err := StopDir(o.Dir); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadState(o.Dir); err == nil {
		t.Error("state file left after stop")
	}
}
