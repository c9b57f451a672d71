package ddb

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/vos"
)

type lsCmd struct {
	Path      string    `arg:"" optional:"" default:"/" help:"Path to list (default /)."`
	Recursive bool      `short:"r" help:"List the whole subtree, down to each akey's records; prints full paths."`
	Epoch     epochFlag `default:"latest" help:"List what exists as of this epoch; records newer than it are left out."`
}

// lsEntry is one node of the tree below the listed path.
type lsEntry struct {
	Kind      string      `json:"kind"` // container, object, dkey, akey
	Name      string      `json:"name"` // as typed in a path
	Path      string      `json:"path"`
	ValueType string      `json:"value_type,omitempty"` // akeys: single or array
	Records   []recordOut `json:"records,omitempty"`    // akeys, with -r
	Children  []lsEntry   `json:"children,omitempty"`   // with -r
}

// recordOut is one stored record of an akey (vos.RecordInfo).
type recordOut struct {
	Kind   string   `json:"kind"` // single, extent, hole, punch
	Epoch  uint64   `json:"epoch"`
	Seq    uint64   `json:"seq"`
	Size   uint64   `json:"size"` // value size, or record size of an extent
	Recx   *recxOut `json:"recx,omitempty"`
	Tier   string   `json:"tier,omitempty"`   // scm or nvme
	Offset *uint64  `json:"offset,omitempty"` // data file offset (nvme)
}

type recxOut struct {
	Idx uint64 `json:"idx"`
	Nr  uint64 `json:"nr"`
}

type lsResult struct {
	Path      string      `json:"path"`
	Kind      string      `json:"kind"`
	Epoch     epochFlag   `json:"epoch"`
	Recursive bool        `json:"recursive"`
	ValueType string      `json:"value_type,omitempty"` // listing an akey
	Entries   []lsEntry   `json:"entries,omitempty"`
	Records   []recordOut `json:"records,omitempty"` // listing an akey
}

func (c *lsCmd) Run(e *env) error {
	p, err := parsePath(c.Path)
	if err != nil {
		return err
	}
	return e.withPool(true, func(pool *vos.Pool) error {
		l := lister{pool: pool, epoch: vos.Epoch(c.Epoch), recursive: c.Recursive}
		res := lsResult{Path: p.String(), Kind: p.depth.String(), Epoch: c.Epoch, Recursive: c.Recursive}
		if p.depth == depthAkey {
			res.Records, res.ValueType, err = l.records(p)
		} else {
			res.Entries, err = l.children(p)
		}
		if err != nil {
			return err
		}
		return e.emit(&res)
	})
}

// lister walks the tree at one epoch.
type lister struct {
	pool      *vos.Pool
	epoch     vos.Epoch
	recursive bool
}

// children lists the nodes below p (p is above akey depth), descending into each
// when recursive.
func (l *lister) children(p vosPath) ([]lsEntry, error) {
	paths, err := l.childPaths(p)
	if err != nil {
		return nil, err
	}
	out := make([]lsEntry, 0, len(paths))
	for _, cp := range paths {
		ent := lsEntry{Kind: cp.depth.String(), Name: cp.name(), Path: cp.String()}
		switch {
		case cp.depth == depthAkey:
			// The value type is cheap to learn and tells the user whether to
			// expect one value or extents; records only when walking down.
			recs, vt, err := l.records(cp)
			if err != nil {
				return nil, err
			}
			ent.ValueType = vt
			if l.recursive {
				ent.Records = recs
			}
		case l.recursive:
			if ent.Children, err = l.children(cp); err != nil {
				return nil, err
			}
		}
		out = append(out, ent)
	}
	return out, nil
}

// childPaths lists the paths of p's children that exist at the epoch. An empty
// listing of an object or dkey that does not exist is reported as an error, so
// a mistyped path is not mistaken for an empty one.
func (l *lister) childPaths(p vosPath) ([]vosPath, error) {
	var out []vosPath
	switch p.depth {
	case depthTarget:
		for _, u := range l.pool.ListContainers() {
			out = append(out, p.withCont(u))
		}
	case depthCont:
		oids, err := l.objects(p.cont)
		if err != nil {
			return nil, err
		}
		for _, oid := range oids {
			out = append(out, p.withObj(oid))
		}
	case depthObj:
		keys, err := l.dkeys(p)
		if err != nil {
			return nil, err
		}
		if len(keys) == 0 {
			if err := l.checkObj(p); err != nil {
				return nil, err
			}
		}
		for _, k := range keys {
			out = append(out, p.withDkey(k))
		}
	case depthDkey:
		keys, err := collect(func(a *vos.Anchor) ([][]byte, error) {
			return l.pool.ListAkeys(p.cont, p.oid, l.epoch, p.dkey, a, listBatch)
		})
		if err != nil {
			return nil, daoserr.Context(err, "list %s", p)
		}
		if len(keys) == 0 {
			if err := l.checkDkey(p); err != nil {
				return nil, err
			}
		}
		for _, k := range keys {
			out = append(out, p.withAkey(k))
		}
	}
	return out, nil
}

func (l *lister) objects(cont vos.UUID) ([]vos.OID, error) {
	oids, err := collect(func(a *vos.Anchor) ([]vos.OID, error) {
		return l.pool.ListObjects(cont, l.epoch, a, listBatch)
	})
	return oids, daoserr.Context(err, "list /%s", cont)
}

func (l *lister) dkeys(p vosPath) ([][]byte, error) {
	keys, err := collect(func(a *vos.Anchor) ([][]byte, error) {
		return l.pool.ListDkeys(p.cont, p.oid, l.epoch, a, listBatch)
	})
	return keys, daoserr.Context(err, "list %s", p.withObj(p.oid))
}

// checkObj fails unless the object of p exists at the epoch.
func (l *lister) checkObj(p vosPath) error {
	oids, err := l.objects(p.cont)
	if err != nil {
		return err
	}
	if !slices.Contains(oids, p.oid) {
		return notFound(p.withObj(p.oid), l.epoch)
	}
	return nil
}

// checkDkey fails unless the dkey of p exists at the epoch.
func (l *lister) checkDkey(p vosPath) error {
	keys, err := l.dkeys(p)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, p.dkey) }) {
		if err := l.checkObj(p); err != nil {
			return err
		}
		return notFound(p.withDkey(p.dkey), l.epoch)
	}
	return nil
}

// checkExists fails unless the node p names exists at the epoch.
func (l *lister) checkExists(p vosPath) error {
	switch p.depth {
	case depthCont:
		if !slices.Contains(l.pool.ListContainers(), p.cont) {
			return daoserr.Newf(daoserr.Nonexist, "no container %s on this target; 'ddb TARGET ls /' lists them", p.cont)
		}
	case depthObj:
		return l.checkObj(p)
	case depthDkey:
		return l.checkDkey(p)
	case depthAkey:
		_, _, err := l.records(p)
		return err
	}
	return nil
}

func notFound(p vosPath, e vos.Epoch) error {
	return daoserr.Newf(daoserr.Nonexist, "%s %s does not exist at epoch %s; 'ddb TARGET ls' the parent to see what does",
		p.depth, p, epochFlag(e))
}

// records lists an akey's stored records at or below the epoch, and its value type.
func (l *lister) records(p vosPath) ([]recordOut, string, error) {
	recs, typ, err := l.pool.AkeyRecords(p.cont, p.oid, p.dkey, p.akey)
	if err != nil {
		return nil, "", daoserr.Context(err, "list %s", p)
	}
	out := make([]recordOut, 0, len(recs))
	for _, r := range recs {
		if r.Epoch > l.epoch {
			continue
		}
		out = append(out, toRecordOut(r))
	}
	return out, typ.String(), nil
}

func toRecordOut(r vos.RecordInfo) recordOut {
	o := recordOut{Kind: r.Kind, Epoch: r.Epoch, Seq: r.Seq, Size: r.Size, Tier: r.Tier}
	if r.Kind == "extent" || (r.Kind == "hole" && r.Recx.Nr > 0) {
		o.Recx = &recxOut{Idx: r.Recx.Idx, Nr: r.Recx.Nr}
	}
	if r.Tier == "nvme" {
		off := r.Off
		o.Offset = &off
	}
	return o
}

// listBatch is how many entries each List call returns; any size works, this
// one keeps each call's lock hold short.
const listBatch = 1024

// collect drains a resumable vos listing.
func collect[T any](list func(*vos.Anchor) ([]T, error)) ([]T, error) {
	var a vos.Anchor
	var out []T
	for !a.EOF {
		batch, err := list(&a)
		if err != nil {
			return nil, err
		}
		out = append(out, batch...)
		if len(batch) == 0 {
			break // nothing more, whatever EOF says: never spin
		}
	}
	return out, nil
}

// ---- text output ----

func (r *lsResult) text(w io.Writer) error {
	switch {
	case r.Kind == depthAkey.String():
		return writeRecords(w, r.Records, "")
	case r.Recursive:
		return writeTree(w, r.Entries)
	}
	for _, ent := range r.Entries {
		if _, err := fmt.Fprintln(w, ent.Name); err != nil {
			return err
		}
	}
	return nil
}

// writeTree prints full paths, one per node, like find: each line can be pasted
// into dump or rm. Records follow their akey, indented.
func writeTree(w io.Writer, ents []lsEntry) error {
	for _, ent := range ents {
		line := ent.Path
		if ent.ValueType != "" {
			line += "  (" + ent.ValueType + ")"
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
		if len(ent.Records) > 0 {
			if err := writeRecords(w, ent.Records, "    "); err != nil {
				return err
			}
		}
		if err := writeTree(w, ent.Children); err != nil {
			return err
		}
	}
	return nil
}

func writeRecords(w io.Writer, recs []recordOut, indent string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, indent+"KIND\tEPOCH\tSEQ\tSIZE\tRECX\tTIER\tOFFSET")
	for _, r := range recs {
		recx, off := "-", "-"
		if r.Recx != nil {
			recx = vos.Recx{Idx: r.Recx.Idx, Nr: r.Recx.Nr}.String()
		}
		if r.Offset != nil {
			off = fmt.Sprint(*r.Offset)
		}
		tier := r.Tier
		if tier == "" {
			tier = "-"
		}
		fmt.Fprintf(tw, "%s%s\t%d\t%d\t%d\t%s\t%s\t%s\n", indent, r.Kind, r.Epoch, r.Seq, r.Size, recx, tier, off)
	}
	return tw.Flush()
}
