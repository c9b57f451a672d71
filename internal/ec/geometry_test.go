package ec

import (
	"fmt"
	"math"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

const pi = ParityIndicator

func mustGeometry(t testing.TB, k, p int, cell, rs uint64) Geometry {
	t.Helper()
	g, err := NewGeometry(k, p, cell, rs)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		name      string
		k, p      int
		cell, rs  uint64
		code      daoserr.Code
		substring string
	}{
		{"2P1 ok", 2, 1, 4096, 1, 0, ""},
		{"16P3 1MiB ok", 16, 3, 1 << 20, 1, 0, ""},
		{"not a multiple of 32 but in range is bad", 4, 2, 4096 + 16, 1, daoserr.Inval, "multiple of 32"},
		{"not a power of two is fine", 4, 2, 4096 + 32, 1, 0, ""},
		{"3P1 unknown", 3, 1, 4096, 1, daoserr.Inval, "3P1"},
		{"2P3 unknown", 2, 3, 4096, 1, daoserr.Inval, "2P3"},
		{"k 0", 0, 1, 4096, 1, daoserr.Inval, "not supported"},
		{"cell too small", 2, 1, 4064, 1, daoserr.Inval, "out of range"},
		{"cell too big", 2, 1, 1<<20 + 32, 1, daoserr.Inval, "out of range"},
		{"record size 0", 2, 1, 4096, 0, daoserr.Inval, "record size is 0"},
		{"cell of 1 GiB ok", 2, 1, 1 << 20, 1 << 10, 0, ""},
		{"cell past 1 GiB", 2, 1, 1 << 20, 1<<10 + 1, daoserr.RecSize, "cell limit"},
		{"huge record", 2, 1, 4096, math.MaxUint64, daoserr.RecSize, "cell limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewGeometry(tc.k, tc.p, tc.cell, tc.rs)
			if daoserr.CodeOf(err) != tc.code {
				t.Fatalf("error %v, want code %v", err, tc.code)
			}
			if err != nil && !contains(err.Error(), tc.substring) {
				t.Fatalf("error %q lacks %q", err, tc.substring)
			}
		})
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

func TestCheckRecxs(t *testing.T) {
	g := mustGeometry(t, 4, 2, 4096, 3)
	for _, tc := range []struct {
		name  string
		recxs []Recx
		code  daoserr.Code
	}{
		{"ok", []Recx{{0, 10}, {20, 5}}, 0},
		{"touching is ok", []Recx{{10, 10}, {0, 10}}, 0},
		{"none", nil, daoserr.Inval},
		{"empty extent", []Recx{{0, 10}, {20, 0}}, daoserr.Inval},
		{"parity bit in index", []Recx{{pi | 5, 1}}, daoserr.Inval},
		{"last user record ok", []Recx{{pi - 1, 1}}, 0},
		{"reaches 2^63", []Recx{{pi - 1, 2}}, daoserr.Overflow},
		{"uint64 overflow", []Recx{{10, math.MaxUint64}}, daoserr.Overflow},
		{"overlap", []Recx{{0, 10}, {30, 5}, {9, 2}}, daoserr.Inval},
		{"contained", []Recx{{0, 100}, {50, 1}, {200, 1}}, daoserr.Inval},
		{"too many bytes", []Recx{{0, pi / 2}}, daoserr.Overflow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := g.CheckRecxs(tc.recxs)
			if daoserr.CodeOf(err) != tc.code {
				t.Fatalf("error %v, want code %v", err, tc.code)
			}
			_, werr := g.SplitWrite(tc.recxs)
			_, rerr := g.SplitRead(tc.recxs, nil)
			if daoserr.CodeOf(werr) != tc.code || daoserr.CodeOf(rerr) != tc.code {
				t.Fatalf("SplitWrite %v, SplitRead %v, want code %v", werr, rerr, tc.code)
			}
		})
	}
}

func TestIndexMath(t *testing.T) {
	// 4P2, 4096-record cells of 5 bytes: stripe = 16384 records.
	g := mustGeometry(t, 4, 2, 4096, 5)
	if g.CellBytes() != 20480 || g.StripeRecs() != 16384 || g.StripeBytes() != 81920 || g.Shards() != 6 {
		t.Fatalf("sizes %d %d %d %d", g.CellBytes(), g.StripeRecs(), g.StripeBytes(), g.Shards())
	}
	for _, tc := range []struct {
		idx      uint64
		stripe   uint64
		cell     int
		shardIdx uint64
	}{
		{0, 0, 0, 0},
		{4095, 0, 0, 4095},
		{4096, 0, 1, 0},
		{16383, 0, 3, 4095},
		{16384, 1, 0, 4096},
		{16384 + 3*4096 + 7, 1, 3, 4096 + 7},
		{5*16384 + 2*4096 + 1, 5, 2, 5*4096 + 1},
	} {
		t.Run(fmt.Sprint(tc.idx), func(t *testing.T) {
			if s, c, v := g.StripeOf(tc.idx), g.CellOf(tc.idx), g.ShardIndex(tc.idx); s != tc.stripe || c != tc.cell || v != tc.shardIdx {
				t.Fatalf("stripe %d cell %d shard index %d", s, c, v)
			}
			if back, ok := g.LogicalIndex(tc.cell, tc.shardIdx); !ok || back != tc.idx {
				t.Fatalf("LogicalIndex = %d, %v", back, ok)
			}
		})
	}
	if r := g.ParityRecx(3, 2); r != (Recx{pi | 3*4096, 8192}) {
		t.Fatalf("ParityRecx(3, 2) = %v", r)
	}
	if s, ok := g.ParityStripe(pi | 3*4096 + 100); !ok || s != 3 {
		t.Fatalf("ParityStripe = %d %v", s, ok)
	}
	if _, ok := g.ParityStripe(100); ok {
		t.Fatal("ParityStripe accepted a data index")
	}
	if _, ok := g.LogicalIndex(0, pi|1); ok {
		t.Fatal("LogicalIndex accepted a parity index")
	}
	if _, ok := g.LogicalIndex(3, pi-1); ok {
		t.Fatal("LogicalIndex accepted an index whose logical index passes 2^63")
	}
	if r := g.CellRecx(2, 1); r != (Recx{2*16384 + 4096, 4096}) {
		t.Fatalf("CellRecx(2, 1) = %v", r)
	}
}

func TestRotation(t *testing.T) {
	g := mustGeometry(t, 4, 2, 4096, 1)
	if GroupStart(0, 12345, 6) != 0 {
		t.Fatal("layout version 0 must not rotate")
	}
	start := GroupStart(1, 12345, 6)
	if start != 12345%6 {
		t.Fatalf("start %d", start)
	}
	seen := map[int]bool{}
	for pos := 0; pos < 6; pos++ {
		sh := g.Shard(pos, start)
		if sh != (start+pos)%6 || g.Position(sh, start) != pos || seen[sh] {
			t.Fatalf("pos %d -> shard %d -> pos %d", pos, sh, g.Position(sh, start))
		}
		seen[sh] = true
	}
	if g.Shard(5, 0) != 5 || g.Shard(0, 3) != 3 || g.Shard(4, 3) != 1 {
		t.Fatal("rotation arithmetic")
	}
}

// d and p make expected segments short to write.
func d(off, n uint64) Seg { return Seg{FromData, off, n} }
func p(off, n uint64) Seg { return Seg{FromParity, off, n} }

func TestSplitWriteTable(t *testing.T) {
	type shard struct {
		recxs []Recx
		segs  []Seg
	}
	for _, tc := range []struct {
		name   string
		g      Geometry
		recxs  []Recx
		shards []shard
		full   []FullRun
	}{
		{
			// 2P1, 4096 records of 3 bytes per cell, stripe 8192 records.
			// [100, 8342) has no full stripe: replicated whole to the parity shard.
			// Cell 0 gets [100, 4096) and [8192, 8342) (stripe 1), which are
			// adjacent in its index space (100..4095, 4096..4245): one extent.
			name:  "2P1 rsize 3 partial",
			g:     Geometry{2, 1, 4096, 3},
			recxs: []Recx{{100, 8242}},
			shards: []shard{
				{[]Recx{{100, 4146}}, []Seg{d(0, 3996*3), d(8092*3, 150*3)}},
				{[]Recx{{0, 4096}}, []Seg{d(3996*3, 4096*3)}},
				{[]Recx{{100, 8242}}, []Seg{d(0, 8242*3)}},
			},
		},
		{
			// 4P2, cell 4096 records of 5 bytes, stripe 16384.
			// [16374, 32778): head of 10 records (stripe 0, cell 3), stripe 1 full,
			// tail of 10 records (stripe 2, cell 0).
			name:  "4P2 rsize 5 head full tail",
			g:     Geometry{4, 2, 4096, 5},
			recxs: []Recx{{16374, 16404}},
			shards: []shard{
				{[]Recx{{4096, 4106}}, []Seg{d(50, 20480), d(81970, 50)}},
				{[]Recx{{4096, 4096}}, []Seg{d(50+20480, 20480)}},
				{[]Recx{{4096, 4096}}, []Seg{d(50+2*20480, 20480)}},
				{[]Recx{{4086, 4106}}, []Seg{d(0, 50), d(50+3*20480, 20480)}},
				{[]Recx{{16374, 10}, {pi | 4096, 4096}, {32768, 10}}, []Seg{d(0, 50), p(0, 20480), d(81970, 50)}},
				{[]Recx{{16374, 10}, {pi | 4096, 4096}, {32768, 10}}, []Seg{d(0, 50), p(0, 20480), d(81970, 50)}},
			},
			full: []FullRun{{First: 1, N: 1, Off: 50, ParityOff: 0}},
		},
		{
			// 8P2, cell 4096 records of 7 bytes, stripe 32768. Two extents that
			// continue each other make stripe 0 full between them; 5 records spill
			// into stripe 1 (cell 0, shard index 4096, adjacent to 0..4095).
			name:  "8P2 rsize 7 two extents make a full stripe",
			g:     Geometry{8, 2, 4096, 7},
			recxs: []Recx{{0, 20000}, {20000, 12773}},
			shards: []shard{
				{[]Recx{{0, 4101}}, []Seg{d(0, 28672), d(32768*7, 35)}},
				{[]Recx{{0, 4096}}, []Seg{d(1*28672, 28672)}},
				{[]Recx{{0, 4096}}, []Seg{d(2*28672, 28672)}},
				{[]Recx{{0, 4096}}, []Seg{d(3*28672, 28672)}},
				{[]Recx{{0, 4096}}, []Seg{d(4*28672, 28672)}},
				{[]Recx{{0, 4096}}, []Seg{d(5*28672, 28672)}},
				{[]Recx{{0, 4096}}, []Seg{d(6*28672, 28672)}},
				{[]Recx{{0, 4096}}, []Seg{d(7*28672, 28672)}},
				{[]Recx{{pi, 4096}, {32768, 5}}, []Seg{p(0, 28672), d(32768*7, 35)}},
				{[]Recx{{pi, 4096}, {32768, 5}}, []Seg{p(0, 28672), d(32768*7, 35)}},
			},
			full: []FullRun{{First: 0, N: 1, Off: 0, ParityOff: 0}},
		},
		{
			// 2P1 rsize 1, three full stripes [8192, 32768) written out of order
			// after a small extent: parity is one extent of 3 cells.
			name:  "2P1 three full stripes",
			g:     Geometry{2, 1, 4096, 1},
			recxs: []Recx{{1, 2}, {8192, 24576}},
			shards: []shard{
				{[]Recx{{1, 2}, {4096, 3 * 4096}}, []Seg{d(0, 2+4096), d(2+8192, 4096), d(2+16384, 4096)}},
				{[]Recx{{4096, 3 * 4096}}, []Seg{d(2+4096, 4096), d(2+4096+8192, 4096), d(2+4096+16384, 4096)}},
				{[]Recx{{1, 2}, {pi | 4096, 3 * 4096}}, []Seg{d(0, 2), p(0, 3*4096)}},
			},
			full: []FullRun{{First: 1, N: 3, Off: 2, ParityOff: 0}},
		},
		{
			// Parity and a replica that ends at 2^63 must not merge: the replica
			// ends where the parity index space begins.
			name:  "2P1 last records of the index space",
			g:     Geometry{2, 1, 4096, 1},
			recxs: []Recx{{pi - 2, 2}},
			shards: []shard{
				{nil, nil},
				{[]Recx{{(pi-1)/8192*4096 + 4094, 2}}, []Seg{d(0, 2)}},
				{[]Recx{{pi - 2, 2}}, []Seg{d(0, 2)}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := tc.g.SplitWrite(tc.recxs)
			if err != nil {
				t.Fatal(err)
			}
			for j, want := range tc.shards {
				got := w.Shards[j]
				if fmt.Sprint(got.Recxs) != fmt.Sprint(want.recxs) || fmt.Sprint(got.Segs) != fmt.Sprint(want.segs) {
					t.Errorf("shard %d:\n got %v %v\nwant %v %v", j, got.Recxs, got.Segs, want.recxs, want.segs)
				}
			}
			if fmt.Sprint(w.Full) != fmt.Sprint(tc.full) {
				t.Errorf("full runs %+v, want %+v", w.Full, tc.full)
			}
			if err := checkWrite(tc.g, tc.recxs, w); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSplitReadTable(t *testing.T) {
	g := Geometry{4, 2, 4096, 5} // stripe 16384
	recxs := []Recx{{4000, 200}} // cell 0 [4000,4096) and cell 1 [4096,4200)
	t.Run("healthy", func(t *testing.T) {
		rp, err := g.SplitRead(recxs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(rp.Shards[0].Recxs, rp.Shards[0].Segs, rp.Shards[1].Recxs, rp.Shards[1].Segs) !=
			fmt.Sprint([]Recx{{4000, 96}}, []Seg{d(0, 480)}, []Recx{{0, 104}}, []Seg{d(480, 520)}) || len(rp.Rebuild) != 0 {
			t.Fatalf("plan %+v", rp)
		}
		if err := checkRead(g, recxs, nil, rp); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("cell 1 and parity 4 lost", func(t *testing.T) {
		rp, err := g.SplitRead(recxs, []int{1, 4, 1})
		if err != nil {
			t.Fatal(err)
		}
		want := []StripeRebuild{{
			Stripe:  0,
			Sources: []CellRead{{0, Recx{0, 4096}}, {2, Recx{0, 4096}}, {3, Recx{0, 4096}}, {5, Recx{pi, 4096}}},
			Wants:   []Want{{Cell: 1, Recx: Recx{4096, 104}, Off: 480}},
		}}
		if fmt.Sprint(rp.Rebuild) != fmt.Sprint(want) || len(rp.Shards[1].Recxs) != 0 {
			t.Fatalf("rebuild %+v", rp.Rebuild)
		}
		if err := checkRead(g, recxs, []int{1, 4}, rp); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("too many lost", func(t *testing.T) {
		_, err := g.SplitRead(recxs, []int{0, 1, 5})
		if !daoserr.Is(err, daoserr.DataLoss) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("bad position", func(t *testing.T) {
		_, err := g.SplitRead(recxs, []int{6})
		if !daoserr.Is(err, daoserr.Inval) {
			t.Fatalf("err %v", err)
		}
	})
}
