package daos

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/testsys/cluster"
	"github.com/godaos/godaos/server"
)

// ecCell is the tests' ec_cell_sz: the smallest DAOS allows, so that a few
// KiB span many cells and stripes.
const ecCell = 4096

// ecSystem starts servers × targets, with a container of cell size ecCell.
func ecSystem(t *testing.T, servers, targets int, props ...string) (*cluster.System, *Cont) {
	t.Helper()
	sys := cluster.Start(t, cluster.Options{Servers: servers, Targets: targets})
	cp := map[string]string{"ec_cell_sz": "4KiB"}
	for i := 0; i+1 < len(props); i += 2 {
		cp[props[i]] = props[i+1]
	}
	h := sysCont(t, sys, sys.Pool, "ec", cp)
	return sys, h
}

// ecObj opens a new object of class: its OID is made here, without
// GenerateOID's fault-domain check, so that a class wider than the servers
// runs on their targets (this tests the I/O, not the fault domains).
func ecObj(t *testing.T, h *Cont, class placement.ClassID) *Obj {
	t.Helper()
	lo, err := h.NextOID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	o, err := h.Obj(placement.MakeOID(lo, 0, class, placement.OTMultiHashed))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// ecModel is what an EC object should hold: per dkey and akey, the bytes of
// an array (and which records were written) or a single value.
type ecModel struct {
	o      *Obj
	arrays map[[2]string]*modelArray
	single map[[2]string][]byte
}

type modelArray struct {
	rs      uint64
	data    []byte
	written []bool
	punched []bool // punched records (holes; a degraded read may report them as zeros)
}

// punchRecords punches a random extent of a random array akey of dkey (an
// update of record size 0).
func (m *ecModel) punchRecords(t *testing.T, rng *rand.Rand, dkey string) {
	t.Helper()
	for key, ma := range m.arrays {
		if key[0] != dkey || len(ma.written) == 0 {
			continue
		}
		idx := uint64(rng.IntN(len(ma.written)))
		r := Recx{Idx: idx, Nr: 1 + uint64(rng.IntN(len(ma.written)-int(idx)))}
		if _, err := m.o.Update(context.Background(), []byte(dkey), []IOD{{Akey: []byte(key[1]), Type: Array, Size: 0, Recxs: []Recx{r}}}, [][]byte{nil}); err != nil {
			t.Fatalf("punch records %v of %v: %v", r, key, err)
		}
		if len(ma.punched) < len(ma.written) {
			ma.punched = append(ma.punched, make([]bool, len(ma.written)-len(ma.punched))...)
		}
		for i := r.Idx; i < r.Idx+r.Nr; i++ {
			ma.written[i], ma.punched[i] = false, true
		}
		clear(ma.data[r.Idx*ma.rs : (r.Idx+r.Nr)*ma.rs])
		return
	}
}

var ecAkeys = []struct {
	name string
	rs   uint64
}{{"a1", 1}, {"a3", 3}, {"a8", 8}}

func newECModel(o *Obj) *ecModel {
	return &ecModel{o: o, arrays: map[[2]string]*modelArray{}, single: map[[2]string][]byte{}}
}

// randomWrite makes one random update: a single value, or extents of an
// array that are full stripes, partial ones, or both.
func (m *ecModel) randomWrite(t *testing.T, rng *rand.Rand, dkey string) {
	t.Helper()
	ctx := context.Background()
	k := uint64(m.o.OID.Class().DataCells())
	stripe := k * ecCell
	if rng.IntN(5) == 0 {
		val := make([]byte, 1+rng.IntN(6000))
		fillRandom(rng, val)
		if _, err := m.o.Update(ctx, []byte(dkey), []IOD{{Akey: []byte("sv"), Type: Single, Size: uint64(len(val))}}, [][]byte{val}); err != nil {
			t.Fatal(err)
		}
		m.single[[2]string{dkey, "sv"}] = val
		return
	}
	ak := ecAkeys[rng.IntN(len(ecAkeys))]
	var recxs []Recx
	switch rng.IntN(4) {
	case 0: // whole stripes
		s := uint64(rng.IntN(3))
		recxs = []Recx{{Idx: s * stripe, Nr: uint64(1+rng.IntN(2)) * stripe}}
	case 1: // a few records
		recxs = []Recx{{Idx: uint64(rng.IntN(int(3 * stripe))), Nr: uint64(1 + rng.IntN(100))}}
	case 2: // anything up to two stripes, unaligned
		recxs = []Recx{{Idx: uint64(rng.IntN(int(2 * stripe))), Nr: uint64(1 + rng.IntN(int(2*stripe)))}}
	default: // two extents, one after the other, out of order
		a := uint64(rng.IntN(int(stripe)))
		b := a + uint64(1+rng.IntN(int(stripe)))
		c := b + uint64(1+rng.IntN(int(stripe)))
		recxs = []Recx{{Idx: b, Nr: c - b}, {Idx: a, Nr: b - a}}
	}
	m.writeArray(t, rng, dkey, ak.name, ak.rs, recxs)
}

// writeArray writes random bytes to recxs of an array akey of rs-byte records.
func (m *ecModel) writeArray(t *testing.T, rng *rand.Rand, dkey, akey string, rs uint64, recxs []Recx) {
	t.Helper()
	ak := struct {
		name string
		rs   uint64
	}{akey, rs}
	var n uint64
	for _, r := range recxs {
		n += r.Nr
	}
	buf := make([]byte, n*ak.rs)
	fillRandom(rng, buf)
	if _, err := m.o.Update(context.Background(), []byte(dkey), []IOD{{Akey: []byte(ak.name), Type: Array, Size: ak.rs, Recxs: recxs}}, [][]byte{buf}); err != nil {
		t.Fatalf("update %v of %d-byte records: %v", recxs, ak.rs, err)
	}
	key := [2]string{dkey, ak.name}
	ma := m.arrays[key]
	if ma == nil {
		ma = &modelArray{rs: ak.rs}
		m.arrays[key] = ma
	}
	off := uint64(0)
	for _, r := range recxs {
		if end := (r.Idx + r.Nr); uint64(len(ma.written)) < end {
			ma.written = append(ma.written, make([]bool, end-uint64(len(ma.written)))...)
			ma.data = append(ma.data, make([]byte, end*ak.rs-uint64(len(ma.data)))...)
		}
		copy(ma.data[r.Idx*ak.rs:], buf[off:off+r.Nr*ak.rs])
		for i := r.Idx; i < r.Idx+r.Nr; i++ {
			ma.written[i] = true
		}
		off += r.Nr * ak.rs
	}
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// punchAkey punches one akey of dkey.
func (m *ecModel) punchAkey(t *testing.T, dkey, akey string) {
	t.Helper()
	if err := m.o.PunchAkeys(context.Background(), []byte(dkey), [][]byte{[]byte(akey)}); err != nil {
		t.Fatal(err)
	}
	delete(m.arrays, [2]string{dkey, akey})
	delete(m.single, [2]string{dkey, akey})
}

// fetcher reads like Obj.Fetch; tests pass one that forces a degraded path.
type fetcher func(ctx context.Context, dkey []byte, iods []IOD, sgls [][]byte) ([]FetchResult, error)

// verify reads back everything the model holds, byte for byte, and the
// extents that hold data.
func (m *ecModel) verify(t *testing.T, fetch fetcher, what string) {
	t.Helper()
	ctx := context.Background()
	for key, ma := range m.arrays {
		n := uint64(len(ma.written))
		got := make([]byte, n*ma.rs)
		for i := range got {
			got[i] = 0xee // a hole must be zeroed
		}
		res, err := fetch(ctx, []byte(key[0]), []IOD{{Akey: []byte(key[1]), Type: Array, Size: ma.rs, Recxs: []Recx{{Idx: 0, Nr: n}}}}, [][]byte{got})
		if err != nil {
			t.Fatalf("%s: fetch %v: %v", what, key, err)
		}
		if !bytes.Equal(got, ma.data) {
			i := 0
			for i < len(got) && got[i] == ma.data[i] {
				i++
			}
			t.Fatalf("%s: %v (%d-byte records): differs from byte %d (record %d): got %x want %x", what, key, ma.rs, i, uint64(i)/ma.rs,
				got[i:min(i+16, len(got))], ma.data[i:min(i+16, len(got))])
		}
		var want []Recx
		for i := uint64(0); i < n; i++ {
			if !ma.written[i] {
				continue
			}
			if l := len(want); l > 0 && want[l-1].Idx+want[l-1].Nr == i {
				want[l-1].Nr++
			} else {
				want = append(want, Recx{Idx: i, Nr: 1})
			}
		}
		if !slices.Equal(res[0].Extents, want) && (what == "healthy" || !ma.holesAsZeros(res[0].Extents)) {
			t.Fatalf("%s: %v: extents %v, want %v", what, key, res[0].Extents, want)
		}
	}
	for key, val := range m.single {
		got := make([]byte, len(val))
		res, err := fetch(ctx, []byte(key[0]), []IOD{{Akey: []byte(key[1]), Type: Single, Size: uint64(len(val))}}, [][]byte{got})
		if err != nil {
			t.Fatalf("%s: fetch %v: %v", what, key, err)
		}
		if !bytes.Equal(got, val) || res[0].Size != uint64(len(val)) {
			t.Fatalf("%s: single value %v: size %d, differs", what, key, res[0].Size)
		}
	}
}

// holesAsZeros reports whether extents cover every written record and
// otherwise punched ones only: a degraded read finds the punched records of
// a partly punched stripe as zeros (their replicas), see ecRecordPunch.
func (ma *modelArray) holesAsZeros(extents []Recx) bool {
	covered := make([]bool, len(ma.written))
	for _, x := range extents {
		for i := x.Idx; i < x.Idx+x.Nr; i++ {
			if i >= uint64(len(ma.written)) || !ma.written[i] && (i >= uint64(len(ma.punched)) || !ma.punched[i]) {
				return false
			}
			covered[i] = true
		}
	}
	for i, w := range ma.written {
		if w && !covered[i] {
			return false
		}
	}
	return true
}

// degraded is a fetch that does without the cell positions missing (read
// with no other fallback).
func degraded(o *Obj, missing ...int) fetcher {
	return func(ctx context.Context, dkey []byte, iods []IOD, sgls [][]byte) ([]FetchResult, error) {
		l, err := o.currentLayout()
		if err != nil {
			return nil, err
		}
		grp := l.Group(o.dkeyGroup(dkey))
		miss := slices.Clone(missing)
		for pos, a := range o.ecAbsent(grp) {
			if a && !slices.Contains(miss, pos) {
				miss = append(miss, pos)
			}
		}
		if len(miss) > o.OID.Class().ParityCells() {
			return o.Fetch(ctx, dkey, iods, sgls) // more than the code survives: as the client reads it
		}
		epoch := max(ecClock.Now(), o.cont.Pool.seen.Load())
		res, _, err := o.ecFetchOnce(ctx, l.Version, grp, miss, epoch, 0, dkey, iods, sgls)
		return res, err
	}
}

// exercise writes random updates to o and checks them, healthy and with
// every set of up to p data or parity positions missing that it tries.
func exercise(t *testing.T, o *Obj, seed uint64, n int) *ecModel {
	rng := rand.New(rand.NewPCG(seed, 7))
	m := newECModel(o)
	dkeys := []string{"d0", "d1", "d2"}
	for i := range n {
		m.randomWrite(t, rng, dkeys[rng.IntN(len(dkeys))])
		if i%5 == 4 {
			m.punchRecords(t, rng, dkeys[rng.IntN(len(dkeys))])
		}
		if i == n/2 {
			m.punchAkey(t, "d1", "a3")
		}
	}
	m.verify(t, o.Fetch, "healthy")
	k, p := o.OID.Class().DataCells(), o.OID.Class().ParityCells()
	sets := [][]int{{0}, {k - 1}, {k}}
	if p >= 2 {
		sets = append(sets, []int{0, 1}, []int{0, k}, []int{k, k + 1}, []int{1, k + 1})
	}
	for _, miss := range sets {
		m.verify(t, degraded(o, miss...), fmt.Sprintf("without positions %v", miss))
	}
	return m
}

// TestECAggregation: partial-stripe writes leave their records replicated
// on the parity shards; aggregation (every 300 ms here, a second behind)
// folds those of whole stripes into parity while writes go on, and removes
// them; a stripe with a hole keeps its replicas. Degraded reads are then
// byte-exact, reconstructed from the new parity.
func TestECAggregation(t *testing.T) {
	t.Setenv(server.AggregationEnv, "300ms/1s") // the servers inherit it
	_, h := ecSystem(t, 3, 4)
	ctx := context.Background()
	for i, class := range []placement.ClassID{placement.MakeClass(placement.RS2P1, 1), placement.MakeClass(placement.RS4P2, 1)} {
		t.Run(class.String(), func(t *testing.T) {
			o := ecObj(t, h, class)
			m := newECModel(o)
			rng := rand.New(rand.NewPCG(uint64(i), 13))
			k := uint64(class.DataCells())
			stripe := k * uint64(ecCell)
			// three whole stripes written in thirds of a cell (no write is
			// a full stripe), then half of the next one
			piece := uint64(ecCell / 3)
			for idx := uint64(0); idx < 3*stripe; idx += piece {
				m.writeArray(t, rng, "seq", "a1", 1, []Recx{{Idx: idx, Nr: min(piece, 3*stripe-idx)}})
			}
			m.writeArray(t, rng, "seq", "a1", 1, []Recx{{Idx: 3 * stripe, Nr: stripe / 2}})
			for range 40 { // meanwhile, passes run
				m.randomWrite(t, rng, []string{"d1", "d2"}[rng.IntN(2)])
			}
			l, err := o.currentLayout()
			if err != nil {
				t.Fatal(err)
			}
			grp := l.Group(o.dkeyGroup([]byte("seq")))
			replicas := func(from, to uint64) int {
				n := 0
				for pos := int(k); pos < len(grp); pos++ {
					xs, err := o.ecListRecx(ctx, dest{grp[pos], l.Version}, ecClock.Now(), []byte("seq"), []byte("a1"), from, to)
					if err != nil {
						t.Fatal(err)
					}
					n += len(xs)
				}
				return n
			}
			folded := false
			for range 150 { // bounded: 30 s
				if replicas(0, 3*stripe) == 0 {
					folded = true
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if !folded {
				t.Fatalf("the whole stripes' replicas were not folded: %d extents left on the parity shards", replicas(0, 3*stripe))
			}
			if n := replicas(3*stripe, 4*stripe); n != len(grp)-int(k) {
				t.Fatalf("the half-written stripe: %d replica extents on %d parity shards, want one each (a stripe with a hole is not folded)", n, len(grp)-int(k))
			}
			// Records of cell 1 of the folded stripe 1 punched: zeros on the
			// parity shards, a hole on data shard 1. The stripe folds again
			// (its hole as zeros), and history is merged only below that:
			// a degraded read of cell 0 reconstructs from cell 1 as punched.
			punch := Recx{Idx: stripe + uint64(ecCell) + 100, Nr: 50}
			if _, err := o.Update(ctx, []byte("seq"), []IOD{{Akey: []byte("a1"), Type: Array, Size: 0, Recxs: []Recx{punch}}}, [][]byte{nil}); err != nil {
				t.Fatal(err)
			}
			ma := m.arrays[[2]string{"seq", "a1"}]
			ma.punched = make([]bool, len(ma.written))
			for i := punch.Idx; i < punch.Idx+punch.Nr; i++ {
				ma.written[i], ma.punched[i] = false, true
				ma.data[i] = 0
			}
			folded = false
			for range 150 { // bounded: 30 s
				if replicas(stripe, 2*stripe) == 0 {
					folded = true
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if !folded {
				t.Fatalf("the punched stripe's zeros were not folded: %d extents left on the parity shards", replicas(stripe, 2*stripe))
			}
			time.Sleep(3 * time.Second) // rounds of aggregation past the punch (every 300 ms, a second behind)
			m.verify(t, o.Fetch, "healthy")
			sets := [][]int{{0}, {int(k) - 1}, {int(k)}}
			if class.ParityCells() >= 2 {
				sets = append(sets, []int{0, 1}, []int{0, int(k)})
			}
			for _, miss := range sets {
				m.verify(t, degraded(o, miss...), fmt.Sprintf("without positions %v", miss))
			}
		})
	}
}

// TestECConditional: conditional updates and punches of an EC object are
// all or nothing on every shard: the first parity shard checks the
// condition and, when it fails, no shard is written (degraded reads, which
// read parity shards' replicas, see the old values).
func TestECConditional(t *testing.T) {
	_, h := ecSystem(t, 3, 4)
	ctx := context.Background()
	class := placement.MakeClass(placement.RS4P2, 1)
	o := ecObj(t, h, class)
	m := newECModel(o)
	rng := rand.New(rand.NewPCG(3, 5))
	val := func(n int) []byte { b := make([]byte, n); fillRandom(rng, b); return b }
	update := func(flags CondFlags, dkey string, iods []IOD, bufs [][]byte) error {
		_, err := o.UpdateCond(ctx, flags, []byte(dkey), iods, bufs)
		return err
	}
	arr := func(akey string, n uint64, flags CondFlags) IOD {
		return IOD{Akey: []byte(akey), Type: Array, Size: 1, Recxs: []Recx{{Idx: 100, Nr: n}}, Flags: flags}
	}
	record := func(dkey string, iod IOD, data []byte) { // what an applied write of a new akey holds
		at := int(iod.Recxs[0].Idx)
		ma := &modelArray{rs: 1, data: make([]byte, at+len(data)), written: make([]bool, at+len(data))}
		copy(ma.data[at:], data)
		for i := at; i < len(ma.written); i++ {
			ma.written[i] = true
		}
		m.arrays[[2]string{dkey, string(iod.Akey)}] = ma
	}
	stripe := 4 * ecCell
	first := val(stripe + 300) // a whole stripe and a partial one: parity and replicas
	// dkey "p" on data shard 0 (and the parity shards) only
	small := arr("a", 50, 0)
	if err := update(0, "p", []IOD{small}, [][]byte{first[:50]}); err != nil {
		t.Fatal(err)
	}
	record("p", small, first[:50])
	onShard2 := IOD{Akey: []byte("q"), Type: Array, Size: 1, Recxs: []Recx{{Idx: 2*ecCell + 10, Nr: 100}}}
	for _, tc := range []struct {
		name  string
		flags CondFlags
		dkey  string
		iod   IOD
		want  daoserr.Code // 0: applied
	}{
		{"dkey insert, new dkey", CondDkeyInsert, "c", arr("a", uint64(len(first)), 0), 0},
		{"dkey insert, dkey exists", CondDkeyInsert, "c", arr("a", 500, 0), daoserr.Exist},
		{"dkey update, no such dkey", CondDkeyUpdate, "none", arr("a", 500, 0), daoserr.Nonexist},
		{"akey insert, akey exists", CondAkeyInsert, "c", arr("a", 500, 0), daoserr.Exist},
		{"akey insert, new akey (the hidden cell-size akey exists)", CondAkeyInsert, "c", arr("b", 700, 0), 0},
		{"per-akey update, no such akey", CondPerAkey, "c", arr("z", 500, CondAkeyUpdate), daoserr.Nonexist},
		{"dkey update, dkey exists", CondDkeyUpdate, "c", arr("a", 900, 0), 0},
		{"dkey update, the dkey on another data shard only", CondDkeyUpdate, "p", onShard2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := first
			if tc.iod.Recxs[0].Nr != uint64(len(first)) {
				data = val(int(tc.iod.Recxs[0].Nr))
			}
			err := update(tc.flags, tc.dkey, []IOD{tc.iod}, [][]byte{data})
			switch {
			case tc.want == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != 0 && !daoserr.Is(err, tc.want):
				t.Fatalf("got %v, want %v", err, tc.want)
			case tc.want == 0:
				if ma := m.arrays[[2]string{tc.dkey, string(tc.iod.Akey)}]; ma != nil && len(data) < len(ma.data)-100 {
					copy(ma.data[100:], data) // an overwrite of the start
				} else {
					record(tc.dkey, tc.iod, data)
				}
			}
			m.verify(t, o.Fetch, "healthy")
			for _, miss := range [][]int{{0, 1}, {4, 5}, {0, 4}} {
				m.verify(t, degraded(o, miss...), fmt.Sprintf("without positions %v", miss))
			}
			if res, err := o.Fetch(ctx, []byte("none"), []IOD{arr("a", 10, 0)}, [][]byte{make([]byte, 10)}); err != nil || len(res[0].Extents) != 0 {
				t.Fatalf("dkey \"none\" holds %v (%v): a refused conditional update wrote it", res, err)
			}
		})
	}
	// conditional punches
	if err := o.PunchDkeysCond(ctx, CondPunch, [][]byte{[]byte("none")}); !daoserr.Is(err, daoserr.Nonexist) {
		t.Fatalf("conditional punch of a missing dkey: %v, want DER_NONEXIST", err)
	}
	if err := o.PunchAkeysCond(ctx, CondPunch, []byte("c"), [][]byte{[]byte("zz")}); !daoserr.Is(err, daoserr.Nonexist) {
		t.Fatalf("conditional punch of a missing akey: %v, want DER_NONEXIST", err)
	}
	m.verify(t, degraded(o, 0, 1), "after refused punches, without positions [0 1]")
	if err := o.PunchAkeysCond(ctx, CondPunch, []byte("c"), [][]byte{[]byte("b")}); err != nil {
		t.Fatal(err)
	}
	delete(m.arrays, [2]string{"c", "b"})
	if err := o.PunchDkeysCond(ctx, CondPunch, [][]byte{[]byte("c")}); err != nil {
		t.Fatal(err)
	}
	for _, miss := range [][]int{nil, {0, 1}, {4, 5}} {
		got := make([]byte, len(first))
		res, err := degraded(o, miss...)(ctx, []byte("c"), []IOD{arr("a", uint64(len(first)), 0)}, [][]byte{got})
		if err != nil || len(res[0].Extents) != 0 || !bytes.Equal(got, make([]byte, len(first))) {
			t.Fatalf("punched dkey, without positions %v: extents %v, err %v", miss, res, err)
		}
	}
}

// TestECArray: the array model of TestArrayModel on EC objects (writes,
// record punches, truncations, sizes from the data shards), with chunks
// that span stripes.
func TestECArray(t *testing.T) {
	_, h := ecSystem(t, 3, 4)
	for _, class := range []placement.ClassID{placement.MakeClass(placement.RS2P1, 1), placement.MakeClass(placement.RS4P2, 1)} {
		t.Run(class.String(), func(t *testing.T) {
			newOID := func() (OID, error) {
				lo, err := h.NextOID(context.Background())
				return placement.MakeOID(lo, 0, class, placement.OTArray), err
			}
			checkArrayModel(t, h, newOID, 1, 3*ecCell+100, 2*(3*ecCell+100))
		})
	}
}

// TestECObjectIO: every EC class the system holds, written with random full
// and partial stripes of odd record sizes, overwritten, punched, and read
// back byte for byte healthy and with up to p shards missing (each data
// record then comes from a replica or is reconstructed).
func TestECObjectIO(t *testing.T) {
	_, h := ecSystem(t, 3, 4)
	ctx := context.Background()
	for i, class := range []placement.ClassID{
		placement.MakeClass(placement.RS2P1, 1), placement.MakeClass(placement.RS2P2, 1), placement.MakeClass(placement.RS4P1, 1),
		placement.MakeClass(placement.RS4P2, 1), placement.MakeClass(placement.RS8P2, 1), placement.MakeClass(placement.RS2P1, 3),
	} {
		t.Run(class.String(), func(t *testing.T) {
			o := ecObj(t, h, class)
			m := exercise(t, o, uint64(i), 40)
			// listings: every dkey and akey, from a parity shard
			var a Anchor
			dk, err := o.ListDkeys(ctx, &a, 100)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{}
			for k := range m.arrays {
				want[k[0]] = true
			}
			for k := range m.single {
				want[k[0]] = true
			}
			for _, d := range dk {
				delete(want, string(d))
			}
			if len(want) > 0 {
				t.Fatalf("dkeys %v not listed (listed %q)", want, dk)
			}
			// a dkey punch empties it on every shard
			if err := o.PunchDkeys(ctx, [][]byte{[]byte("d0")}); err != nil {
				t.Fatal(err)
			}
			for k := range m.arrays {
				if k[0] == "d0" {
					delete(m.arrays, k)
				}
			}
			delete(m.single, [2]string{"d0", "sv"})
			got := make([]byte, 64)
			res, err := o.Fetch(ctx, []byte("d0"), []IOD{{Akey: []byte("a1"), Type: Array, Size: 1, Recxs: []Recx{{0, 64}}}}, [][]byte{got})
			if err != nil || len(res[0].Extents) != 0 || res[0].Size != 0 {
				t.Fatalf("punched dkey: %+v %v", res, err)
			}
			m.verify(t, o.Fetch, "after punch")
		})
	}
	// A class with more shards than the pool has targets is refused.
	lo, err := h.NextOID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Obj(placement.MakeOID(lo, 0, placement.MakeClass(placement.RS16P2, 1), placement.OTMultiHashed)); err == nil {
		t.Fatal("EC_16P2 opened on 12 targets")
	}
}

// TestECDegradedExclude: targets holding data shards are excluded (and not
// rebuilt: self_heal holds it); reads see every byte, through the map's
// rebuilding shards, for one and two failures.
func TestECDegradedExclude(t *testing.T) {
	sys, h := ecSystem(t, 3, 4, "rd_fac", "2")
	ctx := context.Background()
	if _, err := sys.Admin.PoolProp(ctx, &ctlpb.PoolPropReq{Id: sys.Pool, Set: map[string]string{"self_heal": "exclude"}}); err != nil {
		t.Fatal(err)
	}
	var objs []*Obj
	var models []*ecModel
	for i, class := range []placement.ClassID{placement.MakeClass(placement.RS2P2, 1), placement.MakeClass(placement.RS4P2, 1), placement.MakeClass(placement.RS8P2, 1)} {
		o := ecObj(t, h, class)
		rng := rand.New(rand.NewPCG(uint64(i), 11))
		m := newECModel(o)
		for range 30 {
			m.randomWrite(t, rng, []string{"x", "y"}[rng.IntN(2)])
		}
		objs, models = append(objs, o), append(models, m)
	}
	// exclude the target of data shard 0, then of data shard 1, of the
	// EC_4P2 object
	l, err := objs[1].currentLayout()
	if err != nil {
		t.Fatal(err)
	}
	for step, s := range []placement.Shard{l.Shards[0], l.Shards[1]} {
		resp, err := sys.Admin.PoolTargets(ctx, &ctlpb.PoolTargetsReq{Id: sys.Pool, Op: "exclude", Rank: s.Rank, Targets: []uint32{s.Target}})
		if err == nil && resp.Error != nil {
			err = fmt.Errorf("%s", resp.Error.Msg)
		}
		if err != nil {
			t.Fatal(err)
		}
		h.Pool.refreshMap(ctx, h.Pool.CurrentMapVersion())
		for i, o := range objs {
			ol, err := o.currentLayout()
			if err != nil {
				t.Fatal(err)
			}
			lost := 0
			for _, sh := range ol.Shards {
				if sh.Rebuilding {
					lost++
				}
			}
			if lost > o.OID.Class().ParityCells() {
				continue // beyond this class
			}
			if o == objs[1] && lost != step+1 {
				t.Fatalf("EC_4P2 object: %d shards rebuilding after %d exclusions", lost, step+1)
			}
			models[i].verify(t, o.Fetch, fmt.Sprintf("%s after %d exclusions (%d shards lost)", o.OID.Class(), step+1, lost))
			// and writes keep working, degraded
			rng := rand.New(rand.NewPCG(uint64(i), uint64(step)))
			for range 10 {
				models[i].randomWrite(t, rng, "z")
			}
			models[i].verify(t, o.Fetch, "after degraded writes")
		}
	}
	// Rebuild: the lost shards are rebuilt; reads with nothing missing use
	// them, and reads with positions forced missing use the rebuilt parity.
	if _, err := sys.Admin.PoolProp(ctx, &ctlpb.PoolPropReq{Id: sys.Pool, Set: map[string]string{"self_heal": "exclude;rebuild"}}); err != nil {
		t.Fatal(err)
	}
	waitRebuilt(t, sys, "DOWNOUT")
	h.Pool.refreshMap(ctx, h.Pool.CurrentMapVersion())
	for i, o := range objs {
		k := o.OID.Class().DataCells()
		for _, miss := range [][]int{nil, {0}, {1}, {k}, {0, 1}, {k, k + 1}, {0, k + 1}} {
			models[i].verify(t, degraded(o, miss...), fmt.Sprintf("%s rebuilt, without positions %v", o.OID.Class(), miss))
		}
	}
}
