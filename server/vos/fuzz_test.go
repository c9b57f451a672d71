package vos

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Fuzz targets for every decoder of on-disk data. Each must reject garbage with
// an error, never panic, and round-trip what the encoder wrote.

func sampleOps() []*op {
	return []*op{
		{kind: opContCreate, seq: 1, cont: UUIDFromUint64(1), csum: 1, chunk: 32768},
		{kind: opUpdate, seq: 2, cont: UUIDFromUint64(1), oid: OID{1, 2}, epoch: 9, dkey: []byte("dk"),
			vals: []valueRec{
				{akey: []byte("a"), typ: IODSingle, rsize: 3, buf: []byte("abc\x01\x02\x03\x04")},
				{akey: []byte("b"), typ: IODArray, rsize: 1, recx: Recx{4, 8}, flags: recNVMe, off: 4096, buf: []byte{1, 2, 3, 4}},
				{akey: []byte("c"), typ: IODArray, recx: Recx{0, 2}, flags: recHole},
				{akey: []byte("r"), typ: IODSingle, rsize: 4, flags: recNVMe | recRedo, off: 8192, buf: []byte{9, 9, 9, 9}, redo: [][]byte{[]byte("redo")}},
			}},
		{kind: opPunchAkeys, seq: 3, cont: UUIDFromUint64(1), oid: OID{1, 2}, epoch: 10, dkey: []byte("dk"), keys: [][]byte{[]byte("a")}},
		{kind: opPunchDkeys, seq: 4, cont: UUIDFromUint64(1), oid: OID{1, 2}, epoch: 11, keys: [][]byte{[]byte("dk"), []byte("x")}},
		{kind: opPunchObj, seq: 5, cont: UUIDFromUint64(1), oid: OID{1, 2}, epoch: 12},
		{kind: opAggregate, seq: 6, cont: UUIDFromUint64(1), lo: 0, hi: 11, snaps: []Epoch{3, 5}},
		{kind: opDiscard, seq: 7, cont: UUIDFromUint64(1), lo: 12, hi: 12},
		{kind: opDestroy, seq: 8, cont: UUIDFromUint64(1), oid: OID{1, 2}, dkey: []byte("dk"), keys: [][]byte{[]byte("b")}},
		{kind: opContDestroy, seq: 9, cont: UUIDFromUint64(1)},
		{kind: opDtxPut, seq: 10, dkey: []byte("P0123456789abcdef"), payload: []byte("a prepared part")},
		{kind: opDtxDel, seq: 11, dkey: []byte("P0123456789abcdef")},
	}
}

func FuzzDecodeOp(f *testing.F) {
	for _, o := range sampleOps() {
		e := encoder{}
		encodeOp(&e, o)
		f.Add(e.b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := decodeOp(b)
		if err != nil {
			return
		}
		// whatever decodes must re-encode to the same bytes
		e := encoder{}
		encodeOp(&e, o)
		if !bytes.Equal(e.b, b) {
			t.Fatalf("decode/encode not stable:\n in %x\nout %x", b, e.b)
		}
	})
}

func FuzzReadRecord(f *testing.F) {
	for _, o := range sampleOps() {
		f.Add(appendRecord(nil, o))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		off := 0
		for off < len(b) {
			payload, n, err := readRecord(b[off:])
			if err != nil {
				return
			}
			if n <= recHeader || n > len(b)-off || len(payload) != n-recHeader {
				t.Fatalf("bad record bounds n=%d len=%d", n, len(b)-off)
			}
			decodeOp(payload)
			off += n
		}
	})
}

// FuzzCheckpoint decodes arbitrary checkpoint images. The checksum is recomputed
// over the fuzzed body so the decoder proper is exercised, not only the CRC check.
func FuzzCheckpoint(f *testing.F) {
	dir := f.TempDir()
	if err := Format(dir, FormatOptions{ScmSize: 8 << 20, NvmeSize: 1 << 20, DataThresh: 16}); err != nil {
		f.Fatal(err)
	}
	p, err := Open(dir, Options{})
	if err != nil {
		f.Fatal(err)
	}
	u := UUIDFromUint64(3)
	p.CreateContainer(u, ContOptions{CsumChunk: 8})
	p.Update(u, OID{Hi: uint64(ObjArray) << 56, Lo: 1}, 5, 0, []byte("12345678"),
		[]IOD{{Akey: []byte("x"), Type: IODArray, Size: 1, Recxs: []Recx{{0, 40}}}, {Akey: []byte("s"), Type: IODSingle, Size: 3}},
		[]SGL{{bytes.Repeat([]byte("y"), 40)}, {[]byte("abc")}})
	p.PunchAkeys(u, OID{Hi: uint64(ObjArray) << 56, Lo: 1}, 6, 0, []byte("12345678"), [][]byte{[]byte("s")})
	p.DtxPut([]byte("D0123456789abcdef"), []byte("a decision"))
	p.DtxPut([]byte("P0123456789abcdef"), []byte("a prepared part"))
	p.Checkpoint()
	p.Close()
	img, err := os.ReadFile(filepath.Join(dir, ckptName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(img[:len(img)-4])
	f.Add([]byte(ckptMagic))
	f.Fuzz(func(t *testing.T, body []byte) {
		img := append(bytes.Clone(body), 0, 0, 0, 0)
		putCRC(img)
		ck, err := decodeCheckpoint(img)
		if err != nil || ck.v1 {
			return // a version 1 image is written again as version 2
		}
		// a decodable checkpoint re-encodes to the same image
		e := &encoder{}
		encodeCheckpoint(e, ck.seq, ck.replayFrom, ck.conts, ck.dtx)
		if !bytes.Equal(e.b, body) {
			t.Fatalf("checkpoint decode/encode not stable")
		}
	})
}

// FuzzReplay opens a target whose log segment is arbitrary bytes: open must either
// succeed (replaying a valid prefix) or fail with an error, never panic.
func FuzzReplay(f *testing.F) {
	var seg []byte
	for _, o := range sampleOps() {
		seg = appendRecord(seg, o)
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	base := f.TempDir()
	if err := Format(base, FormatOptions{ScmSize: 8 << 20, NvmeSize: 1 << 20}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		for _, n := range []string{sbName, "data"} {
			data, _ := os.ReadFile(filepath.Join(base, n))
			os.WriteFile(filepath.Join(dir, n), data, 0o600)
		}
		os.WriteFile(filepath.Join(dir, segName(0)), b, 0o600)
		p, err := Open(dir, Options{})
		if err != nil {
			return
		}
		p.Query()
		p.Close()
	})
}
