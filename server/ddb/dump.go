package ddb

import (
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"unicode"
	"unicode/utf8"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/vos"
)

type dumpCmd struct {
	Path  string    `arg:"" help:"Akey to dump: /CONT_UUID/OID/DKEY/AKEY."`
	Epoch epochFlag `default:"latest" help:"Read the value as of this epoch."`
	Out   string    `short:"o" placeholder:"FILE" help:"Write the raw bytes to FILE instead of printing them. An array is written sparse, record i at byte i*record_size."`
}

// dumpResult is what dump found. Data is filled only for printing (text or
// JSON), not with --out.
type dumpResult struct {
	Path       string       `json:"path"`
	Epoch      epochFlag    `json:"epoch"`
	ValueType  string       `json:"value_type"`
	Size       uint64       `json:"size,omitempty"`        // single value size
	RecordSize uint64       `json:"record_size,omitempty"` // array
	Data       []byte       `json:"data,omitempty"`        // single value (base64 in JSON)
	Extents    []dumpExtent `json:"extents,omitempty"`     // array
	Out        string       `json:"out,omitempty"`
	Written    uint64       `json:"bytes_written,omitempty"`
}

type dumpExtent struct {
	Idx   uint64 `json:"idx"`
	Nr    uint64 `json:"nr"`
	Epoch uint64 `json:"epoch"`
	Data  []byte `json:"data,omitempty"`
}

func (c *dumpCmd) Run(e *env) error {
	p, err := parsePath(c.Path)
	if err != nil {
		return err
	}
	if p.depth != depthAkey {
		return daoserr.Newf(daoserr.BadPath, "dump needs an akey path /CONT_UUID/OID/DKEY/AKEY, %q is a %s", c.Path, p.depth)
	}
	return e.withPool(true, func(pool *vos.Pool) error {
		_, typ, err := pool.AkeyRecords(p.cont, p.oid, p.dkey, p.akey)
		if err != nil {
			return daoserr.Context(err, "dump %s", p)
		}
		d := dumper{pool: pool, path: p, epoch: vos.Epoch(c.Epoch), outPath: c.Out}
		res := dumpResult{Path: p.String(), Epoch: c.Epoch, ValueType: typ.String(), Out: c.Out}
		switch typ {
		case vos.IODSingle:
			err = d.single(&res)
		case vos.IODArray:
			err = d.array(&res)
		default:
			err = daoserr.Newf(daoserr.Nonexist, "dump %s: the akey holds no value (only punches); 'ddb TARGET ls %s' shows its records", p, p)
		}
		if err = d.closeOut(err); err != nil {
			return err
		}
		return e.emit(&res)
	})
}

// dumper reads one akey's value.
type dumper struct {
	pool  *vos.Pool
	path  vosPath
	epoch vos.Epoch
	// outPath is --out, or "" to keep the data for printing. The file is
	// created at the first write, so a failed lookup leaves nothing behind.
	outPath string
	out     *os.File
}

func (d *dumper) fetch(iod vos.IOD, sgl vos.SGL) (vos.FetchResult, error) {
	var sgls []vos.SGL
	if sgl != nil {
		sgls = []vos.SGL{sgl}
	}
	res, err := d.pool.Fetch(d.path.cont, d.path.oid, d.epoch, 0, d.path.dkey, []vos.IOD{iod}, sgls)
	if err != nil {
		return vos.FetchResult{}, daoserr.Context(err, "dump %s", d.path)
	}
	return res[0], nil
}

func (d *dumper) single(res *dumpResult) error {
	// A fetch with size 0 asks only for the value's size.
	fr, err := d.fetch(vos.IOD{Akey: d.path.akey, Type: vos.IODSingle}, nil)
	if err != nil {
		return err
	}
	if fr.Size == 0 {
		return d.noValue()
	}
	buf := make([]byte, fr.Size)
	if _, err := d.fetch(vos.IOD{Akey: d.path.akey, Type: vos.IODSingle, Size: fr.Size}, vos.SGL{buf}); err != nil {
		return err
	}
	res.Size = fr.Size
	if d.outPath != "" {
		res.Written = fr.Size
		return d.write(buf, 0)
	}
	res.Data = buf
	return nil
}

func (d *dumper) noValue() error {
	return daoserr.Newf(daoserr.Nonexist, "dump %s: no value visible at epoch %s (punched or not yet written); 'ddb TARGET ls %s' shows its records, --epoch reads an older version",
		d.path, epochFlag(d.epoch), d.path)
}

// dumpChunk bounds the memory one fetch of an array extent uses.
const dumpChunk = 1 << 20

func (d *dumper) array(res *dumpResult) error {
	p := d.path
	ents, err := collect(func(a *vos.Anchor) ([]vos.RecxEntry, error) {
		ents, rsize, err := d.pool.ListRecx(p.cont, p.oid, d.epoch, p.dkey, p.akey, a, listBatch)
		res.RecordSize = max(res.RecordSize, rsize)
		return ents, err
	})
	if err != nil {
		return daoserr.Context(err, "dump %s", p)
	}
	if len(ents) == 0 {
		return d.noValue()
	}
	rs := res.RecordSize
	for _, ent := range ents {
		x := dumpExtent{Idx: ent.Recx.Idx, Nr: ent.Recx.Nr, Epoch: ent.Epoch}
		if d.outPath != "" && ent.Recx.Idx+ent.Recx.Nr > math.MaxInt64/rs {
			return daoserr.Newf(daoserr.Overflow, "dump %s: extent %v lies beyond the largest file offset; dump without --out", p, ent.Recx)
		}
		err := d.readExtent(ent.Recx, rs, func(off uint64, b []byte) error {
			if d.outPath != "" {
				res.Written += uint64(len(b))
				return d.write(b, off)
			}
			x.Data = append(x.Data, b...)
			return nil
		})
		if err != nil {
			return err
		}
		res.Extents = append(res.Extents, x)
	}
	return nil
}

// readExtent fetches a visible extent in pieces of about dumpChunk bytes,
// handing each to fn with its byte offset in the array (index * record size).
func (d *dumper) readExtent(rx vos.Recx, rsize uint64, fn func(off uint64, b []byte) error) error {
	per := max(1, dumpChunk/rsize)
	buf := make([]byte, min(per, rx.Nr)*rsize)
	for idx := rx.Idx; idx < rx.Idx+rx.Nr; idx += per {
		nr := min(per, rx.Idx+rx.Nr-idx)
		b := buf[:nr*rsize]
		iod := vos.IOD{Akey: d.path.akey, Type: vos.IODArray, Size: rsize, Recxs: []vos.Recx{{Idx: idx, Nr: nr}}}
		if _, err := d.fetch(iod, vos.SGL{b}); err != nil {
			return err
		}
		if err := fn(idx*rsize, b); err != nil {
			return err
		}
	}
	return nil
}

func (d *dumper) write(b []byte, off uint64) error {
	if d.out == nil {
		f, err := os.Create(d.outPath)
		if err != nil {
			return daoserr.Wrap(daoserr.IO, err, "dump %s: create output file", d.path)
		}
		d.out = f
	}
	if _, err := d.out.WriteAt(b, int64(off)); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "dump %s: write %s", d.path, d.outPath)
	}
	return nil
}

// closeOut closes the output file, if any, and returns the dump's outcome. A
// failed dump removes its partial file: half a value must not pass for the value.
func (d *dumper) closeOut(err error) error {
	if d.out == nil {
		return err
	}
	if cerr := d.out.Close(); cerr != nil && err == nil {
		err = daoserr.Wrap(daoserr.IO, cerr, "dump %s: write %s", d.path, d.outPath)
	}
	if err != nil {
		os.Remove(d.outPath)
	}
	return err
}

// ---- text output ----

func (r *dumpResult) text(w io.Writer) error {
	if r.Out != "" {
		_, err := fmt.Fprintf(w, "%s: %s value, wrote %d bytes to %s\n", r.Path, r.ValueType, r.Written, r.Out)
		return err
	}
	if r.ValueType == vos.IODSingle.String() {
		fmt.Fprintf(w, "%s: single value, %d bytes\n", r.Path, r.Size)
		return writeData(w, r.Data)
	}
	fmt.Fprintf(w, "%s: array of %d-byte records, %d visible extent(s)\n", r.Path, r.RecordSize, len(r.Extents))
	for _, x := range r.Extents {
		fmt.Fprintf(w, "extent %v epoch %d, %d bytes:\n", vos.Recx{Idx: x.Idx, Nr: x.Nr}, x.Epoch, len(x.Data))
		if err := writeData(w, x.Data); err != nil {
			return err
		}
	}
	return nil
}

// writeData prints text as text and anything else as a hexdump (offset, hex,
// ASCII), like hexdump -C.
func writeData(w io.Writer, b []byte) error {
	if isText(b) {
		if _, err := w.Write(b); err != nil {
			return err
		}
		if b[len(b)-1] != '\n' {
			_, err := io.WriteString(w, "\n")
			return err
		}
		return nil
	}
	dw := hex.Dumper(w)
	if _, err := dw.Write(b); err != nil {
		return err
	}
	return dw.Close()
}

// isText reports whether b is non-empty UTF-8 made of printable characters and
// ordinary whitespace, i.e. safe and useful to print as is.
func isText(b []byte) bool {
	if len(b) == 0 || !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != '\n' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}
