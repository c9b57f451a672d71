package ec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

var allClasses = [][2]int{{2, 1}, {2, 2}, {4, 1}, {4, 2}, {4, 3}, {8, 1}, {8, 2}, {8, 3}, {16, 1}, {16, 2}, {16, 3}}

func randomCells(r *rand.Rand, n, size int) [][]byte {
	cells := make([][]byte, n)
	for i := range cells {
		cells[i] = make([]byte, size)
		for j := range cells[i] {
			cells[i][j] = byte(r.Uint32())
		}
	}
	return cells
}

// subsets calls fn with every subset of {0..n-1} of size 1..max.
func subsets(n, max int, fn func([]int)) {
	var rec func(start int, cur []int)
	rec = func(start int, cur []int) {
		if len(cur) > 0 {
			fn(cur)
		}
		if len(cur) == max {
			return
		}
		for i := start; i < n; i++ {
			rec(i+1, append(cur, i))
		}
	}
	rec(0, nil)
}

func clone(cells [][]byte) [][]byte {
	out := make([][]byte, len(cells))
	for i, c := range cells {
		out[i] = bytes.Clone(c)
	}
	return out
}

// TestReconstructEveryLoss encodes a stripe for every class, then drops every set of
// at most p cells and checks that Reconstruct and ReconstructData give the bytes back.
func TestReconstructEveryLoss(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, kp := range allClasses {
		k, p := kp[0], kp[1]
		t.Run(fmt.Sprintf("%dP%d", k, p), func(t *testing.T) {
			c, err := CodecFor(k, p)
			if err != nil {
				t.Fatal(err)
			}
			data := randomCells(r, k, 96+r.IntN(64))
			parity := make([][]byte, p)
			if err := c.Encode(data, parity); err != nil {
				t.Fatal(err)
			}
			full := append(clone(data), clone(parity)...)
			if ok, err := c.Verify(full); !ok || err != nil {
				t.Fatalf("verify of a fresh stripe: %v %v", ok, err)
			}
			n := 0
			subsets(k+p, p, func(lost []int) {
				n++
				cells := clone(full)
				for _, i := range lost {
					cells[i] = nil
				}
				if err := c.Reconstruct(cells); err != nil {
					t.Fatalf("lost %v: %v", lost, err)
				}
				for i := range cells {
					if !bytes.Equal(cells[i], full[i]) {
						t.Fatalf("lost %v: cell %d differs", lost, i)
					}
				}
				cells = clone(full)
				for _, i := range lost {
					cells[i] = cells[i][:0] // empty with capacity: memory is reused
				}
				if err := c.ReconstructData(cells); err != nil {
					t.Fatalf("lost %v: %v", lost, err)
				}
				for i := 0; i < k; i++ {
					if !bytes.Equal(cells[i], full[i]) {
						t.Fatalf("lost %v: data cell %d differs", lost, i)
					}
				}
			})
			if n == 0 {
				t.Fatal("no loss tried")
			}
			// One more than p is data loss.
			cells := clone(full)
			for i := 0; i <= p; i++ {
				cells[i] = nil
			}
			if err := c.Reconstruct(cells); !daoserr.Is(err, daoserr.DataLoss) {
				t.Fatalf("%d lost: %v", p+1, err)
			}
			// A flipped byte fails verification.
			cells = clone(full)
			cells[k-1][3] ^= 1
			if ok, err := c.Verify(cells); ok || err != nil {
				t.Fatalf("verify of a corrupted stripe: %v %v", ok, err)
			}
		})
	}
}

// gfMul multiplies in GF(2^8) with ISA-L's polynomial x^8+x^4+x^3+x^2+1 (0x11d),
// bit by bit: a reference independent of the library's tables.
func gfMul(a, b byte) byte {
	var r byte
	for b != 0 {
		if b&1 != 0 {
			r ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1d
		}
		b >>= 1
	}
	return r
}

func gfInv(a byte) byte {
	for x := 1; x < 256; x++ {
		if gfMul(a, byte(x)) == 1 {
			return byte(x)
		}
	}
	panic("no inverse of 0")
}

// TestParityMatchesISAL checks that parity is what DAOS computes with ISA-L:
// gf_gen_cauchy1_matrix gives parity row i (i = k..k+p-1), column j the inverse of
// i xor j, and ec_encode_data sums the products over the data cells.
func TestParityMatchesISAL(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, kp := range allClasses {
		k, p := kp[0], kp[1]
		t.Run(fmt.Sprintf("%dP%d", k, p), func(t *testing.T) {
			c, _ := CodecFor(k, p)
			data := randomCells(r, k, 64)
			parity := make([][]byte, p)
			if err := c.Encode(data, parity); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < p; i++ {
				for b := 0; b < 64; b++ {
					var want byte
					for j := 0; j < k; j++ {
						want ^= gfMul(gfInv(byte(k+i)^byte(j)), data[j][b])
					}
					if parity[i][b] != want {
						t.Fatalf("parity %d byte %d = %#x, ISA-L cauchy1 gives %#x", i, b, parity[i][b], want)
					}
				}
			}
		})
	}
}

func TestCodecErrors(t *testing.T) {
	if _, err := CodecFor(3, 2); !daoserr.Is(err, daoserr.Inval) {
		t.Fatalf("3P2: %v", err)
	}
	c, _ := CodecFor(4, 2)
	if c2, _ := CodecFor(4, 2); c2 != c {
		t.Fatal("codec not cached")
	}
	cells := randomCells(rand.New(rand.NewPCG(5, 6)), 4, 32)
	for _, tc := range []struct {
		name   string
		data   [][]byte
		parity [][]byte
	}{
		{"too few data cells", cells[:3], make([][]byte, 2)},
		{"too many parity cells", cells, make([][]byte, 3)},
		{"ragged", [][]byte{cells[0], cells[1], cells[2], cells[3][:31]}, make([][]byte, 2)},
		{"empty", [][]byte{nil, nil, nil, nil}, make([][]byte, 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Encode(tc.data, tc.parity); !daoserr.Is(err, daoserr.Inval) {
				t.Fatalf("err %v", err)
			}
		})
	}
	short := [][]byte{cells[0], cells[1], nil, cells[3][:16], nil, nil}
	if err := c.Reconstruct(short); !daoserr.Is(err, daoserr.Inval) {
		t.Fatalf("ragged reconstruct: %v", err)
	}
	if _, err := c.Verify(cells); !daoserr.Is(err, daoserr.Inval) {
		t.Fatalf("verify of 4 cells: %v", err)
	}
	// A parity cell with enough capacity is reused, not reallocated.
	buf := make([]byte, 0, 64)
	parity := [][]byte{buf, nil}
	if err := c.Encode(cells, parity); err != nil || &parity[0][:1][0] != &buf[:1][0] || len(parity[1]) != 32 {
		t.Fatalf("parity reuse: %v", err)
	}
}

// TestCodecConcurrent runs one codec from many goroutines; run with -race to check.
func TestCodecConcurrent(t *testing.T) {
	c, _ := CodecFor(8, 2)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, seed))
			for i := 0; i < 20; i++ {
				data := randomCells(r, 8, 4096)
				parity := make([][]byte, 2)
				if err := c.Encode(data, parity); err != nil {
					t.Error(err)
					return
				}
				cells := append(clone(data), parity...)
				a, b := r.IntN(10), r.IntN(10)
				cells[a], cells[b] = nil, nil
				if err := c.ReconstructData(cells); err != nil {
					t.Error(err)
					return
				}
				for j := 0; j < 8; j++ {
					if !bytes.Equal(cells[j], data[j]) {
						t.Errorf("goroutine %d: cell %d differs", seed, j)
						return
					}
				}
			}
		}(uint64(g))
	}
	wg.Wait()
}
