package vos

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/godaos/godaos/internal/checksum"
)

// Binary encoding shared by log records and checkpoints: unsigned varints for
// numbers, length-prefixed byte strings, fixed 16 bytes for ids. The decoder checks
// every length against what is left, so garbage input yields an error, never a
// panic or a huge allocation.

type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)     { e.b = append(e.b, v) }
func (e *encoder) uv(v uint64)    { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) bytes(v []byte) { e.uv(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) str(v string)   { e.uv(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) uuid(u UUID)    { e.b = append(e.b, u[:]...) }
func (e *encoder) oid(o OID) {
	e.b = binary.LittleEndian.AppendUint64(e.b, o.Hi)
	e.b = binary.LittleEndian.AppendUint64(e.b, o.Lo)
}
func (e *encoder) order(o order) { e.uv(o.epoch); e.uv(o.seq) }
func (e *encoder) orders(os []order) {
	e.uv(uint64(len(os)))
	for _, o := range os {
		e.order(o)
	}
}

var errShort = errors.New("truncated")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) u8() uint8 {
	if d.err != nil || len(d.b) < 1 {
		d.fail("%w", errShort)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uv() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || (n > 1 && d.b[n-1] == 0) { // overlong forms are corruption, not data
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of items, each taking at least minSize bytes.
func (d *decoder) count(minSize int) int {
	n := d.uv()
	if d.err == nil && n > uint64(len(d.b)/max(1, minSize)) {
		d.fail("count %d exceeds remaining %d bytes", n, len(d.b))
		return 0
	}
	return int(n)
}

// bytes returns a slice aliasing the input (no copy).
func (d *decoder) bytes() []byte {
	n := d.uv()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length %d exceeds remaining %d bytes", n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) uuid() (u UUID) {
	if d.err != nil || len(d.b) < 16 {
		d.fail("%w", errShort)
		return
	}
	copy(u[:], d.b)
	d.b = d.b[16:]
	return
}

func (d *decoder) oid() (o OID) {
	if d.err != nil || len(d.b) < 16 {
		d.fail("%w", errShort)
		return
	}
	o.Hi = binary.LittleEndian.Uint64(d.b)
	o.Lo = binary.LittleEndian.Uint64(d.b[8:])
	d.b = d.b[16:]
	return
}

func (d *decoder) order() order { return order{d.uv(), d.uv()} }

func (d *decoder) orders() []order {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	os := make([]order, n)
	for i := range os {
		os[i] = d.order()
	}
	for i := 1; i < n && d.err == nil; i++ {
		if !os[i-1].less(os[i]) {
			d.fail("punch records out of order")
		}
	}
	return os
}

// ---- ops ----

func encodeOp(e *encoder, o *op) {
	e.u8(uint8(o.kind))
	e.uv(o.seq)
	e.uuid(o.cont)
	switch o.kind {
	case opContCreate:
		e.u8(uint8(o.csum))
		e.uv(uint64(o.chunk))
	case opContDestroy:
	case opDtxPut:
		e.bytes(o.dkey)
		e.bytes(o.payload)
	case opDtxDel:
		e.bytes(o.dkey)
	case opDestroy:
		e.oid(o.oid)
		e.bytes(o.dkey)
		e.uv(uint64(len(o.keys)))
		for _, k := range o.keys {
			e.bytes(k)
		}
	case opUpdate:
		e.oid(o.oid)
		e.uv(o.epoch)
		e.bytes(o.dkey)
		e.uv(uint64(len(o.vals)))
		for i := range o.vals {
			v := &o.vals[i]
			e.bytes(v.akey)
			e.u8(uint8(v.typ))
			e.uv(v.rsize)
			e.uv(v.recx.Idx)
			e.uv(v.recx.Nr)
			e.u8(v.flags)
			e.uv(v.off)
			e.bytes(v.buf)
			if v.flags&recRedo != 0 {
				e.uv(v.dataLen())
				for _, r := range v.redo {
					e.b = append(e.b, r...)
				}
			}
		}
	case opPunchObj:
		e.oid(o.oid)
		e.uv(o.epoch)
	case opPunchDkeys, opPunchAkeys:
		e.oid(o.oid)
		e.uv(o.epoch)
		if o.kind == opPunchAkeys {
			e.bytes(o.dkey)
		}
		e.uv(uint64(len(o.keys)))
		for _, k := range o.keys {
			e.bytes(k)
		}
	case opAggregate, opDiscard:
		e.uv(o.lo)
		e.uv(o.hi)
		e.uv(uint64(len(o.snaps)))
		for _, s := range o.snaps {
			e.uv(s)
		}
	}
}

// decodeOp parses one op and checks its shape (not its meaning against the
// index: replay does that).
func decodeOp(b []byte) (*op, error) {
	d := &decoder{b: b}
	o := &op{kind: opKind(d.u8()), seq: d.uv(), cont: d.uuid()}
	switch o.kind {
	case opContCreate:
		o.csum = checksum.Type(d.u8())
		chunk := d.uv()
		if d.err == nil && (!o.csum.Valid() || chunk == 0 || chunk > maxCsumChunk) {
			d.fail("bad container checksum settings %d/%d", o.csum, chunk)
		}
		o.chunk = uint32(chunk)
	case opContDestroy:
	case opDtxPut, opDtxDel:
		o.dkey = d.bytes()
		if o.kind == opDtxPut {
			o.payload = slices.Clone(d.bytes()) // kept in the table: not an alias of the log segment
		}
		if d.err == nil && len(o.dkey) == 0 {
			d.fail("transaction table entry with no key")
		}
	case opDestroy:
		o.oid = d.oid()
		if o.dkey = d.bytes(); len(o.dkey) == 0 {
			o.dkey = nil
		}
		if n := d.count(1); n == 1 && o.dkey != nil {
			o.keys = [][]byte{d.bytes()}
		} else if n != 0 {
			d.fail("destroy names %d akeys", n)
		}
	case opUpdate:
		o.oid = d.oid()
		o.epoch = d.uv()
		o.dkey = d.bytes()
		n := d.count(8)
		if d.err == nil && n == 0 {
			d.fail("update with no values")
		}
		o.vals = make([]valueRec, n)
		for i := range o.vals {
			v := &o.vals[i]
			v.akey = d.bytes()
			v.typ = IODType(d.u8())
			v.rsize = d.uv()
			v.recx = Recx{d.uv(), d.uv()}
			v.flags = d.u8()
			v.off = d.uv()
			v.buf = d.bytes()
			if v.flags&recRedo != 0 {
				v.redo = [][]byte{d.bytes()}
			}
			if d.err == nil {
				if err := v.validShape(); err != nil {
					d.fail("value %d: %v", i, err)
				}
			}
		}
	case opPunchObj:
		o.oid = d.oid()
		o.epoch = d.uv()
	case opPunchDkeys, opPunchAkeys:
		o.oid = d.oid()
		o.epoch = d.uv()
		if o.kind == opPunchAkeys {
			o.dkey = d.bytes()
		}
		n := d.count(1)
		o.keys = make([][]byte, n)
		for i := range o.keys {
			o.keys[i] = d.bytes()
		}
	case opAggregate, opDiscard:
		o.lo, o.hi = d.uv(), d.uv()
		n := d.count(1)
		o.snaps = make([]Epoch, n)
		for i := range o.snaps {
			o.snaps[i] = d.uv()
		}
	default:
		return nil, fmt.Errorf("unknown op kind %d", o.kind)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%s record: %w", o.kind, d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%s record: %d trailing bytes", o.kind, len(d.b))
	}
	return o, nil
}

func (v *valueRec) validShape() error {
	switch v.typ {
	case IODSingle:
		if v.rsize > MaxSingleValue {
			return fmt.Errorf("single value of %d bytes", v.rsize)
		}
	case IODArray:
		if v.recx.Nr == 0 || v.recx.Idx+v.recx.Nr < v.recx.Idx {
			return fmt.Errorf("bad extent %v", v.recx)
		}
		if v.flags&recHole == 0 && (v.rsize == 0 || v.recx.Nr > MaxUpdateBytes/v.rsize) {
			return fmt.Errorf("extent %v of %d-byte records", v.recx, v.rsize)
		}
	default:
		return fmt.Errorf("unknown value type %d", v.typ)
	}
	if v.flags&^(recHole|recNVMe|recRedo) != 0 || (v.flags&recHole != 0 && v.flags&recNVMe != 0) ||
		(v.flags&recRedo != 0 && v.flags&recNVMe == 0) {
		return fmt.Errorf("bad flags %#x", v.flags)
	}
	if v.flags&recRedo != 0 && (len(v.redo) != 1 || uint64(len(v.redo[0])) != v.dataLen()) {
		return fmt.Errorf("redo data of %d bytes for a %d-byte value", len(v.redo), v.dataLen())
	}
	if len(v.akey) == 0 {
		return fmt.Errorf("empty akey")
	}
	if v.flags&(recHole|recNVMe) == 0 && uint64(len(v.buf)) < v.dataLen() {
		return fmt.Errorf("inline value shorter (%d) than its size (%d)", len(v.buf), v.dataLen())
	}
	return nil
}
