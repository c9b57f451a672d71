package engine

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/server/vos"
)

// lockModelN is the reference model's size: bytes 0..N-1 one cell each, and
// cell N for every byte from N to EOF (the ranges drawn all start below N, so
// those bytes are always locked alike).
const lockModelN = 10

// lockModel is the reference: per owner, per cell, the lock type held (0:
// none).
type lockModel map[lockOwner]*[lockModelN + 1]uint32

func cellRange(start, end uint64) (int, int) {
	if end == math.MaxUint64 || end >= lockModelN {
		return int(start), lockModelN
	}
	return int(start), int(end)
}

// locks are the model's locks as a canonical table holds them: maximal runs
// of one owner and type.
func (m lockModel) locks() []heldLock {
	var out []heldLock
	for o, cells := range m {
		for i := 0; i <= lockModelN; {
			if cells[i] == 0 {
				i++
				continue
			}
			j := i
			for j+1 <= lockModelN && cells[j+1] == cells[i] {
				j++
			}
			end := uint64(j)
			if j == lockModelN {
				end = math.MaxUint64
			}
			out = append(out, heldLock{o, cells[i], uint64(i), end})
			i = j + 1
		}
	}
	slices.SortFunc(out, lockLess)
	return out
}

func (m lockModel) conflicts(o lockOwner, typ uint32, start, end uint64) []heldLock {
	var out []heldLock
	for _, l := range m.locks() {
		if l.owner != o && l.overlaps(start, end) && (typ == lockWrite || l.typ == lockWrite) {
			out = append(out, l)
		}
	}
	return out
}

func (m lockModel) set(o lockOwner, typ uint32, start, end uint64) {
	cells := m[o]
	if cells == nil {
		cells = new([lockModelN + 1]uint32)
		m[o] = cells
	}
	s, e := cellRange(start, end)
	for i := s; i <= e; i++ {
		if typ == lockUnlock {
			cells[i] = 0
		} else {
			cells[i] = typ
		}
	}
}

// TestLockTableModel holds the lock table against the per-byte model over
// random sequences of F_SETLK (lock, convert, unlock, split, merge), F_GETLK,
// an owner's release and a client's death.
func TestLockTableModel(t *testing.T) {
	owners := []lockOwner{{"a", 1}, {"a", 2}, {"b", 1}, {"c", 9}}
	rapid.Check(t, func(rt *rapid.T) {
		tab := &lockTable{pids: map[lockOwner]uint32{}}
		model := lockModel{}
		genRange := func(rt *rapid.T) (uint64, uint64) {
			start := rapid.Uint64Range(0, lockModelN-1).Draw(rt, "start")
			if rapid.IntRange(0, 3).Draw(rt, "eof") == 0 {
				return start, math.MaxUint64
			}
			return start, rapid.Uint64Range(start, lockModelN-1).Draw(rt, "end")
		}
		check := func(rt *rapid.T) {
			if want := model.locks(); !slices.Equal(tab.locks, want) {
				rt.Fatalf("table %v\nmodel %v", tab.locks, want)
			}
		}
		rt.Repeat(map[string]func(*rapid.T){
			"set": func(rt *rapid.T) {
				o := rapid.SampledFrom(owners).Draw(rt, "owner")
				typ := rapid.SampledFrom([]uint32{lockRead, lockWrite, lockUnlock}).Draw(rt, "type")
				start, end := genRange(rt)
				want := model.conflicts(o, typ, start, end)
				if typ == lockUnlock {
					want = nil
				}
				var got []heldLock
				if typ != lockUnlock {
					got = tab.conflicts(o, typ, start, end)
				}
				if !slices.Equal(got, want) {
					rt.Fatalf("conflicts of %v %d %d-%d: %v, model %v", o, typ, start, end, got, want)
				}
				if len(got) == 0 {
					tab.set(o, typ, start, end)
					model.set(o, typ, start, end)
				}
				check(rt)
			},
			"get": func(rt *rapid.T) {
				o := rapid.SampledFrom(owners).Draw(rt, "owner")
				typ := rapid.SampledFrom([]uint32{lockRead, lockWrite}).Draw(rt, "type")
				start, end := genRange(rt)
				got, want := tab.conflicts(o, typ, start, end), model.conflicts(o, typ, start, end)
				if len(got) != len(want) || len(got) > 0 && got[0] != want[0] {
					rt.Fatalf("F_GETLK %v %d %d-%d: %v, model %v", o, typ, start, end, got, want)
				}
			},
			"unlock owner": func(rt *rapid.T) {
				o := rapid.SampledFrom(owners).Draw(rt, "owner")
				tab.unlockOwner(o)
				delete(model, o)
				check(rt)
			},
			"client dies": func(rt *rapid.T) {
				c := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(rt, "client")
				tab.dropClients(func(x string) bool { return x == c })
				for o := range model {
					if o.client == c {
						delete(model, o)
					}
				}
				check(rt)
			},
		})
	})
}

// TestLockTableSemantics: POSIX cases by hand, beside the model.
func TestLockTableSemantics(t *testing.T) {
	a, b := lockOwner{"a", 1}, lockOwner{"b", 1}
	type op struct {
		o          lockOwner
		typ        uint32
		start, end uint64
	}
	tests := []struct {
		name string
		ops  []op
		want []heldLock
	}{
		{"write over part of a read converts that part", []op{{a, lockRead, 0, 99}, {a, lockWrite, 10, 19}},
			[]heldLock{{a, lockRead, 0, 9}, {a, lockWrite, 10, 19}, {a, lockRead, 20, 99}}},
		{"unlock in the middle splits", []op{{a, lockWrite, 0, math.MaxUint64}, {a, lockUnlock, 100, 199}},
			[]heldLock{{a, lockWrite, 0, 99}, {a, lockWrite, 200, math.MaxUint64}}},
		{"adjacent locks of one type merge", []op{{a, lockRead, 0, 9}, {a, lockRead, 10, 19}, {a, lockRead, 30, 39}},
			[]heldLock{{a, lockRead, 0, 19}, {a, lockRead, 30, 39}}},
		{"readers share", []op{{a, lockRead, 0, 9}, {b, lockRead, 5, 14}},
			[]heldLock{{a, lockRead, 0, 9}, {b, lockRead, 5, 14}}},
		{"unlock of nothing", []op{{a, lockUnlock, 0, math.MaxUint64}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := &lockTable{pids: map[lockOwner]uint32{}}
			for _, o := range tc.ops {
				tab.set(o.o, o.typ, o.start, o.end)
			}
			if !slices.Equal(tab.locks, tc.want) {
				t.Fatalf("%v, want %v", tab.locks, tc.want)
			}
		})
	}
	t.Run("conflicts", func(t *testing.T) {
		tab := &lockTable{pids: map[lockOwner]uint32{}}
		tab.set(a, lockRead, 0, 9)
		tab.set(a, lockWrite, 20, 29)
		for _, c := range []struct {
			typ        uint32
			start, end uint64
			want       int
		}{{lockRead, 0, 9, 0}, {lockWrite, 0, 9, 1}, {lockRead, 25, 25, 1}, {lockWrite, 10, 19, 0}, {lockWrite, 0, math.MaxUint64, 2}} {
			if got := tab.conflicts(b, c.typ, c.start, c.end); len(got) != c.want {
				t.Errorf("%d %d-%d: %v, want %d conflicts", c.typ, c.start, c.end, got, c.want)
			}
		}
		if got := tab.conflicts(a, lockWrite, 0, math.MaxUint64); len(got) != 0 {
			t.Errorf("an owner conflicts with itself: %v", got)
		}
	})
}

// testLocks is a lock service without an engine (serve needs none), with a
// clock the test moves.
type testLocks struct {
	*lockService
	mu  sync.Mutex
	now time.Time
}

func newTestLocks() *testLocks {
	l := &testLocks{lockService: newLockService(nil), now: time.Unix(1e9, 0)}
	l.lockService.now = func() time.Time { l.mu.Lock(); defer l.mu.Unlock(); return l.now }
	return l
}

func (l *testLocks) advance(d time.Duration) { l.mu.Lock(); l.now = l.now.Add(d); l.mu.Unlock() }

var testPool, testCont = vos.UUID{1}, vos.UUID{2}

// setReq is a SET, or with a wait, a WAIT.
func setReq(o lockOwner, typ uint32, start, end uint64, wait time.Duration) *lockReq {
	cmd := lockCmdSet
	if wait > 0 {
		cmd = lockCmdWait
	}
	return &lockReq{cmd: cmd, pool: testPool, cont: testCont, oid: vos.OID{Hi: 1, Lo: 2}, owner: o, pid: 42,
		typ: typ, start: start, end: end, wait: wait, lease: time.Second}
}

// parked waits (a bounded loop) until o has a request parked.
func (l *testLocks) waitParked(t *testing.T, o lockOwner) {
	t.Helper()
	for range 2000 {
		l.waits.mu.Lock()
		n := len(l.waits.waits[o])
		l.waits.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%v never parked", o)
}

func TestLockService(t *testing.T) {
	ctx := context.Background()
	a, b := lockOwner{"a", 1}, lockOwner{"b", 1}
	t.Run("F_SETLK conflict is DER_BUSY, F_GETLK reports it", func(t *testing.T) {
		l := newTestLocks()
		if _, err := l.serve(ctx, setReq(a, lockWrite, 0, 99, 0)); err != nil {
			t.Fatal(err)
		}
		_, err := l.serve(ctx, setReq(b, lockRead, 50, 50, 0))
		if !daoserr.Is(err, daoserr.Busy) {
			t.Fatalf("conflict: %v", err)
		}
		g := setReq(b, lockRead, 50, math.MaxUint64, 0)
		g.cmd = lockCmdGet
		rep, err := l.serve(ctx, g)
		if err != nil || rep.Type != lockWrite || rep.Start != 0 || rep.End != 99 || rep.Pid != 42 {
			t.Fatalf("F_GETLK: %v %v", rep, err)
		}
		g.owner = a // an owner's own locks are no conflict
		if rep, err := l.serve(ctx, g); err != nil || rep.Type != lockUnlock {
			t.Fatalf("F_GETLK by the holder: %v %v", rep, err)
		}
	})
	t.Run("a wait is woken by the unlock", func(t *testing.T) {
		l := newTestLocks()
		l.serve(ctx, setReq(a, lockWrite, 0, 99, 0))
		done := make(chan error, 1)
		go func() {
			rep, err := l.serve(ctx, setReq(b, lockWrite, 10, 10, lockWaitMax))
			if err == nil && rep.Status != lockDone {
				err = fmt.Errorf("status %d", rep.Status)
			}
			done <- err
		}()
		l.waitParked(t, b)
		u := setReq(a, 0, 0, 0, 0)
		u.cmd = lockCmdUnlockOwner
		if _, err := l.serve(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// the wait took nothing: a SET takes it
		if _, err := l.serve(ctx, setReq(a, lockWrite, 10, 10, 0)); err != nil {
			t.Fatalf("a waited for the lock, not b: %v", err)
		}
	})
	t.Run("a wait that is not granted answers 'waiting'", func(t *testing.T) {
		l := newTestLocks()
		l.serve(ctx, setReq(a, lockRead, 0, 99, 0))
		rep, err := l.serve(ctx, setReq(b, lockWrite, 0, 0, 10*time.Millisecond))
		if err != nil || rep.Status != lockWaiting {
			t.Fatalf("%v %v", rep, err)
		}
	})
	t.Run("parked waits are bounded per target", func(t *testing.T) {
		l := newTestLocks()
		l.serve(ctx, setReq(a, lockWrite, 0, 9, 0))
		done := make(chan error, lockParkMax)
		for i := range lockParkMax {
			go func() {
				rep, err := l.serve(ctx, setReq(lockOwner{"w", uint64(i)}, lockRead, 0, 0, lockWaitMax))
				if err == nil && rep.Status != lockDone {
					err = fmt.Errorf("status %d", rep.Status)
				}
				done <- err
			}()
		}
		for i := 0; l.lockService.parked[0].Load() < lockParkMax; i++ {
			if i == 5000 {
				t.Fatalf("%d parked", l.lockService.parked[0].Load())
			}
			time.Sleep(time.Millisecond)
		}
		// one more is answered at once (it would wait lockWaitMax if parked)
		if rep, err := l.serve(ctx, setReq(b, lockRead, 0, 0, lockWaitMax)); err != nil || rep.Status != lockWaiting {
			t.Fatalf("past the bound: %v %v", rep, err)
		}
		l.serve(ctx, setReq(a, lockUnlock, 0, 9, 0))
		for range lockParkMax {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("deadlock", func(t *testing.T) {
		l := newTestLocks()
		l.serve(ctx, setReq(a, lockWrite, 0, 9, 0))
		l.serve(ctx, setReq(b, lockWrite, 10, 19, 0))
		done := make(chan error, 1)
		go func() { _, err := l.serve(ctx, setReq(a, lockWrite, 10, 19, lockWaitMax)); done <- err }()
		l.waitParked(t, a)
		if _, err := l.serve(ctx, setReq(b, lockWrite, 0, 9, lockWaitMax)); !daoserr.Is(err, daoserr.Deadlk) {
			t.Fatalf("B waiting on A waiting on B: %v", err)
		}
		l.serve(ctx, setReq(b, lockUnlock, 0, math.MaxUint64, 0))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("an expired lease drops the client's locks", func(t *testing.T) {
		l := newTestLocks()
		l.serve(ctx, setReq(a, lockWrite, 0, 9, 0))
		if _, err := l.serve(ctx, setReq(b, lockWrite, 0, 9, 0)); !daoserr.Is(err, daoserr.Busy) {
			t.Fatal(err)
		}
		l.advance(900 * time.Millisecond)
		renew := &lockReq{cmd: lockCmdRenew, pool: testPool, cont: testCont, owner: a, lease: time.Second}
		if rep, err := l.serve(ctx, renew); err != nil || !rep.Known || rep.Tables != 1 {
			t.Fatalf("renew: %v %v", rep, err)
		}
		l.advance(900 * time.Millisecond) // renewed: still held
		if _, err := l.serve(ctx, setReq(b, lockWrite, 0, 9, 0)); !daoserr.Is(err, daoserr.Busy) {
			t.Fatal(err)
		}
		l.advance(200 * time.Millisecond)
		if _, err := l.serve(ctx, setReq(b, lockWrite, 0, 9, 0)); err != nil {
			t.Fatalf("after a's lease: %v", err)
		}
		if rep, err := l.serve(ctx, renew); err != nil || rep.Known || rep.Tables != 0 {
			t.Fatalf("renew of a dead lease: %v %v", rep, err)
		}
	})
	t.Run("the sweep forgets dead clients' tables", func(t *testing.T) {
		l := newTestLocks()
		for i := range 10 {
			r := setReq(a, lockWrite, 0, 9, 0)
			r.oid.Lo = uint64(i)
			l.serve(ctx, r)
		}
		l.advance(2 * time.Second)
		l.sweep()
		for i := range l.tables {
			if n := len(l.tables[i].tables); n != 0 {
				t.Fatalf("shard %d still has %d tables", i, n)
			}
		}
		for i := range l.leases {
			if n := len(l.leases[i].leases); n != 0 {
				t.Fatalf("shard %d still has %d leases", i, n)
			}
		}
	})
	t.Run("drop client", func(t *testing.T) {
		l := newTestLocks()
		l.serve(ctx, setReq(a, lockWrite, 0, 9, 0))
		l.serve(ctx, setReq(lockOwner{"a", 2}, lockRead, 20, 29, 0))
		l.serve(ctx, &lockReq{cmd: lockCmdDropClient, pool: testPool, cont: testCont, owner: a})
		if _, err := l.serve(ctx, setReq(b, lockWrite, 0, math.MaxUint64, 0)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCheckLockReq(t *testing.T) {
	good := func() *enginepb.LockReq {
		return &enginepb.LockReq{Pool: testPool[:], Cont: testCont[:], Oid: &enginepb.OID{Hi: 1, Lo: 2}, Cmd: lockCmdSet,
			Client: "c", Owner: 1, Type: lockWrite, Start: 0, End: math.MaxUint64}
	}
	tests := []struct {
		name string
		edit func(m *enginepb.LockReq)
		ok   bool
	}{
		{"good", func(*enginepb.LockReq) {}, true},
		{"short pool", func(m *enginepb.LockReq) { m.Pool = m.Pool[:3] }, false},
		{"no container", func(m *enginepb.LockReq) { m.Cont = nil }, false},
		{"no client", func(m *enginepb.LockReq) { m.Client = "" }, false},
		{"long client", func(m *enginepb.LockReq) { m.Client = string(make([]byte, 200)) }, false},
		{"bad utf-8 client", func(m *enginepb.LockReq) { m.Client = "\xff" }, false},
		{"no object", func(m *enginepb.LockReq) { m.Oid = nil }, false},
		{"bad command", func(m *enginepb.LockReq) { m.Cmd = 9 }, false},
		{"bad type", func(m *enginepb.LockReq) { m.Type = 0 }, false},
		{"get of unlock", func(m *enginepb.LockReq) { m.Cmd, m.Type = lockCmdGet, lockUnlock }, false},
		{"reversed range", func(m *enginepb.LockReq) { m.Start, m.End = 10, 9 }, false},
		{"wait on set", func(m *enginepb.LockReq) { m.WaitMs = 10 }, false},
		{"wait", func(m *enginepb.LockReq) { m.Cmd, m.WaitMs = lockCmdWait, 10 }, true},
		{"wait for unlock", func(m *enginepb.LockReq) { m.Cmd, m.Type, m.WaitMs = lockCmdWait, lockUnlock, 10 }, false},
		{"wait on get", func(m *enginepb.LockReq) { m.Cmd, m.WaitMs = lockCmdGet, 10 }, false},
		{"tiny lease", func(m *enginepb.LockReq) { m.LeaseMs = 1 }, false},
		{"huge lease", func(m *enginepb.LockReq) { m.LeaseMs = math.MaxUint32 }, false},
		{"renew without object", func(m *enginepb.LockReq) { m.Cmd, m.Oid, m.Type = lockCmdRenew, nil, 0 }, true},
		{"unlock owner without type", func(m *enginepb.LockReq) { m.Cmd, m.Type, m.Start = lockCmdUnlockOwner, 0, 5 }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := good()
			tc.edit(m)
			_, err := checkLockReq(m)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok %v", err, tc.ok)
			}
			if err != nil && !daoserr.Is(err, daoserr.Inval) {
				t.Fatalf("not DER_INVAL: %v", err)
			}
		})
	}
}

// FuzzLockReq: any bytes as a lock request's header are refused cleanly or
// served (waits cut short), and leave the table canonical.
func FuzzLockReq(f *testing.F) {
	for _, m := range []*enginepb.LockReq{
		{Pool: testPool[:], Cont: testCont[:], Oid: &enginepb.OID{Hi: 1}, Cmd: lockCmdSet, Client: "c", Type: lockWrite, End: 9},
		{Pool: testPool[:], Cont: testCont[:], Oid: &enginepb.OID{Hi: 1}, Cmd: lockCmdGet, Client: "d", Type: lockRead, Start: 5, End: math.MaxUint64},
		{Pool: testPool[:], Cont: testCont[:], Cmd: lockCmdRenew, Client: "c", LeaseMs: 1000},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	l := newTestLocks()
	f.Fuzz(func(t *testing.T, b []byte) {
		var m enginepb.LockReq
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		r, err := checkLockReq(&m)
		if err != nil {
			return
		}
		r.wait = 0
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		l.serve(ctx, &r)
		k := lockKey{r.pool, r.cont, r.oid}
		if tab := l.table(k, false); tab != nil {
			for i := 1; i < len(tab.locks); i++ {
				if lockLess(tab.locks[i-1], tab.locks[i]) > 0 {
					t.Fatalf("unsorted table %v", tab.locks)
				}
			}
			for _, x := range tab.locks {
				if x.start > x.end {
					t.Fatalf("lock %v", x)
				}
			}
			l.done(k, tab)
		}
	})
}
