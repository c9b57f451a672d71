package vos

import (
	"bytes"
	"flag"
	"fmt"
	"slices"
	"sort"
	"testing"

	"pgregory.net/rapid"

	"github.com/godaos/godaos/internal/daoserr"
)

// The model: every successful update and punch as a flat list; a read recomputes
// from scratch what a reader at epoch E must see. It knows nothing of trees,
// tiers, logs or aggregation, so VOS agreeing with it is evidence VOS is right.

type mRec struct {
	epoch uint64
	seq   int
	kind  string // "sv", "ex", "punch-obj", "punch-dkey", "punch-akey"
	oid   int
	dkey  string
	akey  string
	val   []byte // sv: nil = punched value; ex: nil = hole
	recx  Recx
}

func (r *mRec) after(o *mRec) bool {
	return o == nil || r.epoch > o.epoch || (r.epoch == o.epoch && r.seq > o.seq)
}

type mAgg struct {
	lo, hi uint64
	pts    []uint64
}

type model struct {
	recs  []mRec
	seq   int
	aggHi uint64
	aggs  []mAgg
	snaps []uint64
}

const (
	mArrayLen = 24
	mHugeE    = 1 << 40
)

var (
	mDkeys  = []string{"d0", "d1"}
	mSingle = []string{"s0", "s1"}
	mArrays = []string{"a0", "a1"}
	mOIDs   = []OID{{Hi: 0, Lo: 1}, {Hi: uint64(ObjMultiUint64) << 56, Lo: 2}} // the second orders keys as integers
)

// horizon is the newest punch covering (oid, dkey, akey) visible at e.
func (m *model) horizon(oid int, dkey, akey string, e uint64) *mRec {
	var h *mRec
	for i := range m.recs {
		r := &m.recs[i]
		if r.epoch > e || r.oid != oid {
			continue
		}
		hit := r.kind == "punch-obj" || (r.kind == "punch-dkey" && r.dkey == dkey) ||
			(r.kind == "punch-akey" && r.dkey == dkey && r.akey == akey)
		if hit && r.after(h) {
			h = r
		}
	}
	return h
}

func (m *model) single(oid int, dkey, akey string, e uint64) []byte {
	var v *mRec
	for i := range m.recs {
		r := &m.recs[i]
		if r.kind == "sv" && r.oid == oid && r.dkey == dkey && r.akey == akey && r.epoch <= e && r.after(v) {
			v = r
		}
	}
	if v == nil || v.val == nil {
		return nil
	}
	if h := m.horizon(oid, dkey, akey, e); h != nil && !v.after(h) {
		return nil
	}
	return v.val
}

// array returns the bytes and which indexes hold data in [0, mArrayLen).
func (m *model) array(oid int, dkey, akey string, e uint64) ([]byte, []bool) {
	out, has := make([]byte, mArrayLen), make([]bool, mArrayLen)
	h := m.horizon(oid, dkey, akey, e)
	for i := uint64(0); i < mArrayLen; i++ {
		var best *mRec
		for j := range m.recs {
			r := &m.recs[j]
			if r.kind == "ex" && r.oid == oid && r.dkey == dkey && r.akey == akey && r.epoch <= e &&
				r.recx.Idx <= i && i < r.recx.end() && r.after(best) {
				best = r
			}
		}
		if best != nil && best.val != nil && (h == nil || best.after(h)) {
			out[i], has[i] = best.val[i-best.recx.Idx], true
		}
	}
	return out, has
}

func (m *model) akeyExists(oid int, dkey, akey string, e uint64) bool {
	if slices.Contains(mSingle, akey) {
		return m.single(oid, dkey, akey, e) != nil
	}
	_, has := m.array(oid, dkey, akey, e)
	return slices.Contains(has, true)
}

func (m *model) dkeyExists(oid int, dkey string, e uint64) bool {
	for _, a := range append(slices.Clone(mSingle), mArrays...) {
		if m.akeyExists(oid, dkey, a, e) {
			return true
		}
	}
	return false
}

// readable reports whether reads at e are still defined after the aggregations.
func (m *model) readable(e uint64) bool {
	for _, a := range m.aggs {
		if e >= a.lo && e < a.hi && !slices.Contains(a.pts, e) {
			return false
		}
	}
	return true
}

func extentsOf(has []bool) []Recx {
	var out []Recx
	for i, h := range has {
		if !h {
			continue
		}
		if n := len(out); n > 0 && out[n-1].end() == uint64(i) {
			out[n-1].Nr++
		} else {
			out = append(out, Recx{uint64(i), 1})
		}
	}
	return out
}

type vosMachine struct {
	t    *rapid.T
	dir  string
	p    *Pool
	m    model
	cont UUID
	maxE uint64
}

func (vm *vosMachine) writeEpoch(t *rapid.T) uint64 {
	lo := uint64(1)
	if vm.m.aggHi > 0 && rapid.IntRange(0, 9).Draw(t, "stale") > 0 {
		lo = vm.m.aggHi + 1 // mostly valid epochs, sometimes one at or below the aggregated epoch
	}
	e := rapid.Uint64Range(lo, lo+25).Draw(t, "epoch")
	vm.maxE = max(vm.maxE, e)
	return e
}

func (vm *vosMachine) readEpoch(t *rapid.T) uint64 {
	if len(vm.m.snaps) > 0 && rapid.IntRange(0, 2).Draw(t, "at-snapshot") == 0 {
		if e := rapid.SampledFrom(vm.m.snaps).Draw(t, "snap-epoch"); vm.m.readable(e) {
			return e
		}
	}
	for range 20 {
		e := rapid.Uint64Range(0, vm.maxE+3).Draw(t, "read-epoch")
		if vm.m.readable(e) {
			return e
		}
	}
	return mHugeE
}

func expectErr(t *rapid.T, what string, err error, want daoserr.Code) {
	t.Helper()
	if want == 0 && err != nil {
		t.Fatalf("%s: unexpected error %v", what, err)
	}
	if want != 0 && !daoserr.Is(err, want) {
		t.Fatalf("%s: got error %v, want %s", what, err, want.Name())
	}
}

func (vm *vosMachine) staleErr(e uint64) daoserr.Code {
	if e <= vm.m.aggHi {
		return daoserr.TxRestart
	}
	return 0
}

func (vm *vosMachine) Update(t *rapid.T) {
	oi := rapid.SampledFrom([]int{0, 0, 0, 1}).Draw(t, "oid")
	dkey := rapid.SampledFrom(mDkeys).Draw(t, "dkey")
	e := vm.writeEpoch(t)
	akeys := rapid.SliceOfNDistinct(rapid.SampledFrom(append(slices.Clone(mSingle), mArrays...)), 1, 3, rapid.ID[string]).Draw(t, "akeys")
	cond := rapid.SampledFrom([]CondFlags{0, 0, 0, CondDkeyInsert, CondDkeyUpdate, CondAkeyInsert, CondAkeyUpdate}).Draw(t, "cond")
	var iods []IOD
	var sgls []SGL
	var recs []mRec
	for _, a := range akeys {
		if slices.Contains(mSingle, a) {
			n := rapid.SampledFrom([]int{0, 1, 3, 7, 8, 12}).Draw(t, "len")
			var val []byte
			if n > 0 {
				val = rapid.SliceOfN(rapid.Byte(), n, n).Draw(t, "val")
			}
			iods = append(iods, IOD{Akey: []byte(a), Type: IODSingle, Size: uint64(n)})
			sgls = append(sgls, SGL{val})
			recs = append(recs, mRec{kind: "sv", akey: a, val: val})
			continue
		}
		idx := rapid.Uint64Range(0, mArrayLen-1).Draw(t, "idx")
		nr := rapid.Uint64Range(1, min(16, mArrayLen-idx)).Draw(t, "nr")
		hole := rapid.IntRange(0, 2).Draw(t, "hole") == 0
		iod := IOD{Akey: []byte(a), Type: IODArray, Recxs: []Recx{{idx, nr}}}
		var data []byte
		if !hole {
			iod.Size = 1
			data = rapid.SliceOfN(rapid.Byte(), int(nr), int(nr)).Draw(t, "data")
			// split the data over two buffers to exercise scatter-gather
			cut := rapid.IntRange(0, int(nr)).Draw(t, "cut")
			sgls = append(sgls, SGL{data[:cut], data[cut:]})
		} else {
			sgls = append(sgls, nil)
		}
		iods = append(iods, iod)
		recs = append(recs, mRec{kind: "ex", akey: a, val: data, recx: Recx{idx, nr}})
	}
	want := vm.staleErr(e)
	if want == 0 {
		switch {
		case cond == CondDkeyInsert && vm.m.dkeyExists(oi, dkey, e):
			want = daoserr.Exist
		case cond == CondDkeyUpdate && !vm.m.dkeyExists(oi, dkey, e):
			want = daoserr.Nonexist
		case cond == CondAkeyInsert || cond == CondAkeyUpdate:
			for _, a := range akeys {
				ex := vm.m.akeyExists(oi, dkey, a, e)
				if cond == CondAkeyInsert && ex {
					want = daoserr.Exist
					break
				}
				if cond == CondAkeyUpdate && !ex {
					want = daoserr.Nonexist
					break
				}
			}
		}
	}
	err := vm.p.Update(vm.cont, mOIDs[oi], e, cond, []byte(dkey), iods, sgls)
	expectErr(t, fmt.Sprintf("update %v e=%d cond=%#x", akeys, e, cond), err, want)
	if err == nil {
		vm.m.seq++
		for _, r := range recs {
			r.epoch, r.seq, r.oid, r.dkey = e, vm.m.seq, oi, dkey
			vm.m.recs = append(vm.m.recs, r)
		}
	}
}

func (vm *vosMachine) Punch(t *rapid.T) {
	oi := rapid.IntRange(0, len(mOIDs)-1).Draw(t, "oid")
	e := vm.writeEpoch(t)
	level := rapid.SampledFrom([]string{"punch-obj", "punch-dkey", "punch-akey"}).Draw(t, "level")
	dkey := rapid.SampledFrom(mDkeys).Draw(t, "dkey")
	akey := rapid.SampledFrom(append(slices.Clone(mSingle), mArrays...)).Draw(t, "akey")
	cond := rapid.SampledFrom([]CondFlags{0, CondPunch}).Draw(t, "cond")
	want := vm.staleErr(e)
	var err error
	switch level {
	case "punch-obj":
		if want == 0 && cond != 0 && !slices.ContainsFunc(mDkeys, func(d string) bool { return vm.m.dkeyExists(oi, d, e) }) {
			want = daoserr.Nonexist
		}
		err = vm.p.PunchObject(vm.cont, mOIDs[oi], e, cond)
	case "punch-dkey":
		if want == 0 && cond != 0 && !vm.m.dkeyExists(oi, dkey, e) {
			want = daoserr.Nonexist
		}
		err = vm.p.PunchDkeys(vm.cont, mOIDs[oi], e, cond, [][]byte{[]byte(dkey)})
	default:
		if want == 0 && cond != 0 && !vm.m.akeyExists(oi, dkey, akey, e) {
			want = daoserr.Nonexist
		}
		err = vm.p.PunchAkeys(vm.cont, mOIDs[oi], e, cond, []byte(dkey), [][]byte{[]byte(akey)})
	}
	expectErr(t, fmt.Sprintf("%s e=%d", level, e), err, want)
	if err == nil {
		vm.m.seq++
		vm.m.recs = append(vm.m.recs, mRec{epoch: e, seq: vm.m.seq, kind: level, oid: oi, dkey: dkey, akey: akey})
	}
}

func (vm *vosMachine) Fetch(t *rapid.T) {
	oi := rapid.IntRange(0, len(mOIDs)-1).Draw(t, "oid")
	dkey := rapid.SampledFrom(mDkeys).Draw(t, "dkey")
	e := vm.readEpoch(t)
	cond := rapid.SampledFrom([]CondFlags{0, 0, CondDkeyFetch, CondAkeyFetch}).Draw(t, "cond")
	var iods []IOD
	var sgls []SGL
	for _, a := range mSingle {
		iods = append(iods, IOD{Akey: []byte(a), Type: IODSingle, Size: 16})
		sgls = append(sgls, SGL{make([]byte, 5), make([]byte, 11)})
	}
	lo := rapid.Uint64Range(0, mArrayLen-1).Draw(t, "lo")
	hi := rapid.Uint64Range(lo+1, mArrayLen).Draw(t, "hi")
	for _, a := range mArrays {
		iods = append(iods, IOD{Akey: []byte(a), Type: IODArray, Size: 1, Recxs: []Recx{{lo, hi - lo}}})
		buf := bytes.Repeat([]byte{0xee}, int(hi-lo)) // must be overwritten, holes with zeros
		sgls = append(sgls, SGL{buf})
	}
	var want daoserr.Code
	if cond == CondDkeyFetch && !vm.m.dkeyExists(oi, dkey, e) {
		want = daoserr.Nonexist
	}
	if cond == CondAkeyFetch {
		for _, a := range append(slices.Clone(mSingle), mArrays...) {
			if !vm.m.akeyExists(oi, dkey, a, e) {
				want = daoserr.Nonexist
			}
		}
	}
	res, err := vm.p.Fetch(vm.cont, mOIDs[oi], e, cond, []byte(dkey), iods, sgls)
	expectErr(t, fmt.Sprintf("fetch e=%d cond=%#x", e, cond), err, want)
	if err != nil {
		return
	}
	for i, a := range mSingle {
		exp := vm.m.single(oi, dkey, a, e)
		got := bytes.Join(sgls[i], nil)[:res[i].Size]
		if res[i].Size != uint64(len(exp)) || !bytes.Equal(got, exp) {
			t.Fatalf("fetch obj %d %s/%s at %d: got %x (size %d), model %x", oi, dkey, a, e, got, res[i].Size, exp)
		}
	}
	for j, a := range mArrays {
		i := len(mSingle) + j
		full, has := vm.m.array(oi, dkey, a, e)
		expData := full[lo:hi]
		expExt := extentsOf(has[lo:hi])
		for k := range expExt {
			expExt[k].Idx += lo
		}
		if !bytes.Equal(sgls[i][0], expData) {
			t.Fatalf("fetch obj %d %s/%s [%d,%d) at %d: got %x, model %x", oi, dkey, a, lo, hi, e, sgls[i][0], expData)
		}
		if !slices.Equal(res[i].Extents, expExt) {
			t.Fatalf("fetch obj %d %s/%s [%d,%d) at %d: extents %v, model %v", oi, dkey, a, lo, hi, e, res[i].Extents, expExt)
		}
		if wantSize := map[bool]uint64{true: 1, false: 0}[vm.m.akeyExists(oi, dkey, a, e)]; res[i].Size != wantSize {
			t.Fatalf("fetch obj %d %s/%s at %d: size %d, model %d", oi, dkey, a, e, res[i].Size, wantSize)
		}
	}
}

func (vm *vosMachine) List(t *rapid.T) {
	oi := rapid.IntRange(0, len(mOIDs)-1).Draw(t, "oid")
	e := vm.readEpoch(t)
	page := rapid.IntRange(1, 3).Draw(t, "page")
	var got []string
	var anchor Anchor
	for i := 0; !anchor.EOF; i++ {
		if i > 10 {
			t.Fatalf("list dkeys does not terminate")
		}
		keys, err := vm.p.ListDkeys(vm.cont, mOIDs[oi], e, &anchor, page)
		expectErr(t, "list dkeys", err, 0)
		for _, k := range keys {
			got = append(got, string(k))
		}
	}
	var exp []string
	for _, d := range mDkeys {
		if vm.m.dkeyExists(oi, d, e) {
			exp = append(exp, d)
		}
	}
	if !slices.Equal(got, exp) {
		t.Fatalf("list dkeys obj %d at %d: got %v, model %v", oi, e, got, exp)
	}
	dkey := rapid.SampledFrom(mDkeys).Draw(t, "dkey")
	akeys, err := vm.p.ListAkeys(vm.cont, mOIDs[oi], e, []byte(dkey), &Anchor{}, 0)
	expectErr(t, "list akeys", err, 0)
	var gotA, expA []string
	for _, k := range akeys {
		gotA = append(gotA, string(k))
	}
	all := append(slices.Clone(mArrays), mSingle...)
	sort.Strings(all)
	for _, a := range all {
		if vm.m.akeyExists(oi, dkey, a, e) {
			expA = append(expA, a)
		}
	}
	if !slices.Equal(gotA, expA) {
		t.Fatalf("list akeys obj %d %s at %d: got %v, model %v", oi, dkey, e, gotA, expA)
	}
	// query max/min dkey agrees with the listing
	for _, fl := range []QueryFlags{GetMax, GetMin} {
		q, err := vm.p.QueryKey(vm.cont, mOIDs[oi], e, GetDkey|fl, nil, nil)
		if len(exp) == 0 {
			expectErr(t, "query key", err, daoserr.Nonexist)
			continue
		}
		expectErr(t, "query key", err, 0)
		want := exp[0]
		if fl == GetMax {
			want = exp[len(exp)-1]
		}
		if string(q.Dkey) != want {
			t.Fatalf("query %#x dkey obj %d at %d: got %q, model %q", fl, oi, e, q.Dkey, want)
		}
	}
}

func (vm *vosMachine) Snapshot(t *rapid.T) {
	e := rapid.Uint64Range(1, vm.maxE+1).Draw(t, "snap")
	if vm.m.readable(e) && !slices.Contains(vm.m.snaps, e) {
		vm.m.snaps = append(vm.m.snaps, e)
	}
}

func (vm *vosMachine) Aggregate(t *rapid.T) {
	if vm.maxE == 0 {
		t.Skip("nothing written")
	}
	hi := rapid.Uint64Range(1, vm.maxE).Draw(t, "hi")
	lo := rapid.SampledFrom([]uint64{0, 0, hi / 2}).Draw(t, "lo")
	snaps := slices.Clone(vm.m.snaps)
	err := vm.p.Aggregate(vm.cont, lo, hi, snaps)
	expectErr(t, "aggregate", err, 0)
	pts := []uint64{hi} // computed here, not with VOS's readPoints, so a bug there shows
	for _, s := range snaps {
		if s >= lo && s <= hi {
			pts = append(pts, s)
		}
	}
	vm.m.aggs = append(vm.m.aggs, mAgg{lo: lo, hi: hi, pts: pts})
	vm.m.aggHi = max(vm.m.aggHi, hi)
}

func (vm *vosMachine) Discard(t *rapid.T) {
	var lo, hi uint64
	if len(vm.m.snaps) > 0 && rapid.Bool().Draw(t, "rollback") {
		lo, hi = rapid.SampledFrom(vm.m.snaps).Draw(t, "snap")+1, mHugeE // rollback to a snapshot
		if !vm.m.readable(lo - 1) {
			t.Skip("snapshot no longer readable")
		}
	} else {
		lo = rapid.Uint64Range(vm.m.aggHi+1, vm.maxE+2).Draw(t, "lo")
		hi = rapid.Uint64Range(lo, vm.maxE+2).Draw(t, "hi")
	}
	err := vm.p.Discard(vm.cont, lo, hi)
	expectErr(t, "discard", err, 0)
	vm.m.recs = slices.DeleteFunc(vm.m.recs, func(r mRec) bool { return r.epoch >= lo && r.epoch <= hi })
}

func (vm *vosMachine) Reopen(t *rapid.T) {
	before := vm.p.Query()
	if rapid.Bool().Draw(t, "checkpoint") {
		expectErr(t, "checkpoint", vm.p.Checkpoint(), 0)
	}
	if err := vm.p.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	p, err := Open(vm.dir, Options{CheckpointBytes: 4 << 10})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	vm.p = p
	after := p.Query()
	if before.ScmUsed != after.ScmUsed || before.NvmeUsed != after.NvmeUsed {
		t.Fatalf("space accounting differs across reopen: scm %d -> %d, nvme %d -> %d",
			before.ScmUsed, after.ScmUsed, before.NvmeUsed, after.NvmeUsed)
	}
	if after.TruncatedBytes != 0 {
		t.Fatalf("clean reopen cut %d bytes of log", after.TruncatedBytes)
	}
}

func (vm *vosMachine) Check(t *rapid.T) {}

func TestModel(t *testing.T) {
	// rapid's default of 30 steps leaves too few writes per run to build the
	// overlapping histories aggregation is interesting on; ask for more unless the
	// command line says otherwise.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "rapid.steps" })
	if !explicit {
		flag.Set("rapid.steps", "150")
	}
	rapid.Check(t, func(t *rapid.T) {
		dir, err := mkTemp()
		if err != nil {
			t.Fatal(err)
		}
		defer removeAll(dir)
		// A tiny data threshold puts most values in the NVMe tier, a tiny checksum
		// chunk splits extents into many pieces, a tiny checkpoint size checkpoints often.
		if err := Format(dir, FormatOptions{ScmSize: 64 << 20, NvmeSize: 16 << 20, DataThresh: 8}); err != nil {
			t.Fatal(err)
		}
		p, err := Open(dir, Options{CheckpointBytes: 4 << 10})
		if err != nil {
			t.Fatal(err)
		}
		vm := &vosMachine{t: t, dir: dir, p: p, cont: UUIDFromUint64(7)}
		defer func() { vm.p.Close() }()
		if err := p.CreateContainer(vm.cont, ContOptions{CsumChunk: 4}); err != nil {
			t.Fatal(err)
		}
		t.Repeat(map[string]func(*rapid.T){
			"update":    vm.Update,
			"update-2":  vm.Update, // writes weigh more: histories need depth
			"update-3":  vm.Update,
			"punch":     vm.Punch,
			"fetch":     vm.Fetch,
			"list":      vm.List,
			"snapshot":  vm.Snapshot,
			"aggregate": vm.Aggregate,
			"discard":   vm.Discard,
			"reopen":    vm.Reopen,
			"":          vm.Check,
		})
	})
}
