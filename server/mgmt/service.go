package mgmt

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/godaos/godaos/internal/daoserr"
)

// Options start one management service replica.
type Options struct {
	// Addr is this replica's Raft address (host:port), also its Raft ID.
	Addr string
	// Replicas are the Raft addresses of all replicas, this one included
	// (from mgmt_svc_replicas): 1, 3 or 5.
	Replicas []string
	// Dir holds the Raft log, stable store and snapshots (control_metadata.path).
	Dir string
	// ServerTLS and ClientTLS carry Raft over mutual TLS with the servers'
	// certificates; nil (allow_insecure) means plain TCP.
	ServerTLS, ClientTLS *tls.Config
	// Fast shortens Raft's timeouts (tests); production uses Raft's defaults.
	Fast   bool
	Logger *slog.Logger
}

// A Service is one replica of the management service.
type Service struct {
	opts  Options
	log   *slog.Logger
	raft  *raft.Raft
	db    *db
	trans *raft.NetworkTransport
	store *raftboltdb.BoltStore

	barrierTerm atomic.Uint64 // the term in which consistent last ran a Barrier
}

const applyTimeout = 10 * time.Second

// Start opens (or creates) this replica's Raft state and joins the replica set;
// a new replica set bootstraps itself from Options.Replicas.
func Start(opts Options) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	switch len(opts.Replicas) {
	case 1, 3, 5:
	default:
		return nil, daoserr.Newf(daoserr.Inval, "management service: %d replicas", len(opts.Replicas)).WithResolution("list 1, 3 or 5 servers in mgmt_svc_replicas")
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, daoserr.Wrap(daoserr.IO, err, "management service: metadata directory")
	}
	s := &Service{opts: opts, log: opts.Logger.With("ms", opts.Addr), db: newDB()}
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(opts.Addr)
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{s.log}})
	conf.SnapshotThreshold = 1024
	if opts.Fast {
		conf.HeartbeatTimeout = 300 * time.Millisecond
		conf.ElectionTimeout = 300 * time.Millisecond
		conf.LeaderLeaseTimeout = 150 * time.Millisecond
		conf.CommitTimeout = 5 * time.Millisecond
	}
	var err error
	if s.store, err = raftboltdb.NewBoltStore(filepath.Join(opts.Dir, "raft.db")); err != nil {
		return nil, daoserr.Wrap(daoserr.IO, err, "management service: open %s", filepath.Join(opts.Dir, "raft.db")).
			WithResolution("is another daos_server using this control_metadata path?")
	}
	snaps, err := raft.NewFileSnapshotStore(opts.Dir, 2, io.Discard)
	if err != nil {
		s.store.Close()
		return nil, daoserr.Wrap(daoserr.IO, err, "management service: snapshot store")
	}
	addr, err := net.ResolveTCPAddr("tcp", opts.Addr)
	if err != nil {
		s.store.Close()
		return nil, daoserr.Wrap(daoserr.Inval, err, "management service address %q", opts.Addr)
	}
	if opts.ServerTLS != nil {
		var stream *tlsStream
		if stream, err = newTLSStream(opts.Addr, addr, opts.ServerTLS, opts.ClientTLS); err == nil {
			s.trans = raft.NewNetworkTransport(stream, 3, 5*time.Second, io.Discard)
		}
	} else {
		s.trans, err = raft.NewTCPTransport(opts.Addr, addr, 3, 5*time.Second, io.Discard)
	}
	if err != nil {
		s.store.Close()
		return nil, daoserr.Wrap(daoserr.Unreach, err, "management service: listen on %s", opts.Addr).
			WithResolution("another process uses the port: stop it or choose another address")
	}
	has, err := raft.HasExistingState(s.store, s.store, snaps)
	if err != nil {
		s.close()
		return nil, daoserr.Wrap(daoserr.IO, err, "management service: read state")
	}
	if !has {
		var cfg raft.Configuration
		for _, r := range opts.Replicas {
			cfg.Servers = append(cfg.Servers, raft.Server{ID: raft.ServerID(r), Address: raft.ServerAddress(r)})
		}
		if err := raft.BootstrapCluster(conf, s.store, s.store, snaps, s.trans, cfg); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			s.close()
			return nil, daoserr.Wrap(daoserr.IO, err, "management service: bootstrap")
		}
	}
	if s.raft, err = raft.NewRaft(conf, &fsm{s.db}, s.store, s.store, snaps, s.trans); err != nil {
		s.close()
		return nil, daoserr.Wrap(daoserr.IO, err, "management service: start raft")
	}
	return s, nil
}

func (s *Service) close() {
	if s.trans != nil {
		s.trans.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
}

// Shutdown stops this replica (the others elect a leader among themselves).
func (s *Service) Shutdown() error {
	err := s.raft.Shutdown().Error()
	s.close()
	return err
}

// IsLeader reports whether this replica leads.
func (s *Service) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader is the leader's address, "" if none is known.
func (s *Service) Leader() string {
	addr, _ := s.raft.LeaderWithID()
	return string(addr)
}

// WaitLeader waits until some replica leads (bounded by timeout).
func (s *Service) WaitLeader(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l := s.Leader(); l != "" {
			return l, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", daoserr.Newf(daoserr.TimedOut, "management service: no leader elected within %v", timeout).
		WithResolution("a majority of mgmt_svc_replicas must be running and reach each other")
}

// propose appends a command and waits until it is applied here (the leader).
func (s *Service) propose(c *command) (result, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return result{}, err
	}
	f := s.raft.Apply(b, applyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return result{}, s.notLeader()
		}
		return result{}, daoserr.Wrap(daoserr.Unreach, err, "management service: commit %s", c.Op)
	}
	r := f.Response().(result)
	return r, r.Err
}

func (s *Service) notLeader() error {
	e := daoserr.Newf(daoserr.NotLeader, "management service replica %s is not the leader", s.opts.Addr)
	if l := s.Leader(); l != "" {
		return e.WithResolution("send it to the leader at %s", l)
	}
	return e.WithResolution("wait for the replicas to elect a leader and retry")
}

// consistent makes the next read here see every write acknowledged so far: it
// fails unless this replica leads. A Barrier (a log entry: a disk write) is
// needed once per term, to make a new leader apply what earlier leaders
// committed. After that the leader has applied everything it acknowledged
// (propose waits for the FSM), so confirming that it still leads
// (VerifyLeader: a round of heartbeats, no disk) is enough.
func (s *Service) consistent() error {
	if !s.IsLeader() {
		return s.notLeader()
	}
	term := s.raft.CurrentTerm()
	if s.barrierTerm.Load() != term {
		if err := s.raft.Barrier(applyTimeout).Error(); err != nil {
			return s.notLeader()
		}
		s.barrierTerm.Store(term) // read before the barrier: a newer term gets its own
		return nil
	}
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return s.notLeader()
	}
	return nil
}

// Join admits an engine as a rank (its old rank if its UUID has joined before).
func (s *Service) Join(m Member) (Member, error) {
	r, err := s.propose(&command{Op: opJoin, Member: &m})
	return r.Member, err
}

// SetMemberState records a rank's state (stopped, excluded, joined).
func (s *Service) SetMemberState(rank uint32, state string) error {
	_, err := s.propose(&command{Op: opMemberState, Rank: rank, State: state})
	return err
}

// AddPool records a new pool (state creating until SetPoolState(ready)).
func (s *Service) AddPool(p Pool) error {
	if p.State == "" {
		p.State = PoolCreating
	}
	_, err := s.propose(&command{Op: opPoolAdd, Pool: &p})
	return err
}

// SetPoolState records a pool's state.
func (s *Service) SetPoolState(uuid, state string) error {
	_, err := s.propose(&command{Op: opPoolState, UUID: uuid, State: state})
	return err
}

// SetPoolACL replaces a pool's ACL (ACE strings, already validated).
func (s *Service) SetPoolACL(uuid string, acl []string) error {
	_, err := s.propose(&command{Op: opPoolACL, UUID: uuid, ACL: acl})
	return err
}

// SetPoolProps sets pool properties (already validated), keeping the others.
func (s *Service) SetPoolProps(uuid string, props map[string]string) error {
	_, err := s.propose(&command{Op: opPoolProps, UUID: uuid, Props: props})
	return err
}

// RemovePool forgets a destroyed pool.
func (s *Service) RemovePool(uuid string) error {
	_, err := s.propose(&command{Op: opPoolRemove, UUID: uuid})
	return err
}

// AddCont records a new container of pool poolUUID.
func (s *Service) AddCont(poolUUID string, c Cont) error {
	_, err := s.propose(&command{Op: opContAdd, UUID: poolUUID, Cont: &c})
	return err
}

// RemoveCont forgets a destroyed container.
func (s *Service) RemoveCont(poolUUID, contUUID string) error {
	_, err := s.propose(&command{Op: opContRemove, UUID: poolUUID, Cont: &Cont{UUID: contUUID}})
	return err
}

// SetContOwner changes a container's owning user and/or group (empty keeps).
func (s *Service) SetContOwner(poolUUID, contUUID, user, group string) error {
	_, err := s.propose(&command{Op: opContOwner, UUID: poolUUID, Cont: &Cont{UUID: contUUID, Owner: user, Group: group}})
	return err
}

// AllocOIDs reserves count object IDs in a container and returns the first:
// no two calls get the same ones, across clients, leaders and restarts.
func (s *Service) AllocOIDs(poolUUID, contUUID string, count uint64) (uint64, error) {
	r, err := s.propose(&command{Op: opContOIDs, UUID: poolUUID, Cont: &Cont{UUID: contUUID}, Count: count})
	return r.OID, err
}

// SetContACL replaces a container's ACL (ACE strings, already validated).
func (s *Service) SetContACL(poolUUID, contUUID string, acl []string) error {
	_, err := s.propose(&command{Op: opContACL, UUID: poolUUID, Cont: &Cont{UUID: contUUID, ACL: acl}})
	return err
}

// SetContProps sets container properties (a "label" renames it), keeping
// the others.
func (s *Service) SetContProps(poolUUID, contUUID string, props map[string]string) error {
	_, err := s.propose(&command{Op: opContProps, UUID: poolUUID, Cont: &Cont{UUID: contUUID, Props: props}})
	return err
}

// ChangeContAttrs sets and deletes a container's user attributes.
func (s *Service) ChangeContAttrs(poolUUID, contUUID string, set map[string][]byte, del []string) error {
	_, err := s.propose(&command{Op: opContAttrs, UUID: poolUUID, Cont: &Cont{UUID: contUUID, Attrs: set}, Names: del})
	return err
}

// AddSnapshot records a container snapshot.
func (s *Service) AddSnapshot(poolUUID, contUUID string, snap Snapshot) error {
	_, err := s.propose(&command{Op: opSnapAdd, UUID: poolUUID, Cont: &Cont{UUID: contUUID, Snapshots: []Snapshot{snap}}})
	return err
}

// RemoveSnapshots forgets a container's snapshots at the epochs given.
func (s *Service) RemoveSnapshots(poolUUID, contUUID string, epochs ...uint64) error {
	c := &Cont{UUID: contUUID}
	for _, e := range epochs {
		c.Snapshots = append(c.Snapshots, Snapshot{Epoch: e})
	}
	_, err := s.propose(&command{Op: opSnapRemove, UUID: poolUUID, Cont: c})
	return err
}

// RemoveSnapshotsAfter forgets a container's snapshots newer than epoch (a
// rollback to it).
func (s *Service) RemoveSnapshotsAfter(poolUUID, contUUID string, epoch uint64) error {
	_, err := s.propose(&command{Op: opSnapRemove, UUID: poolUUID, Cont: &Cont{UUID: contUUID}, Count: epoch})
	return err
}

// Members returns the system map (leader, consistent) and its version.
func (s *Service) Members() ([]Member, uint32, error) {
	if err := s.consistent(); err != nil {
		return nil, 0, err
	}
	m, v := s.db.memberList()
	return m, v, nil
}

// Pools lists the pools (leader, consistent).
func (s *Service) Pools() ([]Pool, error) {
	if err := s.consistent(); err != nil {
		return nil, err
	}
	return s.db.poolList(), nil
}

// FindPool looks a pool up by label or UUID (leader, consistent).
func (s *Service) FindPool(id string) (Pool, error) {
	if err := s.consistent(); err != nil {
		return Pool{}, err
	}
	return s.db.findPool(id)
}

// Snapshot writes a snapshot of the database now (it also happens by itself
// every SnapshotThreshold log entries), so the log before it can be dropped.
func (s *Service) Snapshot() error { return s.raft.Snapshot().Error() }

// slogWriter passes Raft's log lines to slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn(string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
