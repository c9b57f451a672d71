package placement

import (
	"encoding/binary"
	"math"

	"github.com/godaos/godaos/internal/daoserr"
)

// Shard is where one shard of an object lives.
type Shard struct {
	Rank   uint32
	Target uint32 // target index within the rank
	ID     uint32 // pool-wide target id
	// Remapped is set when the shard's own target is down, draining or excluded and this
	// is the replacement placement chose for it (where rebuild puts, or has put, its data).
	Remapped bool
	// Rebuilding is set while the shard's target does not hold all of the shard's data
	// yet: it replaces a DOWN or DRAIN target (rebuild pending), or it is UP
	// (integrating). Writes go to it; reads go to a replica that is not rebuilding.
	Rebuilding bool
	// Orig is the pool-wide id of the target the shard was placed on before it was
	// remapped (Remapped only): a draining target, the source of its own data.
	Orig uint32
	// Prev, when HasPrev, is the pool-wide id of a target that holds the shard's data
	// while it is Rebuilding: the draining target it leaves, or where it was before
	// the integrating target it goes to came in (see PoolMap.Previous). Writes go
	// there too, and reads that find no other replica go there, until rebuild is done.
	Prev    uint32
	HasPrev bool
}

// Layout is an object's placement: Groups × GroupSize shards, group by group.
type Layout struct {
	Version   uint32 // the pool map version it was computed from
	GroupSize int
	Groups    int
	Shards    []Shard
}

// Group returns the shards of redundancy group g.
func (l Layout) Group(g int) []Shard { return l.Shards[g*l.GroupSize : (g+1)*l.GroupSize] }

// Jump is Lamping and Veach's jump consistent hash, as DAOS's d_hash_jump: it maps key
// to a bucket in [0, n) such that going from n to n+1 buckets moves only 1/(n+1) of the
// keys, all to the new bucket. The floating-point steps are those of the paper (and of
// gurt/hash.c), so the same key gives the same bucket as DAOS.
func Jump(key uint64, n int) int {
	b, j := int64(-1), int64(0)
	for j < int64(n) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

// DkeySeed is the murmur64 seed DAOS hashes dkeys with (obj_dkey2hash).
const DkeySeed = 5731

// Murmur64 is MurmurHash64A, as DAOS's d_hash_murmur64 (gurt/hash.c).
func Murmur64(data []byte, seed uint32) uint64 {
	const m, r = 0xc6a4a7935bd1e995, 47
	h := uint64(seed) ^ uint64(len(data))*m
	for ; len(data) >= 8; data = data[8:] {
		k := binary.LittleEndian.Uint64(data)
		k *= m
		k ^= k >> r
		k *= m
		h ^= k
		h *= m
	}
	if len(data) > 0 {
		for i := len(data) - 1; i >= 0; i-- {
			h ^= uint64(data[i]) << (8 * i)
		}
		h *= m
	}
	h ^= h >> r
	h *= m
	h ^= h >> r
	return h
}

// DkeyHash is DAOS's obj_dkey2hash: for object types with integer dkeys the dkey's
// value itself (an 8-byte little-endian integer), otherwise murmur64 of its bytes.
func DkeyHash(t OType, dkey []byte) uint64 {
	if t.DkeyUint64() && len(dkey) == 8 {
		return binary.LittleEndian.Uint64(dkey)
	}
	return Murmur64(dkey, DkeySeed)
}

// DkeyGroup is the redundancy group holding a dkey with hash h (see DkeyHash) in an
// object of groups groups: jump(h, groups), as DAOS's obj_dkey2grpidx. All akeys of a
// dkey live in this one group.
func DkeyGroup(h uint64, groups int) int {
	if groups <= 1 {
		return 0
	}
	return Jump(h, groups)
}

// DkeyGroupOf is DkeyGroup(DkeyHash(oid type, dkey), oid groups).
func DkeyGroupOf(oid OID, dkey []byte) int {
	return DkeyGroup(DkeyHash(oid.Type(), dkey), oid.Groups())
}

// mix64 is the murmur3/splitmix finaliser: every input bit affects every output bit, so
// keys derived from consecutive numbers (shard 0, 1, 2; level 0, 1, 2) are independent.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

const golden = 0x9e3779b97f4a7c15

func oidKey(o OID) uint64                { return mix64(o.Lo ^ mix64(o.Hi+golden)) }
func shardKey(obj uint64, s int) uint64  { return mix64(obj + uint64(s+1)*golden) }
func levelKey(sk uint64, l int) uint64   { return mix64(sk ^ uint64(l+1)*0xbf58476d1ce4e5b9) }
func attemptKey(lk uint64, a int) uint64 { return mix64(lk + uint64(a)*golden) }

// remapSalt derives the key a shard on a failed target is re-placed with.
const remapSalt = 0x94d049bb133111eb

const inf = math.MaxInt32

// walker is the per-layout state: what the object and its current group already use.
// It works on flat per-node arrays (see topology.flatten) because choosing a child scans
// all siblings for every shard.
type walker struct {
	t       *topology
	free    []int32 // per node: targets below not used by the object (and usable)
	grpCnt  []int32 // per node: shards of the current group below
	grpMin  []int32 // per domain node: fewest shards of the group in a non-full leaf domain below; 0 below domains
	touched []int32 // nodes with grpCnt > 0
	elig    []int32
}

func (t *topology) walker() *walker {
	if w, ok := t.scratch.Get().(*walker); ok {
		return w
	}
	n := len(t.nodes)
	w := &walker{t: t, free: make([]int32, n), grpCnt: make([]int32, n), grpMin: make([]int32, n)}
	copy(w.free, t.ntargets)
	return w
}

func (t *topology) release(w *walker) {
	copy(w.free, t.ntargets)
	clear(w.grpCnt)
	clear(w.grpMin)
	w.touched = w.touched[:0]
	t.scratch.Put(w)
}

func (w *walker) full(n int32) bool { return w.free[n] <= 0 }

// score orders the children of a node for a shard of the current group; lower is better,
// full children are worst. Above and at the fault-domain level the first criterion is
// the fewest shards of the group in any leaf domain reachable below (so a group never
// doubles up in a domain while another has none), the second the group's shards in the
// subtree (spreading over racks, ranks of a node, ...). Below the domains grpMin is 0.
func (w *walker) score(n int32) int64 {
	if w.free[n] <= 0 {
		return math.MaxInt64
	}
	return int64(w.grpMin[n])<<32 | int64(w.grpCnt[n])
}

// choose picks a child of n. The first try is the plain jump hash over all children,
// which is what makes placement consistent. If that child is full or worse than the best
// (DAOS re-keys and retries in that case), the choice is a jump over the list of best
// children instead: as uniform as retrying, and bounded in time when few are left
// (retries cost an object spanning the whole pool most of its layout time). The list is
// never empty because n itself is not full.
func (w *walker) choose(n int32, key uint64) int32 {
	ch := w.t.children[n]
	if len(ch) == 1 {
		return ch[0]
	}
	best := int64(math.MaxInt64)
	w.elig = w.elig[:0]
	for _, c := range ch {
		switch s := w.score(c); {
		case s < best:
			best = s
			w.elig = append(w.elig[:0], c)
		case s == best:
			w.elig = append(w.elig, c)
		}
	}
	if c := ch[Jump(key, len(ch))]; w.score(c) == best {
		return c
	}
	return w.elig[Jump(attemptKey(key, 1), len(w.elig))]
}

// place walks from the root to a target for a shard with key sk.
func (w *walker) place(sk uint64) int32 {
	n := int32(0)
	for l := 0; w.t.kind[n] != kindTarget; l++ {
		n = w.choose(n, levelKey(sk, l))
	}
	return n
}

// use records target node tn as used by the object and/or the current group, and
// updates grpMin on its path.
func (w *walker) use(tn int32, obj, grp bool) {
	for p := tn; p >= 0; p = w.t.parent[p] {
		if obj {
			w.free[p]--
		}
		if grp {
			if w.grpCnt[p] == 0 {
				w.touched = append(w.touched, p)
			}
			w.grpCnt[p]++
		}
	}
	for p := tn; p >= 0; p = w.t.parent[p] {
		w.updateMin(p)
	}
}

func (w *walker) updateMin(p int32) {
	switch k := w.t.kind[p]; {
	case k != kindDomain && k != kindRoot:
	case w.full(p):
		w.grpMin[p] = inf
	case w.t.nodes[p].leafDom:
		w.grpMin[p] = w.grpCnt[p]
	default:
		m := int32(inf)
		for _, c := range w.t.children[p] {
			m = min(m, w.grpMin[c])
		}
		w.grpMin[p] = m
	}
}

// recomputeMin refreshes grpMin everywhere, after changes not confined to one path.
func (w *walker) recomputeMin(p int32) {
	for _, c := range w.t.children[p] {
		if w.t.kind[c] == kindDomain {
			w.recomputeMin(c)
		}
	}
	w.updateMin(p)
}

// newGroup forgets the current group. Only nodes the group touched change: elsewhere
// grpCnt is already 0 and grpMin already right.
func (w *walker) newGroup() {
	for _, p := range w.touched {
		w.grpCnt[p] = 0
	}
	for _, p := range w.touched {
		if k := w.t.kind[p]; k == kindDomain || k == kindRoot {
			if w.full(p) {
				w.grpMin[p] = inf
			} else {
				w.grpMin[p] = 0
			}
		}
	}
	w.touched = w.touched[:0]
}

// Layout computes the placement of oid's shards in the map (DAOS's jump map,
// pl_obj_place). It is a pure function of the map and the OID, so clients and servers
// agree on it without talking.
//
// Every shard walks the fault-domain tree from the root, choosing a child at each level
// by jump consistent hashing of a key derived from the OID, the shard number and the
// level. A group's shards go to distinct fault domains while the group has unused ones
// (and spread evenly when it has not); an object's shards go to distinct targets while
// it has unused ones. The walk ignores target states, so a failure changes only the
// shards on the failed target: each is then re-placed on a working target not used by
// the object, preferring a fault domain its group does not use (DAOS's remapping of
// failed shards), and flagged Remapped.
func (m *PoolMap) Layout(oid OID) (Layout, error) {
	if !oid.Redun().Valid() || oid.Groups() == 0 || oid.Groups() == MaxGroups {
		return Layout{}, daoserr.Newf(daoserr.Inval, "object %s has no valid class (%s, %d groups)", oid, oid.Redun(), oid.Groups()).
			WithResolution("generate the OID with GenerateOID, which resolves GX to a group count")
	}
	t := m.topo
	gs, gn := oid.GroupSize(), oid.Groups()
	l := Layout{Version: m.version, GroupSize: gs, Groups: gn, Shards: make([]Shard, gs*gn)}
	w := t.walker()
	defer t.release(w)

	ok := func(tn int32) bool { return m.targets[t.nodes[tn].target].State.Placed() }
	obj := oidKey(oid)
	tns := make([]int32, len(l.Shards))
	failed := false
	for s := range tns {
		if s%gs == 0 {
			w.newGroup()
		}
		if w.full(0) || w.grpMin[0] > 0 && len(t.domains) > s%gs {
			// More shards than targets, or the targets the object has not used
			// are all in fault domains its current group already uses (a group
			// must not lose two shards to one domain's failure, while two
			// groups may share a target): start over on the object's targets.
			copy(w.free, t.ntargets)
			w.recomputeMin(0)
		}
		tns[s] = w.place(shardKey(obj, s))
		w.use(tns[s], true, true)
		failed = failed || !ok(tns[s])
	}

	if failed {
		// Failures are remapped in the order they happened (DAOS's fseq): the
		// shards of the targets that failed first are re-placed as if no
		// other target had failed since, so a later failure moves only the
		// shards it hits (a replacement rebuilt earlier stays where it is).
		for _, f := range m.fseqLevels() {
			okAt := func(tn int32) bool {
				tg := m.targets[t.nodes[tn].target]
				return tg.State.Placed() || tg.failSeq() > f
			}
			if err := m.remap(w, oid, tns, okAt, l.Shards); err != nil {
				return Layout{}, err
			}
		}
	}
	for s, tn := range tns {
		tg := m.targets[t.nodes[tn].target]
		sh := &l.Shards[s]
		*sh = Shard{Rank: tg.Rank, Target: tg.Index, ID: tg.ID, Remapped: sh.Remapped,
			Rebuilding: sh.Rebuilding || tg.State == TargetIntegrating, Orig: sh.Orig}
		if !sh.Remapped {
			sh.Orig = 0
		}
		if sh.Remapped && sh.Rebuilding && m.targets[sh.Orig].State == TargetDrain {
			sh.Prev, sh.HasPrev = sh.Orig, true
		}
	}
	if err := m.previousShards(oid, l); err != nil {
		return Layout{}, err
	}
	return l, nil
}

// remap replaces the shards of tns that are on targets failed by the level ok
// describes, in shard order, and flags them in out.
func (m *PoolMap) remap(w *walker, oid OID, tns []int32, ok func(int32) bool, out []Shard) error {
	t := m.topo
	gs := oid.GroupSize()
	obj := oidKey(oid)
	// used marks the targets a replacement for shard s may not take: the
	// failed ones, and the other shards' of its group (a group never shares a
	// target) or, with all, of the whole object (what placement prefers).
	used := func(s int, all bool) {
		copy(w.free, t.ntargets)
		for id := range m.targets {
			if !ok(t.tnode[id]) {
				w.use(t.tnode[id], true, false)
			}
		}
		for i, tn := range tns {
			if i != s && ok(tn) && (all || i/gs == s/gs) {
				w.use(tn, true, false)
			}
		}
		w.recomputeMin(0)
	}
	for s, tn := range tns {
		if ok(tn) {
			continue
		}
		from := m.targets[t.nodes[tn].target]
		out[s].Rebuilding = from.State == TargetDown || from.State == TargetDrain
		out[s].Orig = from.ID
		w.newGroup()
		g := s / gs
		for i := g * gs; i < (g+1)*gs; i++ {
			if i != s && ok(tns[i]) {
				w.use(tns[i], false, true)
			}
		}
		used(s, true)
		if w.full(0) {
			// Every working target holds a shard of the object already: share
			// one, but never one of the group's own.
			used(s, false)
			if w.full(0) {
				return daoserr.Newf(daoserr.Unreach, "object %s: no working target left for shard %d in pool map version %d", oid, s, m.version)
			}
		}
		tns[s] = w.place(mix64(shardKey(obj, s) ^ remapSalt))
		w.use(tns[s], true, true)
		out[s].Remapped = true
	}
	return nil
}

// previousShards marks the shards that placement moves because targets are
// integrating (UP): the shards on those targets, and remapped shards that their
// arrival sends elsewhere (the remap walk sees more targets). Each such shard is
// Rebuilding until the integration is done, and Prev says where its data is: where
// the previous map places it, if it holds the data there.
func (m *PoolMap) previousShards(oid OID, l Layout) error {
	integrating := false
	for _, t := range m.targets {
		if t.State == TargetIntegrating {
			integrating = true
			break
		}
	}
	if !integrating {
		return nil
	}
	prev, err := m.Previous()
	if err != nil || prev == m {
		return err
	}
	pl, err := prev.Layout(oid)
	if err != nil {
		return err
	}
	for i := range l.Shards {
		sh, ps := &l.Shards[i], pl.Shards[i]
		// by rank and index: target ids shift when a rank joins below others
		if (ps.Rank != sh.Rank || ps.Target != sh.Target) && !ps.Rebuilding {
			if t, ok := m.FindTarget(ps.Rank, int(ps.Target)); ok {
				sh.Rebuilding, sh.Prev, sh.HasPrev = true, t.ID, true
			}
		}
	}
	return nil
}

// UnusableShards marks the shards of group grp that must not be used for I/O: one
// on a target out of service, or sharing a target with another shard of its group
// (the remapped one of the two gives way). Placement keeps a group's shards apart
// (see remap), so this is a guard: an erasure-coded group's cell positions in one
// VOS object would mix their index spaces. Clients and engines mark the same.
func UnusableShards(grp []Shard, pm *PoolMap) []bool {
	out := make([]bool, len(grp))
	for i, s := range grp {
		if pm != nil {
			if t, ok := pm.FindTarget(s.Rank, int(s.Target)); !ok || !t.State.Placed() {
				out[i] = true
				continue
			}
		}
		for j, t := range grp[:i] {
			if s.Rank != t.Rank || s.Target != t.Target || out[j] {
				continue
			}
			if t.Remapped && !s.Remapped {
				out[j] = true
			} else {
				out[i] = true
			}
		}
	}
	return out
}
