package ec

import "github.com/godaos/godaos/internal/daoserr"

// StripeCells returns the k data cells of stripe s, taken from buf, which holds the
// records starting at logical index bufIdx back to back (buf[0] is the first byte of
// record bufIdx). A cell wholly inside buf is a slice of buf: no copy. A cell partly
// inside is a new zeroed cell with the covered bytes copied in; a cell wholly outside
// is a new zeroed cell. Zero is what a never-written record reads as (a hole), so a
// stripe padded this way encodes to the parity of what a reader sees. padded reports
// whether any cell had to be allocated.
//
// Use it to encode a stripe at the edge of a buffer, or to assemble the stripe that
// aggregation re-encodes; WritePlan.Encode covers the common case of full stripes.
func (g Geometry) StripeCells(s uint64, buf []byte, bufIdx uint64) (cells [][]byte, padded bool, err error) {
	if err := g.checkBuf(buf, bufIdx); err != nil {
		return nil, false, err
	}
	cb := g.CellBytes()
	cells = make([][]byte, g.K)
	for j := range cells {
		c := g.CellRecx(s, j)
		lo, hi, inside, some := g.overlap(c, buf, bufIdx)
		if inside {
			cells[j] = buf[lo:hi:hi]
			continue
		}
		padded = true
		cells[j] = make([]byte, cb)
		if some {
			at := (max(c.Idx, bufIdx) - c.Idx) * g.RecSize
			copy(cells[j][at:], buf[lo:hi])
		}
	}
	return cells, padded, nil
}

// ScatterCells copies the records of stripe s's data cells (k or k+p cells, as
// Codec.ReconstructData leaves them) that fall inside buf back into buf, laid out as
// for StripeCells. Cells that are already slices of buf at their place are skipped, so
// after reconstructing a stripe gathered with StripeCells only the rebuilt cells are
// copied.
func (g Geometry) ScatterCells(s uint64, cells [][]byte, buf []byte, bufIdx uint64) error {
	if err := g.checkBuf(buf, bufIdx); err != nil {
		return err
	}
	if len(cells) < g.K {
		return daoserr.Newf(daoserr.Inval, "scatter of stripe %d: %d cells, want at least %d", s, len(cells), g.K)
	}
	cb := g.CellBytes()
	for j := 0; j < g.K; j++ {
		c := g.CellRecx(s, j)
		lo, hi, _, some := g.overlap(c, buf, bufIdx)
		if !some {
			continue
		}
		if uint64(len(cells[j])) != cb {
			return daoserr.Newf(daoserr.Inval, "scatter of stripe %d: cell %d has %d bytes, want %d", s, j, len(cells[j]), cb)
		}
		at := (max(c.Idx, bufIdx) - c.Idx) * g.RecSize
		src := cells[j][at : at+(hi-lo)]
		if &src[0] == &buf[lo] {
			continue // the cell is buf itself
		}
		copy(buf[lo:hi], src)
	}
	return nil
}

// checkBuf checks that buf holds whole records and stays in the user index space.
func (g Geometry) checkBuf(buf []byte, bufIdx uint64) error {
	if uint64(len(buf))%g.RecSize != 0 {
		return daoserr.Newf(daoserr.Inval, "buffer of %d bytes does not hold whole %d-byte records", len(buf), g.RecSize)
	}
	if n := uint64(len(buf)) / g.RecSize; bufIdx&ParityIndicator != 0 || n > ParityIndicator-bufIdx {
		return daoserr.Newf(daoserr.Overflow, "buffer at index %d with %d records reaches past 2^63", bufIdx, n)
	}
	return nil
}

// overlap is the byte range [lo, hi) of buf that holds records of extent c, whether
// that covers all of c (inside) and whether it is non-empty (some).
func (g Geometry) overlap(c Recx, buf []byte, bufIdx uint64) (lo, hi uint64, inside, some bool) {
	bufEnd := bufIdx + uint64(len(buf))/g.RecSize
	from, to := max(c.Idx, bufIdx), min(c.End(), bufEnd)
	if from >= to {
		return 0, 0, false, false
	}
	lo, hi = (from-bufIdx)*g.RecSize, (to-bufIdx)*g.RecSize
	return lo, hi, from == c.Idx && to == c.End(), true
}
