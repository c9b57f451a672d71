// Package swim is failure detection between engines: a small wrapper over
// hashicorp/memberlist (SWIM with suspicion, as DAOS's engines run SWIM over
// the fabric). Each engine (rank) runs one Member, named by the engine's UUID,
// on its fabric host and fabric port + 1 (UDP for probes and gossip, TCP for
// joins and state exchange, both on that one port).
//
// A member that stops answering is first suspected; it is reported dead only
// when the suspicion timeout runs out without a refutation, the timeout
// shrinking as other members confirm the suspicion: a death is the group's
// verdict, not one prober's. A member that shuts down cleanly (Shutdown) says
// so first, and the others record it as left, not dead.
package swim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/godaos/godaos/internal/daoserr"
)

// Timeouts pace the protocol. A zero field takes the default's value.
type Timeouts struct {
	// ProbeInterval: each member probes one other member this often.
	ProbeInterval time.Duration
	// ProbeTimeout: how long a direct probe waits for its ack before the
	// member asks others to probe indirectly.
	ProbeTimeout time.Duration
	// SuspicionMult: a suspect is declared dead after SuspicionMult *
	// max(1, log10(members)) * ProbeInterval once others have confirmed the
	// suspicion, and SuspicionMaxTimeoutMult times that without confirmations.
	SuspicionMult           int
	SuspicionMaxTimeoutMult int
	// GossipInterval: how often a member gossips news to a few others.
	GossipInterval time.Duration
	// TCPTimeout bounds a join's (and a leave notice's) TCP exchange.
	TCPTimeout time.Duration
	// PushPullInterval: how often a member exchanges its full state with
	// another (anti-entropy: how a member that missed gossip catches up).
	PushPullInterval time.Duration
}

// DefaultTimeouts are memberlist's LAN defaults: a dead member is declared
// after about 4 to 24 s (more confirmations: sooner) in a system of up to ten
// ranks, scaling with log10 of the ranks beyond.
func DefaultTimeouts() Timeouts {
	c := memberlist.DefaultLANConfig()
	return Timeouts{ProbeInterval: c.ProbeInterval, ProbeTimeout: c.ProbeTimeout, SuspicionMult: c.SuspicionMult,
		SuspicionMaxTimeoutMult: c.SuspicionMaxTimeoutMult, GossipInterval: c.GossipInterval, TCPTimeout: c.TCPTimeout,
		PushPullInterval: c.PushPullInterval}
}

// FastTimeouts are for tests on one host: a dead member is declared within
// about 2 to 4 s in a system of a few ranks. Too eager for a loaded network.
func FastTimeouts() Timeouts {
	return Timeouts{ProbeInterval: 300 * time.Millisecond, ProbeTimeout: 200 * time.Millisecond, SuspicionMult: 3,
		SuspicionMaxTimeoutMult: 4, GossipInterval: 100 * time.Millisecond, TCPTimeout: time.Second,
		PushPullInterval: 5 * time.Second}
}

// withDefaults fills t's zero fields from DefaultTimeouts.
func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	or := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	or(&t.ProbeInterval, d.ProbeInterval)
	or(&t.ProbeTimeout, d.ProbeTimeout)
	or(&t.GossipInterval, d.GossipInterval)
	or(&t.TCPTimeout, d.TCPTimeout)
	or(&t.PushPullInterval, d.PushPullInterval)
	if t.SuspicionMult <= 0 {
		t.SuspicionMult = d.SuspicionMult
	}
	if t.SuspicionMaxTimeoutMult <= 0 {
		t.SuspicionMaxTimeoutMult = d.SuspicionMaxTimeoutMult
	}
	return t
}

// Config describes a member.
type Config struct {
	Name string // unique and stable: the engine's UUID
	// Rank and Incarnation (the system map's, bumped at each join) travel in
	// the member's metadata: a death reported for an older incarnation of a
	// rank is not a death of the rank as it runs now.
	Rank        uint32
	Incarnation uint64
	Addr        string // host:port to bind and advertise (port 0: any free port, for tests)
	Timeouts    Timeouts
	Logger      *slog.Logger
	// Observer members watch without being a rank: the others do not list
	// them (a management service replica whose engines do not run, so that
	// it still sees deaths when it leads). Rank and Incarnation are unused.
	Observer bool
	// OnChange is told when a rank's liveness changes as this member sees it
	// (in order, from one goroutine; it must not call Shutdown).
	OnChange func(rank uint32, alive bool)
}

// State is a peer's state as this member sees it.
type State int

const (
	Alive State = iota
	Dead        // stopped answering; confirmed by the group's suspicion timeout
	Left        // shut down cleanly
)

func (s State) String() string {
	switch s {
	case Alive:
		return "alive"
	case Dead:
		return "dead"
	case Left:
		return "left"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Peer is one member as this member sees it (itself included).
type Peer struct {
	Name        string
	Rank        uint32
	Incarnation uint64
	Addr        string
	State       State
	Since       time.Time // when this member saw the state begin
}

// A Member takes part in failure detection.
type Member struct {
	ml      *memberlist.Memberlist
	name    string
	log     *slog.Logger
	t       Timeouts
	onEvent func(rank uint32, alive bool)

	mu       sync.Mutex
	meta     []byte // rank and incarnation
	peers    map[string]*Peer
	leaving  map[string]bool // peers that announced a clean leave
	shutdown bool
	queue    []event // for the OnChange goroutine

	kick chan struct{} // the queue has news (capacity 1)
	quit chan struct{} // closed by stop
	done chan struct{} // closed when the OnChange goroutine has returned
}

type event struct {
	rank  uint32
	alive bool
}

// meta is what a member tells the others about itself.
type meta struct {
	rank     uint32
	inc      uint64
	observer bool
}

// metaLen is the metadata's size: rank (4 bytes) and incarnation (8), big
// endian, then flags (1: observer).
const metaLen = 13

const flagObserver = 1

func (m meta) encode() []byte {
	b := make([]byte, metaLen)
	binary.BigEndian.PutUint32(b, m.rank)
	binary.BigEndian.PutUint64(b[4:], m.inc)
	if m.observer {
		b[12] = flagObserver
	}
	return b
}

// decodeMeta reads a peer's metadata; ok is false for metadata this package
// did not write (another program on the port).
func decodeMeta(b []byte) (meta, bool) {
	if len(b) != metaLen || b[12]&^flagObserver != 0 {
		return meta{}, false
	}
	return meta{rank: binary.BigEndian.Uint32(b), inc: binary.BigEndian.Uint64(b[4:]), observer: b[12] == flagObserver}, true
}

// leaveMsg prefixes the notice a member sends each peer before it leaves.
var leaveMsg = []byte("godaos-swim-leave:")

// New starts a member bound to cfg.Addr. It knows only itself until Join.
func New(cfg Config) (*Member, error) {
	if cfg.Name == "" {
		return nil, daoserr.New(daoserr.Inval, "swim: a member needs a name")
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Inval, err, "swim: address %q", cfg.Addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return nil, daoserr.Newf(daoserr.Inval, "swim: port %q", port)
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.Default()
	}
	lg = lg.With("swim", cfg.Name, "rank", cfg.Rank)
	m := &Member{name: cfg.Name, log: lg, t: cfg.Timeouts.withDefaults(), meta: meta{cfg.Rank, cfg.Incarnation, cfg.Observer}.encode(),
		onEvent: cfg.OnChange, peers: map[string]*Peer{}, leaving: map[string]bool{},
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	mc.BindAddr, mc.BindPort = host, p
	mc.AdvertiseAddr, mc.AdvertisePort = host, p
	mc.ProbeInterval, mc.ProbeTimeout = m.t.ProbeInterval, m.t.ProbeTimeout
	mc.SuspicionMult, mc.SuspicionMaxTimeoutMult = m.t.SuspicionMult, m.t.SuspicionMaxTimeoutMult
	mc.GossipInterval, mc.TCPTimeout, mc.PushPullInterval = m.t.GossipInterval, m.t.TCPTimeout, m.t.PushPullInterval
	// dead members are still gossiped to for a while, so that one that was
	// only paused learns it was declared dead and refutes it
	mc.GossipToTheDeadTime = max(mc.GossipToTheDeadTime, 2*m.t.PushPullInterval)
	// names are engine UUIDs: one that comes back on another address (its
	// fabric port changed) is the same engine restarted, not an impostor
	mc.DeadNodeReclaimTime = m.t.ProbeInterval
	mc.Logger = log.New(slogWriter{lg}, "", 0)
	mc.Delegate = delegate{m}
	mc.Events = events{m}
	go m.dispatch()
	ml, err := memberlist.Create(mc)
	if err != nil {
		close(m.quit)
		<-m.done
		return nil, daoserr.Wrap(daoserr.Unreach, err, "swim: cannot start on %s", cfg.Addr).
			WithResolution("another process uses the port (UDP and TCP): SWIM uses the engine's fabric_iface_port + 1")
	}
	m.ml = ml
	return m, nil
}

// Addr is the address the member listens on (the real port when Config.Addr
// asked for port 0).
func (m *Member) Addr() string { return m.ml.LocalNode().Address() }

// Name is the member's name.
func (m *Member) Name() string { return m.name }

// Timeouts are the member's timeouts (the defaults filled in).
func (m *Member) Timeouts() Timeouts { return m.t }

// SetIncarnation announces the member's new incarnation (the rank joined the
// system again while its member ran), waiting a few seconds at most.
func (m *Member) SetIncarnation(inc uint64) error {
	m.mu.Lock()
	md, _ := decodeMeta(m.meta)
	if md.inc == inc || m.shutdown {
		m.mu.Unlock()
		return nil
	}
	md.inc = inc
	m.meta = md.encode()
	m.mu.Unlock()
	if err := m.ml.UpdateNode(min(leaveBudget, m.t.TCPTimeout)); err != nil {
		return daoserr.Wrap(daoserr.TimedOut, err, "swim: announce incarnation %d", inc)
	}
	return nil
}

// Join contacts the members at addrs (host:port; its own address is skipped),
// all at once, and merges their views into its own. It returns how many
// answered; the error says which did not when none did. It takes at most
// about Timeouts.TCPTimeout.
func (m *Member) Join(addrs []string) (int, error) {
	m.mu.Lock()
	down := m.shutdown
	m.mu.Unlock()
	if down {
		return 0, daoserr.New(daoserr.Shutdown, "swim: the member has shut down")
	}
	self := m.Addr()
	var todo []string
	for _, a := range addrs {
		if a != self && a != "" && !slices.Contains(todo, a) {
			todo = append(todo, a)
		}
	}
	if len(todo) == 0 {
		return 0, nil
	}
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, a := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.ml.Join([]string{a}); err != nil {
				errs[i] = fmt.Errorf("%s: %w", a, err)
			}
		}()
	}
	wg.Wait()
	n := 0
	for _, e := range errs {
		if e == nil {
			n++
		}
	}
	if n == 0 {
		return 0, daoserr.Wrap(daoserr.Unreach, errors.Join(errs...), "swim: no member answered")
	}
	return n, nil
}

// Alive is each known rank's liveness (itself included). A rank that has
// several incarnations on record is alive if any is.
func (m *Member) Alive() map[uint32]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[uint32]bool{}
	for _, p := range m.peers {
		out[p.Rank] = out[p.Rank] || p.State == Alive
	}
	return out
}

// Peers lists the members this one knows, itself included, by name. Dead
// and left members stay listed until they come back.
func (m *Member) Peers() []Peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Peer, 0, len(m.peers))
	for _, k := range slices.Sorted(maps.Keys(m.peers)) {
		out = append(out, *m.peers[k])
	}
	return out
}

// Peer is one member as this one sees it.
func (m *Member) Peer(name string) (Peer, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.peers[name]
	if !ok {
		return Peer{}, false
	}
	return *p, true
}

// leaveBudget bounds each step of a clean leave.
const leaveBudget = 2 * time.Second

// Shutdown leaves cleanly: it tells each live peer that it leaves (so they
// record it as left, not dead), broadcasts memberlist's leave, and stops. It
// takes a few seconds at most, whatever the peers do. Safe to call more than
// once, and on a nil Member.
func (m *Member) Shutdown() {
	if m == nil {
		return
	}
	m.mu.Lock()
	if m.shutdown {
		m.mu.Unlock()
		return
	}
	m.shutdown = true
	m.mu.Unlock()

	budget := min(leaveBudget, m.t.TCPTimeout)
	var wg sync.WaitGroup
	notice := append(slices.Clip(leaveMsg), m.name...)
	for _, n := range m.ml.Members() {
		if n.Name == m.name {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.ml.SendReliable(n, notice); err != nil {
				m.log.Debug("swim: leave notice not delivered", "peer", n.Name, "err", err)
			}
		}()
	}
	waitBounded(&wg, budget)
	if err := m.ml.Leave(budget); err != nil {
		m.log.Debug("swim: leave", "err", err)
	}
	m.stop()
}

// crash stops the member without a word, as a killed process would (tests).
func (m *Member) crash() {
	m.mu.Lock()
	m.shutdown = true
	m.mu.Unlock()
	m.stop()
}

func (m *Member) stop() {
	m.ml.Shutdown()
	close(m.quit)
	<-m.done
}

// waitBounded waits for wg at most d.
func waitBounded(wg *sync.WaitGroup, d time.Duration) {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	select {
	case <-c:
	case <-time.After(d):
	}
}

// dispatch calls OnChange in order, outside memberlist's locks and ours.
func (m *Member) dispatch() {
	defer close(m.done)
	for {
		select {
		case <-m.quit:
			return
		case <-m.kick:
		}
		m.mu.Lock()
		q := m.queue
		m.queue = nil
		m.mu.Unlock()
		for _, e := range q {
			if m.onEvent != nil {
				m.onEvent(e.rank, e.alive)
			}
		}
	}
}

// set records a peer's new state; memberlist calls it (through events) one
// event at a time, under its own lock: it must not call memberlist back.
func (m *Member) set(n *memberlist.Node, st State) {
	md, ok := decodeMeta(n.Meta)
	if !ok {
		m.log.Debug("swim: ignoring a member without our metadata", "peer", n.Name, "addr", n.Address())
		return
	}
	if md.observer {
		// it watches, it is no rank: nobody's business whether it lives
		m.mu.Lock()
		delete(m.leaving, n.Name)
		m.mu.Unlock()
		return
	}
	rank, inc := md.rank, md.inc
	m.mu.Lock()
	defer m.mu.Unlock()
	if st == Dead && m.leaving[n.Name] {
		st = Left
	}
	if st == Alive {
		delete(m.leaving, n.Name)
	}
	wasAlive := m.aliveLocked(rank)
	p := m.peers[n.Name]
	back := p != nil && p.State != Alive && st == Alive
	if p == nil {
		p = &Peer{Name: n.Name}
		m.peers[n.Name] = p
	}
	if p.State != st || p.Since.IsZero() {
		p.Since = time.Now()
	}
	p.Rank, p.Incarnation, p.Addr, p.State = rank, inc, n.Address(), st
	if n.Name != m.name && (st != Alive || back) {
		msg := "swim: rank is " + st.String()
		if back {
			msg = "swim: rank is alive again"
		}
		m.log.Info(msg, "peer_rank", rank, "peer", n.Name, "incarnation", inc, "addr", p.Addr)
	}
	if now := m.aliveLocked(rank); now != wasAlive && !m.shutdown {
		m.queue = append(m.queue, event{rank, now})
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// noticeLeave records a peer's leave notice (before memberlist's leave
// message: a clean leave is never taken for a death).
func (m *Member) noticeLeave(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leaving[name] = true
	if p := m.peers[name]; p != nil && p.State == Dead {
		p.State = Left
	}
}

func (m *Member) aliveLocked(rank uint32) bool {
	for _, p := range m.peers {
		if p.Rank == rank && p.State == Alive {
			return true
		}
	}
	return false
}

type events struct{ m *Member }

func (e events) NotifyJoin(n *memberlist.Node)   { e.m.set(n, Alive) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.m.set(n, Alive) }

// NotifyLeave comes both for a confirmed death and for a leave: the leave
// notice tells them apart.
func (e events) NotifyLeave(n *memberlist.Node) { e.m.set(n, Dead) }

type delegate struct{ m *Member }

func (d delegate) NodeMeta(limit int) []byte {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	return d.m.meta
}
func (d delegate) NotifyMsg(b []byte) {
	if name, ok := bytes.CutPrefix(b, leaveMsg); ok {
		d.m.noticeLeave(string(name))
	}
}
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d delegate) LocalState(join bool) []byte                { return nil }
func (d delegate) MergeRemoteState(buf []byte, join bool)     {}

// slogWriter takes memberlist's log lines ("[LEVEL] memberlist: ...") to
// slog at debug level: SWIM's verdicts are logged by this package.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	line := strings.TrimSpace(string(b))
	lvl := ""
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			lvl, line = line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	w.log.Debug(line, "memberlist_level", lvl)
	return len(b), nil
}
