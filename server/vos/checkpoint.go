package vos

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/godaos/godaos/internal/checksum"
	"github.com/godaos/godaos/internal/daoserr"
)

// A checkpoint is the whole index, serialized:
//
//	"GDVCKPT2" | seq | replayFrom | containers... | dtx entries... | u32 crc32c(everything before)
//
// replayFrom is the first log segment not covered. Inline values are part of it (they
// are the SCM tier); NVMe-tier data stays in the data file and is referenced by offset.
// Version 1 ("GDVCKPT1") had no transaction table; it is still read.

const (
	ckptMagic   = "GDVCKPT2"
	ckptMagicV1 = "GDVCKPT1"
)

func (p *Pool) writeCheckpoint(replayFrom uint64) (int64, error) {
	e := &encoder{b: make([]byte, 0, max(4096, p.scmUsed+p.scmUsed/4))}
	encodeCheckpoint(e, p.seq, replayFrom, p.conts, p.dtx)
	b := binary.LittleEndian.AppendUint32(e.b, checksum.Sum32C(e.b))
	tmp := filepath.Join(p.dir, ckptName+".tmp")
	if err := writeFileSync(tmp, b); err != nil {
		return 0, daoserr.Wrap(daoserr.IO, err, "checkpoint %s: write", p.dir)
	}
	if err := os.Rename(tmp, filepath.Join(p.dir, ckptName)); err != nil {
		return 0, daoserr.Wrap(daoserr.IO, err, "checkpoint %s: rename", p.dir)
	}
	if err := syncDir(p.dir); err != nil {
		return 0, daoserr.Wrap(daoserr.IO, err, "checkpoint %s: sync directory", p.dir)
	}
	p.ckptTime = time.Now()
	return int64(len(b)), nil
}

func encodeCheckpoint(e *encoder, seq, replayFrom uint64, conts map[UUID]*contNode, dtx map[string][]byte) {
	e.b = append(e.b, ckptMagic...)
	e.uv(seq)
	e.uv(replayFrom)
	e.uv(uint64(len(conts)))
	for _, c := range sortedConts(conts) {
		e.uuid(c.uuid)
		e.u8(uint8(c.csum))
		e.uv(uint64(c.chunk))
		e.uv(c.aggHi)
		e.uv(uint64(c.objs.Len()))
		c.objs.Scan(func(ob *objNode) bool {
			e.oid(ob.oid)
			e.orders(ob.punches)
			e.uv(uint64(ob.dkeys.Len()))
			ob.dkeys.Scan(func(d *dkeyNode) bool {
				e.str(d.key)
				e.orders(d.punches)
				e.uv(uint64(len(d.akeys)))
				for _, a := range d.akeys {
					encodeAkey(e, a)
				}
				return true
			})
			return true
		})
	}
	encodeDtx(e, dtx)
}

func encodeAkey(e *encoder, a *akeyNode) {
	e.str(a.key)
	e.orders(a.punches)
	e.u8(uint8(a.kind))
	e.uv(a.rsize)
	e.uv(uint64(len(a.svs)))
	for i := range a.svs {
		x := &a.svs[i]
		e.order(x.order)
		e.uv(x.off)
		e.uv(uint64(x.size))
		e.u8(x.flags)
		e.bytes(x.buf)
	}
	e.uv(uint64(len(a.exts)))
	for i := range a.exts {
		x := &a.exts[i]
		e.order(x.order)
		e.uv(x.idx)
		e.uv(x.nr)
		e.uv(x.off)
		e.u8(x.flags)
		e.bytes(x.buf)
	}
}

// loadCheckpoint fills the index from the checkpoint file, if there is one, and
// returns the first log segment to replay.
func (p *Pool) loadCheckpoint() (uint64, error) {
	path := filepath.Join(p.dir, ckptName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, daoserr.Wrap(daoserr.IO, err, "open %s: read checkpoint", p.dir)
	}
	ck, err := decodeCheckpoint(b)
	if err != nil {
		return 0, daoserr.Wrap(daoserr.DFInval, err, "open %s: checkpoint %s is unusable", p.dir, path).
			WithResolution("a checkpoint is only installed after it is synced, so this is media corruption: restore the target from a replica")
	}
	p.conts, p.seq, p.scmUsed, p.dtx = ck.conts, ck.seq, ck.scmUsed, ck.dtx
	p.ckptSeq, p.ckptSize = ck.seq, int64(len(b))
	if st, err := os.Stat(path); err == nil {
		p.ckptTime = st.ModTime()
	}
	return ck.replayFrom, nil
}

type checkpointData struct {
	seq, replayFrom uint64
	conts           map[UUID]*contNode
	scmUsed         int64
	dtx             map[string][]byte
	v1              bool // a version 1 image (no transaction table)
}

// decodeCheckpoint parses and validates a checkpoint image. Values alias b.
func decodeCheckpoint(b []byte) (*checkpointData, error) {
	if len(b) < len(ckptMagic)+4 || string(b[:len(ckptMagic)]) != ckptMagic && string(b[:len(ckptMagic)]) != ckptMagicV1 {
		return nil, fmt.Errorf("not a checkpoint (bad magic)")
	}
	v1 := string(b[:len(ckptMagic)]) == ckptMagicV1
	body := b[:len(b)-4]
	if checksum.Sum32C(body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("checksum mismatch")
	}
	d := &decoder{b: body[len(ckptMagic):]}
	ck := &checkpointData{seq: d.uv(), replayFrom: d.uv(), conts: map[UUID]*contNode{}}
	nc := d.count(16)
	for i := 0; i < nc && d.err == nil; i++ {
		c := newCont(d.uuid(), checksum.Type(d.u8()), 0)
		chunk := d.uv()
		c.aggHi = d.uv()
		if d.err == nil && (!c.csum.Valid() || chunk == 0 || chunk > maxCsumChunk) {
			d.fail("container %s: bad checksum settings", c.uuid)
		}
		c.chunk = uint32(chunk)
		if _, dup := ck.conts[c.uuid]; dup {
			d.fail("container %s twice", c.uuid)
		}
		ck.conts[c.uuid] = c
		no := d.count(17)
		var prev *objNode
		for j := 0; j < no && d.err == nil; j++ {
			ob := newObj(d.oid())
			if prev != nil && !c.objs.Less(prev, ob) {
				d.fail("objects out of order")
			}
			prev = ob
			ob.punches = d.orders()
			ck.scmUsed += punchOverhead * int64(len(ob.punches))
			nd := d.count(3)
			var prevKey string
			for k := 0; k < nd && d.err == nil; k++ {
				dk := &dkeyNode{key: string(d.bytes())}
				if k > 0 && cmpKey(prevKey, dk.key, ob.dkeyInt) >= 0 {
					d.fail("dkeys out of order")
				}
				prevKey = dk.key
				dk.punches = d.orders()
				ck.scmUsed += punchOverhead * int64(len(dk.punches))
				na := d.count(6)
				for l := 0; l < na && d.err == nil; l++ {
					a := decodeAkey(d, &ck.scmUsed)
					if l > 0 && a != nil && cmpKey(dk.akeys[l-1].key, a.key, ob.akeyInt) >= 0 {
						d.fail("akeys out of order")
					}
					dk.akeys = append(dk.akeys, a)
				}
				ob.dkeys.Set(dk)
			}
			c.objs.Set(ob)
		}
	}
	ck.v1 = v1
	if !v1 && d.err == nil {
		ck.dtx = decodeDtx(d)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return ck, nil
}

func decodeAkey(d *decoder, scm *int64) *akeyNode {
	a := &akeyNode{key: string(d.bytes())}
	a.punches = d.orders()
	*scm += punchOverhead * int64(len(a.punches))
	a.kind = IODType(d.u8())
	a.rsize = d.uv()
	if d.err == nil && a.kind > IODArray {
		d.fail("akey %q: bad type %d", a.key, a.kind)
		return nil
	}
	ns := d.count(5)
	if ns > 0 {
		a.svs = make([]svRec, ns)
	}
	for i := range a.svs {
		x := &a.svs[i]
		x.order = d.order()
		x.off = d.uv()
		size := d.uv()
		x.flags = d.u8()
		x.buf = d.bytes()
		if d.err != nil {
			return nil
		}
		v := valueRec{akey: []byte(a.key), typ: IODSingle, rsize: size, flags: x.flags, buf: x.buf}
		if err := v.validShape(); err != nil {
			d.fail("akey %q: %v", a.key, err)
			return nil
		}
		x.size = uint32(size)
		if i > 0 && !a.svs[i-1].order.less(x.order) {
			d.fail("akey %q: versions out of order", a.key)
		}
		*scm += recordBytes(x.buf)
	}
	ne := d.count(7)
	if ne > 0 {
		a.exts = make([]exRec, ne)
	}
	for i := range a.exts {
		x := &a.exts[i]
		x.order = d.order()
		x.idx, x.nr, x.off = d.uv(), d.uv(), d.uv()
		x.flags = d.u8()
		x.buf = d.bytes()
		if d.err != nil {
			return nil
		}
		v := valueRec{akey: []byte(a.key), typ: IODArray, rsize: a.rsize, recx: x.recx(), flags: x.flags, buf: x.buf}
		if err := v.validShape(); err != nil {
			d.fail("akey %q: %v", a.key, err)
			return nil
		}
		if i > 0 {
			y := &a.exts[i-1]
			if y.idx > x.idx || (y.idx == x.idx && !y.order.less(x.order)) {
				d.fail("akey %q: extents out of order", a.key)
			}
		}
		a.maxLen = max(a.maxLen, x.nr)
		*scm += recordBytes(x.buf)
	}
	if d.err == nil && len(a.svs) > 0 && len(a.exts) > 0 {
		d.fail("akey %q holds both single values and extents", a.key)
	}
	return a
}
