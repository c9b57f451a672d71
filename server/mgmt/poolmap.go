package mgmt

import (
	"slices"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
)

// PoolRank is one rank of a pool's map: what placement needs of it, frozen
// when it joined the pool (a server's fault_path or target count changing
// later must not move the pool's data), and its targets' states.
type PoolRank struct {
	Rank        uint32                  `json:"rank"`
	FaultDomain string                  `json:"fault_domain"`
	Added       uint32                  `json:"added,omitempty"` // map version it joined the pool in (extend)
	States      []placement.TargetState `json:"states"`          // one per target
	Fseq        []uint32                `json:"fseq,omitempty"`  // per target: the map version it failed in
}

// PlacementMap builds the placement map of p's map.
func (p *Pool) PlacementMap() (*placement.PoolMap, error) {
	specs := make([]placement.RankSpec, 0, len(p.Map))
	for _, r := range p.Map {
		specs = append(specs, placement.RankSpec{Rank: r.Rank, FaultDomain: r.FaultDomain, Targets: len(r.States),
			TargetStates: r.States, TargetFseq: r.Fseq, Added: r.Added})
	}
	return placement.NewPoolMap(p.MapVersion, specs)
}

// MapFrom is the inverse of PlacementMap: p's map records of pm.
func MapFrom(pm *placement.PoolMap) []PoolRank {
	var out []PoolRank
	for _, r := range pm.Ranks() {
		out = append(out, PoolRank{Rank: r.Rank, FaultDomain: r.FaultDomain, Added: r.Added, States: r.TargetStates, Fseq: r.TargetFseq})
	}
	slices.SortFunc(out, func(a, b PoolRank) int { return int(a.Rank) - int(b.Rank) })
	return out
}

func (p *Pool) cloneMap() []PoolRank {
	out := slices.Clone(p.Map)
	for i := range out {
		out[i].States, out[i].Fseq = slices.Clone(out[i].States), slices.Clone(out[i].Fseq)
	}
	return out
}

// fillMap gives a pool recorded before pool maps were (only Ranks) a map of
// its ranks as they are now, all UPIN, at its recorded version.
func (d *db) fillMap(p *Pool) {
	if len(p.Map) > 0 || len(p.Ranks) == 0 {
		return
	}
	for _, r := range p.Ranks {
		pr := PoolRank{Rank: r}
		if m := d.members[r]; m != nil {
			pr.FaultDomain = m.FaultDomain
			pr.States = make([]placement.TargetState, m.Targets)
		}
		p.Map = append(p.Map, pr)
	}
}

// setPoolMap replaces p's map if it is still at version want (the proposer
// computed the new one from that version: a change made meanwhile is not
// lost but refused, and the proposer recomputes), one version later.
func (d *db) setPoolMap(uuid string, want uint32, m []PoolRank) result {
	p := d.pools[uuid]
	if p == nil {
		return result{Err: daoserr.Newf(daoserr.Nonexist, "pool %s does not exist", uuid)}
	}
	if p.MapVersion != want {
		return result{Err: daoserr.Newf(daoserr.Again, "pool %s map is at version %d, the change was made to version %d", p.Label, p.MapVersion, want).
			WithResolution("retry: the map changed meanwhile")}
	}
	p.Map = m
	p.Ranks = p.Ranks[:0]
	for _, r := range m {
		p.Ranks = append(p.Ranks, r.Rank)
	}
	p.MapVersion++
	return result{}
}

// SetPoolMap records pool uuid's new map, made from version from (it
// becomes from+1); DER_AGAIN when the map is no longer at from.
func (s *Service) SetPoolMap(uuid string, from uint32, m []PoolRank) error {
	_, err := s.propose(&command{Op: opPoolMap, UUID: uuid, Count: uint64(from), PoolMap: m})
	return err
}
