// Package engine is one DAOS engine (one rank): its targets, each holding the VOS
// instances of the pools that have storage on it, served over the data-plane
// RPC (internal/rpc). A request names its target in the frame header and is
// queued to that target's own service goroutines; targets share no locks.
//
// On disk, for pool P and target i:
//
//	<scm_mount>/P/tgt<i>/        the VOS target: superblock, log, checkpoints
//	<bdev dir>/P/tgt<i>.data     its NVMe-tier data file
//
// Opening an engine opens every pool target found there, so a restarted engine
// serves its pools again.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/checksum"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/hlc"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security/capability"
	"github.com/godaos/godaos/server/vos"
)

// Options describe an engine.
type Options struct {
	Rank             uint32
	Targets          int
	ScmDir           string // the SCM tier's directory (scm_mount)
	BdevDir          string // where the pools' data files go (the bdev tier)
	WorkersPerTarget int    // service goroutines per target (default 2)
	Logger           *slog.Logger
	// Caps checks the capabilities clients' object requests carry (a Key of
	// nil: the system runs insecure, and unsigned capabilities are accepted).
	Caps capability.Verifier
	// ClientOps are more opcodes to serve: the pool service daos_server runs
	// for clients (see server/poolsvc.go).
	ClientOps map[uint16]rpc.Handler
	// PoolMap gets a pool's current map from the management service, for
	// requests placed with a newer map than the engine holds (nil: the
	// engine knows only the maps it is sent).
	PoolMap func(ctx context.Context, pool string) (*enginepb.PoolMap, error)
	// Seal seals the server-only requests the engine sends: the collectives
	// it forwards (capability.Seal with the server key; nil: unsigned, as
	// insecure systems do).
	Seal func(op uint16, msg []byte) ([]byte, error)

	// collectivePace is called before each message a collective forwards: the
	// collective benchmark models a per-message sending cost with it.
	collectivePace func()
}

// An Engine serves its targets.
type Engine struct {
	opts     Options
	log      *slog.Logger
	targets  []*target
	srv      *rpc.Server
	handlers map[uint16]rpc.Handler

	peers *rpc.ClientCache // other engines, for collectives
	clock hlc.Clock        // stamps updates that come without an epoch
	maps  poolMaps         // the pools' maps (see poolmap.go)
	rank  atomic.Int64     // this engine's rank (-1 until SetRank)
	rb    rebuilds         // the pools' rebuilds (see rebuild.go)

	ecAgg ecAggregations // EC aggregation passes (see aggregate_ec.go)

	bgCtx     context.Context    // background work (the transaction sweeper)
	stopSweep context.CancelFunc // ends bgCtx
}

type target struct {
	idx   int
	mu    sync.RWMutex // guards pools; taken for writing only to add or remove a pool
	pools map[vos.UUID]*vos.Pool
	caps  capCache
	txs   txTable
}

// Open opens an engine's storage, bringing back every pool target on it.
func Open(opts Options) (*Engine, error) {
	if opts.Targets < 1 {
		return nil, daoserr.Newf(daoserr.Inval, "engine rank %d: %d targets", opts.Rank, opts.Targets).WithResolution("configure at least one target")
	}
	if opts.ScmDir == "" || opts.BdevDir == "" {
		return nil, daoserr.Newf(daoserr.Inval, "engine rank %d: no storage directories", opts.Rank)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	e := &Engine{opts: opts, log: opts.Logger.With("rank", opts.Rank)}
	e.rank.Store(-1)
	e.peers = rpc.NewClientCache(rpc.ClientOptions{Logger: e.log})
	for _, d := range []string{opts.ScmDir, opts.BdevDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, daoserr.Wrap(daoserr.IO, err, "engine rank %d: storage directory", opts.Rank)
		}
	}
	for i := range opts.Targets {
		e.targets = append(e.targets, &target{idx: i, pools: map[vos.UUID]*vos.Pool{}})
	}
	if err := e.openPools(); err != nil {
		e.closePools()
		return nil, err
	}
	e.reinstateTxs()
	e.srv = rpc.NewServer(rpc.ServerOptions{Targets: opts.Targets, WorkersPerTarget: opts.WorkersPerTarget, Logger: e.log})
	e.handlers = map[uint16]rpc.Handler{
		enginepb.OpTargetCreate:  e.targetCreate,
		enginepb.OpTargetDestroy: e.targetDestroy,
		enginepb.OpTargetQuery:   e.targetQuery,
		enginepb.OpPing:          func(context.Context, *rpc.Request) (rpc.Response, error) { return rpc.Response{}, nil },
		enginepb.OpContCreate:    e.contCreate,
		enginepb.OpContDestroy:   e.contDestroy,
		enginepb.OpObjUpdate:     e.objUpdate,
		enginepb.OpObjFetch:      e.objFetch,
		enginepb.OpObjPunch:      e.objPunch,
		enginepb.OpObjList:       e.objList,
		enginepb.OpObjQuery:      e.objQuery,
		enginepb.OpObjListRecx:   e.objListRecx,
		enginepb.OpObjListObjs:   e.objListObjs,
		enginepb.OpCollective:    e.collective,
		enginepb.OpEpochSync:     e.epochSync,
		enginepb.OpContRollback:  e.contRollback,
		enginepb.OpContAggregate: e.contAggregate,
		enginepb.OpTxPrepare:     e.txPrepare,
		enginepb.OpTxCommit:      e.txCommit,
		enginepb.OpEpochQuery:    e.epochQuery,
		enginepb.OpTxStatus:      e.txStatus,
		enginepb.OpPoolMapUpdate: e.poolMapUpdate,
		enginepb.OpRebuildStart:  e.rebuildStart,
		enginepb.OpRebuildQuery:  e.rebuildQuery,
		enginepb.OpMigrate:       e.migrate,
		enginepb.OpECFetch:       e.ecFetch,
		enginepb.OpECList:        e.ecList,
		enginepb.OpECListRecx:    e.ecListRecx,
		enginepb.OpLock:          newLockService(e).handle,
	}
	for op, h := range opts.ClientOps {
		if e.handlers[op] != nil {
			e.closePools()
			return nil, daoserr.Newf(daoserr.Inval, "engine rank %d: client opcode %d is the engine's own", opts.Rank, op)
		}
		e.handlers[op] = h
	}
	gate := newServerGate(e) // e.handlers stay unwrapped: collectives admit their request once (see collective)
	for op, h := range e.handlers {
		if enginepb.ServerOps[op] {
			h = gate.serverOnly(op, h)
		}
		e.srv.Handle(op, h)
	}
	e.bgCtx, e.stopSweep = context.WithCancel(context.Background())
	go e.txSweeper(e.bgCtx)
	return e, nil
}

// openPools opens the pool targets found on disk.
func (e *Engine) openPools() error {
	ents, err := os.ReadDir(e.opts.ScmDir)
	if err != nil {
		return daoserr.Wrap(daoserr.IO, err, "engine rank %d: list pools", e.opts.Rank)
	}
	for _, ent := range ents {
		u, err := vos.ParseUUID(ent.Name())
		if err != nil || !ent.IsDir() {
			continue
		}
		for _, t := range e.targets {
			dir := e.targetDir(u, t.idx)
			if _, err := os.Stat(filepath.Join(dir, "superblock.json")); err != nil {
				continue
			}
			p, err := vos.Open(dir, e.vosOptions())
			if err != nil {
				return daoserr.Context(err, "engine rank %d: open pool %s target %d", e.opts.Rank, u, t.idx)
			}
			t.pools[u] = p
		}
	}
	return nil
}

// vosOptions are the pool targets': they stamp with the engine's clock.
func (e *Engine) vosOptions() vos.Options {
	return vos.Options{Logger: e.log, Stamp: func() vos.Epoch { return e.clock.Now() }}
}

func (e *Engine) targetDir(pool vos.UUID, tgt int) string {
	return filepath.Join(e.opts.ScmDir, pool.String(), fmt.Sprintf("tgt%d", tgt))
}

func (e *Engine) dataFile(pool vos.UUID, tgt int) string {
	return filepath.Join(e.opts.BdevDir, pool.String(), fmt.Sprintf("tgt%d.data", tgt))
}

// Serve answers data-plane requests on l until Shutdown.
func (e *Engine) Serve(l net.Listener) error { return e.srv.Serve(l) }

// Shutdown stops taking requests, lets those in flight finish, and closes the
// targets (everything acknowledged is already durable).
func (e *Engine) Shutdown(ctx context.Context) error {
	e.stopSweep()
	e.ecAgg.stop()
	err := e.srv.Shutdown(ctx)
	e.peers.Close()
	return errors.Join(err, e.closePools())
}

func (e *Engine) closePools() error {
	var errs []error
	for _, t := range e.targets {
		t.mu.Lock()
		for u, p := range t.pools {
			errs = append(errs, p.Close())
			delete(t.pools, u)
		}
		t.mu.Unlock()
	}
	return errors.Join(errs...)
}

// RPCStats reports the engine's request counters by target and opcode.
func (e *Engine) RPCStats(fn func(target int, opcode uint16, st *rpc.OpStats)) { e.srv.Stats(fn) }

// Reserved is the SCM and NVMe space the pools' targets on this engine hold.
// The pools are collected under each target's lock and queried after it is
// released, so a slow query never holds up pool create or destroy.
func (e *Engine) Reserved() (scm, nvme uint64) {
	var pools []*vos.Pool
	for _, t := range e.targets {
		t.mu.RLock()
		for _, p := range t.pools {
			pools = append(pools, p)
		}
		t.mu.RUnlock()
	}
	for _, p := range pools {
		in := p.Query()
		scm += in.ScmTotal
		nvme += in.NvmeTotal
	}
	return scm, nvme
}

// Pools lists the pools with storage on this engine (on any target).
func (e *Engine) Pools() []vos.UUID {
	seen := map[vos.UUID]bool{}
	var out []vos.UUID
	for _, t := range e.targets {
		t.mu.RLock()
		for u := range t.pools {
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
		t.mu.RUnlock()
	}
	return out
}

// ---- helpers of the handlers ----

func decode(req *rpc.Request, m proto.Message) error {
	if err := proto.Unmarshal(req.Header, m); err != nil {
		return daoserr.Wrap(daoserr.Proto, err, "opcode %d from %s: bad message header", req.Opcode, req.Peer)
	}
	return nil
}

func uuidOf(b []byte, what string) (vos.UUID, error) {
	var u vos.UUID
	if len(b) != len(u) {
		return u, daoserr.Newf(daoserr.Inval, "%s uuid of %d bytes, want 16", what, len(b))
	}
	copy(u[:], b)
	return u, nil
}

// pool returns the VOS instance of a pool on the request's target, and a
// release to call when done with it: until then the pool target cannot be
// destroyed (closed) under the caller.
func (e *Engine) pool(req *rpc.Request, poolID []byte) (*vos.Pool, func(), error) {
	u, err := uuidOf(poolID, "pool")
	if err != nil {
		return nil, nil, err
	}
	t := e.targets[req.Target] // the RPC server routed it: in range
	t.mu.RLock()
	p := t.pools[u]
	if p == nil {
		t.mu.RUnlock()
		return nil, nil, daoserr.Newf(daoserr.Nonexist, "pool %s has no storage on rank %d target %d", u, e.opts.Rank, req.Target).
			WithResolution("check the pool's UUID (dmg pool list) and that its map is current")
	}
	return p, t.mu.RUnlock, nil
}

// poolCont resolves a request's pool (with its release, see pool) and container.
func (e *Engine) poolCont(req *rpc.Request, poolID, contID []byte) (*vos.Pool, vos.UUID, func(), error) {
	p, release, err := e.pool(req, poolID)
	if err != nil {
		return nil, vos.UUID{}, nil, err
	}
	c, err := uuidOf(contID, "container")
	if err != nil {
		release()
		return nil, c, nil, err
	}
	return p, c, release, nil
}

// ---- handlers ----

func (e *Engine) targetCreate(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.TargetCreateReq
	if err := decode(req, &m); err != nil {
		return rpc.Response{}, err
	}
	u, err := uuidOf(m.Pool, "pool")
	if err != nil {
		return rpc.Response{}, err
	}
	t := e.targets[req.Target]
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pools[u] != nil {
		return rpc.Response{}, nil // a retried create: already done
	}
	dir, data := e.targetDir(u, t.idx), e.dataFile(u, t.idx)
	if err := os.MkdirAll(filepath.Dir(data), 0o750); err != nil {
		return rpc.Response{}, daoserr.Wrap(daoserr.IO, err, "create pool %s target %d", u, t.idx)
	}
	if err := vos.Format(dir, vos.FormatOptions{ScmSize: m.ScmSize, NvmeSize: m.NvmeSize, DataFile: data}); err != nil && !daoserr.Is(err, daoserr.Exist) {
		os.RemoveAll(dir)
		os.Remove(data)
		return rpc.Response{}, daoserr.Context(err, "create pool %s on rank %d target %d", u, e.opts.Rank, t.idx)
	}
	p, err := vos.Open(dir, e.vosOptions())
	if err != nil {
		return rpc.Response{}, daoserr.Context(err, "create pool %s on rank %d target %d", u, e.opts.Rank, t.idx)
	}
	t.pools[u] = p
	return rpc.Response{}, nil
}

func (e *Engine) targetDestroy(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.TargetDestroyReq
	if err := decode(req, &m); err != nil {
		return rpc.Response{}, err
	}
	u, err := uuidOf(m.Pool, "pool")
	if err != nil {
		return rpc.Response{}, err
	}
	t := e.targets[req.Target]
	t.mu.Lock()
	p := t.pools[u]
	delete(t.pools, u)
	t.mu.Unlock()
	if p != nil {
		if err := p.Close(); err != nil {
			e.log.Warn("closing a destroyed pool target", "pool", u, "target", t.idx, "err", err)
		}
	}
	// idempotent: removing what is not there is success
	errs := errors.Join(os.RemoveAll(e.targetDir(u, t.idx)), os.Remove(e.dataFile(u, t.idx)))
	if errs != nil && !errors.Is(errs, os.ErrNotExist) {
		return rpc.Response{}, daoserr.Wrap(daoserr.IO, errs, "destroy pool %s target %d", u, t.idx)
	}
	os.Remove(filepath.Dir(e.targetDir(u, t.idx))) // the pool's directories, once empty
	os.Remove(filepath.Dir(e.dataFile(u, t.idx)))
	return rpc.Response{}, nil
}

func (e *Engine) targetQuery(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.TargetDestroyReq
	if err := decode(req, &m); err != nil {
		return rpc.Response{}, err
	}
	p, release, err := e.pool(req, m.Pool)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	in := p.Query()
	b, _ := proto.Marshal(&enginepb.TargetQueryRep{ScmTotal: in.ScmTotal, ScmUsed: in.ScmUsed, NvmeTotal: in.NvmeTotal, NvmeUsed: in.NvmeUsed})
	return rpc.Response{Header: b}, nil
}

func (e *Engine) contCreate(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.ContCreateReq
	p, c, release, err := e.contReq(req, &m, 0)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	ct := checksum.Type(m.Csum)
	if !ct.Valid() {
		return rpc.Response{}, daoserr.Newf(daoserr.Inval, "container %s: checksum type %d", c, m.Csum)
	}
	// Idempotent: a container create reaches every target of the pool over a
	// collective, and a retried collective finds some targets done.
	err = p.CreateContainer(c, vos.ContOptions{Csum: ct, CsumChunk: m.Chunk, NoCsum: m.NoCsum})
	if daoserr.Is(err, daoserr.Exist) {
		err = nil
	}
	return rpc.Response{}, err
}

func (e *Engine) contDestroy(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.ContDestroyReq
	p, c, release, err := e.contReq(req, &m, 0)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	// Targets create a container when it is first written: one that never was
	// has nothing to destroy here, and a destroy must succeed on every target.
	if err := p.DestroyContainer(c); err != nil && !daoserr.Is(err, daoserr.Nonexist) {
		return rpc.Response{}, err
	}
	return rpc.Response{}, nil
}

// noEpoch refuses an update or punch that names its epoch: outside
// transactions the engine stamps them, in the order VOS logs them.
func noEpoch(epoch uint64, oid vos.OID) error {
	if epoch == 0 {
		return nil
	}
	return daoserr.Newf(daoserr.Inval, "object %s: a change outside a transaction names epoch %#x", oid, epoch).
		WithResolution("send epoch 0: the engine stamps it (use a transaction to write at one epoch)")
}

func (e *Engine) objPunch(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.ObjPunchReq
	p, c, release, err := e.contReq(req, &m, enginepb.CapWrite)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	oid, flags := vos.OID{Hi: m.Oid.GetHi(), Lo: m.Oid.GetLo()}, clientCond(m.Flags)
	dkeys := m.Dkeys
	if len(m.Dkey) > 0 {
		dkeys = [][]byte{m.Dkey}
	}
	if err := noEpoch(m.Epoch, oid); err != nil {
		return rpc.Response{}, err
	}
	var firstDkey []byte
	if len(dkeys) > 0 {
		firstDkey = dkeys[0]
	}
	if err := placedWrite(m.MapVersion, oid); err != nil {
		return rpc.Response{}, err
	}
	if m.MapVersion != 0 && e.forwarded(m.Pool, oid, firstDkey) {
		var writes []*enginepb.TxWrite
		switch {
		case len(m.Dkey) > 0:
			writes = append(writes, &enginepb.TxWrite{Oid: m.Oid, Dkey: m.Dkey, Akeys: m.Akeys, Punch: true, Flags: m.Flags})
		case len(m.Dkeys) > 0:
			for _, d := range m.Dkeys {
				writes = append(writes, &enginepb.TxWrite{Oid: m.Oid, Dkey: d, Punch: true, Flags: m.Flags})
			}
		default:
			writes = append(writes, &enginepb.TxWrite{Oid: m.Oid, Punch: true, Flags: m.Flags})
		}
		epoch, err := e.replicate(ctx, req, &m, p, c, oid, firstDkey, writes)
		if err != nil {
			return rpc.Response{}, err
		}
		hdr, _ := proto.Marshal(&enginepb.ObjUpdateRep{Epoch: epoch})
		return rpc.Response{Header: hdr}, nil
	}
	end, err := e.beginWrite(&e.targets[req.Target].txs, c, oid, dkeys...)
	if err != nil {
		return rpc.Response{}, err
	}
	defer end()
	var epoch vos.Epoch
	switch {
	case len(m.Dkey) > 0:
		epoch, err = p.PunchAkeysNow(c, oid, flags, m.Dkey, m.Akeys)
	case len(m.Dkeys) > 0:
		epoch, err = p.PunchDkeysNow(c, oid, flags, m.Dkeys)
	default:
		epoch, err = p.PunchObjectNow(c, oid, flags)
	}
	if err != nil {
		return rpc.Response{}, err
	}
	hdr, _ := proto.Marshal(&enginepb.ObjUpdateRep{Epoch: epoch})
	return rpc.Response{Header: hdr}, nil
}

func (e *Engine) objList(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.ObjListReq
	p, c, release, err := e.contReq(req, &m, enginepb.CapRead)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	oid, epoch := vos.OID{Hi: m.Oid.GetHi(), Lo: m.Oid.GetLo()}, vos.Epoch(m.Epoch)
	var under []byte // a dkey listing waits for what is committing anywhere in the object
	if len(m.Dkey) > 0 {
		under = m.Dkey
	}
	tt := &e.targets[req.Target].txs
	gen, err := e.readAt(p, tt, m.Epoch, c, oid, under)
	if err != nil {
		return rpc.Response{}, err
	}
	if epoch == 0 {
		epoch = vos.EpochMax
	}
	anchor := &vos.Anchor{Key: m.Anchor}
	var keys [][]byte
	if len(m.Dkey) == 0 {
		keys, err = p.ListDkeys(c, oid, epoch, anchor, int(m.Max))
	} else {
		keys, err = p.ListAkeys(c, oid, epoch, m.Dkey, anchor, int(m.Max))
	}
	if err == nil {
		err = readDone(tt, gen, m.Epoch, oid, under)
	}
	if err != nil {
		return rpc.Response{}, err
	}
	hdr, err := proto.Marshal(&enginepb.ObjListRep{Keys: keys, Anchor: anchor.Key, Eof: anchor.EOF})
	return rpc.Response{Header: hdr}, err
}

// contMsg is a request naming a pool and a container.
type contMsg interface {
	proto.Message
	GetPool() []byte
	GetCont() []byte
}

// capMsg is a client's request on a container: it carries the capability of
// the container handle it is made through.
type capMsg interface {
	contMsg
	GetCap() []byte
	GetMapVersion() uint32
}

// contReq decodes a request into m and resolves its pool (with its release,
// see pool) and container. need is the rights (enginepb.CapRead, CapWrite)
// the request's capability must grant; 0 is for the servers' own requests,
// which carry none.
func (e *Engine) contReq(req *rpc.Request, m contMsg, need uint32) (*vos.Pool, vos.UUID, func(), error) {
	if err := decode(req, m); err != nil {
		return nil, vos.UUID{}, nil, err
	}
	if need != 0 {
		cm, ok := m.(capMsg)
		if !ok {
			return nil, vos.UUID{}, nil, daoserr.Newf(daoserr.Misc, "opcode %d: its message carries no capability", req.Opcode)
		}
		if _, err := e.checkCap(req, cm, need); err != nil {
			return nil, vos.UUID{}, nil, err
		}
	}
	return e.poolCont(req, m.GetPool(), m.GetCont())
}

// ioReq decodes an update or fetch: the pool (with its release, see pool),
// container, OID and IODs.
func (e *Engine) ioReq(req *rpc.Request, need uint32) (*vos.Pool, func(), *enginepb.ObjIOReq, vos.UUID, []vos.IOD, error) {
	var m enginepb.ObjIOReq
	p, c, release, err := e.contReq(req, &m, need)
	if err != nil {
		return nil, nil, nil, c, nil, err
	}
	return p, release, &m, c, vosIODs(m.Iods), nil
}

// vosIODs converts a request's IODs.
func vosIODs(pb []*enginepb.IOD) []vos.IOD {
	iods := make([]vos.IOD, len(pb))
	for i, d := range pb {
		iods[i] = vos.IOD{Akey: d.Akey, Type: vos.IODType(d.Type), Size: d.Size, Flags: clientCond(d.Flags)}
		for _, r := range d.Recxs {
			iods[i].Recxs = append(iods[i].Recxs, vos.Recx{Idx: r.Idx, Nr: r.Nr})
		}
	}
	return iods
}

// iodBytes is how many bulk bytes an IOD's values take (0 for a size query).
func iodBytes(d *vos.IOD) (uint64, error) {
	switch d.Type {
	case vos.IODSingle:
		return d.Size, nil
	case vos.IODArray:
	default:
		return 0, daoserr.Newf(daoserr.Inval, "akey %q: IOD type %d", d.Akey, d.Type).WithResolution("use a single-value (1) or array (2) IOD")
	}
	var n uint64
	for _, r := range d.Recxs {
		if d.Size != 0 && r.Nr > vos.MaxUpdateBytes/d.Size {
			return 0, daoserr.Newf(daoserr.Rec2Big, "akey %q: extent %v of %d-byte records is too large", d.Akey, r, d.Size)
		}
		n += r.Nr * d.Size
		if n > vos.MaxUpdateBytes {
			return 0, daoserr.Newf(daoserr.Rec2Big, "akey %q: more than %d bytes", d.Akey, uint64(vos.MaxUpdateBytes))
		}
	}
	return n, nil
}

// splitBulk cuts bulk into one SGL per IOD, without copying.
func splitBulk(iods []vos.IOD, bulk []byte) ([]vos.SGL, error) {
	sgls := make([]vos.SGL, len(iods))
	var off uint64
	for i := range iods {
		n, err := iodBytes(&iods[i])
		if err != nil {
			return nil, err
		}
		if off+n > uint64(len(bulk)) {
			return nil, daoserr.Newf(daoserr.IOInval, "the IODs describe more than the %d bulk bytes sent", len(bulk))
		}
		sgls[i] = vos.SGL{bulk[off : off+n]}
		off += n
	}
	if off != uint64(len(bulk)) {
		return nil, daoserr.Newf(daoserr.IOInval, "%d bulk bytes sent, the IODs describe %d", len(bulk), off)
	}
	return sgls, nil
}

func (e *Engine) objUpdate(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	p, release, m, c, iods, err := e.ioReq(req, enginepb.CapWrite)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	sgls, err := splitBulk(iods, req.Bulk)
	if err != nil {
		return rpc.Response{}, daoserr.Context(err, "update obj %s dkey %q", vos.OID{Hi: m.Oid.GetHi(), Lo: m.Oid.GetLo()}, m.Dkey)
	}
	// The engine stamps an update outside a transaction (DAOS: the server
	// assigns its epoch), as VOS logs it: see vos.Options.Stamp.
	oid := vos.OID{Hi: m.Oid.GetHi(), Lo: m.Oid.GetLo()}
	if err := noEpoch(m.Epoch, oid); err != nil {
		return rpc.Response{}, err
	}
	if err := placedWrite(m.MapVersion, oid); err != nil {
		return rpc.Response{}, err
	}
	if m.MapVersion != 0 && e.forwarded(m.Pool, oid, m.Dkey) {
		w := &enginepb.TxWrite{Oid: m.Oid, Dkey: m.Dkey, Iods: m.Iods, Flags: m.Flags}
		epoch, err := e.replicate(ctx, req, m, p, c, oid, m.Dkey, []*enginepb.TxWrite{w})
		if err != nil {
			return rpc.Response{}, err
		}
		hdr, _ := proto.Marshal(&enginepb.ObjUpdateRep{Epoch: epoch})
		return rpc.Response{Header: hdr}, nil
	}
	end, err := e.beginWrite(&e.targets[req.Target].txs, c, oid, m.Dkey)
	if err != nil {
		return rpc.Response{}, err
	}
	defer end()
	epoch, err := p.UpdateNow(c, oid, clientCond(m.Flags), m.Dkey, iods, sgls)
	if err != nil {
		return rpc.Response{}, err
	}
	hdr, _ := proto.Marshal(&enginepb.ObjUpdateRep{Epoch: epoch})
	return rpc.Response{Header: hdr}, nil
}

var replyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

func (e *Engine) objFetch(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	p, releasePool, m, c, iods, err := e.ioReq(req, enginepb.CapRead)
	if err != nil {
		return rpc.Response{}, err
	}
	defer releasePool()
	oid := vos.OID{Hi: m.Oid.GetHi(), Lo: m.Oid.GetLo()}
	var total uint64
	for i := range iods {
		n, err := iodBytes(&iods[i])
		if err != nil {
			return rpc.Response{}, daoserr.Context(err, "fetch obj %s dkey %q", oid, m.Dkey)
		}
		total += n
	}
	if total > vos.MaxUpdateBytes {
		return rpc.Response{}, daoserr.Newf(daoserr.Rec2Big, "fetch obj %s dkey %q: %d bytes in one fetch, limit %d", oid, m.Dkey, total, uint64(vos.MaxUpdateBytes))
	}
	var buf []byte
	var pooled *[]byte
	if total <= 1<<20 {
		pooled = replyPool.Get().(*[]byte)
		buf = (*pooled)[:total] // cleared below where VOS leaves it unfilled
	} else {
		buf = make([]byte, total)
	}
	release := func() {
		if pooled != nil {
			replyPool.Put(pooled)
		}
	}
	sgls, _ := splitBulk(iods, buf)
	tt := &e.targets[req.Target].txs
	gen, err := e.readAt(p, tt, m.Epoch, c, oid, m.Dkey)
	if err != nil {
		release()
		return rpc.Response{}, err
	}
	epoch := vos.Epoch(m.Epoch)
	if epoch == 0 {
		epoch = vos.EpochMax // no epoch: the latest
	}
	// Large single values are lent by VOS (see vos.FetchBorrowed): sent
	// from the page cache as stored and verified, not copied into buf, and
	// given back once the reply is on the wire.
	res, lent, unlend, err := p.FetchBorrowed(c, oid, epoch, clientCond(m.Flags), m.Dkey, iods, sgls)
	if err == nil {
		if err = readDone(tt, gen, m.Epoch, oid, m.Dkey); err != nil {
			unlend()
		}
	}
	if err != nil {
		release()
		return rpc.Response{}, err
	}
	bulk := fetchBulk(iods, sgls, res, lent, buf)
	rep := &enginepb.ObjFetchRep{}
	for _, r := range res {
		fr := &enginepb.FetchResult{Size: r.Size}
		for _, x := range r.Extents {
			fr.Extents = append(fr.Extents, &enginepb.Recx{Idx: x.Idx, Nr: x.Nr})
		}
		rep.Results = append(rep.Results, fr)
	}
	hdr, err := proto.Marshal(rep)
	if err != nil {
		release()
		unlend()
		return rpc.Response{}, daoserr.Wrap(daoserr.Misc, err, "fetch obj %s: encode reply", oid)
	}
	return rpc.Response{Header: hdr, Bulk: bulk, Release: func() { release(); unlend() }}, nil
}

// fetchBulk is a fetch reply's bulk: each IOD's bytes in turn, a lent value
// as VOS lent it, the rest from buf. VOS fills every byte of the arrays'
// extents (zeros where nothing is) and a single value's own bytes; the rest
// of a single value's room (a missing or shorter value) is zeroed here, so
// no earlier reply in the pooled buffer leaks, without clearing the whole
// buffer up front.
func fetchBulk(iods []vos.IOD, sgls []vos.SGL, res []vos.FetchResult, lent [][]byte, buf []byte) [][]byte {
	if lent == nil {
		for i := range iods {
			if iods[i].Type == vos.IODSingle {
				b := sgls[i][0]
				clear(b[min(res[i].Size, uint64(len(b))):])
			}
		}
		return [][]byte{buf}
	}
	var bulk [][]byte
	for i := range iods {
		b := sgls[i][0]
		if lent[i] == nil {
			if iods[i].Type == vos.IODSingle {
				clear(b[min(res[i].Size, uint64(len(b))):])
			}
			bulk = append(bulk, b)
			continue
		}
		bulk = append(bulk, lent[i])
		for pad := uint64(len(b) - len(lent[i])); pad > 0; { // a value shorter than its room
			z := zeros[:min(pad, uint64(len(zeros)))]
			bulk = append(bulk, z)
			pad -= uint64(len(z))
		}
	}
	return bulk
}

// zeros pads lent values shorter than their IOD's room (never written).
var zeros = make([]byte, 64<<10)

// clientCond is the conditions a request may ask VOS for: the bits of
// vos.CondMask (the others are the engine's own, e.g. rebuild's).
func clientCond(f uint32) vos.CondFlags { return vos.CondFlags(f) & vos.CondMask }

// placedWrite refuses a write of a replicated object that names no pool map
// version: without one the engine cannot know the object's replicas, and
// applying it here alone would leave them different.
func placedWrite(version uint32, oid vos.OID) error {
	if version == 0 && replicated(oid) {
		return daoserr.Newf(daoserr.Inval, "write of replicated object %s without a pool map version", oid).
			WithResolution("use the client library, which places writes with the pool map (an old tool does not)")
	}
	return nil
}
