package daos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
)

func newEvent(t *testing.T, q *EQ, parent *Event) *Event {
	t.Helper()
	ev, err := NewEvent(q, parent)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// pollAll polls q until n events have come back (each exactly once), with a
// bound on the rounds rather than on the clock.
func pollAll(t *testing.T, q *EQ, n int) map[*Event]bool {
	t.Helper()
	got := map[*Event]bool{}
	for round := 0; len(got) < n; round++ {
		if round > 10*n {
			t.Fatalf("%d of %d events came back", len(got), n)
		}
		evs, err := q.Poll(context.Background(), 1, 16, -1)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if got[ev] {
				t.Fatal("an event came back twice")
			}
			got[ev] = true
		}
	}
	return got
}

// TestEQObjectIO: one goroutine keeps 64 real object updates, then 64
// fetches, in flight on one queue and polls them back; the events are
// reused from one round to the next.
func TestEQObjectIO(t *testing.T) {
	ctx := context.Background()
	o := testObj(t, testCont(t), placement.SX, placement.OTMultiHashed)

	const n = 64
	q := NewEQ()
	evs := make([]*Event, n)
	vals, got := make([][]byte, n), make([][]byte, n)
	iod := func(i int) []IOD {
		return []IOD{{Akey: []byte("a"), Type: Array, Size: 1, Recxs: []Recx{{Idx: 0, Nr: uint64(len(vals[i]))}}}}
	}
	dkey := func(i int) []byte { return []byte(fmt.Sprintf("d%03d", i)) }
	for i := range n {
		evs[i] = newEvent(t, q, nil)
		vals[i] = bytes.Repeat([]byte{byte(i)}, 4096+i)
		got[i] = make([]byte, len(vals[i]))
	}
	for i, ev := range evs {
		if err := ev.Launch(ctx, func(ctx context.Context) error {
			_, err := o.Update(ctx, dkey(i), iod(i), [][]byte{vals[i]})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	for ev := range pollAll(t, q, n) {
		if ev.Err() != nil {
			t.Fatalf("update: %v", ev.Err())
		}
	}
	for i, ev := range evs {
		if err := ev.Launch(ctx, func(ctx context.Context) error {
			_, err := o.Fetch(ctx, dkey(i), iod(i), [][]byte{got[i]})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	for ev := range pollAll(t, q, n) {
		if ev.Err() != nil {
			t.Fatalf("fetch: %v", ev.Err())
		}
	}
	for i := range n {
		if !bytes.Equal(got[i], vals[i]) {
			t.Fatalf("dkey %s read back differs", dkey(i))
		}
	}

	// a real call's error is the event's
	if err := evs[0].Launch(ctx, func(ctx context.Context) error {
		_, err := o.Fetch(ctx, nil, iod(0), [][]byte{got[0]})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := evs[0].Wait(ctx); !daoserr.Is(err, daoserr.Inval) || !strings.Contains(err.Error(), "empty dkey") {
		t.Fatalf("fetch without a dkey: %v", err)
	}

	// forced destroy with updates in flight: each one either completed or
	// was cancelled, and all have returned when Destroy does
	for i, ev := range evs {
		if err := ev.Launch(ctx, func(ctx context.Context) error {
			_, err := o.Update(ctx, dkey(i), iod(i), [][]byte{vals[i]})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Destroy(true); err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if err := ev.Err(); err != nil && !daoserr.Is(err, daoserr.Canceled) {
			t.Fatalf("update under a forced destroy: %v", err)
		}
		if err := ev.Fini(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEQPoll: min, max and timeout, on a fake clock.
func TestEQPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		q := NewEQ()
		start := time.Now()
		byDelay := map[*Event]time.Duration{}
		for _, d := range []time.Duration{3, 1, 2, 5} {
			ev := newEvent(t, q, nil)
			byDelay[ev] = d * time.Second
			ev.Launch(ctx, func(context.Context) error { time.Sleep(d * time.Second); return nil })
		}
		delays := func(evs []*Event) []time.Duration {
			var out []time.Duration
			for _, ev := range evs {
				out = append(out, byDelay[ev])
			}
			return out
		}
		steps := []struct {
			name          string
			min, max      int
			timeout       time.Duration
			want          []time.Duration // the events' delays, in order
			at            time.Duration   // when Poll returns
			sleepFirst    time.Duration
			wantInFlight  int
			wantCompleted int
		}{
			{name: "no wait, nothing done", min: 0, max: 10, timeout: 0, at: 0, wantInFlight: 4},
			{name: "waits for min", min: 2, max: 10, timeout: -1, want: []time.Duration{time.Second, 2 * time.Second}, at: 2 * time.Second, wantInFlight: 2},
			{name: "timeout with nothing", min: 1, max: 10, timeout: 500 * time.Millisecond, at: 2500 * time.Millisecond, wantInFlight: 2},
			{name: "max caps", min: 1, max: 1, timeout: -1, sleepFirst: 3500 * time.Millisecond,
				want: []time.Duration{3 * time.Second}, at: 6 * time.Second, wantCompleted: 1},
			{name: "the rest", min: 0, max: 10, timeout: 0, want: []time.Duration{5 * time.Second}, at: 6 * time.Second},
			{name: "nothing in flight: no waiting", min: 3, max: 10, timeout: -1, at: 6 * time.Second},
		}
		for _, st := range steps {
			time.Sleep(st.sleepFirst)
			evs, err := q.Poll(ctx, st.min, st.max, st.timeout)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if got := delays(evs); fmt.Sprint(got) != fmt.Sprint(st.want) {
				t.Errorf("%s: events %v, want %v", st.name, got, st.want)
			}
			if el := time.Since(start); el != st.at {
				t.Errorf("%s: returned at %v, want %v", st.name, el, st.at)
			}
			if f, c := q.Len(); f != st.wantInFlight || c != st.wantCompleted {
				t.Errorf("%s: %d in flight, %d completed; want %d, %d", st.name, f, c, st.wantInFlight, st.wantCompleted)
			}
		}

		// the caller's context ends the wait (and returns nothing)
		ev := newEvent(t, q, nil)
		ev.Launch(ctx, func(context.Context) error { time.Sleep(10 * time.Second); return nil })
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if evs, err := q.Poll(tctx, 1, 1, -1); !daoserr.Is(err, daoserr.TimedOut) || evs != nil {
			t.Fatalf("poll past its context: %v %v", evs, err)
		}
		if evs, err := q.Poll(ctx, 1, 1, -1); err != nil || len(evs) != 1 || evs[0] != ev {
			t.Fatalf("after: %v %v", evs, err)
		}
		for _, bad := range [][2]int{{0, 0}, {2, 1}, {-1, 4}} {
			if _, err := q.Poll(ctx, bad[0], bad[1], 0); !daoserr.Is(err, daoserr.Inval) {
				t.Errorf("poll min %d max %d: %v", bad[0], bad[1], err)
			}
		}
	})
}

// TestEQBarrier: a barrier parent completes when its last child does, with
// the first child error; only the parent reaches the queue; a parent with
// an operation of its own also waits for its children.
func TestEQBarrier(t *testing.T) {
	errA, errB := errors.New("child 1 failed"), errors.New("child 2 failed")
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		q := NewEQ()
		parent := newEvent(t, q, nil)
		gates := make([]chan struct{}, 4)
		kids := make([]*Event, len(gates))
		for i := range gates {
			gates[i] = make(chan struct{})
			kids[i] = newEvent(t, nil, parent)
		}
		results := []error{nil, errA, errB, nil}
		launchKids := func() {
			for i, k := range kids {
				g, r := gates[i], results[i]
				if err := k.Launch(ctx, func(context.Context) error { <-g; return r }); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := parent.ParentBarrier(); !daoserr.Is(err, daoserr.NoPerm) {
			t.Fatalf("barrier before its children are launched: %v", err)
		}
		launchKids()
		if err := parent.ParentBarrier(); err != nil {
			t.Fatal(err)
		}
		// children complete in the order 2, 0, 1 (errB before errA); 3 holds the barrier
		for _, i := range []int{2, 0, 1} {
			close(gates[i])
			synctest.Wait()
			if evs, _ := q.Poll(ctx, 0, 8, 0); len(evs) != 0 {
				t.Fatalf("the barrier completed with child 3 in flight")
			}
		}
		if done, err := kids[0].Test(); done || !daoserr.Is(err, daoserr.NoPerm) {
			t.Fatalf("test of a child: %v %v", done, err)
		}
		close(gates[3])
		evs, err := q.Poll(ctx, 1, 8, -1)
		if err != nil || len(evs) != 1 || evs[0] != parent {
			t.Fatalf("poll: %v %v", evs, err)
		}
		if parent.Err() != errA || kids[2].Err() != errB {
			t.Fatalf("parent error %v, want the first child's in creation order (%v)", parent.Err(), errA)
		}

		// reused: children that all completed before the barrier complete it at once
		for i := range gates {
			gates[i] = make(chan struct{})
			close(gates[i])
		}
		results = []error{nil, nil, nil, nil}
		launchKids()
		synctest.Wait()
		if err := parent.ParentBarrier(); err != nil {
			t.Fatal(err)
		}
		if evs, err := q.Poll(ctx, 1, 8, 0); err != nil || len(evs) != 1 || parent.Err() != nil {
			t.Fatalf("barrier after its children: %v %v %v", evs, err, parent.Err())
		}

		// a parent with its own operation: done only when its child is too
		p2 := newEvent(t, q, nil)
		kid := newEvent(t, nil, p2)
		gate := make(chan struct{})
		kid.Launch(ctx, func(context.Context) error { <-gate; return errA })
		p2.Launch(ctx, func(context.Context) error { return errB })
		synctest.Wait()
		if evs, _ := q.Poll(ctx, 0, 8, 0); len(evs) != 0 {
			t.Fatal("the parent completed before its child")
		}
		close(gate)
		if err := p2.Wait(ctx); err != errB {
			t.Fatalf("the parent's own error comes first: %v", err)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEventMisuse: what DAOS refuses, refused with its codes.
func TestEventMisuse(t *testing.T) {
	ctx := context.Background()
	nop := func(context.Context) error { return nil }
	stop := make(chan struct{}) // ends the operations left in flight
	defer close(stop)
	hang := func(context.Context) error { <-stop; return nil }
	cases := []struct {
		name string
		do   func(t *testing.T) error
		code daoserr.Code
	}{
		{"launch twice", func(t *testing.T) error {
			ev := newEvent(t, NewEQ(), nil)
			ev.Launch(ctx, hang)
			return ev.Launch(ctx, nop)
		}, daoserr.NoPerm},
		{"launch without operation", func(t *testing.T) error {
			return newEvent(t, nil, nil).Launch(ctx, nil)
		}, daoserr.Inval},
		{"relaunch before polling", func(t *testing.T) (err error) {
			synctest.Test(t, func(t *testing.T) {
				q := NewEQ()
				ev := newEvent(t, q, nil)
				ev.Launch(ctx, nop)
				synctest.Wait() // completed, not polled
				err = ev.Launch(ctx, nop)
				q.Poll(ctx, 1, 1, -1)
			})
			return err
		}, daoserr.NoPerm},
		{"child of a launched parent", func(t *testing.T) error {
			p := newEvent(t, nil, nil)
			p.Launch(ctx, hang)
			_, err := NewEvent(nil, p)
			return err
		}, daoserr.Inval},
		{"nested children", func(t *testing.T) error {
			_, err := NewEvent(nil, newEvent(t, nil, newEvent(t, nil, nil)))
			return err
		}, daoserr.NoPerm},
		{"child in another queue", func(t *testing.T) error {
			_, err := NewEvent(NewEQ(), newEvent(t, NewEQ(), nil))
			return err
		}, daoserr.Inval},
		{"barrier without children", func(t *testing.T) error {
			return newEvent(t, NewEQ(), nil).ParentBarrier()
		}, daoserr.Inval},
		{"abort an event not in flight", func(t *testing.T) error {
			return newEvent(t, nil, nil).Abort()
		}, daoserr.NoPerm},
		{"finalize an event in flight", func(t *testing.T) error {
			ev := newEvent(t, nil, nil)
			ev.Launch(ctx, hang)
			return ev.Fini()
		}, daoserr.Busy},
		{"wait for a child", func(t *testing.T) error {
			return newEvent(t, nil, newEvent(t, nil, nil)).Wait(ctx)
		}, daoserr.NoPerm},
		{"launch a finalized event", func(t *testing.T) error {
			ev := newEvent(t, nil, nil)
			ev.Fini()
			return ev.Launch(ctx, nop)
		}, daoserr.Inval},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.do(t); !daoserr.Is(err, c.code) {
				t.Fatalf("got %v, want %s", err, c.code.Name())
			}
		})
	}
}

// TestEventAlone: events without a queue are tested and waited for on their
// own, and are launched again once consumed; Abort cancels the operation's
// context and Wait gives up with the caller's.
func TestEventAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		ev := newEvent(t, nil, nil)
		if done, err := ev.Test(); !done || err != nil {
			t.Fatalf("an event never launched tests done: %v %v", done, err)
		}
		for round := range 3 {
			want := fmt.Errorf("round %d", round)
			ev.Launch(ctx, func(context.Context) error { time.Sleep(time.Second); return want })
			if done, _ := ev.Test(); done {
				t.Fatal("done while in flight")
			}
			if err := ev.Wait(ctx); err != want || ev.Err() != want {
				t.Fatalf("round %d: %v", round, err)
			}
		}

		ev.Launch(ctx, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := ev.Wait(tctx); !daoserr.Is(err, daoserr.TimedOut) {
			t.Fatalf("wait past its context: %v", err)
		}
		if err := ev.Abort(); err != nil {
			t.Fatal(err)
		}
		if err := ev.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("aborted: %v", err)
		}
		if err := ev.Fini(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEQClose: refused while events are in flight or unpolled; forced, it
// cancels what runs and returns only when every operation has returned; a
// closed queue refuses everything but finalizing.
func TestEQClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		q := NewEQ()
		ev := newEvent(t, q, nil)
		gate := make(chan struct{})
		ev.Launch(ctx, func(context.Context) error { <-gate; return nil })
		if err := q.Close(); !daoserr.Is(err, daoserr.Busy) {
			t.Fatalf("close with an event in flight: %v", err)
		}
		close(gate)
		synctest.Wait()
		if err := q.Close(); !daoserr.Is(err, daoserr.Busy) {
			t.Fatalf("close with an event not polled: %v", err)
		}
		if evs, err := q.Poll(ctx, 1, 1, -1); err != nil || len(evs) != 1 {
			t.Fatal(evs, err)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		for name, err := range map[string]error{
			"close again": q.Close(),
			"launch":      ev.Launch(ctx, func(context.Context) error { return nil }),
			"poll": func() error {
				_, err := q.Poll(ctx, 0, 1, 0)
				return err
			}(),
			"new event": func() error {
				_, err := NewEvent(q, nil)
				return err
			}(),
		} {
			if !daoserr.Is(err, daoserr.Nonexist) {
				t.Errorf("%s on a closed queue: %v", name, err)
			}
		}
		if err := ev.Fini(); err != nil {
			t.Fatal(err)
		}

		// forced: the operations see their contexts cancelled and have all
		// returned when Destroy does; a Poll waiting on the queue wakes
		q = NewEQ()
		var returned atomic.Int32
		blocked := func(ctx context.Context) error { <-ctx.Done(); returned.Add(1); return ctx.Err() }
		single := newEvent(t, q, nil)
		single.Launch(ctx, blocked)
		parent := newEvent(t, q, nil)
		kid := newEvent(t, nil, parent)
		kid.Launch(ctx, blocked)
		parent.ParentBarrier()
		polled := make(chan error)
		go func() {
			_, err := q.Poll(ctx, 1, 1, -1)
			polled <- err
		}()
		synctest.Wait()
		if err := q.Destroy(true); err != nil {
			t.Fatal(err)
		}
		if n := returned.Load(); n != 2 {
			t.Fatalf("%d of 2 operations returned when Destroy did", n)
		}
		if err := <-polled; !daoserr.Is(err, daoserr.Nonexist) {
			t.Fatalf("a poll waiting on the destroyed queue: %v", err)
		}
		if !errors.Is(single.Err(), context.Canceled) || !errors.Is(parent.Err(), context.Canceled) {
			t.Fatalf("results: %v, %v", single.Err(), parent.Err())
		}
	})
}
