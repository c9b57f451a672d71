package vos

import (
	"sync"

	"github.com/tidwall/btree"
)

// The NVMe tier is one preallocated data file per target. The allocator hands out
// block-aligned extents of it (next fit over a free list ordered by offset, with
// coalescing on free). Its state is not persisted: on open it is rebuilt from the
// extents the index references, so space written but never logged (a crash between
// the data write and the log commit) comes back by itself.

const blockSize = 4096

type extent struct{ off, len uint64 }

type allocator struct {
	mu     sync.Mutex
	total  uint64 // bytes, a multiple of blockSize
	used   uint64
	free   *btree.BTreeG[extent] // by offset, never adjacent (coalesced)
	cursor uint64
}

func newAllocator(total uint64) *allocator {
	total -= total % blockSize
	a := &allocator{total: total, free: btree.NewBTreeGOptions(func(x, y extent) bool { return x.off < y.off }, btree.Options{NoLocks: true})}
	if total > 0 {
		a.free.Set(extent{0, total})
	}
	return a
}

func roundUp(n uint64) uint64 { return (n + blockSize - 1) &^ (blockSize - 1) }

// alloc reserves n bytes (rounded up to blocks); ok is false when no free extent is
// large enough.
func (a *allocator) alloc(n uint64) (uint64, bool) {
	n = roundUp(n)
	if n == 0 {
		return 0, true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.total-a.used < n {
		return 0, false
	}
	var got extent
	found := false
	try := func(e extent) bool {
		if e.len >= n {
			got, found = e, true
			return false
		}
		return true
	}
	a.free.Ascend(extent{off: a.cursor}, try)
	if !found {
		a.free.Ascend(extent{}, try)
	}
	if !found {
		return 0, false
	}
	a.free.Delete(got)
	if got.len > n {
		a.free.Set(extent{got.off + n, got.len - n})
	}
	a.used += n
	a.cursor = got.off + n
	return got.off, true
}

// release returns [off, off+n) to the free list.
func (a *allocator) release(off, n uint64) {
	n = roundUp(n)
	if n == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.used -= n
	e := extent{off, n}
	// merge with the predecessor and successor when adjacent
	var before, after extent
	hasBefore, hasAfter := false, false
	a.free.Descend(extent{off: off}, func(x extent) bool {
		if x.off < off {
			before, hasBefore = x, true
		}
		return false
	})
	a.free.Ascend(extent{off: off}, func(x extent) bool {
		after, hasAfter = x, true
		return false
	})
	if hasBefore && before.off+before.len == e.off {
		a.free.Delete(before)
		e = extent{before.off, before.len + e.len}
	}
	if hasAfter && e.off+e.len == after.off {
		a.free.Delete(after)
		e.len += after.len
	}
	a.free.Set(e)
}

// reserve marks [off, off+n) used; open calls it for every referenced extent to
// rebuild the free list. It reports false if the range is not wholly free (the
// index references overlapping or out-of-range space: corruption).
func (a *allocator) reserve(off, n uint64) bool {
	n = roundUp(n)
	if n == 0 {
		return true
	}
	var hit extent
	ok := false
	a.free.Descend(extent{off: off}, func(x extent) bool {
		hit, ok = x, true
		return false
	})
	if !ok || hit.off > off || hit.off+hit.len < off+n {
		return false
	}
	a.free.Delete(hit)
	if hit.off < off {
		a.free.Set(extent{hit.off, off - hit.off})
	}
	if end := off + n; end < hit.off+hit.len {
		a.free.Set(extent{end, hit.off + hit.len - end})
	}
	a.used += n
	return true
}

func (a *allocator) usage() (used, total uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.used, a.total
}
