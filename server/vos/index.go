package vos

import (
	"encoding/binary"
	"slices"
	"sort"

	"github.com/tidwall/btree"

	"github.com/godaos/godaos/internal/checksum"
)

// The in-memory index. One tree per level: containers (map) → objects (B-tree by
// OID) → dkeys (B-tree by key) → akeys (sorted slice: akeys per dkey are few) →
// versions. Single values keep their versions sorted by (epoch, seq); arrays keep
// extents sorted by start index, each carrying its own (epoch, seq).
//
// Nothing is overwritten: an update adds a version, a punch adds a punch record.
// What a reader sees is computed from these at its epoch (see visibility below).
//
// Locking: the committer goroutine is the only mutator and holds Pool.mu for
// writing while it applies; readers hold it for reading.

// order totally orders records: by epoch, then by seq (the position of the op in
// the log) so that later ops at the same epoch win.
type order struct{ epoch, seq uint64 }

func (a order) less(b order) bool {
	return a.epoch < b.epoch || (a.epoch == b.epoch && a.seq < b.seq)
}

// visibleTo reports whether a reader at epoch e limited to durable seq lim sees it.
func (a order) visibleTo(e Epoch, lim uint64) bool { return a.epoch <= e && a.seq <= lim }

const (
	recHole uint8 = 1 << 0 // punched value or extent: reads as nothing / zeros
	recNVMe uint8 = 1 << 1 // data lives in the data file at off, buf holds only checksums
	// recRedo marks, in a log record only, an NVMe-tier value whose data is also in
	// the record, so that its commit needs no flush of the data file (see wal.go).
	recRedo uint8 = 1 << 2
)

// svRec is one version of a single value.
type svRec struct {
	order
	off   uint64 // data file offset when recNVMe
	size  uint32 // value size in bytes
	flags uint8
	buf   []byte // inline data (if not NVMe) followed by the checksum
}

// exRec is one array extent version.
type exRec struct {
	order
	idx, nr uint64
	off     uint64 // data file offset when recNVMe
	flags   uint8
	buf     []byte // inline data (if not NVMe) followed by per-chunk checksums
}

func (x *exRec) recx() Recx  { return Recx{x.idx, x.nr} }
func (x *exRec) end() uint64 { return x.idx + x.nr }

type akeyNode struct {
	key     string
	punches []order
	kind    IODType
	rsize   uint64 // array record size; fixed while the akey holds extents
	svs     []svRec
	exts    []exRec // sorted by idx, then order
	maxLen  uint64  // longest extent, bounds the overlap search
}

type dkeyNode struct {
	key     string
	punches []order
	akeys   []*akeyNode // sorted by key order
}

type objNode struct {
	oid     OID
	punches []order
	dkeys   *btree.BTreeG[*dkeyNode]
	dkeyInt bool // the object type says keys are 8-byte integers
	akeyInt bool
}

type contNode struct {
	uuid  UUID
	csum  checksum.Type
	chunk uint32 // checksum chunk size in bytes
	aggHi Epoch  // highest epoch aggregated; writes at or below are refused
	objs  *btree.BTreeG[*objNode]
}

func newCont(u UUID, t checksum.Type, chunk uint32) *contNode {
	return &contNode{uuid: u, csum: t, chunk: chunk,
		objs: btree.NewBTreeGOptions(func(a, b *objNode) bool {
			return a.oid.Hi < b.oid.Hi || (a.oid.Hi == b.oid.Hi && a.oid.Lo < b.oid.Lo)
		}, btree.Options{NoLocks: true})}
}

func newObj(oid OID) *objNode {
	ob := &objNode{oid: oid, dkeyInt: oid.Type().DkeyUint64(), akeyInt: oid.Type().AkeyUint64()}
	dint := ob.dkeyInt
	ob.dkeys = btree.NewBTreeGOptions(func(a, b *dkeyNode) bool {
		return cmpKey(a.key, b.key, dint) < 0
	}, btree.Options{NoLocks: true})
	return ob
}

// cmpKey orders keys. Integer keys (8 bytes little-endian, as DAOS stores uint64
// keys) order numerically, before any key of another length in the same object;
// everything else orders lexically.
func cmpKey(a, b string, integer bool) int {
	if integer {
		ai, bi := len(a) == 8, len(b) == 8
		switch {
		case ai && bi:
			return cmpU64(binary.LittleEndian.Uint64([]byte(a)), binary.LittleEndian.Uint64([]byte(b)))
		case ai:
			return -1
		case bi:
			return 1
		}
	}
	return cmpStr(a, b)
}

func (c *contNode) lookupObj(oid OID) *objNode {
	o, _ := c.objs.Get(&objNode{oid: oid})
	return o
}

func (o *objNode) lookupDkey(k string) *dkeyNode {
	d, _ := o.dkeys.Get(&dkeyNode{key: k})
	return d
}

func (d *dkeyNode) findAkey(k string, integer bool) (int, bool) {
	return sort.Find(len(d.akeys), func(i int) int { return cmpKey(k, d.akeys[i].key, integer) })
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// maxPunch returns the newest punch in ps visible to a reader at (e, lim), or
// the zero order if none.
func maxPunch(ps []order, e Epoch, lim uint64, cur order) order {
	for i := len(ps) - 1; i >= 0; i-- {
		p := ps[i]
		if p.visibleTo(e, lim) {
			if cur.less(p) {
				return p
			}
			return cur
		}
	}
	return cur
}

func insertOrder(ps []order, p order) []order {
	i := sort.Search(len(ps), func(i int) bool { return p.less(ps[i]) })
	return slices.Insert(ps, i, p)
}

// ---- single values ----

// svAt returns the version of a single value a reader at (e, lim) sees given the
// punch horizon ph, or nil if none (absent, punched, or a hole).
func (a *akeyNode) svAt(e Epoch, lim uint64, ph order) *svRec {
	i := sort.Search(len(a.svs), func(i int) bool { return a.svs[i].epoch > e })
	for i--; i >= 0; i-- {
		v := &a.svs[i]
		if v.seq > lim {
			continue
		}
		if v.flags&recHole != 0 || !ph.less(v.order) {
			return nil
		}
		return v
	}
	return nil
}

func (a *akeyNode) insertSV(v svRec) {
	i := sort.Search(len(a.svs), func(i int) bool { return v.order.less(a.svs[i].order) })
	a.svs = slices.Insert(a.svs, i, v)
}

// ---- arrays ----

func (a *akeyNode) insertExt(x exRec) {
	i := sort.Search(len(a.exts), func(i int) bool {
		y := &a.exts[i]
		return x.idx < y.idx || (x.idx == y.idx && x.order.less(y.order))
	})
	a.exts = slices.Insert(a.exts, i, x)
	if x.nr > a.maxLen {
		a.maxLen = x.nr
	}
}

func (a *akeyNode) recomputeMaxLen() {
	a.maxLen = 0
	for i := range a.exts {
		a.maxLen = max(a.maxLen, a.exts[i].nr)
	}
}

// fragment is a visible piece of one extent.
type fragment struct {
	Recx
	ext *exRec // the extent it comes from (a hole extent for punched ranges)
}

// paint computes what a reader at (e, lim) with punch horizon ph sees in [lo, hi):
// the visible pieces of extents (data and holes), sorted by index. Newer extents
// cover older ones; nothing is modified. Cost O(log n + k log k) for k overlapping
// extents (the search starts maxLen before lo).
func (a *akeyNode) paint(lo, hi uint64, e Epoch, lim uint64, ph order, out []fragment) []fragment {
	if lo >= hi || len(a.exts) == 0 {
		return out
	}
	start := uint64(0)
	if lo > a.maxLen {
		start = lo - a.maxLen
	}
	i := sort.Search(len(a.exts), func(i int) bool { return a.exts[i].idx >= start })
	var cand []*exRec
	for ; i < len(a.exts) && a.exts[i].idx < hi; i++ {
		x := &a.exts[i]
		if x.end() <= lo || !x.visibleTo(e, lim) || !ph.less(x.order) {
			continue
		}
		cand = append(cand, x)
	}
	if len(cand) == 0 {
		return out
	}
	if len(cand) == 1 {
		x := cand[0]
		return append(out, fragment{Recx{max(lo, x.idx), min(hi, x.end()) - max(lo, x.idx)}, x})
	}
	// Newest first; each extent claims what is still uncovered.
	slices.SortFunc(cand, func(x, y *exRec) int {
		if y.order.less(x.order) {
			return -1
		}
		return 1
	})
	free := []Recx{{lo, hi - lo}} // uncovered gaps, sorted
	base := len(out)
	for _, x := range cand {
		if len(free) == 0 {
			break
		}
		var next []Recx
		for _, g := range free {
			s, t := max(g.Idx, x.idx), min(g.end(), x.end())
			if s >= t {
				next = append(next, g)
				continue
			}
			out = append(out, fragment{Recx{s, t - s}, x})
			if g.Idx < s {
				next = append(next, Recx{g.Idx, s - g.Idx})
			}
			if t < g.end() {
				next = append(next, Recx{t, g.end() - t})
			}
		}
		free = next
	}
	frags := out[base:]
	slices.SortFunc(frags, func(p, q fragment) int { return cmpU64(p.Idx, q.Idx) })
	return out
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// arrayBounds returns the smallest start and largest end of any extent.
func (a *akeyNode) arrayBounds() (uint64, uint64) {
	if len(a.exts) == 0 {
		return 0, 0
	}
	lo := a.exts[0].idx
	var hi uint64
	for i := range a.exts {
		hi = max(hi, a.exts[i].end())
	}
	return lo, hi
}

// ---- existence ----
//
// A key exists at an epoch when a reader would find data under it: a single value
// that is not punched, or at least one visible data record of an array. Existence is
// a function of what fetch returns, so aggregation (which preserves fetch results at
// pinned epochs) preserves it too.

func (a *akeyNode) exists(e Epoch, lim uint64, ph order) bool {
	ph = maxPunch(a.punches, e, lim, ph)
	switch a.kind {
	case IODSingle:
		return a.svAt(e, lim, ph) != nil
	case IODArray:
		holes, data := false, false
		for i := range a.exts {
			x := &a.exts[i]
			if !x.visibleTo(e, lim) || !ph.less(x.order) {
				continue
			}
			if x.flags&recHole != 0 {
				holes = true
			} else {
				data = true
			}
		}
		if !data {
			return false
		}
		if !holes {
			return true
		}
		lo, hi := a.arrayBounds()
		for _, f := range a.paint(lo, hi, e, lim, ph, nil) {
			if f.ext.flags&recHole == 0 {
				return true
			}
		}
	}
	return false
}

func (d *dkeyNode) exists(e Epoch, lim uint64, ph order) bool {
	ph = maxPunch(d.punches, e, lim, ph)
	for _, a := range d.akeys {
		if a.exists(e, lim, ph) {
			return true
		}
	}
	return false
}

func (o *objNode) exists(e Epoch, lim uint64) bool {
	ph := maxPunch(o.punches, e, lim, order{})
	found := false
	o.dkeys.Scan(func(d *dkeyNode) bool {
		found = d.exists(e, lim, ph)
		return !found
	})
	return found
}

// akeyEmpty reports whether an akey holds nothing at all (prunable).
func (a *akeyNode) empty() bool { return len(a.svs) == 0 && len(a.exts) == 0 && len(a.punches) == 0 }
func (d *dkeyNode) empty() bool { return len(d.akeys) == 0 && len(d.punches) == 0 }
func (o *objNode) empty() bool  { return o.dkeys.Len() == 0 && len(o.punches) == 0 }
