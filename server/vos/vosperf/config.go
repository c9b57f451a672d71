// Package vosperf benchmarks one VOS instance in the spirit of DAOS's vos_perf:
// updates and fetches of single values and array extents, reported as ops/s, MiB/s
// and latency percentiles, each beside the raw file I/O (pwrite+fdatasync, appending
// write+fdatasync, pread) measured in the same run on the same filesystem,
// interleaved with it in rounds so that both meet the device in the same state. It
// also measures how much heap the in-memory index spends per value and per extent.
//
// cmd/vos_perf is the command-line front end; tests call Run directly.
package vosperf

import (
	"fmt"
	"io"

	"github.com/godaos/godaos/internal/checksum"
	"github.com/godaos/godaos/internal/units"
	"github.com/godaos/godaos/server/vos"
)

// ByteSize is a size in bytes (see units.ByteSize).
type ByteSize = units.ByteSize

// ParseByteSize parses a size such as 4K or 1MiB.
func ParseByteSize(s string) (ByteSize, error) { return units.ParseByteSize(s) }

// Pattern is the order in which keys (VOS) or offsets (raw files) are visited.
type Pattern string

const (
	Seq  Pattern = "seq"  // ascending keys / offsets
	Rand Pattern = "rand" // a random permutation of the same keys / offsets
)

// Config describes one benchmark run: every combination of Types, Sizes, Patterns
// and Concurrency is one case, run against a freshly formatted VOS target.
type Config struct {
	// Label names the run in the report, e.g. "disk" or "tmpfs".
	Label string
	// Dir receives the data file and, unless ScmDir is set, the SCM tier (log and
	// checkpoints). The benchmark works in a new subdirectory that it removes
	// afterwards. Empty means a directory under os.TempDir().
	Dir string
	// ScmDir, if set, holds the SCM tier instead of Dir, e.g. /dev/shm to model
	// DAOS's "class: ram" SCM.
	ScmDir string
	// DataFile, if set, is the data file (NVMe tier) of every case, reformatted for
	// each. Raw baselines for large values then run in its directory.
	DataFile string

	Types       []vos.IODType // IODSingle and/or IODArray
	Sizes       []ByteSize    // value sizes; an array extent is Size records of 1 byte
	Patterns    []Pattern
	Concurrency []int // writer goroutines, each with its own object
	// FetchConcurrency is the number of fetching goroutines; 0 means the same as
	// the case's update concurrency.
	FetchConcurrency int

	// Count is the number of ops per phase per size. If 0, Bytes/size is used, and
	// if Bytes is 0 too, min(10000, 256MiB/size) but at least 64.
	Count int
	Bytes ByteSize
	// RawCount is the number of ops of each raw baseline phase; 0 means Count.
	RawCount int
	// Raw measures the raw-file baselines next to every VOS row.
	Raw bool
	// Rounds is how many turns each VOS phase and its raw baselines take on the
	// device: every phase's ops are cut into Rounds blocks, and round i runs block
	// i of each phase in turn, so VOS and raw I/O meet the same device state (a
	// throttled disk's burst credit, say) instead of whichever runs first getting
	// the best of it. 0 means 8; 1 runs each phase in one go, one after another.
	Rounds int

	ScmSize    ByteSize // 0: sized to the workload
	NvmeSize   ByteSize // 0: sized to the workload
	DataThresh ByteSize // 0: VOS's default (4 KiB)
	Csum       checksum.Type
	NoCsum     bool

	// MemCount is how many 64-byte single values (and, separately, array extents)
	// the index-memory measurement inserts; 0 skips it.
	MemCount int
	// VerifyEvery compares a fetched value in full every this many ops (the
	// head and tail of every value are always checked); 0 means 64.
	VerifyEvery int
	// Keep leaves the formatted targets (and their data files) in place after the
	// run, so ddb can inspect them; the report lists where they are.
	Keep bool
	// Seed makes the random patterns and data reproducible.
	Seed uint64
	// Progress, if set, receives one line per phase as the run goes.
	Progress io.Writer
}

const (
	defaultCountBytes = 256 << 20
	defaultMaxCount   = 10000
	defaultMinCount   = 64
	defaultVerify     = 64
	defaultRounds     = 8
	arrayChunk        = 1 << 20 // DAOS's default array chunk: one dkey per MiB
	memValueSize      = 64
)

func (c *Config) validate() error {
	if len(c.Sizes) == 0 && c.MemCount == 0 {
		return fmt.Errorf("nothing to do: give at least one size (or a memory count)")
	}
	for _, s := range c.Sizes {
		if s == 0 {
			return fmt.Errorf("value size 0: sizes must be at least 1 byte")
		}
		if s > vos.MaxSingleValue {
			return fmt.Errorf("value size %v is above VOS's limit of %v per value", s, ByteSize(vos.MaxSingleValue))
		}
	}
	if len(c.Sizes) > 0 && (len(c.Types) == 0 || len(c.Patterns) == 0 || len(c.Concurrency) == 0) {
		return fmt.Errorf("need at least one type, pattern and concurrency")
	}
	for _, t := range c.Types {
		if t != vos.IODSingle && t != vos.IODArray {
			return fmt.Errorf("type %v: want single or array", t)
		}
	}
	for _, p := range c.Patterns {
		if p != Seq && p != Rand {
			return fmt.Errorf("pattern %q: want seq or rand", p)
		}
	}
	for _, n := range c.Concurrency {
		if n < 1 || n > 4096 {
			return fmt.Errorf("concurrency %d: want 1 to 4096", n)
		}
	}
	if c.FetchConcurrency < 0 || c.FetchConcurrency > 4096 {
		return fmt.Errorf("fetch concurrency %d: want 0 (same as update) to 4096", c.FetchConcurrency)
	}
	if c.Rounds < 0 || c.Rounds > 1<<20 {
		return fmt.Errorf("rounds %d: want 0 (the default, %d) to %d", c.Rounds, defaultRounds, 1<<20)
	}
	if c.Count < 0 || c.RawCount < 0 || c.MemCount < 0 {
		return fmt.Errorf("counts cannot be negative")
	}
	return nil
}

// countFor is the number of ops per phase for values of size bytes.
func (c *Config) countFor(size ByteSize) int {
	switch {
	case c.Count > 0:
		return c.Count
	case c.Bytes > 0:
		return int(max(1, c.Bytes/size))
	}
	return int(min(defaultMaxCount, max(defaultMinCount, defaultCountBytes/uint64(size))))
}

func (c *Config) rawCountFor(size ByteSize) int {
	if c.RawCount > 0 {
		return c.RawCount
	}
	return c.countFor(size)
}

func (c *Config) dataThresh() uint64 {
	if c.DataThresh > 0 {
		return uint64(c.DataThresh)
	}
	return 4 << 10 // VOS's default, as in DAOS
}

func (c *Config) verifyEvery() int {
	if c.VerifyEvery > 0 {
		return c.VerifyEvery
	}
	return defaultVerify
}

func (c *Config) rounds() int {
	if c.Rounds > 0 {
		return c.Rounds
	}
	return defaultRounds
}
