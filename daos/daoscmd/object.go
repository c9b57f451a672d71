package daoscmd

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
)

// daos object query|list-keys|dump: an object's layout and contents, as
// DAOS's tool shows them, for a user looking at what a program wrote.

type objArgs struct {
	Pool string `arg:"" help:"Pool label or UUID."`
	Cont string `arg:"" help:"Container label or UUID."`
	OID  string `arg:"" name:"oid" help:"Object ID as DAOS prints it: <hi>.<lo> in decimal."`
}

type objListKeysCmd struct {
	objArgs
	Dkey string `placeholder:"DKEY" help:"List this dkey's akeys instead of the object's dkeys (text, 0x<hex>, or a number for integer keys)."`
}

type objDumpCmd struct {
	objArgs
	MaxBytes int `name:"max-bytes" default:"256" help:"Show at most this many bytes of each value or extent (0: all)."`
}

// listPage is how many keys one listing call asks for.
const listPage = 256

// parseOID reads an OID argument and checks what its top bits say.
func parseOID(s string) (placement.OID, error) {
	oid, err := placement.ParseOID(s)
	if err != nil {
		return oid, err
	}
	if !oid.Type().Valid() {
		return oid, daoserr.Newf(daoserr.Inval, "bad object id %s: object type %d is not one of DAOS's", oid, uint8(oid.Type())).
			WithResolution("copy the OID as a program or 'daos cont list-objects' printed it")
	}
	return oid, nil
}

// openCont parses a's OID, connects to its pool and opens its container
// read-only.
func (t *tool) openCont(ctx context.Context, a objArgs) (*daos.Cont, placement.OID, error) {
	oid, err := parseOID(a.OID)
	if err != nil {
		return nil, oid, err
	}
	p, err := t.connect(ctx, a.Pool, daos.RO)
	if err != nil {
		return nil, oid, err
	}
	h, err := p.ContOpen(ctx, a.Cont, daos.RO)
	return h, oid, err // the error names the pool and the container
}

// openObj opens a's object in its container.
func (t *tool) openObj(ctx context.Context, a objArgs) (*daos.Obj, error) {
	h, oid, err := t.openCont(ctx, a)
	if err != nil {
		return nil, err
	}
	o, err := h.Obj(oid)
	if err != nil {
		return nil, daoserr.Context(err, "pool %s container %s", a.Pool, a.Cont)
	}
	return o, nil
}

type shardLoc struct {
	Rank     uint32 `json:"rank"`
	Target   uint32 `json:"target"`
	Remapped bool   `json:"remapped,omitempty"`
}

type objGroup struct {
	Replicas []shardLoc `json:"replicas"`
}

// objLayout is `daos object query`'s answer, with DAOS's JSON names (each
// redundancy group is a "shard" there).
type objLayout struct {
	OID       string     `json:"oid"`
	Version   uint32     `json:"version"`
	Class     string     `json:"class"`
	Type      string     `json:"type"`
	Groups    int        `json:"grp_nr"`
	GroupSize int        `json:"grp_size"`
	Shards    []objGroup `json:"shards"`
}

func (t *tool) objQuery(ctx context.Context, a objArgs) error {
	h, oid, err := t.openCont(ctx, a)
	if err != nil {
		return err
	}
	l, err := h.Layout(oid)
	if err != nil {
		return daoserr.Context(err, "pool %s container %s", a.Pool, a.Cont)
	}
	out := objLayout{OID: oid.String(), Version: l.Version, Class: oid.Class().String(), Type: oid.Type().String(),
		Groups: l.Groups, GroupSize: l.GroupSize}
	for g := range l.Groups {
		var grp objGroup
		for _, s := range l.Group(g) {
			grp.Replicas = append(grp.Replicas, shardLoc{Rank: s.Rank, Target: s.Target, Remapped: s.Remapped})
		}
		out.Shards = append(out.Shards, grp)
	}
	return t.show(out, func(w io.Writer) {
		fmt.Fprintf(w, "oid: %s ver %d grp_nr: %d\n", out.OID, out.Version, out.Groups)
		fmt.Fprintf(w, "class: %s, type: %s, %d redundancy groups of %d shards\n", out.Class, out.Type, out.Groups, out.GroupSize)
		for g, grp := range out.Shards {
			fmt.Fprintf(w, "grp: %d\n", g)
			for r, s := range grp.Replicas {
				note := ""
				if s.Remapped {
					note = " (remapped: its own target is down)"
				}
				fmt.Fprintf(w, "replica %d rank %d target %d%s\n", r, s.Rank, s.Target, note)
			}
		}
	})
}

// akeyUint64 reports whether the object type makes akeys 64-bit integers.
func akeyUint64(t placement.OType) bool {
	return t == placement.OTAkeyUint64 || t == placement.OTMultiUint64
}

// keyString shows a key the way it was most likely written: the number for
// integer keys, the text when it is printable, else 0x and hex.
func keyString(k []byte, isUint64 bool) string {
	if isUint64 && len(k) == 8 {
		return strconv.FormatUint(binary.LittleEndian.Uint64(k), 10)
	}
	if printable(k) {
		return string(k)
	}
	return "0x" + hex.EncodeToString(k)
}

// parseKey is keyString's inverse for a key given on the command line.
func parseKey(s string, isUint64 bool) ([]byte, error) {
	if isUint64 {
		n, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			return nil, daoserr.Newf(daoserr.Inval, "key %q: this object's keys are 64-bit integers", s).WithResolution("give a number, e.g. 0 or 42")
		}
		return binary.LittleEndian.AppendUint64(nil, n), nil
	}
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		if b, err := hex.DecodeString(h); err == nil && len(b) > 0 {
			return b, nil
		}
	}
	if s == "" {
		return nil, daoserr.New(daoserr.Inval, "empty key").WithResolution("give the key as text, or as 0x<hex> for binary keys")
	}
	return []byte(s), nil
}

func printable(b []byte) bool {
	if len(b) == 0 || !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != '\t' {
			return false
		}
	}
	return true
}

// listAll lists every key with list, a page at a time.
func listAll(list func(a *daos.Anchor) ([][]byte, error)) ([][]byte, error) {
	var out [][]byte
	var a daos.Anchor
	for !a.EOF {
		keys, err := list(&a)
		if err != nil {
			return out, err
		}
		out = append(out, keys...)
	}
	return out, nil
}

func (t *tool) objListKeys(ctx context.Context, c objListKeysCmd) error {
	o, err := t.openObj(ctx, c.objArgs)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("object %s in pool %s container %s", o.OID, c.Pool, c.Cont)
	var keys [][]byte
	isUint64 := o.OID.Type().DkeyUint64()
	if c.Dkey == "" {
		keys, err = listAll(func(a *daos.Anchor) ([][]byte, error) { return o.ListDkeys(ctx, a, listPage) })
		if err == nil && len(keys) == 0 {
			err = daoserr.Newf(daoserr.Nonexist, "%s has no dkeys (never written, or punched)", where).
				WithResolution("check the OID: 'daos cont list-objects %s %s' lists the container's objects", c.Pool, c.Cont)
		}
	} else {
		dkey, perr := parseKey(c.Dkey, isUint64)
		if perr != nil {
			return daoserr.Context(perr, "%s: --dkey", where)
		}
		isUint64 = akeyUint64(o.OID.Type())
		keys, err = listAll(func(a *daos.Anchor) ([][]byte, error) { return o.ListAkeys(ctx, dkey, a, listPage) })
		if err == nil && len(keys) == 0 {
			err = daoserr.Newf(daoserr.Nonexist, "%s has no dkey %q", where, c.Dkey).
				WithResolution("'daos object list-keys %s %s %s' lists its dkeys", c.Pool, c.Cont, o.OID)
		}
	}
	if err != nil {
		return daoserr.Context(err, "list keys")
	}
	shown := make([]string, len(keys))
	for i, k := range keys {
		shown[i] = keyString(k, isUint64)
	}
	resp := map[string]any{"oid": o.OID.String()}
	if c.Dkey == "" {
		resp["dkeys"] = shown
	} else {
		resp["dkey"], resp["akeys"] = c.Dkey, shown
	}
	return t.show(resp, func(w io.Writer) {
		for _, k := range shown {
			fmt.Fprintln(w, k)
		}
	})
}

// sortKeys orders keys for people: integer keys by value, others bytewise.
func sortKeys(keys [][]byte, isUint64 bool) {
	slices.SortFunc(keys, func(a, b []byte) int {
		if isUint64 && len(a) == 8 && len(b) == 8 {
			return cmp.Compare(binary.LittleEndian.Uint64(a), binary.LittleEndian.Uint64(b))
		}
		return bytes.Compare(a, b)
	})
}

// dumpData is a value or an extent's records as shown: printable text, or
// hex; at most --max-bytes of it.
type dumpData struct {
	Value     string `json:"value"`
	Encoding  string `json:"encoding"` // "text" or "hex"
	Truncated bool   `json:"truncated,omitempty"`
}

func showData(b []byte, total uint64, maxBytes int) dumpData {
	d := dumpData{Truncated: uint64(len(b)) < total}
	if maxBytes > 0 && len(b) > maxBytes {
		b, d.Truncated = b[:maxBytes], true
	}
	if printable(b) {
		d.Value, d.Encoding = string(b), "text"
	} else {
		d.Value, d.Encoding = hex.EncodeToString(b), "hex"
	}
	return d
}

func (d dumpData) String() string {
	s := strconv.Quote(d.Value)
	if d.Encoding == "hex" {
		s = "0x" + d.Value
	}
	if d.Truncated {
		s += "..."
	}
	return s
}

type dumpExtent struct {
	Idx   uint64 `json:"idx"`
	Nr    uint64 `json:"nr"`
	Epoch uint64 `json:"epoch"`
	dumpData
}

// dumpAkey is one akey's value in `daos object dump`: a single value of
// Size bytes, or an array of Size-byte records in Extents.
type dumpAkey struct {
	Dkey    string       `json:"dkey"`
	Akey    string       `json:"akey"`
	Type    string       `json:"type"` // "single" or "array"
	Size    uint64       `json:"size"`
	Data    *dumpData    `json:"data,omitempty"`
	Extents []dumpExtent `json:"extents,omitempty"`
}

// dumpFetchMax bounds the bytes one fetch of an extent reads.
const dumpFetchMax = 1 << 20

func (t *tool) objDump(ctx context.Context, c objDumpCmd) error {
	o, err := t.openObj(ctx, c.objArgs)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("object %s in pool %s container %s", o.OID, c.Pool, c.Cont)
	ot := o.OID.Type()
	dkeys, err := listAll(func(a *daos.Anchor) ([][]byte, error) { return o.ListDkeys(ctx, a, listPage) })
	if err != nil {
		return daoserr.Context(err, "dump %s", where)
	}
	if len(dkeys) == 0 {
		return daoserr.Newf(daoserr.Nonexist, "%s has no dkeys (never written, or punched)", where).
			WithResolution("check the OID: 'daos cont list-objects %s %s' lists the container's objects", c.Pool, c.Cont)
	}
	sortKeys(dkeys, ot.DkeyUint64())
	var out []dumpAkey
	for _, dkey := range dkeys {
		akeys, err := listAll(func(a *daos.Anchor) ([][]byte, error) { return o.ListAkeys(ctx, dkey, a, listPage) })
		if err != nil {
			return daoserr.Context(err, "dump %s", where)
		}
		sortKeys(akeys, akeyUint64(ot))
		for _, akey := range akeys {
			v, err := dumpOne(ctx, o, dkey, akey, c.MaxBytes)
			if err != nil {
				return daoserr.Context(err, "dump %s dkey %s akey %s", where, keyString(dkey, ot.DkeyUint64()), keyString(akey, akeyUint64(ot)))
			}
			v.Dkey, v.Akey = keyString(dkey, ot.DkeyUint64()), keyString(akey, akeyUint64(ot))
			out = append(out, v)
		}
	}
	return t.show(map[string]any{"oid": o.OID.String(), "class": o.OID.Class().String(), "type": ot.String(), "values": out}, func(w io.Writer) {
		fmt.Fprintf(w, "object %s (%s, %s) in pool %s container %s\n", o.OID, o.OID.Class(), ot, c.Pool, c.Cont)
		last := ""
		for i, v := range out {
			if i == 0 || v.Dkey != last {
				fmt.Fprintf(w, "dkey %s\n", v.Dkey)
				last = v.Dkey
			}
			switch {
			case v.Type == "single" && v.Data == nil:
				fmt.Fprintf(w, "  akey %s: single value, none visible\n", v.Akey)
			case v.Type == "single":
				fmt.Fprintf(w, "  akey %s: single value, %d bytes: %s\n", v.Akey, v.Size, v.Data)
			default:
				fmt.Fprintf(w, "  akey %s: array of %d-byte records, %d extents\n", v.Akey, v.Size, len(v.Extents))
				for _, x := range v.Extents {
					fmt.Fprintf(w, "    [%d, %d): %s\n", x.Idx, x.Idx+x.Nr, x.dumpData)
				}
			}
		}
	})
}

// dumpOne reads one akey: its extents if it holds an array (ListRecx says
// so with a record size), else its single value.
func dumpOne(ctx context.Context, o *daos.Obj, dkey, akey []byte, maxBytes int) (dumpAkey, error) {
	var recxs []daos.RecxEpoch
	var rsize uint64
	var a daos.Anchor
	for !a.EOF {
		page, rs, err := o.ListRecx(ctx, dkey, akey, &a, listPage)
		if err != nil {
			return dumpAkey{}, err
		}
		recxs, rsize = append(recxs, page...), max(rsize, rs)
	}
	if rsize == 0 {
		iod := []daos.IOD{{Akey: akey, Type: daos.Single}}
		res, err := o.Fetch(ctx, dkey, iod, [][]byte{nil}) // size query
		if daoserr.Is(err, daoserr.Inval) {
			// an array whose every extent is punched: no record size left to report
			return dumpAkey{Type: "array"}, nil
		}
		if err != nil || res[0].Size == 0 {
			return dumpAkey{Type: "single"}, err
		}
		iod[0].Size = res[0].Size
		buf := make([]byte, res[0].Size)
		if _, err := o.Fetch(ctx, dkey, iod, [][]byte{buf}); err != nil {
			return dumpAkey{}, err
		}
		d := showData(buf, res[0].Size, maxBytes)
		return dumpAkey{Type: "single", Size: res[0].Size, Data: &d}, nil
	}
	v := dumpAkey{Type: "array", Size: rsize}
	for _, x := range recxs {
		want := x.Nr // the records to read: all, or enough for maxBytes
		if maxBytes > 0 {
			want = min(x.Nr, (uint64(maxBytes)+rsize-1)/rsize)
		}
		var got []byte
		for done := uint64(0); done < want; {
			n := min(want-done, max(1, dumpFetchMax/rsize))
			buf := make([]byte, n*rsize)
			iod := []daos.IOD{{Akey: akey, Type: daos.Array, Size: rsize, Recxs: []daos.Recx{{Idx: x.Idx + done, Nr: n}}}}
			if _, err := o.Fetch(ctx, dkey, iod, [][]byte{buf}); err != nil {
				return dumpAkey{}, err
			}
			got, done = append(got, buf...), done+n
		}
		v.Extents = append(v.Extents, dumpExtent{Idx: x.Idx, Nr: x.Nr, Epoch: x.Epoch, dumpData: showData(got, x.Nr*rsize, maxBytes)})
	}
	return v, nil
}

func (t *tool) contListObjects(ctx context.Context, pool, cont string) error {
	p, err := t.connect(ctx, pool, daos.RO)
	if err != nil {
		return err
	}
	h, err := p.ContOpen(ctx, cont, daos.RO)
	if err != nil {
		return err
	}
	var oids []string
	var a daos.Anchor
	for !a.EOF {
		page, err := h.ListObjects(ctx, &a, 1024)
		if err != nil {
			return daoserr.Context(err, "pool %s", pool)
		}
		for _, oid := range page {
			oids = append(oids, oid.String())
		}
	}
	return t.show(oids, func(w io.Writer) {
		if len(oids) == 0 {
			fmt.Fprintf(w, "Container %s has no objects.\n", cont)
		}
		for _, oid := range oids {
			fmt.Fprintln(w, oid)
		}
	})
}
