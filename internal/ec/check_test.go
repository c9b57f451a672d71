package ec

import (
	"fmt"
	"sort"
)

// This file holds an independent checker of plans, used by the table, property and
// fuzz tests: it maps every byte a plan sends to a shard back to the logical record it
// claims to be and to the place of that record in the caller's buffer, and checks
// that the pieces tile the I/O exactly.

// layout maps logical records to their place in the caller's buffer.
type layout struct {
	runs []run // coalesced, sorted by index
	rs   uint64
}

func newLayout(recxs []Recx, rs uint64) layout {
	var runs []run
	var off uint64
	for _, r := range recxs {
		if n := len(runs); n > 0 && runs[n-1].Idx+runs[n-1].Nr == r.Idx {
			runs[n-1].Nr += r.Nr
		} else {
			runs = append(runs, run{Recx: r, off: off})
		}
		off += r.Nr * rs
	}
	sort.Slice(runs, func(a, b int) bool { return runs[a].Idx < runs[b].Idx })
	return layout{runs, rs}
}

// find returns the run holding all of [idx, idx+nr).
func (l layout) find(idx, nr uint64) (run, bool) {
	i := sort.Search(len(l.runs), func(i int) bool { return l.runs[i].Idx+l.runs[i].Nr > idx })
	if i == len(l.runs) || l.runs[i].Idx > idx || idx+nr > l.runs[i].Idx+l.runs[i].Nr {
		return run{}, false
	}
	return l.runs[i], true
}

func (l layout) off(idx, nr uint64) (uint64, bool) {
	r, ok := l.find(idx, nr)
	if !ok {
		return 0, false
	}
	return r.off + (idx-r.Idx)*l.rs, true
}

func (l layout) total() uint64 {
	var n uint64
	for _, r := range l.runs {
		n += r.Nr
	}
	return n
}

type chunk struct {
	r   Recx
	seg Seg
}

// chunks pairs a shard's extents with its bytes, cutting at segment ends, extent ends
// and cell boundaries of the shard's index space.
func chunks(io ShardIO, g Geometry) ([]chunk, error) {
	var recs, bytes uint64
	for _, r := range io.Recxs {
		if r.Nr == 0 {
			return nil, fmt.Errorf("empty extent %v", r)
		}
		recs += r.Nr
	}
	for _, s := range io.Segs {
		if s.Len == 0 || s.Len%g.RecSize != 0 {
			return nil, fmt.Errorf("segment %+v is not whole records", s)
		}
		bytes += s.Len
	}
	if recs*g.RecSize != bytes {
		return nil, fmt.Errorf("%d records but %d bytes", recs, bytes)
	}
	var out []chunk
	ri, si := 0, 0
	var rdone, sdone uint64 // records consumed of Recxs[ri], bytes of Segs[si]
	for ri < len(io.Recxs) {
		r, s := io.Recxs[ri], io.Segs[si]
		idx := r.Idx + rdone
		n := min(r.Nr-rdone, (s.Len-sdone)/g.RecSize, g.CellRecs-(idx&^ParityIndicator)%g.CellRecs)
		out = append(out, chunk{Recx{idx, n}, Seg{s.Src, s.Off + sdone, n * g.RecSize}})
		rdone += n
		sdone += n * g.RecSize
		if rdone == r.Nr {
			ri, rdone = ri+1, 0
		}
		if sdone == s.Len {
			si, sdone = si+1, 0
		}
	}
	return out, nil
}

// tiles checks that intervals cover exactly the records of l, each once.
func tiles(iv []Recx, l layout) error {
	sort.Slice(iv, func(a, b int) bool { return iv[a].Idx < iv[b].Idx })
	var sum uint64
	for i, r := range iv {
		if i > 0 && iv[i-1].End() > r.Idx {
			return fmt.Errorf("records %v and %v overlap", iv[i-1], r)
		}
		if _, ok := l.find(r.Idx, r.Nr); !ok {
			return fmt.Errorf("records %v are not part of the I/O", r)
		}
		sum += r.Nr
	}
	if sum != l.total() {
		return fmt.Errorf("%d records placed, the I/O has %d", sum, l.total())
	}
	return nil
}

// checkData checks a data shard's pieces and appends the logical records it holds.
func checkData(g Geometry, l layout, cell int, io ShardIO, cover []Recx) ([]Recx, error) {
	cs, err := chunks(io, g)
	if err != nil {
		return nil, fmt.Errorf("data shard %d: %w", cell, err)
	}
	for _, c := range cs {
		logical, ok := g.LogicalIndex(cell, c.r.Idx)
		if !ok {
			return nil, fmt.Errorf("data shard %d: index %#x is no user index", cell, c.r.Idx)
		}
		if g.CellOf(logical) != cell {
			return nil, fmt.Errorf("data shard %d holds record %d of cell %d", cell, logical, g.CellOf(logical))
		}
		off, ok := l.off(logical, c.r.Nr)
		if !ok || c.seg.Src != FromData || c.seg.Off != off {
			return nil, fmt.Errorf("data shard %d: records [%d,+%d) sent from %+v, they are at %d (in I/O: %v)", cell, logical, c.r.Nr, c.seg, off, ok)
		}
		cover = append(cover, Recx{logical, c.r.Nr})
	}
	return cover, nil
}

// checkWrite checks a write plan against the extents it was made from.
func checkWrite(g Geometry, recxs []Recx, w *WritePlan) error {
	l := newLayout(recxs, g.RecSize)
	if w.Bytes != l.total()*g.RecSize || len(w.Shards) != g.Shards() {
		return fmt.Errorf("plan has %d bytes and %d shards", w.Bytes, len(w.Shards))
	}
	var cover []Recx
	var err error
	for j := 0; j < g.K; j++ {
		if cover, err = checkData(g, l, j, w.Shards[j], cover); err != nil {
			return err
		}
	}
	if err := tiles(cover, l); err != nil {
		return fmt.Errorf("data shards: %w", err)
	}
	// Full runs: stripes entirely written, parity placed contiguously.
	full := map[uint64]uint64{} // stripe -> parity offset
	var nfull uint64
	sr, cb := g.StripeRecs(), g.CellBytes()
	for _, fr := range w.Full {
		if fr.N == 0 || fr.ParityOff != nfull*cb {
			return fmt.Errorf("full run %+v after %d stripes", fr, nfull)
		}
		off, ok := l.off(fr.First*sr, fr.N*sr)
		if !ok || off != fr.Off {
			return fmt.Errorf("full run %+v is not written by the I/O (or not at %d)", fr, off)
		}
		for s := fr.First; s < fr.First+fr.N; s++ {
			if _, dup := full[s]; dup {
				return fmt.Errorf("stripe %d is full twice", s)
			}
			full[s] = fr.ParityOff + (s-fr.First)*cb
		}
		nfull += fr.N
	}
	if nfull != w.FullStripes {
		return fmt.Errorf("FullStripes %d, runs hold %d", w.FullStripes, nfull)
	}
	for j := g.K; j < g.Shards(); j++ {
		if fmt.Sprint(w.Shards[j]) != fmt.Sprint(w.Shards[g.K]) {
			return fmt.Errorf("parity shards %d and %d differ", g.K, j)
		}
	}
	if g.P == 0 {
		return nil
	}
	cs, err := chunks(w.Shards[g.K], g)
	if err != nil {
		return fmt.Errorf("parity shard: %w", err)
	}
	var pcover []Recx
	seen := map[uint64]uint64{} // stripe -> parity records seen
	for _, c := range cs {
		if c.r.IsParity() {
			s, _ := g.ParityStripe(c.r.Idx)
			po, ok := full[s]
			at := (c.r.Idx &^ ParityIndicator) % g.CellRecs
			if !ok || c.seg.Src != FromParity || c.seg.Off != po+at*g.RecSize {
				return fmt.Errorf("parity %v of stripe %d sent from %+v (full: %v)", c.r, s, c.seg, ok)
			}
			seen[s] += c.r.Nr
			continue
		}
		off, ok := l.off(c.r.Idx, c.r.Nr)
		if !ok || c.seg.Src != FromData || c.seg.Off != off {
			return fmt.Errorf("replica %v sent from %+v, it is at %d (in I/O: %v)", c.r, c.seg, off, ok)
		}
		// A replica is only for stripes the I/O does not write whole.
		run, _ := l.find(c.r.Idx, c.r.Nr)
		for _, s := range []uint64{g.StripeOf(c.r.Idx), g.StripeOf(c.r.End() - 1)} {
			st := g.StripeRecx(s)
			if r2, ok := l.find(st.Idx, st.Nr); ok && r2.Idx == run.Idx {
				return fmt.Errorf("replica %v is in stripe %d, which the I/O writes whole", c.r, s)
			}
		}
		pcover = append(pcover, c.r)
	}
	for s := range full {
		if seen[s] != g.CellRecs {
			return fmt.Errorf("stripe %d: %d parity records, want %d", s, seen[s], g.CellRecs)
		}
		pcover = append(pcover, g.StripeRecx(s))
	}
	if err := tiles(pcover, l); err != nil {
		return fmt.Errorf("parity shards (replicas + full stripes): %w", err)
	}
	return nil
}

// checkRead checks a read plan against its extents and the missing positions.
func checkRead(g Geometry, recxs []Recx, missing []int, rp *ReadPlan) error {
	l := newLayout(recxs, g.RecSize)
	lost := map[int]bool{}
	for _, m := range missing {
		lost[m] = true
	}
	var cover []Recx
	var err error
	for j := 0; j < g.Shards(); j++ {
		io := rp.Shards[j]
		if (j >= g.K || lost[j]) && (len(io.Recxs) > 0 || len(io.Segs) > 0) {
			return fmt.Errorf("read from shard %d (parity or lost)", j)
		}
		if j < g.K && !lost[j] {
			if cover, err = checkData(g, l, j, io, cover); err != nil {
				return err
			}
		}
	}
	for i, sr := range rp.Rebuild {
		if i > 0 && rp.Rebuild[i-1].Stripe >= sr.Stripe {
			return fmt.Errorf("rebuilds not sorted by stripe")
		}
		if len(sr.Sources) != g.K {
			return fmt.Errorf("stripe %d rebuilt from %d cells", sr.Stripe, len(sr.Sources))
		}
		used := map[int]bool{}
		for _, src := range sr.Sources {
			if lost[src.Pos] || used[src.Pos] || src.Pos < 0 || src.Pos >= g.Shards() {
				return fmt.Errorf("stripe %d source %+v", sr.Stripe, src)
			}
			used[src.Pos] = true
			want := g.ParityRecx(sr.Stripe, 1)
			if src.Pos < g.K {
				c := g.CellRecx(sr.Stripe, src.Pos)
				want = Recx{g.ShardIndex(c.Idx), c.Nr}
			}
			if src.Recx != want {
				return fmt.Errorf("stripe %d source %+v, want %v", sr.Stripe, src, want)
			}
		}
		for _, w := range sr.Wants {
			if !lost[w.Cell] || g.StripeOf(w.Recx.Idx) != sr.Stripe || g.CellOf(w.Recx.Idx) != w.Cell || g.CellOf(w.Recx.End()-1) != w.Cell || g.StripeOf(w.Recx.End()-1) != sr.Stripe {
				return fmt.Errorf("stripe %d want %+v", sr.Stripe, w)
			}
			off, ok := l.off(w.Recx.Idx, w.Recx.Nr)
			if !ok || off != w.Off {
				return fmt.Errorf("want %+v: records are at %d (in I/O: %v)", w, off, ok)
			}
			cover = append(cover, w.Recx)
		}
	}
	return tiles(cover, l)
}
