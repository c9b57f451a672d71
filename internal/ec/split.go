package ec

import (
	"slices"
	"sort"

	"github.com/godaos/godaos/internal/daoserr"
)

// Source names the buffer a Seg points into.
type Source uint8

const (
	// FromData is the caller's I/O buffer: the records of the I/O's extents back to
	// back, in the order the extents were given (DAOS's sgl for an iod).
	FromData Source = iota
	// FromParity is a parity buffer of a WritePlan (WritePlan.Encode returns one per
	// parity shard, WritePlan.ParityBytes long).
	FromParity
)

// Seg is a byte range of a buffer.
type Seg struct {
	Src      Source
	Off, Len uint64
}

// ShardIO is what one shard of the group writes or reads: extents in that shard's own
// index space, and the bytes for them in the same order (the Segs, concatenated, are
// the records of the Recxs, concatenated). This is the iod and sgl of one shard's RPC.
type ShardIO struct {
	Recxs []Recx
	Segs  []Seg
}

// Bytes is the number of bytes the shard transfers.
func (s *ShardIO) Bytes() uint64 {
	var n uint64
	for _, g := range s.Segs {
		n += g.Len
	}
	return n
}

// add appends an extent and its bytes, merging with the previous extent and segment
// when they continue them. Extents on either side of the parity bit never merge.
func (s *ShardIO) add(r Recx, g Seg) {
	if n := len(s.Recxs); n > 0 {
		last := &s.Recxs[n-1]
		if last.End() == r.Idx && last.IsParity() == r.IsParity() {
			last.Nr += r.Nr
		} else {
			s.Recxs = append(s.Recxs, r)
		}
	} else {
		s.Recxs = append(s.Recxs, r)
	}
	if n := len(s.Segs); n > 0 {
		last := &s.Segs[n-1]
		if last.Src == g.Src && last.Off+last.Len == g.Off {
			last.Len += g.Len
			return
		}
	}
	s.Segs = append(s.Segs, g)
}

// FullRun is a run of consecutive full stripes of a write: stripes [First, First+N).
type FullRun struct {
	First, N  uint64
	Off       uint64 // byte offset of stripe First in the caller's buffer
	ParityOff uint64 // byte offset of stripe First's parity cell in each parity buffer
}

// WritePlan says how one write of an array akey is spread over the shards of its
// redundancy group (DAOS obj_ec_req_reasb for an update, cli_ec.c):
//
//   - every written record goes to its data shard, at its ShardIndex;
//   - full stripes (all k cells written by the I/O) get parity: each parity shard
//     stores the parity of a run of full stripes under ParityRecx;
//   - records of partially written stripes are also replicated, at their logical
//     index, to every parity shard, so that they survive p failures until the servers'
//     EC aggregation folds them into parity.
type WritePlan struct {
	Geometry
	// Shards is indexed by cell position: 0..k-1 data, k..k+p-1 parity. Use
	// Geometry.Shard to turn a position into a group shard when the group is rotated.
	Shards      []ShardIO
	Full        []FullRun
	FullStripes uint64 // stripes with parity, the sum of Full[i].N
	Bytes       uint64 // size of the caller's buffer: all records of the I/O
}

// ParityBytes is the size of each parity shard's buffer.
func (w *WritePlan) ParityBytes() uint64 { return w.FullStripes * w.CellBytes() }

// run is a stretch of consecutive user extents that continue each other, so both its
// records and its bytes in the caller's buffer are contiguous.
type run struct {
	Recx
	off uint64
}

// coalesce merges extents given one after the other that continue each other. DAOS
// looks for full stripes within each extent alone; merging only finds the full stripes
// that straddle two extents too, and stores the same records either way.
func coalesce(recxs []Recx, recSize uint64) []run {
	runs := make([]run, 0, len(recxs))
	var off uint64
	for _, r := range recxs {
		if n := len(runs); n > 0 && runs[n-1].End() == r.Idx {
			runs[n-1].Nr += r.Nr
		} else {
			runs = append(runs, run{Recx: r, off: off})
		}
		off += r.Nr * recSize
	}
	return runs
}

// SplitWrite plans a write of the records of recxs, whose bytes the caller holds back
// to back in one buffer. The extents are checked with CheckRecxs.
func (g Geometry) SplitWrite(recxs []Recx) (*WritePlan, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	total, err := g.CheckRecxs(recxs)
	if err != nil {
		return nil, err
	}
	w := &WritePlan{Geometry: g, Shards: make([]ShardIO, g.Shards()), Bytes: total * g.RecSize}
	sr, cb := g.StripeRecs(), g.CellBytes()
	for _, r := range coalesce(recxs, g.RecSize) {
		start := (r.Idx + sr - 1) / sr * sr // no overflow: Idx < 2^63
		end := r.End() / sr * sr
		if start >= end { // no full stripe
			g.addPartial(w, r.Recx, r.off)
			continue
		}
		if r.Idx < start {
			g.addPartial(w, Recx{r.Idx, start - r.Idx}, r.off)
		}
		first, n := start/sr, (end-start)/sr
		off := r.off + (start-r.Idx)*g.RecSize
		for s := uint64(0); s < n; s++ {
			for j := 0; j < g.K; j++ {
				cell := g.CellRecx(first+s, j)
				w.Shards[j].add(Recx{g.ShardIndex(cell.Idx), cell.Nr},
					Seg{FromData, off + s*g.StripeBytes() + uint64(j)*cb, cb})
			}
		}
		pr := g.ParityRecx(first, n)
		for j := g.K; j < g.Shards(); j++ {
			w.Shards[j].add(pr, Seg{FromParity, w.FullStripes * cb, n * cb})
		}
		w.Full = append(w.Full, FullRun{First: first, N: n, Off: off, ParityOff: w.FullStripes * cb})
		w.FullStripes += n
		if end < r.End() {
			g.addPartial(w, Recx{end, r.End() - end}, r.off+(end-r.Idx)*g.RecSize)
		}
	}
	return w, nil
}

// addPartial adds records of partially written stripes: to their data shards cell by
// cell, and whole, at their logical index, to every parity shard (DAOS
// ec_data_recx_add with add_parity).
func (g Geometry) addPartial(w *WritePlan, r Recx, off uint64) {
	for j := g.K; j < g.Shards(); j++ {
		w.Shards[j].add(r, Seg{FromData, off, r.Nr * g.RecSize})
	}
	g.eachCellPiece(r, off, func(cell int, piece Recx, off uint64) {
		w.Shards[cell].add(Recx{g.ShardIndex(piece.Idx), piece.Nr}, Seg{FromData, off, piece.Nr * g.RecSize})
	})
}

// eachCellPiece cuts r (whose bytes start at off in the caller's buffer) at cell
// boundaries and calls fn for each piece with its data cell.
func (g Geometry) eachCellPiece(r Recx, off uint64, fn func(cell int, piece Recx, off uint64)) {
	for idx, end := r.Idx, r.End(); idx < end; {
		n := min(g.CellRecs-idx%g.CellRecs, end-idx)
		fn(g.CellOf(idx), Recx{idx, n}, off)
		idx += n
		off += n * g.RecSize
	}
}

// Encode computes the parity of every full stripe of the write from buf, the caller's
// buffer (w.Bytes long). It returns one buffer per parity shard, ParityBytes long,
// holding the parity cells the plan's FromParity segments point into. The data cells
// are read in place; nothing is copied.
func (w *WritePlan) Encode(c *Codec, buf []byte) ([][]byte, error) {
	if c.K() != w.K || c.P() != w.P {
		return nil, daoserr.Newf(daoserr.Inval, "EC %dP%d codec used for a %dP%d plan", c.K(), c.P(), w.K, w.P)
	}
	if uint64(len(buf)) != w.Bytes {
		return nil, daoserr.Newf(daoserr.Inval, "EC write buffer has %d bytes, its extents %d", len(buf), w.Bytes)
	}
	cb := w.CellBytes()
	parity := make([][]byte, w.P)
	for i := range parity {
		parity[i] = make([]byte, w.ParityBytes())
	}
	data, pcells := make([][]byte, w.K), make([][]byte, w.P)
	for _, fr := range w.Full {
		for s := uint64(0); s < fr.N; s++ {
			base := fr.Off + s*w.StripeBytes()
			for j := range data {
				data[j] = buf[base+uint64(j)*cb : base+uint64(j+1)*cb]
			}
			po := fr.ParityOff + s*cb
			for i := range pcells {
				pcells[i] = parity[i][po : po+cb]
			}
			if err := c.Encode(data, pcells); err != nil {
				return nil, err
			}
		}
	}
	return parity, nil
}

// Want is a piece of a lost data cell that a degraded read must rebuild: records
// Recx (logical indexes, all in data cell Cell of one stripe), to go at byte Off of
// the caller's buffer.
type Want struct {
	Cell int
	Recx Recx
	Off  uint64
}

// CellRead is one cell a reconstruction reads: the whole cell at cell position Pos,
// stored on that shard under Recx (a data shard's ShardIndex, or a parity index).
type CellRead struct {
	Pos  int
	Recx Recx
}

// StripeRebuild is one stripe a degraded read reconstructs: read the k cells of
// Sources, put each at its position in a k+p cell set (the rest nil), call
// Codec.ReconstructData, then Fill the caller's buffer.
type StripeRebuild struct {
	Stripe  uint64
	Sources []CellRead // k cells: the surviving data cells first, then parity cells
	Wants   []Want
}

// Fill copies the wanted records from a reconstructed stripe's cells into buf.
func (sr *StripeRebuild) Fill(g Geometry, cells [][]byte, buf []byte) error {
	for _, w := range sr.Wants {
		cell := cells[w.Cell]
		if uint64(len(cell)) != g.CellBytes() {
			return daoserr.Newf(daoserr.Inval, "stripe %d cell %d has %d bytes, want %d", sr.Stripe, w.Cell, len(cell), g.CellBytes())
		}
		from := (w.Recx.Idx - g.CellRecx(sr.Stripe, w.Cell).Idx) * g.RecSize
		n := w.Recx.Nr * g.RecSize
		if w.Off+n > uint64(len(buf)) {
			return daoserr.Newf(daoserr.Inval, "read buffer has %d bytes, stripe %d needs %d", len(buf), sr.Stripe, w.Off+n)
		}
		copy(buf[w.Off:w.Off+n], cell[from:from+n])
	}
	return nil
}

// ReadPlan says where the records of one read of an array akey are (DAOS
// obj_ec_req_reasb for a fetch, and obj_ec_recov_prep for a degraded one).
type ReadPlan struct {
	Geometry
	// Shards is indexed by cell position; only data positions are ever used. The
	// segments are all FromData: where the shard's records go in the caller's buffer.
	Shards []ShardIO
	// Rebuild lists, by stripe, the records of missing data shards and how to get them.
	Rebuild []StripeRebuild
	Bytes   uint64 // size of the caller's buffer
}

// SplitRead plans a read of recxs into one buffer that receives their records back to
// back, when the cell positions in missing are unavailable. Records on available data
// shards are read from them; each stripe that has records on a missing data shard is
// rebuilt from k surviving cells. More than p missing positions is DER_DATA_LOSS.
//
// Reconstruction reads parity, and parity covers only what EC aggregation has folded
// in: records written to partial stripes since then live as replicas on the parity
// shards, at their logical index (see SplitWrite). A degraded read must fetch a Want's
// Recx from a parity shard first and rebuild only what is not there (DAOS does this by
// asking the parity shard which extents it holds as replicas).
func (g Geometry) SplitRead(recxs []Recx, missing []int) (*ReadPlan, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	total, err := g.CheckRecxs(recxs)
	if err != nil {
		return nil, err
	}
	lost := make([]bool, g.Shards())
	nlost := 0
	for _, m := range missing {
		if m < 0 || m >= g.Shards() {
			return nil, daoserr.Newf(daoserr.Inval, "missing cell position %d is not in 0..%d", m, g.Shards()-1)
		}
		if !lost[m] {
			lost[m] = true
			nlost++
		}
	}
	if nlost > g.P {
		return nil, daoserr.Newf(daoserr.DataLoss, "EC %dP%d: %d of %d shards are unavailable, at most %d can be rebuilt", g.K, g.P, nlost, g.Shards(), g.P).
			WithResolution("bring the failed targets back, or wait for rebuild")
	}
	rp := &ReadPlan{Geometry: g, Shards: make([]ShardIO, g.Shards()), Bytes: total * g.RecSize}
	rebuild := map[uint64]int{} // stripe -> index in rp.Rebuild
	for _, r := range coalesce(recxs, g.RecSize) {
		g.eachCellPiece(r.Recx, r.off, func(cell int, piece Recx, off uint64) {
			if !lost[cell] {
				rp.Shards[cell].add(Recx{g.ShardIndex(piece.Idx), piece.Nr}, Seg{FromData, off, piece.Nr * g.RecSize})
				return
			}
			s := g.StripeOf(piece.Idx)
			i, ok := rebuild[s]
			if !ok {
				i = len(rp.Rebuild)
				rebuild[s] = i
				rp.Rebuild = append(rp.Rebuild, StripeRebuild{Stripe: s, Sources: g.sources(s, lost)})
			}
			w := &rp.Rebuild[i].Wants
			if n := len(*w); n > 0 && (*w)[n-1].Cell == cell && (*w)[n-1].Recx.End() == piece.Idx &&
				(*w)[n-1].Off+(*w)[n-1].Recx.Nr*g.RecSize == off {
				(*w)[n-1].Recx.Nr += piece.Nr
			} else {
				*w = append(*w, Want{Cell: cell, Recx: piece, Off: off})
			}
		})
	}
	sort.Slice(rp.Rebuild, func(a, b int) bool { return rp.Rebuild[a].Stripe < rp.Rebuild[b].Stripe })
	return rp, nil
}

// sources picks k surviving cells of stripe s: data cells first (no decoding needed
// for them), then parity cells in order.
func (g Geometry) sources(s uint64, lost []bool) []CellRead {
	src := make([]CellRead, 0, g.K)
	for pos := 0; pos < g.Shards() && len(src) < g.K; pos++ {
		if lost[pos] {
			continue
		}
		if pos < g.K {
			c := g.CellRecx(s, pos)
			src = append(src, CellRead{Pos: pos, Recx: Recx{g.ShardIndex(c.Idx), c.Nr}})
		} else {
			src = append(src, CellRead{Pos: pos, Recx: g.ParityRecx(s, 1)})
		}
	}
	return src
}

// findOverlap reports two extents that share a record.
func findOverlap(recxs []Recx) (bool, int, int) {
	order := make([]int, len(recxs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		switch x, y := recxs[a].Idx, recxs[b].Idx; {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return a - b
	})
	for i := 1; i < len(order); i++ {
		a, b := order[i-1], order[i]
		if recxs[a].End() > recxs[b].Idx {
			return true, min(a, b), max(a, b)
		}
	}
	return false, 0, 0
}
