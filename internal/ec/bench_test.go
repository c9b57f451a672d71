package ec

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// The figures are data bytes per second: b.SetBytes is the k data cells of a stripe.

func BenchmarkEncode(b *testing.B) {
	for _, kp := range [][2]int{{4, 2}, {8, 2}} {
		k, p := kp[0], kp[1]
		b.Run(fmt.Sprintf("%dP%d/cell=128KiB", k, p), func(b *testing.B) {
			c, _ := CodecFor(k, p)
			data := randomCells(rand.New(rand.NewPCG(1, 1)), k, CellDefault)
			parity := make([][]byte, p)
			b.SetBytes(int64(k * CellDefault))
			for b.Loop() {
				if err := c.Encode(data, parity); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeCold encodes stripes from a 256 MiB buffer, so the data comes from
// memory rather than cache, as it does for a client writing a large buffer.
func BenchmarkEncodeCold(b *testing.B) {
	for _, kp := range [][2]int{{4, 2}, {8, 2}} {
		k, p := kp[0], kp[1]
		b.Run(fmt.Sprintf("%dP%d/cell=128KiB", k, p), func(b *testing.B) {
			c, _ := CodecFor(k, p)
			stripes := (256 << 20) / (k * CellDefault)
			big := make([]byte, stripes*k*CellDefault)
			for i := range big {
				big[i] = byte(i * 7)
			}
			data, parity := make([][]byte, k), make([][]byte, p)
			b.SetBytes(int64(k * CellDefault))
			i := 0
			for b.Loop() {
				base := (i % stripes) * k * CellDefault
				for j := range data {
					data[j] = big[base+j*CellDefault : base+(j+1)*CellDefault]
				}
				if err := c.Encode(data, parity); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkReconstructTwoLost(b *testing.B) {
	for _, kp := range [][2]int{{4, 2}, {8, 2}} {
		k, p := kp[0], kp[1]
		b.Run(fmt.Sprintf("%dP%d/cell=128KiB", k, p), func(b *testing.B) {
			c, _ := CodecFor(k, p)
			data := randomCells(rand.New(rand.NewPCG(2, 2)), k, CellDefault)
			parity := make([][]byte, p)
			if err := c.Encode(data, parity); err != nil {
				b.Fatal(err)
			}
			full := append(data, parity...)
			cells := make([][]byte, k+p)
			lost := [2][]byte{make([]byte, 0, CellDefault), make([]byte, 0, CellDefault)}
			b.SetBytes(int64(k * CellDefault))
			for b.Loop() {
				copy(cells, full)
				cells[0], cells[1] = lost[0][:0], lost[1][:0] // two data cells lost; buffers reused
				if err := c.ReconstructData(cells); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWritePlan is the client's whole EC work for an aligned 1 MiB-per-cell-set
// write: plan plus parity.
func BenchmarkWritePlan(b *testing.B) {
	g := Geometry{K: 8, P: 2, CellRecs: CellDefault, RecSize: 1}
	c, _ := CodecFor(g.K, g.P)
	buf := make([]byte, 4*g.StripeBytes())
	recxs := []Recx{{0, uint64(len(buf))}}
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		w, err := g.SplitWrite(recxs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Encode(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}
