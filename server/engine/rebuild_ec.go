package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/ec"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/server/vos"
)

// Rebuild of erasure-coded objects (see docs/design/erasure-codes.md). A
// group's shards hold cell positions in layout order: 0..k-1 data, k..k+p-1
// parity; parity shards hold every dkey and akey of the group. For a group
// with rebuilding shards, the rebuilder is the first parity shard in service
// (or, with every parity shard lost, the first data shard). For each dkey,
// read at the scan's epoch E, it writes to each rebuilding shard what that
// shard held, with the epochs it held it at (a degraded read compares the
// epochs of replicas and parity, and reads data cells at the parity's
// epoch):
//
//   - each stripe with parity: the lost positions' cells (data, or their
//     own parity row) are computed from k cells read at the parity's epoch
//     and written at it;
//   - replicas: a lost parity shard gets a copy of a live parity shard's
//     (every parity shard holds them all), a lost data shard those of its
//     records at its indexes, each at its epoch;
//   - with no parity shard left, parity is encoded again from the data
//     shards at E (no replicas);
//   - single values (data shard 0 and the parity shards) and the cell size
//     (ec.CellAkey, on every shard) are copied at rebuildEpoch.

// ecCall sends a server-only request to shard s and decodes its reply.
func (e *Engine) ecCall(ctx context.Context, pm *PoolMap, s placement.Shard, op uint16, m, reply proto.Message, recv [][]byte) error {
	b, _ := proto.Marshal(m)
	hdr, err := e.seal(op, b)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, replicaTimeout)
	defer cancel()
	cl, err := e.peers.Get(ctx, pm.Addr[s.Rank])
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		r, err := cl.Call(ctx, rpc.Message{Opcode: op, Target: s.Target, Header: hdr}, recv)
		if daoserr.Is(err, daoserr.InProgress) && attempt < 100 {
			if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
				return err
			}
			if hdr, err = e.seal(op, b); err != nil { // a new nonce: not a replay
				return err
			}
			continue
		}
		if err != nil {
			return daoserr.Context(err, "rank %d target %d", s.Rank, s.Target)
		}
		if reply != nil {
			if err := proto.Unmarshal(r.Header, reply); err != nil {
				return daoserr.Wrap(daoserr.Proto, err, "%s reply", enginepb.OpName(op))
			}
		}
		return nil
	}
}

// ecFetch serves OpECFetch: a fetch at an epoch for a peer's EC rebuild.
func (e *Engine) ecFetch(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.ObjIOReq
	p, c, release, err := e.contReq(req, &m, 0)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	oid := vos.OID{Hi: m.Oid.GetHi(), Lo: m.Oid.GetLo()}
	iods := vosIODs(m.Iods)
	var total uint64
	for i := range iods {
		n, err := iodBytes(&iods[i])
		if err != nil {
			return rpc.Response{}, err
		}
		total += n
	}
	if total > vos.MaxUpdateBytes {
		return rpc.Response{}, daoserr.Newf(daoserr.Rec2Big, "EC rebuild read of %d bytes", total)
	}
	buf := make([]byte, total)
	sgls, err := splitBulk(iods, buf)
	if err != nil {
		return rpc.Response{}, err
	}
	if _, err := e.readAt(p, &e.targets[req.Target].txs, m.Epoch, c, oid, m.Dkey); err != nil {
		return rpc.Response{}, err
	}
	res, err := p.Fetch(c, oid, readEpoch(m.Epoch), 0, m.Dkey, iods, sgls)
	if err != nil {
		return rpc.Response{}, err
	}
	rep := &enginepb.ObjFetchRep{}
	for _, r := range res {
		fr := &enginepb.FetchResult{Size: r.Size}
		for _, x := range r.Extents {
			fr.Extents = append(fr.Extents, &enginepb.Recx{Idx: x.Idx, Nr: x.Nr})
		}
		rep.Results = append(rep.Results, fr)
	}
	hdr, err := proto.Marshal(rep)
	return rpc.Response{Header: hdr, Bulk: [][]byte{buf}}, err
}

// ecList serves OpECList: dkeys (no dkey given) or akeys at an epoch.
func (e *Engine) ecList(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.ObjListReq
	p, c, release, err := e.contReq(req, &m, 0)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	oid := vos.OID{Hi: m.Oid.GetHi(), Lo: m.Oid.GetLo()}
	var under []byte
	if len(m.Dkey) > 0 {
		under = m.Dkey
	}
	if _, err := e.readAt(p, &e.targets[req.Target].txs, m.Epoch, c, oid, under); err != nil {
		return rpc.Response{}, err
	}
	anchor := &vos.Anchor{Key: m.Anchor}
	var keys [][]byte
	if len(m.Dkey) == 0 {
		keys, err = p.ListDkeys(c, oid, readEpoch(m.Epoch), anchor, clampMax(m.Max))
	} else {
		keys, err = p.ListAkeys(c, oid, readEpoch(m.Epoch), m.Dkey, anchor, clampMax(m.Max))
	}
	if daoserr.Is(err, daoserr.Nonexist) {
		keys, err, anchor.EOF = nil, nil, true
	}
	if err != nil {
		return rpc.Response{}, err
	}
	hdr, err := proto.Marshal(&enginepb.ObjListRep{Keys: keys, Anchor: anchor.Key, Eof: anchor.EOF})
	return rpc.Response{Header: hdr}, err
}

// ecListRecx serves OpECListRecx: an akey's extents with their epochs.
func (e *Engine) ecListRecx(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.ObjListRecxReq
	p, c, release, err := e.contReq(req, &m, 0)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	oid := vos.OID{Hi: m.Oid.GetHi(), Lo: m.Oid.GetLo()}
	if _, err := e.readAt(p, &e.targets[req.Target].txs, m.Epoch, c, oid, m.Dkey); err != nil {
		return rpc.Response{}, err
	}
	anchor := &vos.Anchor{Key: m.Anchor}
	ents, rsize, err := p.ListRecx(c, oid, readEpoch(m.Epoch), m.Dkey, m.Akey, anchor, clampMax(m.Max))
	if err != nil {
		return rpc.Response{}, err
	}
	rep := &enginepb.ObjListRecxRep{RecSize: rsize, Anchor: anchor.Key, Eof: anchor.EOF}
	for _, x := range ents {
		rep.Recxs = append(rep.Recxs, &enginepb.RecxEpoch{Idx: x.Recx.Idx, Nr: x.Recx.Nr, Epoch: x.Epoch})
	}
	hdr, err := proto.Marshal(rep)
	return rpc.Response{Header: hdr}, err
}

// ecGroupRebuild is one group's rebuild by this target.
type ecGroupRebuild struct {
	e        *Engine
	r        *poolRebuild
	pm       *PoolMap
	pool, c  vos.UUID
	oid      vos.OID
	poid     *enginepb.OID
	grp      []placement.Shard
	k, p     int
	lost     []int // positions rebuilding
	epoch    uint64
	liveData []int
	liveQ    []int // parity positions in service
	absent   []int // lost positions not to write: their target holds another shard of the group
}

func (g *ecGroupRebuild) isLost(pos int) bool { return slices.Contains(g.lost, pos) }

// rebuildECObject rebuilds the groups of EC object oid this target is the
// rebuilder of.
func (e *Engine) rebuildECObject(ctx context.Context, r *poolRebuild, pm *PoolMap, pool vos.UUID, ti int, me uint32, c vos.UUID, oid vos.OID, epoch uint64) error {
	po := placement.OID{Hi: oid.Hi, Lo: oid.Lo}
	l, err := pm.Layout(po)
	if err != nil {
		return daoserr.Context(err, "rebuild object %s", oid)
	}
	k, p := po.Class().DataCells(), po.Class().ParityCells()
	for gi := range l.Groups {
		grp := l.Group(gi)
		g := &ecGroupRebuild{e: e, r: r, pm: pm, pool: pool, c: c, oid: oid, poid: &enginepb.OID{Hi: oid.Hi, Lo: oid.Lo}, grp: grp, k: k, p: p, epoch: epoch}
		absent := placement.UnusableShards(grp, pm.PoolMap)
		for pos, s := range grp {
			switch {
			case absent[pos]:
				g.lost = append(g.lost, pos)
				g.absent = append(g.absent, pos)
			case s.Rebuilding:
				g.lost = append(g.lost, pos)
			case pos < k:
				g.liveData = append(g.liveData, pos)
			default:
				g.liveQ = append(g.liveQ, pos)
			}
		}
		if len(g.lost) == 0 {
			continue
		}
		if len(g.lost) > p {
			r.fail(daoserr.Newf(daoserr.DataLoss, "rebuild object %s group %d: %d of %d shards lost, the code survives %d", oid, gi, len(g.lost), k+p, p))
			continue
		}
		rebuilder := -1
		if len(g.liveQ) > 0 {
			rebuilder = g.liveQ[0]
		} else if len(g.liveData) > 0 {
			rebuilder = g.liveData[0]
		}
		if rebuilder < 0 || grp[rebuilder].Rank != me || int(grp[rebuilder].Target) != ti {
			continue
		}
		// the dkeys: a parity shard holds them all; else the data shards'
		from := g.liveQ
		if len(from) == 0 {
			from = g.liveData
		}
		seen := map[string]bool{}
		for _, pos := range from[:1+(len(from)-1)*boolInt(len(g.liveQ) == 0)] {
			keys, err := g.listKeys(ctx, pos, nil)
			if err != nil {
				r.fail(err)
				continue
			}
			for _, d := range keys {
				if seen[string(d)] || placement.DkeyGroupOf(po, d) != gi {
					continue
				}
				seen[string(d)] = true
				began := time.Now()
				if err := g.dkey(ctx, d); err != nil {
					r.fail(daoserr.Context(err, "rebuild EC object %s dkey %q", oid, d))
				}
				if err := sleepCtx(ctx, time.Duration(float64(time.Since(began))*(1-rebuildDuty)/rebuildDuty)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// listKeys lists every dkey (dkey nil) or akey of dkey on the shard at pos.
func (g *ecGroupRebuild) listKeys(ctx context.Context, pos int, dkey []byte) ([][]byte, error) {
	var out [][]byte
	var anchor []byte
	for {
		m := &enginepb.ObjListReq{Pool: g.pool[:], Cont: g.c[:], Oid: g.poid, Epoch: g.epoch, Dkey: dkey, Anchor: anchor, Max: 1024}
		var rep enginepb.ObjListRep
		if err := g.e.ecCall(ctx, g.pm, g.grp[pos], enginepb.OpECList, m, &rep, nil); err != nil {
			return nil, err
		}
		out = append(out, rep.Keys...)
		if rep.Eof || len(rep.Anchor) == 0 {
			return out, nil
		}
		anchor = rep.Anchor
	}
}

// listRecx lists akey's extents in [from, to) on the shard at pos, with
// their epochs, and the record size.
func (g *ecGroupRebuild) listRecx(ctx context.Context, pos int, dkey, akey []byte, from, to uint64) ([]vos.RecxEntry, uint64, error) {
	var out []vos.RecxEntry
	var rsize uint64
	anchor := binary.BigEndian.AppendUint64(nil, from)
	for {
		m := &enginepb.ObjListRecxReq{Pool: g.pool[:], Cont: g.c[:], Oid: g.poid, Epoch: g.epoch, Dkey: dkey, Akey: akey, Anchor: anchor, Max: 1024}
		var rep enginepb.ObjListRecxRep
		if err := g.e.ecCall(ctx, g.pm, g.grp[pos], enginepb.OpECListRecx, m, &rep, nil); err != nil {
			return nil, 0, err
		}
		rsize = max(rsize, rep.RecSize)
		for _, x := range rep.Recxs {
			lo, hi := max(x.Idx, from), min(x.Idx+x.Nr, to)
			if lo < hi {
				out = append(out, vos.RecxEntry{Recx: vos.Recx{Idx: lo, Nr: hi - lo}, Epoch: vos.Epoch(x.Epoch)})
			}
			if x.Idx+x.Nr >= to {
				return out, rsize, nil
			}
		}
		if rep.Eof || len(rep.Anchor) == 0 || len(rep.Recxs) == 0 {
			return out, rsize, nil
		}
		anchor = rep.Anchor
	}
}

// fetch reads iods of dkey on the shard at pos at epoch into bufs.
func (g *ecGroupRebuild) fetch(ctx context.Context, pos int, epoch uint64, dkey []byte, iods []*enginepb.IOD, bufs [][]byte) ([]*enginepb.FetchResult, error) {
	m := &enginepb.ObjIOReq{Pool: g.pool[:], Cont: g.c[:], Oid: g.poid, Epoch: epoch, Dkey: dkey, Iods: iods}
	var rep enginepb.ObjFetchRep
	if err := g.e.ecCall(ctx, g.pm, g.grp[pos], enginepb.OpECFetch, m, &rep, bufs); err != nil {
		return nil, err
	}
	return rep.Results, nil
}

// write sends iods with their values to the rebuilding shard at pos, at epoch.
func (g *ecGroupRebuild) write(ctx context.Context, pos int, epoch uint64, dkey []byte, iods []*enginepb.IOD, bulk [][]byte) error {
	if slices.Contains(g.absent, pos) {
		return nil
	}
	m := &enginepb.MigrateReq{Pool: g.pool[:], Cont: g.c[:], Oid: g.poid, Epoch: epoch, Dkey: dkey, Iods: iods, Version: g.pm.Version()}
	b, _ := proto.Marshal(m)
	hdr, err := g.e.seal(enginepb.OpMigrate, b)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, replicaTimeout)
	defer cancel()
	cl, err := g.e.peers.Get(ctx, g.pm.Addr[g.grp[pos].Rank])
	if err != nil {
		return err
	}
	if _, err := cl.Call(ctx, rpc.Message{Opcode: enginepb.OpMigrate, Target: g.grp[pos].Target, Header: hdr, Bulk: bulk}, nil); err != nil {
		return daoserr.Context(err, "rebuild: write to rank %d target %d", g.grp[pos].Rank, g.grp[pos].Target)
	}
	if g.r != nil { // a rebuild's (not an aggregation's): counted
		var n uint64
		for _, b := range bulk {
			n += uint64(len(b))
		}
		g.r.records.Add(uint64(len(iods)))
		g.r.bytes.Add(n)
	}
	return nil
}

// dkey rebuilds one dkey on the group's lost shards.
func (g *ecGroupRebuild) dkey(ctx context.Context, dkey []byte) error {
	src := g.liveQ
	if len(src) == 0 {
		src = g.liveData
	}
	akeys := map[string]bool{}
	var order [][]byte
	for _, pos := range src[:1+(len(src)-1)*boolInt(len(g.liveQ) == 0)] {
		keys, err := g.listKeys(ctx, pos, dkey)
		if err != nil {
			return err
		}
		for _, a := range keys {
			if !akeys[string(a)] {
				akeys[string(a)] = true
				order = append(order, a)
			}
		}
	}
	// the cell size, from the first shard that has it
	var cell uint64
	for _, pos := range append(slices.Clone(g.liveQ), g.liveData...) {
		c, err := g.cellSize(ctx, pos, dkey)
		if daoserr.Is(err, daoserr.Nonexist) {
			continue
		}
		if err != nil {
			return err
		}
		cell = c
		break
	}
	var errs []error
	for _, akey := range order {
		if err := g.akey(ctx, dkey, akey, cell); err != nil {
			errs = append(errs, daoserr.Context(err, "akey %q", akey))
		}
	}
	return errors.Join(errs...)
}

// akey rebuilds one akey of dkey.
func (g *ecGroupRebuild) akey(ctx context.Context, dkey, akey []byte, cell uint64) error {
	// array or single: an array lists its extents with a record size
	var rsize uint64
	for _, pos := range append(slices.Clone(g.liveQ), g.liveData...) {
		_, rs, err := g.listRecx(ctx, pos, dkey, akey, 0, 1)
		if err != nil {
			return err
		}
		if rsize = rs; rsize != 0 {
			break
		}
		if len(g.liveQ) > 0 {
			break // parity shards hold every array akey: this one is a single value
		}
	}
	if rsize == 0 {
		return g.single(ctx, dkey, akey)
	}
	geo, err := ec.NewGeometry(g.k, g.p, cell, rsize)
	if err != nil {
		return err
	}
	if len(g.liveQ) == 0 {
		return g.regenerateParity(ctx, dkey, akey, geo)
	}
	q := g.liveQ[0]
	reps, _, err := g.listRecx(ctx, q, dkey, akey, 0, ec.ParityIndicator)
	if err != nil {
		return err
	}
	pars, _, err := g.listRecx(ctx, q, dkey, akey, ec.ParityIndicator, ^uint64(0))
	if err != nil {
		return err
	}
	// every stripe with parity: the lost cells, data and parity, computed
	// from k cells at the parity's epoch and written at it
	if err := g.rebuildStripes(ctx, dkey, akey, geo, pars); err != nil {
		return err
	}
	// the replicas: a lost parity shard gets q's (every parity shard holds
	// them all), a lost data shard those of its records, at its indexes
	for _, pos := range g.lost {
		if pos >= g.k {
			if err := g.copyExtents(ctx, q, pos, dkey, akey, rsize, reps); err != nil {
				return err
			}
			continue
		}
		if err := g.dataReplicas(ctx, q, pos, dkey, akey, geo, reps); err != nil {
			return err
		}
	}
	return nil
}

// single copies a single value (data shard 0 and the parity shards hold it;
// the cell size every shard) to the lost shards that hold it.
func (g *ecGroupRebuild) single(ctx context.Context, dkey, akey []byte) error {
	holders := append([]int{0}, seqInts(g.k, g.k+g.p)...)
	if string(akey) == ec.CellAkey {
		holders = seqInts(0, g.k+g.p)
	}
	from := -1
	for _, pos := range holders {
		if !g.isLost(pos) {
			from = pos
			break
		}
	}
	if from < 0 {
		return daoserr.Newf(daoserr.DataLoss, "single value: every copy lost")
	}
	probe, err := g.fetch(ctx, from, g.epoch, dkey, []*enginepb.IOD{{Akey: akey, Type: uint32(vos.IODSingle)}}, nil)
	if err != nil || len(probe) != 1 || probe[0].Size == 0 {
		return err
	}
	size := probe[0].Size
	buf := make([]byte, size)
	iod := []*enginepb.IOD{{Akey: akey, Type: uint32(vos.IODSingle), Size: size}}
	if _, err := g.fetch(ctx, from, g.epoch, dkey, iod, [][]byte{buf}); err != nil {
		return err
	}
	var errs []error
	for _, pos := range holders {
		if g.isLost(pos) {
			errs = append(errs, g.write(ctx, pos, rebuildEpoch, dkey, iod, [][]byte{buf}))
		}
	}
	return errors.Join(errs...)
}

func seqInts(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// copyExtents copies extents of akey from the shard at pos to the lost shard
// at to, each at its epoch.
func (g *ecGroupRebuild) copyExtents(ctx context.Context, from, to int, dkey, akey []byte, rsize uint64, xs []vos.RecxEntry) error {
	byEpoch := map[vos.Epoch][]vos.Recx{}
	for _, x := range xs {
		byEpoch[x.Epoch] = append(byEpoch[x.Epoch], x.Recx)
	}
	for ep, rs := range byEpoch {
		for len(rs) > 0 {
			batch := rs[:min(len(rs), 256)]
			rs = rs[len(batch):]
			iod := &enginepb.IOD{Akey: akey, Type: uint32(vos.IODArray), Size: rsize}
			var n uint64
			for _, r := range batch {
				iod.Recxs = append(iod.Recxs, &enginepb.Recx{Idx: r.Idx, Nr: r.Nr})
				n += r.Nr * rsize
			}
			buf := make([]byte, n)
			if _, err := g.fetch(ctx, from, uint64(ep), dkey, []*enginepb.IOD{iod}, [][]byte{buf}); err != nil {
				return err
			}
			if err := g.write(ctx, to, uint64(ep), dkey, []*enginepb.IOD{iod}, [][]byte{buf}); err != nil {
				return err
			}
		}
	}
	return nil
}

// rebuildStripes computes, for every stripe with parity (pars, parity
// shard q's), the cells of the lost positions from k cells read at the
// parity's epoch (data cells as the full-stripe write left them), and writes
// them at that epoch: a data shard's cell at its index, a parity shard's own
// parity row.
func (g *ecGroupRebuild) rebuildStripes(ctx context.Context, dkey, akey []byte, geo ec.Geometry, pars []vos.RecxEntry) error {
	codec, err := ec.CodecFor(g.k, g.p)
	if err != nil {
		return err
	}
	cb := geo.CellBytes()
	var srcs []int // k positions in service, data first
	for p := 0; p < g.k+g.p && len(srcs) < g.k; p++ {
		if !g.isLost(p) {
			srcs = append(srcs, p)
		}
	}
	index := func(s uint64, pos int) ec.Recx {
		if pos < g.k {
			c := geo.CellRecx(s, pos)
			return ec.Recx{Idx: geo.ShardIndex(c.Idx), Nr: c.Nr}
		}
		return geo.ParityRecx(s, 1)
	}
	for _, x := range pars {
		first, _ := geo.ParityStripe(x.Recx.Idx)
		for s := first; s < first+x.Recx.Nr/geo.CellRecs; s++ {
			cells := make([][]byte, g.k+g.p)
			for _, sp := range srcs {
				cells[sp] = make([]byte, cb)
				rx := index(s, sp)
				iod := &enginepb.IOD{Akey: akey, Type: uint32(vos.IODArray), Size: geo.RecSize, Recxs: []*enginepb.Recx{{Idx: rx.Idx, Nr: rx.Nr}}}
				if _, err := g.fetch(ctx, sp, uint64(x.Epoch), dkey, []*enginepb.IOD{iod}, [][]byte{cells[sp]}); err != nil {
					return err
				}
			}
			if err := codec.Reconstruct(cells); err != nil {
				return err
			}
			for _, pos := range g.lost {
				rx := index(s, pos)
				iod := &enginepb.IOD{Akey: akey, Type: uint32(vos.IODArray), Size: geo.RecSize, Recxs: []*enginepb.Recx{{Idx: rx.Idx, Nr: rx.Nr}}}
				if err := g.write(ctx, pos, uint64(x.Epoch), dkey, []*enginepb.IOD{iod}, [][]byte{cells[pos]}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// dataReplicas writes to lost data shard pos the replicas (parity shard
// q's) of its records, at their epochs and the data shard's indexes.
func (g *ecGroupRebuild) dataReplicas(ctx context.Context, q, pos int, dkey, akey []byte, geo ec.Geometry, reps []vos.RecxEntry) error {
	for _, x := range reps {
		for idx, end := x.Recx.Idx, x.Recx.Idx+x.Recx.Nr; idx < end; {
			n := min(geo.CellRecs-idx%geo.CellRecs, end-idx)
			if geo.CellOf(idx) == pos {
				buf := make([]byte, n*geo.RecSize)
				iod := &enginepb.IOD{Akey: akey, Type: uint32(vos.IODArray), Size: geo.RecSize, Recxs: []*enginepb.Recx{{Idx: idx, Nr: n}}}
				if _, err := g.fetch(ctx, q, g.epoch, dkey, []*enginepb.IOD{iod}, [][]byte{buf}); err != nil {
					return err
				}
				iod.Recxs[0].Idx = geo.ShardIndex(idx)
				if err := g.write(ctx, pos, uint64(x.Epoch), dkey, []*enginepb.IOD{iod}, [][]byte{buf}); err != nil {
					return err
				}
			}
			idx += n
		}
	}
	return nil
}

// regenerateParity encodes the parity of every stripe holding data again,
// from the data shards at the scan's epoch, for lost parity shards when no
// parity shard is left; it is written at that epoch and folds in what the
// replicas held (there are none on the new shards).
func (g *ecGroupRebuild) regenerateParity(ctx context.Context, dkey, akey []byte, geo ec.Geometry) error {
	codec, err := ec.CodecFor(g.k, g.p)
	if err != nil {
		return err
	}
	stripes := map[uint64]bool{}
	for pos := 0; pos < g.k; pos++ {
		xs, _, err := g.listRecx(ctx, pos, dkey, akey, 0, ec.ParityIndicator)
		if err != nil {
			return err
		}
		for _, x := range xs {
			for s := x.Recx.Idx / geo.CellRecs; s <= (x.Recx.Idx+x.Recx.Nr-1)/geo.CellRecs; s++ {
				stripes[s] = true
			}
		}
	}
	cb := geo.CellBytes()
	for s := range stripes {
		data := make([][]byte, g.k)
		for pos := range data {
			data[pos] = make([]byte, cb)
			c := geo.CellRecx(s, pos)
			iod := &enginepb.IOD{Akey: akey, Type: uint32(vos.IODArray), Size: geo.RecSize, Recxs: []*enginepb.Recx{{Idx: geo.ShardIndex(c.Idx), Nr: c.Nr}}}
			if _, err := g.fetch(ctx, pos, g.epoch, dkey, []*enginepb.IOD{iod}, [][]byte{data[pos]}); err != nil {
				return err
			}
		}
		parity := make([][]byte, g.p)
		if err := codec.Encode(data, parity); err != nil {
			return err
		}
		pr := geo.ParityRecx(s, 1)
		for _, pos := range g.lost {
			iod := &enginepb.IOD{Akey: akey, Type: uint32(vos.IODArray), Size: geo.RecSize, Recxs: []*enginepb.Recx{{Idx: pr.Idx, Nr: pr.Nr}}}
			if err := g.write(ctx, pos, g.epoch, dkey, []*enginepb.IOD{iod}, [][]byte{parity[pos-g.k]}); err != nil {
				return err
			}
		}
	}
	return nil
}
