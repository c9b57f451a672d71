package server

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/launcher"
	"github.com/godaos/godaos/server/mgmt"
	"github.com/godaos/godaos/server/swim"
)

// The multi-process test runs daos_server processes through launcher local
// (what internal/testsys/cluster does; that package imports this one, so
// this package's tests cannot use it).
func TestMain(m *testing.M) {
	code := m.Run()
	testsys.RemoveBinaries()
	os.Exit(code)
}

func TestSwimAddr(t *testing.T) {
	for _, tc := range []struct {
		fabric, want string
		ok           bool
	}{
		{"127.0.0.1:31416", "127.0.0.1:31417", true},
		{"10.0.0.7:31516", "10.0.0.7:31517", true},
		{"[fe80::1]:20003", "[fe80::1]:20004", true},
		{"127.0.0.1:0", "", false},
		{"127.0.0.1:65535", "", false},
		{"127.0.0.1", "", false},
		{"127.0.0.1:x", "", false},
		{"", "", false},
	} {
		t.Run(tc.fabric, func(t *testing.T) {
			got, ok := swimAddr(tc.fabric)
			if got != tc.want || ok != tc.ok {
				t.Errorf("swimAddr(%q) = %q %v, want %q %v", tc.fabric, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// The leader excludes a joined rank SWIM declares dead at the map's
// incarnation, and nothing else: not a stale death of a restarted rank, not a
// clean leave, not a stopped rank.
func TestSwimVerdicts(t *testing.T) {
	member := func(rank uint32, state string, inc uint64) mgmt.Member {
		return mgmt.Member{Rank: rank, UUID: fmt.Sprintf("uuid-%d", rank), State: state, Incarnation: inc}
	}
	peer := func(rank uint32, st swim.State, inc uint64) swim.Peer {
		return swim.Peer{Name: fmt.Sprintf("uuid-%d", rank), Rank: rank, State: st, Incarnation: inc}
	}
	for _, tc := range []struct {
		name       string
		m          mgmt.Member
		p          *swim.Peer
		dead, back bool
	}{
		{"dead and joined", member(1, mgmt.MemberJoined, 2), &[]swim.Peer{peer(1, swim.Dead, 2)}[0], true, false},
		{"stale death of a restarted rank", member(1, mgmt.MemberJoined, 3), &[]swim.Peer{peer(1, swim.Dead, 2)}[0], false, false},
		{"left and joined", member(1, mgmt.MemberJoined, 2), &[]swim.Peer{peer(1, swim.Left, 2)}[0], false, false},
		{"dead and stopped", member(1, mgmt.MemberStopped, 2), &[]swim.Peer{peer(1, swim.Dead, 2)}[0], false, false},
		{"dead and already excluded", member(1, mgmt.MemberExcluded, 2), &[]swim.Peer{peer(1, swim.Dead, 2)}[0], false, false},
		{"alive and joined", member(1, mgmt.MemberJoined, 2), &[]swim.Peer{peer(1, swim.Alive, 2)}[0], false, false},
		{"alive and excluded", member(1, mgmt.MemberExcluded, 2), &[]swim.Peer{peer(1, swim.Alive, 2)}[0], false, true},
		{"alive and excluded, older incarnation", member(1, mgmt.MemberExcluded, 3), &[]swim.Peer{peer(1, swim.Alive, 2)}[0], false, false},
		{"not seen", member(1, mgmt.MemberJoined, 2), nil, false, false},
		{"another rank under that name", member(1, mgmt.MemberJoined, 2), &[]swim.Peer{{Name: "uuid-1", Rank: 5, State: swim.Dead, Incarnation: 2}}[0], false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			view := map[string]swim.Peer{"uuid-9": peer(9, swim.Dead, 1)} // a stranger to the map
			if tc.p != nil {
				view[tc.p.Name] = *tc.p
			}
			dead, back := swimVerdicts(view, []mgmt.Member{tc.m})
			if (len(dead) == 1) != tc.dead || (len(back) == 1) != tc.back || len(dead)+len(back) > 1 {
				t.Errorf("dead %v back %v, want dead %v back %v", dead, back, tc.dead, tc.back)
			}
		})
	}
}

type fakeBook struct {
	name  string
	peers map[string]swim.Peer
}

func (f fakeBook) Name() string { return f.name }
func (f fakeBook) Peer(n string) (swim.Peer, bool) {
	p, ok := f.peers[n]
	return p, ok
}

// A member joins the joined ranks it does not know or knows dead at an older
// incarnation; not itself, not ranks that are stopped or excluded, not
// engines without a SWIM port.
func TestSwimPeersToJoin(t *testing.T) {
	book := fakeBook{name: "u0", peers: map[string]swim.Peer{
		"u0": {Name: "u0", State: swim.Alive, Incarnation: 1},
		"u1": {Name: "u1", State: swim.Alive, Incarnation: 1},
		"u2": {Name: "u2", State: swim.Dead, Incarnation: 1},
		"u3": {Name: "u3", State: swim.Dead, Incarnation: 1},
	}}
	members := []*ctlpb.Member{
		{Uuid: "u0", FabricAddr: "h:100", State: "joined", Incarnation: 1},   // itself
		{Uuid: "u1", FabricAddr: "h:110", State: "joined", Incarnation: 1},   // known alive
		{Uuid: "u2", FabricAddr: "h:120", State: "joined", Incarnation: 1},   // known dead, same incarnation
		{Uuid: "u3", FabricAddr: "h:130", State: "joined", Incarnation: 2},   // restarted
		{Uuid: "u4", FabricAddr: "h:140", State: "joined", Incarnation: 1},   // unknown
		{Uuid: "u5", FabricAddr: "h:150", State: "stopped", Incarnation: 1},  // stopped
		{Uuid: "u6", FabricAddr: "h:160", State: "excluded", Incarnation: 1}, // excluded
		{Uuid: "u7", FabricAddr: "h:0", State: "joined", Incarnation: 1},     // no SWIM port
	}
	got := swimPeersToJoin(book, members)
	if want := []string{"h:131", "h:141"}; !slices.Equal(got, want) {
		t.Errorf("peers to join %v, want %v", got, want)
	}
}

// swimLimit bounds each wait for SWIM and the leader to act. Generous: the
// test checks what happens, never how fast (the times are logged).
const swimLimit = 90 * time.Second

// swimSystem is a running multi-process system seen by rank.
type swimSystem struct {
	*launcher.LocalSystem
	rankOf map[int]uint32 // server index -> its rank
	paused map[int]bool   // servers under SIGSTOP: not asked
}

func (s *swimSystem) serverLog(i int) string {
	b, err := os.ReadFile(filepath.Join(s.Dirs[i], "server.log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// ctlClient is a client of server i's control service (it forwards
// management calls to the leader) and its closer.
func (s *swimSystem) ctlClient(t *testing.T, i int) (ctlpb.CtlClient, func()) {
	t.Helper()
	cc, err := grpc.NewClient(s.HostList[i], ctlclient.Transport(nil))
	if err != nil {
		t.Fatal(err)
	}
	return ctlpb.NewCtlClient(cc), func() { cc.Close() }
}

func (s *swimSystem) query(t *testing.T) *ctlpb.SystemQueryResp {
	t.Helper()
	// not through the admin client: it sticks to its first server, which a
	// SIGSTOP leaves connected but silent
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		for i, a := range s.HostList {
			if s.paused[i] {
				continue
			}
			cl, done := s.ctlClient(t, i)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r, err := cl.SystemQuery(ctx, &ctlpb.SystemQueryReq{})
			cancel()
			done()
			if last = ctlclient.Err(err, r.GetError(), "system query at "+a); last == nil {
				return r
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal(last)
	return nil
}

// pause sends SIGSTOP (on) or SIGCONT (off) to server i.
func (s *swimSystem) pause(t *testing.T, i int, on bool) {
	t.Helper()
	sig := syscall.SIGCONT
	if on {
		sig = syscall.SIGSTOP
	}
	if err := s.Kill(i, sig); err != nil {
		t.Fatal(err)
	}
	s.paused[i] = on
}

func (s *swimSystem) state(t *testing.T, rank uint32) string {
	t.Helper()
	for _, m := range s.query(t).Members {
		if m.Rank == rank {
			return m.State
		}
	}
	t.Fatalf("rank %d is not in the system map", rank)
	return ""
}

func (s *swimSystem) leader(t *testing.T) int {
	t.Helper()
	l := s.query(t).Leader
	i := slices.Index(s.HostList, l)
	if i < 0 {
		t.Fatalf("leader %q is none of %v", l, s.HostList)
	}
	return i
}

// waitState waits until rank has state in the system map and returns how
// long that took.
func (s *swimSystem) waitState(t *testing.T, rank uint32, state string) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(swimLimit)
	last := ""
	for time.Now().Before(deadline) {
		if last = s.state(t, rank); last == state {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.dumpLogs(t)
	t.Fatalf("rank %d is still %s, not %s, %v later", rank, last, state, swimLimit)
	return 0
}

// waitLog waits until server i's log has a line holding every one of parts.
func (s *swimSystem) waitLog(t *testing.T, i int, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(swimLimit)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(s.serverLog(i), "\n") {
			if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.dumpLogs(t)
	t.Fatalf("server %d did not log %q within %v", i, parts, swimLimit)
}

func (s *swimSystem) dumpLogs(t *testing.T) {
	for i := range s.HostList {
		var swimLines []string
		for _, l := range strings.Split(s.serverLog(i), "\n") {
			if strings.Contains(strings.ToLower(l), "swim") || strings.Contains(l, "excluded") || strings.Contains(l, "level=ERROR") {
				swimLines = append(swimLines, l)
			}
		}
		t.Logf("server %d (rank %d) log, SWIM lines:\n%s", i, s.rankOf[i], strings.Join(swimLines, "\n"))
	}
}

// healthy checks that server i answers its control service.
func (s *swimSystem) healthy(t *testing.T, i int) {
	t.Helper()
	cl, done := s.ctlClient(t, i)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := cl.ServerQuery(ctx, &ctlpb.ServerQueryReq{})
	if err != nil || len(r.Ranks) != 1 || r.Ranks[0] != int64(s.rankOf[i]) || r.Storage[0].State != "running" {
		t.Fatalf("server %d after SIGCONT: %v %v", i, r, err)
	}
}

// TestSwimExcludesDeadRanks runs five daos_server processes (three MS
// replicas) with fast SWIM timeouts: a rank killed with SIGKILL is excluded
// and joins again when restarted (not excluded again by its old death); a
// rank stopped with dmg system stop is stopped, not excluded; a paused
// (SIGSTOP) rank is excluded and stays excluded when it resumes, its server
// healthy; a paused MS leader is excluded by the leader elected after it,
// whose own engine is stopped.
func TestSwimExcludesDeadRanks(t *testing.T) {
	t.Setenv(SwimFastEnv, "1") // the servers inherit it
	bins := testsys.Binaries(t, testsys.Cmd("daos_server"))
	ctx, cancel := context.WithTimeout(context.Background(), swimLimit)
	defer cancel()
	ls, err := launcher.StartLocal(ctx, launcher.LocalOptions{N: 5, Targets: 2, Dir: filepath.Join(t.TempDir(), "servers"),
		BasePort: testsys.FreeBase(t, 5), Bin: filepath.Join(bins, "daos_server")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ls.Stop)
	s := &swimSystem{LocalSystem: ls, rankOf: map[int]uint32{}, paused: map[int]bool{}}
	t.Cleanup(func() { // a failing test may leave servers paused: resume them so that they stop
		for i := range s.HostList {
			s.Kill(i, syscall.SIGCONT)
		}
	})
	for _, m := range s.query(t).Members {
		i := slices.Index(s.HostList, m.ControlAddr)
		if i < 0 || m.State != "joined" {
			t.Fatalf("member %v: control address not among %v, or not joined", m, s.HostList)
		}
		s.rankOf[i] = m.Rank
	}
	if len(s.rankOf) != 5 {
		t.Fatalf("ranks by server %v, want 5", s.rankOf)
	}
	// a pool over every rank: a dead rank's targets leave its map (rankDead)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	admin, done := s.ctlClient(t, 0)
	defer done()
	pr, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolCreateResp, error) {
		return admin.PoolCreate(ctx, &ctlpb.PoolCreateReq{Label: "pool", ScmSize: 5 * 64 << 20, NvmeSize: 5 * 256 << 20, User: u.Username, Group: u.Username})
	})
	if err := ctlclient.Err(err, pr.GetError(), "pool create"); err != nil {
		t.Fatal(err)
	}
	leader := s.leader(t)
	if leader > 2 {
		t.Fatalf("leader is server %d, not one of the three replicas", leader)
	}
	// servers 3 and 4 are not replicas; the replicas that do not lead have
	// their engines stopped, so that the leader elected after this one
	// watches through an observer
	var stopped []int
	for i := range 3 {
		if i != leader {
			stopped = append(stopped, i)
		}
	}

	t.Run("kill -9 then restart", func(t *testing.T) {
		r := s.rankOf[4]
		if err := s.Kill(4, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		s.Wait(4)
		d := s.waitState(t, r, "excluded")
		t.Logf("SIGKILL: rank %d excluded after %v", r, d.Round(100*time.Millisecond))
		s.waitLog(t, s.leader(t), "rank excluded: SWIM declares it dead", fmt.Sprintf("rank=%d ", r))
		rctx, cancel := context.WithTimeout(context.Background(), swimLimit)
		defer cancel()
		if err := s.Restart(rctx, 4, swimLimit); err != nil { // it joins again: "joined"
			t.Fatal(err)
		}
		// once the leader's SWIM member sees the new incarnation alive, no
		// stale verdict on the old one can exclude it
		s.waitLog(t, s.leader(t), "swim: rank is alive again", fmt.Sprintf("peer_rank=%d ", r), "incarnation=2")
		if st := s.state(t, r); st != "joined" {
			t.Fatalf("rank %d is %s after its restart, want joined", r, st)
		}
	})

	t.Run("system stop is not a death", func(t *testing.T) {
		ranks := []uint32{s.rankOf[stopped[0]], s.rankOf[stopped[1]]}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp, err := admin.SystemStop(ctx, &ctlpb.SystemStopReq{Ranks: ranks})
		if err := ctlclient.Err(err, resp.GetError(), "system stop"); err != nil {
			t.Fatal(err)
		}
		for _, r := range ranks {
			// the leader's member records a clean leave, not a death
			s.waitLog(t, s.leader(t), "swim: rank is left", fmt.Sprintf("peer_rank=%d ", r))
			if st := s.state(t, r); st != "stopped" {
				t.Fatalf("rank %d is %s after dmg system stop, want stopped", r, st)
			}
		}
	})

	t.Run("SIGSTOP then SIGCONT", func(t *testing.T) {
		r := s.rankOf[3]
		s.pause(t, 3, true)
		d := s.waitState(t, r, "excluded")
		t.Logf("SIGSTOP: rank %d excluded after %v", r, d.Round(100*time.Millisecond))
		s.pause(t, 3, false)
		// the leader sees it answer again and leaves it excluded
		s.waitLog(t, s.leader(t), fmt.Sprintf("rank %d answers again; it stays excluded", r))
		if st := s.state(t, r); st != "excluded" {
			t.Fatalf("rank %d is %s once it answers again, want excluded", r, st)
		}
		s.healthy(t, 3)
		// the stops of the earlier subtest were never taken for deaths
		for _, i := range stopped {
			if st := s.state(t, s.rankOf[i]); st != "stopped" {
				t.Errorf("stopped rank %d is now %s", s.rankOf[i], st)
			}
		}
	})

	t.Run("SIGSTOP the leader", func(t *testing.T) {
		old := s.leader(t)
		r := s.rankOf[old]
		s.pause(t, old, true)
		// by the next leader (two replicas remain), whose engine is stopped:
		// it sees the death through its observer
		d := s.waitState(t, r, "excluded")
		t.Logf("SIGSTOP of the MS leader (server %d): rank %d excluded after %v by the new leader, server %d",
			old, r, d.Round(100*time.Millisecond), s.leader(t))
		s.pause(t, old, false)
		s.healthy(t, old)
	})
}
