// Command launcher starts and stops GoDAOS systems.
//
//	launcher local -n 3 [--targets 4] [--dir DIR]   # 3 daos_server processes on this host
//	launcher stop [--dir DIR]
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/godaos/godaos/launcher"
)

type localCmd struct {
	N        int    `short:"n" default:"3" help:"Servers to start (one engine each)."`
	Targets  int    `default:"4" help:"Targets per engine."`
	Dir      string `default:"${default_dir}" help:"Directory for the servers' storage, configs and logs."`
	Port     int    `default:"10001" help:"Control port of server 0; server i uses port+10*i (and the next three ports)."`
	Replicas int    `help:"Management service replicas (default: 3 with 3 or more servers, else 1)."`
	Bin      string `placeholder:"PATH" help:"daos_server binary (default: next to launcher, else in PATH)."`
}

type stopCmd struct {
	Dir string `default:"${default_dir}" help:"Directory the system was started in."`
}

type cli struct {
	Local localCmd `cmd:"" help:"Start a system of daos_server processes on this host and wait until every rank has joined."`
	Stop  stopCmd  `cmd:"" help:"Stop a system started with 'launcher local'."`
}

func main() {
	var c cli
	dir := filepath.Join(os.TempDir(), "godaos-local")
	kctx := kong.Parse(&c, kong.Name("launcher"), kong.Description("Start and stop GoDAOS systems."),
		kong.Vars{"default_dir": dir}, kong.UsageOnError())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch kctx.Command() {
	case "local":
		o := c.Local
		s, err := launcher.StartLocal(ctx, launcher.LocalOptions{N: o.N, Targets: o.Targets, Dir: o.Dir, BasePort: o.Port, Replicas: o.Replicas, Bin: o.Bin})
		if err != nil {
			fmt.Fprintln(os.Stderr, "launcher:", err)
			os.Exit(1)
		}
		fmt.Printf("%d servers up, every rank joined (logs and data in %s).\n", o.N, s.Dir)
		fmt.Printf("Use: dmg -l %s system query\n", strings.Join(s.HostList, ","))
		fmt.Printf("Stop: launcher stop --dir %s\n", s.Dir)
	case "stop":
		if err := launcher.StopDir(c.Stop.Dir); err != nil {
			fmt.Fprintln(os.Stderr, "launcher:", err)
			os.Exit(1)
		}
		fmt.Println("stopped")
	}
}
