package daos

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/godaos/godaos/internal/daoserr"
)

// testArray creates an array of type ot with the given sizes in h.
func testArray(t *testing.T, h *Cont, ot OType, cell, chunk uint64) *ArrayObj {
	t.Helper()
	oid, err := h.GenerateOID(context.Background(), SX, ot)
	if err != nil {
		t.Fatal(err)
	}
	a, err := h.ArrayCreate(context.Background(), oid, cell, chunk)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// pattern is n bytes that differ from those of any other seed.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// TestArray: create and open, reads and writes across chunks from and into
// cut-up buffers, holes, sizes, punches, destroy, DAOS's layout, and every
// refusal.
func TestArray(t *testing.T) {
	h := testCont(t)
	ctx := context.Background()

	t.Run("write, read, sizes", func(t *testing.T) {
		a := testArray(t, h, OTArray, 4, 3) // 12-byte chunks: most writes cross dkeys
		data := pattern(1, 4*20)
		// cells [2, 22) from three buffers cut off cell boundaries
		sgl := [][]byte{data[:5], data[5:5], data[5:41], data[41:]}
		if err := a.Write(ctx, []ArrayRange{{Idx: 2, Len: 20}}, sgl); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4*24)
		if err := a.Read(ctx, []ArrayRange{{Idx: 0, Len: 24}}, [][]byte{got[:13], got[13:]}); err != nil {
			t.Fatal(err)
		}
		want := append(append(make([]byte, 8), data...), make([]byte, 8)...) // holes and the cells past the end read as zeros
		if !bytes.Equal(got, want) {
			t.Fatalf("read back\n%v\nwant\n%v", got, want)
		}
		if n, err := a.GetSize(ctx); err != nil || n != 22 {
			t.Fatalf("size %d %v, want 22", n, err)
		}
		// several ranges at once, out of order, some in one chunk
		rs := []ArrayRange{{Idx: 100, Len: 2}, {Idx: 30, Len: 1}, {Idx: 32, Len: 4}, {Idx: 50, Len: 0}}
		w := pattern(9, 4*7)
		if err := a.Write(ctx, rs, [][]byte{w}); err != nil {
			t.Fatal(err)
		}
		r := make([]byte, len(w))
		if err := a.Read(ctx, rs, [][]byte{r}); err != nil || !bytes.Equal(r, w) {
			t.Fatalf("ranges read back %v %v", r, err)
		}
		st, err := a.Stat(ctx)
		if err != nil || st != (ArrayStat{Size: 102, CellSize: 4, ChunkSize: 3}) {
			t.Fatalf("stat %+v %v", st, err)
		}
	})

	t.Run("punch", func(t *testing.T) {
		a := testArray(t, h, OTArray, 1, 10)
		data := pattern(3, 40)
		if err := a.Write(ctx, []ArrayRange{{0, 40}}, [][]byte{data}); err != nil {
			t.Fatal(err)
		}
		if err := a.Punch(ctx, []ArrayRange{{5, 10}, {30, 10}}); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 40)
		if err := a.Read(ctx, []ArrayRange{{0, 40}}, [][]byte{got}); err != nil {
			t.Fatal(err)
		}
		want := bytes.Clone(data)
		clear(want[5:15])
		clear(want[30:40])
		if !bytes.Equal(got, want) {
			t.Fatalf("after punch %v", got)
		}
		// the tail punched: the size ends at the last cell with data
		if n, err := a.GetSize(ctx); err != nil || n != 30 {
			t.Fatalf("size %d %v, want 30", n, err)
		}
	})

	t.Run("set size", func(t *testing.T) {
		a := testArray(t, h, OTArray, 2, 5)
		data := pattern(5, 2*23)
		if err := a.Write(ctx, []ArrayRange{{0, 23}}, [][]byte{data}); err != nil {
			t.Fatal(err)
		}
		for _, size := range []uint64{23, 17, 15, 11, 10, 9, 5, 1, 40, 3, 0, 7, 0} {
			if err := a.SetSize(ctx, size); err != nil {
				t.Fatalf("set size %d: %v", size, err)
			}
			if n, err := a.GetSize(ctx); err != nil || n != size {
				t.Fatalf("set size %d: size %d %v", size, n, err)
			}
		}
		// everything was cut away, then 7 cells of zeros
		got := pattern(0, 2*10)
		if err := a.Read(ctx, []ArrayRange{{0, 10}}, [][]byte{got}); err != nil || !bytes.Equal(got, make([]byte, 20)) {
			t.Fatalf("after shrinking to 0: %v %v", got, err)
		}
		// a shrink keeps what stays and drops the rest
		if err := a.Write(ctx, []ArrayRange{{0, 23}}, [][]byte{data}); err != nil {
			t.Fatal(err)
		}
		if err := a.SetSize(ctx, 12); err != nil {
			t.Fatal(err)
		}
		got = make([]byte, 2*23)
		if err := a.Read(ctx, []ArrayRange{{0, 23}}, [][]byte{got}); err != nil {
			t.Fatal(err)
		}
		if want := append(bytes.Clone(data[:24]), make([]byte, 22)...); !bytes.Equal(got, want) {
			t.Fatalf("after shrinking to 12:\n%v\nwant\n%v", got, want)
		}
	})

	t.Run("open, layout, destroy", func(t *testing.T) {
		a := testArray(t, h, OTArray, 8, 4)
		if err := a.Write(ctx, []ArrayRange{{5, 1}}, [][]byte{pattern(7, 8)}); err != nil {
			t.Fatal(err)
		}
		b, err := h.ArrayOpen(ctx, a.OID())
		if err != nil || b.CellSize() != 8 || b.ChunkSize() != 4 {
			t.Fatalf("open: %v", err)
		}
		// DAOS's layout, read as a plain object: metadata at dkey 0, cell 5
		// at index 1 of dkey 2, akey "0"
		o, err := h.Obj(a.OID())
		if err != nil {
			t.Fatal(err)
		}
		md, cell := make([]byte, 24), make([]byte, 8)
		if _, err := o.Fetch(ctx, u64(0), []IOD{{Akey: []byte("0"), Type: Single, Size: 24}}, [][]byte{md}); err != nil {
			t.Fatal(err)
		}
		if binary.LittleEndian.Uint64(md) != 0xdaca55a9daca55a9 || binary.LittleEndian.Uint64(md[8:]) != 8 || binary.LittleEndian.Uint64(md[16:]) != 4 {
			t.Fatalf("metadata %x", md)
		}
		if _, err := o.Fetch(ctx, u64(2), []IOD{{Akey: []byte("0"), Type: Array, Size: 8, Recxs: []Recx{{1, 1}}}}, [][]byte{cell}); err != nil || !bytes.Equal(cell, pattern(7, 8)) {
			t.Fatalf("cell 5 at dkey 2 index 1: %v %v", cell, err)
		}
		if err := b.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		_, err = h.ArrayOpen(ctx, a.OID())
		wantCode(t, "open a destroyed array", err, daoserr.Nonexist)
		if n, err := a.GetSize(ctx); err != nil || n != 0 {
			t.Fatalf("size of a destroyed array %d %v", n, err)
		}
	})

	t.Run("byte arrays", func(t *testing.T) {
		oid, err := h.GenerateOID(ctx, SX, OTArrayByte)
		if err != nil {
			t.Fatal(err)
		}
		a, err := h.ArrayOpenWithAttr(oid, 1, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		// a write larger than one request carries, within one chunk, and
		// one spread over many chunks
		big := pattern(11, 3*maxArrayIOBytes/2)
		if err := a.Write(ctx, []ArrayRange{{100, uint64(len(big))}}, [][]byte{big}); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(big))
		if err := a.Read(ctx, []ArrayRange{{100, uint64(len(big))}}, [][]byte{got}); err != nil || !bytes.Equal(got, big) {
			t.Fatalf("big read back differs: %v", err)
		}
		// many ranges in one chunk: more extents than one request's header holds
		var rs []ArrayRange
		for i := range uint64(3000) {
			rs = append(rs, ArrayRange{Idx: 2 * i, Len: 1})
		}
		strided := pattern(13, len(rs))
		if err := a.Write(ctx, rs, [][]byte{strided}); err != nil {
			t.Fatal(err)
		}
		got = make([]byte, len(rs))
		if err := a.Read(ctx, rs, [][]byte{got}); err != nil || !bytes.Equal(got, strided) {
			t.Fatalf("strided read back differs: %v", err)
		}
		if n, err := a.GetSize(ctx); err != nil || n != 100+uint64(len(big)) {
			t.Fatalf("size %d %v", n, err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		a := testArray(t, h, OTArray, 4, 8)
		plain, err := h.GenerateOID(ctx, SX, OTMultiHashed)
		if err != nil {
			t.Fatal(err)
		}
		bytesOID, err := h.GenerateOID(ctx, SX, OTArrayByte)
		if err != nil {
			t.Fatal(err)
		}
		// an ARRAY object whose dkey 0 holds something else
		junk, err := h.GenerateOID(ctx, SX, OTArray)
		if err != nil {
			t.Fatal(err)
		}
		jo, err := h.Obj(junk)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jo.Update(ctx, u64(0), []IOD{{Akey: []byte("0"), Type: Single, Size: 3}}, [][]byte{[]byte("abc")}); err != nil {
			t.Fatal(err)
		}
		fresh, err := h.GenerateOID(ctx, SX, OTArray)
		if err != nil {
			t.Fatal(err)
		}
		closed := testArray(t, h, OTArray, 1, 1)
		if err := closed.Close(); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			call func() error
			code daoserr.Code
		}{
			{"create: cell size 0", func() error { _, err := h.ArrayCreate(ctx, fresh, 0, 8); return err }, daoserr.Inval},
			{"create: chunk size 0", func() error { _, err := h.ArrayCreate(ctx, fresh, 4, 0); return err }, daoserr.Inval},
			{"create: chunk of 2^64 bytes", func() error { _, err := h.ArrayCreate(ctx, fresh, 1<<32, 1<<32); return err }, daoserr.Inval},
			{"create: not an array type", func() error { _, err := h.ArrayCreate(ctx, plain, 4, 8); return err }, daoserr.Inval},
			{"create: exists", func() error { _, err := h.ArrayCreate(ctx, a.OID(), 4, 8); return err }, daoserr.Exist},
			{"open: never created", func() error { _, err := h.ArrayOpen(ctx, fresh); return err }, daoserr.Nonexist},
			{"open: not an array type", func() error { _, err := h.ArrayOpen(ctx, plain); return err }, daoserr.Inval},
			{"open: a byte array", func() error { _, err := h.ArrayOpen(ctx, bytesOID); return err }, daoserr.Inval},
			{"open: no array metadata", func() error { _, err := h.ArrayOpen(ctx, junk); return err }, daoserr.NoPerm},
			{"open with attr: an ARRAY", func() error { _, err := h.ArrayOpenWithAttr(a.OID(), 4, 8); return err }, daoserr.Inval},
			{"open with attr: cell size 0", func() error { _, err := h.ArrayOpenWithAttr(bytesOID, 0, 8); return err }, daoserr.Inval},
			{"write: buffers too short", func() error { return a.Write(ctx, []ArrayRange{{0, 2}}, [][]byte{make([]byte, 7)}) }, daoserr.Inval},
			{"write: buffers too long", func() error { return a.Write(ctx, []ArrayRange{{0, 2}}, [][]byte{make([]byte, 9)}) }, daoserr.Inval},
			{"read: buffers too short", func() error { return a.Read(ctx, []ArrayRange{{0, 2}}, nil) }, daoserr.Inval},
			{"write: range past the last index", func() error {
				return a.Write(ctx, []ArrayRange{{math.MaxUint64, 2}}, [][]byte{make([]byte, 8)})
			}, daoserr.Inval},
			{"punch: range past the last index", func() error { return a.Punch(ctx, []ArrayRange{{math.MaxUint64 - 1, 5}}) }, daoserr.Inval},
			{"read: ranges of more than 2^64 cells", func() error {
				return a.Read(ctx, []ArrayRange{{0, math.MaxUint64}, {0, 2}}, nil)
			}, daoserr.Inval},
			{"closed: write", func() error { return closed.Write(ctx, []ArrayRange{{0, 1}}, [][]byte{{1}}) }, daoserr.NoHdl},
			{"closed: read", func() error { return closed.Read(ctx, []ArrayRange{{0, 1}}, [][]byte{{1}}) }, daoserr.NoHdl},
			{"closed: punch", func() error { return closed.Punch(ctx, []ArrayRange{{0, 1}}) }, daoserr.NoHdl},
			{"closed: get size", func() error { _, err := closed.GetSize(ctx); return err }, daoserr.NoHdl},
			{"closed: set size", func() error { return closed.SetSize(ctx, 1) }, daoserr.NoHdl},
			{"closed: stat", func() error { _, err := closed.Stat(ctx); return err }, daoserr.NoHdl},
			{"closed: destroy", func() error { return closed.Destroy(ctx) }, daoserr.NoHdl},
			{"closed: close", func() error { return closed.Close() }, daoserr.NoHdl},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { wantCode(t, c.name, c.call(), c.code) })
		}
		// the same array through a closed container handle
		b, err := h.ArrayOpen(ctx, a.OID())
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Close(ctx); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "write through a closed container", b.Write(ctx, []ArrayRange{{0, 1}}, [][]byte{make([]byte, 4)}), daoserr.NoHdl)
	})
}

// TestArrayModel: random writes, punches and size changes against a []byte
// model, every read and size checked, over a small index space so that
// chunks, holes and both shards come into play.
func TestArrayModel(t *testing.T) {
	h := testCont(t)
	checkArrayModel(t, h, func() (OID, error) { return h.GenerateOID(context.Background(), SX, OTArray) }, 2, 5, 64)
}

// checkArrayModel runs the model of TestArrayModel on arrays of cells of
// cell bytes in chunks of chunk cells, over cells cells, made with newOID.
func checkArrayModel(t *testing.T, h *Cont, newOID func() (OID, error), cell, chunk, cells uint64) {
	ctx := context.Background()
	rapid.Check(t, func(rt *rapid.T) {
		oid, err := newOID()
		if err != nil {
			rt.Fatal(err)
		}
		a, err := h.ArrayCreate(ctx, oid, cell, chunk)
		if err != nil {
			rt.Fatal(err)
		}
		data := make([]byte, cells*cell) // the model: cell contents...
		has := make([]bool, cells)       // ...and which cells hold data
		size := func() uint64 {
			for i := int(cells) - 1; i >= 0; i-- {
				if has[i] {
					return uint64(i + 1)
				}
			}
			return 0
		}
		drawRange := func(rt *rapid.T) ArrayRange {
			idx := rapid.Uint64Range(0, cells-1).Draw(rt, "idx")
			return ArrayRange{Idx: idx, Len: rapid.Uint64Range(0, cells-idx).Draw(rt, "len")}
		}
		steps := rapid.IntRange(1, 20).Draw(rt, "steps")
		for range steps {
			switch op := rapid.IntRange(0, 3).Draw(rt, "op"); op {
			case 0: // write
				r := drawRange(rt)
				buf := rapid.SliceOfN(rapid.Byte(), int(r.Len*cell), int(r.Len*cell)).Draw(rt, "data")
				cut := rapid.IntRange(0, len(buf)).Draw(rt, "cut")
				if err := a.Write(ctx, []ArrayRange{r}, [][]byte{buf[:cut], buf[cut:]}); err != nil {
					rt.Fatal(err)
				}
				copy(data[r.Idx*cell:], buf)
				for i := r.Idx; i < r.Idx+r.Len; i++ {
					has[i] = true
				}
			case 1: // punch
				r := drawRange(rt)
				if err := a.Punch(ctx, []ArrayRange{r}); err != nil {
					rt.Fatal(err)
				}
				clear(data[r.Idx*cell : (r.Idx+r.Len)*cell])
				for i := r.Idx; i < r.Idx+r.Len; i++ {
					has[i] = false
				}
			case 2: // set size
				n := rapid.Uint64Range(0, cells).Draw(rt, "size")
				if err := a.SetSize(ctx, n); err != nil {
					rt.Fatal(err)
				}
				clear(data[n*cell:])
				for i := n; i < cells; i++ {
					has[i] = false
				}
				if n > 0 {
					has[n-1] = true // a zero cell where it was a hole
				}
			case 3: // read
				r := drawRange(rt)
				got := make([]byte, r.Len*cell)
				if err := a.Read(ctx, []ArrayRange{r}, [][]byte{got}); err != nil {
					rt.Fatal(err)
				}
				if want := data[r.Idx*cell : (r.Idx+r.Len)*cell]; !bytes.Equal(got, want) {
					rt.Fatalf("read %+v:\n%v\nwant\n%v", r, got, want)
				}
			}
			if n, err := a.GetSize(ctx); err != nil || n != size() {
				rt.Fatalf("size %d %v, model %d", n, err, size())
			}
		}
		got := make([]byte, len(data))
		if err := a.Read(ctx, []ArrayRange{{0, cells}}, [][]byte{got}); err != nil || !bytes.Equal(got, data) {
			rt.Fatalf("final read %v:\n%v\nwant\n%v", err, got, data)
		}
	})
}
