// Command daos_perf measures object I/O through the client API and the
// engines, beside a raw TCP stream of the same size measured in the same run:
//
//	daos_perf --pool tank --class SX --size 1M --count 2000 --concurrency 8 --verify
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/daosperf"
	"github.com/godaos/godaos/internal/cli"
	"github.com/godaos/godaos/internal/units"
)

type cmdLine struct {
	Pool        string         `short:"P" required:"" help:"Pool label or UUID."`
	Cont        string         `help:"Container (default: one made for the run and destroyed after)."`
	Class       string         `short:"c" default:"SX" help:"Object class: S1, S2, ..., SX."`
	Size        units.ByteSize `short:"s" default:"4K" help:"Bytes per operation, e.g. 64, 4K, 1M."`
	Count       int            `short:"n" default:"10000" help:"Operations per phase."`
	Concurrency int            `short:"C" default:"16" help:"Operations in flight."`
	Phases      []string       `short:"R" default:"update,fetch" help:"Phases, in order: update, fetch."`
	Random      bool           `help:"Visit the keys in a random order."`
	Verify      bool           `short:"v" help:"Check every byte fetched against what was written."`
	NoRaw       bool           `name:"no-raw" help:"Do not measure the raw TCP stream beside."`
	JSON        bool           `short:"j" help:"Print the rows as JSON."`
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	var c cmdLine
	if _, rc, ok := cli.Parse("daos_perf", "Measure GoDAOS object I/O (through daos_agent).", &c, args, stdout, stderr); !ok {
		return rc
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
	if !c.JSON {
		cfg.Progress = stderr
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
