package daos

import (
	"context"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security/capability"
)

// IODType says whether an akey holds one value or an array of records.
type IODType uint8

// DAOS's daos_iod_type_t.
const (
	Single IODType = 1 // one value, replaced whole by each update
	Array  IODType = 2 // fixed-size records addressed by index
)

// Recx is a run of array records: Nr records from index Idx.
type Recx struct{ Idx, Nr uint64 }

// IOD describes what to update or fetch under one akey: a single value of
// Size bytes, or the records Recxs of Size bytes each.
type IOD struct {
	Akey  []byte
	Type  IODType
	Size  uint64
	Recxs []Recx
}

// FetchResult is what a fetch found for one IOD: the value's size (single)
// or record size (array), 0 when there is nothing, and the array extents that
// hold data.
type FetchResult struct {
	Size    uint64
	Extents []Recx
}

// poolMap is the pool's map as the client sees it, built from the connect's
// reply (ranks, their fault domains and targets).
func (p *Pool) poolMap() (*placement.PoolMap, error) {
	p.mapOnce.Do(func() {
		var specs []placement.RankSpec
		for _, m := range p.Members {
			st := placement.TargetUp
			if m.State != "joined" {
				st = placement.TargetDown
			}
			specs = append(specs, placement.RankSpec{Rank: m.Rank, FaultDomain: m.FaultDomain, Targets: int(m.Targets), State: st})
		}
		p.pmap, p.pmapErr = placement.NewPoolMap(p.MapVersion, specs)
	})
	return p.pmap, p.pmapErr
}

// GenerateOID makes the ID of a new object of class (0: the container's
// default, as DAOS chooses it from rd_fac) and type, with a low part from the
// container's allocator.
func (c *Cont) GenerateOID(ctx context.Context, class placement.ClassID, t placement.OType) (placement.OID, error) {
	pm, err := c.Pool.poolMap()
	if err != nil {
		return placement.OID{}, err
	}
	lo, err := c.NextOID(ctx)
	if err != nil {
		return placement.OID{}, err
	}
	rdFac, _ := strconv.Atoi(c.Info.GetProps()["rd_fac"])
	return placement.GenerateOID(lo, 0, class, t, pm.Shape(rdFac))
}

// Obj is an object of an open container: its ID and where its shards are.
type Obj struct {
	cont   *Cont
	OID    placement.OID
	layout placement.Layout
	// what every request names, encoded once at open
	pool, contID []byte
	oid          *enginepb.OID
}

// Obj opens an object: its layout is computed here, from the pool map, as the
// servers compute it.
func (c *Cont) Obj(oid placement.OID) (*Obj, error) {
	pm, err := c.Pool.poolMap()
	if err != nil {
		return nil, err
	}
	l, err := pm.Layout(oid)
	if err != nil {
		return nil, daoserr.Context(err, "open object %s", oid)
	}
	if l.GroupSize != 1 {
		return nil, daoserr.Newf(daoserr.NoSys, "object %s is of class %s: replicated and erasure-coded I/O is not available yet", oid, oid.Class()).
			WithResolution("use an S class (S1, S2, ..., SX) for now")
	}
	return &Obj{cont: c, OID: oid, layout: l, pool: uuidBytes(c.Pool.Info.Uuid), contID: uuidBytes(c.Info.Uuid),
		oid: &enginepb.OID{Hi: oid.Hi, Lo: oid.Lo}}, nil
}

// shard is the shard that holds dkey.
func (o *Obj) shard(dkey []byte) placement.Shard {
	return o.layout.Group(placement.DkeyGroupOf(o.OID, dkey))[0]
}

func (o *Obj) ioReq(dkey []byte, iods []IOD, epoch uint64) (*enginepb.ObjIOReq, error) {
	if len(dkey) == 0 {
		return nil, daoserr.Newf(daoserr.Inval, "object %s: empty dkey", o.OID)
	}
	m := &enginepb.ObjIOReq{Pool: o.pool, Cont: o.contID, Oid: o.oid, Epoch: epoch, Dkey: dkey}
	for _, d := range iods {
		pd := &enginepb.IOD{Akey: d.Akey, Type: uint32(d.Type), Size: d.Size}
		for _, r := range d.Recxs {
			pd.Recxs = append(pd.Recxs, &enginepb.Recx{Idx: r.Idx, Nr: r.Nr})
		}
		m.Iods = append(m.Iods, pd)
	}
	return m, nil
}

// Update writes the values of iods under dkey, one buffer per IOD (the
// single value, or the records of its recxs back to back), sent from the
// caller's buffers as they are. It returns the epoch the update was stamped
// with; it is durable when Update returns.
func (o *Obj) Update(ctx context.Context, dkey []byte, iods []IOD, sgls [][]byte) (uint64, error) {
	if len(sgls) != len(iods) {
		return 0, daoserr.Newf(daoserr.Inval, "update object %s: %d IODs and %d buffers", o.OID, len(iods), len(sgls))
	}
	m, err := o.ioReq(dkey, iods, 0)
	if err != nil {
		return 0, err
	}
	rep, err := o.rpc(ctx, o.shard(dkey), enginepb.OpObjUpdate, m, sgls, nil)
	if err != nil {
		return 0, daoserr.Context(err, "dkey %q", dkey)
	}
	var r enginepb.ObjUpdateRep
	proto.Unmarshal(rep.Header, &r)
	return r.Epoch, nil
}

// Fetch reads the latest values of iods under dkey into the caller's buffers
// (one per IOD, sized as the IOD says) and reports what it found.
func (o *Obj) Fetch(ctx context.Context, dkey []byte, iods []IOD, sgls [][]byte) ([]FetchResult, error) {
	if len(sgls) != len(iods) {
		return nil, daoserr.Newf(daoserr.Inval, "fetch object %s: %d IODs and %d buffers", o.OID, len(iods), len(sgls))
	}
	m, err := o.ioReq(dkey, iods, 0)
	if err != nil {
		return nil, err
	}
	rep, err := o.rpc(ctx, o.shard(dkey), enginepb.OpObjFetch, m, nil, sgls)
	if err != nil {
		return nil, daoserr.Context(err, "dkey %q", dkey)
	}
	var r enginepb.ObjFetchRep
	if err := proto.Unmarshal(rep.Header, &r); err != nil {
		return nil, daoserr.Wrap(daoserr.Proto, err, "fetch object %s: reply", o.OID)
	}
	out := make([]FetchResult, len(r.Results))
	for i, fr := range r.Results {
		out[i].Size = fr.Size
		for _, x := range fr.Extents {
			out[i].Extents = append(out[i].Extents, Recx{Idx: x.Idx, Nr: x.Nr})
		}
	}
	return out, nil
}

// pool map state kept on the Pool.
type poolMapState struct {
	mapOnce sync.Once
	pmap    *placement.PoolMap
	pmapErr error
}

// uuidBytes is a UUID string's 16 bytes (the records' UUIDs are canonical).
func uuidBytes(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		return make([]byte, 16) // an impossible UUID: the engine says which is missing
	}
	return b
}

// target is where shard s is served.
func (o *Obj) target(s placement.Shard) (string, error) {
	for _, m := range o.cont.Pool.Members {
		if m.Rank == s.Rank {
			return m.FabricAddr, nil
		}
	}
	return "", daoserr.Newf(daoserr.Unreach, "object %s: rank %d is not in the pool map", o.OID, s.Rank)
}

// rpc sends one request, with its bulk, to the target of shard s, reading the
// reply's bulk into recv.
func (o *Obj) rpc(ctx context.Context, s placement.Shard, op uint16, m proto.Message, send, recv [][]byte) (rpc.Reply, error) {
	if err := o.cont.usable(); err != nil {
		return rpc.Reply{}, daoserr.Context(err, "object %s", o.OID)
	}
	addr, err := o.target(s)
	if err != nil {
		return rpc.Reply{}, err
	}
	cl, err := o.cont.Pool.c.engines.Get(ctx, addr)
	if err != nil {
		return rpc.Reply{}, err
	}
	for attempt := 0; ; attempt++ {
		capb := o.cont.capBytes()
		setCap(m, capb)
		hdr, err := proto.Marshal(m)
		if err != nil {
			return rpc.Reply{}, err
		}
		rep, err := cl.Call(ctx, rpc.Message{Opcode: op, Target: s.Target, Header: hdr, Bulk: send}, recv)
		if err == nil {
			return rep, nil
		}
		// An expired capability is renewed by reopening the container, once
		// per call: the handle stays open for as long as the caller keeps it.
		if attempt == 0 && daoserr.Is(err, daoserr.NoHdl) && strings.Contains(err.Error(), capability.ExpiredText) {
			if rerr := o.cont.refreshCap(ctx, capb); rerr == nil {
				continue
			}
		}
		return rep, daoserr.Context(err, "object %s (rank %d target %d)", o.OID, s.Rank, s.Target)
	}
}

// send sends a request without bulk to the target of shard s and decodes
// the reply's header into reply (if not nil).
func (o *Obj) send(ctx context.Context, s placement.Shard, op uint16, m proto.Message, reply proto.Message) error {
	rep, err := o.rpc(ctx, s, op, m, nil, nil)
	if err != nil || reply == nil {
		return err
	}
	return proto.Unmarshal(rep.Header, reply)
}

func (o *Obj) punchReq() *enginepb.ObjPunchReq {
	return &enginepb.ObjPunchReq{Pool: o.pool, Cont: o.contID, Oid: o.oid}
}

// Punch makes the whole object empty from now on (every shard); what it held
// stays readable at earlier epochs.
func (o *Obj) Punch(ctx context.Context) error {
	for g := range o.layout.Groups {
		if err := o.send(ctx, o.layout.Group(g)[0], enginepb.OpObjPunch, o.punchReq(), nil); err != nil {
			return err
		}
	}
	return nil
}

// PunchDkeys punches dkeys (each on the target that holds it).
func (o *Obj) PunchDkeys(ctx context.Context, dkeys [][]byte) error {
	byGroup := map[int][][]byte{}
	for _, d := range dkeys {
		if len(d) == 0 {
			return daoserr.Newf(daoserr.Inval, "punch object %s: empty dkey", o.OID)
		}
		g := placement.DkeyGroupOf(o.OID, d)
		byGroup[g] = append(byGroup[g], d)
	}
	for g, ds := range byGroup {
		req := o.punchReq()
		req.Dkeys = ds
		if err := o.send(ctx, o.layout.Group(g)[0], enginepb.OpObjPunch, req, nil); err != nil {
			return err
		}
	}
	return nil
}

// PunchAkeys punches akeys under dkey.
func (o *Obj) PunchAkeys(ctx context.Context, dkey []byte, akeys [][]byte) error {
	if len(dkey) == 0 || len(akeys) == 0 {
		return daoserr.Newf(daoserr.Inval, "punch object %s: give a dkey and akeys", o.OID)
	}
	req := o.punchReq()
	req.Dkey, req.Akeys = dkey, akeys
	return o.send(ctx, o.shard(dkey), enginepb.OpObjPunch, req, nil)
}

// Anchor is where a listing continues; the zero value starts it, and EOF says
// it is done.
type Anchor struct {
	group int
	key   []byte
	EOF   bool
}

// ListDkeys returns up to max dkeys after anchor (every group's target in
// turn), and moves anchor on.
func (o *Obj) ListDkeys(ctx context.Context, anchor *Anchor, max int) ([][]byte, error) {
	var out [][]byte
	for !anchor.EOF && len(out) < max {
		req := &enginepb.ObjListReq{Pool: o.pool, Cont: o.contID, Oid: o.oid, Anchor: anchor.key, Max: uint32(max - len(out))}
		var rep enginepb.ObjListRep
		if err := o.send(ctx, o.layout.Group(anchor.group)[0], enginepb.OpObjList, req, &rep); err != nil {
			return out, err
		}
		out = append(out, rep.Keys...)
		if len(rep.Anchor) > 0 {
			anchor.key = rep.Anchor
		}
		if rep.Eof {
			anchor.group, anchor.key = anchor.group+1, nil
			anchor.EOF = anchor.group == o.layout.Groups
		}
	}
	return out, nil
}

// ListAkeys returns up to max akeys of dkey after anchor.
func (o *Obj) ListAkeys(ctx context.Context, dkey []byte, anchor *Anchor, max int) ([][]byte, error) {
	if len(dkey) == 0 {
		return nil, daoserr.Newf(daoserr.Inval, "list akeys of object %s: empty dkey", o.OID)
	}
	var out [][]byte
	for !anchor.EOF && len(out) < max {
		req := &enginepb.ObjListReq{Pool: o.pool, Cont: o.contID, Oid: o.oid, Dkey: dkey, Anchor: anchor.key, Max: uint32(max - len(out))}
		var rep enginepb.ObjListRep
		if err := o.send(ctx, o.shard(dkey), enginepb.OpObjList, req, &rep); err != nil {
			return out, err
		}
		out = append(out, rep.Keys...)
		if len(rep.Anchor) > 0 {
			anchor.key = rep.Anchor
		}
		anchor.EOF = rep.Eof
	}
	return out, nil
}
