package daos

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/testsys/cluster"
	"github.com/godaos/godaos/internal/testsys/inproc"
)

// lockPair is two clients (two processes' worth: their own Client, pool and
// container handles) of one container, and an object of it.
func lockPair(t *testing.T) (a, b *Cont, oid OID) {
	t.Helper()
	s := inproc.Start(t, false)
	a = testContOn(t, s)
	ctx := context.Background()
	p, err := client(t, s).PoolConnect(ctx, "p", RW)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = p.ContOpen(ctx, "c", RW); err != nil {
		t.Fatal(err)
	}
	if oid, err = a.GenerateOID(ctx, SX, OTArrayByte); err != nil {
		t.Fatal(err)
	}
	if a.LockClientID() == b.LockClientID() {
		t.Fatalf("two handles share the lock client id %s", a.LockClientID())
	}
	return a, b, oid
}

func TestLocks(t *testing.T) {
	a, b, oid := lockPair(t)
	ctx := context.Background()
	pa, pb := LockOwner{Owner: 1, Pid: 100}, LockOwner{Owner: 1, Pid: 200}

	t.Run("conflicts between clients", func(t *testing.T) {
		if err := a.SetLock(ctx, oid, pa, ByteLock{Type: LockWrite, Start: 0, End: 99}, false); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "F_SETLK over another client's write lock", b.SetLock(ctx, oid, pb, ByteLock{Type: LockRead, Start: 50, End: 60}, false), daoserr.Busy)
		got, err := b.GetLock(ctx, oid, pb, ByteLock{Type: LockRead, Start: 50, End: LockEOF})
		if err != nil || got != (ByteLock{Type: LockWrite, Start: 0, End: 99, Pid: 100}) {
			t.Fatalf("F_GETLK: %+v %v", got, err)
		}
		if got, err := a.GetLock(ctx, oid, pa, ByteLock{Type: LockWrite, Start: 0, End: LockEOF}); err != nil || got.Type != LockUnlock {
			t.Fatalf("F_GETLK by the holder: %+v %v", got, err)
		}
		if err := b.SetLock(ctx, oid, pb, ByteLock{Type: LockWrite, Start: 100, End: LockEOF}, false); err != nil {
			t.Fatalf("the bytes after: %v", err)
		}
		// a converts part of its lock to a read lock: b may read that part
		if err := a.SetLock(ctx, oid, pa, ByteLock{Type: LockRead, Start: 40, End: 59}, false); err != nil {
			t.Fatal(err)
		}
		if err := b.SetLock(ctx, oid, pb, ByteLock{Type: LockRead, Start: 40, End: 59}, false); err != nil {
			t.Fatalf("read beside a read lock: %v", err)
		}
		wantCode(t, "read over the rest", b.SetLock(ctx, oid, pb, ByteLock{Type: LockRead, Start: 39, End: 40}, false), daoserr.Busy)
		for _, h := range []*Cont{a, b} {
			if err := h.UnlockOwner(ctx, oid, LockOwner{Owner: 1}); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("owners of one client conflict", func(t *testing.T) {
		if err := a.SetLock(ctx, oid, LockOwner{Owner: 7}, ByteLock{Type: LockWrite, Start: 0, End: 9}, false); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "another owner", a.SetLock(ctx, oid, LockOwner{Owner: 8}, ByteLock{Type: LockWrite, Start: 5, End: 5}, false), daoserr.Busy)
		a.UnlockOwner(ctx, oid, LockOwner{Owner: 7})
	})

	t.Run("a wait is woken by the unlock", func(t *testing.T) {
		if err := a.SetLock(ctx, oid, pa, ByteLock{Type: LockWrite, Start: 0, End: LockEOF}, false); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- b.SetLock(ctx, oid, pb, ByteLock{Type: LockWrite, Start: 10, End: 19}, true) }()
		// Let b's request reach its engine and park (the engine test checks
		// the wake itself; here b gets the lock whichever comes first).
		time.Sleep(50 * time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("b took a held lock: %v", err)
		default:
		}
		if err := a.SetLock(ctx, oid, pa, ByteLock{Type: LockUnlock, Start: 0, End: LockEOF}, false); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		wantCode(t, "a after b took it", a.SetLock(ctx, oid, pa, ByteLock{Type: LockRead, Start: 15, End: 15}, false), daoserr.Busy)
		b.UnlockOwner(ctx, oid, pb)
	})

	t.Run("a wait ends with its context", func(t *testing.T) {
		a.SetLock(ctx, oid, pa, ByteLock{Type: LockRead, Start: 0, End: 0}, false)
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		err := b.SetLock(wctx, oid, pb, ByteLock{Type: LockWrite, Start: 0, End: 0}, true)
		if err == nil {
			t.Fatal("b took a held lock")
		}
		if c := daoserr.CodeOf(err); c != daoserr.TimedOut && c != daoserr.Canceled && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a wait past its deadline: %v", err)
		}
		a.UnlockOwner(ctx, oid, pa)
		// b gave up: whatever its engine was doing then, b holds nothing
		if got, err := a.GetLock(ctx, oid, pa, ByteLock{Type: LockWrite, Start: 0, End: LockEOF}); err != nil || got.Type != LockUnlock {
			t.Fatalf("b holds %+v (%v) after giving up", got, err)
		}
	})

	t.Run("deadlock", func(t *testing.T) {
		a.SetLock(ctx, oid, pa, ByteLock{Type: LockWrite, Start: 0, End: 9}, false)
		b.SetLock(ctx, oid, pb, ByteLock{Type: LockWrite, Start: 10, End: 19}, false)
		// Each waits for the other's range: whichever closes the cycle
		// hears DER_DEADLK, releases its lock (as a program would), and the
		// other gets the lock it waited for.
		errs := make(chan error, 2)
		wait := func(h *Cont, o LockOwner, start, end uint64) {
			err := h.SetLock(ctx, oid, o, ByteLock{Type: LockWrite, Start: start, End: end}, true)
			if daoserr.Is(err, daoserr.Deadlk) {
				h.UnlockOwner(ctx, oid, o)
			}
			errs <- err
		}
		go wait(a, pa, 10, 19)
		go wait(b, pb, 0, 9)
		var deadlocks int
		for range 2 {
			err := <-errs
			switch {
			case daoserr.Is(err, daoserr.Deadlk):
				deadlocks++
			case err != nil:
				t.Fatal(err)
			}
		}
		if deadlocks != 1 {
			t.Fatalf("%d of the two waits heard DER_DEADLK, want 1", deadlocks)
		}
		a.UnlockOwner(ctx, oid, pa)
		b.UnlockOwner(ctx, oid, pb)
	})

	t.Run("unlock owner", func(t *testing.T) {
		o1, o2 := LockOwner{Owner: 1}, LockOwner{Owner: 2}
		a.SetLock(ctx, oid, o1, ByteLock{Type: LockWrite, Start: 0, End: 9}, false)
		a.SetLock(ctx, oid, o1, ByteLock{Type: LockRead, Start: 20, End: 29}, false)
		a.SetLock(ctx, oid, o2, ByteLock{Type: LockWrite, Start: 40, End: 49}, false)
		if err := a.UnlockOwner(ctx, oid, o1); err != nil {
			t.Fatal(err)
		}
		if err := b.SetLock(ctx, oid, pb, ByteLock{Type: LockWrite, Start: 0, End: 29}, false); err != nil {
			t.Fatalf("after the owner's release: %v", err)
		}
		wantCode(t, "the other owner's lock", b.SetLock(ctx, oid, pb, ByteLock{Type: LockWrite, Start: 45, End: 45}, false), daoserr.Busy)
		a.UnlockOwner(ctx, oid, o2)
		b.UnlockOwner(ctx, oid, pb)
	})

	t.Run("release locks", func(t *testing.T) {
		oid2, err := a.GenerateOID(ctx, SX, OTArrayByte)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range []OID{oid, oid2} {
			a.SetLock(ctx, o, pa, ByteLock{Type: LockWrite, Start: 0, End: LockEOF}, false)
		}
		if err := a.ReleaseLocks(ctx); err != nil {
			t.Fatal(err)
		}
		for _, o := range []OID{oid, oid2} {
			if err := b.SetLock(ctx, o, pb, ByteLock{Type: LockWrite, Start: 0, End: LockEOF}, false); err != nil {
				t.Fatalf("object %s after a released its locks: %v", o, err)
			}
			b.UnlockOwner(ctx, o, pb)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		wantCode(t, "type 0", a.SetLock(ctx, oid, pa, ByteLock{Start: 0, End: 1}, false), daoserr.Inval)
		wantCode(t, "reversed range", a.SetLock(ctx, oid, pa, ByteLock{Type: LockRead, Start: 2, End: 1}, false), daoserr.Inval)
		_, err := a.GetLock(ctx, oid, pa, ByteLock{Type: LockUnlock, End: 1})
		wantCode(t, "F_GETLK of an unlock", err, daoserr.Inval)
		wantCode(t, "lease too short", a.SetLockOptions(LockOptions{Lease: time.Millisecond}), daoserr.Inval)
	})
}

// TestLockLease: a client that stops renewing (it died) loses its locks when
// its lease ends, and the client waiting for them gets them then; one that
// renews keeps them.
func TestLockLease(t *testing.T) {
	a, b, oid := lockPair(t)
	ctx := context.Background()
	const lease = time.Second
	if err := a.SetLockOptions(LockOptions{Lease: lease, Renew: lease / 10}); err != nil {
		t.Fatal(err)
	}
	pa, pb := LockOwner{Owner: 1, Pid: 1}, LockOwner{Owner: 1, Pid: 2}
	if err := a.SetLock(ctx, oid, pa, ByteLock{Type: LockWrite, Start: 0, End: LockEOF}, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * lease) // renewed meanwhile: still held
	wantCode(t, "a lock whose lease is renewed", b.SetLock(ctx, oid, pb, ByteLock{Type: LockRead, Start: 0, End: 0}, false), daoserr.Busy)

	t0 := time.Now()
	defer func() { t.Logf("dead lock taken after %v", time.Since(t0)) }()
	a.freezeLocks() // a dies
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := b.SetLock(wctx, oid, pb, ByteLock{Type: LockWrite, Start: 0, End: 99}, true); err != nil {
		t.Fatalf("waiting for a dead client's lock: %v", err)
	}
	got, err := a.GetLock(ctx, oid, pa, ByteLock{Type: LockRead, Start: 0, End: LockEOF})
	if err != nil || got != (ByteLock{Type: LockWrite, Start: 0, End: 99, Pid: 2}) {
		t.Fatalf("F_GETLK after a's lease: %+v %v", got, err)
	}
}

// TestLocksCluster: on three servers the lock tables of objects of every
// kind of class spread over the engines, and two clients find each object's
// table in the same place (the first live shard of group 0).
func TestLocksCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: run in the full pass")
	}
	sys := cluster.Start(t, cluster.Options{Servers: 3, Targets: 2})
	a := sysCont(t, sys, sys.Pool, "locks", nil)
	ctx := context.Background()
	c, err := Init(ctx, Options{AgentSocket: sys.AgentSocket, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Fini() })
	p, err := c.PoolConnect(ctx, sys.Pool, RW)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.ContOpen(ctx, "locks", RW)
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := LockOwner{Owner: 1, Pid: 10}, LockOwner{Owner: 1, Pid: 20}
	where := map[[2]uint32]bool{}
	for _, class := range []placement.ClassID{S1, placement.RP3G1, placement.MakeClass(placement.RS2P1, 1)} {
		t.Run(class.String(), func(t *testing.T) {
			for range 8 {
				lo, err := a.NextOID(ctx)
				if err != nil {
					t.Fatal(err)
				}
				oid := placement.MakeOID(lo, 0, class, OTArrayByte)
				l, err := a.Layout(oid)
				if err != nil {
					t.Fatal(err)
				}
				where[[2]uint32{l.Group(0)[0].Rank, l.Group(0)[0].Target}] = true
				if err := a.SetLock(ctx, oid, pa, ByteLock{Type: LockWrite, Start: 0, End: LockEOF}, false); err != nil {
					t.Fatal(err)
				}
				wantCode(t, "b over a's lock", b.SetLock(ctx, oid, pb, ByteLock{Type: LockRead, Start: 7, End: 7}, false), daoserr.Busy)
				if got, err := b.GetLock(ctx, oid, pb, ByteLock{Type: LockRead, Start: 7, End: 7}); err != nil || got.Pid != 10 {
					t.Fatalf("F_GETLK: %+v %v", got, err)
				}
				if err := a.UnlockOwner(ctx, oid, pa); err != nil {
					t.Fatal(err)
				}
				if err := b.SetLock(ctx, oid, pb, ByteLock{Type: LockWrite, Start: 0, End: 9}, false); err != nil {
					t.Fatal(err)
				}
				if err := b.UnlockOwner(ctx, oid, pb); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	if len(where) < 3 {
		t.Fatalf("24 objects' lock tables on %d targets only", len(where))
	}
}

// BenchmarkLockUnlock: one F_SETLK and one F_UNLCK of a client, as ROMIO's
// data sieving does around each read-modify-write.
func BenchmarkLockUnlock(b *testing.B) {
	s := inproc.Start(b, false)
	s.CreatePool(b, "p", me(b))
	ctx := context.Background()
	p, err := client(b, s).PoolConnect(ctx, "p", RW)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.ContCreate(ctx, ContCreateOptions{Label: "c"}); err != nil {
		b.Fatal(err)
	}
	h, err := p.ContOpen(ctx, "c", RW)
	if err != nil {
		b.Fatal(err)
	}
	oid, err := h.GenerateOID(ctx, SX, OTArrayByte)
	if err != nil {
		b.Fatal(err)
	}
	o := LockOwner{Owner: 1, Pid: 1}
	for i := 0; b.Loop(); i++ {
		l := ByteLock{Type: LockWrite, Start: uint64(i) << 20, End: uint64(i)<<20 + 1<<20 - 1}
		if err := h.SetLock(ctx, oid, o, l, false); err != nil {
			b.Fatal(err)
		}
		l.Type = LockUnlock
		if err := h.SetLock(ctx, oid, o, l, false); err != nil {
			b.Fatal(err)
		}
	}
}
