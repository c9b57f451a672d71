package placement

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/godaos/godaos/internal/daoserr"
)

// TargetState is a target's state in the pool map, as DAOS's (pool_map.h) less NEW:
// a rank added by extension is UP at once, since ranks added later come last in the
// map and move only the objects that must move.
type TargetState uint8

const (
	TargetUp          TargetState = iota // UPIN: serves its shards
	TargetDown                           // DOWN: failed; its shards are remapped, rebuild pending
	TargetOut                            // DOWNOUT: excluded; its shards are remapped for good
	TargetDrain                          // DRAIN: healthy but being emptied: remapped, still readable until DOWNOUT
	TargetIntegrating                    // UP: (re)integrating: placed, its shards being rebuilt until UPIN
)

// States lists the target states by value, for parsing and tests.
var States = []TargetState{TargetUp, TargetDown, TargetOut, TargetDrain, TargetIntegrating}

func (s TargetState) String() string {
	switch s {
	case TargetUp:
		return "UPIN"
	case TargetDown:
		return "DOWN"
	case TargetOut:
		return "DOWNOUT"
	case TargetDrain:
		return "DRAIN"
	case TargetIntegrating:
		return "UP"
	}
	return fmt.Sprintf("STATE(%d)", uint8(s))
}

// Placed reports whether placement puts shards on a target in this state: UPIN, and
// UP (integrating). DOWN, DOWNOUT and DRAIN targets' shards are remapped.
func (s TargetState) Placed() bool { return s == TargetUp || s == TargetIntegrating }

// RankSpec describes one engine (rank) of the pool.
type RankSpec struct {
	Rank uint32
	// FaultDomain is the rank's fault path from the server config (fault_path), e.g.
	// "/rack0/node1": the last component is the domain whose loss a group survives, the
	// others group domains (racks) so that shards spread over them as well. "" puts the
	// rank in a domain of its own, "/rank<N>". All ranks of a map must use paths of the
	// same depth.
	FaultDomain string
	Targets     int         // targets (VOS instances) of the rank
	State       TargetState // state of all its targets at build time
	// TargetStates, when not empty, gives each target's state instead (one per target).
	TargetStates []TargetState
	// TargetFseq, when not empty, gives each target's failure sequence (see Target.Fseq).
	TargetFseq []uint32
	// Added is the map version in which the rank joined the pool (0 for the original
	// ranks). Ranks added later are placed after the existing ones in every list, which
	// is what lets consistent hashing move only the objects that must move when a pool is
	// extended (DAOS likewise appends NEW components at the end of their level).
	Added uint32
}

// Target is one target of the pool map.
type Target struct {
	ID     uint32 // pool-wide id: targets numbered in (rank, index) order
	Rank   uint32
	Index  uint32 // index within the rank (the engine's VOS target / xstream)
	State  TargetState
	Domain string // fault domain path of its rank
	// Fseq is the map version in which the target failed (went DOWN or DRAIN; kept
	// when it becomes DOWNOUT), 0 while it serves: failures are remapped in this
	// order, so a later failure does not move shards remapped for an earlier one.
	// FseqDrained is set in it once a drained target is DOWNOUT: its data was moved,
	// not lost.
	Fseq uint32
}

// FseqDrained marks the Fseq of a target that left by a drain (see Target.Fseq).
const FseqDrained = 1 << 31

// failSeq is the failure sequence that orders remapping.
func (t Target) failSeq() uint32 { return t.Fseq &^ FseqDrained }

type nodeKind uint8

const (
	kindRoot nodeKind = iota
	kindDomain
	kindRank
	kindTarget
)

type node struct {
	kind     nodeKind
	leafDom  bool // a domain whose children are ranks: the unit a group's shards avoid sharing
	name     string
	parent   int32
	children []int32
	ntargets int32 // targets in the subtree
	target   int32 // target id, for target nodes
}

// topology is the immutable tree shared by the maps derived from one another by state
// changes; only target states differ between them.
type topology struct {
	specs   []RankSpec
	nodes   []node // nodes[0] is the root
	tnode   []int32
	domains []string       // leaf domain paths, in tree order
	first   map[uint32]int // rank -> id of its target 0
	// Flat copies of the node fields placement reads in its inner loop.
	kind     []nodeKind
	parent   []int32
	ntargets []int32
	children [][]int32
	scratch  sync.Pool // *walker
}

// PoolMap is a versioned fault-domain tree: root → domains (one or more levels) →
// ranks → targets. Clients and servers build it from the same list of RankSpec and get
// the same tree, hence the same layouts. A PoolMap is not changed once built: state
// changes and extension return a new map, so one can be shared by goroutines.
type PoolMap struct {
	version uint32
	topo    *topology
	targets []Target // by id
	levels  []uint32 // the distinct Fseq of the targets not placed, ascending

	prevOnce sync.Once
	prev     *PoolMap // see Previous
	prevErr  error
}

// NewPoolMap builds a pool map of the given version. Ranks are ordered by (Added,
// fault domain, rank) whatever the order given.
func NewPoolMap(version uint32, ranks []RankSpec) (*PoolMap, error) {
	if len(ranks) == 0 {
		return nil, daoserr.New(daoserr.Inval, "pool map without ranks")
	}
	specs := slices.Clone(ranks)
	depth := -1
	seen := map[uint32]bool{}
	for i := range specs {
		s := &specs[i]
		if seen[s.Rank] {
			return nil, daoserr.Newf(daoserr.Inval, "pool map lists rank %d twice", s.Rank)
		}
		seen[s.Rank] = true
		if s.Targets < 1 || s.Targets > 1<<16 {
			return nil, daoserr.Newf(daoserr.Inval, "rank %d has %d targets", s.Rank, s.Targets).WithResolution("a rank has 1 to 65536 targets")
		}
		if s.State > TargetIntegrating {
			return nil, daoserr.Newf(daoserr.Inval, "rank %d has unknown state %d", s.Rank, s.State)
		}
		if len(s.TargetFseq) != 0 && len(s.TargetFseq) != s.Targets {
			return nil, daoserr.Newf(daoserr.Inval, "rank %d has %d targets and %d failure sequences", s.Rank, s.Targets, len(s.TargetFseq))
		}
		if len(s.TargetStates) != 0 && len(s.TargetStates) != s.Targets {
			return nil, daoserr.Newf(daoserr.Inval, "rank %d has %d targets and %d target states", s.Rank, s.Targets, len(s.TargetStates))
		}
		for i, st := range s.TargetStates {
			if st > TargetIntegrating {
				return nil, daoserr.Newf(daoserr.Inval, "rank %d target %d has unknown state %d", s.Rank, i, st)
			}
		}
		if s.FaultDomain == "" {
			s.FaultDomain = fmt.Sprintf("/rank%d", s.Rank)
		}
		parts, err := splitFaultPath(s.FaultDomain)
		if err != nil {
			return nil, daoserr.Context(err, "rank %d", s.Rank)
		}
		if depth >= 0 && len(parts) != depth {
			return nil, daoserr.Newf(daoserr.Inval, "rank %d has fault domain %q with %d levels, other ranks have %d", s.Rank, s.FaultDomain, len(parts), depth).
				WithResolution("give every server a fault_path with the same number of levels, e.g. /rack<r>/node<n>")
		}
		depth = len(parts)
	}
	slices.SortFunc(specs, func(a, b RankSpec) int {
		return cmp.Or(cmp.Compare(a.Added, b.Added), strings.Compare(a.FaultDomain, b.FaultDomain), cmp.Compare(a.Rank, b.Rank))
	})

	t := &topology{specs: specs, nodes: []node{{kind: kindRoot, parent: -1}}, first: map[uint32]int{}}
	// Target ids go in (rank, index) order, independent of the domains.
	byRank := slices.Clone(specs)
	slices.SortFunc(byRank, func(a, b RankSpec) int { return cmp.Compare(a.Rank, b.Rank) })
	total := 0
	for _, s := range byRank {
		t.first[s.Rank] = total
		total += s.Targets
	}
	m := &PoolMap{version: version, topo: t, targets: make([]Target, total)}
	t.tnode = make([]int32, total)

	child := map[string]int32{} // domain path -> node
	for _, s := range specs {
		parts, _ := splitFaultPath(s.FaultDomain)
		cur, path := int32(0), ""
		for i, p := range parts {
			path += "/" + p
			n, ok := child[path]
			if !ok {
				n = t.add(cur, node{kind: kindDomain, leafDom: i == len(parts)-1, name: path})
				child[path] = n
				if i == len(parts)-1 {
					t.domains = append(t.domains, path)
				}
			}
			cur = n
		}
		r := t.add(cur, node{kind: kindRank, name: fmt.Sprint(s.Rank)})
		for i := range s.Targets {
			id := t.first[s.Rank] + i
			tn := t.add(r, node{kind: kindTarget, target: int32(id), ntargets: 1})
			t.tnode[id] = tn
			st := s.State
			if len(s.TargetStates) > 0 {
				st = s.TargetStates[i]
			}
			m.targets[id] = Target{ID: uint32(id), Rank: s.Rank, Index: uint32(i), State: st, Domain: s.FaultDomain}
			if len(s.TargetFseq) > 0 && st != TargetUp {
				m.targets[id].Fseq = s.TargetFseq[i]
			}
			for p := r; p >= 0; p = t.nodes[p].parent {
				t.nodes[p].ntargets++
			}
		}
	}
	t.flatten()
	m.computeLevels()
	return m, nil
}

// computeLevels notes the failure sequences to remap by, in order.
func (m *PoolMap) computeLevels() {
	m.levels = m.levels[:0]
	for _, t := range m.targets {
		if !t.State.Placed() && !slices.Contains(m.levels, t.failSeq()) {
			m.levels = append(m.levels, t.failSeq())
		}
	}
	slices.Sort(m.levels)
}

func (m *PoolMap) fseqLevels() []uint32 { return m.levels }

func (t *topology) flatten() {
	for _, n := range t.nodes {
		t.kind = append(t.kind, n.kind)
		t.parent = append(t.parent, n.parent)
		t.ntargets = append(t.ntargets, n.ntargets)
		t.children = append(t.children, n.children)
	}
}

func (t *topology) add(parent int32, n node) int32 {
	n.parent = parent
	id := int32(len(t.nodes))
	t.nodes = append(t.nodes, n)
	t.nodes[parent].children = append(t.nodes[parent].children, id)
	return id
}

func splitFaultPath(p string) ([]string, error) {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if !strings.HasPrefix(p, "/") || slices.Contains(parts, "") || len(parts) > 8 {
		return nil, daoserr.Newf(daoserr.Inval, "bad fault domain %q", p).
			WithResolution("a fault path is /<level>/.../<domain>, 1 to 8 non-empty levels, e.g. /rack0/node1")
	}
	return parts, nil
}

// Version is the pool map version.
func (m *PoolMap) Version() uint32 { return m.version }

// NumTargets is the number of targets, whatever their state.
func (m *PoolMap) NumTargets() int { return len(m.targets) }

// Targets lists the targets by id.
func (m *PoolMap) Targets() []Target { return slices.Clone(m.targets) }

// Target returns the target with pool-wide id id.
func (m *PoolMap) Target(id uint32) (Target, bool) {
	if int(id) >= len(m.targets) {
		return Target{}, false
	}
	return m.targets[id], true
}

// FindTarget returns target index of rank.
func (m *PoolMap) FindTarget(rank uint32, index int) (Target, bool) {
	f, ok := m.topo.first[rank]
	if !ok || index < 0 || f+index >= len(m.targets) || m.targets[f+index].Rank != rank {
		return Target{}, false
	}
	return m.targets[f+index], true
}

// Ranks lists the ranks as given, in map order (Added, fault domain, rank), with the
// state of their target 0 and of each target.
func (m *PoolMap) Ranks() []RankSpec {
	out := slices.Clone(m.topo.specs)
	for i := range out {
		f := m.topo.first[out[i].Rank]
		out[i].State = m.targets[f].State
		out[i].TargetStates = make([]TargetState, out[i].Targets)
		out[i].TargetFseq = make([]uint32, out[i].Targets)
		for j := range out[i].TargetStates {
			out[i].TargetStates[j] = m.targets[f+j].State
			out[i].TargetFseq[j] = m.targets[f+j].Fseq
		}
	}
	return out
}

// ParseTargetState parses a state's DAOS name (UPIN, UP, DOWN, DOWNOUT, DRAIN).
func ParseTargetState(s string) (TargetState, error) {
	for _, st := range States {
		if strings.EqualFold(s, st.String()) {
			return st, nil
		}
	}
	return 0, daoserr.Newf(daoserr.Inval, "unknown target state %q", s).WithResolution("use UPIN, UP, DOWN, DOWNOUT or DRAIN")
}

// Domains lists the fault domains (the last level of the fault paths) in map order.
func (m *PoolMap) Domains() []string { return slices.Clone(m.topo.domains) }

// Shape summarises the map for GenerateOID: targets not excluded, and the fault domains
// holding at least one of them.
func (m *PoolMap) Shape(rdFac int) PoolShape {
	s := PoolShape{RdFac: rdFac}
	doms := map[string]bool{}
	for _, t := range m.targets {
		if t.State != TargetOut {
			s.Targets++
			doms[t.Domain] = true
		}
	}
	s.Domains = len(doms)
	return s
}

// WithTargetState returns a copy of the map, one version later, in which target index
// of rank (or all its targets if index < 0) has state s.
func (m *PoolMap) WithTargetState(rank uint32, index int, s TargetState) (*PoolMap, error) {
	f, ok := m.topo.first[rank]
	if !ok {
		return nil, daoserr.Newf(daoserr.Nonexist, "rank %d is not in pool map version %d", rank, m.version)
	}
	n := m.topo.nodes[m.topo.nodes[m.topo.tnode[f]].parent]
	if index >= len(n.children) {
		return nil, daoserr.Newf(daoserr.Nonexist, "rank %d has no target %d (it has %d)", rank, index, len(n.children))
	}
	c := &PoolMap{version: m.version + 1, topo: m.topo, targets: slices.Clone(m.targets)}
	for i := range n.children {
		if index < 0 || i == index {
			tg := &c.targets[f+i]
			switch {
			case s == TargetUp:
				tg.Fseq = 0
			case s == TargetIntegrating:
				// kept: while it integrates, its shards' data is where that
				// failure remapped them (see Previous)
			case tg.State.Placed():
				tg.Fseq = c.version // it fails now; DOWN -> DOWNOUT keeps when it failed
			case tg.State == TargetDrain && s == TargetOut:
				tg.Fseq |= FseqDrained // drained: nothing was lost
			}
			tg.State = s
		}
	}
	c.computeLevels()
	return c, nil
}

// Extend returns a new map, one version later, with ranks added. Their Added field is
// set to the new version, so they come after the existing ranks and existing objects
// move only where the new ranks take them.
func (m *PoolMap) Extend(ranks ...RankSpec) (*PoolMap, error) {
	v := m.version + 1
	specs := m.Ranks()
	for _, r := range ranks {
		r.Added = v
		specs = append(specs, r)
	}
	nm, err := NewPoolMap(v, specs)
	if err != nil {
		return nil, err
	}
	// Keep the per-target states of the existing ranks.
	for _, t := range m.targets {
		if x, ok := nm.FindTarget(t.Rank, int(t.Index)); ok {
			nm.targets[x.ID].State, nm.targets[x.ID].Fseq = t.State, t.Fseq
		}
	}
	nm.computeLevels()
	return nm, nil
}

// FailedDomains counts the fault domains (the last level of the fault paths) with a
// target DOWN or DOWNOUT that failed after map version since: the failures a
// container whose health an administrator last accepted at version since has
// suffered. More than its rd_fac, and its data may be lost (DAOS: UNCLEAN).
func (m *PoolMap) FailedDomains(since uint32) int {
	doms := map[string]bool{}
	for _, t := range m.targets {
		if (t.State == TargetDown || t.State == TargetOut) && t.Fseq&FseqDrained == 0 && t.Fseq > since {
			doms[t.Domain] = true
		}
	}
	return len(doms)
}

// Previous is the map as it was before the targets now integrating (UP) came in:
// reintegrating ones are DOWNOUT again (from the failure their Fseq records), and
// ranks added by extension (every target UP, no Fseq) are not there. Layouts in it
// say where a shard's data is until the integrating target has it (Shard.Prev).
// A map with no target integrating is its own previous map.
func (m *PoolMap) Previous() (*PoolMap, error) {
	m.prevOnce.Do(func() {
		any := false
		for _, t := range m.targets {
			any = any || t.State == TargetIntegrating
		}
		if !any {
			m.prev = m
			return
		}
		var specs []RankSpec
		for _, r := range m.Ranks() {
			added := true
			for i, st := range r.TargetStates {
				if st != TargetIntegrating || r.TargetFseq[i] != 0 {
					added = false
				}
				if st == TargetIntegrating {
					r.TargetStates[i] = TargetOut
					if r.TargetFseq[i] == 0 {
						r.TargetFseq[i] = m.version
					}
				}
			}
			if !added {
				specs = append(specs, r)
			}
		}
		m.prev, m.prevErr = NewPoolMap(m.version, specs)
	})
	return m.prev, m.prevErr
}
