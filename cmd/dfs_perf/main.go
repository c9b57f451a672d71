// Command dfs_perf measures a POSIX namespace as IOR (--mode io) and mdtest
// (--mode md) do, with several processes (ranks), through DFS directly
// (--api dfs) or through a directory (--api posix: a dfuse mount, the same
// under LD_PRELOAD=libpil4dfs.so, or a local file system for the baseline):
//
//	dfs_perf --mode io --api dfs --pool tank --cont fs --ranks 2 --size 1G --xfer 1M --verify
//	dfs_perf --mode io --api posix --dir /mnt/fs --ranks 2 --size 1G --xfer 1M
//	dfs_perf --mode md --api dfs --pool tank --cont fs --ranks 2 --files 10000
//	dfs_perf --mode md --api posix --dir /tmp --ranks 2 --files 10000
//
// It works in a directory dfs_perf-PID of its own under --dir (or the
// container's root), which it leaves empty.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/godaos/godaos/daos/dfsperf"
	"github.com/godaos/godaos/internal/cli"
	"github.com/godaos/godaos/internal/units"
)

type cmdLine struct {
	Mode   string         `default:"io" enum:"io,md" help:"io: write then read a file per rank (IOR); md: create, stat, remove files (mdtest)."`
	API    string         `default:"posix" enum:"dfs,posix" help:"dfs: the DFS library in each rank; posix: system calls on --dir."`
	Pool   string         `short:"P" help:"Pool (api dfs)."`
	Cont   string         `help:"POSIX container (api dfs)."`
	Dir    string         `help:"Directory to work in (api posix), or a path in the container (api dfs)."`
	Ranks  int            `short:"n" default:"2" help:"Processes."`
	Size   units.ByteSize `short:"s" default:"256M" help:"io: bytes each rank writes and reads."`
	Xfer   units.ByteSize `short:"t" default:"1M" help:"io: bytes per write and read."`
	Files  int            `short:"f" default:"5000" help:"md: files each rank creates."`
	Verify bool           `short:"v" help:"io: check every byte read."`
	JSON   bool           `short:"j" help:"Print the rows as JSON."`
	Rank   int            `hidden:"" default:"-1"`
	Top    string         `hidden:""`
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	var c cmdLine
	if _, rc, ok := cli.Parse("dfs_perf", "Measure a GoDAOS POSIX namespace (IOR and mdtest alike).", &c, args, stdout, stderr); !ok {
		return rc
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := dfsperf.Config{Mode: c.Mode, API: c.API, Pool: c.Pool, Cont: c.Cont, Dir: c.Dir, Ranks: c.Ranks,
		FileSize: int64(c.Size), Xfer: int(c.Xfer), Files: c.Files, Verify: c.Verify}
	if c.Rank >= 0 {
		if err := dfsperf.RunRank(ctx, cfg, c.Rank, c.Top, os.Stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "dfs_perf: rank", c.Rank, err)
			return 1
		}
		return 0
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "dfs_perf:", err)
		return 1
	}
	res, err := dfsperf.Run(ctx, cfg, self, args)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if c.JSON {
		enc := json.NewEncoder(stdout)
		for _, r := range res {
			enc.Encode(r)
		}
		return 0
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "phase\tapi\tranks\tops\tops/s\tMiB/s\tseconds\t")
	for _, r := range res {
		mib := "-"
		if r.MiBPerS > 0 {
			mib = fmt.Sprintf("%.0f", r.MiBPerS)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%.0f\t%s\t%.2f\t\n", r.Phase, r.API, r.Ranks, r.Ops, r.OpsPerS, mib, r.Seconds)
	}
	w.Flush()
	return 0
}
