package swim

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// waitLimit bounds every wait: generous, so that a slow machine is not a
// failure; the tests never check how fast detection is.
const waitLimit = 60 * time.Second

// waitFor polls cond until it holds or waitLimit passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, waitLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recorder collects OnChange calls.
type recorder struct {
	mu  sync.Mutex
	got map[uint32][]bool
}

func (r *recorder) on(rank uint32, alive bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[uint32][]bool{}
	}
	r.got[rank] = append(r.got[rank], alive)
}

func (r *recorder) last(rank uint32) (alive, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.got[rank]
	if len(h) == 0 {
		return false, false
	}
	return h[len(h)-1], true
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func start(t *testing.T, rank uint32, inc uint64, addr string, rec *recorder) *Member {
	t.Helper()
	m, err := New(Config{Name: fmt.Sprintf("engine-%d", rank), Rank: rank, Incarnation: inc, Addr: addr,
		Timeouts: FastTimeouts(), Logger: quiet(), OnChange: rec.on})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func peerState(m *Member, name string) (State, uint64, bool) {
	p, ok := m.Peer(name)
	return p.State, p.Incarnation, ok
}

// Four members find each other through one; a crashed one (no leave) is
// reported dead by the others, a cleanly stopped one left; the crashed one
// comes back (same name and address, next incarnation) and is alive again.
func TestDeathLeaveRejoin(t *testing.T) {
	const n = 4
	ms := make([]*Member, n)
	recs := make([]*recorder, n)
	for i := range n {
		recs[i] = &recorder{}
		ms[i] = start(t, uint32(i), 1, "127.0.0.1:0", recs[i])
	}
	defer func() {
		for _, m := range ms {
			m.Shutdown()
		}
	}()
	for i := 1; i < n; i++ {
		// each joins the first (and itself, which Join skips)
		if got, err := ms[i].Join([]string{ms[0].Addr(), ms[i].Addr()}); err != nil || got != 1 {
			t.Fatalf("member %d joined %d: %v", i, got, err)
		}
	}
	for i, m := range ms {
		waitFor(t, fmt.Sprintf("member %d sees all alive", i), func() bool {
			a := m.Alive()
			return len(a) == n && a[0] && a[1] && a[2] && a[3]
		})
	}

	t.Run("crash is death", func(t *testing.T) {
		addr := ms[3].Addr()
		ms[3].crash()
		for i := range 3 {
			waitFor(t, fmt.Sprintf("member %d sees rank 3 dead", i), func() bool {
				st, _, _ := peerState(ms[i], "engine-3")
				return st == Dead
			})
			// OnChange comes from another goroutine: soon, not at once
			waitFor(t, fmt.Sprintf("member %d is told rank 3 is dead", i), func() bool {
				alive, ok := recs[i].last(3)
				return ok && !alive
			})
			if ms[i].Alive()[3] {
				t.Errorf("member %d: Alive says rank 3 is alive", i)
			}
		}
		// the crashed member comes back: same name, address, next incarnation
		recs[3] = &recorder{}
		ms[3] = start(t, 3, 2, addr, recs[3])
		if _, err := ms[3].Join([]string{ms[0].Addr()}); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			waitFor(t, fmt.Sprintf("member %d sees rank 3 back", i), func() bool {
				st, inc, _ := peerState(ms[i], "engine-3")
				return st == Alive && inc == 2
			})
			waitFor(t, fmt.Sprintf("member %d is told rank 3 is back", i), func() bool {
				alive, _ := recs[i].last(3)
				return alive
			})
		}
	})

	t.Run("clean stop is left", func(t *testing.T) {
		ms[2].Shutdown()
		ms[2].Shutdown() // twice is fine
		for _, i := range []int{0, 1, 3} {
			waitFor(t, fmt.Sprintf("member %d sees rank 2 gone", i), func() bool {
				st, _, _ := peerState(ms[i], "engine-2")
				return st != Alive
			})
			if st, _, _ := peerState(ms[i], "engine-2"); st != Left {
				t.Errorf("member %d sees rank 2 %v, want left", i, st)
			}
			waitFor(t, fmt.Sprintf("member %d is told rank 2 is gone", i), func() bool {
				alive, ok := recs[i].last(2)
				return ok && !alive
			})
		}
	})
}

// An observer sees the members, and they do not list it.
func TestObserver(t *testing.T) {
	a := start(t, 0, 1, "127.0.0.1:0", &recorder{})
	b := start(t, 1, 1, "127.0.0.1:0", &recorder{})
	defer a.Shutdown()
	obs, err := New(Config{Name: "observer", Observer: true, Addr: "127.0.0.1:0", Timeouts: FastTimeouts(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Shutdown()
	if _, err := b.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	if _, err := obs.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the observer sees both ranks", func() bool {
		al := obs.Alive()
		return len(al) == 2 && al[0] && al[1]
	})
	b.crash()
	waitFor(t, "the observer sees rank 1 dead", func() bool {
		st, _, _ := peerState(obs, "engine-1")
		return st == Dead
	})
	if _, ok := a.Peer("observer"); ok || len(a.Alive()) != 2 {
		t.Errorf("a member lists the observer: %v", a.Peers())
	}
}

// Joining addresses where nothing answers fails, bounded by TCPTimeout, and a
// member alone shuts down promptly.
func TestJoinNobodyAndShutdownAlone(t *testing.T) {
	m := start(t, 0, 1, "127.0.0.1:0", &recorder{})
	other := start(t, 1, 1, "127.0.0.1:0", &recorder{})
	gone := other.Addr()
	other.crash()
	if n, err := m.Join([]string{gone, "127.0.0.1:1"}); err == nil || n != 0 {
		t.Errorf("join of nobody: %d, %v", n, err)
	}
	if n, err := m.Join(nil); err != nil || n != 0 {
		t.Errorf("join of no address: %d, %v", n, err)
	}
	done := make(chan struct{})
	go func() { m.Shutdown(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatal("Shutdown hangs")
	}
	var nilm *Member
	nilm.Shutdown()
}

func TestNewErrors(t *testing.T) {
	busy := start(t, 0, 1, "127.0.0.1:0", &recorder{})
	defer busy.Shutdown()
	for _, tc := range []struct{ name, mname, addr string }{
		{"no name", "", "127.0.0.1:0"},
		{"no port", "x", "127.0.0.1"},
		{"bad port", "x", "127.0.0.1:99999"},
		{"port in use", "x", busy.Addr()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(Config{Name: tc.mname, Addr: tc.addr, Logger: quiet()})
			if err == nil {
				m.crash()
				t.Fatalf("New(%q, %q) succeeded", tc.mname, tc.addr)
			}
		})
	}
}

func TestTimeoutsDefaults(t *testing.T) {
	d := DefaultTimeouts()
	if got := (Timeouts{}).withDefaults(); got != d {
		t.Errorf("zero timeouts -> %+v, want the defaults %+v", got, d)
	}
	f := FastTimeouts()
	if got := f.withDefaults(); got != f {
		t.Errorf("fast timeouts changed by defaults: %+v", got)
	}
	if got := (Timeouts{ProbeInterval: time.Second / 2}).withDefaults(); got.ProbeInterval != time.Second/2 || got.TCPTimeout != d.TCPTimeout {
		t.Errorf("partial timeouts -> %+v", got)
	}
}

func TestSlogWriter(t *testing.T) {
	var buf bytes.Buffer
	w := slogWriter{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	w.Write([]byte("[WARN] memberlist: Refuting a suspect message\n"))
	if got := buf.String(); !bytes.Contains([]byte(got), []byte(`level=DEBUG msg="memberlist: Refuting a suspect message" memberlist_level=WARN`)) {
		t.Errorf("logged %q", got)
	}
}

func TestMeta(t *testing.T) {
	for _, md := range []meta{{0, 1, false}, {7, 3, true}, {1<<32 - 1, 1<<64 - 1, false}} {
		got, ok := decodeMeta(md.encode())
		if !ok || got != md {
			t.Errorf("meta %+v -> %+v %v", md, got, ok)
		}
	}
	bad := meta{1, 1, false}.encode()
	bad[12] = 2
	for _, b := range [][]byte{nil, {1, 2, 3}, make([]byte, metaLen+1), make([]byte, metaLen-1), bad} {
		if _, ok := decodeMeta(b); ok {
			t.Errorf("meta %x decoded", b)
		}
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(meta{3, 9, false}.encode())
	f.Add(meta{3, 9, true}.encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		md, ok := decodeMeta(b)
		if ok && !bytes.Equal(md.encode(), b) {
			t.Fatalf("%x does not round-trip", b)
		}
		if !ok && len(b) == metaLen && b[12] <= flagObserver {
			t.Fatalf("%x refused", b)
		}
	})
}
