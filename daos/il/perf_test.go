package il_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/testsys"
)

// TestPerf measures what the library gains (GODAOS_IL_PERF=1 runs it; the
// figures are logged, never asserted): fio, one job, psync, 1 MiB
// sequential write then read of GODAOS_IL_PERF_MIB (default 1024) MiB through
// the dfuse mount without and with the library, and daos_perf's native
// object I/O of the same size on the same system in the same run (S1 and
// SX, 1 and 8 operations in flight), GODAOS_IL_PERF_ROUNDS (default 3)
// rounds.
func TestPerf(t *testing.T) {
	if os.Getenv("GODAOS_IL_PERF") == "" {
		t.Skip("GODAOS_IL_PERF=1 runs the benchmark")
	}
	mib := 1024
	if v := os.Getenv("GODAOS_IL_PERF_MIB"); v != "" {
		fmt.Sscan(v, &mib)
	}
	rounds := 3
	if v := os.Getenv("GODAOS_IL_PERF_ROUNDS"); v != "" {
		fmt.Sscan(v, &rounds)
	}
	// a pool of its own, large enough for every run (space freed by a
	// remove comes back later, with aggregation)
	system(t)
	if err := createPool("perf", uint64(rounds*6*mib+1024)<<20); err != nil {
		t.Fatal(err)
	}
	mnt := mountPool(t, "perf")
	shim := shim(t)
	bin := testsys.Binaries(t, testsys.Cmd("daos_perf"))
	// Each round runs every case once, so that a machine busy with
	// something else for a while slows all of them; the medians are the
	// figures.
	cases := []string{"dfuse + libpil4dfs", "dfuse", "daos_perf S1 x1", "daos_perf SX x1", "daos_perf S1 x8", "daos_perf SX x8"}
	writes, reads := map[string][]float64{}, map[string][]float64{}
	for round := 0; round < rounds; round++ {
		for i, c := range cases {
			var w, r float64
			if strings.HasPrefix(c, "dfuse") {
				file := filepath.Join(mnt, fmt.Sprintf("perf%d", i))
				env := append(os.Environ(), "LD_PRELOAD=")
				if strings.Contains(c, "libpil4dfs") {
					env = append(os.Environ(), "LD_PRELOAD="+shim)
				}
				w = fioRate(t, env, file, "write", mib)
				r = fioRate(t, env, file, "read", mib)
				os.Remove(file)
			} else {
				var class string
				var conc int
				fmt.Sscanf(c, "daos_perf %s x%d", &class, &conc)
				w, r = daosPerf(t, bin, class, conc, mib)
			}
			writes[c], reads[c] = append(writes[c], w), append(reads[c], r)
			t.Logf("round %d: %-20s write %7.1f MiB/s  read %7.1f MiB/s", round+1, c, w, r)
		}
	}
	t.Logf("medians of %d rounds, 1 MiB sequential, %d MiB, one stream unless xN:", rounds, mib)
	for _, c := range cases {
		t.Logf("  %-20s write %7.1f MiB/s  read %7.1f MiB/s", c, median(writes[c]), median(reads[c]))
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// daosPerf runs daos_perf's update and fetch phases of mib 1 MiB values.
func daosPerf(t *testing.T, bin, class string, conc, mib int) (write, read float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "daos_perf"), "--pool", "perf", "--class", class,
		"--size", "1M", "--count", fmt.Sprint(mib), "--concurrency", fmt.Sprint(conc), "--no-raw", "--json").Output()
	if err != nil {
		t.Fatalf("daos_perf: %v\n%s", err, out)
	}
	var prs []struct {
		Phase   string  `json:"phase"`
		MiBPerS float64 `json:"mib_per_sec"`
	}
	if err := json.Unmarshal(out, &prs); err != nil {
		t.Fatalf("daos_perf output: %v\n%s", err, out)
	}
	for _, p := range prs {
		switch p.Phase {
		case "update":
			write = p.MiBPerS
		case "fetch":
			read = p.MiBPerS
		}
	}
	return write, read
}

// fioRate runs one fio job (psync, 1 MiB blocks, sequential) and returns
// its rate in MiB/s.
func fioRate(t *testing.T, env []string, file, rw string, mib int) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "fio", "--name=perf", "--ioengine=psync", "--bs=1m", "--rw="+rw,
		fmt.Sprintf("--size=%dm", mib), "--filename="+file, "--end_fsync=1", "--output-format=json")
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fio %s: %v\n%s", rw, err, stderr.String())
	}
	// fio may print notes before the JSON
	if i := strings.IndexByte(string(out), '{'); i > 0 {
		out = out[i:]
	}
	var res struct {
		Jobs []struct {
			Read, Write struct {
				BwBytes float64 `json:"bw_bytes"`
			}
		}
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Jobs) != 1 {
		t.Fatalf("fio output: %v\n%s", err, out)
	}
	if rw == "read" {
		return res.Jobs[0].Read.BwBytes / (1 << 20)
	}
	return res.Jobs[0].Write.BwBytes / (1 << 20)
}
