package daos

import (
	"context"
	"encoding/binary"
	"math"
	"sync/atomic"

	"github.com/godaos/godaos/internal/daoserr"
)

// Arrays (DAOS's daos_array.h): a one-dimensional array of fixed-size cells
// over an object of type ARRAY (or ARRAY_BYTE/ARRAY_ATTR), laid out as DAOS
// lays it out (src/client/array/README.md), so the same object reads the
// same through either:
//
//   - dkey 0 (the integer 0 as 8 little-endian bytes) holds the metadata:
//     a single value of three little-endian uint64s, the magic
//     0xdaca55a9daca55a9, the cell size and the chunk size;
//   - cells [i*chunk, (i+1)*chunk) live under dkey i+1, as array records of
//     cell-size bytes at indexes 0..chunk-1 of one akey.
//
// DAOS names that akey with the one byte '0' (its code has a "should be
// NULL" note; our VOS, like DAOS's, refuses empty keys), and so do we, for
// the metadata and the cells alike. Integer dkeys place each chunk by its
// number, so consecutive chunks spread over the object's shards.

// ArrayRange is a run of Len cells from cell Idx (DAOS's daos_range_t).
type ArrayRange struct{ Idx, Len uint64 }

// ArrayObj is an open array (DAOS's array handle). It is safe for
// concurrent use.
type ArrayObj struct {
	obj       *Obj
	cellSize  uint64
	chunkSize uint64
	closed    atomic.Bool
}

// ArrayStat is what Stat reports (daos_array_stbuf_t without st_max_epoch,
// which needs an object-wide epoch query the engines do not answer yet).
type ArrayStat struct {
	Size      uint64 // cells: one past the last cell written
	CellSize  uint64
	ChunkSize uint64
}

const arrayMagic = 0xdaca55a9daca55a9

// arrayAkey is the akey of the metadata and of every chunk's cells.
var arrayAkey = []byte{'0'}

// arrayDkey is the integer dkey n.
func arrayDkey(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }

// Limits of one request an array operation sends: its bulk, and its extents
// (which travel in the message header, itself limited to 64 KiB).
const (
	maxArrayIOBytes = 8 << 20
	maxArrayIORecxs = 1024
)

// ArrayCreate creates the array oid (of an array type, see GenerateOID) with
// cells of cellSize bytes stored chunkSize cells to a dkey, and opens it
// (daos_array_create). DER_EXIST if the object already holds an array's
// metadata.
func (c *Cont) ArrayCreate(ctx context.Context, oid OID, cellSize, chunkSize uint64) (*ArrayObj, error) {
	if !oid.Type().IsArray() {
		return nil, daoserr.Newf(daoserr.Inval, "create array %s: the object is of type %s", oid, oid.Type()).
			WithResolution("generate its OID with type ARRAY (daos.OTArray) or ARRAY_BYTE (daos.OTArrayByte)")
	}
	a, err := c.arrayObj(oid, cellSize, chunkSize)
	if err != nil {
		return nil, daoserr.Context(err, "create array %s", oid)
	}
	md := make([]byte, 0, 24)
	for _, v := range []uint64{arrayMagic, cellSize, chunkSize} {
		md = binary.LittleEndian.AppendUint64(md, v)
	}
	iod := []IOD{{Akey: arrayAkey, Type: Single, Size: uint64(len(md))}}
	if _, err := a.obj.UpdateCond(ctx, CondDkeyInsert|CondAkeyInsert, arrayDkey(0), iod, [][]byte{md}); err != nil {
		return nil, daoserr.Context(err, "create array %s", oid)
	}
	return a, nil
}

// ArrayOpen opens the array oid, of type ARRAY, with the cell and chunk
// sizes its metadata holds (daos_array_open). DER_NONEXIST if it has none;
// DER_NO_PERM, as in DAOS, if what it holds is not an array's metadata.
func (c *Cont) ArrayOpen(ctx context.Context, oid OID) (*ArrayObj, error) {
	if oid.Type() != OTArray {
		return nil, daoserr.Newf(daoserr.Inval, "open array %s: the object is of type %s, ArrayOpen reads the metadata of ARRAY objects", oid, oid.Type()).
			WithResolution("open ARRAY_BYTE and ARRAY_ATTR arrays with ArrayOpenWithAttr, giving their cell and chunk sizes")
	}
	o, err := c.Obj(oid)
	if err != nil {
		return nil, err
	}
	md := make([]byte, 24)
	iod := []IOD{{Akey: arrayAkey, Type: Single, Size: uint64(len(md))}}
	res, err := o.FetchCond(ctx, CondDkeyFetch|CondAkeyFetch, arrayDkey(0), iod, [][]byte{md})
	switch {
	case daoserr.Is(err, daoserr.Nonexist):
		return nil, daoserr.Newf(daoserr.Nonexist, "open array %s: no such array (no metadata at dkey 0)", oid).
			WithResolution("create it with ArrayCreate")
	case daoserr.Is(err, daoserr.Rec2Big) || daoserr.Is(err, daoserr.Inval):
		return nil, daoserr.Newf(daoserr.NoPerm, "open array %s: the object holds no array metadata (%v)", oid, err)
	case err != nil:
		return nil, daoserr.Context(err, "open array %s", oid)
	}
	cell, chunk := binary.LittleEndian.Uint64(md[8:]), binary.LittleEndian.Uint64(md[16:])
	if res[0].Size != 24 || binary.LittleEndian.Uint64(md) != arrayMagic || cell == 0 || chunk == 0 {
		return nil, daoserr.Newf(daoserr.NoPerm, "open array %s: dkey 0 holds %d bytes that are not an array's metadata", oid, res[0].Size)
	}
	return c.arrayObj(oid, cell, chunk)
}

// ArrayOpenWithAttr opens the array oid, of type ARRAY_BYTE or ARRAY_ATTR,
// whose cell and chunk sizes the caller keeps (daos_array_open_with_attr):
// nothing is read, and nothing need have been created.
func (c *Cont) ArrayOpenWithAttr(oid OID, cellSize, chunkSize uint64) (*ArrayObj, error) {
	if t := oid.Type(); !t.IsArray() || t == OTArray {
		return nil, daoserr.Newf(daoserr.Inval, "open array %s: the object is of type %s", oid, t).
			WithResolution("open ARRAY objects with ArrayOpen; ArrayOpenWithAttr takes ARRAY_BYTE and ARRAY_ATTR")
	}
	a, err := c.arrayObj(oid, cellSize, chunkSize)
	if err != nil {
		return nil, daoserr.Context(err, "open array %s", oid)
	}
	return a, nil
}

func (c *Cont) arrayObj(oid OID, cellSize, chunkSize uint64) (*ArrayObj, error) {
	if cellSize == 0 || chunkSize == 0 {
		return nil, daoserr.Newf(daoserr.Inval, "cell size %d, chunk size %d", cellSize, chunkSize).
			WithResolution("give a cell size (bytes a cell) and a chunk size (cells a dkey) of at least 1")
	}
	if chunkSize > math.MaxUint64/cellSize {
		return nil, daoserr.Newf(daoserr.Inval, "a chunk of %d cells of %d bytes is more than 2^64 bytes", chunkSize, cellSize)
	}
	o, err := c.Obj(oid)
	if err != nil {
		return nil, err
	}
	return &ArrayObj{obj: o, cellSize: cellSize, chunkSize: chunkSize}, nil
}

// OID is the array's object ID.
func (a *ArrayObj) OID() OID { return a.obj.OID }

// CellSize is the bytes of one cell.
func (a *ArrayObj) CellSize() uint64 { return a.cellSize }

// ChunkSize is the cells stored under one dkey.
func (a *ArrayObj) ChunkSize() uint64 { return a.chunkSize }

// Close closes the handle; later calls through it fail with DER_NO_HDL.
func (a *ArrayObj) Close() error {
	if a.closed.Swap(true) {
		return a.closedErr()
	}
	return nil
}

func (a *ArrayObj) closedErr() error {
	return daoserr.Newf(daoserr.NoHdl, "array %s: the handle is closed", a.obj.OID).WithResolution("open the array again")
}

// Write writes the cells of ranges from sgl, the caller's buffers, whose
// lengths must add up to the ranges' cells (daos_array_write). Each chunk's
// part goes to the target that holds it, concurrently, straight from sgl.
// Ranges should not overlap. A write is durable when Write returns; it is
// atomic within a chunk, not across chunks (as in DAOS).
func (a *ArrayObj) Write(ctx context.Context, ranges []ArrayRange, sgl [][]byte) error {
	return a.io(ctx, "write", ranges, sgl, true)
}

// Read reads the cells of ranges into sgl, the caller's buffers, whose
// lengths must add up to the ranges' cells (daos_array_read). Cells never
// written, punched, or past the end read as zeros.
func (a *ArrayObj) Read(ctx context.Context, ranges []ArrayRange, sgl [][]byte) error {
	return a.io(ctx, "read", ranges, sgl, true)
}

// ReadAt reads len(buf)/CellSize cells from cell idx into buf, and returns
// one past the last of them that holds data (idx when none does), so that a
// file system can tell a short read at the end of a file from a hole inside
// it without asking the array's size (cells past the returned end may still
// be a hole followed by data: GetSize tells). buf must hold whole cells.
func (a *ArrayObj) ReadAt(ctx context.Context, buf []byte, idx uint64) (end uint64, err error) {
	if a.closed.Load() {
		return 0, a.closedErr()
	}
	if uint64(len(buf))%a.cellSize != 0 {
		return 0, daoserr.Newf(daoserr.Inval, "read array %s: a buffer of %d bytes is not whole cells of %d bytes", a.obj.OID, len(buf), a.cellSize)
	}
	ios, err := a.split([]ArrayRange{{Idx: idx, Len: uint64(len(buf)) / a.cellSize}}, [][]byte{buf}, true)
	if err != nil {
		return 0, daoserr.Context(err, "read array %s", a.obj.OID)
	}
	ends := make([]uint64, len(ios))
	err = forEach(ctx, len(ios), func(ctx context.Context, i int) error {
		x := ios[i]
		iod := []IOD{{Akey: arrayAkey, Type: Array, Size: a.cellSize, Recxs: x.recxs}}
		res, err := a.obj.fetch(ctx, 0, arrayDkey(x.chunk+1), iod, x.bufs)
		if err != nil {
			return daoserr.Context(err, "read array %s chunk %d", a.obj.OID, x.chunk)
		}
		for _, e := range res[0].Extents {
			ends[i] = max(ends[i], x.chunk*a.chunkSize+e.Idx+e.Nr)
		}
		return nil
	})
	end = idx
	for _, e := range ends {
		end = max(end, min(e, idx+uint64(len(buf))/a.cellSize))
	}
	return end, err
}

// Punch punches the cells of ranges (daos_array_punch): they read as zeros,
// and GetSize no longer counts them if they were the last.
func (a *ArrayObj) Punch(ctx context.Context, ranges []ArrayRange) error {
	return a.io(ctx, "punch", ranges, nil, false)
}

// chunkIO is the part of an array operation that one request carries: the
// extents within one chunk, and for a read or write the pieces of the
// caller's buffers that hold their cells, in order.
type chunkIO struct {
	chunk uint64
	recxs []Recx
	bufs  [][]byte
	bytes uint64
}

func (a *ArrayObj) io(ctx context.Context, op string, ranges []ArrayRange, sgl [][]byte, withData bool) error {
	if a.closed.Load() {
		return a.closedErr()
	}
	ios, err := a.split(ranges, sgl, withData)
	if err != nil {
		return daoserr.Context(err, "%s array %s", op, a.obj.OID)
	}
	return forEach(ctx, len(ios), func(ctx context.Context, i int) error {
		x := ios[i]
		dkey := arrayDkey(x.chunk + 1)
		iod := []IOD{{Akey: arrayAkey, Type: Array, Size: a.cellSize, Recxs: x.recxs}}
		var err error
		switch op {
		case "write":
			_, err = a.obj.update(ctx, 0, dkey, iod, x.bufs)
		case "read":
			_, err = a.obj.fetch(ctx, 0, dkey, iod, x.bufs)
		case "punch":
			iod[0].Size = 0 // an array update of size 0 punches the extents
			_, err = a.obj.update(ctx, 0, dkey, iod, nil)
		}
		return daoserr.Context(err, "%s array %s chunk %d", op, a.obj.OID, x.chunk)
	})
}

// split cuts ranges at chunk boundaries into requests, one or more a chunk,
// each within maxArrayIOBytes and maxArrayIORecxs; with data, it cuts sgl
// alongside (sub-slices: nothing is copied).
func (a *ArrayObj) split(ranges []ArrayRange, sgl [][]byte, withData bool) ([]*chunkIO, error) {
	var cells uint64
	for _, r := range ranges {
		if r.Idx+r.Len < r.Idx {
			return nil, daoserr.Newf(daoserr.Inval, "range of %d cells from cell %d runs past the last index (2^64-1)", r.Len, r.Idx)
		}
		if cells+r.Len < cells {
			return nil, daoserr.Newf(daoserr.Inval, "the ranges add up to more than 2^64 cells")
		}
		cells += r.Len
	}
	if withData {
		var have uint64
		for _, b := range sgl {
			have += uint64(len(b))
		}
		if cells > math.MaxUint64/a.cellSize || cells*a.cellSize != have {
			return nil, daoserr.Newf(daoserr.Inval, "the ranges hold %d cells of %d bytes, the buffers %d bytes", cells, a.cellSize, have).
				WithResolution("give buffers of exactly (cells × cell size) bytes in all")
		}
	}
	perIO := uint64(math.MaxUint64) // cells a request carries at most: a punch carries no data
	if withData {
		perIO = max(1, maxArrayIOBytes/a.cellSize)
	}
	var ios []*chunkIO
	open := map[uint64]*chunkIO{} // the request each chunk is filling
	var cur sglCursor
	for _, r := range ranges {
		for idx, left := r.Idx, r.Len; left > 0; {
			chunk, within := idx/a.chunkSize, idx%a.chunkSize
			n := min(left, a.chunkSize-within, perIO)
			x := open[chunk]
			if x == nil || len(x.recxs) == maxArrayIORecxs || x.bytes > 0 && x.bytes+n*a.cellSize > maxArrayIOBytes {
				x = &chunkIO{chunk: chunk}
				open[chunk] = x
				ios = append(ios, x)
			}
			if k := len(x.recxs) - 1; k >= 0 && x.recxs[k].Idx+x.recxs[k].Nr == within {
				x.recxs[k].Nr += n // contiguous with the last extent: its cells follow in the buffers too
			} else {
				x.recxs = append(x.recxs, Recx{Idx: within, Nr: n})
			}
			if withData {
				x.bufs = cur.take(sgl, n*a.cellSize, x.bufs)
				x.bytes += n * a.cellSize
			}
			idx, left = idx+n, left-n
		}
	}
	return ios, nil
}

// sglCursor walks the caller's buffers.
type sglCursor struct {
	buf int    // current buffer
	off uint64 // offset in it
}

// take appends to out the sub-slices of sgl holding its next n bytes.
func (c *sglCursor) take(sgl [][]byte, n uint64, out [][]byte) [][]byte {
	for n > 0 {
		b := sgl[c.buf][c.off:]
		if uint64(len(b)) > n {
			out = append(out, b[:n])
			c.off += n
			return out
		}
		if len(b) > 0 {
			out = append(out, b)
		}
		n -= uint64(len(b))
		c.buf, c.off = c.buf+1, 0
	}
	return out
}

// GetSize returns the array's size in cells: one past the last cell that
// holds data (daos_array_get_size). It asks for the greatest dkey with data
// and the greatest extent in it, as DAOS does: 0 for an empty array.
func (a *ArrayObj) GetSize(ctx context.Context) (uint64, error) {
	if a.closed.Load() {
		return 0, a.closedErr()
	}
	res, err := a.obj.QueryKey(ctx, GetDkey|GetRecx|GetMax, nil, arrayAkey)
	if daoserr.Is(err, daoserr.Nonexist) {
		return 0, nil
	}
	if err != nil {
		return 0, daoserr.Context(err, "size of array %s", a.obj.OID)
	}
	if len(res.Dkey) != 8 {
		return 0, daoserr.Newf(daoserr.Inval, "size of array %s: it has a dkey of %d bytes; arrays have 8-byte integer dkeys", a.obj.OID, len(res.Dkey))
	}
	d := binary.LittleEndian.Uint64(res.Dkey)
	if d == 0 {
		return 0, nil // only the metadata
	}
	return (d-1)*a.chunkSize + res.Recx.Idx + res.Recx.Nr, nil
}

// Stat returns the array's size and shape (daos_array_stat).
func (a *ArrayObj) Stat(ctx context.Context) (ArrayStat, error) {
	n, err := a.GetSize(ctx)
	return ArrayStat{Size: n, CellSize: a.cellSize, ChunkSize: a.chunkSize}, err
}

// SetSize makes the array size cells long (daos_array_set_size). Shrinking
// punches every chunk past the new end and the cells past it in the last
// chunk (chunk 0 is emptied by punching its cells, not its dkey, as DAOS
// does); then, as in DAOS, if the new last cell holds no data a zero cell is
// written there, so that GetSize returns size. Extending writes only that
// zero cell: the cells in between read as zeros.
func (a *ArrayObj) SetSize(ctx context.Context, size uint64) error {
	if a.closed.Load() {
		return a.closedErr()
	}
	err := a.setSize(ctx, size)
	return daoserr.Context(err, "set size of array %s to %d cells", a.obj.OID, size)
}

func (a *ArrayObj) setSize(ctx context.Context, size uint64) error {
	// the dkey of the new last cell and its index there; for size 0, dkey 1
	// from index 0
	last, lastIdx := uint64(1), uint64(0)
	if size > 0 {
		last, lastIdx = (size-1)/a.chunkSize+1, (size-1)%a.chunkSize
	}
	var punch [][]byte
	var truncLast, truncFirst bool
	var anchor Anchor
	for !anchor.EOF {
		keys, err := a.obj.ListDkeys(ctx, &anchor, 1024)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if len(k) != 8 {
				continue // not one of an array's dkeys
			}
			switch d := binary.LittleEndian.Uint64(k); {
			case d == 0: // the metadata
			case d == 1 && size == 0:
				truncFirst = true
			case d > last:
				punch = append(punch, k)
			case d == last && size > 0 && lastIdx+1 < a.chunkSize:
				truncLast = true
			}
		}
	}
	punchCells := func(dkey, from uint64) error {
		iod := []IOD{{Akey: arrayAkey, Type: Array, Recxs: []Recx{{Idx: from, Nr: a.chunkSize - from}}}}
		_, err := a.obj.update(ctx, 0, arrayDkey(dkey), iod, nil)
		return err
	}
	if len(punch) > 0 {
		if err := a.obj.PunchDkeys(ctx, punch); err != nil {
			return err
		}
	}
	if truncFirst {
		return punchCells(1, 0)
	}
	if size == 0 {
		return nil
	}
	if truncLast {
		if err := punchCells(last, lastIdx+1); err != nil {
			return err
		}
	}
	// the new last cell must hold data for GetSize to end there
	iod := []IOD{{Akey: arrayAkey, Type: Array, Size: a.cellSize, Recxs: []Recx{{Idx: lastIdx, Nr: 1}}}}
	cell := make([]byte, a.cellSize)
	res, err := a.obj.fetch(ctx, 0, arrayDkey(last), iod, [][]byte{cell})
	if err != nil {
		return err
	}
	if len(res) == 1 && len(res[0].Extents) > 0 {
		return nil
	}
	_, err = a.obj.update(ctx, 0, arrayDkey(last), iod, [][]byte{cell}) // a hole: cell read back as zeros
	return err
}

// Destroy punches the whole array, metadata included (daos_array_destroy);
// the handle stays open, and ArrayOpen finds no array any more.
func (a *ArrayObj) Destroy(ctx context.Context) error {
	if a.closed.Load() {
		return a.closedErr()
	}
	return daoserr.Context(a.obj.Punch(ctx), "destroy array %s", a.obj.OID)
}
