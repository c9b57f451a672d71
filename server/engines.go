package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/config"
	"github.com/godaos/godaos/server/engine"
	"github.com/godaos/godaos/server/swim"
)

// An engine slot goes through these states: its storage is unformatted until
// `dmg storage format` (or --auto-format) formats it; then it runs, until
// `dmg system stop` stops it (the server keeps answering the control plane,
// and `dmg system start` runs it again).
const (
	engineUnformatted = "unformatted"
	engineRunning     = "running"
	engineStopping    = "stopping" // draining: the slot's lock is not held meanwhile
	engineStopped     = "stopped"
)

// superblockName marks a formatted SCM mount.
const superblockName = "superblock"

// superblock is what format writes: which system and engine the storage is.
type superblock struct {
	Version   int       `json:"version"`
	System    string    `json:"system"`
	Engine    int       `json:"engine"`
	Formatted time.Time `json:"formatted"`
}

// runningEngine is one engine slot of the configuration.
type runningEngine struct {
	idx        int
	scm, bdev  string
	listenAddr string // configured fabric address

	mu     sync.Mutex
	state  string
	eng    *engine.Engine // nil unless running
	l      net.Listener
	addr   string        // the address it serves on (listenAddr with the port resolved)
	served chan struct{} // closed when Serve returns
	rank   int64         // from the management service; -1 until joined
	sw     *swim.Member  // its SWIM member once joined (swim.go); nil when not running
}

func (re *runningEngine) engine() *engine.Engine {
	re.mu.Lock()
	defer re.mu.Unlock()
	return re.eng
}

func (re *runningEngine) stateNow() string {
	re.mu.Lock()
	defer re.mu.Unlock()
	return re.state
}

// engineSlot checks engine i's configuration for what this daos_server
// supports and prepares its slot.
func (s *Server) engineSlot(i int) (*runningEngine, error) {
	ec := s.cfg.Engines[i]
	key := fmt.Sprintf("engines[%d]", i)
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
	re := &runningEngine{idx: i, scm: ec.Storage[0].ScmMount, bdev: bdevDir, rank: -1, state: engineUnformatted,
		listenAddr: net.JoinHostPort(ip.String(), strconv.Itoa(ec.FabricIfacePort))}
	re.addr = re.listenAddr
	if re.formatted() {
		re.state = engineStopped
	}
	return re, nil
}

// formatted reports whether the slot's SCM mount holds formatted storage (a
// superblock, or the engine identity of storage formatted before superblocks).
func (re *runningEngine) formatted() bool {
	for _, f := range []string{superblockName, "engine.uuid"} {
		if _, err := os.Stat(filepath.Join(re.scm, f)); err == nil {
			return true
		}
	}
	return false
}

// format creates the slot's SCM and bdev directories and stamps them; with
// wipe it first removes everything in them (pools and the engine's identity:
// it joins as a new rank). The engine must not be running.
func (s *Server) format(re *runningEngine, wipe bool) ([]string, error) {
	re.mu.Lock()
	defer re.mu.Unlock()
	if re.state == engineRunning || re.state == engineStopping {
		return nil, daoserr.Newf(daoserr.Busy, "engine %d (rank %d) is %s on this storage", re.idx, re.rank, re.state).
			WithResolution("stop it first (dmg system stop --ranks %d) and wait until it has stopped", re.rank)
	}
	wiped := false
	defer func() {
		if wiped && re.state != engineStopped {
			re.state = engineUnformatted // wiped but not stamped: not formatted any more
		}
	}()
	var done []string
	for _, dir := range []string{re.scm, re.bdev} {
		if wipe {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					return done, daoserr.Wrap(daoserr.IO, err, "wipe %s", dir)
				}
			}
			wiped = true
			done = append(done, "wiped "+dir)
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return done, daoserr.Wrap(daoserr.IO, err, "format engine %d", re.idx).WithResolution("check that the parent of %s is writable", dir)
		}
	}
	sb, _ := json.MarshalIndent(superblock{Version: 1, System: s.cfg.Name, Engine: re.idx, Formatted: time.Now().UTC()}, "", "  ")
	if err := writeFileSync(filepath.Join(re.scm, superblockName), append(sb, '\n')); err != nil {
		return done, daoserr.Wrap(daoserr.IO, err, "format engine %d: superblock", re.idx)
	}
	re.state = engineStopped
	s.log.Info("storage formatted", "engine", re.idx, "scm", re.scm, "bdev", re.bdev, "wiped", wipe)
	return append(done, "formatted "+re.scm, "formatted "+re.bdev), nil
}

// writeFileSync writes a small file durably (write, fsync, rename, fsync dir).
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// runEngine opens a formatted slot's engine and serves it. The caller joins it
// to the system.
func (s *Server) runEngine(re *runningEngine) error {
	re.mu.Lock()
	defer re.mu.Unlock()
	switch re.state {
	case engineRunning:
		return nil
	case engineStopping:
		return daoserr.Newf(daoserr.Busy, "engine %d is still stopping", re.idx).WithResolution("retry in a moment")
	case engineUnformatted:
		return daoserr.Newf(daoserr.Uninit, "engine %d: storage at %s is not formatted", re.idx, re.scm).
			WithResolution("run 'dmg storage format' (or start daos_server with --auto-format)")
	}
	ec := s.cfg.Engines[re.idx]
	key := fmt.Sprintf("engines[%d]", re.idx)
	l, err := net.Listen("tcp", re.listenAddr)
	if err != nil {
		return &config.Error{Key: key + ".fabric_iface_port", Msg: fmt.Sprintf("cannot listen on %s: %v", re.listenAddr, errors.Unwrap(errors.Unwrap(err))),
			Resolution: "another process (another daos_server?) uses the port: stop it or choose another fabric_iface_port"}
	}
	log := s.log.With("engine", re.idx)
	eng, err := engine.Open(engine.Options{Rank: uint32(re.idx), Targets: ec.Targets, ScmDir: re.scm, BdevDir: re.bdev,
		WorkersPerTarget: max(2, ec.NrXsHelpers), Logger: log, ClientOps: s.ctl.clientOps(), Caps: s.transport.capVerifier(),
		Seal: s.transport.seal, PoolMap: s.ctl.poolMapFor})
	if err != nil {
		l.Close()
		return daoserr.Context(err, "start engine %d", re.idx)
	}
	re.eng, re.l, re.addr, re.state, re.served = eng, l, l.Addr().String(), engineRunning, make(chan struct{})
	served := re.served
	go func() {
		defer close(served)
		if err := eng.Serve(l); err != nil {
			log.Error("engine stopped serving", "err", err)
		}
	}()
	log.Info("engine started", "targets", ec.Targets, "listen", re.addr, "scm", re.scm, "bdev", re.bdev, "pools", len(eng.Pools()))
	return nil
}

// stopEngine stops a running engine: no new requests, in-flight ones finish,
// targets close. The slot's lock is not held while it drains, so queries of
// this and the other engines (dmg, metrics) are answered meanwhile.
func (s *Server) stopEngine(ctx context.Context, re *runningEngine) error {
	re.mu.Lock()
	if re.state != engineRunning {
		re.mu.Unlock()
		return nil
	}
	eng, served, sw := re.eng, re.served, re.sw
	re.eng, re.l, re.state, re.sw = nil, nil, engineStopping, nil
	re.mu.Unlock()
	s.swimStop(re, sw) // a clean leave first: the other ranks must not take it for dead

	err := eng.Shutdown(ctx)
	select {
	case <-served:
	case <-ctx.Done():
	}
	re.mu.Lock()
	re.state = engineStopped
	re.mu.Unlock()
	s.log.Info("engine stopped", "engine", re.idx, "rank", re.rank)
	return err
}

// engineByRank finds the slot of a joined rank.
func (s *Server) engineByRank(rank uint32) (*runningEngine, error) {
	for _, re := range s.engines {
		re.mu.Lock()
		r := re.rank
		re.mu.Unlock()
		if r == int64(rank) {
			return re, nil
		}
	}
	return nil, daoserr.Newf(daoserr.Nonexist, "rank %d is not served by %s", rank, s.ctlAddr)
}
