// Package rebuild runs, on the management service leader, the rebuild of
// pools whose maps have shards to rebuild: targets excluded (DOWN),
// draining (DRAIN) or integrating (UP). For each such pool map version it
// starts every serving rank's scan (the engines copy the data, see
// server/engine/rebuild.go), follows their progress, and when every rank is
// done moves the map on: DOWN and DRAIN targets become DOWNOUT, UP ones
// UPIN. A map that changes meanwhile (another failure) starts the rebuild
// again at the new version; the engines drop the older one.
package rebuild

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// States of a pool's rebuild, as dmg pool query shows them (DAOS's words).
const (
	Idle = "idle" // nothing to rebuild
	Busy = "busy" // ranks are copying data
	Done = "done" // the last rebuild finished
	// Waiting: there is something to rebuild, but the pool's self_heal
	// property does not start it (no "rebuild", or "delay_rebuild").
	Waiting = "waiting"
	// Stopped: an administrator stopped it (dmg pool rebuild stop).
	Stopped = "stopped"
)

// Status is a pool's rebuild as the leader follows it.
type Status struct {
	State                   string
	Version                 uint32 // the map version rebuilt to
	Objects, Records, Bytes uint64 // objects scanned, akeys and bytes copied, over all ranks
	Lost                    uint64 // groups or dkeys beyond their class's redundancy
	Ranks, RanksDone        int
	Err                     string // the first error a rank reported
	Started, Finished       time.Time
	// Reclaimed is the map version whose reclaim was started: after a
	// rebuild, the targets shards moved away from delete what they held.
	Reclaimed uint32
}

// Pool is what the manager needs of one pool.
type Pool struct {
	UUID, Label string
	Version     uint32
	// Pending says the map has shards to rebuild (DOWN, DRAIN or UP targets).
	Pending bool
	// Auto says the pool's self_heal lets a rebuild start by itself.
	Auto  bool
	Ranks []uint32 // the ranks that take part: those with a target that serves
}

// Progress is one rank's answer.
type Progress struct {
	Version                 uint32
	Done                    bool
	Objects, Records, Bytes uint64
	Lost                    uint64
	Err                     string
}

// System is what the manager needs of the management service leader.
type System interface {
	// Leader says whether this replica leads (only the leader rebuilds).
	Leader() bool
	Pools(ctx context.Context) ([]Pool, error)
	// Start starts the ranks' rebuild of pool to version (idempotent).
	Start(ctx context.Context, pool string, version uint32, ranks []uint32) error
	Query(ctx context.Context, pool string, rank uint32) (Progress, error)
	// Stop stops the ranks' rebuild of pool (a later Start begins anew).
	Stop(ctx context.Context, pool string, ranks []uint32) error
	// Complete moves pool's map on from version once rebuilt to it: DOWN and
	// DRAIN targets become DOWNOUT, UP ones UPIN. It does nothing if the map
	// has moved past version meanwhile.
	Complete(ctx context.Context, pool string, version uint32) error
	// Reclaim starts the ranks' reclaim of what map version (with nothing
	// rebuilding) no longer places on them.
	Reclaim(ctx context.Context, pool string, version uint32, ranks []uint32) error
}

// Manager follows the pools' rebuilds.
type Manager struct {
	sys    System
	log    *slog.Logger
	mu     sync.Mutex
	status map[string]*Status // by pool UUID
	// manual holds the pools whose rebuild an administrator started while
	// self_heal would not (dmg pool rebuild start), by map version.
	manual map[string]uint32
	// stopped holds the pools whose rebuild an administrator stopped.
	stopped map[string]bool
}

// New returns a manager over sys.
func New(sys System, log *slog.Logger) *Manager {
	return &Manager{sys: sys, log: log, status: map[string]*Status{}, manual: map[string]uint32{}, stopped: map[string]bool{}}
}

// Status is pool's rebuild status (Idle when none was seen).
func (m *Manager) Status(pool string) Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.status[pool]; s != nil {
		return *s
	}
	return Status{State: Idle}
}

// Start lets pool's rebuild run again after Stop, and its pending one at
// map version although self_heal holds it (dmg pool rebuild start).
func (m *Manager) Start(pool string, version uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.manual[pool] = version
	delete(m.stopped, pool)
	if s := m.status[pool]; s != nil && s.State == Stopped {
		s.State = Idle
	}
}

// Stop stops pool's rebuild until Start (dmg pool rebuild stop): the ranks
// stop scanning; the map stays as it is, shards still rebuilding.
func (m *Manager) Stop(ctx context.Context, pool string, ranks []uint32) error {
	m.mu.Lock()
	m.stopped[pool] = true
	s := m.status[pool]
	if s == nil {
		s = &Status{}
		m.status[pool] = s
	}
	s.State = Stopped
	m.mu.Unlock()
	return m.sys.Stop(ctx, pool, ranks)
}

// Run follows the rebuilds every interval until ctx ends.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.sys.Leader() {
			m.Step(ctx)
		}
	}
}

// Step looks at every pool once: starts, follows or completes its rebuild.
func (m *Manager) Step(ctx context.Context) {
	pools, err := m.sys.Pools(ctx)
	if err != nil {
		m.log.Debug("rebuild: pools", "err", err)
		return
	}
	for _, p := range pools {
		m.step(ctx, p)
	}
}

func (m *Manager) step(ctx context.Context, p Pool) {
	m.mu.Lock()
	st := m.status[p.UUID]
	if st == nil {
		st = &Status{State: Idle}
		m.status[p.UUID] = st
	}
	manual := m.manual[p.UUID] == p.Version
	stopped := m.stopped[p.UUID]
	m.mu.Unlock()
	if stopped {
		return
	}
	set := func(f func(s *Status)) {
		m.mu.Lock()
		f(st)
		m.mu.Unlock()
	}
	if !p.Pending {
		if st.State == Busy || st.State == Waiting {
			set(func(s *Status) { s.State = Idle })
		}
		m.mu.Lock()
		reclaim := st.State == Done && st.Reclaimed != p.Version
		m.mu.Unlock()
		if reclaim {
			if err := m.sys.Reclaim(ctx, p.UUID, p.Version, p.Ranks); err != nil {
				// not again for this version: what moved away stays where it
				// was, invisible, until a later reclaim
				m.log.Warn("rebuild: cannot start reclaim", "pool", p.Label, "version", p.Version, "err", err)
			}
			set(func(s *Status) { s.Reclaimed = p.Version })
		}
		return
	}
	if !p.Auto && !manual {
		set(func(s *Status) { s.State, s.Version = Waiting, p.Version })
		return
	}
	if st.State != Busy || st.Version != p.Version {
		if err := m.sys.Start(ctx, p.UUID, p.Version, p.Ranks); err != nil {
			m.log.Warn("rebuild: cannot start", "pool", p.Label, "version", p.Version, "err", err)
			return
		}
		m.log.Info("rebuild started", "pool", p.Label, "version", p.Version, "ranks", len(p.Ranks))
		set(func(s *Status) {
			*s = Status{State: Busy, Version: p.Version, Ranks: len(p.Ranks), Started: time.Now()}
		})
	}
	var sum Progress
	done := 0
	var firstErr string
	for _, r := range p.Ranks {
		pr, err := m.sys.Query(ctx, p.UUID, r)
		if err != nil {
			m.log.Debug("rebuild: query", "pool", p.Label, "rank", r, "err", err)
			continue
		}
		if pr.Version != p.Version {
			// it has not started this version (it restarted, or missed the
			// start): start it again
			m.sys.Start(ctx, p.UUID, p.Version, []uint32{r})
			continue
		}
		sum.Objects, sum.Records, sum.Bytes, sum.Lost = sum.Objects+pr.Objects, sum.Records+pr.Records, sum.Bytes+pr.Bytes, sum.Lost+pr.Lost
		if pr.Done {
			done++
		}
		if firstErr == "" {
			firstErr = pr.Err
		}
	}
	set(func(s *Status) {
		s.Objects, s.Records, s.Bytes, s.Lost, s.RanksDone, s.Err = sum.Objects, sum.Records, sum.Bytes, sum.Lost, done, firstErr
	})
	if done < len(p.Ranks) {
		return
	}
	if firstErr != "" {
		// some copies failed: scan again (the ranks restart on the next
		// start of a version; the map is not moved on over missing data)
		m.log.Warn("rebuild: ranks finished with errors; starting again", "pool", p.Label, "version", p.Version, "err", firstErr)
		set(func(s *Status) { s.State = Idle })
		return
	}
	if err := m.sys.Complete(ctx, p.UUID, p.Version); err != nil {
		m.log.Warn("rebuild: cannot complete", "pool", p.Label, "version", p.Version, "err", err)
		return
	}
	m.log.Info("rebuild done", "pool", p.Label, "version", p.Version, "objects", sum.Objects, "records", sum.Records, "bytes", sum.Bytes, "lost", sum.Lost)
	set(func(s *Status) { s.State, s.Finished = Done, time.Now() })
}
