package daosperf

import (
	"bytes"
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	// a punch phase between updates, then a verified fetch
	if _, err := Run(ctx, cl, Config{Pool: "perf", Class: "S1", Size: 64, Count: 20, Concurrency: 4, Phases: []string{"update", "punch", "update", "fetch"}, Verify: true}); err != nil {
		t.Fatalf("update, punch, update, verified fetch: %v", err)
	}
	rows, err := Run(ctx, cl, Config{Pool: "perf", Class: "S1", Size: 64, Count: 20, Concurrency: 4, Phases: []string{"update", "punch"}})
	if err != nil || len(rows) != 2 || rows[1].Phase != "punch" || rows[1].Ops != 20 {
		t.Fatalf("punch phase: %+v, %v", rows, err)
	}
	if _, err := Run(ctx, cl, Config{Pool: "perf", Size: 64, Count: 1, Concurrency: 1, Phases: []string{"update", "punch", "fetch"}, Verify: true}); !daoserr.Is(err, daoserr.Inval) {
		t.Fatalf("verified fetch after punch: %v, want DER_INVAL", err)
	}
	if _, err := Run(ctx, cl, Config{Pool: "perf", Size: 0, Count: 1, Concurrency: 1}); !daoserr.Is(err, daoserr.Inval) {
		t.Fatalf("size 0: %v", err)
	}
	if _, err := Run(ctx, cl, Config{Pool: "perf", Class: "RP_2G1", Size: 64, Count: 1, Concurrency: 1}); err == nil {
		t.Fatal("RP_2G1 on one rank ran")
	}
}

func TestSummarize(t *testing.T) {
	rows := []Row{
		{Phase: "update", Class: "S1", Size: 4096, Concurrency: 64, OpsPerS: 300, RawMiBPerS: 9, VsRaw: 0.3, ClientCPUus: 10},
		{Phase: "fetch", Class: "S1", Size: 4096, Concurrency: 64, OpsPerS: 900},
		{Phase: "update", Class: "S1", Size: 4096, Concurrency: 64, OpsPerS: 100, RawMiBPerS: 9, VsRaw: 0.1, ClientCPUus: 30},
		{Phase: "update", Class: "S1", Size: 4096, Concurrency: 64, OpsPerS: 200, RawMiBPerS: 9, VsRaw: 0.2, ClientCPUus: 20},
		{Phase: "update", Class: "SX", Size: 4096, Concurrency: 64, OpsPerS: 1, RawDiskMiBPerS: 0},
	}
	sums := Summarize(rows)
	if len(sums) != 3 || sums[0].Phase != "update" || sums[1].Phase != "fetch" || sums[2].Class != "SX" {
		t.Fatalf("cases %+v", sums)
	}
	for _, tc := range []struct {
		name string
		got  Spread
		want Spread
	}{
		{"ops of 3 runs", sums[0].OpsPerS, Spread{200, 100, 300}},
		{"vs raw", sums[0].VsRaw, Spread{0.2, 0.1, 0.3}},
		{"cpu", sums[0].ClientCPUus, Spread{20, 10, 30}},
		{"one run", sums[1].OpsPerS, Spread{900, 900, 900}},
		{"not measured", sums[2].RawDisk, Spread{}},
		{"even count", spreadOf([]float64{4, 1, 2, 3}), Spread{2.5, 1, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %+v, want %+v", tc.got, tc.want)
			}
		})
	}
	var b bytes.Buffer
	WriteSummary(&b, sums)
	if !strings.Contains(b.String(), "200 [100-300]") || !strings.Contains(b.String(), "20% [10-30]") {
		t.Fatalf("summary table:\n%s", b.String())
	}
}

func TestRawBaselines(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		f    func() (float64, time.Duration, error)
	}{
		{"pwrite+fdatasync", func() (float64, time.Duration, error) { return rawPwrite(ctx, dir, 4096, 4, 64, 2) }},
		{"batched", func() (float64, time.Duration, error) { return rawBatched(ctx, dir, 4096, 4, 64, 2) }},
		{"tcp", func() (float64, time.Duration, error) { return rawTCP(ctx, 64<<10, 2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s rawSum
			for range 2 {
				if err := s.add(tc.f()); err != nil {
					t.Fatal(err)
				}
			}
			if s.bytes <= 0 || s.mibPerS() <= 0 {
				t.Fatalf("%+v: %v MiB/s", s, s.mibPerS())
			}
		})
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("raw files left behind: %v", ents)
	}
	if _, _, err := rawPwrite(ctx, filepath.Join(dir, "missing"), 4096, 1, 1, 1); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("raw baseline in a missing directory: %v", err)
	}
}

func TestCPUAccounting(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	s := sampleCPU([]int{os.Getpid()})
	if !s.ok || s.self <= 0 {
		t.Fatalf("sample of this process: %+v", s)
	}
	if s := sampleCPU([]int{1 << 30}); s.ok {
		t.Fatal("a PID that does not exist was read")
	}
	if s := sampleCPU(nil); s.ok {
		t.Fatal("no servers, yet their time is reported")
	}
}
