// Command daos_agent runs on each client node: applications ask it, on its
// unix socket, for a signed credential and for the system's attach info.
//
//	daos_agent start [-o daos_agent.yml] [--insecure -l HOST:PORT]
//	daos_agent dump-attachinfo [-o daos_agent.yml]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/godaos/godaos/agent"
	"github.com/godaos/godaos/internal/cli"
)

type common struct {
	Config   string   `short:"o" name:"config" placeholder:"FILE" help:"Agent configuration (daos_agent.yml). Default /etc/daos/daos_agent.yml if present."`
	Insecure bool     `help:"With no configuration: run without certificates (unsigned credentials; servers must run with allow_insecure)."`
	Access   []string `short:"l" name:"access-points" placeholder:"HOST:PORT" help:"Servers to ask for attach info (with no configuration)."`
	Runtime  string   `name:"runtime-dir" placeholder:"DIR" help:"Directory of the socket (default $DAOS_AGENT_DRPC_DIR or /var/run/daos_agent)."`
}

type cmdLine struct {
	Start      struct{ common } `cmd:"" default:"withargs" help:"Serve applications on the agent socket; SIGTERM or SIGINT stops it."`
	DumpAttach struct {
		common
		Pools []string `name:"pool" sep:"," placeholder:"POOL" help:"Also show these pools' maps."`
	} `cmd:"" name:"dump-attachinfo" help:"Ask the servers for the attach info the agent would serve, and print it."`
	Version struct{} `cmd:"" help:"Print the version."`
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	var c cmdLine
	kctx, rc, ok := cli.Parse("daos_agent", "GoDAOS client agent.", &c, args, stdout, stderr)
	if !ok {
		return rc
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "daos_agent:", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	switch kctx.Command() {
	case "start":
		cfg, err := c.Start.load()
		if err != nil {
			return fail(err)
		}
		if cfg.LogFile != "" {
			f, err := os.OpenFile(cfg.LogFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
			if err != nil {
				return fail(fmt.Errorf("log_file: %w (check that its directory exists and is writable)", err))
			}
			defer f.Close()
			log = slog.New(slog.NewTextHandler(f, nil))
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(sig)
		a, err := agent.Start(cfg, log)
		if err != nil {
			return fail(err)
		}
		got := <-sig
		log.Info("stopping", "signal", got.String())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.Shutdown(ctx)
		return 0
	case "dump-attachinfo":
		cfg, err := c.DumpAttach.load()
		if err != nil {
			return fail(err)
		}
		info, err := agent.FetchAttachInfo(context.Background(), cfg, c.DumpAttach.Pools...)
		if err != nil {
			return fail(err)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(info)
		return 0
	case "version":
		fmt.Fprintln(stdout, "daos_agent 0.1.0 (GoDAOS)")
	}
	return 0
}

func (c *common) load() (*agent.Config, error) {
	path := c.Config
	if path == "" && !c.Insecure {
		if _, err := os.Stat("/etc/daos/daos_agent.yml"); err == nil {
			path = "/etc/daos/daos_agent.yml"
		}
	}
	var cfg *agent.Config
	if path != "" {
		var err error
		if cfg, err = agent.LoadConfig(path); err != nil {
			return nil, err
		}
	} else {
		cfg = &agent.Config{}
		cfg.TransportConfig.AllowInsecure = c.Insecure
	}
	if len(c.Access) > 0 {
		cfg.AccessPoints = c.Access
	}
	if c.Runtime != "" {
		cfg.RuntimeDir = c.Runtime
	}
	return cfg, nil
}
