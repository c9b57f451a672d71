package vos

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
)

// Go benchmarks of the hot paths; vos_perf is the full benchmark with raw baselines.

func benchPool(b *testing.B, dir string) *Pool {
	b.Helper()
	if err := Format(dir, FormatOptions{ScmSize: 4 << 30, NvmeSize: 4 << 30}); err != nil {
		b.Fatal(err)
	}
	p, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	if err := p.CreateContainer(tCont, ContOptions{}); err != nil {
		b.Fatal(err)
	}
	p.WaitBackground() // the first log segments' zero fill is set-up, not the benchmark
	b.ResetTimer()
	return p
}

func BenchmarkUpdateSingle(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(itoa(uint64(size)), func(b *testing.B) {
			p := benchPool(b, b.TempDir())
			val := make([]byte, size)
			var n atomic.Uint64
			b.SetBytes(int64(size))
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				key := make([]byte, 8)
				oid := OID{Lo: n.Add(1 << 32)}
				for i := uint64(1); pb.Next(); i++ {
					binary.LittleEndian.PutUint64(key, i)
					if err := p.Update(tCont, oid, i, 0, key, []IOD{{Akey: []byte("a"), Type: IODSingle, Size: uint64(size)}}, []SGL{{val}}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func BenchmarkFetchSingle(b *testing.B) {
	p := benchPool(b, b.TempDir())
	val := make([]byte, 64)
	key := make([]byte, 8)
	const n = 100000
	for i := uint64(1); i <= n; i++ {
		binary.LittleEndian.PutUint64(key, i)
		if err := p.Update(tCont, tOID, 1, 0, key, []IOD{{Akey: []byte("a"), Type: IODSingle, Size: 64}}, []SGL{{val}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := make([]byte, 8)
		buf := make([]byte, 64)
		iods := []IOD{{Akey: []byte("a"), Type: IODSingle, Size: 64}}
		sgls := []SGL{{buf}}
		for i := uint64(0); pb.Next(); i++ {
			binary.LittleEndian.PutUint64(key, i%n+1)
			if _, err := p.Fetch(tCont, tOID, EpochMax, 0, key, iods, sgls); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkFetchArray1M(b *testing.B) {
	p := benchPool(b, b.TempDir())
	data := make([]byte, 1<<20)
	const n = 64
	for i := uint64(0); i < n; i++ {
		iod := IOD{Akey: []byte("x"), Type: IODArray, Size: 1, Recxs: []Recx{{0, 1 << 20}}}
		if err := p.Update(tCont, tOID, 1, 0, []byte{byte(i)}, []IOD{iod}, []SGL{{data}}); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		iod := IOD{Akey: []byte("x"), Type: IODArray, Size: 1, Recxs: []Recx{{0, 1 << 20}}}
		if _, err := p.Fetch(tCont, tOID, EpochMax, 0, []byte{byte(i % n)}, []IOD{iod}, []SGL{{buf}}); err != nil {
			b.Fatal(err)
		}
	}
}
