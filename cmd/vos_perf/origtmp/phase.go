package vosperf

import (
	"context"
	"encoding/binary"
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

// runWorkers runs one goroutine per part; newWorker(w) prepares worker w's state
// (untimed) and returns its op. All workers start together; the phase's wall time
// runs from the start to the last op's completion, and every op's latency is kept.
// The first error stops all workers.
func runWorkers(ctx context.Context, parts [][]item, newWorker func(w int) func(item) error) (phaseStats, error) {
	ops := make([]func(item) error, len(parts))
	for w := range parts {
		ops[w] = newWorker(w)
	}
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, len(parts))
		lats  = make([][]time.Duration, len(parts))
	)
	defer context.AfterFunc(ctx, func() { stop.Store(true) })()
	for w, part := range parts {
		lats[w] = make([]time.Duration, 0, len(part))
		wg.Go(func() {
			<-start
			// One clock read per op: an op's latency runs from the previous op's
			// end (or the start) to its own end, loop overhead included.
			prev := time.Now()
			for _, it := range part {
				if stop.Load() {
					return
				}
				if err := ops[w](it); err != nil {
					errs[w] = err
					stop.Store(true)
					return
				}
				now := time.Now()
				lats[w] = append(lats[w], now.Sub(prev))
				prev = now
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	st := phaseStats{wall: time.Since(t0)}
	for _, err := range errs {
		if err != nil {
			return st, err
		}
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	st.lat = slices.Concat(lats...)
	slices.Sort(st.lat)
	st.ops = len(st.lat)
	return st, nil
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
