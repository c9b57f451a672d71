package rpcperf

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A small run produces one RPC row per case, a raw row beside each bulk case,
// and sane numbers (never a timing threshold).
func TestRunShape(t *testing.T) {
	rows, err := Run(context.Background(), Config{Sizes: []int{0, 64 << 10}, Inflight: []int{1, 4}, Count: 40, Rounds: 2})
	if err != nil {
		t.Fatal(err)
	}
	var what []string
	for _, r := range rows {
		what = append(what, r.What)
		if r.Ops <= 0 || r.OpsPerS <= 0 {
			t.Errorf("row %+v: no ops measured", r)
		}
		if r.What == "rpc" && (r.P50us <= 0 || r.P99us < r.P50us) {
			t.Errorf("row %+v: bad percentiles", r)
		}
		if r.What == "rpc" && r.Size > 0 && r.VsRaw <= 0 {
			t.Errorf("row %+v: no comparison with raw", r)
		}
	}
	if got := strings.Join(what, ","); got != "rpc,rpc,rpc,raw tcp,rpc,raw tcp" {
		t.Errorf("rows %s", got)
	}
	var out bytes.Buffer
	WriteText(&out, rows)
	if !strings.Contains(out.String(), "VS RAW") || strings.Count(out.String(), "\n") != len(rows)+1 {
		t.Errorf("table:\n%s", out.String())
	}
}
