package vosperf

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
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
		MemCount:         200,
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
	if len(rr.Memory) != 2 {
		t.Fatalf("%d memory rows, want 2", len(rr.Memory))
	}
	for _, m := range rr.Memory {
		if m.Count != 200 || m.DataBytes != 200*64 || m.HeapInuseDelta <= 0 {
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
	for _, want := range []string{"update", "fetch", "raw pwrite+fdatasync", "raw write+fdatasync", "raw pread", "INDEX MEMORY", "8KiB"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Runs) != 1 || len(back.Runs[0].Rows) != len(rr.Rows) {
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
		Sizes: []ByteSize{100, 4 << 10}, Patterns: []Pattern{Seq}, Concurrency: []int{1}, Count: 4, Raw: true}
	rr, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rr.ScmDir, scm) || rr.DataDir != df {
		t.Errorf("scm dir %s (want under %s), data dir %s (want %s)", rr.ScmDir, scm, rr.DataDir, df)
	}
	for _, r := range rr.Rows {
		for _, b := range r.Baselines {
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

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"64": 64, "4K": 4096, "4KiB": 4096, "64k": 64 << 10, "1M": 1 << 20, "2G": 2 << 30, "10B": 10} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "K", "4X", "-1", "1.5M"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
	for v, want := range map[ByteSize]string{64: "64B", 4096: "4KiB", 1 << 20: "1MiB", 1500: "1500B"} {
		if v.String() != want {
			t.Errorf("%d prints as %s, want %s", uint64(v), v, want)
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
