package ec

import (
	"errors"
	"sync"

	"github.com/klauspost/reedsolomon"

	"github.com/godaos/godaos/internal/daoserr"
)

// Codec encodes and decodes the stripes of one EC class, EC_kPp. Cells are passed as
// [][]byte and used in place: Encode reads the data cells where they are (slices of
// the caller's buffer are fine) and writes parity into the caller's parity cells.
//
// The code is Reed-Solomon over GF(2^8) (polynomial 0x11d) with the generator DAOS
// builds with ISA-L's gf_gen_cauchy1_matrix: identity over the data rows, parity row
// i, column j = 1/((k+i) xor j). The parity bytes are therefore the ones DAOS would
// compute for the same data (checked by a test against a from-scratch GF(2^8)
// implementation of that definition).
//
// A Codec is safe for concurrent use. Get one with CodecFor, which caches them: the
// matrices are built once per (k, p).
type Codec struct {
	k, p int
	rs   reedsolomon.Encoder
}

var codecs sync.Map // [2]int{k, p} -> *Codec

// CodecFor returns the shared codec of EC_kPp.
func CodecFor(k, p int) (*Codec, error) {
	key := [2]int{k, p}
	if c, ok := codecs.Load(key); ok {
		return c.(*Codec), nil
	}
	if err := ValidateClass(k, p); err != nil {
		return nil, err
	}
	rs, err := reedsolomon.New(k, p, reedsolomon.WithCauchyMatrix())
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Inval, err, "erasure code %dP%d", k, p)
	}
	c, _ := codecs.LoadOrStore(key, &Codec{k: k, p: p, rs: rs})
	return c.(*Codec), nil
}

// K is the number of data cells per stripe.
func (c *Codec) K() int { return c.k }

// P is the number of parity cells per stripe.
func (c *Codec) P() int { return c.p }

// Encode computes the p parity cells of the k data cells. All data cells must have the
// same, non-zero length n. A parity cell that is nil or shorter than n is replaced by a
// new one (when its capacity allows, its memory is reused); the others are overwritten.
// parity must have p entries.
func (c *Codec) Encode(data, parity [][]byte) error {
	if len(data) != c.k || len(parity) != c.p {
		return daoserr.Newf(daoserr.Inval, "EC %dP%d encode: got %d data and %d parity cells", c.k, c.p, len(data), len(parity))
	}
	n := len(data[0])
	if n == 0 {
		return daoserr.Newf(daoserr.Inval, "EC %dP%d encode: empty data cell", c.k, c.p)
	}
	for i, d := range data {
		if len(d) != n {
			return daoserr.Newf(daoserr.Inval, "EC %dP%d encode: data cell %d has %d bytes, cell 0 has %d", c.k, c.p, i, len(d), n)
		}
	}
	for i := range parity {
		if cap(parity[i]) < n {
			parity[i] = make([]byte, n)
		} else {
			parity[i] = parity[i][:n]
		}
	}
	shards := make([][]byte, 0, c.k+c.p)
	shards = append(append(shards, data...), parity...)
	if err := c.rs.Encode(shards); err != nil {
		return c.wrap(err, "encode")
	}
	return nil
}

// Reconstruct fills in every missing cell of a stripe: cells has k+p entries (data
// cells, then parity cells); nil or empty means missing. Present cells must all have
// the same length. At most p cells may be missing, else the error is DER_DATA_LOSS.
func (c *Codec) Reconstruct(cells [][]byte) error {
	if err := c.checkCells(cells); err != nil {
		return err
	}
	if err := c.rs.Reconstruct(cells); err != nil {
		return c.wrap(err, "reconstruct")
	}
	return nil
}

// ReconstructData is Reconstruct for the data cells only: missing parity cells stay
// missing. It is what a degraded read needs.
func (c *Codec) ReconstructData(cells [][]byte) error {
	if err := c.checkCells(cells); err != nil {
		return err
	}
	if err := c.rs.ReconstructData(cells); err != nil {
		return c.wrap(err, "reconstruct")
	}
	return nil
}

// Verify reports whether the parity cells match the data cells. All k+p cells must be
// present and of the same length.
func (c *Codec) Verify(cells [][]byte) (bool, error) {
	if len(cells) != c.k+c.p {
		return false, daoserr.Newf(daoserr.Inval, "EC %dP%d verify: got %d cells, want %d", c.k, c.p, len(cells), c.k+c.p)
	}
	for i, cell := range cells {
		if len(cell) == 0 || len(cell) != len(cells[0]) {
			return false, daoserr.Newf(daoserr.Inval, "EC %dP%d verify: cell %d has %d bytes, cell 0 has %d", c.k, c.p, i, len(cell), len(cells[0]))
		}
	}
	ok, err := c.rs.Verify(cells)
	if err != nil {
		return false, c.wrap(err, "verify")
	}
	return ok, nil
}

// checkCells validates a stripe for reconstruction with errors that name the cell.
func (c *Codec) checkCells(cells [][]byte) error {
	if len(cells) != c.k+c.p {
		return daoserr.Newf(daoserr.Inval, "EC %dP%d reconstruct: got %d cells, want %d", c.k, c.p, len(cells), c.k+c.p)
	}
	n, missing := 0, 0
	for i, cell := range cells {
		switch {
		case len(cell) == 0:
			missing++
		case n == 0:
			n = len(cell)
		case len(cell) != n:
			return daoserr.Newf(daoserr.Inval, "EC %dP%d reconstruct: cell %d has %d bytes, others %d", c.k, c.p, i, len(cell), n)
		}
	}
	if missing > c.p {
		return daoserr.Newf(daoserr.DataLoss, "EC %dP%d: %d of %d cells are missing, at most %d can be rebuilt", c.k, c.p, missing, c.k+c.p, c.p)
	}
	return nil
}

func (c *Codec) wrap(err error, op string) error {
	code := daoserr.Inval
	if errors.Is(err, reedsolomon.ErrTooFewShards) {
		code = daoserr.DataLoss
	}
	return daoserr.Wrap(code, err, "EC %dP%d %s", c.k, c.p, op)
}
