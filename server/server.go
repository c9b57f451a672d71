// Package server is daos_server: it reads the configuration, runs the engines it
// describes (one rank each), runs a management service replica when it is one of
// mgmt_svc_replicas, answers the control plane (gRPC on `port`: dmg and other
// servers), joins its engines to the system, serves Prometheus metrics, and
// stops all of it cleanly. Engines wait for their storage to be formatted
// (dmg storage format, or --auto-format) and can be stopped and started again
// while the server runs (dmg system stop|start).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security/auth"
	"github.com/godaos/godaos/internal/telemetry"
	"github.com/godaos/godaos/server/mgmt"
	"github.com/godaos/godaos/server/rebuild"
	"github.com/godaos/godaos/server/swim"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/config"
)

// A Server is a running daos_server.
type Server struct {
	cfg      *config.Server
	log      *slog.Logger
	engines  []*runningEngine
	wg       sync.WaitGroup
	replicas []string      // control addresses of the MS replicas
	ms       *mgmt.Service // this server's replica, if it is one
	ctl      *ctlService
	grpc     *grpc.Server
	ctlAddr  string
	joinCtx  context.Context // ends when the server stops
	stopJoin context.CancelFunc

	transport *transport
	verifier  *auth.Verifier
	telemetry *telemetry.Server
	swim      swimState        // failure detection (swim.go)
	rebuild   *rebuild.Manager // on MS replicas: the pools' rebuilds, run while leading
}

// Options shape a server's start.
type Options struct {
	Logger *slog.Logger
	// AutoFormat formats unformatted storage at start instead of waiting for
	// 'dmg storage format' (daos_server start --auto-format; the embedded default).
	AutoFormat bool
	// AggregationInterval and AggregationLag pace the background aggregation
	// the management service leader runs (0: the defaults; tests shorten them).
	AggregationInterval, AggregationLag time.Duration
	// SwimTimeouts pace SWIM failure detection between engines (nil: the
	// defaults, or swim.FastTimeouts with GODAOS_SWIM_FAST=1; tests).
	SwimTimeouts *swim.Timeouts
}

// Start validates cfg and starts the control service and the engines whose
// storage is formatted (formatting it first with AutoFormat). On error
// nothing is left running.
func Start(cfg *config.Server, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.Validate(true); err != nil {
		return nil, err
	}
	tr, err := loadTransport(cfg, log)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, transport: tr, verifier: tr.verifier}
	s.ctl = &ctlService{s: s, conns: map[string]*grpc.ClientConn{}, engines: rpc.NewClientCache(rpc.ClientOptions{Logger: log})}
	s.joinCtx, s.stopJoin = context.WithCancel(context.Background())
	s.initSwim(opts)
	for i := range cfg.Engines {
		re, err := s.engineSlot(i)
		if err != nil {
			s.Shutdown(context.Background())
			return nil, err
		}
		s.engines = append(s.engines, re)
		if re.state == engineUnformatted && opts.AutoFormat {
			if _, err := s.format(re, false); err != nil {
				s.Shutdown(context.Background())
				return nil, err
			}
		}
	}
	// The control service (and the management service replica) first: the
	// engines serve clients' pool-service calls, which need it.
	if err := s.startControl(); err != nil {
		s.Shutdown(context.Background())
		return nil, err
	}
	for _, re := range s.engines {
		if re.stateNow() == engineUnformatted {
			log.Warn("storage is not formatted: the engine waits for 'dmg storage format'", "engine", re.idx, "scm", re.scm, "bdev", re.bdev)
			continue
		}
		if err := s.runEngine(re); err != nil {
			s.Shutdown(context.Background())
			return nil, err
		}
	}
	if err := s.startTelemetry(); err != nil {
		s.Shutdown(context.Background())
		return nil, err
	}
	s.startSwimLoops()
	for _, re := range s.engines {
		if re.engine() != nil {
			s.joinAsync(re)
		}
	}
	if s.ms != nil {
		interval, lag, err := aggregationPace(opts)
		if err != nil {
			log.Error("aggregation pace: the defaults are used", "err", err)
			interval, lag = DefaultAggregationInterval, DefaultAggregationLag
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.aggregateLoop(s.joinCtx, interval, lag)
		}()
		s.rebuild = rebuild.New(rebuildSystem{s.ctl}, log.With("component", "rebuild"))
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.rebuild.Run(s.joinCtx, rebuildInterval)
		}()
	}
	return s, nil
}

// startTelemetry serves Prometheus metrics on telemetry_port (all interfaces,
// as DAOS's engines do).
func (s *Server) startTelemetry() error {
	reg := telemetry.NewRegistry()
	reg.MustRegister(metrics{s})
	t, err := telemetry.Serve(net.JoinHostPort("", strconv.Itoa(s.cfg.TelemetryPort)), reg, s.log)
	if err != nil {
		return &config.Error{Key: "telemetry_port", Msg: err.Error(), Resolution: "another process uses the port: choose another telemetry_port"}
	}
	s.telemetry = t
	s.log.Info("telemetry started", "metrics", "http://"+t.Addr()+"/metrics")
	return nil
}

// joinAsync joins a started engine in the background, retrying until it
// succeeds or the server stops.
func (s *Server) joinAsync(re *runningEngine) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.join(s.joinCtx, re)
	}()
}

// startControl starts the management service replica (if this server is one)
// and the control service.
func (s *Server) startControl() error {
	cfg := s.cfg
	self := ""
	for i, r := range cfg.MgmtSvcReplicas {
		host, port, err := config.SplitHostPort(r, cfg.Port)
		if err != nil {
			return &config.Error{Key: fmt.Sprintf("mgmt_svc_replicas[%d]", i), Msg: err.Error()}
		}
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		s.replicas = append(s.replicas, addr)
		if port == cfg.Port && isLocal(host) {
			self = host
		}
	}
	if self != "" {
		dir := cfg.ControlMetadata.Path
		if dir == "" {
			dir = filepath.Join(filepath.Dir(cfg.Engines[0].Storage[0].ScmMount), "control_meta")
		}
		var raftAddrs []string
		for _, r := range s.replicas {
			h, p, _ := net.SplitHostPort(r)
			n, _ := strconv.Atoi(p)
			raftAddrs = append(raftAddrs, raftAddr(h, n))
		}
		ms, err := mgmt.Start(mgmt.Options{Addr: raftAddr(self, cfg.Port), Replicas: raftAddrs, Dir: dir, Logger: s.log,
			ServerTLS: s.transport.serverTLS, ClientTLS: s.transport.clientTLS})
		if err != nil {
			return daoserr.Context(err, "start the management service (its Raft port is port+1 = %d)", cfg.Port+1)
		}
		s.ms = ms
		s.log.Info("management service replica started", "raft", raftAddr(self, cfg.Port), "replicas", s.replicas, "db", dir)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.Port)))
	if err != nil {
		return &config.Error{Key: "port", Msg: fmt.Sprintf("cannot listen on control port %d: %v", cfg.Port, errors.Unwrap(errors.Unwrap(err))),
			Resolution: "another process (another daos_server?) uses the port: stop it or choose another port"}
	}
	s.ctlAddr = net.JoinHostPort(localHost(self, s.replicas), strconv.Itoa(cfg.Port))
	s.grpc = grpc.NewServer(s.transport.grpcOptions()...)
	ctlpb.RegisterCtlServer(s.grpc, s.ctl)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.grpc.Serve(l)
	}()
	s.log.Info("control service started", "listen", l.Addr().String())
	return nil
}

// isLocal reports whether host names this machine.
func isLocal(host string) bool {
	if host == "localhost" {
		return true
	}
	if h, _ := os.Hostname(); h != "" && h == host {
		return true
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return false
	}
	addrs, _ := net.InterfaceAddrs()
	for _, ip := range ips {
		if ip.IsLoopback() {
			return true
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return true
			}
		}
	}
	return false
}

// localHost is the host other servers reach this one's control service at:
// its name in mgmt_svc_replicas if it is a replica, else the local address
// it would use to reach the first replica (no packet is sent: a UDP
// "connection" only picks the route).
func localHost(replicaHost string, replicas []string) string {
	if replicaHost != "" {
		return replicaHost
	}
	for _, r := range replicas {
		if c, err := net.Dial("udp", r); err == nil {
			ip := c.LocalAddr().(*net.UDPAddr).IP
			c.Close()
			return ip.String()
		}
	}
	return "127.0.0.1"
}

// join registers an engine with the management service, retrying until it
// succeeds or the server stops.
func (s *Server) join(ctx context.Context, re *runningEngine) {
	uuid, err := engineUUID(re.scm)
	if err != nil {
		s.log.Error("engine identity", "engine", re.idx, "err", err)
		return
	}
	fd := s.cfg.FaultPath
	if fd == "" {
		h, _ := os.Hostname()
		fd = "/" + h
	}
	re.mu.Lock()
	addr := re.addr
	re.mu.Unlock()
	m := &ctlpb.Member{Uuid: uuid, ControlAddr: s.ctlAddr, FabricAddr: addr, FaultDomain: fd, Targets: uint32(s.cfg.Engines[re.idx].Targets)}
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := s.ctl.Join(cctx, &ctlpb.JoinReq{Member: m})
		cancel()
		if err == nil {
			err = ctlclient.ToError(resp.Error)
		}
		if err == nil {
			re.mu.Lock()
			re.rank = int64(resp.Member.Rank)
			if re.eng != nil {
				re.eng.SetRank(resp.Member.Rank)
			}
			re.mu.Unlock()
			s.log.Info("engine joined the system", "engine", re.idx, "rank", resp.Member.Rank, "incarnation", resp.Member.Incarnation)
			s.swimStart(re, resp.Member)
			return
		}
		s.log.Debug("join: retrying", "engine", re.idx, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Ranks lists the engines' ranks (-1 for one not joined yet), by index.
func (s *Server) Ranks() []int64 {
	var out []int64
	for _, re := range s.engines {
		re.mu.Lock()
		out = append(out, re.rank)
		re.mu.Unlock()
	}
	return out
}

// ControlAddr is the control service's address.
func (s *Server) ControlAddr() string { return s.ctlAddr }

// EngineAddrs lists the data-plane address of each engine, by index.
func (s *Server) EngineAddrs() []string {
	var out []string
	for _, re := range s.engines {
		re.mu.Lock()
		out = append(out, re.addr)
		re.mu.Unlock()
	}
	return out
}

// Shutdown stops every engine: no new requests, in-flight ones finish, targets
// close. It returns when all are stopped (or ctx ends, with ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	if s.stopJoin != nil {
		s.stopJoin()
	}
	if s.grpc != nil {
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			s.grpc.Stop()
		}
	}
	for _, re := range s.engines {
		if err := s.stopEngine(ctx, re); err != nil {
			errs = append(errs, fmt.Errorf("engine %d: %w", re.idx, err))
		}
	}
	if s.telemetry != nil {
		if err := s.telemetry.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: %w", err))
		}
	}
	s.wg.Wait()
	s.engines = nil
	s.ctl.close()
	if s.ms != nil {
		if err := s.ms.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("management service: %w", err))
		}
		s.ms = nil
	}
	return errors.Join(errs...)
}
