package vosperf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godaos/godaos/server/vos"
)

// TestRunTiny runs a few ops of every kind and checks the report's shape and
// consistency. It never asserts on speed.
func TestRunTiny(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{
		Label:            "tiny",
		Dir:              dir,
		Types:            []vos.IODType{vos.IODSingle, vos.IODArray},
		Sizes:            []ByteSize{64, 8 << 10},
		Patterns:         []Pattern{Seq, Rand},
		Concurrency:      []int{2},
		FetchConcurrency: 3,
		Count:            20,
		RawCount:         8,
		Raw:              true,
		MemCount:         4000,
		VerifyEvery:      1,
	}
	rr, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rr.DataThresh != 4<<10 {
		t.Errorf("data_thresh %d, want VOS's default 4096", rr.DataThresh)
	}
	if want := 2 * 2 * 2 * 2; len(rr.Rows) != want { // types × sizes × patterns × {update, fetch}
		t.Fatalf("%d rows, want %d", len(rr.Rows), want)
	}
	for _, r := range rr.Rows {
		name := r.Op + " " + r.Type + " " + ByteSize(r.Size).String() + " " + r.Pattern
		checkRow(t, name, r)
		if r.Engine != "vos" || r.Ops != 20 {
			t.Errorf("%s: engine %q ops %d, want vos 20", name, r.Engine, r.Ops)
		}
		wantConc := map[string]int{"update": 2, "fetch": 3}[r.Op]
		if r.Concurrency != wantConc {
			t.Errorf("%s: concurrency %d, want %d", name, r.Concurrency, wantConc)
		}
		// update: pwrite+fdatasync c=2, write+fdatasync c=2 and c=1; fetch: pread c=3
		wantRaw := map[string][]string{"update": {rawPwrite, rawAppend, rawAppend}, "fetch": {rawPread}}[r.Op]
		if len(r.Baselines) != len(wantRaw) {
			t.Fatalf("%s: %d baselines, want %d", name, len(r.Baselines), len(wantRaw))
		}
		for i, b := range r.Baselines {
			checkRow(t, name+" raw "+b.Raw.Op, b.Raw)
			if b.Raw.Op != wantRaw[i] || b.Raw.Engine != "raw" || b.Raw.Size != r.Size || b.Raw.Ops != 8 {
				t.Errorf("%s: baseline %d is %s %s size %d ops %d", name, i, b.Raw.Engine, b.Raw.Op, b.Raw.Size, b.Raw.Ops)
			}
			if b.Ratio <= 0 {
				t.Errorf("%s vs raw %s: ratio %v", name, b.Raw.Op, b.Ratio)
			}
			// small values are compared with the SCM tier's filesystem, large with the data file's
			if b.Raw.Dir == "" {
				t.Errorf("%s vs raw %s: no directory", name, b.Raw.Op)
			}
		}
		if _, ok := r.Baseline(rawAppend, 1); r.Op == "update" && !ok {
			t.Errorf("%s: no write+fdatasync c=1 baseline", name)
		}
	}
	if rr.Rounds != defaultRounds {
		t.Errorf("rounds %d, want the default %d", rr.Rounds, defaultRounds)
	}
	if len(rr.Memory) != 2 {
		t.Fatalf("%d memory rows, want 2", len(rr.Memory))
	}
	for _, m := range rr.Memory {
		if m.Count != 4000 || m.DataBytes != 4000*64 || m.HeapInuseDelta <= 0 {
			t.Errorf("memory %s: %+v", m.Type, m)
		}
	}

	// Everything created under dir is gone.
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind in %s: %v", dir, ents)
	}

	rep := NewReport("")
	rep.Runs = append(rep.Runs, rr)
	rep.Finish()
	var text, js bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"update", "fetch", "raw pwrite+fdatasync", "raw write+fdatasync", "raw pread", "INDEX MEMORY", "8KiB", "interleaved in 8 rounds"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Runs) != 1 || len(back.Runs[0].Rows) != len(rr.Rows) || back.Runs[0].Rounds != rr.Rounds {
		t.Errorf("JSON does not round-trip: %v", err)
	}
	t.Logf("\n%s", text.String())
}

func checkRow(t *testing.T, name string, r Row) {
	t.Helper()
	if r.Ops <= 0 || r.Seconds <= 0 || r.OpsPerSec <= 0 || r.MiBPerSec <= 0 || r.Bytes != uint64(r.Ops)*r.Size {
		t.Errorf("%s: implausible totals %+v", name, r)
	}
	if !(0 < r.P50us && r.P50us <= r.P99us && r.P99us <= r.P999us) {
		t.Errorf("%s: percentiles out of order: p50 %v p99 %v p99.9 %v", name, r.P50us, r.P99us, r.P999us)
	}
}

// TestScmDirAndDataFile checks that the SCM tier and data file go where asked.
func TestScmDirAndDataFile(t *testing.T) {
	dir, scm, df := t.TempDir(), t.TempDir(), t.TempDir()
	cfg := Config{Dir: dir, ScmDir: scm, DataFile: df + "/data", Types: []vos.IODType{vos.IODSingle},
		Sizes: []ByteSize{100, 4 << 10}, Patterns: []Pattern{Seq}, Concurrency: []int{1}, Count: 4, Raw: true,
		Rounds: 3} // more blocks than ops for some workers, uneven blocks for others
	rr, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rr.ScmDir, scm) || rr.DataDir != df {
		t.Errorf("scm dir %s (want under %s), data dir %s (want %s)", rr.ScmDir, scm, rr.DataDir, df)
	}
	if rr.Rounds != 3 {
		t.Errorf("rounds %d, want 3", rr.Rounds)
	}
	for _, r := range rr.Rows {
		if r.Ops != 4 {
			t.Errorf("%d-byte %s: %d ops, want 4", r.Size, r.Op, r.Ops)
		}
		for _, b := range r.Baselines {
			if b.Raw.Ops != 4 {
				t.Errorf("%d-byte %s vs raw %s: %d ops, want 4", r.Size, r.Op, b.Raw.Op, b.Raw.Ops)
			}
			want := df
			if r.Size < rr.DataThresh {
				want = rr.ScmDir
			}
			if b.Raw.Dir != want {
				t.Errorf("%d-byte %s vs raw %s ran in %s, want %s", r.Size, r.Op, b.Raw.Op, b.Raw.Dir, want)
			}
		}
	}
	for _, d := range []string{dir, scm, df} {
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Errorf("left behind in %s: %v", d, ents)
		}
	}
}

func TestPercentile(t *testing.T) {
	var st phaseStats
	for i := 1; i <= 1000; i++ {
		st.lat = append(st.lat, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 500, 0.99: 990, 0.999: 999, 1: 1000} {
		if p := st.percentile(q); p != want {
			t.Errorf("percentile(%v) = %v, want %v", q, p, want)
		}
	}
	if p := (phaseStats{lat: st.lat[:1]}).percentile(0.999); p != 1 {
		t.Errorf("p99.9 of one sample = %v", p)
	}
}

// TestRoundsOneAndNoRaw runs without interleaving and without raw baselines.
func TestRoundsOneAndNoRaw(t *testing.T) {
	base := Config{Dir: t.TempDir(), Types: []vos.IODType{vos.IODArray}, Sizes: []ByteSize{8 << 10},
		Patterns: []Pattern{Rand}, Concurrency: []int{3}, Count: 10}
	for _, tc := range []struct {
		raw    bool
		rounds int
		want   int
		header string
	}{
		{true, 1, 1, "VOS and raw phases one after another"},
		{false, 5, 0, ""},
	} {
		cfg := base
		cfg.Raw, cfg.Rounds = tc.raw, tc.rounds
		rr, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if rr.Rounds != tc.want {
			t.Errorf("raw %v rounds %d: report says %d rounds, want %d", tc.raw, tc.rounds, rr.Rounds, tc.want)
		}
		for _, r := range rr.Rows {
			checkRow(t, r.Op, r)
			if r.Ops != 10 || (len(r.Baselines) > 0) != tc.raw {
				t.Errorf("raw %v: %s has %d ops and %d baselines", tc.raw, r.Op, r.Ops, len(r.Baselines))
			}
		}
		rep := &Report{Runs: []*RunReport{rr}}
		var text bytes.Buffer
		rep.WriteText(&text)
		if tc.header != "" && !strings.Contains(text.String(), tc.header) || tc.header == "" && strings.Contains(text.String(), "interleaved") {
			t.Errorf("raw %v rounds %d: header wrong:\n%s", tc.raw, tc.rounds, text.String())
		}
	}
	if _, err := Run(context.Background(), with(base, func(c *Config) { c.Rounds = -1 })); err == nil {
		t.Error("negative rounds accepted")
	}
}

// TestInterleave checks the block schedule: every op of every phase runs exactly
// once, each worker's ops in order, and round i runs block i of each phase in
// turn, starting with phase i mod len(phases).
func TestInterleave(t *testing.T) {
	type rec struct {
		phase, w int
		k        uint64
	}
	var (
		mu  sync.Mutex
		log []rec
	)
	mk := func(id, n, c int, sleep time.Duration) *phase {
		return newPhase(fmt.Sprint(id), split(spread(n, c), c), func(w int) func(item) error {
			return func(it item) error {
				time.Sleep(sleep)
				mu.Lock()
				log = append(log, rec{id, w, it.k})
				mu.Unlock()
				return nil
			}
		})
	}
	// phase 1 has fewer ops than rounds: its first block is empty
	phases := []*phase{mk(0, 10, 2, time.Millisecond), mk(1, 3, 1, 0), mk(2, 17, 3, 0)}
	const k = 4
	if err := interleave(context.Background(), k, phases...); err != nil {
		t.Fatal(err)
	}
	// the order in which phases had their turns, runs of one phase merged
	var turns []int
	next := map[[2]int]uint64{}
	count := map[int]int{}
	for _, r := range log {
		if len(turns) == 0 || turns[len(turns)-1] != r.phase {
			turns = append(turns, r.phase)
		}
		if want := next[[2]int{r.phase, r.w}]; r.k != want {
			t.Errorf("phase %d worker %d ran value %d, want %d", r.phase, r.w, r.k, want)
		}
		next[[2]int{r.phase, r.w}] = r.k + 1
		count[r.phase]++
	}
	want := []int{0, 2 /* 1: empty */, 1, 2, 0, 2, 0, 1, 0, 1, 2}
	if !slices.Equal(turns, want) {
		t.Errorf("turns %v, want %v", turns, want)
	}
	for i, p := range phases {
		st := p.stats()
		n := len(spread(map[int]int{0: 10, 1: 3, 2: 17}[i], 1))
		if count[i] != n || st.ops != n || len(st.lat) != n || !slices.IsSorted(st.lat) {
			t.Errorf("phase %d: %d ops run, stats %d ops %d latencies, want %d", i, count[i], st.ops, len(st.lat), n)
		}
		if st.wall <= 0 || st.wall != p.wall {
			t.Errorf("phase %d: wall %v", i, st.wall)
		}
	}
	// phase 0's ops sleep 1ms, 5 per worker: its own blocks alone take >= 5ms
	if w := phases[0].wall; w < 5*time.Millisecond {
		t.Errorf("phase 0 wall %v, its ops alone slept 5ms per worker", w)
	}

	// an error stops the run and names the phase
	bad := newPhase("raw bad", split(spread(8, 1), 2), func(int) func(item) error {
		return func(it item) error {
			if it.k == 5 {
				return errors.New("boom")
			}
			return nil
		}
	})
	ok := mk(3, 8, 1, 0)
	err := interleave(context.Background(), 4, ok, bad)
	if err == nil || !strings.Contains(err.Error(), "raw bad: boom") {
		t.Errorf("error %v, want raw bad: boom", err)
	}
	if ok.stats().ops == 8 {
		t.Errorf("the other phase ran to the end after an error")
	}
}
