package ec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"
)

// genGeometry draws a class, a valid cell size and a small odd or even record size.
func genGeometry(t *rapid.T) Geometry {
	kp := rapid.SampledFrom(allClasses).Draw(t, "class")
	cell := rapid.SampledFrom([]uint64{CellMin, CellMin + 32, 3 * CellMin, CellMin + 96}).Draw(t, "cell")
	rs := rapid.Uint64Range(1, 9).Draw(t, "rsize")
	return Geometry{K: kp[0], P: kp[1], CellRecs: cell, RecSize: rs}
}

// genRecxs draws disjoint extents over a few stripes (sometimes at the very end of
// the index space), some continuing each other, in a random order.
func genRecxs(t *rapid.T, g Geometry) []Recx {
	sr := g.StripeRecs()
	n := rapid.IntRange(1, 6).Draw(t, "n")
	var recxs []Recx
	var at uint64
	for i := 0; i < n; i++ {
		if !rapid.Bool().Draw(t, "touch") {
			at += rapid.Uint64Range(1, sr+3).Draw(t, "gap")
		}
		nr := rapid.OneOf(
			rapid.Uint64Range(1, 64),
			rapid.Uint64Range(1, 3*sr+5),
			rapid.SampledFrom([]uint64{g.CellRecs, sr, 2 * sr, sr - 1, sr + 1}),
		).Draw(t, "nr")
		recxs = append(recxs, Recx{at, nr})
		at += nr
	}
	if rapid.IntRange(0, 4).Draw(t, "high") == 0 { // end exactly at 2^63
		shift := ParityIndicator - at
		for i := range recxs {
			recxs[i].Idx += shift
		}
	} else {
		shift := rapid.Uint64Range(0, 2*sr).Draw(t, "shift")
		for i := range recxs {
			recxs[i].Idx += shift
		}
	}
	perm := rapid.Permutation(recxs).Draw(t, "order")
	// Keep continuing extents in order some of the time, so that coalescing happens.
	if rapid.Bool().Draw(t, "sorted") {
		return recxs
	}
	return perm
}

// TestPropertySplit: a random write or read split into per-shard pieces puts every
// record exactly once on its data shard (or in a rebuild), at the right place of the
// caller's buffer; parity shards get every record exactly once too, as a replica or
// under the parity of a full stripe.
func TestPropertySplit(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		g := genGeometry(t)
		recxs := genRecxs(t, g)
		w, err := g.SplitWrite(recxs)
		if err != nil {
			t.Fatalf("SplitWrite(%v): %v", recxs, err)
		}
		if err := checkWrite(g, recxs, w); err != nil {
			t.Fatalf("SplitWrite(%v): %v", recxs, err)
		}
		missing := rapid.SliceOfNDistinct(rapid.IntRange(0, g.Shards()-1), 0, g.P, rapid.ID[int]).Draw(t, "missing")
		rp, err := g.SplitRead(recxs, missing)
		if err != nil {
			t.Fatalf("SplitRead(%v, %v): %v", recxs, missing, err)
		}
		if err := checkRead(g, recxs, missing, rp); err != nil {
			t.Fatalf("SplitRead(%v, %v): %v", recxs, missing, err)
		}
	})
}

// store is a model of the shards of one group for one akey: each shard's records by
// its own index, data and replicas in one space, parity in another.
type store struct {
	g      Geometry
	shards []map[uint64][]byte // index -> one record
}

func newStore(g Geometry) *store {
	s := &store{g: g, shards: make([]map[uint64][]byte, g.Shards())}
	for i := range s.shards {
		s.shards[i] = map[uint64][]byte{}
	}
	return s
}

// segBytes concatenates a ShardIO's bytes.
func segBytes(io ShardIO, data []byte, parity []byte) []byte {
	var out []byte
	for _, sg := range io.Segs {
		src := data
		if sg.Src == FromParity {
			src = parity
		}
		out = append(out, src[sg.Off:sg.Off+sg.Len]...)
	}
	return out
}

func (s *store) write(w *WritePlan, data []byte, parity [][]byte) {
	for pos, io := range w.Shards {
		var pbuf []byte
		if pos >= s.g.K {
			pbuf = parity[pos-s.g.K]
		}
		b := segBytes(io, data, pbuf)
		for _, r := range io.Recxs {
			for i := uint64(0); i < r.Nr; i++ {
				s.shards[pos][r.Idx+i] = b[:s.g.RecSize:s.g.RecSize]
				b = b[s.g.RecSize:]
			}
		}
	}
}

// readCell reads a whole cell from shard pos at index idx (holes read as zeros).
func (s *store) read(pos int, r Recx) []byte {
	out := make([]byte, 0, r.Nr*s.g.RecSize)
	for i := uint64(0); i < r.Nr; i++ {
		rec, ok := s.shards[pos][r.Idx+i]
		if !ok {
			rec = make([]byte, s.g.RecSize)
		}
		out = append(out, rec...)
	}
	return out
}

// execRead runs a read plan against the store, rebuilding lost cells.
func (s *store) execRead(t *rapid.T, c *Codec, rp *ReadPlan) []byte {
	buf := make([]byte, rp.Bytes)
	for pos, io := range rp.Shards {
		var b []byte
		for _, r := range io.Recxs {
			b = append(b, s.read(pos, r)...)
		}
		for _, sg := range io.Segs {
			copy(buf[sg.Off:sg.Off+sg.Len], b)
			b = b[sg.Len:]
		}
	}
	for _, sr := range rp.Rebuild {
		cells := make([][]byte, s.g.Shards())
		for _, src := range sr.Sources {
			cells[src.Pos] = s.read(src.Pos, src.Recx)
		}
		if err := c.ReconstructData(cells); err != nil {
			t.Fatalf("stripe %d: %v", sr.Stripe, err)
		}
		if err := sr.Fill(s.g, cells, buf); err != nil {
			t.Fatal(err)
		}
	}
	return buf
}

// TestPropertyWriteThenDegradedRead writes whole stripes through a plan into a model of
// the shards, then reads random extents with up to p shards lost: the bytes must be
// the ones written, and the parity shards must hold the replicas of partial writes.
func TestPropertyWriteThenDegradedRead(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		kp := rapid.SampledFrom(allClasses).Draw(t, "class")
		g := Geometry{K: kp[0], P: kp[1], CellRecs: rapid.SampledFrom([]uint64{CellMin, CellMin + 32}).Draw(t, "cell"), RecSize: rapid.Uint64Range(1, 3).Draw(t, "rsize")}
		c, _ := CodecFor(g.K, g.P)
		st := newStore(g)
		nstripes := rapid.Uint64Range(1, 2).Draw(t, "stripes")
		first := rapid.Uint64Range(0, 3).Draw(t, "first")
		all := Recx{first * g.StripeRecs(), nstripes * g.StripeRecs()}
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 0))
		content := make([]byte, all.Nr*g.RecSize)
		for i := range content {
			content[i] = byte(r.Uint32())
		}
		w, err := g.SplitWrite([]Recx{all})
		if err != nil {
			t.Fatal(err)
		}
		if w.FullStripes != nstripes {
			t.Fatalf("%d full stripes, want %d", w.FullStripes, nstripes)
		}
		parity, err := w.Encode(c, content)
		if err != nil {
			t.Fatal(err)
		}
		st.write(w, content, parity)

		// Read random extents inside the written range with lost shards.
		n := rapid.IntRange(1, 4).Draw(t, "reads")
		var recxs []Recx
		at := all.Idx
		for i := 0; i < n && at < all.End(); i++ {
			at += rapid.Uint64Range(0, g.CellRecs).Draw(t, "gap")
			if at >= all.End() {
				break
			}
			nr := rapid.Uint64Range(1, all.End()-at).Draw(t, "nr")
			recxs = append(recxs, Recx{at, nr})
			at += nr
		}
		if len(recxs) == 0 {
			recxs = []Recx{{all.Idx, 1}}
		}
		missing := rapid.SliceOfNDistinct(rapid.IntRange(0, g.Shards()-1), 0, g.P, rapid.ID[int]).Draw(t, "missing")
		rp, err := g.SplitRead(recxs, missing)
		if err != nil {
			t.Fatal(err)
		}
		got := st.execRead(t, c, rp)
		var want []byte
		for _, rx := range recxs {
			o := (rx.Idx - all.Idx) * g.RecSize
			want = append(want, content[o:o+rx.Nr*g.RecSize]...)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("degraded read of %v with %v lost returned other bytes", recxs, missing)
		}

		// A partial write lands on its data shard and, whole, on each parity shard.
		pr := Recx{all.End() + rapid.Uint64Range(0, g.StripeRecs()).Draw(t, "pgap"), rapid.Uint64Range(1, g.StripeRecs()-1).Draw(t, "pnr")}
		pw, err := g.SplitWrite([]Recx{pr})
		if err != nil {
			t.Fatal(err)
		}
		pdata := make([]byte, pr.Nr*g.RecSize)
		for i := range pdata {
			pdata[i] = byte(r.Uint32())
		}
		pp, err := pw.Encode(c, pdata)
		if err != nil {
			t.Fatal(err)
		}
		st.write(pw, pdata, pp)
		for pos := g.K; pos < g.Shards(); pos++ {
			if !bytes.Equal(st.read(pos, pr), pdata) {
				t.Fatalf("parity shard %d lacks the replica of %v", pos, pr)
			}
		}
		rp, err = g.SplitRead([]Recx{pr}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.execRead(t, c, rp); !bytes.Equal(got, pdata) {
			t.Fatalf("read back of partial write %v differs", pr)
		}
	})
}

// TestStripeCellsRoundTrip gathers the stripes of a buffer that starts and ends inside
// stripes, encodes them, loses cells, rebuilds and scatters back.
func TestStripeCellsRoundTrip(t *testing.T) {
	for _, kp := range [][2]int{{2, 1}, {4, 2}, {8, 3}} {
		g := Geometry{K: kp[0], P: kp[1], CellRecs: CellMin, RecSize: 3}
		t.Run(fmt.Sprintf("%dP%d", g.K, g.P), func(t *testing.T) {
			c, _ := CodecFor(g.K, g.P)
			r := rand.New(rand.NewPCG(7, uint64(g.K)))
			bufIdx := g.StripeRecs() + g.CellRecs + 5      // inside cell 1 of stripe 1
			nrec := 2*g.StripeRecs() - g.CellRecs - 5 + 17 // ends 17 records into stripe 3
			buf := make([]byte, nrec*g.RecSize)
			for i := range buf {
				buf[i] = byte(r.Uint32())
			}
			orig := bytes.Clone(buf)
			for s := uint64(1); s <= 3; s++ {
				cells, padded, err := g.StripeCells(s, buf, bufIdx)
				if err != nil {
					t.Fatal(err)
				}
				if padded != (s != 2) {
					t.Fatalf("stripe %d padded %v", s, padded)
				}
				if s == 2 { // the full stripe is buf itself, not a copy
					o := (g.StripeRecx(2).Idx - bufIdx) * g.RecSize
					if &cells[0][0] != &buf[o] {
						t.Fatal("full cell was copied")
					}
				}
				if s == 1 && !bytes.Equal(cells[0], make([]byte, g.CellBytes())) {
					t.Fatal("cell outside the buffer is not zero")
				}
				parity := make([][]byte, g.P)
				if err := c.Encode(cells, parity); err != nil {
					t.Fatal(err)
				}
				all := append(cells, parity...)
				for i := 0; i < g.P; i++ { // lose the first p data cells
					all[i] = nil
				}
				// Wipe those records from buf so that scatter must restore them.
				for i := 0; i < g.P; i++ {
					lo, hi, _, some := g.overlap(g.CellRecx(s, i), buf, bufIdx)
					if some {
						clear(buf[lo:hi])
					}
				}
				if err := c.ReconstructData(all); err != nil {
					t.Fatal(err)
				}
				if err := g.ScatterCells(s, all, buf, bufIdx); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(buf, orig) {
				t.Fatal("buffer differs after gather, lose, rebuild, scatter")
			}
		})
	}
}
