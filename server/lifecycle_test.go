package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/testsys"
)

func engineState(t *testing.T, c ctlpb.CtlClient) string {
	t.Helper()
	r, err := c.ServerQuery(context.Background(), &ctlpb.ServerQueryReq{})
	if err != nil || len(r.Storage) != 1 {
		t.Fatalf("server query: %v %v", r, err)
	}
	return r.Storage[0].State
}

func memberStates(t *testing.T, c ctlpb.CtlClient) string {
	t.Helper()
	r, err := ctlclient.Retry(context.Background(), func(ctx context.Context) (*ctlpb.SystemQueryResp, error) {
		return c.SystemQuery(ctx, &ctlpb.SystemQueryReq{})
	})
	if err := ctlclient.Err(err, r.GetError(), "system query"); err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, m := range r.Members {
		s = append(s, m.State)
	}
	return strings.Join(s, ",")
}

func scrape(t *testing.T, port int) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

func ping(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cl, err := rpc.Dial(ctx, addr, rpc.ClientOptions{Logger: quiet()})
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = cl.Call(ctx, rpc.Message{Opcode: enginepb.OpPing}, nil)
	return err
}

// TestFormatStopStartRestart walks a server through its life as an
// administrator does: start on unformatted storage (the engine waits),
// dmg storage format (it starts and joins), create a pool, dmg system stop
// and start, then stop the server and start it again: the pool is there.
func TestFormatStopStartRestart(t *testing.T) {
	cfg := systemConfigs(t, 1, 1)[0]
	ctx := context.Background()
	s, err := Start(cfg, Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	c := testsys.CtlClient(t, s.ControlAddr())
	if st := engineState(t, c); st != engineUnformatted {
		t.Fatalf("engine on fresh storage is %s", st)
	}
	if st := memberStates(t, c); st != "" {
		t.Fatalf("members before format: %s", st)
	}

	f, err := c.StorageFormat(ctx, &ctlpb.StorageFormatReq{})
	if err := ctlclient.Err(err, f.GetError(), "format"); err != nil {
		t.Fatal(err)
	}
	waitJoined(t, c, 1)
	cr, err := c.PoolCreate(ctx, &ctlpb.PoolCreateReq{Label: "tank", TotalSize: 1 << 30})
	if err := ctlclient.Err(err, cr.GetError(), "pool create"); err != nil {
		t.Fatal(err)
	}
	metrics := scrape(t, cfg.TelemetryPort)
	for _, want := range []string{`godaos_engine_rpc_requests_total{engine="0",opcode="Collective",rank="0",target="0"} 2`, // target create, then the pool map
		`godaos_engine_running{engine="0",rank="0",state="running"} 1`, "godaos_ms_leader 1", `godaos_engine_pools{engine="0",rank="0"} 1`,
		"go_goroutines", "process_open_fds"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(metrics, "godaos_"))
		}
	}
	f, err = c.StorageFormat(ctx, &ctlpb.StorageFormatReq{})
	if err != nil || f.Error != nil || !strings.Contains(strings.Join(f.Formatted, ";"), "already formatted") {
		t.Fatalf("second format: %v %+v", err, f)
	}

	f, _ = c.StorageFormat(ctx, &ctlpb.StorageFormatReq{Reformat: true})
	if e := ctlclient.ToError(f.GetError()); !daoserr.Is(e, daoserr.Busy) || !strings.Contains(e.Error(), "dmg system stop --ranks 0") {
		t.Fatalf("reformat of a running engine: %v", e)
	}
	addr := s.EngineAddrs()[0]
	stop, err := c.SystemStop(ctx, &ctlpb.SystemStopReq{})
	if err := ctlclient.Err(err, stop.GetError(), "system stop"); err != nil || len(stop.Results) != 1 || stop.Results[0].State != "stopped" {
		t.Fatalf("system stop: %v %+v", err, stop)
	}
	if st := memberStates(t, c); st != "stopped" {
		t.Fatalf("members after stop: %s", st)
	}
	if err := ping(addr); err == nil {
		t.Fatal("a stopped engine answers")
	}
	if r, _ := c.SystemStop(ctx, &ctlpb.SystemStopReq{Ranks: []uint32{7}}); !daoserr.Is(ctlclient.ToError(r.GetError()), daoserr.Nonexist) {
		t.Fatalf("stop of an unknown rank: %v", r.GetError())
	}
	start, err := c.SystemStart(ctx, &ctlpb.SystemStartReq{})
	if err := ctlclient.Err(err, start.GetError(), "system start"); err != nil || len(start.Results) != 1 {
		t.Fatalf("system start: %v %+v", err, start)
	}
	if st := memberStates(t, c); st != "joined" {
		t.Fatalf("members after start: %s", st)
	}
	if err := ping(s.EngineAddrs()[0]); err != nil {
		t.Fatalf("restarted engine: %v", err)
	}

	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s, err = Start(cfg, Options{Logger: quiet()}) // no auto-format: the storage is formatted
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(ctx)
	c = testsys.CtlClient(t, s.ControlAddr())
	waitJoined(t, c, 1)
	q, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolResp, error) {
		return c.PoolQuery(ctx, &ctlpb.PoolReq{Id: "tank"})
	})
	if err := ctlclient.Err(err, q.GetError(), "pool query after restart"); err != nil || q.Pool.Uuid != cr.Pool.Uuid {
		t.Fatalf("%v %+v", err, q.GetPool())
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
