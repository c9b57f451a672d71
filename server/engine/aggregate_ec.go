package engine

import (
	"context"
	"encoding/binary"
	"slices"
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
// nothing before the stripe's parity covers them. Aggregation folds them,
// at an epoch hi (a lag in the past) that the management service leader
// gives every target (OpContAggregate with ec_fold): the group's first
// parity shard (the aggregator), for each stripe holding replicas visible
// at hi that is written whole or has parity, reads the k data cells at hi,
// encodes the parity, writes each parity shard its own row at hi (the last
// shard first), and then punches the stripe's replicas at hi on the parity
// shards. Until the punch, the replicas are older than the new parity and
// a degraded read ignores them; a crash between the steps leaves a stripe
// that is correct either way.
//
// The fold also guards VOS aggregation: a degraded read reconstructs a
// lost cell from the others read at the parity's epoch, which VOS
// aggregation below a later write would drop. So the leader merges a
// container's history (VOS aggregation) only up to the last epoch every
// target folded completely: every stripe with parity older than a replica
// below it folded, and no group out of service.
//
// Reading at hi through readAt waits for (or, after a bounded wait, skips)
// a transaction prepared on a data cell at or below hi, and every write
// committing later is above hi (its epoch is at least its prepare stamp,
// taken from a clock already past hi), so the parity covers exactly the
// data at hi. Writes go through OpMigrate (below aggregated epochs, as a
// rebuild's EC copies).
//
// A stripe with parity and a hole (records punched since, or never
// written) folds with the hole as zeros: a degraded read then reports those
// records as zero data. A stripe with neither parity nor all its records
// keeps its replicas (they are what a degraded read uses).

// ecAggregations is the passes running, so that one is not run twice at
// once, and none starts once the engine stops.
type ecAggregations struct {
	mu      sync.Mutex
	running map[ecAggKey]bool
	stopped bool
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

// foldEC runs an EC aggregation pass of container c on target ti at epoch
// hi and reports whether it was complete (false also when a pass is
// running already, or the engine stops).
func (e *Engine) foldEC(ctx context.Context, pool, c vos.UUID, ti int, hi uint64) (bool, error) {
	k := ecAggKey{pool, c, ti}
	a := &e.ecAgg
	a.mu.Lock()
	if a.running == nil {
		a.running = map[ecAggKey]bool{}
	}
	if a.running[k] || a.stopped {
		a.mu.Unlock()
		return false, nil
	}
	a.running[k] = true
	a.wg.Add(1)
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.running, k)
		a.mu.Unlock()
		a.wg.Done()
	}()
	n, complete, err := e.aggregateEC(ctx, pool, c, ti, hi)
	if n > 0 || err != nil || !complete {
		e.log.Info("EC aggregation", "pool", pool, "cont", c, "target", ti, "stripes_folded", n, "complete", complete, "err", err)
	}
	return complete, err
}

// aggregateEC folds the replicas of container c's EC groups this target is
// the aggregator of, at epoch hi; it returns the stripes folded and
// whether nothing was left that VOS aggregation at hi could spoil (see
// above): every group this target has a shard of in service, and every
// stripe that needed folding folded.
func (e *Engine) aggregateEC(ctx context.Context, pool, c vos.UUID, ti int, hi uint64) (int, bool, error) {
	pm := e.PoolMapOf(pool)
	if pm == nil {
		return 0, true, nil
	}
	me := uint32(e.rank.Load())
	folded, complete := 0, true
	mine := func(s placement.Shard) bool { return s.Rank == me && int(s.Target) == ti }
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
			complete = false
			return nil
		}
		k, p := po.Class().DataCells(), po.Class().ParityCells()
		for gi := range l.Groups {
			grp := l.Group(gi)
			if !slices.ContainsFunc(grp, mine) {
				continue
			}
			if !groupInService(grp, pm) {
				complete = false // folded once it is whole again
				continue
			}
			if !mine(grp[k]) {
				continue // its aggregator folds it
			}
			g := &ecGroupRebuild{e: e, pm: pm, pool: pool, c: c, oid: oid, poid: &enginepb.OID{Hi: oid.Hi, Lo: oid.Lo},
				grp: grp, k: k, p: p, epoch: hi, liveData: seqInts(0, k), liveQ: seqInts(k, k+p)}
			dkeys, err := e.localKeys(ti, pool, c, oid, hi, nil)
			if err != nil {
				complete = false
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
					complete = false
					e.log.Debug("EC aggregation: dkey left for the next pass", "oid", oid, "dkey", d, "err", err)
				}
			}
		}
		return nil
	})
	return folded, complete && err == nil, err
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
// is target ti (the group's first parity shard), whose keys, replicas and
// parity are listed in place. An error leaves a stripe that needed folding
// unfolded.
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
		reps, rsize, err := g.e.localExtents(ti, g.pool, g.c, g.oid, g.epoch, dkey, akey, 0, ec.ParityIndicator)
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
		pars, _, err := g.e.localExtents(ti, g.pool, g.c, g.oid, g.epoch, dkey, akey, ec.ParityIndicator, ^uint64(0))
		if err != nil {
			return folded, err
		}
		withParity := map[uint64]bool{}
		for _, x := range pars {
			first, _ := geo.ParityStripe(x.Recx.Idx)
			for s := first; s < first+x.Recx.Nr/geo.CellRecs; s++ {
				withParity[s] = true
			}
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
			ok, err := g.foldStripe(ctx, dkey, akey, geo, s, withParity[s])
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
// epoch, writes it, and punches the stripe's replicas. A stripe with a
// hole and no parity yet (withParity) is left as it is (false); with
// parity, its holes fold as zeros.
func (g *ecGroupRebuild) foldStripe(ctx context.Context, dkey, akey []byte, geo ec.Geometry, s uint64, withParity bool) (bool, error) {
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
		if have != c.Nr && !withParity {
			return false, nil // a hole and no parity: its replicas stay
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

// localExtents lists on target ti the extents of akey in [from, to), at
// epoch, with the record size.
func (e *Engine) localExtents(ti int, pool, c vos.UUID, oid vos.OID, epoch uint64, dkey, akey []byte, from, to uint64) ([]vos.RecxEntry, uint64, error) {
	var out []vos.RecxEntry
	var rsize uint64
	anchor := vos.Anchor{Key: binary.BigEndian.AppendUint64(nil, from)}
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
			if x.Recx.Idx >= to {
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
