package hlc

import (
	"sync"
	"testing"
	"time"
)

func TestMonotonic(t *testing.T) {
	wall := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c := &Clock{now: func() time.Time { return wall }}
	a := c.Now()
	wall = wall.Add(-time.Hour) // the wall clock steps back
	b := c.Now()
	if b <= a {
		t.Fatalf("stamp went back: %d then %d", a, b)
	}
	wall = wall.Add(2 * time.Hour)
	if d := c.Now(); Time(d).Sub(wall) > time.Millisecond || d <= b {
		t.Fatalf("stamp %d does not follow the wall clock %v", d, wall)
	}
	c.Update(c.Now() + 1000)
	if e := c.Now(); e <= b+1000 {
		t.Fatalf("update not honoured")
	}
}

func TestUniqueUnderConcurrency(t *testing.T) {
	var c Clock
	const n, g = 10000, 4
	got := make(chan uint64, n*g)
	var wg sync.WaitGroup
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				got <- c.Now()
			}
		}()
	}
	wg.Wait()
	close(got)
	seen := map[uint64]bool{}
	for s := range got {
		if seen[s] {
			t.Fatalf("stamp %d twice", s)
		}
		seen[s] = true
	}
}
