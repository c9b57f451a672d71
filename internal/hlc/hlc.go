// Package hlc is a hybrid logical clock, as DAOS stamps epochs: 64 bits of
// physical time in nanoseconds whose low 18 bits are replaced by a logical
// counter, so stamps follow wall-clock time, never repeat and never go back,
// even when the wall clock does.
package hlc

import (
	"sync/atomic"
	"time"
)

// LogicalBits is how many low bits count events within one physical tick
// (DAOS's HLC uses 18: about 262 µs per tick).
const LogicalBits = 18

const logicalMask = 1<<LogicalBits - 1

// Clock hands out increasing stamps. The zero value is ready.
type Clock struct {
	last atomic.Uint64
	now  func() time.Time // tests
}

// Now returns a stamp greater than every stamp it returned before.
func (c *Clock) Now() uint64 {
	t := time.Now()
	if c.now != nil {
		t = c.now()
	}
	pt := uint64(t.UnixNano()) &^ logicalMask
	for {
		last := c.last.Load()
		next := max(pt, last+1)
		if c.last.CompareAndSwap(last, next) {
			return next
		}
	}
}

// Update moves the clock past a stamp seen from another node, so that what
// this node stamps next orders after it.
func (c *Clock) Update(seen uint64) {
	for {
		last := c.last.Load()
		if seen <= last || c.last.CompareAndSwap(last, seen) {
			return
		}
	}
}

// Time is the physical time of a stamp.
func Time(stamp uint64) time.Time { return time.Unix(0, int64(stamp&^logicalMask)) }
