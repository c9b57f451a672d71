package engine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/server/vos"
)

// Rebuild on an engine (DAOS's rebuild scan and migrate, in one pass). The
// management service leader starts it for a pool map version in which
// shards are rebuilding: shards remapped from DOWN or DRAIN targets, and
// shards on UP (integrating) targets. Each target of each rank walks its
// objects; for every redundancy group whose source it is (the first shard
// of the group that is not rebuilding, or for a lone shard leaving a
// draining target, that target) and that has rebuilding shards, it copies
// the group's dkeys there (OpMigrate).
//
// What is copied is each dkey as it reads when the scan reaches it (the
// latest; the read waits for a write that holds the dkey, see readAt). The
// destination writes it at its rebuild fence (rebuildFence): just below the
// epoch it took the map at, less the servers' clock skew, so under every write
// placed with that map; and each destination first punches, just below the
// fence, every dkey it holds of the groups it rebuilds, so that versions left
// from an earlier time it held the shard (a remap back onto it) cannot show
// above the copy. Together: the shard reads as the source's copy, then the
// writes made since. The rebuilding shard holds nothing older than
// the map change but these copies; every write made since reached it
// directly (clients write every shard of a group in the current map), so it
// stays on top of the copy whatever the servers' clocks say. History is not
// copied: a rebuilt shard answers reads at the latest epoch, not at older
// snapshots' epochs.
//
// The scan is throttled: it sleeps as long as it worked (rebuildDuty), so
// foreground I/O keeps most of the target.

// rebuildEpoch marks a replicated copy in OpMigrate: the destination writes
// it at its own rebuild fence (EC copies carry their own epochs).
const rebuildEpoch = 1

// rebuildFence is the epoch a destination writes rebuild copies at under map
// pm (and punches what it held just below): under every write placed with pm
// (they are stamped here after pm was taken, and their epoch is at least
// this engine's stamp), allowing for the servers' clock skew.
func rebuildFence(pm *PoolMap) uint64 {
	skew := uint64(maxClockAhead)
	if pm.installed <= skew+2 {
		return 2
	}
	return pm.installed - skew
}

// rebuildDuty is the share of time a target's scan may work; it sleeps the
// rest.
var rebuildDuty = 0.5

// poolRebuild is one rank's rebuild of one pool to a map version.
type poolRebuild struct {
	version                 uint32
	cancel                  context.CancelFunc
	running                 atomic.Int32 // targets still scanning
	objects, records, bytes atomic.Uint64
	lost                    atomic.Uint64 // groups (or dkeys) no shard holds any more: not rebuilt, not retried
	mu                      sync.Mutex
	err                     error // the first error met
}

func (r *poolRebuild) fail(err error) {
	if daoserr.Is(err, daoserr.DataLoss) {
		// more failures than the class survives: nothing to copy from, and
		// scanning again would not change that; the rebuild completes
		// without it (the container is UNCLEAN, see server/health.go)
		r.lost.Add(1)
		return
	}
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
}

type rebuilds struct {
	mu    sync.Mutex
	pools map[vos.UUID]*poolRebuild
	// reclaimMu orders reclaim's deletions and rebuild's copies on this
	// engine: a deletion happens only while the engine's map is still the
	// one the reclaim runs for, and a copy for a newer map moves the map on
	// before it writes.
	reclaimMu sync.Mutex
}

func (e *Engine) rebuildReq(req *rpc.Request) (vos.UUID, uint32, error) {
	var m enginepb.RebuildReq
	if err := decode(req, &m); err != nil {
		return vos.UUID{}, 0, err
	}
	u, err := uuidOf(m.Pool, "pool")
	return u, m.Version, err
}

// reclaimStart starts deleting, on every target, the dkeys that map
// version no longer places here (see RebuildReq.reclaim). It runs in the
// background and stops at the first sign of a newer map.
func (e *Engine) reclaimStart(pool vos.UUID, version uint32) error {
	pm := e.PoolMapOf(pool)
	if pm == nil || pm.Version() != version {
		return daoserr.Newf(daoserr.Stale, "reclaim of pool %s at map version %d: this engine's map is at another version", pool, version)
	}
	if pm.moving {
		return daoserr.Newf(daoserr.Busy, "reclaim of pool %s at map version %d: shards are still moving", pool, version)
	}
	for ti := range e.targets {
		go func() {
			n, err := e.reclaimTarget(pm, pool, ti)
			if err != nil {
				e.log.Warn("reclaim stopped", "pool", pool, "target", ti, "version", version, "err", err)
			} else if n > 0 {
				e.log.Info("reclaim: dkeys moved elsewhere deleted", "pool", pool, "target", ti, "version", version, "dkeys", n)
			}
		}()
	}
	return nil
}

// eachObject calls fn for every object of pool on target ti, container by
// container, holding the target's pool table only while it lists (a scan is
// long). It stops at fn's first error.
func (e *Engine) eachObject(ti int, pool vos.UUID, fn func(c vos.UUID, oid vos.OID) error) error {
	var conts []vos.UUID
	if err := e.withPool(ti, pool, func(p *vos.Pool) error { conts = p.ListContainers(); return nil }); err != nil {
		return nil // no storage of the pool here: nothing to scan
	}
	for _, c := range conts {
		if err := e.eachContObject(ti, pool, c, func(oid vos.OID) error { return fn(c, oid) }); err != nil {
			return err
		}
	}
	return nil
}

// eachContObject calls fn for each object of container c on target ti.
func (e *Engine) eachContObject(ti int, pool, c vos.UUID, fn func(oid vos.OID) error) error {
	var anchor vos.Anchor
	for !anchor.EOF {
		var oids []vos.OID
		err := e.withPool(ti, pool, func(p *vos.Pool) (err error) {
			oids, err = p.ListObjects(c, vos.EpochMax, &anchor, 256)
			return err
		})
		if daoserr.Is(err, daoserr.Nonexist) {
			return nil // never written on this target
		}
		if err != nil {
			return daoserr.Context(err, "list objects of container %s", c)
		}
		for _, oid := range oids {
			if err := fn(oid); err != nil {
				return err
			}
		}
	}
	return nil
}

// reclaimTarget is one target's reclaim; it returns the dkeys deleted.
func (e *Engine) reclaimTarget(pm *PoolMap, pool vos.UUID, ti int) (int, error) {
	me := uint32(e.rank.Load())
	deleted := 0
	mine := func(s placement.Shard) bool { return s.Rank == me && int(s.Target) == ti }
	err := e.eachObject(ti, pool, func(c vos.UUID, oid vos.OID) error {
		po := placement.OID{Hi: oid.Hi, Lo: oid.Lo}
		if !po.Redun().Valid() || po.Groups() == 0 || po.Redun().IsEC() {
			return nil // EC shards are not reclaimed yet
		}
		l, err := pm.Layout(po)
		if err != nil {
			return nil
		}
		var da vos.Anchor
		for !da.EOF {
			var dkeys [][]byte
			err := e.withPool(ti, pool, func(p *vos.Pool) (err error) {
				dkeys, err = p.ListDkeys(c, oid, vos.EpochMax, &da, 256)
				return err
			})
			if err != nil {
				return nil // this object only
			}
			for _, dkey := range dkeys {
				if slices.ContainsFunc(l.Group(placement.DkeyGroupOf(po, dkey)), mine) {
					continue
				}
				e.rb.reclaimMu.Lock()
				if cur := e.PoolMapOf(pool); cur == nil || cur.Version() != pm.Version() {
					e.rb.reclaimMu.Unlock()
					return daoserr.New(daoserr.Stale, "the pool map changed")
				}
				err := e.withPool(ti, pool, func(p *vos.Pool) error { return p.DestroyKey(c, oid, dkey, nil) })
				e.rb.reclaimMu.Unlock()
				if err != nil {
					return err
				}
				deleted++
			}
		}
		return nil
	})
	return deleted, err
}

// rebuildStart starts this rank's rebuild of a pool to a map version, once:
// a start for a version already running or done is answered at once (one
// that finished with errors scans again), and a newer version replaces an
// older one (its scan stops).
func (e *Engine) rebuildStart(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.RebuildReq
	if err := decode(req, &m); err != nil {
		return rpc.Response{}, err
	}
	pool, err := uuidOf(m.Pool, "pool")
	if err != nil {
		return rpc.Response{}, err
	}
	version := m.Version
	if m.Stop {
		e.rb.mu.Lock()
		if r := e.rb.pools[pool]; r != nil {
			r.cancel()
			delete(e.rb.pools, pool) // a later start begins anew
		}
		e.rb.mu.Unlock()
		e.log.Info("rebuild stopped", "pool", pool)
		return rpc.Response{}, nil
	}
	pm := e.mapAtLeast(ctx, pool, version)
	if pm == nil || pm.Version() != version {
		have := uint32(0)
		if pm != nil {
			have = pm.Version()
		}
		return rpc.Response{}, daoserr.Newf(daoserr.Stale, "rebuild of pool %s to map version %d: this engine's map is at version %d", pool, version, have)
	}
	if e.rank.Load() < 0 {
		return rpc.Response{}, daoserr.New(daoserr.Again, "rebuild: this engine has no rank yet").WithResolution("retry once it has joined")
	}
	if m.Reclaim {
		return rpc.Response{}, e.reclaimStart(pool, version)
	}
	e.rb.mu.Lock()
	defer e.rb.mu.Unlock()
	if e.rb.pools == nil {
		e.rb.pools = map[vos.UUID]*poolRebuild{}
	}
	if old := e.rb.pools[pool]; old != nil {
		old.mu.Lock()
		failed := old.err != nil
		old.mu.Unlock()
		retry := old.version == version && old.running.Load() == 0 && failed
		if old.version >= version && !retry {
			return rpc.Response{}, nil
		}
		old.cancel()
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &poolRebuild{version: version, cancel: cancel}
	e.rb.pools[pool] = r
	for ti := range e.targets {
		r.running.Add(1)
		go func() {
			defer r.running.Add(-1)
			if err := e.rebuildTarget(rctx, r, pm, pool, ti); err != nil && rctx.Err() == nil {
				r.fail(err)
				e.log.Warn("rebuild: target scan failed", "pool", pool, "target", ti, "version", version, "err", err)
			}
		}()
	}
	e.log.Info("rebuild started", "pool", pool, "version", version)
	return rpc.Response{}, nil
}

// rebuildQuery answers this rank's progress.
func (e *Engine) rebuildQuery(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	pool, _, err := e.rebuildReq(req)
	if err != nil {
		return rpc.Response{}, err
	}
	rep := &enginepb.RebuildRep{}
	e.rb.mu.Lock()
	r := e.rb.pools[pool]
	e.rb.mu.Unlock()
	if r != nil {
		rep.Version, rep.Done = r.version, r.running.Load() == 0
		rep.Objects, rep.Records, rep.Bytes, rep.Lost = r.objects.Load(), r.records.Load(), r.bytes.Load(), r.lost.Load()
		r.mu.Lock()
		if r.err != nil {
			rep.Error = r.err.Error()
		}
		r.mu.Unlock()
	}
	hdr, _ := proto.Marshal(rep)
	return rpc.Response{Header: hdr}, nil
}

// withPool runs fn on target ti's VOS instance of pool, holding the target's
// pool table only meanwhile (a scan is long; pools come and go around it).
func (e *Engine) withPool(ti int, pool vos.UUID, fn func(p *vos.Pool) error) error {
	t := e.targets[ti]
	t.mu.RLock()
	defer t.mu.RUnlock()
	p := t.pools[pool]
	if p == nil {
		return daoserr.Newf(daoserr.Nonexist, "pool %s has no storage on target %d", pool, ti)
	}
	return fn(p)
}

// rebuildSource is the shard of grp that copies the group's data to its
// rebuilding shards: the first that is not rebuilding; for a group with
// none, the target that still holds a moving shard's data (Shard.Prev: a
// draining target, or the shard's place before an extension). ok is false
// when no shard holds the data (more failures than the class survives).
func rebuildSource(pm *PoolMap, grp []placement.Shard) (src placement.Shard, ok bool) {
	for _, s := range grp {
		if !s.Rebuilding {
			return s, true
		}
	}
	for _, s := range grp {
		if s.HasPrev {
			if t, found := pm.Target(s.Prev); found {
				return placement.Shard{Rank: t.Rank, Target: t.Index, ID: t.ID}, true
			}
		}
	}
	return placement.Shard{}, false
}

// rebuildTarget is one target's scan (see the package comment above).
func (e *Engine) rebuildTarget(ctx context.Context, r *poolRebuild, pm *PoolMap, pool vos.UUID, ti int) error {
	me := uint32(e.rank.Load())
	epoch := e.clock.Now()
	err := e.eachObject(ti, pool, func(c vos.UUID, oid vos.OID) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.objects.Add(1)
		if err := e.rebuildObject(ctx, r, pm, pool, ti, me, c, oid, epoch); err != nil {
			r.fail(err)
		}
		return nil
	})
	return daoserr.Context(err, "rebuild")
}

// rebuildObject copies the dkeys of oid's groups this target is the source
// of to their rebuilding shards.
func (e *Engine) rebuildObject(ctx context.Context, r *poolRebuild, pm *PoolMap, pool vos.UUID, ti int, me uint32, c vos.UUID, oid vos.OID, epoch uint64) error {
	po := placement.OID{Hi: oid.Hi, Lo: oid.Lo}
	if !po.Redun().Valid() || po.Groups() == 0 {
		return nil // not a placed object
	}
	if po.Redun().IsEC() {
		return e.rebuildECObject(ctx, r, pm, pool, ti, me, c, oid, epoch) // rebuild_ec.go
	}
	l, err := pm.Layout(po)
	if err != nil {
		return daoserr.Context(err, "rebuild object %s", oid)
	}
	dests := map[int][]placement.Shard{}
	clean := map[int]bool{} // groups this target rebuilds: what it holds of them is stale
	for g := range l.Groups {
		grp := l.Group(g)
		for _, s := range grp {
			if s.Rebuilding && s.Rank == me && int(s.Target) == ti {
				clean[g] = true
			}
		}
		src, ok := rebuildSource(pm, grp)
		if !ok {
			// nothing holds the group any more: counted once, by the target of
			// its first shard if that one holds the object (best effort: a
			// count for the status, the container is UNCLEAN anyway)
			if grp[0].Rank == me && int(grp[0].Target) == ti {
				r.lost.Add(1)
			}
			continue
		}
		if src.Rank != me || int(src.Target) != ti {
			continue
		}
		for _, s := range grp {
			if s.Rebuilding && !(s.Rank == me && int(s.Target) == ti) {
				dests[g] = append(dests[g], s)
			}
		}
	}
	if len(dests) == 0 && len(clean) == 0 {
		return nil
	}
	fence := rebuildFence(pm)
	var anchor vos.Anchor
	for !anchor.EOF {
		var dkeys [][]byte
		err := e.withPool(ti, pool, func(p *vos.Pool) (err error) {
			dkeys, err = p.ListDkeys(c, oid, vos.EpochMax, &anchor, 256)
			return err
		})
		if daoserr.Is(err, daoserr.Nonexist) {
			return nil
		}
		if err != nil {
			return daoserr.Context(err, "rebuild: list dkeys of object %s", oid)
		}
		for _, dkey := range dkeys {
			g := placement.DkeyGroupOf(po, dkey)
			if clean[g] {
				err := e.withPool(ti, pool, func(p *vos.Pool) error {
					return p.PunchDkeys(c, oid, vos.Epoch(fence-1), vos.WriteBelowAggregated, [][]byte{dkey})
				})
				if err != nil {
					r.fail(daoserr.Context(err, "rebuild: clear object %s dkey %q below the fence", oid, dkey))
				}
			}
			to := dests[g]
			if len(to) == 0 {
				continue
			}
			began := time.Now()
			if err := e.migrateDkey(ctx, r, pm, pool, ti, c, oid, dkey, epoch, to); err != nil {
				r.fail(err)
			}
			if err := sleepCtx(ctx, time.Duration(float64(time.Since(began))*(1-rebuildDuty)/rebuildDuty)); err != nil {
				return err
			}
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// readDkeyLatest reads every akey of dkey as it is now: the IODs and their
// values back to back. The latest, not the scan's epoch: a write prepared
// before the map changed, whose replicas did not include the rebuilding
// shard, may commit at an epoch above the scan's (the servers' clocks
// differ); read after it, it is in the copy. DER_INPROGRESS while a write
// holds the dkey; the caller retries.
func (e *Engine) readDkeyLatest(ti int, pool vos.UUID, c vos.UUID, oid vos.OID, dkey []byte) ([]vos.IOD, []byte, error) {
	const epoch = vos.EpochMax
	var iods []vos.IOD
	var bulk []byte
	err := e.withPool(ti, pool, func(p *vos.Pool) (err error) {
		tt := &e.targets[ti].txs
		gen, err := e.readAt(p, tt, 0, c, oid, dkey)
		if err != nil {
			return err
		}
		defer func() {
			if err == nil {
				err = readDone(tt, gen, 0, oid, dkey) // a write began meanwhile: read again
			}
		}()
		var anchor vos.Anchor
		for !anchor.EOF {
			akeys, err := p.ListAkeys(c, oid, epoch, dkey, &anchor, 256)
			if err != nil {
				return err
			}
			for _, akey := range akeys {
				var xa vos.Anchor
				var recxs []vos.Recx
				var rsize uint64
				for !xa.EOF {
					xs, rs, err := p.ListRecx(c, oid, epoch, dkey, akey, &xa, 1024)
					if err != nil {
						return err
					}
					rsize = max(rsize, rs)
					for _, x := range xs {
						recxs = append(recxs, x.Recx)
					}
				}
				iod := vos.IOD{Akey: akey, Type: vos.IODArray, Size: rsize, Recxs: recxs}
				if rsize == 0 { // a single value: its size first
					probe := []vos.IOD{{Akey: akey, Type: vos.IODSingle}}
					res, err := p.Fetch(c, oid, epoch, 0, dkey, probe, nil)
					if err != nil {
						return err
					}
					iod = vos.IOD{Akey: akey, Type: vos.IODSingle, Size: res[0].Size}
				}
				if iod.Size == 0 || (iod.Type == vos.IODArray && len(recxs) == 0) {
					continue // nothing visible
				}
				n, err := iodBytes(&iod)
				if err != nil {
					return err
				}
				off := len(bulk)
				bulk = append(bulk, make([]byte, n)...)
				if _, err := p.Fetch(c, oid, epoch, 0, dkey, []vos.IOD{iod}, []vos.SGL{{bulk[off:]}}); err != nil {
					return err
				}
				iods = append(iods, iod)
			}
		}
		return nil
	})
	return iods, bulk, err
}

// migrateDkey copies dkey, as read at epoch, to the rebuilding shards to.
func (e *Engine) migrateDkey(ctx context.Context, r *poolRebuild, pm *PoolMap, pool vos.UUID, ti int, c vos.UUID, oid vos.OID, dkey []byte, epoch uint64, to []placement.Shard) error {
	var iods []vos.IOD
	var bulk []byte
	var err error
	for attempt := 0; ; attempt++ { // a write in progress there: wait for it
		iods, bulk, err = e.readDkeyLatest(ti, pool, c, oid, dkey)
		if !daoserr.Is(err, daoserr.InProgress) || attempt >= 100 {
			break
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	if err != nil {
		return daoserr.Context(err, "rebuild: read object %s dkey %q", oid, dkey)
	}
	if len(iods) == 0 {
		return nil
	}
	m := &enginepb.MigrateReq{Pool: pool[:], Cont: c[:], Oid: &enginepb.OID{Hi: oid.Hi, Lo: oid.Lo}, Epoch: rebuildEpoch, Dkey: dkey, Version: pm.Version()}
	for _, d := range iods {
		pd := &enginepb.IOD{Akey: d.Akey, Type: uint32(d.Type), Size: d.Size}
		for _, x := range d.Recxs {
			pd.Recxs = append(pd.Recxs, &enginepb.Recx{Idx: x.Idx, Nr: x.Nr})
		}
		m.Iods = append(m.Iods, pd)
	}
	b, _ := proto.Marshal(m)
	var errs []error
	for _, s := range to {
		hdr, err := e.seal(enginepb.OpMigrate, b)
		if err == nil {
			var cl *rpc.Client
			cctx, cancel := context.WithTimeout(ctx, replicaTimeout)
			if cl, err = e.peers.Get(cctx, pm.Addr[s.Rank]); err == nil {
				_, err = cl.Call(cctx, rpc.Message{Opcode: enginepb.OpMigrate, Target: s.Target, Header: hdr, Bulk: [][]byte{bulk}}, nil)
			}
			cancel()
		}
		if err != nil {
			errs = append(errs, daoserr.Context(err, "rebuild: copy object %s dkey %q to rank %d target %d", oid, dkey, s.Rank, s.Target))
			continue
		}
		r.records.Add(uint64(len(iods)))
		r.bytes.Add(uint64(len(bulk)))
	}
	return errors.Join(errs...)
}

// migrate writes what a rebuild source copied, at rebuildEpoch.
func (e *Engine) migrate(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.MigrateReq
	p, c, release, err := e.contReq(req, &m, 0)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	iods := vosIODs(m.Iods)
	sgls, err := splitBulk(iods, req.Bulk)
	if err != nil {
		return rpc.Response{}, err
	}
	oid := vos.OID{Hi: m.Oid.GetHi(), Lo: m.Oid.GetLo()}
	// the copy's map first: a reclaim running for an older one stops
	// before it deletes what is copied here (see rebuilds.reclaimMu)
	cur := e.mapAtLeast(ctx, vos.UUID(m.Pool), m.Version)
	if cur == nil || cur.Version() < m.Version {
		return rpc.Response{}, daoserr.Newf(daoserr.Stale, "rebuild copy for pool map version %d: this engine cannot get that map yet", m.Version).
			WithResolution("the rebuild retries")
	}
	e.rb.reclaimMu.Lock()
	defer e.rb.reclaimMu.Unlock()
	// EC copies keep their epochs (see rebuild_ec.go): below the scan's
	if m.Epoch != rebuildEpoch && !(placement.OID{Hi: oid.Hi, Lo: oid.Lo}.Redun().IsEC() && m.Epoch <= e.clock.Now()) {
		return rpc.Response{}, daoserr.Newf(daoserr.Inval, "rebuild copy of object %s at epoch %#x: copies are written at epoch %d", oid, m.Epoch, rebuildEpoch)
	}
	epoch := m.Epoch
	if m.Epoch == rebuildEpoch {
		// a replicated copy: at this destination's fence for its map, which
		// must be the one the copy was made for (a newer one rebuilds anew)
		if cur.Version() != m.Version {
			return rpc.Response{}, daoserr.Newf(daoserr.Stale, "rebuild copy for pool map version %d: this engine is at version %d", m.Version, cur.Version()).
				WithResolution("the rebuild of the newer version copies it again")
		}
		epoch = rebuildFence(cur)
	}
	// below later writes, aggregated history included
	if err := p.Update(c, oid, vos.Epoch(epoch), vos.WriteBelowAggregated, m.Dkey, iods, sgls); err != nil {
		return rpc.Response{}, daoserr.Context(err, "rebuild: write object %s dkey %q", oid, m.Dkey)
	}
	return rpc.Response{}, nil
}
