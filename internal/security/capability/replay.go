package capability

import (
	"sync"
	"time"
)

// ReplayTTL is how long a ReplayCache remembers a request: Open accepts a
// request until MaxServerSkew after it was sent, and it may have been sent
// up to MaxServerSkew ahead of the receiver's clock.
const ReplayTTL = 2 * MaxServerSkew

// DefaultReplayEntries bounds a ReplayCache: about 100 sealed requests a
// second, every second of ReplayTTL, before protection shortens.
const DefaultReplayEntries = 1 << 16

// A ReplayCache remembers the sealed requests an engine accepted (by
// Opened.ID) for ReplayTTL, so a copy sent again is refused.
//
// When it is full of entries still live it forgets the oldest rather than
// refusing new requests: refusing would stop the servers' own requests,
// while forgetting only shortens how long the oldest are protected. Only
// requests whose signature verifies are remembered, so filling it takes the
// servers' key: a flood can shorten replay protection, not block anyone.
//
// Unsigned requests (insecure systems) have no ID and are not remembered:
// anyone may send those anyway.
type ReplayCache struct {
	mu   sync.Mutex
	max  int
	seen map[[32]byte]struct{}
	fifo []replayEntry // in arrival order, hence in expiry order
	head int           // fifo[head:] are live or not yet dropped
}

type replayEntry struct {
	id      [32]byte
	expires time.Time
}

// NewReplayCache returns a cache of at most max entries (max < 1:
// DefaultReplayEntries).
func NewReplayCache(max int) *ReplayCache {
	if max < 1 {
		max = DefaultReplayEntries
	}
	return &ReplayCache{max: max, seen: map[[32]byte]struct{}{}}
}

// Seen reports whether the request o was accepted before, and remembers it
// if not. Unsigned requests are never seen.
func (c *ReplayCache) Seen(o Opened, now time.Time) bool {
	if !o.Signed {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.head < len(c.fifo) && !now.Before(c.fifo[c.head].expires) {
		c.drop()
	}
	if _, ok := c.seen[o.ID]; ok {
		return true
	}
	if len(c.seen) >= c.max {
		c.drop() // the oldest live entry: see the type's comment
	}
	if c.head > 0 && c.head >= len(c.fifo)/2 { // reuse the dropped half
		c.fifo = append(c.fifo[:0], c.fifo[c.head:]...)
		c.head = 0
	}
	c.seen[o.ID] = struct{}{}
	c.fifo = append(c.fifo, replayEntry{id: o.ID, expires: now.Add(ReplayTTL)})
	return false
}

// Len is the number of requests remembered.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *ReplayCache) drop() {
	delete(c.seen, c.fifo[c.head].id)
	c.fifo[c.head] = replayEntry{}
	c.head++
}
