package mover

import (
	"context"
	"sync"
)

// sched runs tasks on a bounded pool of workers. Tasks may add tasks; run
// returns once every task has finished, or at the first error (after
// which no task starts, and the context the running ones got is
// canceled). Higher priorities run first: pieces of open files before new
// files, files before directories, so that open files stay few and are
// finished before more are opened.
type sched struct {
	mu      sync.Mutex
	cond    *sync.Cond
	queues  [nPrio][]func(context.Context) error
	pending int // tasks added and not finished
	err     error
	ctx     context.Context
	cancel  context.CancelFunc
}

const (
	prioDir = iota
	prioFile
	prioPiece
	nPrio
)

func newSched(ctx context.Context) *sched {
	s := &sched{}
	s.cond = sync.NewCond(&s.mu)
	s.ctx, s.cancel = context.WithCancel(ctx)
	return s
}

// push adds a task.
func (s *sched) push(prio int, fn func(context.Context) error) {
	s.mu.Lock()
	s.queues[prio] = append(s.queues[prio], fn)
	s.pending++
	s.mu.Unlock()
	s.cond.Signal()
}

// fail records the first error and stops everything.
func (s *sched) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.cancel()
	s.cond.Broadcast()
}

func (s *sched) next() func(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.err != nil || s.pending == 0 {
			return nil
		}
		for p := nPrio - 1; p >= 0; p-- {
			if q := s.queues[p]; len(q) > 0 {
				fn := q[len(q)-1] // last in, first out: depth first, few open at once
				q[len(q)-1] = nil
				s.queues[p] = q[:len(q)-1]
				return fn
			}
		}
		s.cond.Wait()
	}
}

func (s *sched) done() {
	s.mu.Lock()
	s.pending--
	last := s.pending == 0
	s.mu.Unlock()
	if last {
		s.cond.Broadcast()
	}
}

// run runs the tasks on workers goroutines until all are done.
func (s *sched) run(workers int) error {
	stop := context.AfterFunc(s.ctx, func() {
		s.mu.Lock()
		if s.err == nil {
			s.err = context.Cause(s.ctx)
		}
		s.mu.Unlock()
		s.cond.Broadcast()
	})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fn := s.next(); fn != nil; fn = s.next() {
				if err := fn(s.ctx); err != nil {
					s.fail(err)
				}
				s.done()
			}
		}()
	}
	wg.Wait()
	stop()
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	s.cancel()
	return err
}
