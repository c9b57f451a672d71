// Command daos_perf measures object I/O through the client API and the
// engines, beside a raw TCP stream of the same size and raw
// pwrite+fdatasync on the servers' storage, measured in the same run:
//
//	daos_perf --pool tank --class SX --size 1M --count 2000 --concurrency 8 --verify
//
// Against a system started by `launcher local`, it finds the servers in the
// launcher's directory (--system-dir): it reports their CPU time per
// operation and measures the raw file baseline in their storage directory.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/daosperf"
	"github.com/godaos/godaos/internal/cli"
	"github.com/godaos/godaos/internal/units"
	"github.com/godaos/godaos/launcher"
)

type cmdLine struct {
	Pool        string         `short:"P" help:"Pool label or UUID (required to run)."`
	Cont        string         `help:"Container (default: one made for the run and destroyed after)."`
	Class       string         `short:"c" default:"SX" help:"Object class: S1, S2, ..., SX, RP_2G1, RP_3GX, ... (replicated)."`
	Size        units.ByteSize `short:"s" default:"4K" help:"Bytes per operation, e.g. 64, 4K, 1M."`
	Count       int            `short:"n" default:"10000" help:"Operations per phase."`
	Concurrency int            `short:"C" default:"16" help:"Operations in flight."`
	Phases      []string       `short:"R" default:"update,fetch" help:"Phases, in order: update, fetch, punch (punch: each key's dkey)."`
	Random      bool           `help:"Visit the keys in a random order."`
	Verify      bool           `short:"v" help:"Check every byte fetched against what was written."`
	Between     string         `placeholder:"CMD" help:"Shell command run between phases (e.g. kill a server, so that the next phase runs degraded); its failure ends the run."`
	NoRaw       bool           `name:"no-raw" help:"Do not measure the raw baselines beside."`
	RawDir      string         `name:"raw-dir" placeholder:"DIR" help:"Directory on the servers' storage for the raw pwrite+fdatasync baseline of updates (default: the first server's directory of the local system in --system-dir)."`
	SystemDir   string         `name:"system-dir" placeholder:"DIR" help:"Directory of a system started by 'launcher local' on this host: its servers' CPU time is reported (default: the launcher's default directory, if a system runs there)."`
	JSON        bool           `short:"j" help:"Print the rows as JSON."`
	Summarize   []string       `placeholder:"FILE,..." help:"Instead of running: read the --json output of repeated runs from FILEs and print each case's median and range."`
	CPUProfile  string         `name:"cpuprofile" hidden:"" placeholder:"FILE" help:"Write a CPU profile of the run to FILE (go tool pprof bin/daos_perf FILE)."`
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	var c cmdLine
	if _, rc, ok := cli.Parse("daos_perf", "Measure GoDAOS object I/O (through daos_agent).", &c, args, stdout, stderr); !ok {
		return rc
	}
	if len(c.Summarize) > 0 {
		return summarize(c.Summarize, c.JSON, stdout, stderr)
	}
	if c.Pool == "" {
		fmt.Fprintln(stderr, "daos_perf: give the pool to run in (--pool), or --summarize FILEs")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cl, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		fmt.Fprintln(stderr, "daos_perf:", err)
		return 1
	}
	defer cl.Fini()
	cfg := daosperf.Config{Pool: c.Pool, Cont: c.Cont, Class: c.Class, Size: int(c.Size), Count: c.Count, Concurrency: c.Concurrency,
		Phases: c.Phases, Random: c.Random, Verify: c.Verify, Raw: !c.NoRaw}
	if c.Between != "" {
		cfg.Between = func(after string) error {
			cmd := exec.CommandContext(ctx, "sh", "-c", c.Between)
			cmd.Stdout, cmd.Stderr = stderr, stderr // the table stays on stdout
			cmd.Env = append(os.Environ(), "DAOS_PERF_AFTER="+after)
			return cmd.Run()
		}
	}
	if !c.JSON {
		cfg.Progress = stderr
	}
	pids, serverDir := localSystem(c.SystemDir, c.SystemDir != "", stderr)
	cfg.ServerPIDs = pids
	if !c.NoRaw {
		cfg.RawDir = c.RawDir
		if cfg.RawDir == "" {
			cfg.RawDir = serverDir
		}
	}
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "daos_perf: cpu profile:", err)
			return 1
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	rows, err := daosperf.Run(ctx, cl, cfg)
	if c.JSON {
		json.NewEncoder(stdout).Encode(rows)
	} else {
		daosperf.WriteText(stdout, rows)
	}
	if err != nil {
		fmt.Fprintln(stderr, "daos_perf:", err)
		return 1
	}
	return 0
}

// localSystem finds the servers of a local system in dir (the launcher's
// default directory when not given): their PIDs and the first server's
// directory, which holds its storage. With no system there, it returns
// nothing, saying so only if dir was given.
func localSystem(dir string, given bool, stderr io.Writer) ([]int, string) {
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "godaos-local")
	}
	st, err := launcher.ReadState(dir)
	if err != nil || st.Mode != "" || len(st.Dirs) == 0 {
		if given {
			fmt.Fprintf(stderr, "daos_perf: no local system in %s (%v): servers' CPU time and the raw file baseline are not measured\n", dir, err)
		}
		return nil, ""
	}
	for _, pid := range st.PIDs {
		if syscall.Kill(pid, 0) != nil {
			if given {
				fmt.Fprintf(stderr, "daos_perf: the system in %s is not running (server PID %d)\n", dir, pid)
			}
			return nil, ""
		}
	}
	return st.PIDs, st.Dirs[0]
}

// summarize prints the median and range of each case over the runs whose
// --json output files hold.
func summarize(files []string, asJSON bool, stdout, stderr io.Writer) int {
	var rows []daosperf.Row
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, "daos_perf:", err)
			return 1
		}
		dec := json.NewDecoder(f)
		for {
			var rs []daosperf.Row
			if err := dec.Decode(&rs); err == io.EOF {
				break
			} else if err != nil {
				f.Close()
				fmt.Fprintf(stderr, "daos_perf: %s: not daos_perf --json output: %v\n", name, err)
				return 1
			}
			rows = append(rows, rs...)
		}
		f.Close()
	}
	sums := daosperf.Summarize(rows)
	if asJSON {
		json.NewEncoder(stdout).Encode(sums)
		return 0
	}
	daosperf.WriteSummary(stdout, sums)
	return 0
}
