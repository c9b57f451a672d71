package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/server/config"
)

// systemConfigs makes n single-engine server configurations of one system whose
// first `replicas` servers run the management service.
func systemConfigs(t *testing.T, n, replicas int) []*config.Server {
	t.Helper()
	base := t.TempDir()
	ports := make([]int, n)
	var reps []string
	for i := range n {
		ports[i] = testsys.FreePortPair(t)
		if i < replicas {
			reps = append(reps, fmt.Sprintf("127.0.0.1:%d", ports[i]))
		}
	}
	var cfgs []*config.Server
	for i := range n {
		dir := filepath.Join(base, fmt.Sprintf("srv%d", i))
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		c := config.Default(dir)
		c.Port, c.TelemetryPort = ports[i], testsys.FreePort(t)
		c.MgmtSvcReplicas = reps
		c.Engines[0].Targets = 2
		c.Engines[0].FabricIfacePort = testsys.FreePort(t)
		c.FaultPath = fmt.Sprintf("/node%d", i)
		cfgs = append(cfgs, c)
	}
	return cfgs
}

// waitJoined waits until the system map shows n joined ranks (bounded).
func waitJoined(t *testing.T, c ctlpb.CtlClient, n int) *ctlpb.SystemQueryResp {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := c.SystemQuery(ctx, &ctlpb.SystemQueryReq{})
		cancel()
		if err == nil && resp.Error == nil {
			joined := 0
			for _, m := range resp.Members {
				if m.State == "joined" {
					joined++
				}
			}
			if joined == n {
				return resp
			}
			last = fmt.Sprint(resp.Members)
		} else if err != nil {
			last = err.Error()
		} else {
			last = ctlclient.ToError(resp.Error).Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("system did not show %d joined ranks within 60 s (last: %s)", n, last)
	return nil
}

func TestSingleServerSystem(t *testing.T) {
	cfg := systemConfigs(t, 1, 1)[0]
	s, err := Start(cfg, Options{Logger: quiet(), AutoFormat: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	c := testsys.CtlClient(t, s.ControlAddr())
	sq := waitJoined(t, c, 1)
	if m := sq.Members[0]; m.Rank != 0 || m.Targets != 2 || m.FaultDomain != "/node0" || !strings.HasPrefix(m.FabricAddr, "127.0.0.1:") {
		t.Errorf("member %+v", m)
	}
	ctx := context.Background()
	cr, err := c.PoolCreate(ctx, &ctlpb.PoolCreateReq{Label: "tank", TotalSize: 1 << 30})
	if err != nil || cr.Error != nil {
		t.Fatalf("pool create: %v %v", err, cr.GetError())
	}
	if p := cr.Pool; p.State != "ready" || p.Targets != 2 || p.TgtScm != (1<<30)*6/100/2 {
		t.Errorf("created %+v", p)
	}
	q, err := c.PoolQuery(ctx, &ctlpb.PoolReq{Id: "tank"})
	if err != nil || q.Error != nil || q.Pool.Uuid != cr.Pool.Uuid || q.Pool.Targets != 2 {
		t.Errorf("query: %v %+v", err, q)
	}
	tests := []struct {
		name     string
		req      *ctlpb.PoolCreateReq
		code     daoserr.Code
		contains string
	}{
		{"same label", &ctlpb.PoolCreateReq{Label: "tank", TotalSize: 1 << 30}, daoserr.Exist, `"tank" already exists`},
		{"bad label", &ctlpb.PoolCreateReq{Label: "my pool", TotalSize: 1 << 30}, daoserr.Inval, "letters, digits"},
		{"no size", &ctlpb.PoolCreateReq{Label: "x"}, daoserr.Inval, "size"},
		{"unknown rank", &ctlpb.PoolCreateReq{Label: "x", TotalSize: 1 << 30, Ranks: []uint32{5}}, daoserr.Unreach, "rank 5 is not joined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.PoolCreate(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if e := ctlclient.ToError(r.Error); !daoserr.Is(e, tc.code) || !strings.Contains(e.Error(), tc.contains) {
				t.Errorf("got %v, want %s containing %q", e, tc.code, tc.contains)
			}
		})
	}
	if r, err := c.PoolDestroy(ctx, &ctlpb.PoolReq{Id: "tank"}); err != nil || r.Error != nil {
		t.Fatalf("destroy: %v %v", err, r.GetError())
	}
	if l, err := c.PoolList(ctx, &ctlpb.PoolListReq{}); err != nil || len(l.Pools) != 0 {
		t.Errorf("list after destroy: %v %v", l, err)
	}
	if r, _ := c.PoolQuery(ctx, &ctlpb.PoolReq{Id: "tank"}); !daoserr.Is(ctlclient.ToError(r.Error), daoserr.Nonexist) {
		t.Errorf("query after destroy: %v", r.Error)
	}
}

// Three servers, all MS replicas: any server answers (forwarding to the
// leader); after the leader's server stops, the others elect a new leader and
// the pool is still there.
func TestThreeServersLeaderLoss(t *testing.T) {
	cfgs := systemConfigs(t, 3, 3)
	var srvs []*Server
	for _, cfg := range cfgs {
		s, err := Start(cfg, Options{Logger: quiet(), AutoFormat: true})
		if err != nil {
			t.Fatal(err)
		}
		srvs = append(srvs, s)
	}
	defer func() {
		for _, s := range srvs {
			if s != nil {
				s.Shutdown(context.Background())
			}
		}
	}()
	c := testsys.CtlClient(t, srvs[2].ControlAddr())
	waitJoined(t, c, 3)
	ctx := context.Background()
	cr, err := c.PoolCreate(ctx, &ctlpb.PoolCreateReq{Label: "tank", TotalSize: 1 << 30})
	if err != nil || cr.Error != nil {
		t.Fatalf("pool create: %v %v", err, cr.GetError())
	}
	if len(cr.Pool.Ranks) != 3 || cr.Pool.Targets != 6 {
		t.Errorf("pool %+v", cr.Pool)
	}
	lq, err := c.LeaderQuery(ctx, &ctlpb.LeaderQueryReq{})
	if err != nil || lq.Leader == "" {
		t.Fatalf("leader query: %v %v", err, lq)
	}
	var other *Server
	for i, s := range srvs {
		if s.ControlAddr() == lq.Leader {
			s.Shutdown(context.Background())
			srvs[i] = nil
		} else {
			other = s
		}
	}
	c = testsys.CtlClient(t, other.ControlAddr())
	deadline := time.Now().Add(60 * time.Second)
	for {
		l, err := c.PoolList(ctx, &ctlpb.PoolListReq{})
		if err == nil && l.Error == nil {
			if len(l.Pools) != 1 || l.Pools[0].Label != "tank" || l.Pools[0].Uuid != cr.Pool.Uuid {
				t.Fatalf("pools after losing the leader: %v", l.Pools)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer 60 s after losing the leader: %v %v", err, l.GetError())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
