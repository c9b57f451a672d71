package vos

import (
	"github.com/godaos/godaos/internal/checksum"
	"github.com/godaos/godaos/internal/daoserr"
)

// An op is one logged mutation. The committer checks it, assigns its seq, applies
// it to the index and appends it to the log; replay applies the same ops in the
// same order, so apply must be deterministic and must not fail on a logged op.
type opKind uint8

const (
	opContCreate opKind = iota + 1
	opContDestroy
	opDestroy
	opUpdate
	opPunchObj
	opPunchDkeys
	opPunchAkeys
	opAggregate
	opDiscard
	opDtxPut // a transaction table entry, by key (see dtx.go)
	opDtxDel
)

var opNames = [...]string{"", "cont-create", "cont-destroy", "destroy", "update",
	"punch-obj", "punch-dkeys", "punch-akeys", "aggregate", "discard", "dtx-put", "dtx-del"}

func (k opKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return "op?"
}

// writes says whether the op adds a versioned record (update, punch).
func (k opKind) writes() bool {
	return k == opUpdate || k == opPunchObj || k == opPunchDkeys || k == opPunchAkeys
}

// barrier ops remove records; they are applied only when every earlier op is
// durable, so no reader can see a removal whose cause is not yet durable.
func (k opKind) barrier() bool {
	return k == opContDestroy || k == opDestroy || k == opAggregate || k == opDiscard
}

type op struct {
	kind  opKind
	seq   uint64
	cont  UUID
	oid   OID
	epoch Epoch
	dkey  []byte
	keys  [][]byte   // punched dkeys or akeys
	vals  []valueRec // update: one per single value or per extent
	// cont-create
	csum  checksum.Type
	chunk uint32
	// aggregate / discard
	lo, hi Epoch
	snaps  []Epoch
	// dtx-put (the key is in dkey)
	payload []byte

	// not logged: conditions checked by the committer
	cond     CondFlags
	akeyCond []CondFlags // per vals entry when CondPerAkey
	// not logged: NVMe-tier values whose data the committer writes
	data []pendingData
	// not logged: the object and dkey nodes check found for an update (nil if
	// absent), reused by apply, which always runs right after check with nothing
	// in between that changes the index
	obNode *objNode
	dNode  *dkeyNode
	// not logged: the container whose checksum parameters the update was built
	// with (nil for replayed ops)
	contRef *contNode
}

// pendingData is an NVMe-tier value still in the caller's buffers.
type pendingData struct {
	val  int      // index in op.vals
	src  [][]byte // the data, as the caller's scatter-gather list
	n    uint64
	redo bool // the data goes into the log record too: no data-file flush needed
}

// valueRec is one single value or one array extent of an update.
type valueRec struct {
	akey  []byte
	typ   IODType
	rsize uint64   // single: value size; array: record size
	recx  Recx     // array only
	flags uint8    // recHole, recNVMe, recRedo
	off   uint64   // data file offset if recNVMe
	buf   []byte   // inline data followed by checksums, or checksums only
	redo  [][]byte // recRedo: the data, logged as well as written to the data file
}

func (v *valueRec) dataLen() uint64 {
	if v.typ == IODSingle {
		return v.rsize
	}
	return v.recx.Nr * v.rsize
}

// apply performs a logged op on the index. It must not fail for an op that passed
// check; the freed callback receives data-file extents no longer referenced.
func (p *Pool) apply(o *op) {
	switch o.kind {
	case opContCreate:
		p.conts[o.cont] = newCont(o.cont, o.csum, o.chunk)
		p.publishConts()
	case opContDestroy:
		if c := p.conts[o.cont]; c != nil {
			c.objs.Scan(func(ob *objNode) bool { p.releaseObj(ob); return true })
			delete(p.conts, o.cont)
			p.publishConts()
		}
	case opDestroy:
		if c := p.conts[o.cont]; c != nil {
			p.destroy(c, o)
		}
	case opUpdate:
		p.applyUpdate(o)
	case opPunchObj, opPunchDkeys, opPunchAkeys:
		p.applyPunch(o)
	case opAggregate:
		if c := p.conts[o.cont]; c != nil {
			p.aggregate(c, o.lo, o.hi, o.snaps)
		}
	case opDiscard:
		if c := p.conts[o.cont]; c != nil {
			p.discard(c, o.lo, o.hi)
		}
	case opDtxPut:
		p.dtxPut(string(o.dkey), o.payload)
	case opDtxDel:
		p.dtxDel(string(o.dkey))
	}
}

// publishConts republishes the container set for lock-free lookups (contParams).
func (p *Pool) publishConts() {
	m := make(map[UUID]*contNode, len(p.conts))
	for u, c := range p.conts {
		m[u] = c
	}
	p.contParams.Store(&m)
}

func (p *Pool) obj(c *contNode, oid OID, create bool) *objNode {
	ob := c.lookupObj(oid)
	if ob == nil && create {
		ob = newObj(oid)
		c.objs.Set(ob)
	}
	return ob
}

func (p *Pool) dkey(ob *objNode, key []byte, create bool) *dkeyNode {
	d := ob.lookupDkey(string(key))
	if d == nil && create {
		d = &dkeyNode{key: string(key)}
		ob.dkeys.Set(d)
	}
	return d
}

func (p *Pool) akey(ob *objNode, d *dkeyNode, key []byte, create bool) *akeyNode {
	i, ok := d.findAkey(string(key), ob.akeyInt)
	if ok {
		return d.akeys[i]
	}
	if !create {
		return nil
	}
	a := &akeyNode{key: string(key)}
	d.akeys = append(d.akeys, nil)
	copy(d.akeys[i+1:], d.akeys[i:])
	d.akeys[i] = a
	return a
}

func (p *Pool) applyUpdate(o *op) {
	ob, d := o.obNode, o.dNode
	if ob == nil {
		ob = p.obj(p.conts[o.cont], o.oid, true)
	}
	if d == nil {
		d = p.dkey(ob, o.dkey, true)
	}
	o.obNode, o.dNode = nil, nil
	ord := order{o.epoch, o.seq}
	for i := range o.vals {
		v := &o.vals[i]
		if v.flags&recRedo != 0 {
			p.applyRedo(v)
		}
		a := p.akey(ob, d, v.akey, true)
		if len(a.svs) == 0 && len(a.exts) == 0 {
			a.kind = v.typ // the first value (or the first after all were removed) fixes the type
		}
		p.scmUsed += recordBytes(v.buf)
		if v.typ == IODSingle {
			a.insertSV(svRec{order: ord, off: v.off, size: uint32(v.rsize), flags: v.flags, buf: v.buf})
			continue
		}
		if v.flags&recHole == 0 {
			a.rsize = v.rsize
		}
		a.insertExt(exRec{order: ord, idx: v.recx.Idx, nr: v.recx.Nr, off: v.off, flags: v.flags, buf: v.buf})
	}
}

func (p *Pool) applyPunch(o *op) {
	c := p.conts[o.cont]
	ob := p.obj(c, o.oid, true)
	ord := order{o.epoch, o.seq}
	switch o.kind {
	case opPunchObj:
		ob.punches = insertOrder(ob.punches, ord)
	case opPunchDkeys:
		for _, k := range o.keys {
			d := p.dkey(ob, k, true)
			d.punches = insertOrder(d.punches, ord)
		}
	case opPunchAkeys:
		d := p.dkey(ob, o.dkey, true)
		for _, k := range o.keys {
			a := p.akey(ob, d, k, true)
			a.punches = insertOrder(a.punches, ord)
		}
	}
	p.scmUsed += punchOverhead * int64(max(1, len(o.keys)))
}

// Accounting. The SCM tier holds the index and inline values; its usage is the
// inline bytes plus a fixed charge per record, so it is exact and reproducible
// (replay computes the same number). The NVMe tier's usage is the allocator's.
const (
	recordOverhead = 64
	punchOverhead  = 16
)

// applyRedo prepares a redo-logged value for the index. At run time its data is
// already in the data file. At replay it is remembered by offset: replayRedo
// writes it back to the data file, or, when the target is open read-only, reads
// are served from it (see logged), which is what the target will serve once open.
func (p *Pool) applyRedo(v *valueRec) {
	v.flags &^= recRedo
	if p.replaying {
		p.redoData[v.off] = v.redo
	}
	v.redo = nil
}

// logged returns the logged copy of NVMe-tier data at off, if a read-only open
// kept one (nil otherwise).
func (p *Pool) logged(off uint64) []byte {
	if d, ok := p.redoData[off]; ok && len(d) == 1 {
		return d[0]
	}
	return nil
}

// recordBytes is a stored value's charge to the SCM tier.
func recordBytes(buf []byte) int64 { return recordOverhead + int64(len(buf)) }

// destroy removes an object, a dkey or an akey with all its history.
func (p *Pool) destroy(c *contNode, o *op) {
	ob := c.lookupObj(o.oid)
	if ob == nil {
		return
	}
	if o.dkey == nil {
		p.releaseObj(ob)
		c.objs.Delete(ob)
		return
	}
	d := p.dkey(ob, o.dkey, false)
	if d == nil {
		return
	}
	if len(o.keys) == 0 {
		for _, a := range d.akeys {
			p.releaseAkey(a)
		}
		p.scmUsed -= punchOverhead * int64(len(d.punches))
		ob.dkeys.Delete(d)
	} else if i, ok := d.findAkey(string(o.keys[0]), ob.akeyInt); ok {
		p.releaseAkey(d.akeys[i])
		d.akeys = append(d.akeys[:i], d.akeys[i+1:]...)
	}
	if d.empty() {
		ob.dkeys.Delete(d)
	}
	if ob.empty() {
		c.objs.Delete(ob)
	}
}

// releaseObj drops every record of an object, returning its data-file space.
func (p *Pool) releaseObj(ob *objNode) {
	ob.dkeys.Scan(func(d *dkeyNode) bool {
		for _, a := range d.akeys {
			p.releaseAkey(a)
		}
		p.scmUsed -= punchOverhead * int64(len(d.punches))
		return true
	})
	p.scmUsed -= punchOverhead * int64(len(ob.punches))
}

func (p *Pool) releaseAkey(a *akeyNode) {
	for i := range a.svs {
		p.dropSV(&a.svs[i])
	}
	for i := range a.exts {
		p.dropExt(&a.exts[i], a.rsize)
	}
	p.scmUsed -= punchOverhead * int64(len(a.punches))
	a.svs, a.exts, a.punches = nil, nil, nil
}

func (p *Pool) dropSV(x *svRec) {
	p.scmUsed -= recordBytes(x.buf)
	if x.flags&recNVMe != 0 {
		p.freeLater(x.off, uint64(x.size))
	}
}

func (p *Pool) dropExt(x *exRec, rsize uint64) {
	p.scmUsed -= recordBytes(x.buf)
	if x.flags&recNVMe != 0 {
		p.freeLater(x.off, x.nr*rsize)
	}
}

// freeLater queues data-file space for release once the op that dropped it is
// durable: until then a crash would bring the reference back.
func (p *Pool) freeLater(off, n uint64) {
	p.pendingFree = append(p.pendingFree, extent{off, n})
}

// ---- checks (committer, before logging) ----

func (p *Pool) contFor(u UUID, what string) (*contNode, error) {
	c := p.conts[u]
	if c == nil {
		return nil, daoserr.Newf(daoserr.Nonexist, "%s: container %s does not exist on this target", what, u)
	}
	return c, nil
}

// check validates an op against the current index (including ops not yet durable,
// so conditional ops see every earlier op) and returns a DER_* error if it must not
// be applied.
func (p *Pool) check(o *op) error {
	switch o.kind {
	case opContCreate:
		if p.conts[o.cont] != nil {
			return daoserr.Newf(daoserr.Exist, "create container %s: it already exists", o.cont)
		}
		return nil
	case opContDestroy:
		_, err := p.contFor(o.cont, "destroy container")
		return err
	case opDestroy, opAggregate, opDiscard:
		_, err := p.contFor(o.cont, o.kind.String())
		return err
	case opDtxPut, opDtxDel:
		return nil // of the target, not of a container
	}
	c, err := p.contFor(o.cont, o.kind.String())
	if err != nil {
		return err
	}
	if o.contRef != nil && o.contRef != c {
		return daoserr.Newf(daoserr.Nonexist, "update obj %s: container %s was destroyed (and created again) while the update was in flight", o.oid, o.cont).
			WithResolution("reopen the container and retry")
	}
	if o.epoch <= c.aggHi && o.cond&WriteBelowAggregated == 0 {
		return daoserr.Newf(daoserr.TxRestart,
			"%s obj %s at epoch %d: container %s is aggregated up to epoch %d", o.kind, o.oid, o.epoch, o.cont, c.aggHi).
			WithResolution("retry with a newer epoch")
	}
	const all = ^uint64(0)
	ob := c.lookupObj(o.oid)
	switch o.kind {
	case opPunchObj:
		if o.cond&CondPunch != 0 && (ob == nil || !ob.exists(o.epoch, all)) {
			return daoserr.Newf(daoserr.Nonexist, "conditional punch of obj %s: object does not exist at epoch %d", o.oid, o.epoch)
		}
	case opPunchDkeys:
		if o.cond&CondPunch != 0 {
			for _, k := range o.keys {
				if !p.dkeyExists(ob, k, o.epoch) {
					return daoserr.Newf(daoserr.Nonexist, "conditional punch of obj %s dkey %q: dkey does not exist at epoch %d", o.oid, k, o.epoch)
				}
			}
		}
	case opPunchAkeys:
		if o.cond&CondPunch != 0 {
			for _, k := range o.keys {
				if !p.akeyExists(ob, o.dkey, k, o.epoch) {
					return daoserr.Newf(daoserr.Nonexist, "conditional punch of obj %s dkey %q akey %q: akey does not exist at epoch %d", o.oid, o.dkey, k, o.epoch)
				}
			}
		}
	case opUpdate:
		return p.checkUpdate(c, ob, o)
	}
	return nil
}

func (p *Pool) dkeyExists(ob *objNode, dkey []byte, e Epoch) bool {
	if ob == nil {
		return false
	}
	d := p.dkey(ob, dkey, false)
	return d != nil && d.exists(e, ^uint64(0), maxPunch(ob.punches, e, ^uint64(0), order{}))
}

func (p *Pool) akeyExists(ob *objNode, dkey, akey []byte, e Epoch) bool {
	if ob == nil {
		return false
	}
	d := p.dkey(ob, dkey, false)
	if d == nil {
		return false
	}
	a := p.akey(ob, d, akey, false)
	if a == nil {
		return false
	}
	ph := maxPunch(ob.punches, e, ^uint64(0), order{})
	ph = maxPunch(d.punches, e, ^uint64(0), ph)
	return a.exists(e, ^uint64(0), ph)
}

func (p *Pool) checkUpdate(c *contNode, ob *objNode, o *op) error {
	if o.cond&CondDkeyInsert != 0 && p.dkeyExists(ob, o.dkey, o.epoch) {
		return daoserr.Newf(daoserr.Exist, "conditional insert into obj %s: dkey %q already exists at epoch %d", o.oid, o.dkey, o.epoch)
	}
	if o.cond&CondDkeyUpdate != 0 && !p.dkeyExists(ob, o.dkey, o.epoch) {
		return daoserr.Newf(daoserr.Nonexist, "conditional update of obj %s: dkey %q does not exist at epoch %d", o.oid, o.dkey, o.epoch)
	}
	var d *dkeyNode
	if ob != nil {
		d = p.dkey(ob, o.dkey, false)
	}
	o.obNode, o.dNode = ob, d
	for i := range o.vals {
		v := &o.vals[i]
		cond := o.cond
		if o.akeyCond != nil {
			cond = o.akeyCond[i]
		}
		if cond&(CondAkeyInsert|CondAkeyUpdate) != 0 {
			ex := p.akeyExists(ob, o.dkey, v.akey, o.epoch)
			if cond&CondAkeyInsert != 0 && ex {
				return daoserr.Newf(daoserr.Exist, "conditional insert into obj %s dkey %q: akey %q already exists at epoch %d", o.oid, o.dkey, v.akey, o.epoch)
			}
			if cond&CondAkeyUpdate != 0 && !ex {
				return daoserr.Newf(daoserr.Nonexist, "conditional update of obj %s dkey %q: akey %q does not exist at epoch %d", o.oid, o.dkey, v.akey, o.epoch)
			}
		}
		if d == nil {
			continue
		}
		a := p.akey(ob, d, v.akey, false)
		if a == nil || a.kind == IODNone || (len(a.svs) == 0 && len(a.exts) == 0) {
			continue
		}
		if a.kind != v.typ {
			return daoserr.Newf(daoserr.Inval, "update obj %s dkey %q akey %q: akey holds a %s value, not %s",
				o.oid, o.dkey, v.akey, a.kind, v.typ).WithResolution("an akey's value type is fixed by its first update; use another akey")
		}
		if v.typ == IODArray && v.flags&recHole == 0 && a.rsize != 0 && a.rsize != v.rsize && a.hasData() {
			return daoserr.Newf(daoserr.RecSize, "update obj %s dkey %q akey %q: record size %d differs from the array's %d",
				o.oid, o.dkey, v.akey, v.rsize, a.rsize)
		}
	}
	return nil
}

func (a *akeyNode) hasData() bool {
	for i := range a.exts {
		if a.exts[i].flags&recHole == 0 {
			return true
		}
	}
	return false
}
