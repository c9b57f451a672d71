package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/server/mgmt"
	"github.com/godaos/godaos/server/swim"
)

// Failure detection (DESIGN.md §7): each joined engine runs a SWIM member
// (server/swim) on its fabric host, UDP and TCP port fabric_iface_port + 1
// (31417 for the default 31416; the launcher's local layout: base+10*i+4).
// A peer's SWIM address is derived the same way from its fabric address in
// the system map. An engine whose fabric_iface_port is 0 (an ephemeral port)
// runs no SWIM member.
//
// The management service leader acts on what its own engines' members see:
// a rank that SWIM declares dead (its suspicion confirmed by the group) and
// that the system map has "joined" at the same incarnation is set "excluded"
// and handed to rankDead. It stays excluded if it answers again, until an
// administrator reintegrates it or it joins again (a restart). A rank stopped
// with dmg system stop leaves SWIM cleanly: it is never taken for dead.
//
// An MS replica whose engine stops (dmg system stop) would lead blind: it
// runs an observer member on the engine's SWIM port meanwhile, which sees
// the ranks and which they do not list.

// SwimFastEnv, set to 1 in daos_server's environment, selects
// swim.FastTimeouts when Options.SwimTimeouts is nil: multi-process tests
// detect deaths in seconds without a configuration key for it.
const SwimFastEnv = "GODAOS_SWIM_FAST"

const (
	swimRejoinInterval = 3 * time.Second // each server looks for ranks its members do not know
	swimCheckInterval  = time.Second     // the leader compares SWIM's verdicts with the system map
	swimCallTimeout    = 10 * time.Second
)

// swimState is the server's part of failure detection.
type swimState struct {
	timeouts swim.Timeouts
	rejoin   chan struct{} // look for peers now (capacity 1)
	check    chan struct{} // leader: compare now (capacity 1)

	mu        sync.Mutex
	off       map[int]bool         // engines whose "SWIM off" was logged
	warned    map[uint32]uint64    // rank -> incarnation whose "answers again" was logged
	observers map[int]*swim.Member // MS replica: watching on a stopped engine's SWIM port
	closed    bool                 // no new observers: the server stops
}

// initSwim sets the timeouts; it runs before any engine joins.
func (s *Server) initSwim(opts Options) {
	t := swim.DefaultTimeouts()
	switch {
	case opts.SwimTimeouts != nil:
		t = *opts.SwimTimeouts
	case os.Getenv(SwimFastEnv) == "1":
		t = swim.FastTimeouts()
	}
	s.swim = swimState{timeouts: t, rejoin: make(chan struct{}, 1), check: make(chan struct{}, 1),
		off: map[int]bool{}, warned: map[uint32]uint64{}, observers: map[int]*swim.Member{}}
}

// startSwimLoops starts the rejoin loop and, on an MS replica, the leader's
// check loop. They end with joinCtx.
func (s *Server) startSwimLoops() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.swimRejoinLoop(s.joinCtx)
	}()
	if s.ms != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.swimLeaderLoop(s.joinCtx)
		}()
	}
}

func nudge(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// swimAddr is the SWIM address of the engine at fabric address host:port:
// host:port+1. ok is false for port 0 (no SWIM) or a malformed address.
func swimAddr(fabric string) (string, bool) {
	h, p, err := net.SplitHostPort(fabric)
	if err != nil {
		return "", false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n >= 65535 {
		return "", false
	}
	return net.JoinHostPort(h, strconv.Itoa(n+1)), true
}

// swimStart starts a joined engine's SWIM member (or tells the running one
// its new incarnation) and has it look for its peers.
func (s *Server) swimStart(re *runningEngine, m *ctlpb.Member) {
	if s.cfg.Engines[re.idx].FabricIfacePort == 0 {
		s.swim.mu.Lock()
		if !s.swim.off[re.idx] {
			s.swim.off[re.idx] = true
			s.log.Info("SWIM failure detection is off for this engine: its fabric_iface_port is 0 (ephemeral)", "engine", re.idx, "rank", m.Rank)
		}
		s.swim.mu.Unlock()
		return
	}
	re.mu.Lock()
	defer re.mu.Unlock()
	if re.state != engineRunning {
		return // stopped meanwhile
	}
	s.swimObserverStop(re.idx)
	if re.sw != nil {
		if err := re.sw.SetIncarnation(m.Incarnation); err != nil {
			s.log.Warn("SWIM: cannot announce the engine's new incarnation", "engine", re.idx, "rank", m.Rank, "err", err)
		}
		return
	}
	addr, ok := swimAddr(re.addr)
	if !ok {
		s.log.Warn("SWIM failure detection is off for this engine: no port in its fabric address", "engine", re.idx, "fabric", re.addr)
		return
	}
	sw, err := swim.New(swim.Config{Name: m.Uuid, Rank: m.Rank, Incarnation: m.Incarnation, Addr: addr,
		Timeouts: s.swim.timeouts, Logger: s.log.With("engine", re.idx), OnChange: s.swimChanged})
	if err != nil {
		s.log.Warn("SWIM failure detection is off for this engine", "engine", re.idx, "rank", m.Rank, "err", err)
		return
	}
	re.sw = sw
	s.log.Info("SWIM member started", "engine", re.idx, "rank", m.Rank, "addr", sw.Addr())
	nudge(s.swim.rejoin)
}

// swimStop stops an engine's SWIM member with a clean leave (stopEngine, the
// slot's lock not held); on an MS replica an observer takes its port.
func (s *Server) swimStop(re *runningEngine, sw *swim.Member) {
	if sw == nil {
		return
	}
	addr := sw.Addr()
	sw.Shutdown()
	if s.ms == nil {
		return
	}
	s.swim.mu.Lock()
	defer s.swim.mu.Unlock()
	if s.swim.closed || s.swim.observers[re.idx] != nil || s.joinCtx.Err() != nil {
		return
	}
	obs, err := swim.New(swim.Config{Name: sw.Name() + "-observer", Observer: true, Addr: addr, Timeouts: s.swim.timeouts,
		Logger: s.log.With("engine", re.idx, "observer", true), OnChange: s.swimChanged})
	if err != nil {
		s.log.Warn("SWIM: cannot watch while the engine is stopped: this replica sees no deaths if it leads", "engine", re.idx, "err", err)
		return
	}
	s.swim.observers[re.idx] = obs
	nudge(s.swim.rejoin)
}

// swimObserverStop stops the observer on engine idx's port, if any.
func (s *Server) swimObserverStop(idx int) {
	s.swim.mu.Lock()
	obs := s.swim.observers[idx]
	delete(s.swim.observers, idx)
	s.swim.mu.Unlock()
	obs.Shutdown()
}

// swimChanged is every local member's OnChange: the leader looks at once.
func (s *Server) swimChanged(rank uint32, alive bool) {
	nudge(s.swim.check)
}

// swimMembers lists the running engines' SWIM members and the observers.
func (s *Server) swimMembers() []*swim.Member {
	var out []*swim.Member
	for _, re := range s.engines {
		re.mu.Lock()
		if re.sw != nil {
			out = append(out, re.sw)
		}
		re.mu.Unlock()
	}
	s.swim.mu.Lock()
	for _, obs := range s.swim.observers {
		out = append(out, obs)
	}
	s.swim.mu.Unlock()
	return out
}

// swimRejoinLoop has each local member join the ranks of the system map it
// does not know yet (ranks that joined later, or restarted), every few
// seconds and when a member starts.
func (s *Server) swimRejoinLoop(ctx context.Context) {
	t := time.NewTicker(swimRejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.swim.rejoin:
		}
		members := s.swimMembers()
		if len(members) == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, swimCallTimeout)
		resp, err := s.ctl.SystemQuery(cctx, &ctlpb.SystemQueryReq{})
		cancel()
		if err == nil && resp.Error != nil {
			err = fmt.Errorf("%s", resp.Error.Msg)
		}
		if err != nil {
			s.log.Debug("SWIM: cannot read the system map to find peers", "err", err)
			continue
		}
		for _, sw := range members {
			if addrs := swimPeersToJoin(sw, resp.Members); len(addrs) > 0 {
				n, err := sw.Join(addrs)
				s.log.Debug("SWIM: joined peers", "member", sw.Name(), "tried", addrs, "answered", n, "err", err)
			}
		}
	}
}

// peerBook is what swimPeersToJoin asks of a member.
type peerBook interface {
	Name() string
	Peer(name string) (swim.Peer, bool)
}

// swimPeersToJoin are the SWIM addresses of the joined ranks sw does not
// know, or knows only dead at an older incarnation (they restarted).
func swimPeersToJoin(sw peerBook, members []*ctlpb.Member) []string {
	var out []string
	for _, m := range members {
		if m.State != mgmt.MemberJoined || m.Uuid == sw.Name() {
			continue
		}
		addr, ok := swimAddr(m.FabricAddr)
		if !ok {
			continue
		}
		if p, known := sw.Peer(m.Uuid); known && (p.State == swim.Alive || p.Incarnation >= m.Incarnation) {
			continue
		}
		out = append(out, addr)
	}
	return out
}

// swimLeaderLoop runs the leader's check every second and when a member
// reports a change; a replica that becomes leader thus acts on deaths seen
// before it led.
func (s *Server) swimLeaderLoop(ctx context.Context) {
	t := time.NewTicker(swimCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.swim.mu.Lock()
			s.swim.closed = true
			s.swim.mu.Unlock()
			for idx := range s.cfg.Engines {
				s.swimObserverStop(idx)
			}
			return
		case <-t.C:
		case <-s.swim.check:
		}
		if s.ms.IsLeader() {
			s.swimCheck(ctx)
		}
	}
}

// swimView merges the local members' views by member name: the newest
// incarnation wins, then alive over dead (a member's stale verdict does not
// outvote another's fresh one).
func (s *Server) swimView() map[string]swim.Peer {
	view := map[string]swim.Peer{}
	for _, sw := range s.swimMembers() {
		for _, p := range sw.Peers() {
			q, ok := view[p.Name]
			if !ok || p.Incarnation > q.Incarnation || (p.Incarnation == q.Incarnation && p.State == swim.Alive && q.State != swim.Alive) {
				view[p.Name] = p
			}
		}
	}
	return view
}

// rankSeen is a rank of the system map with SWIM's view of it.
type rankSeen struct {
	m mgmt.Member
	p swim.Peer
}

// swimVerdicts compares SWIM's view with the system map: the joined ranks
// SWIM declares dead, to exclude, and the excluded ranks SWIM sees alive. A
// verdict on another incarnation than the map's (a rank that restarted
// since) is not about the rank as it runs now; a clean leave is no death.
func swimVerdicts(view map[string]swim.Peer, members []mgmt.Member) (dead, back []rankSeen) {
	for _, m := range members {
		p, ok := view[m.UUID]
		if !ok || p.Rank != m.Rank || p.Incarnation != m.Incarnation {
			continue // not seen, or seen as another incarnation
		}
		switch {
		case p.State == swim.Dead && m.State == mgmt.MemberJoined:
			dead = append(dead, rankSeen{m, p})
		case p.State == swim.Alive && m.State == mgmt.MemberExcluded:
			back = append(back, rankSeen{m, p})
		}
	}
	return dead, back
}

// swimCheck (leader) excludes the joined ranks SWIM declares dead, and says
// so when an excluded rank answers again.
func (s *Server) swimCheck(ctx context.Context) {
	view := s.swimView()
	if len(view) == 0 {
		return // no member of ours runs: nothing seen
	}
	members, _, err := s.ms.Members()
	if err != nil {
		return // not the leader any more
	}
	dead, back := swimVerdicts(view, members)
	for _, d := range dead {
		reason := fmt.Sprintf("SWIM: no answer to probes; declared dead at %s", d.p.Since.Format(time.RFC3339))
		if err := s.ms.SetMemberState(d.m.Rank, mgmt.MemberExcluded); err != nil {
			s.log.Warn("SWIM: cannot exclude a dead rank (retrying)", "rank", d.m.Rank, "err", err)
			continue
		}
		s.log.Warn("rank excluded: SWIM declares it dead", "rank", d.m.Rank, "incarnation", d.m.Incarnation, "addr", d.p.Addr, "dead_since", d.p.Since)
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		s.rankDead(rctx, d.m.Rank, reason)
		cancel()
	}
	for _, b := range back {
		s.swim.mu.Lock()
		warn := s.swim.warned[b.m.Rank] != b.m.Incarnation
		s.swim.warned[b.m.Rank] = b.m.Incarnation
		s.swim.mu.Unlock()
		if warn {
			s.log.Warn(fmt.Sprintf("rank %d answers again; it stays excluded until reintegrated (dmg system reintegrate / dmg pool reintegrate)", b.m.Rank),
				"rank", b.m.Rank, "incarnation", b.m.Incarnation)
		}
	}
}
