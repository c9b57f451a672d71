package vosperf

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/godaos/godaos/server/vos"
)

// MemRow is the index's heap cost of n values (or extents) of ValueSize bytes:
// the growth of the Go heap while inserting them into a fresh target, less the
// values' own bytes. The data stays in the SCM tier (in memory) since ValueSize is
// below data_thresh, so what remains is keys, tree nodes, record headers and
// checksums.
type MemRow struct {
	Type      string `json:"type"`
	Count     int    `json:"count"`
	ValueSize uint64 `json:"value_size"`
	Objects   int    `json:"objects"`
	// HeapInuse and HeapAlloc growth (runtime.MemStats, after runtime.GC).
	HeapInuseDelta int64  `json:"heap_inuse_delta"`
	HeapAllocDelta int64  `json:"heap_alloc_delta"`
	DataBytes      uint64 `json:"data_bytes"`
	// Overhead per value or extent: (HeapInuseDelta - DataBytes) / Count, and the
	// same from HeapAlloc (live objects only, without span fragmentation).
	BytesPerItem      float64 `json:"bytes_per_item"`
	AllocBytesPerItem float64 `json:"alloc_bytes_per_item"`
}

// memory inserts n 64-byte single values (one dkey each) or n 64-byte array
// extents (1-byte records, 1 MiB chunk per dkey) into a fresh target, from
// several writers with an object each, and measures the heap they keep.
func (r *runner) memory(ctx context.Context, typ vos.IODType, n int) (MemRow, error) {
	const writers = 128
	c := min(writers, n)
	row := MemRow{Type: typ.String(), Count: n, ValueSize: memValueSize, Objects: c, DataBytes: uint64(n) * memValueSize}
	t, err := r.newTarget(n, memValueSize)
	if err != nil {
		return row, err
	}
	defer r.closeTarget(t)
	l := layout{typ: typ, size: memValueSize}
	data := r.pattern(memValueSize)
	r.progress("index memory: %d %v values of %d bytes", n, typ, memValueSize)

	var failed atomic.Pointer[error]
	t.pool.WaitBackground()
	before := heap()
	// No per-op bookkeeping here: everything the writers allocate is garbage by
	// the time the heap is measured again.
	var wg sync.WaitGroup
	for w := range c {
		wg.Go(func() {
			update := t.updater(l, data)(w)
			for k := range share(n, c, w) {
				if failed.Load() != nil || ctx.Err() != nil {
					return
				}
				if err := update(item{w, uint64(k)}); err != nil {
					failed.Store(&err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.pool.WaitBackground()
	after := heap()
	runtime.KeepAlive(t.pool)
	if e := failed.Load(); e != nil {
		return row, *e
	}
	if err := ctx.Err(); err != nil {
		return row, err
	}
	row.HeapInuseDelta = int64(after.HeapInuse) - int64(before.HeapInuse)
	row.HeapAllocDelta = int64(after.HeapAlloc) - int64(before.HeapAlloc)
	row.BytesPerItem = float64(row.HeapInuseDelta-int64(row.DataBytes)) / float64(n)
	row.AllocBytesPerItem = float64(row.HeapAllocDelta-int64(row.DataBytes)) / float64(n)
	return row, nil
}

func heap() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}
