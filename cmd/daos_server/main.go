// Command daos_server runs a GoDAOS storage server: the engines of its
// configuration (server.yml, DAOS's keys), each serving its targets.
//
//	daos_server start [-o server.yml] [--auto-format]  # no file: the embedded default under $DAOS_DATA
//	daos_server config generate [-o FILE]   # a commented example configuration
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/godaos/godaos/internal/cli"
	"github.com/godaos/godaos/server"
	"github.com/godaos/godaos/server/config"
)

type startCmd struct {
	Config     string `short:"o" name:"config" placeholder:"FILE" help:"Server configuration (server.yml). Default: the embedded single-engine configuration with storage under $DAOS_DATA or ~/.local/share/godaos (formatted automatically)."`
	AutoFormat bool   `name:"auto-format" help:"Format unformatted storage at start instead of waiting for 'dmg storage format'."`
}

type generateCmd struct {
	Output  string   `short:"o" placeholder:"FILE" help:"Write to FILE instead of standard output."`
	DataDir string   `name:"data-dir" placeholder:"DIR" help:"Directory for storage and metadata (default: $DAOS_DATA or ~/.local/share/godaos)."`
	Engines int      `default:"1" help:"Engines (ranks) on this server."`
	Targets int      `default:"4" help:"Targets per engine."`
	Replica []string `name:"ms-replica" placeholder:"HOST:PORT" help:"Management service replicas (1, 3 or 5; default this host)."`
}

type cmdLine struct {
	Start  startCmd `cmd:"" help:"Start the server and its engines; SIGTERM or SIGINT stops it cleanly."`
	Config struct {
		Generate generateCmd `cmd:"" help:"Print a commented example configuration."`
	} `cmd:"" help:"Configuration tools."`
	Version struct{} `cmd:"" help:"Print the version."`
}

const version = "0.1.0 (GoDAOS)"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	var c cmdLine
	kctx, rc, ok := cli.Parse("daos_server", "GoDAOS storage server.", &c, args, stdout, stderr)
	if !ok {
		return rc
	}
	switch kctx.Command() {
	case "start":
		return c.Start.run(stderr)
	case "config generate":
		return c.Config.Generate.run(stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "daos_server", version)
		return 0
	}
	return 0
}

func (s *startCmd) run(stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	// Before anything starts: a SIGTERM during start-up must stop the server
	// cleanly too, not kill it with the default action.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	fail := func(err error) int {
		fmt.Fprintln(stderr, "daos_server:", err)
		return 1
	}
	var cfg *config.Server
	autoFormat := s.AutoFormat
	if s.Config != "" {
		var err error
		if cfg, err = config.Load(s.Config); err != nil {
			return fail(err)
		}
	} else {
		dir, err := config.DataDir()
		if err != nil {
			return fail(err)
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fail(fmt.Errorf("create %s for the default configuration: %w (set DAOS_DATA to a writable directory)", dir, err))
		}
		cfg = config.Default(dir)
		autoFormat = true // a development system in one command
		log.Info("no -o given: running the embedded default configuration", "data", dir)
	}
	srv, err := server.Start(cfg, server.Options{Logger: log, AutoFormat: autoFormat})
	if err != nil {
		return fail(err)
	}
	log.Info("daos_server started", "system", cfg.Name, "engines", srv.EngineAddrs())

	got := <-sig
	log.Info("stopping: draining requests in flight", "signal", got.String())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return fail(fmt.Errorf("stop: %w", err))
	}
	log.Info("daos_server stopped")
	return 0
}

func (g *generateCmd) run(stdout, stderr io.Writer) int {
	dir := g.DataDir
	if dir == "" {
		var err error
		if dir, err = config.DataDir(); err != nil {
			fmt.Fprintln(stderr, "daos_server:", err)
			return 1
		}
	}
	dir, _ = filepath.Abs(dir)
	b, err := config.Generate(config.GenerateOptions{DataDir: dir, Engines: g.Engines, Targets: g.Targets, Replicas: g.Replica})
	if err != nil {
		fmt.Fprintln(stderr, "daos_server:", err)
		return 1
	}
	if g.Output == "" {
		stdout.Write(b)
		return 0
	}
	if err := os.WriteFile(g.Output, b, 0o644); err != nil {
		fmt.Fprintln(stderr, "daos_server:", err)
		return 1
	}
	return 0
}
