package daos

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
)

// Event queues and events: DAOS's non-blocking API (daos_event.h), the shape
// the C ABI will expose. Any call of this package runs asynchronously when
// launched with an event:
//
//	ev, _ := daos.NewEvent(eq, nil)
//	ev.Launch(ctx, func(ctx context.Context) error {
//		_, err := obj.Update(ctx, dkey, iods, sgls)
//		return err
//	})
//	evs, _ := eq.Poll(ctx, 1, 16, -1) // completed events; each one's Err() is its result
//
// An event goes Ready → (Launch) → Running → Completed → (Poll, Test or Wait)
// → Ready again, and can then be launched anew. An event may have a parent:
// children are launched first, and the parent completes only when all of them
// have (and its own operation, if it has one: ParentBarrier launches a parent
// without one, DAOS's daos_event_parent_barrier). Only the parent ever
// reaches the queue.
//
// How ops run: each launched operation runs on a goroutine of its own, started
// by Launch. The calls of this package block while their request is on the
// wire (the RPC layer multiplexes every request to an engine over a few
// connections), so an operation in flight needs a parked stack somewhere; a
// goroutine is that stack at a few KiB, and the number of them is bounded by
// the number of events the caller has in flight, exactly as DAOS bounds its
// in-flight operations by events. A worker pool would add a second, hidden
// limit on what is in flight (a pool smaller than the caller's queue depth
// would quietly serialise it) without saving anything. The caller itself
// launches any number of operations from one goroutine and polls once.

// evState is where an event is in its life.
type evState uint8

const (
	evReady     evState = iota // initialised, or completed and consumed
	evRunning                  // launched, not complete
	evCompleted                // complete, not yet polled or tested
)

// EQ is an event queue (daos_eq_create): completed events wait in it until
// Poll returns them.
type EQ struct {
	mu      sync.Mutex
	closed  bool
	running int           // launched top-level events not yet complete
	comp    []*Event      // completed top-level events, oldest first
	changed chan struct{} // closed (and replaced) whenever comp grows or the queue closes
	ops     sync.WaitGroup
	active  map[*Event]struct{} // events whose operation runs now (children included)
}

// NewEQ creates an event queue.
func NewEQ() *EQ {
	return &EQ{changed: make(chan struct{}), active: map[*Event]struct{}{}}
}

// Event tracks one asynchronous operation (daos_event_t).
type Event struct {
	eq     *EQ
	parent *Event
	lk     *sync.Mutex // the queue's lock, else the top-level event's own
	own    sync.Mutex

	state     evState
	finalized bool
	opDone    bool // this launch's operation (if any) has returned
	opErr     error
	err       error         // the result of the last completed launch
	done      chan struct{} // closed when this launch completes
	cancel    context.CancelFunc

	children  []*Event
	childDone int // children completed in this round
}

// NewEvent initialises an event (daos_event_init) in eq (nil: no queue; the
// event is then tested or waited for on its own). With a parent, the event is
// one of its children and belongs to the parent's queue; the parent must not
// be launched yet, and must not be a child itself.
func NewEvent(eq *EQ, parent *Event) (*Event, error) {
	e := &Event{eq: eq}
	e.lk = &e.own
	if parent != nil {
		if eq != nil && eq != parent.eq {
			return nil, daoserr.New(daoserr.Inval, "new event: its queue differs from its parent's").
				WithResolution("give the parent's queue, or nil")
		}
		parent.lk.Lock()
		defer parent.lk.Unlock()
		switch {
		case parent.finalized:
			return nil, daoserr.New(daoserr.Inval, "new event: the parent event is finalized")
		case parent.parent != nil:
			return nil, daoserr.New(daoserr.NoPerm, "new event: the parent is itself a child event (events nest one level)")
		case parent.state != evReady:
			return nil, daoserr.New(daoserr.Inval, "new event: the parent event is already launched").
				WithResolution("add children before launching the parent")
		}
		e.eq, e.parent, e.lk = parent.eq, parent, parent.lk
		parent.children = append(parent.children, e)
		return e, nil
	}
	if eq != nil {
		eq.mu.Lock()
		defer eq.mu.Unlock()
		if eq.closed {
			return nil, errEQClosed("new event")
		}
		e.lk = &eq.mu
	}
	return e, nil
}

func errEQClosed(what string) error {
	return daoserr.Newf(daoserr.Nonexist, "%s: the event queue is closed", what).WithResolution("create a new queue with NewEQ")
}

// Launch runs op asynchronously with a context derived from ctx, which Abort
// and a forced Destroy of the queue cancel. The event must be ready (new, or
// consumed by Poll, Test or Wait), and a parent's children must all be
// launched before it. op's result is the event's Err once it completes.
func (e *Event) Launch(ctx context.Context, op func(ctx context.Context) error) error {
	if op == nil {
		return daoserr.New(daoserr.Inval, "launch event: no operation")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	return e.launch(ctx, op)
}

// ParentBarrier launches a parent event that has no operation of its own: it
// completes when the last of its children does (at once if they all have),
// with the first child error in the order the children were created.
func (e *Event) ParentBarrier() error {
	e.lk.Lock()
	n := len(e.children)
	e.lk.Unlock()
	if n == 0 {
		return daoserr.New(daoserr.Inval, "parent barrier: the event has no children").
			WithResolution("create child events with NewEvent(nil, parent) first")
	}
	return e.launch(nil, nil)
}

func (e *Event) launch(ctx context.Context, op func(ctx context.Context) error) error {
	e.lk.Lock()
	defer e.lk.Unlock()
	switch {
	case e.finalized:
		return daoserr.New(daoserr.Inval, "launch event: the event is finalized")
	case e.state != evReady:
		return daoserr.New(daoserr.NoPerm, "launch event: the event is already in flight or not yet polled").
			WithResolution("poll, test or wait for it first")
	case e.parent != nil && e.parent.state != evReady:
		return daoserr.New(daoserr.NoPerm, "launch event: its parent is already launched")
	case e.eq != nil && e.eq.closed:
		return errEQClosed("launch event")
	}
	for _, c := range e.children {
		if c.state == evReady {
			return daoserr.New(daoserr.NoPerm, "launch event: a child event is not launched yet").
				WithResolution("launch every child before its parent")
		}
	}
	e.state, e.err, e.opErr, e.opDone = evRunning, nil, nil, op == nil
	e.done = make(chan struct{})
	if e.parent == nil && e.eq != nil {
		e.eq.running++
	}
	if op == nil { // a barrier: its children may all have completed already
		e.completeIfDone()
		return nil
	}
	opCtx, cancel := context.WithCancel(ctx)
	e.cancel = cancel
	if e.eq != nil {
		e.eq.ops.Add(1)
		e.eq.active[e] = struct{}{}
	}
	go e.run(opCtx, op)
	return nil
}

// run runs a launched operation and completes the event.
func (e *Event) run(ctx context.Context, op func(ctx context.Context) error) {
	err := op(ctx)
	e.lk.Lock()
	e.cancel()
	e.cancel = nil
	e.opDone, e.opErr = true, err
	if e.eq != nil {
		delete(e.eq.active, e)
	}
	e.completeIfDone()
	e.lk.Unlock()
	if e.eq != nil {
		e.eq.ops.Done()
	}
}

// completeIfDone completes a running event whose operation and children are
// all done, and passes that on to its parent or its queue. Under e.lk.
func (e *Event) completeIfDone() {
	if e.state != evRunning || !e.opDone || e.childDone < len(e.children) {
		return
	}
	e.err = e.opErr
	for _, c := range e.children {
		if e.err == nil {
			e.err = c.err
		}
	}
	e.state = evCompleted
	close(e.done)
	if p := e.parent; p != nil {
		p.childDone++
		p.completeIfDone()
		return
	}
	if q := e.eq; q != nil {
		q.running--
		q.comp = append(q.comp, e)
		q.notify()
	}
}

// consume returns a completed top-level event to ready, with its children, so
// that it can be launched again. Under e.lk.
func (e *Event) consume() {
	e.state, e.childDone = evReady, 0
	for _, c := range e.children {
		c.state = evReady
	}
}

// notify wakes Poll's waiters. Under q.mu.
func (q *EQ) notify() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// Test reports whether the event has completed (daos_event_test) and, if it
// has, returns its result and makes it ready again (taking it out of its
// queue). An event never launched tests as done. Children are tested through
// their parent (DER_NO_PERM).
func (e *Event) Test() (bool, error) {
	e.lk.Lock()
	defer e.lk.Unlock()
	switch {
	case e.parent != nil:
		return false, daoserr.New(daoserr.NoPerm, "test event: it is a child event").WithResolution("test its parent")
	case e.finalized:
		return false, daoserr.New(daoserr.Inval, "test event: the event is finalized")
	case e.state == evRunning:
		return false, nil
	case e.state == evCompleted:
		if q := e.eq; q != nil {
			q.comp = slices.DeleteFunc(q.comp, func(x *Event) bool { return x == e })
		}
		e.consume()
	}
	return true, e.err
}

// Wait waits until the event has completed, then does what Test does. It
// returns ctx's error (DER_CANCELED or DER_TIMEDOUT) if ctx ends first.
func (e *Event) Wait(ctx context.Context) error {
	if e.parent != nil {
		return daoserr.New(daoserr.NoPerm, "wait for event: it is a child event").WithResolution("wait for its parent")
	}
	for {
		e.lk.Lock()
		done := e.done
		running := e.state == evRunning
		e.lk.Unlock()
		if !running {
			_, err := e.Test()
			return err
		}
		select {
		case <-done:
		case <-ctx.Done():
			return ctxErr(ctx, "wait for event")
		}
	}
}

// Err is the result of the event's last completed launch: its operation's
// error, or for a parent the first error among its own operation and then its
// children in the order they were created.
func (e *Event) Err() error {
	e.lk.Lock()
	defer e.lk.Unlock()
	return e.err
}

// Abort cancels the context of a running event's operation, and of its
// running children's (daos_event_abort). The event still completes, when the
// operation returns, with what it returns: DER_CANCELED from the calls of
// this package.
func (e *Event) Abort() error {
	e.lk.Lock()
	defer e.lk.Unlock()
	if e.state != evRunning {
		return daoserr.New(daoserr.NoPerm, "abort event: the event is not in flight")
	}
	e.abortLocked()
	return nil
}

func (e *Event) abortLocked() {
	if e.cancel != nil {
		e.cancel()
	}
	for _, c := range e.children {
		if c.state == evRunning && c.cancel != nil {
			c.cancel()
		}
	}
}

// Fini finalizes an event and its children (daos_event_fini): DER_BUSY while
// it or a child is in flight. A completed event not yet polled leaves its
// queue. A child is finalized only while its parent is not launched.
func (e *Event) Fini() error {
	e.lk.Lock()
	defer e.lk.Unlock()
	if e.finalized {
		return nil
	}
	if e.state == evRunning {
		return daoserr.New(daoserr.Busy, "finalize event: the event is in flight").WithResolution("wait for it or abort it first")
	}
	for _, c := range e.children {
		if c.state == evRunning {
			return daoserr.New(daoserr.Busy, "finalize event: a child event is in flight").WithResolution("wait for the parent first")
		}
	}
	if p := e.parent; p != nil {
		if p.state != evReady {
			return daoserr.New(daoserr.Inval, "finalize event: its parent is launched").WithResolution("finalize the parent, or wait for it first")
		}
		if e.state == evCompleted {
			p.childDone--
		}
		p.children = slices.DeleteFunc(p.children, func(x *Event) bool { return x == e })
	}
	if e.state == evCompleted && e.parent == nil && e.eq != nil {
		e.eq.comp = slices.DeleteFunc(e.eq.comp, func(x *Event) bool { return x == e })
	}
	for _, c := range e.children {
		c.finalized, c.parent = true, nil
	}
	e.children, e.finalized, e.state = nil, true, evReady
	return nil
}

// Poll returns up to max completed events of the queue (daos_eq_poll), oldest
// first, each made ready again; their results are their Err. It waits until
// at least min have completed, or until none is in flight any more (nothing
// else can complete), or for timeout (negative: no limit; 0: not at all); at
// the timeout it returns what has completed, perhaps nothing. It fails only
// when ctx ends (DER_CANCELED or DER_TIMEDOUT, returning nothing) or the
// queue is closed (DER_NONEXIST).
func (q *EQ) Poll(ctx context.Context, min, max int, timeout time.Duration) ([]*Event, error) {
	if max < 1 || min < 0 || min > max {
		return nil, daoserr.Newf(daoserr.Inval, "poll event queue: min %d, max %d", min, max).
			WithResolution("give 0 <= min <= max and max >= 1")
	}
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if q.closed {
			return nil, errEQClosed("poll event queue")
		}
		if len(q.comp) >= min || q.running == 0 || timeout == 0 {
			break
		}
		changed := q.changed
		q.mu.Unlock()
		select {
		case <-changed:
			q.mu.Lock()
			continue
		case <-expired:
			timeout = 0 // take what there is
			q.mu.Lock()
			continue
		case <-ctx.Done():
			q.mu.Lock()
			return nil, ctxErr(ctx, "poll event queue")
		}
	}
	n := len(q.comp)
	if n > max {
		n = max
	}
	out := slices.Clone(q.comp[:n])
	q.comp = slices.Delete(q.comp, 0, n)
	for _, e := range out {
		e.consume()
	}
	return out, nil
}

// Len is how many of the queue's events are in flight and how many have
// completed but not been polled (daos_eq_query).
func (q *EQ) Len() (inFlight, completed int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.running, len(q.comp)
}

// Close destroys the queue (daos_eq_destroy), refused with DER_BUSY while any
// of its events is in flight or completed but not polled.
func (q *EQ) Close() error { return q.Destroy(false) }

// Destroy destroys the queue; with force, even with events in flight: their
// operations' contexts are cancelled (as Abort does) and Destroy returns once
// every one of them has returned, so that none still uses its buffers.
// Completed events not polled are dropped. Events of a destroyed queue can
// only be finalized.
func (q *EQ) Destroy(force bool) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return errEQClosed("destroy event queue")
	}
	if !force && (q.running > 0 || len(q.comp) > 0 || len(q.active) > 0) {
		running, comp, ops := q.running, len(q.comp), len(q.active)
		q.mu.Unlock()
		return daoserr.Newf(daoserr.Busy, "destroy event queue: %d events in flight, %d operations running, %d completed and not polled",
			running, ops, comp).WithResolution("poll the queue until it is empty, or destroy it with force")
	}
	q.closed = true
	for e := range q.active {
		e.cancel()
	}
	q.notify()
	q.mu.Unlock()
	q.ops.Wait()
	q.mu.Lock()
	q.comp, q.running = nil, 0
	q.mu.Unlock()
	return nil
}

// ctxErr is ctx's end as a DAOS error.
func ctxErr(ctx context.Context, what string) error {
	if ctx.Err() == context.DeadlineExceeded {
		return daoserr.Wrap(daoserr.TimedOut, ctx.Err(), "%s", what)
	}
	return daoserr.Wrap(daoserr.Canceled, ctx.Err(), "%s", what)
}
