package ec

import (
	"encoding/binary"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

// FuzzSplit feeds arbitrary geometries, extents and lost shards to the splitters: they
// must never panic, must reject bad input with a coded error, and every plan they
// return must pass the independent checker.
func FuzzSplit(f *testing.F) {
	rec := func(idx, nr uint64) []byte {
		return binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, idx), nr)
	}
	seed := func(hdr []byte, recs ...[]byte) []byte {
		for _, r := range recs {
			hdr = append(hdr, r...)
		}
		return hdr
	}
	f.Add(seed([]byte{0, 0, 3, 0}, rec(100, 8242)))
	f.Add(seed([]byte{3, 1, 5, 0x12}, rec(16374, 16404), rec(40000, 1)))
	f.Add(seed([]byte{6, 2, 7, 0x03}, rec(20000, 12773), rec(0, 20000)))
	f.Add(seed([]byte{10, 3, 1, 0x07}, rec(ParityIndicator-5, 5)))
	f.Add(seed([]byte{1, 0, 0, 0}, rec(1, 1)))
	f.Add(seed([]byte{2, 0, 1, 0}, rec(ParityIndicator|3, 1), rec(5, ^uint64(0))))
	f.Add(seed([]byte{4, 0, 2, 0}, rec(10, 10), rec(15, 10)))

	cells := []uint64{CellMin, CellMin + 32, CellMin + 16, CellMax, 0, 3 * CellMin}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 4 {
			return
		}
		var g Geometry
		if c := int(in[0]); c < len(allClasses) {
			g.K, g.P = allClasses[c][0], allClasses[c][1]
		} else {
			g.K, g.P = c%20, c/20 // mostly invalid classes
		}
		g.CellRecs = cells[int(in[1])%len(cells)]
		g.RecSize = uint64(in[2])
		lostBits := in[3]
		in = in[4:]
		var recxs []Recx
		for len(in) >= 16 && len(recxs) < 8 {
			recxs = append(recxs, Recx{binary.LittleEndian.Uint64(in), binary.LittleEndian.Uint64(in[8:])})
			in = in[16:]
		}
		var missing []int
		for i := 0; i < 8; i++ {
			if lostBits&(1<<i) != 0 {
				missing = append(missing, i)
			}
		}

		verr := g.Validate()
		total, cerr := Recx{}, error(nil)
		if verr == nil {
			var n uint64
			n, cerr = g.CheckRecxs(recxs)
			total.Nr = n
		}
		// Plans are as large as the I/O: only split what a real buffer could hold.
		if verr == nil && cerr == nil && total.Nr > 64*g.StripeRecs() {
			return
		}
		w, werr := g.SplitWrite(recxs)
		rp, rerr := g.SplitRead(recxs, missing)
		switch {
		case verr != nil || cerr != nil:
			want := verr
			if want == nil {
				want = cerr
			}
			if daoserr.CodeOf(werr) != daoserr.CodeOf(want) || daoserr.CodeOf(rerr) == 0 {
				t.Fatalf("bad input accepted or miscoded: validate %v, write %v, read %v", want, werr, rerr)
			}
			return
		case werr != nil:
			t.Fatalf("SplitWrite(%v) of good input: %v", recxs, werr)
		}
		if err := checkWrite(g, recxs, w); err != nil {
			t.Fatalf("SplitWrite(%v) with %+v: %v", recxs, g, err)
		}
		lost := 0
		for _, m := range missing {
			if m < g.Shards() {
				lost++
			}
		}
		if len(missing) != lost || lost > g.P {
			if rerr == nil {
				t.Fatalf("SplitRead accepted lost %v for %dP%d", missing, g.K, g.P)
			}
			return
		}
		if rerr != nil {
			t.Fatalf("SplitRead(%v, %v): %v", recxs, missing, rerr)
		}
		if err := checkRead(g, recxs, missing, rp); err != nil {
			t.Fatalf("SplitRead(%v, %v) with %+v: %v", recxs, missing, g, err)
		}
	})
}
