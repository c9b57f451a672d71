// Package server is daos_server: it reads the configuration, runs the engines it
// describes (one rank each) and stops them cleanly.
//
// What is here so far is the data plane: each engine opens its storage and
// serves its targets on fabric_iface:fabric_iface_port. The control service
// (dmg, storage format, the management service and ranks from it) comes next;
// until then a server creates its storage directories itself and engines take
// their index in the file as their rank.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/config"
	"github.com/godaos/godaos/server/engine"
)

// A Server is a running daos_server.
type Server struct {
	cfg     *config.Server
	log     *slog.Logger
	engines []*runningEngine
	wg      sync.WaitGroup
}

type runningEngine struct {
	idx  int
	eng  *engine.Engine
	l    net.Listener
	addr string
}

// Start validates cfg and starts its engines. On error nothing is left running.
func Start(cfg *config.Server, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.Validate(true); err != nil {
		return nil, err
	}
	if cfg.TransportConfig.AllowInsecure {
		log.Warn("transport_config.allow_insecure is true: the control plane is not authenticated (development only)")
	}
	s := &Server{cfg: cfg, log: log}
	for i := range cfg.Engines {
		re, err := s.startEngine(i)
		if err != nil {
			s.Shutdown(context.Background())
			return nil, err
		}
		s.engines = append(s.engines, re)
	}
	return s, nil
}

func (s *Server) startEngine(i int) (*runningEngine, error) {
	ec := s.cfg.Engines[i]
	key := fmt.Sprintf("engines[%d]", i)
	scm := ec.Storage[0]
	var bdevDir string
	for t, tier := range ec.Storage[1:] {
		tk := fmt.Sprintf("%s.storage[%d]", key, t+1)
		if tier.Class != config.ClassFile {
			return nil, &config.Error{Key: tk + ".class", Msg: fmt.Sprintf("class %s is not supported by this daos_server yet", tier.Class), Resolution: "use class: file"}
		}
		if len(tier.BdevList) != 1 || bdevDir != "" {
			return nil, &config.Error{Key: tk + ".bdev_list", Msg: "this daos_server uses exactly one bdev_list entry per engine", Resolution: "list one path: the directory that holds the engine's data files"}
		}
		bdevDir = tier.BdevList[0]
	}
	if bdevDir == "" {
		return nil, &config.Error{Key: key + ".storage", Msg: "no bdev tier", Resolution: "add a tier with class: file and a bdev_list directory"}
	}
	ip, err := config.InterfaceAddr(ec.FabricIface)
	if err != nil {
		return nil, &config.Error{Key: key + ".fabric_iface", Msg: err.Error()}
	}
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(ec.FabricIfacePort))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &config.Error{Key: key + ".fabric_iface_port", Msg: fmt.Sprintf("cannot listen on %s: %v", addr, errors.Unwrap(errors.Unwrap(err))),
			Resolution: "another process (another daos_server?) uses the port: stop it or choose another fabric_iface_port"}
	}
	log := s.log.With("engine", i)
	eng, err := engine.Open(engine.Options{Rank: uint32(i), Targets: ec.Targets, ScmDir: scm.ScmMount, BdevDir: bdevDir,
		WorkersPerTarget: max(2, ec.NrXsHelpers), Logger: log})
	if err != nil {
		l.Close()
		return nil, daoserr.Context(err, "start engine %d", i)
	}
	re := &runningEngine{idx: i, eng: eng, l: l, addr: l.Addr().String()}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := eng.Serve(l); err != nil {
			log.Error("engine stopped serving", "err", err)
		}
	}()
	log.Info("engine started", "rank", i, "targets", ec.Targets, "listen", re.addr, "scm", scm.ScmMount, "bdev", bdevDir, "pools", len(eng.Pools()))
	return re, nil
}

// EngineAddrs lists the data-plane address of each engine, by index.
func (s *Server) EngineAddrs() []string {
	var out []string
	for _, re := range s.engines {
		out = append(out, re.addr)
	}
	return out
}

// Shutdown stops every engine: no new requests, in-flight ones finish, targets
// close. It returns when all are stopped (or ctx ends, with ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, re := range s.engines {
		if err := re.eng.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("engine %d: %w", re.idx, err))
		}
	}
	s.wg.Wait()
	s.engines = nil
	return errors.Join(errs...)
}
