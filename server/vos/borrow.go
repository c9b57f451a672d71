package vos

import (
	"runtime/debug"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/godaos/godaos/internal/daoserr"
)

// Zero-copy fetches ("borrowing"). The data file is mapped read-only, and a
// large single value stored there can be handed to the caller as a slice of
// the mapping, verified against its checksum in place, instead of being read
// into the caller's buffer: an engine then writes it to the network straight
// from the page cache, one copy fewer per fetched byte. The pread copy was a
// quarter of the CPU time of a 1 MiB fetch through the engine (see
// docs/performance.md, "Object I/O: daos_perf").
//
// What keeps the borrowed bytes valid: VOS never writes a value's space again
// until the space is freed (a punch, aggregation, a destroyed container) and
// allocated anew. Borrowers pin the current generation; space freed while a
// borrower that may have seen it is pinned is set aside, and the committer
// hands it back to the allocator only once every such borrower has released
// (see dataMap.free). Close waits for every borrower before unmapping.

// BorrowMin is the smallest single value FetchBorrowed lends: below it a copy
// costs less than the bookkeeping.
const BorrowMin = 64 << 10

// dataMap is the data file mapped read-only, and its borrowers.
type dataMap struct {
	b []byte

	mu       sync.Mutex
	idle     sync.Cond // signalled when the last pin goes
	gen      uint64
	pins     map[uint64]int // borrowers by the generation they pinned
	npins    int
	deferred []deferredFree // freed while pinned, oldest first
}

type deferredFree struct {
	gen uint64 // pins of this generation or older may still read it
	e   extent
}

// mapData maps the data file for borrowing; nil when it cannot be (the
// fetches then read as before).
func (p *Pool) mapData() *dataMap {
	if p.sb.NvmeSize == 0 {
		return nil
	}
	st, err := p.data.Stat()
	if err != nil || st.Size() <= 0 || !st.Mode().IsRegular() {
		return nil
	}
	b, err := unix.Mmap(int(p.data.Fd()), 0, int(min(st.Size(), int64(p.sb.NvmeSize))), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		p.log.Info("data file not mapped: fetches copy large values", "err", err)
		return nil
	}
	m := &dataMap{b: b, pins: map[uint64]int{}}
	m.idle.L = &m.mu
	return m
}

// slice is the mapped bytes [off, off+n), or nil if not mapped.
func (m *dataMap) slice(off, n uint64) []byte {
	if m == nil || off+n > uint64(len(m.b)) || off+n < off {
		return nil
	}
	return m.b[off : off+n : off+n]
}

// pin registers a borrower; unpin(gen) ends it.
func (m *dataMap) pin() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pins[m.gen]++
	m.npins++
	return m.gen
}

func (m *dataMap) unpin(gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pins[gen]--; m.pins[gen] == 0 {
		delete(m.pins, gen)
	}
	if m.npins--; m.npins == 0 {
		m.idle.Broadcast()
	}
}

// free takes space the committer has freed (durably unreferenced) and
// returns what may go back to the allocator now: that space if no borrower
// is pinned, and whatever was set aside earlier whose borrowers have all
// released. The committer alone calls it, as it alone owns the allocator.
func (m *dataMap) free(exts []extent) []extent {
	m.mu.Lock()
	defer m.mu.Unlock()
	oldest := m.gen + 1 // no pin
	for g := range m.pins {
		oldest = min(oldest, g)
	}
	var ready []extent
	keep := m.deferred[:0]
	for _, d := range m.deferred {
		if d.gen < oldest {
			ready = append(ready, d.e)
		} else {
			keep = append(keep, d)
		}
	}
	m.deferred = keep
	if m.npins == 0 {
		return append(ready, exts...)
	}
	// Borrowers pinned so far may hold this space; later ones cannot see
	// it (the index no longer references it), so they pin a new generation.
	for _, e := range exts {
		m.deferred = append(m.deferred, deferredFree{gen: m.gen, e: e})
	}
	m.gen++
	return ready
}

// close waits until every borrower has released, then unmaps.
func (m *dataMap) close() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	for m.npins > 0 {
		m.idle.Wait()
	}
	b := m.b
	m.b = nil
	m.mu.Unlock()
	return unix.Munmap(b)
}

// releaseFreed returns freed space to the allocator, through the borrowers'
// bookkeeping when the data file is mapped (committer only).
func (p *Pool) releaseFreed(exts []extent) {
	if p.dmap != nil {
		exts = p.dmap.free(exts)
	}
	for _, e := range exts {
		p.alloc.release(e.off, e.len)
	}
}

// FetchBorrowed is Fetch, except that a single value of at least BorrowMin
// bytes stored in the data file is not read into its SGL: its bytes,
// verified against their checksum, are borrowed[i], a slice of the mapped
// data file, and sgls[i] is left as it was. Those bytes stay valid and
// unchanged until release is called, which the caller must do once, when done
// with them (an engine: once they are on the wire). Without a mapping it is
// Fetch.
func (p *Pool) FetchBorrowed(u UUID, oid OID, epoch Epoch, flags CondFlags, dkey []byte, iods []IOD, sgls []SGL) (res []FetchResult, borrowed [][]byte, release func(), err error) {
	if p.dmap == nil {
		res, err = p.Fetch(u, oid, epoch, flags, dkey, iods, sgls)
		return res, nil, func() {}, err
	}
	gen := p.dmap.pin() // before the index is read: see dataMap.free
	borrowed = make([][]byte, len(iods))
	res, err = p.fetchMapped(u, oid, epoch, flags, dkey, iods, sgls, borrowed)
	if err != nil || !slices.ContainsFunc(borrowed, func(b []byte) bool { return b != nil }) {
		p.dmap.unpin(gen)
		return res, nil, func() {}, err
	}
	var once sync.Once
	return res, borrowed, func() { once.Do(func() { p.dmap.unpin(gen) }) }, nil
}

// fetchMapped is fetch with faults on the mapping turned into an error: a
// device error while reading a mapped page is a signal (SIGBUS), which would
// otherwise end the whole engine where pread returns EIO for one request.
func (p *Pool) fetchMapped(u UUID, oid OID, epoch Epoch, flags CondFlags, dkey []byte, iods []IOD, sgls []SGL, borrowed [][]byte) (res []FetchResult, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			fault, ok := r.(interface{ Addr() uintptr })
			if !ok {
				panic(r)
			}
			res, err = nil, daoserr.Newf(daoserr.IO, "fetch obj %s dkey %q: reading data file %s failed at mapped address %#x", oid, dkey, p.data.Name(), fault.Addr()).
				WithResolution("check the device (dmesg); 'ddb verify' lists what is damaged")
		}
	}()
	return p.fetch(u, oid, epoch, flags, dkey, iods, sgls, borrowed)
}

// borrow lends the n bytes of a single value at off, verified against sum,
// as the current IOD's borrowed bytes; false when it is not to be borrowed
// (too small, not mapped), so the caller reads it as usual.
func (f *fetcher) borrow(v *svRec, sum []byte, n uint64, akey []byte) (bool, error) {
	if f.borrowed == nil || n < BorrowMin {
		return false, nil
	}
	src := f.p.dmap.slice(v.off, n)
	if src == nil {
		return false, nil
	}
	if !f.c.csum.Equal(sum, src) {
		return true, f.csumErr(akey, "single value", v.order)
	}
	f.borrowed[f.iod] = src
	return true, nil
}
