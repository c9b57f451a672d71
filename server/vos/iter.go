package vos

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
)

// Listing. Every List call returns up to max entries that exist at epoch, in key
// order, and advances the anchor; call again with the same anchor until EOF.
// Integer keys (objects whose type says so) come back in numeric order.

func sortedConts(m map[UUID]*contNode) []*contNode {
	cs := make([]*contNode, 0, len(m))
	for _, c := range m {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b *contNode) int { return cmpStr(string(a.uuid[:]), string(b.uuid[:])) })
	return cs
}

// ListContainers returns the containers on this target.
func (p *Pool) ListContainers() []UUID {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []UUID
	for _, c := range sortedConts(p.conts) {
		out = append(out, c.uuid)
	}
	return out
}

// readCont returns the container and the durable seq with p.mu read-locked; the
// caller unlocks (only when there is no error).
func (p *Pool) readCont(u UUID, what string) (*contNode, uint64, error) {
	lim := p.durable.Load()
	p.mu.RLock()
	c := p.conts[u]
	if c == nil {
		p.mu.RUnlock()
		return nil, 0, daoserr.Newf(daoserr.Nonexist, "%s: container %s does not exist on this target", what, u)
	}
	return c, lim, nil
}

func fixMax(n int) int {
	if n <= 0 {
		return 1 << 30
	}
	return n
}

// ListObjects lists objects with data visible at epoch.
func (p *Pool) ListObjects(u UUID, epoch Epoch, anchor *Anchor, max int) ([]OID, error) {
	c, lim, err := p.readCont(u, "list objects")
	if err != nil {
		return nil, err
	}
	defer p.mu.RUnlock()
	max = fixMax(max)
	var out []OID
	pivot := &objNode{}
	if len(anchor.Key) == 16 {
		pivot.oid = OID{binary.BigEndian.Uint64(anchor.Key), binary.BigEndian.Uint64(anchor.Key[8:])}
	}
	started := len(anchor.Key) == 16
	anchor.EOF = true
	c.objs.Ascend(pivot, func(ob *objNode) bool {
		if started && ob.oid == pivot.oid {
			return true
		}
		if len(out) == max {
			anchor.EOF = false
			return false
		}
		if ob.exists(epoch, lim) {
			out = append(out, ob.oid)
			anchor.Key = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(anchor.Key[:0], ob.oid.Hi), ob.oid.Lo)
		}
		return true
	})
	return out, nil
}

// ListDkeys lists the dkeys of an object that exist at epoch.
func (p *Pool) ListDkeys(u UUID, oid OID, epoch Epoch, anchor *Anchor, max int) ([][]byte, error) {
	c, lim, err := p.readCont(u, "list dkeys")
	if err != nil {
		return nil, err
	}
	defer p.mu.RUnlock()
	anchor.EOF = true
	ob := c.lookupObj(oid)
	if ob == nil {
		return nil, nil
	}
	max = fixMax(max)
	ph := maxPunch(ob.punches, epoch, lim, order{})
	var out [][]byte
	pivot := &dkeyNode{key: string(anchor.Key)}
	resume := anchor.Key != nil
	visit := func(d *dkeyNode) bool {
		if resume && d.key == pivot.key {
			return true
		}
		if len(out) == max {
			anchor.EOF = false
			return false
		}
		if d.exists(epoch, lim, ph) {
			out = append(out, []byte(d.key))
			anchor.Key = []byte(d.key)
		}
		return true
	}
	if resume {
		ob.dkeys.Ascend(pivot, visit)
	} else {
		ob.dkeys.Scan(visit) // "" is not the least key when keys are integers
	}
	return out, nil
}

// ListAkeys lists the akeys of a dkey that exist at epoch.
func (p *Pool) ListAkeys(u UUID, oid OID, epoch Epoch, dkey []byte, anchor *Anchor, max int) ([][]byte, error) {
	c, lim, err := p.readCont(u, "list akeys")
	if err != nil {
		return nil, err
	}
	defer p.mu.RUnlock()
	anchor.EOF = true
	ob := c.lookupObj(oid)
	if ob == nil {
		return nil, nil
	}
	d := p.dkey(ob, dkey, false)
	if d == nil {
		return nil, nil
	}
	max = fixMax(max)
	ph := maxPunch(d.punches, epoch, lim, maxPunch(ob.punches, epoch, lim, order{}))
	var out [][]byte
	for _, a := range d.akeys {
		if anchor.Key != nil && cmpKey(a.key, string(anchor.Key), ob.akeyInt) <= 0 {
			continue
		}
		if len(out) == max {
			anchor.EOF = false
			break
		}
		if a.exists(epoch, lim, ph) {
			out = append(out, []byte(a.key))
			anchor.Key = []byte(a.key)
		}
	}
	return out, nil
}

// ListRecx lists the visible data extents of an array akey at epoch, each with the
// epoch it was written at, and returns the record size.
func (p *Pool) ListRecx(u UUID, oid OID, epoch Epoch, dkey, akey []byte, anchor *Anchor, max int) ([]RecxEntry, uint64, error) {
	c, lim, err := p.readCont(u, "list extents")
	if err != nil {
		return nil, 0, err
	}
	defer p.mu.RUnlock()
	anchor.EOF = true
	a, ph := p.lookupAkey(c, oid, epoch, lim, dkey, akey)
	if a == nil || a.kind != IODArray {
		return nil, 0, nil
	}
	max = fixMax(max)
	start := uint64(0)
	if len(anchor.Key) == 8 {
		start = binary.BigEndian.Uint64(anchor.Key)
	}
	_, hi := a.arrayBounds()
	var out []RecxEntry
	for _, f := range a.paint(start, hi, epoch, lim, ph, nil) {
		if f.ext.flags&recHole != 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Recx.end() == f.Idx && out[n-1].Epoch == f.ext.epoch {
			out[n-1].Recx.Nr += f.Nr
			anchor.Key = binary.BigEndian.AppendUint64(anchor.Key[:0], f.end())
			continue
		}
		if len(out) == max {
			anchor.EOF = false
			break
		}
		out = append(out, RecxEntry{Recx: f.Recx, Epoch: f.ext.epoch})
		anchor.Key = binary.BigEndian.AppendUint64(anchor.Key[:0], f.end())
	}
	return out, a.rsize, nil
}

// lookupAkey finds an akey and the punch horizon above it; callers hold mu.
func (p *Pool) lookupAkey(c *contNode, oid OID, e Epoch, lim uint64, dkey, akey []byte) (*akeyNode, order) {
	ob := c.lookupObj(oid)
	if ob == nil {
		return nil, order{}
	}
	d := p.dkey(ob, dkey, false)
	if d == nil {
		return nil, order{}
	}
	a := p.akey(ob, d, akey, false)
	if a == nil {
		return nil, order{}
	}
	ph := maxPunch(ob.punches, e, lim, order{})
	ph = maxPunch(d.punches, e, lim, ph)
	return a, maxPunch(a.punches, e, lim, ph)
}

// QueryResult is what QueryKey found.
type QueryResult struct {
	Dkey, Akey []byte
	Recx       Recx
}

// QueryKey returns the greatest (GetMax) or least (GetMin) dkey, akey within a
// dkey, and/or data extent within an akey that exists at epoch, as DAOS's
// daos_obj_query_key does. Keys given in dkey/akey select the parent when the
// flags do not ask for that level. DER_NONEXIST when nothing is found.
func (p *Pool) QueryKey(u UUID, oid OID, epoch Epoch, flags QueryFlags, dkey, akey []byte) (QueryResult, error) {
	var res QueryResult
	if flags&(GetMax|GetMin) == 0 || flags&GetMax != 0 && flags&GetMin != 0 {
		return res, daoserr.Newf(daoserr.Inval, "query obj %s: give exactly one of max or min", oid)
	}
	if flags&(GetDkey|GetAkey|GetRecx) == 0 {
		return res, daoserr.Newf(daoserr.Inval, "query obj %s: ask for a dkey, an akey and/or an extent", oid)
	}
	c, lim, err := p.readCont(u, "query key")
	if err != nil {
		return res, err
	}
	defer p.mu.RUnlock()
	wantMax := flags&GetMax != 0
	notFound := func(what string) (QueryResult, error) {
		return res, daoserr.Newf(daoserr.Nonexist, "query obj %s at epoch %d: no %s", oid, epoch, what)
	}
	ob := c.lookupObj(oid)
	if ob == nil {
		return notFound("object")
	}
	ph := maxPunch(ob.punches, epoch, lim, order{})
	var d *dkeyNode
	if flags&GetDkey != 0 {
		visit := func(x *dkeyNode) bool {
			if x.exists(epoch, lim, ph) {
				d = x
				return false
			}
			return true
		}
		if wantMax {
			ob.dkeys.Reverse(visit)
		} else {
			ob.dkeys.Scan(visit)
		}
		if d == nil {
			return notFound("dkey")
		}
		res.Dkey = []byte(d.key)
	} else {
		if err := checkKey("dkey", dkey); err != nil {
			return res, err
		}
		if d = p.dkey(ob, dkey, false); d == nil || !d.exists(epoch, lim, ph) {
			return notFound("dkey " + string(dkey))
		}
		res.Dkey = dkey
	}
	ph = maxPunch(d.punches, epoch, lim, ph)
	if flags&(GetAkey|GetRecx) == 0 {
		return res, nil
	}
	var a *akeyNode
	if flags&GetAkey != 0 {
		for i := range d.akeys {
			x := d.akeys[i]
			if wantMax {
				x = d.akeys[len(d.akeys)-1-i]
			}
			if x.exists(epoch, lim, ph) {
				a = x
				break
			}
		}
		if a == nil {
			return notFound("akey")
		}
		res.Akey = []byte(a.key)
	} else {
		if err := checkKey("akey", akey); err != nil {
			return res, err
		}
		if a = p.akey(ob, d, akey, false); a == nil || !a.exists(epoch, lim, ph) {
			return notFound("akey " + string(akey))
		}
		res.Akey = akey
	}
	if flags&GetRecx == 0 {
		return res, nil
	}
	if a.kind != IODArray {
		return res, daoserr.Newf(daoserr.Inval, "query obj %s akey %q: extents asked of a single value", oid, a.key)
	}
	lo, hi := a.arrayBounds()
	var found *fragment
	frags := a.paint(lo, hi, epoch, lim, maxPunch(a.punches, epoch, lim, ph), nil)
	for i := range frags {
		f := &frags[i]
		if wantMax {
			f = &frags[len(frags)-1-i]
		}
		if f.ext.flags&recHole == 0 {
			found = f
			break
		}
	}
	if found == nil {
		return notFound("extent")
	}
	res.Recx = found.Recx
	return res, nil
}

// Info describes a target's state and space.
type Info struct {
	Dir             string
	ScmTotal        uint64
	ScmUsed         uint64
	NvmeTotal       uint64
	NvmeUsed        uint64
	DataFile        string
	DataThresh      uint64
	Containers      int
	Seq             uint64 // last logged op
	DurableSeq      uint64
	LogSegment      uint64
	LogBytes        int64
	CheckpointSeq   uint64
	CheckpointBytes int64
	CheckpointTime  time.Time
	ReplayedRecords int   // log records replayed at open
	TruncatedBytes  int64 // torn log tail cut at open
	Failed          string
}

// Query reports the target's space and log state.
func (p *Pool) Query() Info {
	used, total := p.alloc.usage()
	res := make(chan Info, 1)
	get := func() error {
		p.mu.RLock()
		defer p.mu.RUnlock()
		in := Info{Dir: p.dir, ScmTotal: p.sb.ScmSize, ScmUsed: uint64(max(0, p.scmUsed)), NvmeTotal: total, NvmeUsed: used,
			DataFile: p.sb.DataFile, DataThresh: p.sb.DataThresh, Containers: len(p.conts),
			Seq: p.seq, DurableSeq: p.durable.Load(), LogSegment: p.segNo, LogBytes: p.segSize,
			CheckpointSeq: p.ckptSeq, CheckpointBytes: p.ckptSize, CheckpointTime: p.ckptTime,
			ReplayedRecords: p.replayed, TruncatedBytes: p.truncated}
		if err := p.fail(); err != nil {
			in.Failed = err.Error()
		}
		res <- in
		return nil
	}
	// The log fields belong to the committer; ask it, unless it is gone.
	if p.opts.ReadOnly || p.control(get) != nil {
		get()
	}
	return <-res
}
