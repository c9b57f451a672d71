package daos

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/ec"
	"github.com/godaos/godaos/internal/hlc"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/units"
)

// Erasure-coded objects (EC_kPp), on the client (see
// docs/design/erasure-codes.md). The arithmetic is internal/ec's; this file
// does the I/O:
//
//   - a group's shards hold cell positions in layout order, no rotation:
//     shards 0..k-1 data, k..k+p-1 parity. Every write reaches every parity
//     shard (parity or replicas of partial stripes; single values are
//     replicated to data shard 0 and the parity shards), so a parity shard
//     holds every dkey and akey of its group: listings go there;
//   - an update's pieces (data cells, parity, replicas) are one transaction
//     over the group's shards, prepared coordinator first (the first parity
//     shard, which every write of the dkey locks, so writers of a dkey queue
//     there and never deadlock on the others), committed at one epoch. The
//     parts are the engine's replicated-write parts: conflicts say
//     DER_INPROGRESS (retried), and a part whose coordinator dies is
//     resolved with its peers once the map excludes it;
//   - a fetch reads every shard at one epoch (a snapshot across shards):
//     healthy, the data shards only; with data shards lost (rebuilding in the
//     map, or not answering), their records come from the replicas on a
//     parity shard or are reconstructed from k cells, whichever was written
//     last.

// ecClock stamps the epochs of EC fetches: a read of several shards is
// made at one epoch, at or after everything this client has seen.
var ecClock hlc.Clock

// isEC reports whether o is erasure-coded.
func (o *Obj) isEC() bool { return o.OID.Redun().IsEC() }

// ecShape is o's k, p and the container's cell size (ec_cell_sz records).
func (o *Obj) ecShape() (k, p int, cell uint64, err error) {
	cl := o.OID.Class()
	cell, err = o.cont.ecCellSize()
	return cl.DataCells(), cl.ParityCells(), cell, err
}

// ecCellSize is the container's ec_cell_sz (DAOS_EC_CELL_DEF when unset).
func (c *Cont) ecCellSize() (uint64, error) {
	v := c.Info.GetProps()["ec_cell_sz"]
	if v == "" {
		return ec.CellDefault, nil
	}
	n, err := units.ParseByteSize(v)
	if err != nil {
		return 0, daoserr.Wrap(daoserr.Inval, err, "container %s: ec_cell_sz %q", c.Info.GetLabel(), v)
	}
	if err := ec.ValidateCellSize(uint64(n)); err != nil {
		return 0, daoserr.Context(err, "container %s", c.Info.GetLabel())
	}
	return uint64(n), nil
}

// ecCheckOpen refuses an EC object the pool cannot hold: two shards of one
// group on one target would be one VOS object, their index spaces mixed.
func (o *Obj) ecCheckOpen(l placement.Layout) error {
	if _, _, _, err := o.ecShape(); err != nil {
		return err
	}
	for g := range l.Groups {
		seen := map[[2]uint32]bool{}
		for _, s := range l.Group(g) {
			key := [2]uint32{s.Rank, s.Target}
			if seen[key] {
				return daoserr.Newf(daoserr.Inval, "object %s of class %s: its %d shards per group need as many targets, the pool has fewer",
					o.OID, o.OID.Class(), l.GroupSize).WithResolution("use a smaller EC class, or a pool on more targets")
			}
			seen[key] = true
		}
	}
	return nil
}

// ecAbsent is placement.UnusableShards with the client's current map.
func (o *Obj) ecAbsent(grp []placement.Shard) []bool {
	pm, _ := o.cont.Pool.poolMap()
	return placement.UnusableShards(grp, pm)
}

// ecCoord is the cell position that coordinates the group's writes: the
// first parity shard in use (every write reaches it).
func ecCoord(grp []placement.Shard, absent []bool, k int) int {
	for pos := k; pos < len(grp); pos++ {
		if !absent[pos] {
			return pos
		}
	}
	return k
}

// ecLost reports whether a request to a shard failed in a way that says the
// shard is gone (so a read may do without it), not that the request was bad.
func ecLost(err error) bool {
	switch daoserr.CodeOf(err) {
	case daoserr.Unreach, daoserr.TimedOut, daoserr.Shutdown, daoserr.Evicted:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// ecBuffers returns one contiguous buffer per IOD over the caller's buffers
// (recv, cut however the caller cut them), and a function that copies them
// back when they had to be gathered.
func ecBuffers(iods []IOD, recv [][]byte, what string) ([][]byte, func(), error) {
	sizes := make([]uint64, len(iods))
	var total uint64
	for i, d := range iods {
		sizes[i] = iodSize(d)
		total += sizes[i]
	}
	aligned := len(recv) == len(iods)
	var have uint64
	for i, b := range recv {
		have += uint64(len(b))
		if aligned && uint64(len(b)) < sizes[i] {
			aligned = false
		}
	}
	if aligned {
		out := make([][]byte, len(iods))
		for i := range iods {
			out[i] = recv[i][:sizes[i]]
		}
		return out, func() {}, nil
	}
	if have < total {
		return nil, nil, daoserr.Newf(daoserr.IOInval, "%s: buffers of %d bytes, the IODs describe %d", what, have, total)
	}
	flat := make([]byte, total)
	out := make([][]byte, len(iods))
	var off uint64
	for i := range iods {
		out[i] = flat[off : off+sizes[i]]
		off += sizes[i]
	}
	back := func() {
		rest := flat
		for _, b := range recv {
			n := copy(b, rest)
			rest = rest[n:]
			if len(rest) == 0 {
				return
			}
		}
	}
	gather := func() {
		rest := flat
		for _, b := range recv {
			n := copy(rest, b)
			rest = rest[n:]
		}
	}
	gather()
	return out, back, nil
}

func toECRecxs(rs []Recx) []ec.Recx {
	out := make([]ec.Recx, len(rs))
	for i, r := range rs {
		out[i] = ec.Recx{Idx: r.Idx, Nr: r.Nr}
	}
	return out
}

func pbRecxs(rs []ec.Recx) []*enginepb.Recx {
	out := make([]*enginepb.Recx, len(rs))
	for i, r := range rs {
		out[i] = &enginepb.Recx{Idx: r.Idx, Nr: r.Nr}
	}
	return out
}

// ecParts splits an update into the parts of the group's shards, indexed by
// cell position (nil: the shard gets nothing). Full stripes are encoded from
// the caller's buffers; the data segments of the parts are those buffers.
//
// Conditions (flags, and the IODs' with CondPerAkey) are put in the per-akey
// form on every part; ecCommit leaves them on the coordinator's alone (the
// first parity shard, which holds every key of the group). A punch of array
// records (an IOD of record size 0) needs the akey's record size: it is
// asked of the group's first parity shard.
func (o *Obj) ecParts(ctx context.Context, dkey []byte, flags CondFlags, iods []IOD, bufs [][]byte) ([]*txPart, error) {
	k, p, cell, err := o.ecShape()
	if err != nil {
		return nil, err
	}
	codec, err := ec.CodecFor(k, p)
	if err != nil {
		return nil, err
	}
	type piece struct {
		iod  *enginepb.IOD
		bulk [][]byte
	}
	per := make([][]piece, k+p)
	// zeros: the replicas of punched records of partial stripes, written
	// as a second write of the part (an akey appears once in a write)
	zeros := make([][]piece, k+p)
	var akeyConds CondFlags
	for i, d := range iods {
		if err := checkKey(o.OID, "akey", d.Akey); err != nil {
			return nil, err
		}
		cond := flags & (CondAkeyInsert | CondAkeyUpdate)
		if flags&CondPerAkey != 0 {
			cond = d.Flags & (CondAkeyInsert | CondAkeyUpdate)
		}
		akeyConds |= cond
		switch d.Type {
		case Single:
			// one data shard (position 0) and every parity shard: p+1 copies
			// survive p failures
			for _, pos := range append([]int{0}, seq(k, k+p)...) {
				per[pos] = append(per[pos], piece{&enginepb.IOD{Akey: d.Akey, Type: uint32(Single), Size: d.Size, Flags: uint32(cond)}, [][]byte{bufs[i]}})
			}
		case Array:
			if d.Size == 0 {
				if flags != 0 {
					return nil, daoserr.Newf(daoserr.NoSys, "EC object %s: conditional punch of array records", o.OID).
						WithResolution("punch the records without conditions")
				}
				pieces, err := o.ecRecordPunch(ctx, dkey, d, k, p, cell)
				if err != nil {
					return nil, daoserr.Context(err, "punch records of akey %q", d.Akey)
				}
				for pos, pc := range pieces {
					if pc.punch != nil {
						per[pos] = append(per[pos], piece{iod: pc.punch})
					}
					if pc.zeros != nil {
						zeros[pos] = append(zeros[pos], piece{pc.zeros, [][]byte{pc.zeroBuf}})
					}
				}
				continue
			}
			g, err := ec.NewGeometry(k, p, cell, d.Size)
			if err != nil {
				return nil, daoserr.Context(err, "akey %q", d.Akey)
			}
			plan, err := g.SplitWrite(toECRecxs(d.Recxs))
			if err != nil {
				return nil, daoserr.Context(err, "akey %q", d.Akey)
			}
			parity, err := plan.Encode(codec, bufs[i])
			if err != nil {
				return nil, err
			}
			for pos, sio := range plan.Shards {
				if len(sio.Recxs) == 0 {
					continue
				}
				pc := piece{iod: &enginepb.IOD{Akey: d.Akey, Type: uint32(Array), Size: d.Size, Recxs: pbRecxs(sio.Recxs), Flags: uint32(cond)}}
				for _, sg := range sio.Segs {
					src := bufs[i]
					if sg.Src == ec.FromParity {
						src = parity[pos-k]
					}
					pc.bulk = append(pc.bulk, src[sg.Off:sg.Off+sg.Len])
				}
				per[pos] = append(per[pos], pc)
			}
		default:
			return nil, daoserr.Newf(daoserr.Inval, "akey %q: IOD type %d", d.Akey, d.Type)
		}
	}
	// every shard the update reaches records the cell size (ec.CellAkey)
	cellVal := binary.LittleEndian.AppendUint64(nil, cell)
	wflags := uint32(flags & (CondDkeyInsert | CondDkeyUpdate))
	if akeyConds != 0 {
		wflags |= uint32(CondPerAkey)
	}
	parts := make([]*txPart, k+p)
	for pos, pcs := range per {
		if len(pcs) == 0 && len(zeros[pos]) == 0 {
			continue
		}
		pcs = append(pcs, piece{&enginepb.IOD{Akey: []byte(ec.CellAkey), Type: uint32(Single), Size: 8}, [][]byte{cellVal}})
		pt := &txPart{}
		for wi, list := range [][]piece{pcs, zeros[pos]} {
			if len(list) == 0 {
				continue
			}
			w := &enginepb.TxWrite{Oid: o.oid, Dkey: dkey}
			if wi == 0 {
				w.Flags = wflags
			}
			for _, pc := range list {
				w.Iods = append(w.Iods, pc.iod)
				pt.bulk = append(pt.bulk, pc.bulk...)
			}
			pt.writes = append(pt.writes, w)
		}
		parts[pos] = pt
	}
	return parts, nil
}

// recordPunch is one shard's share of a punch of array records: a punch
// (data shards: their records; parity shards: the parity and the replicas of
// the whole stripes punched) and, on parity shards, zeros written over the
// replicas of the partial stripes' punched records (a degraded read then
// finds them newer than the stripe's parity).
type recordPunch struct {
	punch, zeros *enginepb.IOD
	zeroBuf      []byte
}

// ecRecordPunch plans the punch of IOD d's records over the group's shards.
// A punch of an akey that holds no array is nothing to do.
func (o *Obj) ecRecordPunch(ctx context.Context, dkey []byte, d IOD, k, p int, cell uint64) ([]recordPunch, error) {
	rsize, err := o.ecRecSize(ctx, dkey, d.Akey)
	if err != nil || rsize == 0 {
		return nil, err
	}
	g, err := ec.NewGeometry(k, p, cell, rsize)
	if err != nil {
		return nil, err
	}
	// Records past the akey's last one hold nothing to punch: no zeros
	// there (they would make the array look longer to a degraded query).
	last, err := o.ecQueryRecx(ctx, GetRecx|GetMax, QueryResult{}, dkey, d.Akey)
	if daoserr.Is(err, daoserr.Nonexist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var recxs []ec.Recx
	for _, r := range toECRecxs(d.Recxs) {
		if end := last.Recx.Idx + last.Recx.Nr; r.Idx < end {
			recxs = append(recxs, ec.Recx{Idx: r.Idx, Nr: min(r.Nr, end-r.Idx)})
		}
	}
	if len(recxs) == 0 {
		return nil, nil
	}
	plan, err := g.SplitWrite(recxs)
	if err != nil {
		return nil, err
	}
	out := make([]recordPunch, k+p)
	iod := func(size uint64, rs []ec.Recx) *enginepb.IOD {
		return &enginepb.IOD{Akey: d.Akey, Type: uint32(Array), Size: size, Recxs: pbRecxs(rs)}
	}
	for pos := range k {
		if rs := plan.Shards[pos].Recxs; len(rs) > 0 {
			out[pos].punch = iod(0, rs)
		}
	}
	var full []ec.Recx // the whole stripes' logical extents
	for _, r := range plan.Full {
		first, last := g.StripeRecx(r.First), g.StripeRecx(r.First+r.N-1)
		full = append(full, ec.Recx{Idx: first.Idx, Nr: last.End() - first.Idx})
	}
	for pos := k; pos < k+p; pos++ {
		var punched, replicas []ec.Recx
		var n uint64
		for _, r := range plan.Shards[pos].Recxs {
			if r.IsParity() {
				punched = append(punched, r)
			} else {
				replicas = append(replicas, r)
				n += r.Nr
			}
		}
		punched = append(slices.Clone(full), punched...) // logical first: ascending
		if len(punched) > 0 {
			out[pos].punch = iod(0, punched)
		}
		if len(replicas) > 0 {
			out[pos].zeros, out[pos].zeroBuf = iod(rsize, replicas), make([]byte, n*rsize)
		}
	}
	return out, nil
}

// ecRecSize is the record size of array akey under dkey (0: no array
// there), asked of the group's first parity shard.
func (o *Obj) ecRecSize(ctx context.Context, dkey, akey []byte) (uint64, error) {
	var rsize uint64
	err := o.placed(ctx, func(ctx context.Context, l placement.Layout) error {
		s, err := o.ecReader(l, o.dkeyGroup(dkey))
		if err != nil {
			return err
		}
		req := &enginepb.ObjListRecxReq{Pool: o.pool, Cont: o.contID, Oid: o.oid, Epoch: max(ecClock.Now(), o.cont.Pool.seen.Load()),
			Dkey: dkey, Akey: akey, Max: 1}
		var rep enginepb.ObjListRecxRep
		if err := o.send(ctx, s, enginepb.OpObjListRecx, req, &rep); err != nil {
			if daoserr.Is(err, daoserr.Nonexist) {
				return nil
			}
			return err
		}
		rsize = rep.RecSize
		return nil
	})
	return rsize, err
}

func seq(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// ecUpdate is update for an EC object.
func (o *Obj) ecUpdate(ctx context.Context, flags CondFlags, dkey []byte, iods []IOD, bulk [][]byte) (uint64, error) {
	if err := checkCond(o.OID, "update", flags, condUpdate); err != nil {
		return 0, err
	}
	if err := checkKey(o.OID, "dkey", dkey); err != nil {
		return 0, err
	}
	if len(iods) == 0 {
		return 0, daoserr.Newf(daoserr.Inval, "update object %s dkey %q: no IODs", o.OID, dkey)
	}
	bufs, _, err := ecBuffers(iods, bulk, "update of object "+o.OID.String())
	if err != nil {
		return 0, err
	}
	parts, err := o.ecParts(ctx, dkey, flags, iods, bufs)
	if err != nil {
		return 0, daoserr.Context(err, "update object %s dkey %q", o.OID, dkey)
	}
	if !slices.ContainsFunc(parts, func(pt *txPart) bool { return pt != nil }) {
		return 0, nil // punches of records of akeys that hold none: nothing to write
	}
	var epoch uint64
	err = o.placed(ctx, func(ctx context.Context, l placement.Layout) (err error) {
		epoch, err = o.ecCommit(ctx, l, o.dkeyGroup(dkey), parts, flags != 0)
		return err
	})
	if err != nil {
		return 0, daoserr.Context(err, "dkey %q", dkey)
	}
	return epoch, nil
}

// ecPunch sends a punch to every shard of group g, as one transaction.
// A condition (CondPunch) is checked by the coordinator (see ecCommit);
// PunchDkeysCond sends conditional punches one dkey at a time.
func (o *Obj) ecPunch(ctx context.Context, g int, req *enginepb.ObjPunchReq) error {
	var writes []*enginepb.TxWrite
	switch {
	case len(req.Dkeys) > 0:
		for _, d := range req.Dkeys {
			writes = append(writes, &enginepb.TxWrite{Oid: o.oid, Dkey: d, Punch: true, Flags: req.Flags})
		}
	case len(req.Dkey) > 0:
		writes = []*enginepb.TxWrite{{Oid: o.oid, Dkey: req.Dkey, Akeys: req.Akeys, Punch: true, Flags: req.Flags}}
	default:
		writes = []*enginepb.TxWrite{{Oid: o.oid, Punch: true, Flags: req.Flags}}
	}
	return o.placed(ctx, func(ctx context.Context, l placement.Layout) error {
		parts := make([]*txPart, l.GroupSize)
		for i := range parts {
			parts[i] = &txPart{writes: writes}
		}
		_, err := o.ecCommit(ctx, l, g, parts, req.Flags != 0)
		return err
	})
}

// ecCommit writes parts (by cell position; nil: none) to group g's shards
// as one transaction and returns its epoch. The parts are the engine's
// replicated-write parts (Replica set): a conflict with another write says
// DER_INPROGRESS, and a part whose coordinator is excluded is resolved with
// its peers. An error that leaves the outcome unknown is retried by placed
// (an update or punch written twice is the same update or punch), unless
// the write is conditional: its conditions stay on the coordinator's part
// alone, which applies it before deciding (server/engine/tx.go), so a
// failed condition (DER_EXIST, DER_NONEXIST) aborts it everywhere; written
// twice, it could fail the second time, so an unknown outcome is reported.
func (o *Obj) ecCommit(ctx context.Context, l placement.Layout, g int, parts []*txPart, conditional bool) (uint64, error) {
	c := o.cont
	grp := l.Group(g)
	k := o.OID.Class().DataCells()
	absent := o.ecAbsent(grp)
	parts = slices.Clone(parts)
	for pos := range parts {
		if absent[pos] {
			parts[pos] = nil
		}
	}
	coord := ecCoord(grp, absent, k) // the first parity shard: every write of the group reaches it
	if parts[coord] == nil {
		return 0, daoserr.Newf(daoserr.Misc, "EC write of object %s without a part for its first parity shard", o.OID)
	}
	if conditional {
		// the coordinator judges the conditions: it must hold every key of
		// the group, which a shard being rebuilt may not yet
		if grp[coord].Rebuilding {
			return 0, daoserr.Newf(daoserr.InProgress, "conditional write of EC object %s: its first parity shard is being rebuilt", o.OID).
				WithResolution("retried until the rebuild is done")
		}
		for pos, pt := range parts {
			if pt != nil && pos != coord {
				parts[pos] = withoutConditions(pt)
			}
		}
	}
	var id [16]byte
	rand.Read(id[:])
	coordAddr, err := c.target(grp[coord].Rank)
	if err != nil {
		return 0, err
	}
	var order []int // coordinator first
	var peers []*enginepb.TxPeer
	for _, pos := range append([]int{coord}, seq(0, len(grp))...) {
		if parts[pos] == nil || (pos == coord && len(order) > 0) {
			continue
		}
		addr, err := c.target(grp[pos].Rank)
		if err != nil {
			return 0, err
		}
		order = append(order, pos)
		peers = append(peers, &enginepb.TxPeer{Rank: grp[pos].Rank, Addr: addr, Target: grp[pos].Target})
	}
	// The protocol runs to its end once a part is prepared (bounded), whatever
	// the caller's context says: no locks are left behind.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), txCommitTimeout)
	defer cancel()
	var mu sync.Mutex
	var epoch uint64
	prepare := func(ctx context.Context, pos int) error {
		m := &enginepb.TxPrepareReq{Pool: o.pool, Cont: o.contID, Txid: id[:], Writes: parts[pos].writes, Replica: true,
			Coordinator: pos == coord, CoordAddr: coordAddr, CoordTarget: grp[coord].Target, CoordRank: grp[coord].Rank, Peers: peers}
		var rep enginepb.TxPrepareRep
		r, err := c.rpc(ctx, dest{grp[pos], l.Version}, enginepb.OpTxPrepare, m, parts[pos].bulk, nil)
		if err = decodeReply(r, err, &rep); err != nil {
			return daoserr.Context(err, "prepare EC part of shard %d", pos)
		}
		mu.Lock()
		epoch = max(epoch, rep.Epoch)
		mu.Unlock()
		return nil
	}
	finish := func(pos int, abort bool) error {
		m := &enginepb.TxCommitReq{Pool: o.pool, Cont: o.contID, Txid: id[:], Epoch: epoch, Abort: abort, Coordinator: pos == coord}
		return c.send(pctx, dest{Shard: grp[pos]}, enginepb.OpTxCommit, m, nil)
	}
	all := func(ps []int, fn func(pos int) error) []error {
		errs := make([]error, len(ps))
		var wg sync.WaitGroup
		for i, pos := range ps {
			wg.Go(func() { errs[i] = fn(pos) })
		}
		wg.Wait()
		return errs
	}
	// 1. prepare: the coordinator, then the others together
	if err := prepare(ctx, coord); err != nil {
		if !daoserr.Is(err, daoserr.InProgress) && !daoserr.Is(err, daoserr.Stale) {
			finish(coord, true) // it may have prepared before the reply was lost
		}
		return 0, err
	}
	perr := errors.Join(all(order[1:], func(pos int) error { return prepare(pctx, pos) })...)
	if perr != nil {
		all(order, func(pos int) error { return finish(pos, true) })
		return 0, ecRetryable(perr)
	}
	// 2. decide at the coordinator, 3. commit the others
	if err := finish(coord, false); err != nil {
		if daoserr.Is(err, daoserr.TxRestart) || conditional && (daoserr.Is(err, daoserr.Exist) || daoserr.Is(err, daoserr.Nonexist)) {
			all(order[1:], func(pos int) error { return finish(pos, true) })
			if !daoserr.Is(err, daoserr.TxRestart) {
				return 0, err // the condition failed: nothing is written
			}
		}
		if conditional {
			return 0, daoserr.Wrap(daoserr.Misc, err, "conditional EC write of object %s: outcome unknown (its coordinator did not answer)", o.OID)
		}
		// unknown: the others learn the outcome from the coordinator (or
		// its peers); the write is sent again, as a new one
		return 0, ecRetryable(err)
	}
	c.Pool.sawEpoch(epoch)
	var refused error
	errs := all(order[1:], func(pos int) error { return finish(pos, false) })
	for i, err := range errs {
		if daoserr.Is(err, daoserr.TxRestart) {
			// it resolved the part as aborted with its peers (the coordinator
			// was excluded meanwhile): write again
			refused = errors.Join(refused, daoserr.Context(err, "shard %d", order[i+1]))
		}
	}
	if refused != nil && conditional {
		// Written again, it could fail its own condition. The parts settle
		// it among themselves: committed if any still in the map committed.
		c.Pool.refreshMap(pctx, c.Pool.CurrentMapVersion())
		for i, err := range errs {
			if err == nil && !shardExcluded(c.Pool, grp[order[i+1]]) {
				return epoch, nil
			}
		}
		return 0, daoserr.Wrap(daoserr.Misc, refused, "conditional EC write of object %s: outcome unknown (its coordinator was excluded before every part committed)", o.OID)
	}
	if refused != nil {
		return 0, daoserr.Wrap(daoserr.InProgress, refused, "EC write of object %s: a part was aborted after its coordinator decided", o.OID)
	}
	return epoch, nil
}

// withoutConditions is a copy of part pt with its writes' conditions
// removed.
func withoutConditions(pt *txPart) *txPart {
	out := &txPart{bulk: pt.bulk}
	for _, w := range pt.writes {
		c := proto.Clone(w).(*enginepb.TxWrite)
		c.Flags = 0
		for _, d := range c.Iods {
			d.Flags = 0
		}
		out.writes = append(out.writes, c)
	}
	return out
}

// ecRetryable makes an error of a write's protocol one that placed retries
// (the write is sent again as a new transaction), unless it says the
// request itself is wrong.
func ecRetryable(err error) error {
	switch daoserr.CodeOf(err) {
	case daoserr.Inval, daoserr.NoPerm, daoserr.NoHdl, daoserr.IOInval, daoserr.Rec2Big, daoserr.Key2Big, daoserr.NoSpace,
		daoserr.Stale, daoserr.InProgress, daoserr.Unreach, daoserr.TimedOut, daoserr.Shutdown, daoserr.Evicted:
		return err
	}
	return daoserr.Wrap(daoserr.InProgress, err, "EC write not confirmed")
}

// ecReader is where listings of group g go: the first parity shard in
// service (parity shards hold every key of the group), else the first data
// shard in service.
func (o *Obj) ecReader(l placement.Layout, g int) (dest, error) {
	grp := l.Group(g)
	k := o.OID.Class().DataCells()
	absent := o.ecAbsent(grp)
	for _, pos := range append(seq(k, len(grp)), seq(0, k)...) {
		if !grp[pos].Rebuilding && !absent[pos] {
			return dest{grp[pos], l.Version}, nil
		}
	}
	return dest{}, daoserr.Newf(daoserr.DataLoss, "object %s group %d: no shard is in service (pool map version %d)", o.OID, g, l.Version).
		WithResolution("bring the failed ranks back (dmg system start, dmg pool reintegrate)")
}

// ecRead is what one shard reads for a fetch: IODs in its index space, and
// the buffers their bytes go to.
type ecRead struct {
	iods []*enginepb.IOD
	recv [][]byte
	who  []int // the caller's IOD of each of iods
	res  []*enginepb.FetchResult
}

func (r *ecRead) add(iod *enginepb.IOD, who int, recv ...[]byte) {
	r.iods = append(r.iods, iod)
	r.who = append(r.who, who)
	r.recv = append(r.recv, recv...)
}

// ecFetch is fetchAt for an EC object.
func (o *Obj) ecFetch(ctx context.Context, epoch uint64, flags CondFlags, dkey []byte, iods []IOD, recv [][]byte) ([]FetchResult, error) {
	if err := checkCond(o.OID, "fetch", flags, condFetch); err != nil {
		return nil, err
	}
	if _, err := o.ioReq(dkey, iods, 0); err != nil { // validates keys
		return nil, err
	}
	if epoch == 0 {
		epoch = max(ecClock.Now(), o.cont.Pool.seen.Load())
	}
	bufs, back, err := ecBuffers(iods, recv, "fetch of object "+o.OID.String())
	if err != nil {
		return nil, err
	}
	_, p, _, err := o.ecShape()
	if err != nil {
		return nil, err
	}
	var out []FetchResult
	err = o.placed(ctx, func(ctx context.Context, l placement.Layout) error {
		grp := l.Group(o.dkeyGroup(dkey))
		var missing []int
		absent := o.ecAbsent(grp)
		for pos, s := range grp {
			if s.Rebuilding || absent[pos] {
				missing = append(missing, pos)
			}
		}
		for {
			res, lost, err := o.ecFetchOnce(ctx, l.Version, grp, missing, epoch, flags, dkey, iods, bufs)
			if err == nil {
				out = res
				return nil
			}
			if lost < 0 || len(missing) >= p || slices.Contains(missing, lost) {
				return err
			}
			missing = append(missing, lost) // do without it: degraded
		}
	})
	if err != nil {
		return nil, daoserr.Context(err, "dkey %q", dkey)
	}
	back()
	return out, nil
}

// ecFetchOnce reads iods with the cell positions in missing unavailable.
// When a shard fails as if gone, lost is its position.
func (o *Obj) ecFetchOnce(ctx context.Context, ver uint32, grp []placement.Shard, missing []int, epoch uint64, flags CondFlags,
	dkey []byte, iods []IOD, bufs [][]byte) (out []FetchResult, lost int, err error) {
	k, p, cell, err := o.ecShape()
	if err != nil {
		return nil, -1, err
	}
	live := func(pos int) bool { return !slices.Contains(missing, pos) }
	firstLive := func(order []int) int {
		for _, pos := range order {
			if live(pos) {
				return pos
			}
		}
		return -1
	}
	keysAt := firstLive(append(seq(k, k+p), seq(0, k)...)) // holds every key
	if keysAt < 0 {
		return nil, -1, daoserr.Newf(daoserr.DataLoss, "object %s: no shard in service", o.OID)
	}
	// Conditions are checked where every key is, first.
	if flags != 0 {
		probe := &enginepb.ObjIOReq{Pool: o.pool, Cont: o.contID, Oid: o.oid, Epoch: epoch, Dkey: dkey, Flags: uint32(flags)}
		for _, d := range iods {
			probe.Iods = append(probe.Iods, &enginepb.IOD{Akey: d.Akey, Type: uint32(d.Type), Flags: uint32(d.Flags)})
		}
		if _, err := o.rpc(ctx, dest{grp[keysAt], ver}, enginepb.OpObjFetch, probe, nil, nil); err != nil {
			if ecLost(err) {
				return nil, keysAt, err
			}
			return nil, -1, err
		}
	}
	reads := map[int]*ecRead{}
	read := func(pos int) *ecRead {
		if reads[pos] == nil {
			reads[pos] = &ecRead{}
		}
		return reads[pos]
	}
	out = make([]FetchResult, len(iods))
	geoms := make([]ec.Geometry, len(iods))
	plans := make([]*ec.ReadPlan, len(iods))
	for i, d := range iods {
		switch {
		case d.Type == Single:
			at := 0
			if !live(0) {
				at = firstLive(seq(k, k+p))
			}
			read(at).add(&enginepb.IOD{Akey: d.Akey, Type: uint32(Single), Size: d.Size}, i, bufs[i])
		case d.Type == Array && d.Size == 0: // the record size only
			read(keysAt).add(&enginepb.IOD{Akey: d.Akey, Type: uint32(Array), Recxs: pbRecxs(toECRecxs(d.Recxs))}, i)
		case d.Type == Array:
			g, err := ec.NewGeometry(k, p, cell, d.Size)
			if err != nil {
				return nil, -1, daoserr.Context(err, "akey %q", d.Akey)
			}
			plan, err := g.SplitRead(toECRecxs(d.Recxs), missing)
			if err != nil {
				return nil, -1, daoserr.Context(err, "akey %q", d.Akey)
			}
			geoms[i], plans[i] = g, plan
			for pos, sio := range plan.Shards {
				if len(sio.Recxs) == 0 {
					continue
				}
				var rv [][]byte
				for _, sg := range sio.Segs {
					rv = append(rv, bufs[i][sg.Off:sg.Off+sg.Len])
				}
				read(pos).add(&enginepb.IOD{Akey: d.Akey, Type: uint32(Array), Size: d.Size, Recxs: pbRecxs(sio.Recxs)}, i, rv...)
			}
			if len(plan.Rebuild) > 0 {
				for _, sr := range plan.Rebuild {
					for _, w := range sr.Wants {
						clear(bufs[i][w.Off : w.Off+w.Recx.Nr*d.Size])
					}
				}
			}
		default:
			return nil, -1, daoserr.Newf(daoserr.Inval, "akey %q: IOD type %d", d.Akey, d.Type)
		}
	}
	if lost, err := o.ecReadAll(ctx, ver, grp, epoch, dkey, reads); err != nil {
		return nil, lost, err
	}
	for pos, r := range reads {
		for j, fr := range r.res {
			i := r.who[j]
			out[i].Size = max(out[i].Size, fr.GetSize())
			if iods[i].Type != Array || iods[i].Size == 0 {
				continue
			}
			for _, x := range fr.GetExtents() {
				if pos < k && plans[i] != nil {
					out[i].Extents = append(out[i].Extents, shardToLogical(geoms[i], pos, ec.Recx{Idx: x.Idx, Nr: x.Nr})...)
				}
			}
		}
	}
	for i, plan := range plans {
		if plan == nil || len(plan.Rebuild) == 0 {
			continue
		}
		q := firstLive(seq(k, k+p))
		if q < 0 {
			return nil, -1, daoserr.Newf(daoserr.DataLoss, "object %s: data and every parity shard lost", o.OID)
		}
		xs, lost, err := o.ecDegraded(ctx, ver, grp, q, epoch, dkey, iods[i], geoms[i], plan, bufs[i])
		if err != nil {
			return nil, lost, err
		}
		if len(xs) > 0 {
			out[i].Size = iods[i].Size
		}
		out[i].Extents = append(out[i].Extents, xs...)
	}
	for i := range out {
		out[i].Extents = mergeRecxs(out[i].Extents)
		if iods[i].Type == Array && iods[i].Size != 0 && len(out[i].Extents) == 0 {
			out[i].Size = 0
		}
	}
	return out, -1, nil
}

// ecReadAll sends every shard's read at once, at epoch.
func (o *Obj) ecReadAll(ctx context.Context, ver uint32, grp []placement.Shard, epoch uint64, dkey []byte, reads map[int]*ecRead) (int, error) {
	var mu sync.Mutex
	lost := -1
	var errs []error
	var wg sync.WaitGroup
	for pos, r := range reads {
		wg.Go(func() {
			m := &enginepb.ObjIOReq{Pool: o.pool, Cont: o.contID, Oid: o.oid, Epoch: epoch, Dkey: dkey, Iods: r.iods}
			rep, err := o.rpc(ctx, dest{grp[pos], ver}, enginepb.OpObjFetch, m, nil, r.recv)
			var fr enginepb.ObjFetchRep
			if err == nil {
				if uerr := proto.Unmarshal(rep.Header, &fr); uerr != nil {
					err = daoserr.Wrap(daoserr.Proto, uerr, "fetch reply")
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if ecLost(err) && lost < 0 {
					lost = pos
				}
				errs = append(errs, err)
				return
			}
			r.res = fr.Results
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		if len(errs) > 1 {
			lost = -1 // one lost shard at a time; the map tells the rest
			for _, e := range errs {
				if !ecLost(e) {
					return -1, errors.Join(errs...)
				}
			}
		}
		return lost, errors.Join(errs...)
	}
	return -1, nil
}

// shardToLogical turns an extent of data shard pos into logical extents.
func shardToLogical(g ec.Geometry, pos int, x ec.Recx) []Recx {
	var out []Recx
	for idx, end := x.Idx, x.End(); idx < end; {
		n := min(g.CellRecs-idx%g.CellRecs, end-idx)
		if li, ok := g.LogicalIndex(pos, idx); ok {
			out = append(out, Recx{Idx: li, Nr: n})
		}
		idx += n
	}
	return out
}

// mergeRecxs sorts extents and joins those that touch.
func mergeRecxs(xs []Recx) []Recx {
	if len(xs) < 2 {
		return xs
	}
	slices.SortFunc(xs, func(a, b Recx) int {
		switch {
		case a.Idx < b.Idx:
			return -1
		case a.Idx > b.Idx:
			return 1
		}
		return 0
	})
	out := xs[:1]
	for _, x := range xs[1:] {
		last := &out[len(out)-1]
		if last.Idx+last.Nr >= x.Idx {
			last.Nr = max(last.Idx+last.Nr, x.Idx+x.Nr) - last.Idx
			continue
		}
		out = append(out, x)
	}
	return out
}

// ecListRecx lists the extents (with their epochs) of akey on shard s in
// [from, to), at epoch.
func (o *Obj) ecListRecx(ctx context.Context, s dest, epoch uint64, dkey, akey []byte, from, to uint64) ([]RecxEpoch, error) {
	var out []RecxEpoch
	anchor := binary.BigEndian.AppendUint64(nil, from)
	for {
		req := &enginepb.ObjListRecxReq{Pool: o.pool, Cont: o.contID, Oid: o.oid, Epoch: epoch, Dkey: dkey, Akey: akey, Anchor: anchor, Max: 1024}
		var rep enginepb.ObjListRecxRep
		if err := o.send(ctx, s, enginepb.OpObjListRecx, req, &rep); err != nil {
			return nil, err
		}
		for _, x := range rep.Recxs {
			lo, hi := max(x.Idx, from), min(x.Idx+x.Nr, to)
			if lo < hi {
				out = append(out, RecxEpoch{Recx: Recx{Idx: lo, Nr: hi - lo}, Epoch: x.Epoch})
			}
			if x.Idx+x.Nr >= to {
				return out, nil
			}
		}
		if rep.Eof || len(rep.Anchor) == 0 || len(rep.Recxs) == 0 {
			return out, nil
		}
		anchor = rep.Anchor
	}
}

// ecDegraded fills the records of plan's lost data cells into buf: from the
// replicas on parity shard q where those were written after the stripe's
// parity, by reconstruction from k cells read at the parity's epoch
// elsewhere, and as holes where neither exists. It returns the extents it
// found data for.
func (o *Obj) ecDegraded(ctx context.Context, ver uint32, grp []placement.Shard, q int, epoch uint64, dkey []byte, d IOD,
	g ec.Geometry, plan *ec.ReadPlan, buf []byte) ([]Recx, int, error) {
	qd := dest{grp[q], ver}
	lostAt := func(err error, pos int) (int, error) {
		if ecLost(err) {
			return pos, err
		}
		return -1, err
	}
	lo, hi := uint64(1<<63), uint64(0)
	for _, sr := range plan.Rebuild {
		for _, w := range sr.Wants {
			lo, hi = min(lo, w.Recx.Idx), max(hi, w.Recx.End())
		}
	}
	reps, err := o.ecListRecx(ctx, qd, epoch, dkey, d.Akey, lo, hi)
	if err != nil {
		l, err := lostAt(err, q)
		return nil, l, err
	}
	first, last := plan.Rebuild[0].Stripe, plan.Rebuild[len(plan.Rebuild)-1].Stripe
	pars, err := o.ecListRecx(ctx, qd, epoch, dkey, d.Akey, g.ParityRecx(first, 1).Idx, g.ParityRecx(last+1, 1).Idx)
	if err != nil {
		l, err := lostAt(err, q)
		return nil, l, err
	}
	type span struct {
		recx Recx
		off  uint64
	}
	var fromReplica []span
	stripesAt := map[uint64][]int{} // parity epoch -> indexes in plan.Rebuild
	var found []Recx
	for si, sr := range plan.Rebuild {
		pr := g.ParityRecx(sr.Stripe, 1)
		var pe uint64
		var covered uint64
		for _, x := range pars {
			if x.Idx < pr.End() && x.Idx+x.Nr > pr.Idx {
				pe = max(pe, x.Epoch)
				covered += min(x.Idx+x.Nr, pr.End()) - max(x.Idx, pr.Idx)
			}
		}
		if covered != 0 && covered != pr.Nr {
			return nil, -1, daoserr.Newf(daoserr.DataLoss, "object %s dkey %q akey %q: stripe %d has parity for %d of %d records",
				o.OID, dkey, d.Akey, sr.Stripe, covered, pr.Nr)
		}
		var wants []ec.Want
		for _, w := range sr.Wants {
			// cut the want by the replicas written after the parity
			at := w.Recx.Idx
			emit := func(to uint64, replica bool) {
				if to <= at {
					return
				}
				piece := Recx{Idx: at, Nr: to - at}
				off := w.Off + (at-w.Recx.Idx)*g.RecSize
				switch {
				case replica:
					fromReplica = append(fromReplica, span{piece, off})
				case pe != 0:
					wants = append(wants, ec.Want{Cell: w.Cell, Recx: ec.Recx{Idx: piece.Idx, Nr: piece.Nr}, Off: off})
					found = append(found, piece)
				}
				at = to
			}
			for _, x := range reps {
				if x.Epoch <= pe || x.Idx+x.Nr <= at || x.Idx >= w.Recx.End() {
					continue
				}
				emit(max(x.Idx, at), false)
				emit(min(x.Idx+x.Nr, w.Recx.End()), true)
			}
			emit(w.Recx.End(), false)
		}
		if len(wants) > 0 {
			stripesAt[pe] = append(stripesAt[pe], si)
			plan.Rebuild[si].Wants = wants
		}
	}
	if len(fromReplica) > 0 {
		iod := &enginepb.IOD{Akey: d.Akey, Type: uint32(Array), Size: d.Size}
		var rv [][]byte
		for _, sp := range fromReplica {
			iod.Recxs = append(iod.Recxs, &enginepb.Recx{Idx: sp.recx.Idx, Nr: sp.recx.Nr})
			rv = append(rv, buf[sp.off:sp.off+sp.recx.Nr*d.Size])
		}
		r := &ecRead{}
		r.add(iod, 0, rv...)
		if l, err := o.ecReadAll(ctx, ver, grp, epoch, dkey, map[int]*ecRead{q: r}); err != nil {
			return nil, l, err
		}
		if len(r.res) == 1 {
			for _, x := range r.res[0].Extents {
				found = append(found, Recx{Idx: x.Idx, Nr: x.Nr})
			}
		}
	}
	codec, err := ec.CodecFor(g.K, g.P)
	if err != nil {
		return nil, -1, err
	}
	cb := g.CellBytes()
	for pe, sis := range stripesAt {
		// read the k source cells of every stripe whose parity is of epoch
		// pe, at pe: the data cells as the full-stripe write left them
		cells := make([][][]byte, len(sis)) // [stripe][position]
		reads := map[int]*ecRead{}
		for n, si := range sis {
			sr := plan.Rebuild[si]
			cells[n] = make([][]byte, g.Shards())
			for _, src := range sr.Sources {
				cells[n][src.Pos] = make([]byte, cb)
				r := reads[src.Pos]
				if r == nil {
					r = &ecRead{}
					reads[src.Pos] = r
					r.add(&enginepb.IOD{Akey: d.Akey, Type: uint32(Array), Size: d.Size}, 0)
				}
				r.iods[0].Recxs = append(r.iods[0].Recxs, &enginepb.Recx{Idx: src.Recx.Idx, Nr: src.Recx.Nr})
				r.recv = append(r.recv, cells[n][src.Pos])
			}
		}
		if l, err := o.ecReadAll(ctx, ver, grp, pe, dkey, reads); err != nil {
			return nil, l, err
		}
		for n, si := range sis {
			sr := plan.Rebuild[si]
			if err := codec.ReconstructData(cells[n]); err != nil {
				return nil, -1, daoserr.Context(err, "object %s dkey %q akey %q stripe %d", o.OID, dkey, d.Akey, sr.Stripe)
			}
			if err := sr.Fill(g, cells[n], buf); err != nil {
				return nil, -1, err
			}
		}
	}
	return found, -1, nil
}

// addEC buffers a transaction's update of an EC object: each shard of the
// dkey's group gets its own part (data cells, parity, replicas), encoded now
// from the caller's buffers.
func (tx *Tx) addEC(ctx context.Context, o *Obj, dkey []byte, iods []IOD, sgls [][]byte) error {
	parts, err := o.ecParts(ctx, dkey, 0, iods, sgls)
	if err != nil {
		return daoserr.Context(err, "update object %s dkey %q", o.OID, dkey)
	}
	l, err := tx.layout(o)
	if err != nil {
		return err
	}
	grp := l.Group(o.dkeyGroup(dkey))
	absent := o.ecAbsent(grp)
	for pos, pt := range parts {
		if pt == nil || absent[pos] {
			continue
		}
		s := grp[pos]
		part := tx.writes[s]
		if part == nil {
			part = &txPart{}
			tx.writes[s] = part
			tx.order = append(tx.order, s)
		}
		part.writes = append(part.writes, pt.writes...)
		part.bulk = append(part.bulk, pt.bulk...)
	}
	return nil
}

// ecHideKeys drops the cell-size akey (ec.CellAkey) from an akey listing.
func ecHideKeys(keys [][]byte) [][]byte {
	return slices.DeleteFunc(keys, func(k []byte) bool { return string(k) == ec.CellAkey })
}

// ecQueryRecx answers QueryKey with GetRecx for an EC object (res is the
// answer of the first parity shard, which holds every key, in its own index
// space). The extent, and the dkey with GetDkey, come from the data shards:
// their extents are their cells' (packed, see ec.Geometry.ShardIndex),
// mapped here to logical indexes, and their punches are real, where a
// parity shard holds the zeros of punched records of partial stripes (see
// ecRecordPunch). A data shard out of service is stood in for by the first
// parity shard (its replicas and the stripes with parity), which may
// overstate the end of a partly punched stripe.
func (o *Obj) ecQueryRecx(ctx context.Context, flags QueryFlags, res QueryResult, dkey, akey []byte) (QueryResult, error) {
	if flags&GetAkey == 0 {
		res.Akey = akey
	}
	k, p, cell, err := o.ecShape()
	if err != nil {
		return QueryResult{}, err
	}
	geo, err := ec.NewGeometry(k, p, cell, 1) // indexes only: records, whatever their size
	if err != nil {
		return QueryResult{}, err
	}
	wantMax := flags&GetMax != 0
	var best QueryResult
	found := false
	// take keeps the answer that goes furthest in the direction asked: the
	// dkey first (with GetDkey), then the extent
	take := func(d []byte, r Recx) {
		if found {
			c := 0
			if flags&GetDkey != 0 {
				c = compareDkeys(o.OID.Type(), d, best.Dkey)
			}
			if !wantMax {
				c = -c
			}
			switch {
			case c < 0:
				return
			case c == 0 && wantMax && r.Idx+r.Nr <= best.Recx.Idx+best.Recx.Nr:
				return
			case c == 0 && !wantMax && r.Idx >= best.Recx.Idx:
				return
			}
		}
		best, found = QueryResult{Dkey: slices.Clone(d), Akey: res.Akey, Recx: r}, true
	}
	q := &enginepb.ObjQueryReq{Pool: o.pool, Cont: o.contID, Oid: o.oid, Flags: uint32(flags &^ GetAkey), Akey: res.Akey}
	if flags&GetDkey == 0 {
		q.Dkey = dkey
	}
	err = o.placed(ctx, func(ctx context.Context, l placement.Layout) error {
		found = false
		groups := []int{o.dkeyGroup(dkey)}
		if flags&GetDkey != 0 {
			groups = seq(0, l.Groups)
		}
		for _, g := range groups {
			grp := l.Group(g)
			absent := o.ecAbsent(grp)
			standIn := false
			for pos := range k {
				if absent[pos] || grp[pos].Rebuilding {
					standIn = true
					continue
				}
				var rep enginepb.ObjQueryRep
				err := o.send(ctx, dest{grp[pos], l.Version}, enginepb.OpObjQuery, q, &rep)
				if daoserr.Is(err, daoserr.Nonexist) {
					continue // nothing of the akey in this cell position
				}
				if err != nil {
					return err
				}
				if r, ok := ecLogicalEnd(geo, pos, wantMax, rep.Recx.GetIdx(), rep.Recx.GetNr()); ok {
					take(orKey(rep.Dkey, dkey), r)
				}
			}
			if standIn {
				if err := o.ecQueryStandIn(ctx, l, g, geo, q, dkey, take); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return QueryResult{}, err
	}
	if !found {
		return QueryResult{}, daoserr.Newf(daoserr.Nonexist, "query object %s akey %q: no extent", o.OID, res.Akey)
	}
	return best, nil
}

// ecLogicalEnd maps the extent [idx, idx+nr) a data shard at pos answered
// a query with to logical indexes: its part in its last cell (wantMax) or
// first, which is contiguous there.
func ecLogicalEnd(geo ec.Geometry, pos int, wantMax bool, idx, nr uint64) (Recx, bool) {
	if nr == 0 {
		return Recx{}, false
	}
	lo, hi := idx, idx+nr
	if wantMax {
		lo = max(hi-1-(hi-1)%geo.CellRecs, idx)
	} else {
		hi = min(hi, lo-lo%geo.CellRecs+geo.CellRecs)
	}
	li, ok := geo.LogicalIndex(pos, lo)
	return Recx{Idx: li, Nr: hi - lo}, ok
}

// ecQueryStandIn answers query q of group g from its first parity shard in
// place of a data shard out of service: the dkey it finds, and the extents
// of its replicas and its stripes with parity.
func (o *Obj) ecQueryStandIn(ctx context.Context, l placement.Layout, g int, geo ec.Geometry, q *enginepb.ObjQueryReq,
	dkey []byte, take func([]byte, Recx)) error {
	qd, err := o.ecReader(l, g)
	if err != nil {
		return err
	}
	var rep enginepb.ObjQueryRep
	if err := o.send(ctx, qd, enginepb.OpObjQuery, q, &rep); err != nil {
		if daoserr.Is(err, daoserr.Nonexist) {
			return nil
		}
		return err
	}
	d := orKey(rep.Dkey, dkey)
	xs, err := o.ecListRecx(ctx, qd, max(ecClock.Now(), o.cont.Pool.seen.Load()), d, q.Akey, 0, ^uint64(0))
	if err != nil && !daoserr.Is(err, daoserr.Nonexist) {
		return err
	}
	for _, x := range xs {
		if s, ok := geo.ParityStripe(x.Idx); ok { // stripes with parity: written whole
			for _, st := range []uint64{s, s + x.Nr/geo.CellRecs - 1} {
				sr := geo.StripeRecx(st)
				take(d, Recx{Idx: sr.Idx, Nr: sr.Nr})
			}
			continue
		}
		take(d, x.Recx)
	}
	return nil
}

// orKey is a, or b when a is empty (a query's reply names no dkey when it
// was given one).
func orKey(a, b []byte) []byte {
	if len(a) > 0 {
		return a
	}
	return b
}
