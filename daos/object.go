package daos

import (
	"context"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

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
	Flags CondFlags // this akey's conditions (iod_flags), with CondPerAkey
}

// FetchResult is what a fetch found for one IOD: the value's size (single)
// or record size (array), 0 when there is nothing, and the array extents that
// hold data.
type FetchResult struct {
	Size    uint64
	Extents []Recx
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

// EncodeOID makes the ID of an object whose low part and user high bits the
// caller chooses, with class (0: the container's default) and type encoded
// as GenerateOID does. It is for well-known objects, such as DFS's
// superblock and root (low part 0, below anything the container's allocator
// hands out).
func (c *Cont) EncodeOID(lo uint64, hiUser uint32, class placement.ClassID, t placement.OType) (placement.OID, error) {
	pm, err := c.Pool.poolMap()
	if err != nil {
		return placement.OID{}, err
	}
	rdFac, _ := strconv.Atoi(c.Info.GetProps()["rd_fac"])
	return placement.GenerateOID(lo, hiUser, class, t, pm.Shape(rdFac))
}

// Layout is where object oid's shards are, from the pool map, as the servers
// compute it: its redundancy groups and each shard's rank and target
// (daos_obj_layout_get). Any class has one, whether or not this client can do
// I/O on it yet.
func (c *Cont) Layout(oid placement.OID) (placement.Layout, error) {
	pm, err := c.Pool.poolMap()
	if err != nil {
		return placement.Layout{}, err
	}
	l, err := pm.Layout(oid)
	if err != nil {
		return l, daoserr.Context(err, "layout of object %s", oid)
	}
	return l, nil
}

// Obj is an object of an open container: its ID and where its shards are.
type Obj struct {
	cont *Cont
	OID  placement.OID
	// what every request names, encoded once at open
	pool, contID []byte
	oid          *enginepb.OID

	mu     sync.Mutex
	layout placement.Layout // under the map version it names (see currentLayout)
}

// Obj opens an object: its layout is computed here, from the pool map, as the
// servers compute it, and again whenever the map changes.
func (c *Cont) Obj(oid placement.OID) (*Obj, error) {
	o := &Obj{cont: c, OID: oid, pool: uuidBytes(c.Pool.Info.Uuid), contID: uuidBytes(c.Info.Uuid),
		oid: &enginepb.OID{Hi: oid.Hi, Lo: oid.Lo}}
	if _, err := o.currentLayout(); err != nil {
		return nil, daoserr.Context(err, "open object %s", oid)
	}
	rdFac, _ := strconv.Atoi(c.Info.GetProps()["rd_fac"])
	if err := placement.CheckRdFac(oid.Class(), rdFac); err != nil {
		return nil, daoserr.Context(err, "open object %s in container %s", oid, c.Info.GetLabel())
	}
	if o.isEC() {
		l, _ := o.currentLayout()
		if err := o.ecCheckOpen(l); err != nil {
			return nil, daoserr.Context(err, "open object %s", oid)
		}
	}
	return o, nil
}

// dest is where a request goes: a shard of a layout, and the map version
// the layout was computed with (engines refuse another with DER_STALE).
type dest struct {
	placement.Shard
	ver uint32
}

// writeShard is where updates and punches of dkey go: the leader of its
// group (see groupLeader).
func (o *Obj) writeShard(l placement.Layout, dkey []byte) dest {
	return o.groupLeader(l, placement.DkeyGroupOf(o.OID, dkey))
}

// groupLeader is the shard of group g that takes its writes: the first
// that holds all its data (not rebuilding), as every client and engine
// computes it from the same map. It applies a write and forwards it to the
// group's other shards (the engine's replication).
func (o *Obj) groupLeader(l placement.Layout, g int) dest {
	grp := l.Group(g)
	for _, s := range grp {
		if !s.Rebuilding {
			return dest{s, l.Version}
		}
	}
	return dest{grp[0], l.Version}
}

// readShard is where a read of dkey goes: a shard of its group that holds
// all its data, chosen by the dkey's hash so that reads spread over the
// replicas. With none (every replica lost, beyond the class's redundancy),
// it says so instead of reading what a rebuilding shard does not hold.
func (o *Obj) readShard(l placement.Layout, dkey []byte) (dest, error) {
	h := placement.DkeyHash(o.OID.Type(), dkey)
	return o.groupReader(l, placement.DkeyGroup(h, l.Groups), h)
}

// groupReader is a readable shard of group g, the pick-th (mod their
// number) of those not rebuilding.
func (o *Obj) groupReader(l placement.Layout, g int, pick uint64) (dest, error) {
	if o.isEC() {
		return o.ecReader(l, g)
	}
	grp := l.Group(g)
	var ok []placement.Shard
	for _, s := range grp {
		if !s.Rebuilding {
			ok = append(ok, s)
		}
	}
	if len(ok) == 0 {
		// a moving shard's data is still where it was (drain, extend)
		if pm, err := o.cont.Pool.poolMap(); err == nil {
			for _, s := range grp {
				if t, found := pm.Target(s.Prev); s.HasPrev && found {
					ok = append(ok, placement.Shard{Rank: t.Rank, Target: t.Index, ID: t.ID})
				}
			}
		}
	}
	if len(ok) == 0 {
		return dest{}, daoserr.Newf(daoserr.DataLoss, "object %s group %d: no shard holding its data is in service (pool map version %d)", o.OID, g, l.Version).
			WithResolution("bring the failed ranks back (dmg system start, dmg pool reintegrate); class %s survives %d failures", o.OID.Class(), o.OID.Redun().FaultTolerance())
	}
	return dest{ok[pick%uint64(len(ok))], l.Version}, nil
}

func (o *Obj) ioReq(dkey []byte, iods []IOD, epoch uint64) (*enginepb.ObjIOReq, error) {
	if err := checkKey(o.OID, "dkey", dkey); err != nil {
		return nil, err
	}
	m := &enginepb.ObjIOReq{Pool: o.pool, Cont: o.contID, Oid: o.oid, Epoch: epoch, Dkey: dkey}
	for _, d := range iods {
		if err := checkKey(o.OID, "akey", d.Akey); err != nil {
			return nil, err
		}
		pd := &enginepb.IOD{Akey: d.Akey, Type: uint32(d.Type), Size: d.Size, Flags: uint32(d.Flags)}
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
	return o.UpdateCond(ctx, 0, dkey, iods, sgls)
}

// UpdateCond is Update under conditions (daos_obj_update's flags):
// CondDkeyInsert or CondDkeyUpdate on the dkey, CondAkeyInsert or
// CondAkeyUpdate on every IOD's akey, or, with CondPerAkey, each IOD's own
// Flags. A failed condition (DER_EXIST, DER_NONEXIST) writes nothing.
func (o *Obj) UpdateCond(ctx context.Context, flags CondFlags, dkey []byte, iods []IOD, sgls [][]byte) (uint64, error) {
	if len(sgls) != len(iods) {
		return 0, daoserr.Newf(daoserr.Inval, "update object %s: %d IODs and %d buffers", o.OID, len(iods), len(sgls))
	}
	return o.update(ctx, flags, dkey, iods, sgls)
}

// update sends an update whose values are bulk: the IODs' values back to
// back, in as many of the caller's buffers as they happen to be in.
func (o *Obj) update(ctx context.Context, flags CondFlags, dkey []byte, iods []IOD, bulk [][]byte) (uint64, error) {
	if o.isEC() {
		return o.ecUpdate(ctx, flags, dkey, iods, bulk)
	}
	if err := checkCond(o.OID, "update", flags, condUpdate); err != nil {
		return 0, err
	}
	m, err := o.ioReq(dkey, iods, 0)
	if err != nil {
		return 0, err
	}
	m.Flags = uint32(flags)
	var rep rpc.Reply
	err = o.placed(ctx, func(ctx context.Context, l placement.Layout) (err error) {
		rep, err = o.rpc(ctx, o.writeShard(l, dkey), enginepb.OpObjUpdate, m, bulk, nil)
		return err
	})
	if err != nil {
		return 0, daoserr.Context(err, "dkey %q", dkey)
	}
	var r enginepb.ObjUpdateRep
	proto.Unmarshal(rep.Header, &r)
	o.cont.Pool.sawEpoch(r.Epoch)
	return r.Epoch, nil
}

// Fetch reads the latest values of iods under dkey into the caller's buffers
// (one per IOD, sized as the IOD says) and reports what it found.
func (o *Obj) Fetch(ctx context.Context, dkey []byte, iods []IOD, sgls [][]byte) ([]FetchResult, error) {
	return o.FetchCond(ctx, 0, dkey, iods, sgls)
}

// FetchCond is Fetch under conditions (daos_obj_fetch's flags):
// CondDkeyFetch fails with DER_NONEXIST when the dkey does not exist,
// CondAkeyFetch when an IOD's akey does not (or, with CondPerAkey, each
// IOD's own Flags say).
func (o *Obj) FetchCond(ctx context.Context, flags CondFlags, dkey []byte, iods []IOD, sgls [][]byte) ([]FetchResult, error) {
	if len(sgls) != len(iods) {
		return nil, daoserr.Newf(daoserr.Inval, "fetch object %s: %d IODs and %d buffers", o.OID, len(iods), len(sgls))
	}
	return o.fetch(ctx, flags, dkey, iods, sgls)
}

// fetch reads the IODs' values back to back into recv, the caller's buffers
// however they are cut.
func (o *Obj) fetch(ctx context.Context, flags CondFlags, dkey []byte, iods []IOD, recv [][]byte) ([]FetchResult, error) {
	return o.fetchAt(ctx, 0, flags, dkey, iods, recv)
}

// fetchAt is fetch at an epoch (0: the latest).
func (o *Obj) fetchAt(ctx context.Context, epoch uint64, flags CondFlags, dkey []byte, iods []IOD, recv [][]byte) ([]FetchResult, error) {
	if o.isEC() {
		return o.ecFetch(ctx, epoch, flags, dkey, iods, recv)
	}
	if err := checkCond(o.OID, "fetch", flags, condFetch); err != nil {
		return nil, err
	}
	m, err := o.ioReq(dkey, iods, epoch)
	if err != nil {
		return nil, err
	}
	m.Flags = uint32(flags)
	var rep rpc.Reply
	err = o.placed(ctx, func(ctx context.Context, l placement.Layout) error {
		d, err := o.readShard(l, dkey)
		if err != nil {
			return err
		}
		rep, err = o.rpc(ctx, d, enginepb.OpObjFetch, m, nil, recv)
		return err
	})
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

// uuidBytes is a UUID string's 16 bytes (the records' UUIDs are canonical).
func uuidBytes(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		return make([]byte, 16) // an impossible UUID: the engine says which is missing
	}
	return b
}

// target is where the engine of rank is served.
func (c *Cont) target(rank uint32) (string, error) {
	cm, err := c.Pool.currentMap()
	if err != nil {
		return "", err
	}
	if a := cm.addr[rank]; a != "" {
		return a, nil
	}
	return "", daoserr.Newf(daoserr.Unreach, "rank %d is not in the pool map (version %d)", rank, cm.pm.Version())
}

// rpc sends one request, with its bulk, to the target of shard s, reading the
// reply's bulk into recv.
func (o *Obj) rpc(ctx context.Context, s dest, op uint16, m proto.Message, send, recv [][]byte) (rpc.Reply, error) {
	rep, err := o.cont.rpc(ctx, s, op, m, send, recv)
	if err != nil {
		return rep, daoserr.Context(err, "object %s", o.OID)
	}
	return rep, nil
}

// rpc sends one request of the container handle to the target of shard s
// with the handle's capability, renewing it once if it has expired.
func (c *Cont) rpc(ctx context.Context, s dest, op uint16, m proto.Message, send, recv [][]byte) (rpc.Reply, error) {
	if err := c.usable(); err != nil {
		return rpc.Reply{}, err
	}
	addr, err := c.target(s.Rank)
	if err != nil {
		return rpc.Reply{}, err
	}
	cl, err := c.Pool.c.engines.Get(ctx, addr)
	if err != nil {
		return rpc.Reply{}, err
	}
	for attempt := 0; ; attempt++ {
		capb := c.capBytes()
		hdr, err := withCap(m, capb, s.ver)
		if err != nil {
			return rpc.Reply{}, err
		}
		rep, err := cl.Call(ctx, rpc.Message{Opcode: op, Target: s.Target, Header: hdr, Bulk: send}, recv)
		if err == nil {
			return rep, nil
		}
		// An expired capability is renewed by reopening the container, once
		// per call: the handle stays open for as long as the caller keeps it.
		// When the reopen fails (the ACL no longer allows it, the container
		// is gone), that is the error: "expired" alone would hide why.
		if attempt == 0 && daoserr.Is(err, daoserr.NoHdl) && strings.Contains(err.Error(), capability.ExpiredText) {
			if rerr := c.refreshCap(ctx, capb); rerr != nil {
				return rep, daoserr.Context(rerr, "rank %d target %d found the handle's capability expired; renewing it failed", s.Rank, s.Target)
			}
			continue
		}
		// A transaction is committing where this goes: wait a little, as
		// DAOS's client does, and try again.
		if daoserr.Is(err, daoserr.InProgress) && attempt < inProgressRetries {
			if werr := backoff(ctx, attempt); werr == nil {
				continue
			}
		}
		return rep, daoserr.Context(err, "rank %d target %d", s.Rank, s.Target)
	}
}

// send sends a request without bulk to the target of shard s and decodes
// the reply's header into reply (if not nil).
func (o *Obj) send(ctx context.Context, s dest, op uint16, m proto.Message, reply proto.Message) error {
	rep, err := o.rpc(ctx, s, op, m, nil, nil)
	return decodeReply(rep, err, reply)
}

// send is Obj.send for the container handle's own requests.
func (c *Cont) send(ctx context.Context, s dest, op uint16, m proto.Message, reply proto.Message) error {
	rep, err := c.rpc(ctx, s, op, m, nil, nil)
	return decodeReply(rep, err, reply)
}

func decodeReply(rep rpc.Reply, err error, reply proto.Message) error {
	if err != nil || reply == nil {
		return err
	}
	if err := proto.Unmarshal(rep.Header, reply); err != nil {
		return daoserr.Wrap(daoserr.Proto, err, "reply of %T", reply)
	}
	return nil
}

// punch sends one punch and notes its epoch (transactions opened later by
// this client read at or after it).
// to: the leader of group g.
func (o *Obj) punch(ctx context.Context, g int, req *enginepb.ObjPunchReq) error {
	if o.isEC() {
		return o.ecPunch(ctx, g, req)
	}
	var rep enginepb.ObjUpdateRep
	err := o.placed(ctx, func(ctx context.Context, l placement.Layout) error {
		return o.send(ctx, o.groupLeader(l, g), enginepb.OpObjPunch, req, &rep)
	})
	if err != nil {
		return err
	}
	o.cont.Pool.sawEpoch(rep.Epoch)
	return nil
}

// groups is how many redundancy groups the object has.
func (o *Obj) groups() int { return o.OID.Groups() }

// dkeyGroup is the group holding dkey.
func (o *Obj) dkeyGroup(dkey []byte) int { return placement.DkeyGroupOf(o.OID, dkey) }

func (o *Obj) punchReq(flags CondFlags) (*enginepb.ObjPunchReq, error) {
	if err := checkCond(o.OID, "punch", flags, CondPunch); err != nil {
		return nil, err
	}
	return &enginepb.ObjPunchReq{Pool: o.pool, Cont: o.contID, Oid: o.oid, Flags: uint32(flags)}, nil
}

// Punch makes the whole object empty from now on (every shard); what it held
// stays readable at earlier epochs.
func (o *Obj) Punch(ctx context.Context) error { return o.PunchCond(ctx, 0) }

// PunchCond is Punch under conditions: with CondPunch it fails with
// DER_NONEXIST when no shard holds the object (shards that hold nothing of
// it are passed over).
func (o *Obj) PunchCond(ctx context.Context, flags CondFlags) error {
	req, err := o.punchReq(flags)
	if err != nil {
		return err
	}
	// every group at once: an SX object has a group on every target, and
	// one after the other they made a file's removal take milliseconds
	var missing atomic.Int32
	err = forEach(ctx, o.groups(), func(ctx context.Context, g int) error {
		err := o.punch(ctx, g, req)
		if flags&CondPunch != 0 && daoserr.Is(err, daoserr.Nonexist) {
			missing.Add(1)
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	if int(missing.Load()) == o.groups() {
		return daoserr.Newf(daoserr.Nonexist, "conditional punch of object %s: it does not exist", o.OID)
	}
	return nil
}

// PunchDkeys punches dkeys (each on the target that holds it).
func (o *Obj) PunchDkeys(ctx context.Context, dkeys [][]byte) error {
	return o.PunchDkeysCond(ctx, 0, dkeys)
}

// PunchDkeysCond is PunchDkeys under conditions: with CondPunch it fails
// with DER_NONEXIST when a dkey does not exist. The condition holds per
// target: the dkeys of other targets may be punched when one fails (DAOS
// punches one dkey a call).
func (o *Obj) PunchDkeysCond(ctx context.Context, flags CondFlags, dkeys [][]byte) error {
	if len(dkeys) == 0 {
		return daoserr.Newf(daoserr.Inval, "punch dkeys of object %s: no dkeys given", o.OID)
	}
	byGroup := map[int][][]byte{}
	for _, d := range dkeys {
		if err := checkKey(o.OID, "dkey", d); err != nil {
			return daoserr.Context(err, "punch")
		}
		g := placement.DkeyGroupOf(o.OID, d)
		byGroup[g] = append(byGroup[g], d)
	}
	for g, ds := range byGroup {
		// one dkey a request when conditional on a redundant object: the
		// engine checks the condition of one write before replicating it
		n := len(ds)
		if flags != 0 && o.OID.GroupSize() > 1 {
			n = 1
		}
		for ; len(ds) > 0; ds = ds[min(n, len(ds)):] {
			req, err := o.punchReq(flags)
			if err != nil {
				return err
			}
			req.Dkeys = ds[:min(n, len(ds))]
			if err := o.punch(ctx, g, req); err != nil {
				return err
			}
		}
	}
	return nil
}

// PunchAkeys punches akeys under dkey.
func (o *Obj) PunchAkeys(ctx context.Context, dkey []byte, akeys [][]byte) error {
	return o.PunchAkeysCond(ctx, 0, dkey, akeys)
}

// PunchAkeysCond is PunchAkeys under conditions: with CondPunch it fails
// with DER_NONEXIST, punching nothing, when an akey does not exist.
func (o *Obj) PunchAkeysCond(ctx context.Context, flags CondFlags, dkey []byte, akeys [][]byte) error {
	if len(akeys) == 0 {
		return daoserr.Newf(daoserr.Inval, "punch akeys of object %s: no akeys given", o.OID)
	}
	if err := checkKey(o.OID, "dkey", dkey); err != nil {
		return daoserr.Context(err, "punch")
	}
	for _, a := range akeys {
		if err := checkKey(o.OID, "akey", a); err != nil {
			return daoserr.Context(err, "punch")
		}
	}
	req, err := o.punchReq(flags)
	if err != nil {
		return err
	}
	req.Dkey, req.Akeys = dkey, akeys
	return o.punch(ctx, o.dkeyGroup(dkey), req)
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
	return o.listDkeysAt(ctx, 0, anchor, max)
}

// listDkeysAt is ListDkeys at an epoch (0: the latest).
func (o *Obj) listDkeysAt(ctx context.Context, epoch uint64, anchor *Anchor, max int) ([][]byte, error) {
	var out [][]byte
	for !anchor.EOF && len(out) < max {
		req := &enginepb.ObjListReq{Pool: o.pool, Cont: o.contID, Oid: o.oid, Epoch: epoch, Anchor: anchor.key, Max: uint32(max - len(out))}
		var rep enginepb.ObjListRep
		if err := o.readGroup(ctx, anchor.group, 0, enginepb.OpObjList, req, &rep); err != nil {
			return out, err
		}
		out = append(out, rep.Keys...)
		if len(rep.Anchor) > 0 {
			anchor.key = rep.Anchor
		}
		if rep.Eof {
			anchor.group, anchor.key = anchor.group+1, nil
			anchor.EOF = anchor.group == o.groups()
		}
	}
	return out, nil
}

// ListAkeys returns up to max akeys of dkey after anchor.
func (o *Obj) ListAkeys(ctx context.Context, dkey []byte, anchor *Anchor, max int) ([][]byte, error) {
	return o.listAkeysAt(ctx, 0, dkey, anchor, max)
}

// listAkeysAt is ListAkeys at an epoch (0: the latest).
func (o *Obj) listAkeysAt(ctx context.Context, epoch uint64, dkey []byte, anchor *Anchor, max int) ([][]byte, error) {
	if err := checkKey(o.OID, "dkey", dkey); err != nil {
		return nil, daoserr.Context(err, "list akeys")
	}
	var out [][]byte
	for !anchor.EOF && len(out) < max {
		req := &enginepb.ObjListReq{Pool: o.pool, Cont: o.contID, Oid: o.oid, Epoch: epoch, Dkey: dkey, Anchor: anchor.key, Max: uint32(max - len(out))}
		var rep enginepb.ObjListRep
		if err := o.readDkey(ctx, dkey, enginepb.OpObjList, req, &rep); err != nil {
			return out, err
		}
		if o.isEC() {
			rep.Keys = ecHideKeys(rep.Keys)
		}
		out = append(out, rep.Keys...)
		if len(rep.Anchor) > 0 {
			anchor.key = rep.Anchor
		}
		anchor.EOF = rep.Eof
	}
	return out, nil
}

// readGroup sends a read without bulk to a readable shard of group g (the
// pick-th), placing it again while the map changes (see placed).
func (o *Obj) readGroup(ctx context.Context, g int, pick uint64, op uint16, m, reply proto.Message) error {
	return o.placed(ctx, func(ctx context.Context, l placement.Layout) error {
		d, err := o.groupReader(l, g, pick)
		if err != nil {
			return err
		}
		return o.send(ctx, d, op, m, reply)
	})
}

// readDkey is readGroup for the group and replica that serve dkey.
func (o *Obj) readDkey(ctx context.Context, dkey []byte, op uint16, m, reply proto.Message) error {
	return o.placed(ctx, func(ctx context.Context, l placement.Layout) error {
		d, err := o.readShard(l, dkey)
		if err != nil {
			return err
		}
		return o.send(ctx, d, op, m, reply)
	})
}
