// Command vos_perf benchmarks one VOS target, in the spirit of DAOS's vos_perf:
// updates and fetches of single values and array extents, with throughput and
// latency percentiles printed beside raw file I/O measured in the same run on the
// same filesystem (interleaved with it in --rounds rounds, so both see the device
// in the same state), and the index's memory cost per value.
//
//	vos_perf --sizes 4K,1M --type both --concurrency 1,64
//	vos_perf --scm-dir /dev/shm --sizes 64 --concurrency 64 --fetch-concurrency 2
//	vos_perf --preset issue            # the figures quoted in docs/performance.md
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/godaos/godaos/internal/checksum"
	"github.com/godaos/godaos/server/vos"
	"github.com/godaos/godaos/server/vos/vosperf"
)

type cli struct {
	Dir      string `placeholder:"DIR" help:"Directory for the target (data file and, without --scm-dir, the SCM tier). The benchmark works in a subdirectory it removes afterwards. Default: a temporary directory."`
	ScmDir   string `placeholder:"DIR" help:"Separate directory for the SCM tier (log and checkpoints), e.g. /dev/shm for DAOS's 'class: ram'."`
	DataFile string `placeholder:"PATH" help:"Data file (NVMe tier), reformatted for every case. Default: a file in --dir."`

	Sizes            []vosperf.ByteSize `default:"64,4K,64K,1M" sep:"," help:"Value sizes (array extents: that many 1-byte records)."`
	Type             string             `default:"both" enum:"single,array,both" help:"Value type: single, array or both."`
	Pattern          string             `default:"seq" enum:"seq,rand,both" help:"Key order: seq, rand or both."`
	Concurrency      []int              `default:"1" sep:"," help:"Writer goroutines, each with its own object; a list runs each."`
	FetchConcurrency int                `placeholder:"N" help:"Fetching goroutines (default: as --concurrency)."`
	Count            int                `placeholder:"N" xor:"amount" help:"Ops per phase per size (default: min(10000, 256MiB/size), at least 64)."`
	Bytes            vosperf.ByteSize   `placeholder:"SIZE" xor:"amount" help:"Bytes per phase per size instead of --count."`
	RawCount         int                `placeholder:"N" help:"Ops per raw baseline phase (default: as --count)."`
	Raw              bool               `default:"true" negatable:"" help:"Measure raw pwrite+fdatasync, write+fdatasync and pread baselines."`
	Rounds           int                `default:"8" placeholder:"N" help:"Interleave each VOS phase with its raw baselines in N rounds of alternating blocks, so both see the same device state (e.g. a cloud disk's burst credit); 1: run them one after another."`
	JSON             bool               `help:"Print the report as JSON."`

	ScmSize    vosperf.ByteSize `placeholder:"SIZE" help:"SCM tier size (default: sized to the workload)."`
	NvmeSize   vosperf.ByteSize `placeholder:"SIZE" help:"Data file size (default: sized to the workload)."`
	DataThresh vosperf.ByteSize `placeholder:"SIZE" help:"Values below this stay in the SCM tier (default: VOS's, 4K)."`
	Csum       string           `default:"crc32" help:"Container checksum: off, crc32, crc64, sha256, xxh64."`

	MemCount int    `default:"0" placeholder:"N" help:"Also measure index heap per value and per extent with N 64-byte values (0: skip)."`
	Seed     uint64 `default:"1" help:"Seed of the random key orders and data."`
	Quiet    bool   `short:"q" help:"No progress lines on stderr."`
	Keep     bool   `help:"Keep the formatted targets after the run (their paths go to stderr), e.g. to inspect them with ddb."`

	Preset   string `placeholder:"NAME" enum:",issue" default:"" help:"Run a fixed set of comparisons with their targets instead (issue: the docs/performance.md figures; uses --dir, --tmpfs-dir, --rounds and --seed only)."`
	TmpfsDir string `default:"/dev/shm" placeholder:"DIR" help:"tmpfs directory for the preset's in-memory runs."`

	CPUProfile string `name:"cpuprofile" placeholder:"FILE" help:"Write a CPU profile of the whole run to FILE (go tool pprof bin/vos_perf FILE)."`
}

func main() {
	var c cli
	kong.Parse(&c, kong.Name("vos_perf"),
		kong.Description("Benchmark one VOS target: update/fetch throughput and latency beside raw file I/O on the same filesystem."),
		kong.UsageOnError())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "vos_perf: --cpuprofile:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := c.run(ctx)
	if rep != nil {
		if c.JSON {
			rep.WriteJSON(os.Stdout)
		} else {
			rep.WriteText(os.Stdout)
		}
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "vos_perf:", err)
		os.Exit(1)
	}
}

func (c *cli) run(ctx context.Context) (*vosperf.Report, error) {
	var progress io.Writer = os.Stderr
	if c.Quiet {
		progress = nil
	}
	if c.Preset != "" {
		return vosperf.RunPreset(ctx, c.Preset, vosperf.PresetOptions{Dir: c.Dir, TmpfsDir: c.TmpfsDir, Seed: c.Seed, Rounds: c.Rounds, Progress: progress})
	}
	cs, err := checksum.Parse(c.Csum)
	if err != nil {
		return nil, err
	}
	cfg := vosperf.Config{
		Dir: c.Dir, ScmDir: c.ScmDir, DataFile: c.DataFile,
		Sizes: c.Sizes, Concurrency: c.Concurrency, FetchConcurrency: c.FetchConcurrency,
		Count: c.Count, Bytes: c.Bytes, RawCount: c.RawCount, Raw: c.Raw, Rounds: c.Rounds,
		ScmSize: c.ScmSize, NvmeSize: c.NvmeSize, DataThresh: c.DataThresh,
		Csum: cs, NoCsum: cs == checksum.Off,
		MemCount: c.MemCount, Seed: c.Seed, Progress: progress, Keep: c.Keep,
	}
	switch c.Type {
	case "single":
		cfg.Types = []vos.IODType{vos.IODSingle}
	case "array":
		cfg.Types = []vos.IODType{vos.IODArray}
	default:
		cfg.Types = []vos.IODType{vos.IODSingle, vos.IODArray}
	}
	switch c.Pattern {
	case "seq":
		cfg.Patterns = []vosperf.Pattern{vosperf.Seq}
	case "rand":
		cfg.Patterns = []vosperf.Pattern{vosperf.Rand}
	default:
		cfg.Patterns = []vosperf.Pattern{vosperf.Seq, vosperf.Rand}
	}
	rep := vosperf.NewReport("")
	defer rep.Finish()
	run, err := vosperf.Run(ctx, cfg)
	if run != nil {
		rep.Runs = append(rep.Runs, run)
	}
	return rep, err
}
