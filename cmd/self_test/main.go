// Command self_test measures GoDAOS's data-plane RPC transport on loopback, in
// the spirit of DAOS's CaRT self_test: round-trip latency and rates per message
// size and number of RPCs in flight, each bulk size beside a raw Go TCP stream
// measured in the same run.
//
//	self_test --message-sizes 0,4K,1M --max-inflight-rpcs 1,64
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/godaos/godaos/internal/rpc/rpcperf"
	"github.com/godaos/godaos/internal/units"
)

type cli struct {
	MessageSizes    []units.ByteSize `default:"0,1M" sep:"," help:"Bulk bytes per RPC (0: an empty RPC)."`
	MaxInflightRpcs []int            `name:"max-inflight-rpcs" default:"1,64" sep:"," help:"RPCs in flight at once; a list runs each."`
	Repetitions     int              `placeholder:"N" help:"RPCs per case (default: 20000, or 2000 for 1 MiB and larger)."`
	Rounds          int              `default:"4" help:"Alternate RPC and raw TCP blocks this many times."`
	JSON            bool             `short:"j" help:"Print the rows as JSON."`
}

func main() {
	var c cli
	kong.Parse(&c, kong.Name("self_test"),
		kong.Description("Measure the data-plane RPC transport on loopback beside a raw TCP stream."),
		kong.UsageOnError())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := rpcperf.Config{Inflight: c.MaxInflightRpcs, Count: c.Repetitions, Rounds: c.Rounds}
	for _, s := range c.MessageSizes {
		cfg.Sizes = append(cfg.Sizes, int(s))
	}
	rows, err := rpcperf.Run(ctx, cfg)
	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rows)
	} else {
		rpcperf.WriteText(os.Stdout, rows)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "self_test:", err)
		os.Exit(1)
	}
}
