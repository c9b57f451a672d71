package cluster

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/testsys"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsys.RemoveBinaries()
	os.Exit(code)
}

// members is the system map as the administrator sees it: state by rank.
func members(t *testing.T, s *System) map[uint32]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.SystemQueryResp, error) {
		return s.Admin.SystemQuery(ctx, &ctlpb.SystemQueryReq{})
	})
	if err := ctlclient.Err(err, r.GetError(), "system query"); err != nil {
		t.Fatal(err)
	}
	out := map[uint32]string{}
	for _, m := range r.Members {
		out[m.Rank] = m.State
	}
	return out
}

// TestSecureCluster: three servers with certificates, an agent and a pool
// over every rank; a server killed with SIGKILL comes back on its storage
// with its rank, and the administrator's client keeps working throughout.
func TestSecureCluster(t *testing.T) {
	s := Start(t, Options{Secure: true})
	if len(s.AccessPoints) != 3 || s.AgentSocket == "" || s.PoolUUID == "" {
		t.Fatalf("system %+v", s)
	}
	if _, err := os.Stat(s.AgentSocket); err != nil {
		t.Fatalf("agent socket: %v", err)
	}
	before := members(t, s)
	if len(before) != 3 {
		t.Fatalf("ranks %v, want 3", before)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolResp, error) {
		return s.Admin.PoolQuery(ctx, &ctlpb.PoolReq{Id: s.Pool})
	})
	if err := ctlclient.Err(err, q.GetError(), "pool query"); err != nil || q.Pool.Targets != 6 {
		t.Fatalf("pool query: %v %+v", err, q.GetPool())
	}
	if testing.Short() {
		return
	}

	if err := s.KillServer(0); err != nil { // the admin client's first address
		t.Fatal(err)
	}
	if err := s.RestartServer(0); err != nil {
		t.Fatal(err)
	}
	after := members(t, s)
	for r, st := range after {
		if st != "joined" {
			t.Errorf("rank %d %s after the restart", r, st)
		}
	}
	if len(after) != 3 {
		t.Errorf("ranks after the restart %v, want the same 3 as %v", after, before)
	}
	for r := range before {
		if _, ok := after[r]; !ok {
			t.Errorf("rank %d lost in the restart: %v", r, after)
		}
	}
}
