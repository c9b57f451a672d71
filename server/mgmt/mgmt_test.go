package mgmt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/testsys"
)

func member(uuid, fabric string) Member {
	return Member{UUID: uuid, ControlAddr: "127.0.0.1:10001", FabricAddr: fabric, FaultDomain: "/node-" + uuid}
}

func TestDBCommands(t *testing.T) {
	d := newDB()
	do := func(c command) result { return d.apply(&c) }
	steps := []struct {
		name     string
		cmd      command
		wantRank uint32
		code     daoserr.Code
		contains string
	}{
		{"first join gets rank 0", command{Op: opJoin, Member: ptr(member("a", "x:1"))}, 0, 0, ""},
		{"second join gets rank 1", command{Op: opJoin, Member: ptr(member("b", "x:2"))}, 1, 0, ""},
		{"a restarted engine gets its rank back", command{Op: opJoin, Member: ptr(member("a", "x:9"))}, 0, 0, ""},
		{"a new engine on a joined rank's address is refused", command{Op: opJoin, Member: ptr(member("c", "x:2"))}, 0, daoserr.Exist, "already rank 1's"},
		{"join without UUID", command{Op: opJoin, Member: &Member{}}, 0, daoserr.Inval, "UUID"},
		{"state of an unknown rank", command{Op: opMemberState, Rank: 7, State: MemberStopped}, 0, daoserr.Nonexist, "rank 7"},
		{"add a pool", command{Op: opPoolAdd, Pool: &Pool{UUID: "p1", Label: "tank", Ranks: []uint32{0, 1}}}, 0, 0, ""},
		{"same label again", command{Op: opPoolAdd, Pool: &Pool{UUID: "p2", Label: "tank"}}, 0, daoserr.Exist, `labeled "tank"`},
		{"same UUID again", command{Op: opPoolAdd, Pool: &Pool{UUID: "p1", Label: "other"}}, 0, daoserr.Exist, "p1 already exists"},
		{"ready", command{Op: opPoolState, UUID: "p1", State: PoolReady}, 0, 0, ""},
		{"add a container", command{Op: opContAdd, UUID: "p1", Cont: &Cont{UUID: "c1", Label: "ckpt", Owner: "alice@"}}, 0, 0, ""},
		{"same container label again", command{Op: opContAdd, UUID: "p1", Cont: &Cont{UUID: "c2", Label: "ckpt"}}, 0, daoserr.Exist, `labeled "ckpt"`},
		{"container in an unknown pool", command{Op: opContAdd, UUID: "nope", Cont: &Cont{UUID: "c3"}}, 0, daoserr.Nonexist, "pool nope"},
		{"second container", command{Op: opContAdd, UUID: "p1", Cont: &Cont{UUID: "c2", Label: "scratch", Owner: "alice@", Group: "devs@"}}, 0, 0, ""},
		{"new owner", command{Op: opContOwner, UUID: "p1", Cont: &Cont{UUID: "c1", Owner: "bob@"}}, 0, 0, ""},
		{"owner of an unknown container", command{Op: opContOwner, UUID: "p1", Cont: &Cont{UUID: "c9", Owner: "bob@"}}, 0, daoserr.Nonexist, "c9"},
		{"rename onto another's label", command{Op: opContProps, UUID: "p1", Cont: &Cont{UUID: "c2", Props: map[string]string{"label": "ckpt"}}}, 0, daoserr.Exist, `labeled "ckpt"`},
		{"set properties", command{Op: opContProps, UUID: "p1", Cont: &Cont{UUID: "c2", Props: map[string]string{"rd_fac": "1"}}}, 0, 0, ""},
		{"new ACL", command{Op: opContACL, UUID: "p1", Cont: &Cont{UUID: "c2", ACL: []string{"A::OWNER@:r"}}}, 0, 0, ""},
		{"ACL of an unknown container", command{Op: opContACL, UUID: "p1", Cont: &Cont{UUID: "c9"}}, 0, daoserr.Nonexist, "c9"},
		{"set attributes", command{Op: opContAttrs, UUID: "p1", Cont: &Cont{UUID: "c2", Attrs: map[string][]byte{"run": []byte("42")}}}, 0, 0, ""},
		{"delete a missing attribute (nothing changes)", command{Op: opContAttrs, UUID: "p1", Cont: &Cont{UUID: "c2", Attrs: map[string][]byte{"x": nil}}, Names: []string{"nope"}}, 0, daoserr.Nonexist, `"nope"`},
		{"an attribute value too large", command{Op: opContAttrs, UUID: "p1", Cont: &Cont{UUID: "c2", Attrs: map[string][]byte{"big": make([]byte, MaxAttrValue+1)}}}, 0, daoserr.Inval, "values up to"},
		{"too many attributes", command{Op: opContAttrs, UUID: "p1", Cont: &Cont{UUID: "c2", Attrs: manyAttrs(MaxAttrs)}}, 0, daoserr.NoSpace, "the limit is"},
		{"remove a container", command{Op: opContRemove, UUID: "p1", Cont: &Cont{UUID: "c2"}}, 0, 0, ""},
		{"remove it twice", command{Op: opContRemove, UUID: "p1", Cont: &Cont{UUID: "c2"}}, 0, daoserr.Nonexist, "c2"},
		{"remove an unknown pool", command{Op: opPoolRemove, UUID: "nope"}, 0, daoserr.Nonexist, "nope"},
		{"unknown command", command{Op: "frobnicate"}, 0, daoserr.Proto, "frobnicate"},
	}
	for _, s := range steps {
		r := do(s.cmd)
		switch {
		case s.code == 0 && r.Err != nil:
			t.Errorf("%s: %v", s.name, r.Err)
		case s.code != 0 && (!daoserr.Is(r.Err, s.code) || !strings.Contains(r.Err.Error(), s.contains)):
			t.Errorf("%s: got %v, want %s containing %q", s.name, r.Err, s.code, s.contains)
		case s.code == 0 && s.cmd.Op == opJoin && r.Member.Rank != s.wantRank:
			t.Errorf("%s: rank %d, want %d", s.name, r.Member.Rank, s.wantRank)
		}
	}
	ms, ver := d.memberList()
	if len(ms) != 2 || ms[0].Incarnation != 2 || ms[0].FabricAddr != "x:9" || ver != 3 {
		t.Errorf("members %+v version %d", ms, ver)
	}
	p, err := d.findPool("tank")
	if err != nil || p.State != PoolReady || p.UUID != "p1" {
		t.Fatalf("pool by label: %+v %v", p, err)
	}
	if c, err := p.FindCont("ckpt"); err != nil || c.UUID != "c1" || c.Owner != "bob@" {
		t.Errorf("container by label: %+v %v", c, err)
	}
	if l := p.ContList(); len(l) != 1 {
		t.Errorf("containers %+v, want only ckpt", l)
	}
	if _, err := p.FindCont("scratch"); !daoserr.Is(err, daoserr.Nonexist) {
		t.Errorf("destroyed container found: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func manyAttrs(n int) map[string][]byte {
	m := map[string][]byte{}
	for i := range n {
		m[fmt.Sprint("a", i)] = nil
	}
	return m
}

func TestSnapshotRestore(t *testing.T) {
	f := &fsm{newDB()}
	f.db.apply(&command{Op: opJoin, Member: ptr(member("a", "x:1"))})
	f.db.apply(&command{Op: opJoin, Member: ptr(member("b", "x:2"))})
	f.db.apply(&command{Op: opPoolAdd, Pool: &Pool{UUID: "p1", Label: "tank", Ranks: []uint32{0, 1}, Props: map[string]string{"label": "tank"}}})
	f.db.apply(&command{Op: opContAdd, UUID: "p1", Cont: &Cont{UUID: "c1", Label: "ckpt", Owner: "alice@", ACL: []string{"A::OWNER@:rw"}}})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	g := &fsm{newDB()}
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	a, av := f.db.memberList()
	b, bv := g.db.memberList()
	state := func(d *db, m []Member, v uint32) string {
		j, _ := json.Marshal([]any{m, v, d.poolList(), d.nextRank})
		return string(j)
	}
	if state(f.db, a, av) != state(g.db, b, bv) || !strings.Contains(state(g.db, b, bv), "ckpt") {
		t.Errorf("restored state differs:\n%v\n%v", b, g.db.poolList())
	}
	// the next join after a restore must not reuse a rank
	if r := g.db.apply(&command{Op: opJoin, Member: ptr(member("c", "x:3"))}); r.Member.Rank != 2 {
		t.Errorf("join after restore: rank %d, want 2", r.Member.Rank)
	}
	if err := g.Restore(io.NopCloser(strings.NewReader("{garbage"))); err == nil {
		t.Error("a corrupt snapshot restored")
	}
}

type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }

var _ raft.SnapshotSink = (*memSink)(nil)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startReplica(t *testing.T, addr string, replicas []string, dir string) *Service {
	t.Helper()
	s, err := Start(Options{Addr: addr, Replicas: replicas, Dir: dir, Fast: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// leaderOf waits for one of the running services to lead and returns it.
func leaderOf(t *testing.T, svcs map[string]*Service) *Service {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range svcs {
			if s.IsLeader() {
				return s
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no leader within 30 s")
	return nil
}

// Three replicas: writes go through the leader, followers answer
// DER_NOTLEADER naming it; killing the leader loses no metadata and the system
// keeps taking writes; the old leader comes back and catches up.
func TestReplicatedFailover(t *testing.T) {
	base := t.TempDir()
	var addrs []string
	for range 3 {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", testsys.FreePort(t)))
	}
	svcs := map[string]*Service{}
	for _, a := range addrs {
		svcs[a] = startReplica(t, a, addrs, filepath.Join(base, a))
	}
	t.Cleanup(func() {
		for _, s := range svcs {
			s.Shutdown()
		}
	})
	lead := leaderOf(t, svcs)
	for i, u := range []string{"e0", "e1", "e2"} {
		m, err := lead.Join(member(u, fmt.Sprintf("127.0.0.1:%d", 31416+i)))
		if err != nil || m.Rank != uint32(i) {
			t.Fatalf("join %s: %+v %v", u, m, err)
		}
	}
	if err := lead.AddPool(Pool{UUID: "p1", Label: "tank", Ranks: []uint32{0, 1, 2}}); err != nil {
		t.Fatal(err)
	}
	for a, s := range svcs {
		if s == lead {
			continue
		}
		err := s.AddPool(Pool{UUID: "p2", Label: "x"})
		if !daoserr.Is(err, daoserr.NotLeader) || !strings.Contains(err.Error(), lead.opts.Addr) {
			t.Errorf("write on follower %s: got %v, want DER_NOTLEADER naming %s", a, err, lead.opts.Addr)
		}
		if _, err := s.Pools(); !daoserr.Is(err, daoserr.NotLeader) {
			t.Errorf("consistent read on follower %s: %v", a, err)
		}
	}

	// kill the leader
	oldAddr := lead.opts.Addr
	lead.Shutdown()
	delete(svcs, oldAddr)
	lead = leaderOf(t, svcs)
	if lead.opts.Addr == oldAddr {
		t.Fatal("the stopped replica still leads")
	}
	ms, _, err := lead.Members()
	if err != nil || len(ms) != 3 {
		t.Fatalf("members after failover: %v %v", ms, err)
	}
	if p, err := lead.FindPool("tank"); err != nil || len(p.Ranks) != 3 {
		t.Fatalf("pool after failover: %+v %v", p, err)
	}
	if err := lead.AddPool(Pool{UUID: "p2", Label: "after"}); err != nil {
		t.Fatalf("write after failover: %v", err)
	}

	// the old leader restarts from its own state and catches up
	back := startReplica(t, oldAddr, addrs, filepath.Join(base, oldAddr))
	svcs[oldAddr] = back
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := back.db.findPool("after"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the restarted replica did not catch up within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A single replica restarts with everything: what a snapshot holds and the log
// after it.
func TestRestartFromSnapshotAndLog(t *testing.T) {
	dir, addr := t.TempDir(), fmt.Sprintf("127.0.0.1:%d", testsys.FreePort(t))
	s := startReplica(t, addr, []string{addr}, dir)
	if _, err := s.WaitLeader(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	for !s.IsLeader() {
		time.Sleep(10 * time.Millisecond)
	}
	s.Join(member("e0", "a:1"))
	s.AddPool(Pool{UUID: "p1", Label: "before"})
	s.AddCont("p1", Cont{UUID: "c1", Label: "objects"})
	if first, err := s.AllocOIDs("p1", "c1", 100); err != nil || first != FirstOID {
		t.Fatalf("first allocation: %d %v", first, err)
	}
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	s.AddPool(Pool{UUID: "p2", Label: "after"})
	if first, err := s.AllocOIDs("p1", "c1", 10); err != nil || first != FirstOID+100 {
		t.Fatalf("second allocation: %d %v", first, err)
	}
	s.Shutdown()

	s = startReplica(t, addr, []string{addr}, dir)
	defer s.Shutdown()
	for !s.IsLeader() {
		time.Sleep(10 * time.Millisecond)
	}
	pools, err := s.Pools()
	if err != nil || len(pools) != 2 {
		t.Fatalf("pools after restart: %v %v", pools, err)
	}
	if m, err := s.Join(member("e1", "a:2")); err != nil || m.Rank != 1 {
		t.Errorf("join after restart: %+v %v (rank 0 is taken)", m, err)
	}
	// object IDs handed out before the restart (in the snapshot and in the log after it) stay taken
	if first, err := s.AllocOIDs("p1", "c1", 1); err != nil || first != FirstOID+110 {
		t.Errorf("allocation after restart: %d %v, want %d", first, err, FirstOID+110)
	}
	for _, bad := range []uint64{0, MaxOIDBatch + 1} {
		if _, err := s.AllocOIDs("p1", "c1", bad); !daoserr.Is(err, daoserr.Inval) {
			t.Errorf("allocate %d: %v", bad, err)
		}
	}
	if _, err := s.AllocOIDs("p1", "nope", 1); !daoserr.Is(err, daoserr.Nonexist) {
		t.Errorf("allocate in a missing container: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(Options{Addr: "127.0.0.1:1", Replicas: []string{"a", "b"}, Dir: t.TempDir()}); !daoserr.Is(err, daoserr.Inval) {
		t.Errorf("two replicas: %v", err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	busy := l.Addr().String()
	if _, err := Start(Options{Addr: busy, Replicas: []string{busy}, Dir: t.TempDir(), Logger: quiet()}); !daoserr.Is(err, daoserr.Unreach) {
		t.Errorf("busy port: %v", err)
	}
}

// Readers get their own copies of pool records: changing properties while
// snapshots and queries read them is no data race (run with -race).
func TestPoolRecordsAreCopies(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testsys.FreePort(t))
	s := startReplica(t, addr, []string{addr}, t.TempDir())
	defer s.Shutdown()
	for !s.IsLeader() {
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.AddPool(Pool{UUID: "p", Label: "tank", Props: map[string]string{"a": "1"}, ACL: []string{"A::OWNER@:rw"}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			s.SetPoolProps("p", map[string]string{"a": fmt.Sprint(i)})
		}
	}()
	for range 50 {
		p, err := s.FindPool("tank")
		if err != nil {
			t.Fatal(err)
		}
		_ = fmt.Sprint(p.Props, p.ACL)
		p.Props["mine"] = "x" // a reader's copy
		p.ACL[0] = "changed"
		s.Snapshot()
	}
	<-done
	p, _ := s.FindPool("tank")
	if p.Props["mine"] != "" || p.ACL[0] != "A::OWNER@:rw" || p.Props["a"] != "49" {
		t.Errorf("record changed through a reader's copy, or lost an update: %+v", p)
	}
}
