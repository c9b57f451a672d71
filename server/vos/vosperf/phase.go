package vosperf

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// item is one op of a phase: value k of object w (VOS) or slot k of a file (raw).
type item struct {
	w int
	k uint64
}

// spread divides n values over c objects: object w gets the values k = 0..n_w-1,
// listed object by object.
func spread(n, c int) []item {
	items := make([]item, 0, n)
	for w := range c {
		for k := range share(n, c, w) {
			items = append(items, item{w, uint64(k)})
		}
	}
	return items
}

// share is how many of n ops the w-th of c workers gets.
func share(n, c, w int) int {
	s := n / c
	if w < n%c {
		s++
	}
	return s
}

// split cuts items into c contiguous parts of near-equal length (the first n%c
// parts one longer), the same arithmetic as spread, so splitting spread(n, c) into
// c parts gives each worker exactly its own object.
func split(items []item, c int) [][]item {
	parts := make([][]item, c)
	off := 0
	for w := range c {
		s := share(len(items), c, w)
		parts[w] = items[off : off+s]
		off += s
	}
	return parts
}

func shuffle(items []item, rng *rand.Rand) {
	rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
}

// phaseStats is what one timed phase measured.
type phaseStats struct {
	ops  int
	wall time.Duration
	lat  []time.Duration // sorted
}

func (s phaseStats) percentile(q float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(s.lat))+0.999999) - 1 // nearest rank
	return s.lat[min(max(i, 0), len(s.lat)-1)]
}

// phase is one timed workload (a VOS update or fetch, or a raw baseline) that
// runs in blocks, so that several phases can take turns on the device (see
// interleave). Each worker keeps its state (buffers, counters, its op) from block
// to block. A phase's wall time is the sum of its own blocks' wall times, and its
// latencies are those of its own ops only.
type phase struct {
	name  string
	parts [][]item // worker w's ops, in order
	ops   []func(item) error
	lats  [][]time.Duration
	wall  time.Duration
}

// newPhase prepares (untimed) one worker per part; newWorker(w) returns worker
// w's op.
func newPhase(name string, parts [][]item, newWorker func(w int) func(item) error) *phase {
	p := &phase{name: name, parts: parts, ops: make([]func(item) error, len(parts)), lats: make([][]time.Duration, len(parts))}
	for w, part := range parts {
		p.ops[w] = newWorker(w)
		p.lats[w] = make([]time.Duration, 0, len(part))
	}
	return p
}

// block is worker w's share of block i of k: the i-th of k contiguous, near-equal
// slices of its ops.
func (p *phase) block(w, i, k int) []item {
	m := len(p.parts[w])
	return p.parts[w][i*m/k : (i+1)*m/k]
}

// runBlock runs block i of k: one goroutine per worker with ops in it, all
// started together; the block's wall time runs from the start to the last op's
// completion. The first error stops all workers.
func (p *phase) runBlock(ctx context.Context, i, k int) error {
	blocks := make([][]item, len(p.parts))
	empty := true
	for w := range p.parts {
		blocks[w] = p.block(w, i, k)
		empty = empty && len(blocks[w]) == 0
	}
	if empty {
		return ctx.Err()
	}
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, len(blocks))
	)
	defer context.AfterFunc(ctx, func() { stop.Store(true) })()
	for w, part := range blocks {
		if len(part) == 0 {
			continue
		}
		wg.Go(func() {
			<-start
			// One clock read per op: an op's latency runs from the previous op's
			// end (or the block's start) to its own end, loop overhead included.
			prev := time.Now()
			for _, it := range part {
				if stop.Load() {
					return
				}
				if err := p.ops[w](it); err != nil {
					errs[w] = err
					stop.Store(true)
					return
				}
				now := time.Now()
				p.lats[w] = append(p.lats[w], now.Sub(prev))
				prev = now
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	p.wall += time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	return ctx.Err()
}

// stats is what the phase measured over all the blocks it has run.
func (p *phase) stats() phaseStats {
	st := phaseStats{wall: p.wall, lat: slices.Concat(p.lats...)}
	slices.Sort(st.lat)
	st.ops = len(st.lat)
	return st
}

// interleave runs every phase in k rounds. Round i runs block i of each phase,
// one phase at a time, so all of them see the device in the same state (a cloud
// disk's burst credit, a filesystem's journal, the page cache's dirty pages)
// rather than whichever ran first getting the best of it. The order rotates from
// round to round, so no phase is always the one to start a round or to follow a
// particular other phase. With a single phase there is nothing to interleave and
// it runs in one block.
func interleave(ctx context.Context, k int, phases ...*phase) error {
	if len(phases) == 1 {
		k = 1
	}
	for i := range k {
		for j := range phases {
			if err := phases[(i+j)%len(phases)].runBlock(ctx, i, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// ---- value contents ----

// Every value is a shared random pattern with a stamp naming it: 16 bytes at the
// head (the id and its complement) and 8 at the tail (the id again, for values of
// 32 bytes or more). A fetch that returns another value, a stale buffer or a short
// read fails the stamp check; a full comparison every few ops catches the rest.

func pattern(size int, seed uint64) []byte {
	b := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{0: byte(seed), 1: byte(seed >> 8), 2: byte(seed >> 16), 3: byte(size), 4: byte(size >> 8), 5: byte(size >> 16)})
	rng.Read(b)
	return b
}

func stamp(b []byte, id uint64) {
	var h [16]byte
	binary.LittleEndian.PutUint64(h[0:], id)
	binary.LittleEndian.PutUint64(h[8:], ^id)
	copy(b, h[:])
	if len(b) >= 32 {
		binary.LittleEndian.PutUint64(b[len(b)-8:], id)
	}
}

func stampOK(b []byte, id uint64) bool {
	var h [16]byte
	binary.LittleEndian.PutUint64(h[0:], id)
	binary.LittleEndian.PutUint64(h[8:], ^id)
	n := min(len(b), 16)
	if string(b[:n]) != string(h[:n]) {
		return false
	}
	return len(b) < 32 || binary.LittleEndian.Uint64(b[len(b)-8:]) == id
}

// bodyOK compares the unstamped bytes of b with the pattern.
func bodyOK(b, pat []byte) bool {
	lo, hi := min(16, len(b)), len(b)
	if len(b) >= 32 {
		hi -= 8
	}
	return string(b[lo:hi]) == string(pat[lo:hi])
}

// itemID names value k of object w in its stamp.
func itemID(it item) uint64 { return uint64(it.w)<<40 | it.k }
