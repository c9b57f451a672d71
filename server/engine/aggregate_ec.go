package engine

import (
	"context"
	"encoding/binary"
	"sync"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/ec"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/server/vos"
)

// EC aggregation (DAOS srv_ec_aggregate.c, simplified; see
// docs/design/erasure-codes.md). A partial-stripe write leaves its records
// replicated on every parity shard of the group, so p failures lose
// nothing before the stripe's parity covers them. Aggregation, run with the
// container's VOS aggregation at its epoch hi (every interval, hi a lag in
// the past), folds them: for each stripe holding replicas visible at hi on
// the group's first parity shard, it reads the k data cells at hi, encodes
// the parity, writes each parity shard its own row at hi, and then punches
// the stripe's replicas at hi on the parity shards. Until the punch, the
// replicas are older than the new parity and a degraded read ignores them;
// a crash between the steps leaves a stripe that is correct either way.
//
// Reading at hi through readAt waits for (or, after a bounded wait, skips)
// a transaction prepared on a data cell at or below hi, and every write
// committing later is above hi (its epoch is at least its prepare stamp,
// taken from a clock already past hi), so the parity covers exactly the
// data at hi. Writes go through OpMigrate (below aggregated epochs, as a
// rebuild's EC copies).
//
// Only whole stripes fold: a stripe with a hole keeps its replicas, since
// a degraded read of parity made over zeros would report the hole as data.
// Groups with a shard rebuilding, moving or absent are left for later.
//
// The pass runs on the group's first parity shard (the aggregator), in the
// background, one at a time per container and target.

// ecAggregations is the passes running, so a slow one is not started twice.
type ecAggregations struct {
	mu      sync.Mutex
	running map[ecAggKey]bool
	stopped bool // the engine is shutting down: no new pass
	wg      sync.WaitGroup
}

// stop waits for the passes running and lets no new one start.
func (a *ecAggregations) stop() {
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	a.wg.Wait()
}

type ecAggKey struct {
	pool, cont vos.UUID
	target     int
}

// startECAggregation runs an EC aggregation pass of container c on target
// ti at epoch hi in the background, unless one is running.
func (e *Engine) startECAggregation(pool, c vos.UUID, ti int, hi uint64) {
	k := ecAggKey{pool, c, ti}
	a := &e.ecAgg
	a.mu.Lock()
	if a.running == nil {
		a.running = map[ecAggKey]bool{}
	}
	if a.running[k] || a.stopped {
		a.mu.Unlock()
		return
	}
	a.running[k] = true
	a.mu.Unlock()
	a.wg.Go(func() {
		defer func() {
			a.mu.Lock()
			delete(a.running, k)
			a.mu.Unlock()
		}()
		n, err := e.aggregateEC(e.bgCtx, pool, c, ti, hi)
		if n > 0 || err != nil {
			e.log.Info("EC aggregation", "pool", pool, "cont", c, "target", ti, "stripes_folded", n, "err", err)
		}
	})
}

// aggregateEC folds the replicas of container c's EC groups this target is
// the aggregator of, at epoch hi; it returns the stripes folded.
func (e *Engine) aggregateEC(ctx context.Context, pool, c vos.UUID, ti int, hi uint64) (int, error) {
	pm := e.PoolMapOf(pool)
	if pm == nil {
		return 0, nil
	}
	me := uint32(e.rank.Load())
	folded := 0
	err := e.eachContObject(ti, pool, c, func(oid vos.OID) error {
		po := placement.OID{Hi: oid.Hi, Lo: oid.Lo}
		if !po.Redun().IsEC() || po.Groups() == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if cur := e.PoolMapOf(pool); cur == nil || cur.Version() != pm.Version() {
			return daoserr.New(daoserr.Stale, "EC aggregation: the pool map changed; the next pass goes on")
		}
		l, err := pm.Layout(po)
		if err != nil {
			return nil
		}
		k, p := po.Class().DataCells(), po.Class().ParityCells()
		for gi := range l.Groups {
			grp := l.Group(gi)
			if grp[k].Rank != me || int(grp[k].Target) != ti || !groupInService(grp, pm) {
				continue
			}
			g := &ecGroupRebuild{e: e, pm: pm, pool: pool, c: c, oid: oid, poid: &enginepb.OID{Hi: oid.Hi, Lo: oid.Lo},
				grp: grp, k: k, p: p, epoch: hi, liveData: seqInts(0, k), liveQ: seqInts(k, k+p)}
			dkeys, err := e.localKeys(ti, pool, c, oid, hi, nil)
			if err != nil {
				e.log.Debug("EC aggregation: list dkeys", "oid", oid, "err", err)
				continue
			}
			for _, d := range dkeys {
				if placement.DkeyGroupOf(po, d) != gi {
					continue
				}
				n, err := g.aggregateDkey(ctx, ti, d)
				folded += n
				if err != nil {
					e.log.Debug("EC aggregation: dkey left for the next pass", "oid", oid, "dkey", d, "err", err)
				}
			}
		}
		return nil
	})
	return folded, err
}

// groupInService reports whether every shard of grp is on a target of its
// own in service, and none is rebuilding or moving.
func groupInService(grp []placement.Shard, pm *PoolMap) bool {
	for pos, absent := range placement.UnusableShards(grp, pm.PoolMap) {
		if absent || grp[pos].Rebuilding || grp[pos].HasPrev {
			return false
		}
	}
	return true
}

// aggregateDkey folds the replicas of dkey's array akeys; the aggregator
// is target ti (the group's first parity shard), whose keys and replicas
// are listed in place.
func (g *ecGroupRebuild) aggregateDkey(ctx context.Context, ti int, dkey []byte) (int, error) {
	q := g.k
	akeys, err := g.e.localKeys(ti, g.pool, g.c, g.oid, g.epoch, dkey)
	if err != nil {
		return 0, err
	}
	var cell uint64
	folded := 0
	for _, akey := range akeys {
		if string(akey) == ec.CellAkey {
			continue
		}
		reps, rsize, err := g.e.localReplicas(ti, g.pool, g.c, g.oid, g.epoch, dkey, akey)
		if err != nil {
			return folded, err
		}
		if rsize == 0 || len(reps) == 0 {
			continue // a single value, or nothing to fold
		}
		if cell == 0 {
			if cell, err = g.cellSize(ctx, q, dkey); err != nil {
				return folded, err
			}
		}
		geo, err := ec.NewGeometry(g.k, g.p, cell, rsize)
		if err != nil {
			return folded, err
		}
		var stripes []uint64
		for _, x := range reps {
			for s := geo.StripeOf(x.Recx.Idx); s <= geo.StripeOf(x.Recx.Idx+x.Recx.Nr-1); s++ {
				if len(stripes) == 0 || stripes[len(stripes)-1] < s {
					stripes = append(stripes, s)
				}
			}
		}
		for _, s := range stripes {
			ok, err := g.foldStripe(ctx, dkey, akey, geo, s)
			if err != nil {
				return folded, daoserr.Context(err, "akey %q stripe %d", akey, s)
			}
			if ok {
				folded++
			}
		}
	}
	return folded, nil
}

// cellSize reads the cell size dkey's writes recorded on the shard at pos.
func (g *ecGroupRebuild) cellSize(ctx context.Context, pos int, dkey []byte) (uint64, error) {
	buf := make([]byte, 8)
	res, err := g.fetch(ctx, pos, g.epoch, dkey, []*enginepb.IOD{{Akey: []byte(ec.CellAkey), Type: uint32(vos.IODSingle), Size: 8}}, [][]byte{buf})
	if err != nil {
		return 0, err
	}
	if len(res) != 1 || res[0].Size != 8 {
		return 0, daoserr.Newf(daoserr.Nonexist, "dkey %q has no cell size", dkey)
	}
	return binary.LittleEndian.Uint64(buf), nil
}

// foldStripe encodes stripe s's parity from its data cells at the pass's
// epoch, writes it, and punches the stripe's replicas; a stripe with a
// hole is left as it is (false).
func (g *ecGroupRebuild) foldStripe(ctx context.Context, dkey, akey []byte, geo ec.Geometry, s uint64) (bool, error) {
	codec, err := ec.CodecFor(g.k, g.p)
	if err != nil {
		return false, err
	}
	cb := geo.CellBytes()
	data := make([][]byte, g.k)
	for pos := range data {
		data[pos] = make([]byte, cb)
		c := geo.CellRecx(s, pos)
		iod := &enginepb.IOD{Akey: akey, Type: uint32(vos.IODArray), Size: geo.RecSize, Recxs: []*enginepb.Recx{{Idx: geo.ShardIndex(c.Idx), Nr: c.Nr}}}
		res, err := g.fetch(ctx, pos, g.epoch, dkey, []*enginepb.IOD{iod}, [][]byte{data[pos]})
		if err != nil {
			return false, err
		}
		var have uint64
		for _, r := range res {
			for _, x := range r.Extents {
				have += x.Nr
			}
		}
		if have != c.Nr {
			return false, nil // a hole: its replicas stay
		}
	}
	parity := make([][]byte, g.p)
	if err := codec.Encode(data, parity); err != nil {
		return false, err
	}
	// Last parity shard first: a degraded read takes the parity's epoch
	// from the first parity shard in service and reads the later ones at it,
	// so once that shard has the new row, every later one has it too, even
	// if this pass stops half way (a failure, a crash of this target).
	pr := geo.ParityRecx(s, 1)
	for j := len(parity) - 1; j >= 0; j-- {
		iod := &enginepb.IOD{Akey: akey, Type: uint32(vos.IODArray), Size: geo.RecSize, Recxs: []*enginepb.Recx{{Idx: pr.Idx, Nr: pr.Nr}}}
		if err := g.write(ctx, g.k+j, g.epoch, dkey, []*enginepb.IOD{iod}, [][]byte{parity[j]}); err != nil {
			return false, err
		}
	}
	// every parity shard has the new parity: the replicas may go
	sr := geo.StripeRecx(s)
	for j := range parity {
		punch := &enginepb.IOD{Akey: akey, Type: uint32(vos.IODArray), Size: 0, Recxs: []*enginepb.Recx{{Idx: sr.Idx, Nr: sr.Nr}}}
		if err := g.write(ctx, g.k+j, g.epoch, dkey, []*enginepb.IOD{punch}, nil); err != nil {
			return false, err
		}
	}
	return true, nil
}

// localKeys lists on target ti the dkeys (dkey nil) or the akeys of dkey of
// object oid, at epoch.
func (e *Engine) localKeys(ti int, pool, c vos.UUID, oid vos.OID, epoch uint64, dkey []byte) ([][]byte, error) {
	var out [][]byte
	var anchor vos.Anchor
	for !anchor.EOF {
		var keys [][]byte
		err := e.withPool(ti, pool, func(p *vos.Pool) (err error) {
			if dkey == nil {
				keys, err = p.ListDkeys(c, oid, vos.Epoch(epoch), &anchor, 1024)
			} else {
				keys, err = p.ListAkeys(c, oid, vos.Epoch(epoch), dkey, &anchor, 1024)
			}
			return err
		})
		if daoserr.Is(err, daoserr.Nonexist) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, keys...)
	}
	return out, nil
}

// localReplicas lists on target ti the extents of akey below the parity
// index space (a parity shard's replicas), at epoch, with the record size.
func (e *Engine) localReplicas(ti int, pool, c vos.UUID, oid vos.OID, epoch uint64, dkey, akey []byte) ([]vos.RecxEntry, uint64, error) {
	var out []vos.RecxEntry
	var rsize uint64
	var anchor vos.Anchor
	for !anchor.EOF {
		var xs []vos.RecxEntry
		err := e.withPool(ti, pool, func(p *vos.Pool) (err error) {
			xs, rsize, err = p.ListRecx(c, oid, vos.Epoch(epoch), dkey, akey, &anchor, 1024)
			return err
		})
		if daoserr.Is(err, daoserr.Nonexist) {
			return out, rsize, nil
		}
		if err != nil {
			return nil, 0, err
		}
		for _, x := range xs {
			if x.Recx.Idx >= ec.ParityIndicator {
				return out, rsize, nil
			}
			out = append(out, x)
		}
		if len(xs) == 0 {
			break
		}
	}
	return out, rsize, nil
}
