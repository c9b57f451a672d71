package vos

import (
	"maps"
	"slices"

	"github.com/godaos/godaos/internal/daoserr"
)

// The transaction table (DAOS's DTX table in VOS): entries, by key, that the
// engine writes before it answers a transaction's prepare or records a
// decision, and drops once they no longer matter, so that a target reopened
// after a crash still knows its prepared parts and its decisions. VOS keeps
// them opaque: they are logged like any op (durable when DtxPut returns),
// kept in memory, and written into every checkpoint.

// MaxDtxEntry bounds one entry (a prepared part holds its writes' values).
const MaxDtxEntry = MaxUpdateBytes + 1<<20

// DtxPut records (or replaces) the entry of key, durably. The table keeps
// payload itself (a prepared part's values are not copied again): the
// caller must not change it afterwards.
func (p *Pool) DtxPut(key, payload []byte) error {
	if len(key) == 0 || len(key) > 256 {
		return daoserr.Newf(daoserr.Inval, "transaction table entry key of %d bytes (1 to 256)", len(key))
	}
	if len(payload) > MaxDtxEntry {
		return daoserr.Newf(daoserr.Rec2Big, "transaction table entry of %d bytes (limit %d)", len(payload), MaxDtxEntry)
	}
	return p.submit(&op{kind: opDtxPut, dkey: slices.Clone(key), payload: payload})
}

// DtxDel drops the entry of key (none: nothing happens), durably.
func (p *Pool) DtxDel(key []byte) error {
	if len(key) == 0 {
		return daoserr.New(daoserr.Inval, "transaction table entry with no key")
	}
	return p.submit(&op{kind: opDtxDel, dkey: slices.Clone(key)})
}

// DtxPutAsync is DtxPut without waiting (it keeps payload too): the entry is logged in submission
// order (durable at the latest with the next op waited for), and errors go
// to the target's log.
func (p *Pool) DtxPutAsync(key, payload []byte) {
	p.dtxAsync(&op{kind: opDtxPut, dkey: slices.Clone(key), payload: payload})
}

// DtxDelAsync is DtxDel without waiting (see DtxPutAsync).
func (p *Pool) DtxDelAsync(key []byte) {
	p.dtxAsync(&op{kind: opDtxDel, dkey: slices.Clone(key)})
}

func (p *Pool) dtxAsync(o *op) {
	if len(o.dkey) == 0 || len(o.dkey) > 256 || len(o.payload) > MaxDtxEntry {
		p.log.Error("transaction table entry refused", "key_bytes", len(o.dkey), "bytes", len(o.payload))
		return
	}
	notify := func(err error) {
		if err != nil {
			p.log.Warn("transaction table entry not written", "op", o.kind, "err", err)
		}
	}
	if err := p.submitAsync(o, notify); err != nil {
		notify(err)
	}
}

// DtxEntries returns a copy of the table (the values are shared: read only).
func (p *Pool) DtxEntries() map[string][]byte {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return maps.Clone(p.dtx)
}

func (p *Pool) dtxPut(key string, payload []byte) {
	if p.dtx == nil {
		p.dtx = map[string][]byte{}
	}
	p.dtx[key] = payload // the caller's (DtxPut), or a copy out of the log (decodeOp)
}

func (p *Pool) dtxDel(key string) { delete(p.dtx, key) }

// encodeDtx and decodeDtx are the table's section of a checkpoint.
func encodeDtx(e *encoder, t map[string][]byte) {
	e.uv(uint64(len(t)))
	for _, k := range slices.Sorted(maps.Keys(t)) {
		e.str(k)
		e.bytes(t[k])
	}
}

func decodeDtx(d *decoder) map[string][]byte {
	n := d.count(2)
	t := make(map[string][]byte, n)
	prev := ""
	for i := 0; i < n && d.err == nil; i++ {
		k := string(d.bytes())
		v := d.bytes()
		if d.err == nil && (k == "" || i > 0 && k <= prev) {
			d.fail("transaction table entries out of order or without a key")
		}
		prev = k
		t[k] = slices.Clone(v)
	}
	return t
}
