package daosperf

import (
	"bytes"
	"context"
	"os/user"
	"strings"
	"testing"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/testsys/inproc"
)

func TestRun(t *testing.T) {
	s := inproc.Start(t, false)
	u, _ := user.Current()
	s.CreatePool(t, "perf", u.Username)
	ctx := context.Background()
	cl, err := daos.Init(ctx, daos.Options{AgentSocket: s.Agent.Socket(), Logger: inproc.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Fini()
	for _, tc := range []struct {
		class string
		size  int
		count int
	}{{"S1", 4096, 300}, {"SX", 1 << 20, 40}, {"S2", 100, 200}} {
		t.Run(tc.class, func(t *testing.T) {
			rows, err := Run(ctx, cl, Config{Pool: "perf", Class: tc.class, Size: tc.size, Count: tc.count, Concurrency: 4, Random: true, Verify: true, Raw: tc.size == 1<<20})
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 2 || rows[0].Phase != "update" || rows[1].Phase != "fetch" || !rows[1].Verified || rows[1].Ops != tc.count {
				t.Fatalf("rows %+v", rows)
			}
			if tc.size == 1<<20 && (rows[0].RawMiBPerS == 0 || rows[0].VsRaw == 0) {
				t.Fatalf("no raw figure: %+v", rows[0])
			}
			var b bytes.Buffer
			WriteText(&b, rows)
			if !strings.Contains(b.String(), "fetch") || !strings.Contains(b.String(), "yes") {
				t.Fatalf("table:\n%s", b.String())
			}
		})
	}
	// fetching what was never written fails verification, clearly
	_, err = Run(ctx, cl, Config{Pool: "perf", Class: "S1", Size: 64, Count: 5, Concurrency: 1, Phases: []string{"fetch"}, Verify: true})
	if !daoserr.Is(err, daoserr.DataLoss) || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("verify of nothing: %v", err)
	}
	if _, err := Run(ctx, cl, Config{Pool: "perf", Size: 0, Count: 1, Concurrency: 1}); !daoserr.Is(err, daoserr.Inval) {
		t.Fatalf("size 0: %v", err)
	}
	if _, err := Run(ctx, cl, Config{Pool: "perf", Class: "RP_2G1", Size: 64, Count: 1, Concurrency: 1}); err == nil {
		t.Fatal("RP_2G1 on one rank ran")
	}
}
