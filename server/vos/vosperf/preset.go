package vosperf

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/godaos/godaos/server/vos"
)

// Presets lists the names RunPreset accepts.
var Presets = []string{"issue"}

// PresetOptions place a preset's runs.
type PresetOptions struct {
	Dir      string // disk runs (data file and SCM tier); "" = under os.TempDir()
	TmpfsDir string // tmpfs runs (SCM tier and data file); "" = /dev/shm
	Seed     uint64
	Rounds   int // see Config.Rounds; 0 means the default
	Progress io.Writer
}

// RunPreset runs a named set of comparisons and checks them against their targets.
//
// "issue" measures the figures docs/performance.md quotes (well under a minute on
// a 2-core machine with an SSD; the tmpfs runs need about 1.5 GiB in TmpfsDir):
//
//  1. 1 MiB array updates, 1 writer, vs raw pwrite+fdatasync (goal ≥ 70%)
//  2. 1 MiB array fetches, 1 reader, vs raw pread (goal ≥ 80%)
//  3. 4 KiB single-value updates, 64 writers, vs raw write+fdatasync with 1 writer
//     (goal ≥ 50x)
//  4. the same with SCM tier and data file on tmpfs (goal ≥ 200k ops/s)
//  5. 64-byte single-value fetches from the in-memory index, 2 readers
//     (goal ≥ 1M ops/s)
//
// plus the index's heap overhead per 64-byte value and per extent. Each VOS phase
// is interleaved with its raw baselines (Config.Rounds), so a throttled cloud
// disk's burst credit or a busy neighbour affects both alike; the 1 MiB case
// writes 512 MiB per phase, enough to use up a typical burst either way.
func RunPreset(ctx context.Context, name string, po PresetOptions) (*Report, error) {
	if name != "issue" {
		return nil, fmt.Errorf("unknown preset %q: known presets are %v", name, Presets)
	}
	tmpfs := po.TmpfsDir
	if tmpfs == "" {
		tmpfs = "/dev/shm"
	}
	tmpfsErr := usableTmpfs(tmpfs)

	base := Config{Dir: po.Dir, Raw: true, Rounds: po.Rounds, Patterns: []Pattern{Seq}, Seed: po.Seed, Progress: po.Progress}
	single, array := []vos.IODType{vos.IODSingle}, []vos.IODType{vos.IODArray}
	runs := []Config{
		with(base, func(c *Config) {
			c.Label, c.Types, c.Sizes, c.Concurrency, c.Count = "disk, 1 MiB arrays", array, []ByteSize{1 << 20}, []int{1}, 512
		}),
		with(base, func(c *Config) {
			c.Label, c.Types, c.Sizes, c.Concurrency = "disk, 4 KiB single values", single, []ByteSize{4 << 10}, []int{64}
			c.Count, c.RawCount = 40000, 4000 // raw: one fdatasync per op is slow
		}),
	}
	if tmpfsErr == nil {
		tb := with(base, func(c *Config) { c.Dir = tmpfs })
		runs = append(runs,
			with(tb, func(c *Config) {
				c.Label, c.Types, c.Sizes, c.Concurrency, c.Count = "tmpfs, 4 KiB single values", single, []ByteSize{4 << 10}, []int{64}, 200000
				c.RawCount = 50000 // the raw files coexist with the target's: keep tmpfs use near 1.5 GiB
			}),
			with(tb, func(c *Config) {
				c.Label, c.Types, c.Sizes, c.Concurrency, c.Count = "tmpfs, 64 B single values (fetch from the index)", single, []ByteSize{64}, []int{64}, 1000000
				c.FetchConcurrency = 2
			}),
			with(tb, func(c *Config) { c.Label, c.Sizes, c.MemCount = "tmpfs, index memory", nil, 200000 }),
		)
	} else {
		runs = append(runs, with(base, func(c *Config) { c.Label, c.Sizes, c.MemCount = "disk, index memory", nil, 200000 }))
	}

	rep := NewReport(name)
	defer rep.Finish()
	for _, cfg := range runs {
		rr, err := Run(ctx, cfg)
		if rr != nil {
			rep.Runs = append(rep.Runs, rr)
		}
		if err != nil {
			return rep, fmt.Errorf("%s: %w", cfg.Label, err)
		}
	}
	rep.Targets = issueTargets(rep.Runs, tmpfsErr)
	return rep, nil
}

func with(c Config, f func(*Config)) Config {
	f(&c)
	return c
}

func usableTmpfs(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fs := fsType(dir); fs != "tmpfs" {
		return fmt.Errorf("%s is %s, not tmpfs", dir, fs)
	}
	return nil
}

func issueTargets(runs []*RunReport, tmpfsErr error) []Target {
	find := func(i int, op, typ string, size ByteSize, conc int) (Row, bool) {
		if i >= len(runs) {
			return Row{}, false
		}
		return runs[i].Find(op, typ, size, conc)
	}
	relative := func(name string, goal float64, row Row, ok bool, raw string, conc int) Target {
		t := Target{Name: name}
		if goal >= 1 {
			t.Goal = fmt.Sprintf(">= %.0fx", goal)
		} else {
			t.Goal = fmt.Sprintf(">= %.0f%%", 100*goal)
		}
		b, found := row.Baseline(raw, conc)
		if !ok || !found {
			t.Skipped = "not measured"
			return t
		}
		t.Measured, t.Met = b.Ratio, b.Ratio >= goal
		if row.Size >= 1<<20 {
			t.Display = fmt.Sprintf("%s (%.0f vs %.0f MiB/s)", ratio(b.Ratio), row.MiBPerSec, b.Raw.MiBPerSec)
		} else {
			t.Display = fmt.Sprintf("%s (%s vs %s ops/s)", ratio(b.Ratio), rate(row.OpsPerSec), rate(b.Raw.OpsPerSec))
		}
		return t
	}
	absolute := func(name string, goal float64, row Row, ok bool) Target {
		t := Target{Name: name, Goal: fmt.Sprintf(">= %s ops/s", rate(goal))}
		switch {
		case tmpfsErr != nil:
			t.Skipped = "no tmpfs: " + tmpfsErr.Error()
		case !ok:
			t.Skipped = "not measured"
		default:
			t.Measured, t.Met, t.Display = row.OpsPerSec, row.OpsPerSec >= goal, rate(row.OpsPerSec)+" ops/s"
		}
		return t
	}
	mib := ByteSize(1 << 20)
	upd, ok1 := find(0, "update", "array", mib, 1)
	fet, ok2 := find(0, "fetch", "array", mib, 1)
	sv, ok3 := find(1, "update", "single", 4<<10, 64)
	tsv, ok4 := find(2, "update", "single", 4<<10, 64)
	tfe, ok5 := find(3, "fetch", "single", 64, 2)
	return []Target{
		relative("1 MiB array update, c=1, vs raw pwrite+fdatasync c=1", 0.70, upd, ok1, rawPwrite, 1),
		relative("1 MiB array fetch, c=1, vs raw pread c=1", 0.80, fet, ok2, rawPread, 1),
		relative("4 KiB single-value update, c=64, vs raw write+fdatasync c=1", 50, sv, ok3, rawAppend, 1),
		absolute("4 KiB single-value update, c=64, SCM tier and data file on tmpfs", 200000, tsv, ok4),
		absolute("64 B single-value fetch from the index, c=2", 1000000, tfe, ok5),
	}
}
