// Package mgmt is the management service (MS): the system map (ranks, their
// addresses, fault domains and states) and the pool records, replicated with
// Raft (hashicorp/raft, raft-boltdb) on the servers named in mgmt_svc_replicas,
// as DAOS's control plane does.
//
// Every change is a command in the Raft log, applied in the same order by every
// replica's state machine (this file); reads are served from the local copy
// (after a barrier on the leader when they must see every acknowledged write).
package mgmt

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/godaos/godaos/internal/daoserr"
)

// Member states, as dmg system query shows them.
const (
	MemberJoined   = "joined"
	MemberStopped  = "stopped"
	MemberExcluded = "excluded"
)

// Member is one rank of the system map.
type Member struct {
	Rank        uint32 `json:"rank"`
	UUID        string `json:"uuid"` // the engine's identity, kept across restarts
	ControlAddr string `json:"control_addr"`
	FabricAddr  string `json:"fabric_addr"`
	FaultDomain string `json:"fault_domain"`
	State       string `json:"state"`
	Incarnation uint64 `json:"incarnation"` // bumped each time the rank joins again
	Targets     uint32 `json:"targets"`
}

// Pool states.
const (
	PoolCreating   = "creating"
	PoolReady      = "ready"
	PoolDestroying = "destroying"
)

// Pool is the management service's record of a pool.
type Pool struct {
	UUID       string   `json:"uuid"`
	Label      string   `json:"label"`
	State      string   `json:"state"`
	Ranks      []uint32 `json:"ranks"`
	TgtScm     uint64   `json:"tgt_scm"`  // SCM bytes on each target
	TgtNvme    uint64   `json:"tgt_nvme"` // NVMe bytes on each target
	MapVersion uint32   `json:"map_version"`
	// Map is the pool map: its ranks and their targets' states, at MapVersion.
	Map   []PoolRank        `json:"map,omitempty"`
	Props map[string]string `json:"props,omitempty"`
	ACL   []string          `json:"acl,omitempty"`
	Owner string            `json:"owner"`
	Group string            `json:"group"`
	Conts map[string]*Cont  `json:"conts,omitempty"` // by UUID
}

// Cont is the management service's record of a container.
type Cont struct {
	UUID  string            `json:"uuid"`
	Label string            `json:"label"`
	Type  string            `json:"type"`
	Owner string            `json:"owner"`
	Group string            `json:"group"`
	Props map[string]string `json:"props,omitempty"`
	ACL   []string          `json:"acl,omitempty"`
	// NextOID is the next object ID the container hands out (AllocOIDs).
	NextOID uint64 `json:"next_oid,omitempty"`
	// Attrs are the users' attributes (daos cont set-attr).
	Attrs map[string][]byte `json:"attrs,omitempty"`
	// Snapshots are the container's snapshots, oldest first.
	Snapshots []Snapshot `json:"snapshots,omitempty"`
}

// A Snapshot keeps a container's state at an epoch readable: aggregation
// keeps what it reads.
type Snapshot struct {
	Epoch   uint64 `json:"epoch"`
	Name    string `json:"name,omitempty"`
	Created int64  `json:"created"` // Unix seconds
}

// MaxSnapshots bounds a container's snapshots (each one keeps history that
// aggregation would otherwise merge).
const MaxSnapshots = 1024

// Limits on user attributes: the management service keeps metadata, not data.
const (
	MaxAttrs     = 1024
	MaxAttrName  = 255
	MaxAttrValue = 64 << 10
)

// FirstOID is the first object ID a container allocates: the ones below are
// for well-known objects whose IDs are fixed (DFS: superblock 0, root 1).
const FirstOID = 1024

// MaxOIDBatch bounds one allocation.
const MaxOIDBatch = 1 << 30

func (c *Cont) clone() *Cont {
	d := *c
	d.Props, d.ACL, d.Snapshots = maps.Clone(c.Props), slices.Clone(c.ACL), slices.Clone(c.Snapshots)
	if c.Attrs != nil {
		d.Attrs = make(map[string][]byte, len(c.Attrs))
		for k, v := range c.Attrs {
			d.Attrs[k] = slices.Clone(v)
		}
	}
	return &d
}

// clone copies a pool record deeply: readers get their own slices and maps,
// which the state machine may change after they return.
func (p *Pool) clone() Pool {
	q := *p
	q.Ranks, q.ACL, q.Props = slices.Clone(p.Ranks), slices.Clone(p.ACL), maps.Clone(p.Props)
	q.Map = p.cloneMap()
	if p.Conts != nil {
		q.Conts = make(map[string]*Cont, len(p.Conts))
		for id, c := range p.Conts {
			q.Conts[id] = c.clone()
		}
	}
	return q
}

// FindCont looks a container of p up by UUID or label.
func (p *Pool) FindCont(id string) (Cont, error) {
	if c := p.Conts[id]; c != nil {
		return *c.clone(), nil
	}
	for _, c := range p.Conts {
		if c.Label == id {
			return *c.clone(), nil
		}
	}
	return Cont{}, daoserr.Newf(daoserr.Nonexist, "pool %s has no container with label or UUID %q", p.Label, id).
		WithResolution("list the pool's containers with 'daos cont list %s'", p.Label)
}

// ContList is p's containers sorted by label.
func (p *Pool) ContList() []Cont {
	out := make([]Cont, 0, len(p.Conts))
	for _, c := range p.Conts {
		out = append(out, *c.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Label+out[i].UUID < out[j].Label+out[j].UUID })
	return out
}

// db is the replicated state. Only the FSM mutates it, in log order.
type db struct {
	mu       sync.RWMutex
	members  map[uint32]*Member
	nextRank uint32
	mapVer   uint32 // system map version: bumped on every membership change
	pools    map[string]*Pool
}

func newDB() *db { return &db{members: map[uint32]*Member{}, pools: map[string]*Pool{}} }

// command is one Raft log entry.
type command struct {
	Op      string            `json:"op"`
	Member  *Member           `json:"member,omitempty"`
	Pool    *Pool             `json:"pool,omitempty"`
	Rank    uint32            `json:"rank,omitempty"`
	UUID    string            `json:"uuid,omitempty"`
	State   string            `json:"state,omitempty"`
	ACL     []string          `json:"acl,omitempty"`
	Props   map[string]string `json:"props,omitempty"`
	Cont    *Cont             `json:"cont,omitempty"`
	Count   uint64            `json:"count,omitempty"`
	Names   []string          `json:"names,omitempty"`
	PoolMap []PoolRank        `json:"pool_map,omitempty"`
}

const (
	opJoin        = "join"
	opMemberState = "member-state"
	opPoolAdd     = "pool-add"
	opPoolState   = "pool-state"
	opPoolRemove  = "pool-remove"
	opPoolACL     = "pool-acl"
	opPoolProps   = "pool-props"
	opContAdd     = "cont-add"
	opContRemove  = "cont-remove"
	opContOwner   = "cont-owner"
	opContOIDs    = "cont-oids"
	opContACL     = "cont-acl"
	opContProps   = "cont-props"
	opContAttrs   = "cont-attrs"
	opSnapAdd     = "snap-add"
	opSnapRemove  = "snap-remove"
	opPoolMap     = "pool-map"
)

// result is what applying a command returns to the proposer. Errors are data:
// every replica computes the same one.
type result struct {
	Member Member
	OID    uint64 // the first of the OIDs allocated
	Err    error
}

// apply performs one command.
func (d *db) apply(c *command) result {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch c.Op {
	case opJoin:
		return d.join(*c.Member)
	case opMemberState:
		m := d.members[c.Rank]
		if m == nil {
			return result{Err: daoserr.Newf(daoserr.Nonexist, "rank %d is not a member of the system", c.Rank)}
		}
		m.State = c.State
		d.mapVer++
		return result{Member: *m}
	case opPoolAdd:
		p := *c.Pool
		if _, dup := d.pools[p.UUID]; dup {
			return result{Err: daoserr.Newf(daoserr.Exist, "pool %s already exists", p.UUID)}
		}
		for _, q := range d.pools {
			if p.Label != "" && q.Label == p.Label {
				return result{Err: daoserr.Newf(daoserr.Exist, "a pool labeled %q already exists (%s)", p.Label, q.UUID).
					WithResolution("choose another label, or destroy the existing pool")}
			}
		}
		p.Ranks = slices.Clone(p.Ranks)
		p.Map = p.cloneMap()
		d.fillMap(&p)
		d.pools[p.UUID] = &p
		return result{}
	case opPoolMap:
		return d.setPoolMap(c.UUID, uint32(c.Count), c.PoolMap)
	case opPoolState:
		p := d.pools[c.UUID]
		if p == nil {
			return result{Err: daoserr.Newf(daoserr.Nonexist, "pool %s does not exist", c.UUID)}
		}
		p.State = c.State
		return result{}
	case opPoolACL:
		p := d.pools[c.UUID]
		if p == nil {
			return result{Err: daoserr.Newf(daoserr.Nonexist, "pool %s does not exist", c.UUID)}
		}
		p.ACL = slices.Clone(c.ACL)
		return result{}
	case opPoolProps:
		p := d.pools[c.UUID]
		if p == nil {
			return result{Err: daoserr.Newf(daoserr.Nonexist, "pool %s does not exist", c.UUID)}
		}
		if p.Props == nil {
			p.Props = map[string]string{}
		}
		for k, v := range c.Props {
			p.Props[k] = v
		}
		return result{}
	case opContAdd, opContRemove, opContOwner, opContOIDs, opContACL, opContProps, opContAttrs, opSnapAdd, opSnapRemove:
		p := d.pools[c.UUID]
		if p == nil {
			return result{Err: daoserr.Newf(daoserr.Nonexist, "pool %s does not exist", c.UUID)}
		}
		return p.applyCont(c.Op, c.Cont, c.Count, c.Names)
	case opPoolRemove:
		if d.pools[c.UUID] == nil {
			return result{Err: daoserr.Newf(daoserr.Nonexist, "pool %s does not exist", c.UUID)}
		}
		delete(d.pools, c.UUID)
		return result{}
	}
	return result{Err: daoserr.Newf(daoserr.Proto, "unknown management command %q", c.Op)}
}

// applyCont adds, removes or re-owns one of p's containers.
func (p *Pool) applyCont(op string, c *Cont, count uint64, names []string) result {
	old := p.Conts[c.UUID]
	switch op {
	case opContAdd:
		if old != nil {
			return result{Err: daoserr.Newf(daoserr.Exist, "container %s already exists", c.UUID)}
		}
		for _, o := range p.Conts {
			if c.Label != "" && o.Label == c.Label {
				return result{Err: daoserr.Newf(daoserr.Exist, "pool %s already has a container labeled %q (%s)", p.Label, c.Label, o.UUID).
					WithResolution("choose another label, or destroy the existing container")}
			}
		}
		if p.Conts == nil {
			p.Conts = map[string]*Cont{}
		}
		p.Conts[c.UUID] = c.clone()
		return result{}
	}
	if old == nil {
		return result{Err: daoserr.Newf(daoserr.Nonexist, "container %s does not exist in pool %s", c.UUID, p.Label)}
	}
	switch op {
	case opContRemove:
		delete(p.Conts, c.UUID)
		return result{}
	case opContOIDs:
		if count == 0 || count > MaxOIDBatch {
			return result{Err: daoserr.Newf(daoserr.Inval, "allocate %d OIDs: ask for 1 to %d", count, MaxOIDBatch)}
		}
		first := max(old.NextOID, FirstOID)
		if first+count < first || first+count > 1<<63 {
			return result{Err: daoserr.Newf(daoserr.NoSpace, "container %s has used up its object IDs", old.Label)}
		}
		old.NextOID = first + count
		return result{OID: first}
	case opContACL:
		old.ACL = slices.Clone(c.ACL)
		return result{}
	case opContAttrs:
		return old.changeAttrs(c.Attrs, names)
	case opSnapAdd:
		return old.addSnapshot(c.Snapshots[0])
	case opSnapRemove:
		// the snapshots at the epochs given (c.Snapshots), or every one
		// newer than count (a rollback to count)
		old.Snapshots = slices.DeleteFunc(old.Snapshots, func(s Snapshot) bool {
			if count > 0 {
				return s.Epoch > count
			}
			return slices.ContainsFunc(c.Snapshots, func(d Snapshot) bool { return d.Epoch == s.Epoch })
		})
		return result{}
	case opContProps:
		if l, ok := c.Props["label"]; ok && l != old.Label {
			for _, o := range p.Conts {
				if o.Label == l {
					return result{Err: daoserr.Newf(daoserr.Exist, "pool %s already has a container labeled %q", p.Label, l)}
				}
			}
			old.Label = l
		}
		if old.Props == nil {
			old.Props = map[string]string{}
		}
		for k, v := range c.Props {
			if k != "label" {
				old.Props[k] = v
			}
		}
		return result{}
	}
	if c.Owner != "" {
		old.Owner = c.Owner
	}
	if c.Group != "" {
		old.Group = c.Group
	}
	return result{}
}

// changeAttrs sets attrs and deletes names, all or nothing.
func (c *Cont) changeAttrs(set map[string][]byte, del []string) result {
	next := maps.Clone(c.Attrs)
	if next == nil {
		next = map[string][]byte{}
	}
	for _, n := range del {
		if _, ok := next[n]; !ok {
			return result{Err: daoserr.Newf(daoserr.Nonexist, "container %s has no attribute %q", c.Label, n)}
		}
		delete(next, n)
	}
	for k, v := range set {
		if k == "" || len(k) > MaxAttrName || len(v) > MaxAttrValue {
			return result{Err: daoserr.Newf(daoserr.Inval, "attribute %.40q: names are 1 to %d bytes, values up to %d", k, MaxAttrName, MaxAttrValue)}
		}
		next[k] = slices.Clone(v)
	}
	if len(next) > MaxAttrs {
		return result{Err: daoserr.Newf(daoserr.NoSpace, "container %s would have %d attributes; the limit is %d", c.Label, len(next), MaxAttrs)}
	}
	c.Attrs = next
	return result{}
}

// join admits a member: a UUID seen before gets its rank back (a restart), a new
// one the next free rank.
func (d *db) join(m Member) result {
	if m.UUID == "" {
		return result{Err: daoserr.New(daoserr.Inval, "join without an engine UUID")}
	}
	for _, old := range d.members {
		if old.UUID != m.UUID {
			continue
		}
		old.ControlAddr, old.FabricAddr, old.FaultDomain, old.Targets = m.ControlAddr, m.FabricAddr, m.FaultDomain, m.Targets
		old.State = MemberJoined
		old.Incarnation++
		d.mapVer++
		return result{Member: *old}
	}
	for _, old := range d.members {
		if old.FabricAddr == m.FabricAddr && old.State == MemberJoined {
			return result{Err: daoserr.Newf(daoserr.Exist, "fabric address %s is already rank %d's", m.FabricAddr, old.Rank).
				WithResolution("give each engine its own fabric_iface_port, or stop rank %d first", old.Rank)}
		}
	}
	m.Rank = d.nextRank
	d.nextRank++
	m.State = MemberJoined
	m.Incarnation = 1
	d.members[m.Rank] = &m
	d.mapVer++
	return result{Member: m}
}

// ---- reads ----

func (d *db) memberList() ([]Member, uint32) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]Member, 0, len(d.members))
	for _, m := range d.members {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rank < out[j].Rank })
	return out, d.mapVer
}

func (d *db) poolList() []Pool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]Pool, 0, len(d.pools))
	for _, p := range d.pools {
		out = append(out, p.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Label+out[i].UUID < out[j].Label+out[j].UUID })
	return out
}

// findPool looks a pool up by UUID or label.
func (d *db) findPool(id string) (Pool, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if p := d.pools[id]; p != nil {
		return p.clone(), nil
	}
	for _, p := range d.pools {
		if p.Label == id {
			return p.clone(), nil
		}
	}
	return Pool{}, daoserr.Newf(daoserr.Nonexist, "no pool with label or UUID %q", id).WithResolution("list pools with 'dmg pool list'")
}

// ---- raft.FSM ----

type fsm struct{ db *db }

func (f *fsm) Apply(l *raft.Log) any {
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return result{Err: daoserr.Wrap(daoserr.Proto, err, "management log entry %d", l.Index)}
	}
	return f.db.apply(&c)
}

// snapshotData is the whole database, as snapshots store it.
type snapshotData struct {
	Members  []Member `json:"members"`
	NextRank uint32   `json:"next_rank"`
	MapVer   uint32   `json:"map_version"`
	Pools    []Pool   `json:"pools"`
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	members, ver := f.db.memberList()
	f.db.mu.RLock()
	next := f.db.nextRank
	f.db.mu.RUnlock()
	return &snapshot{snapshotData{Members: members, NextRank: next, MapVer: ver, Pools: f.db.poolList()}}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s snapshotData
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return fmt.Errorf("management service snapshot: %w", err)
	}
	d := newDB()
	for i := range s.Members {
		m := s.Members[i]
		d.members[m.Rank] = &m
	}
	for i := range s.Pools {
		p := s.Pools[i]
		d.fillMap(&p)
		d.pools[p.UUID] = &p
	}
	d.nextRank, d.mapVer = s.NextRank, s.MapVer
	f.db.mu.Lock()
	f.db.members, f.db.pools, f.db.nextRank, f.db.mapVer = d.members, d.pools, d.nextRank, d.mapVer
	f.db.mu.Unlock()
	return nil
}

type snapshot struct{ data snapshotData }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.data); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

func (c *Cont) addSnapshot(s Snapshot) result {
	if len(c.Snapshots) >= MaxSnapshots {
		return result{Err: daoserr.Newf(daoserr.NoSpace, "container %s has %d snapshots, the most it may have", c.Label, MaxSnapshots).
			WithResolution("destroy snapshots no longer needed: daos cont destroy-snap")}
	}
	for _, o := range c.Snapshots {
		if s.Name != "" && o.Name == s.Name {
			return result{Err: daoserr.Newf(daoserr.Exist, "container %s already has a snapshot named %q (epoch %d)", c.Label, s.Name, o.Epoch).
				WithResolution("choose another name")}
		}
		if o.Epoch == s.Epoch {
			return result{}
		}
	}
	c.Snapshots = append(c.Snapshots, s)
	slices.SortFunc(c.Snapshots, func(a, b Snapshot) int { return cmp.Compare(a.Epoch, b.Epoch) })
	return result{}
}
