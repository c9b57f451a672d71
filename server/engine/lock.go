package engine

// POSIX byte-range locks (fcntl F_SETLK, F_SETLKW, F_GETLK) shared by every
// client of a container: see docs/design/locks.md. The lock table of an
// object lives on the target of the first live shard of its group 0; it is
// kept in memory only, and dies with its engine.

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/server/vos"
)

// Lock types (LockReq.type), fcntl's.
const (
	lockRead   uint32 = 1 // F_RDLCK
	lockWrite  uint32 = 2 // F_WRLCK
	lockUnlock uint32 = 3 // F_UNLCK
)

// Lock commands (LockReq.cmd).
const (
	lockCmdSet         uint32 = 1
	lockCmdGet         uint32 = 2
	lockCmdUnlockOwner uint32 = 3
	lockCmdRenew       uint32 = 4
	lockCmdDropClient  uint32 = 5
	lockCmdWait        uint32 = 6
)

// Lock reply status (LockRep.status).
const (
	lockDone    uint32 = 0
	lockWaiting uint32 = 1 // WAIT: the lock was not free within the wait: send it again
)

const (
	lockLeaseDefault = 30 * time.Second
	lockLeaseMin     = 100 * time.Millisecond // tests use short leases
	lockLeaseMax     = 10 * time.Minute
	lockWaitMax      = time.Minute // a parked request answers at the latest after this
	lockClientMax    = 128         // bytes of a client id
	lockTableMax     = 1 << 16     // locks in one table: a client cannot fill the engine's memory
	// lockParkMax bounds the WAIT requests parked on one target: each holds
	// one of the target's RPC service goroutines, of which the RPC server
	// adds at most 256 (rpc.ServerOptions.QueueDepth); past that, every
	// request to the target, the unlocks the waiters wait for included,
	// would queue behind them. More waiters are answered "waiting" at once
	// and come back a little later.
	lockParkMax = 64
	// lockShards: the tables' and the leases' maps are sharded so that
	// requests on different objects share no mutex.
	lockShards = 64
)

// lockOwner is who holds a lock: the client (one per container handle) and
// the kernel's lock owner within it (a process, or an open file description).
type lockOwner struct {
	client string
	id     uint64
}

// heldLock is a granted lock over the bytes [start, end] (end inclusive;
// math.MaxUint64: to EOF and beyond).
type heldLock struct {
	owner      lockOwner
	typ        uint32
	start, end uint64
}

func (l heldLock) overlaps(start, end uint64) bool { return l.start <= end && start <= l.end }

// lockLess orders a table's locks: by start, then owner. It also decides
// which conflicting lock F_GETLK reports (the first).
func lockLess(a, b heldLock) int {
	switch {
	case a.start != b.start:
		return cmpU64(a.start, b.start)
	case a.owner.client != b.owner.client:
		if a.owner.client < b.owner.client {
			return -1
		}
		return 1
	case a.owner.id != b.owner.id:
		return cmpU64(a.owner.id, b.owner.id)
	}
	return cmpU64(a.end, b.end)
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// lockTable is the locks of one object. It is kept canonical: sorted by
// lockLess, an owner's locks never overlap, and an owner's adjacent locks of
// one type are merged (so a lock is a maximal run of bytes one owner holds
// with one type, as POSIX reports them). Its mutex guards everything.
type lockTable struct {
	mu      sync.Mutex
	locks   []heldLock
	pids    map[lockOwner]uint32 // the pid each owner last locked with (F_GETLK reports it)
	changed chan struct{}        // closed when locks are released or converted (nil: nobody waits)
	waiters int                  // requests parked on changed: the table is not dropped meanwhile
	dead    bool                 // dropped from its shard: look it up again
}

// conflicts are the locks of other owners that conflict with owner taking
// typ over [start, end], in table order.
func (t *lockTable) conflicts(o lockOwner, typ uint32, start, end uint64) []heldLock {
	var out []heldLock
	for _, l := range t.locks {
		if l.start > end {
			break // sorted by start
		}
		if l.owner != o && l.overlaps(start, end) && (typ == lockWrite || l.typ == lockWrite) {
			out = append(out, l)
		}
	}
	return out
}

// set applies owner's lock (or unlock) of [start, end] regardless of other
// owners: the owner's own locks in the range are replaced (split where they
// extend beyond it), and merged with adjacent ones of the same type. It
// reports whether any existing lock was touched (waiters may be able to go).
func (t *lockTable) set(o lockOwner, typ uint32, start, end uint64) bool {
	out := make([]heldLock, 0, len(t.locks)+2)
	var mine []heldLock
	touched := false
	for _, l := range t.locks {
		switch {
		case l.owner != o:
			out = append(out, l)
		case !l.overlaps(start, end):
			mine = append(mine, l)
		default:
			touched = true
			if l.start < start {
				mine = append(mine, heldLock{o, l.typ, l.start, start - 1})
			}
			if l.end > end {
				mine = append(mine, heldLock{o, l.typ, end + 1, l.end})
			}
		}
	}
	if typ != lockUnlock {
		mine = append(mine, heldLock{o, typ, start, end})
	}
	slices.SortFunc(mine, lockLess)
	var merged []heldLock
	for _, l := range mine {
		if n := len(merged); n > 0 && merged[n-1].typ == l.typ && merged[n-1].end != math.MaxUint64 && merged[n-1].end+1 == l.start {
			merged[n-1].end = l.end
			continue
		}
		merged = append(merged, l)
	}
	out = append(out, merged...)
	slices.SortFunc(out, lockLess)
	t.locks = out
	if len(merged) == 0 {
		delete(t.pids, o)
	}
	return touched
}

// unlockOwner drops every lock of owner; it reports whether there was any.
func (t *lockTable) unlockOwner(o lockOwner) bool {
	n := len(t.locks)
	t.locks = slices.DeleteFunc(t.locks, func(l heldLock) bool { return l.owner == o })
	delete(t.pids, o)
	return len(t.locks) != n
}

// dropClients drops every lock of the clients gone says are gone; it
// reports whether there was any.
func (t *lockTable) dropClients(gone func(client string) bool) bool {
	verdict := map[string]bool{}
	isGone := func(c string) bool {
		v, ok := verdict[c]
		if !ok {
			v = gone(c)
			verdict[c] = v
		}
		return v
	}
	n := len(t.locks)
	t.locks = slices.DeleteFunc(t.locks, func(l heldLock) bool { return isGone(l.owner.client) })
	for o := range t.pids {
		if isGone(o.client) {
			delete(t.pids, o)
		}
	}
	return len(t.locks) != n
}

// holds says whether client holds any lock here.
func (t *lockTable) holds(client string) bool {
	for _, l := range t.locks {
		if l.owner.client == client {
			return true
		}
	}
	return false
}

// wake lets the parked requests check again.
func (t *lockTable) wake() {
	if t.changed != nil {
		close(t.changed)
		t.changed = nil
	}
}

// waitChan is what a parked request waits on.
func (t *lockTable) waitChan() chan struct{} {
	if t.changed == nil {
		t.changed = make(chan struct{})
	}
	return t.changed
}

// ---- the engine's lock service ----

// lockKey names an object's lock table.
type lockKey struct {
	pool, cont vos.UUID
	oid        vos.OID
}

// leaseKey names a client's lease on this engine.
type leaseKey struct {
	pool, cont vos.UUID
	client     string
}

type lease struct {
	expires time.Time
	dur     time.Duration
	tables  map[lockKey]struct{} // where the client holds locks
}

type lockShard struct {
	mu     sync.Mutex
	tables map[lockKey]*lockTable
}

type leaseShard struct {
	mu     sync.Mutex
	leases map[leaseKey]*lease
}

// lockService holds an engine's lock tables and its clients' leases.
type lockService struct {
	e      *Engine
	seed   maphash.Seed
	tables [lockShards]lockShard
	leases [lockShards]leaseShard
	waits  waitGraph
	now    func() time.Time // the clock leases are judged by (tests set it)
	parked []atomic.Int32   // WAIT requests parked, by target

	lastSweep  atomic.Int64 // unix nanoseconds of the last sweep of expired leases
	sweepEvery time.Duration
}

func newLockService(e *Engine) *lockService {
	s := &lockService{e: e, seed: maphash.MakeSeed(), now: time.Now, sweepEvery: time.Second, parked: make([]atomic.Int32, 1)}
	if e != nil {
		s.parked = make([]atomic.Int32, len(e.targets))
	}
	for i := range s.tables {
		s.tables[i].tables = map[lockKey]*lockTable{}
		s.leases[i].leases = map[leaseKey]*lease{}
	}
	s.waits.waits = map[lockOwner]map[uint64][]lockOwner{}
	return s
}

func (s *lockService) tableShard(k lockKey) *lockShard {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.Write(k.cont[:])
	fmt.Fprintf(&h, "%x.%x", k.oid.Hi, k.oid.Lo)
	return &s.tables[h.Sum64()%lockShards]
}

func (s *lockService) leaseShard(k leaseKey) *leaseShard {
	return &s.leases[maphash.String(s.seed, k.client)%lockShards]
}

// table returns k's table, locked (made if create, else nil when none).
func (s *lockService) table(k lockKey, create bool) *lockTable {
	sh := s.tableShard(k)
	for {
		sh.mu.Lock()
		t := sh.tables[k]
		if t == nil {
			if !create {
				sh.mu.Unlock()
				return nil
			}
			t = &lockTable{pids: map[lockOwner]uint32{}}
			sh.tables[k] = t
		}
		sh.mu.Unlock()
		t.mu.Lock()
		if !t.dead {
			return t
		}
		t.mu.Unlock() // dropped meanwhile: it is no longer in the map
	}
}

// done unlocks t, dropping it from its shard when it holds nothing and
// nobody waits on it.
func (s *lockService) done(k lockKey, t *lockTable) {
	if len(t.locks) > 0 || t.waiters > 0 {
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	sh := s.tableShard(k)
	sh.mu.Lock()
	t.mu.Lock()
	if len(t.locks) == 0 && t.waiters == 0 && !t.dead && sh.tables[k] == t {
		t.dead = true
		delete(sh.tables, k)
	}
	t.mu.Unlock()
	sh.mu.Unlock()
}

// alive says whether client's lease in (pool, cont) runs.
func (s *lockService) alive(pool, cont vos.UUID, client string, now time.Time) bool {
	lk := leaseKey{pool, cont, client}
	sh := s.leaseShard(lk)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	l := sh.leases[lk]
	return l != nil && now.Before(l.expires)
}

// leaseEnd is when client's lease ends (the zero time: it has none).
func (s *lockService) leaseEnd(pool, cont vos.UUID, client string) time.Time {
	lk := leaseKey{pool, cont, client}
	sh := s.leaseShard(lk)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if l := sh.leases[lk]; l != nil {
		return l.expires
	}
	return time.Time{}
}

// touch starts or extends client's lease. known is false when the client
// had no running lease: whatever it held here is gone (dropped now if the
// lease had expired without being swept yet).
func (s *lockService) touch(lk leaseKey, dur time.Duration) (known bool, tables int) {
	now := s.now()
	sh := s.leaseShard(lk)
	sh.mu.Lock()
	l := sh.leases[lk]
	if l != nil && now.Before(l.expires) {
		l.dur = dur
		l.expires = now.Add(dur)
		n := len(l.tables)
		sh.mu.Unlock()
		return true, n
	}
	if l != nil { // expired, not swept yet: its locks go first
		delete(sh.leases, lk)
		sh.mu.Unlock()
		for k := range l.tables {
			s.dropFrom(k, func(c string) bool { return c == lk.client })
		}
		sh.mu.Lock()
	}
	if cur := sh.leases[lk]; cur != nil { // another request of the client made it meanwhile
		cur.expires = now.Add(dur)
	} else {
		sh.leases[lk] = &lease{expires: now.Add(dur), dur: dur, tables: map[lockKey]struct{}{}}
	}
	sh.mu.Unlock()
	return false, 0
}

// note records whether client holds locks in table k (the caller holds the
// table's lock: table before lease, always).
func (s *lockService) note(lk leaseKey, k lockKey, holds bool) {
	sh := s.leaseShard(lk)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	l := sh.leases[lk]
	if l == nil {
		return
	}
	if holds {
		l.tables[k] = struct{}{}
	} else {
		delete(l.tables, k)
	}
}

// dropFrom drops from table k the locks of the clients gone says are gone.
func (s *lockService) dropFrom(k lockKey, gone func(client string) bool) {
	t := s.table(k, false)
	if t == nil {
		return
	}
	if t.dropClients(gone) {
		t.wake()
	}
	s.done(k, t)
}

// dropClient releases every lock of client on this engine in (pool, cont)
// and ends its lease.
func (s *lockService) dropClient(lk leaseKey) {
	sh := s.leaseShard(lk)
	sh.mu.Lock()
	l := sh.leases[lk]
	delete(sh.leases, lk)
	sh.mu.Unlock()
	if l == nil {
		return
	}
	for k := range l.tables {
		s.dropFrom(k, func(c string) bool { return c == lk.client })
	}
}

// sweep ends the expired leases and drops their locks, at most once per
// sweepEvery (it runs in a request's goroutine: the engine runs no task of
// its own for locks). Expired locks are also dropped by any request that
// meets them (purge), so this is only about memory.
func (s *lockService) sweep() {
	now := s.now()
	last := s.lastSweep.Load()
	if now.UnixNano()-last < int64(s.sweepEvery) || !s.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	type expired struct {
		lk     leaseKey
		tables map[lockKey]struct{}
	}
	var gone []expired
	for i := range s.leases {
		sh := &s.leases[i]
		sh.mu.Lock()
		for lk, l := range sh.leases {
			if !now.Before(l.expires) {
				gone = append(gone, expired{lk, l.tables})
				delete(sh.leases, lk)
			}
		}
		sh.mu.Unlock()
	}
	for _, g := range gone {
		for k := range g.tables {
			s.dropFrom(k, func(c string) bool { return !s.alive(k.pool, k.cont, c, now) })
		}
	}
}

// purge drops from t (locked) the locks of clients whose lease ended.
func (s *lockService) purge(k lockKey, t *lockTable) {
	now := s.now()
	if t.dropClients(func(c string) bool { return !s.alive(k.pool, k.cont, c, now) }) {
		t.wake()
	}
}

// ---- deadlock detection ----

// waitGraph is who waits for whom among the requests parked on this engine
// (whatever their object): an owner about to wait on owners that, through
// the graph, wait on it, would wait forever. Waits on other engines are not
// seen.
type waitGraph struct {
	mu    sync.Mutex
	seq   uint64
	waits map[lockOwner]map[uint64][]lockOwner // waiter -> its parked requests -> their blockers
}

// wait records (or, with blockers nil, ends) request id of o waiting on
// blockers; it fails when that closes a cycle.
func (g *waitGraph) wait(o lockOwner, id uint64, blockers []lockOwner) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if blockers == nil {
		if m := g.waits[o]; m != nil {
			delete(m, id)
			if len(m) == 0 {
				delete(g.waits, o)
			}
		}
		return true
	}
	seen := map[lockOwner]bool{}
	next := slices.Clone(blockers)
	for len(next) > 0 {
		b := next[len(next)-1]
		next = next[:len(next)-1]
		if b == o {
			return false
		}
		if seen[b] {
			continue
		}
		seen[b] = true
		for _, bs := range g.waits[b] {
			next = append(next, bs...)
		}
	}
	m := g.waits[o]
	if m == nil {
		m = map[uint64][]lockOwner{}
		g.waits[o] = m
	}
	m[id] = blockers
	return true
}

func (g *waitGraph) newID() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	return g.seq
}

// ---- requests ----

// lockReq is a validated LockReq.
type lockReq struct {
	cmd        uint32
	pool, cont vos.UUID
	oid        vos.OID
	owner      lockOwner
	pid        uint32
	typ        uint32
	start, end uint64
	wait       time.Duration
	lease      time.Duration
	target     uint32 // the engine target it came to
}

// checkLockReq validates every field of m: a request never reaches a table
// with a field it does not expect.
func checkLockReq(m *enginepb.LockReq) (lockReq, error) {
	r := lockReq{cmd: m.Cmd, owner: lockOwner{m.Client, m.Owner}, pid: m.Pid, typ: m.Type, start: m.Start, end: m.End}
	bad := func(format string, args ...any) (lockReq, error) {
		return r, daoserr.Newf(daoserr.Inval, "lock request: "+format, args...)
	}
	var err error
	if r.pool, err = uuidOf(m.Pool, "pool"); err != nil {
		return r, err
	}
	if r.cont, err = uuidOf(m.Cont, "container"); err != nil {
		return r, err
	}
	if m.Client == "" || len(m.Client) > lockClientMax || !utf8.ValidString(m.Client) {
		return bad("client id of %d bytes (want 1 to %d bytes of UTF-8)", len(m.Client), lockClientMax)
	}
	switch m.LeaseMs {
	case 0:
		r.lease = lockLeaseDefault
	default:
		r.lease = time.Duration(m.LeaseMs) * time.Millisecond
		if r.lease < lockLeaseMin || r.lease > lockLeaseMax {
			return bad("lease of %v (want %v to %v)", r.lease, lockLeaseMin, lockLeaseMax)
		}
	}
	r.wait = min(time.Duration(m.WaitMs)*time.Millisecond, lockWaitMax)
	switch m.Cmd {
	case lockCmdSet, lockCmdGet, lockCmdUnlockOwner, lockCmdWait:
		if m.Oid == nil {
			return bad("no object")
		}
		r.oid = vos.OID{Hi: m.Oid.Hi, Lo: m.Oid.Lo}
	case lockCmdRenew, lockCmdDropClient:
		return r, nil
	default:
		return bad("command %d", m.Cmd)
	}
	switch {
	case m.Cmd == lockCmdUnlockOwner:
		return r, nil
	case m.Type != lockRead && m.Type != lockWrite && (m.Type != lockUnlock || m.Cmd != lockCmdSet):
		return bad("lock type %d", m.Type)
	case m.Start > m.End:
		return bad("range %d-%d ends before it starts", m.Start, m.End)
	case m.WaitMs != 0 && m.Cmd != lockCmdWait:
		return bad("a wait of %d ms on command %d", m.WaitMs, m.Cmd)
	}
	return r, nil
}

// checkLockServer refuses a request for an object whose lock table, under
// the engine's map of the pool, is elsewhere (a client with an old map).
func (e *Engine) checkLockServer(r *lockReq, target uint32) error {
	pm := e.PoolMapOf(r.pool)
	rank := e.rank.Load()
	if pm == nil || rank < 0 {
		return nil
	}
	l, err := pm.Layout(placement.OID{Hi: r.oid.Hi, Lo: r.oid.Lo})
	if err != nil {
		return daoserr.Context(err, "lock of object %s", r.oid)
	}
	s := groupLeader(l.Group(0))
	if s.Rank != uint32(rank) || s.Target != target {
		return daoserr.Newf(daoserr.Stale, "lock of object %s: its lock table is on rank %d target %d (pool map version %d), not rank %d target %d",
			r.oid, s.Rank, s.Target, pm.Version(), rank, target).WithResolution("the client library refreshes its pool map and retries")
	}
	return nil
}

func (s *lockService) handle(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.LockReq
	if err := decode(req, &m); err != nil {
		return rpc.Response{}, err
	}
	r, err := checkLockReq(&m)
	if err != nil {
		return rpc.Response{}, err
	}
	need := enginepb.CapRead
	if r.cmd == lockCmdSet && r.typ == lockWrite {
		need = enginepb.CapWrite // as fcntl wants a file open for writing
	}
	if _, err := s.e.checkCap(req, &m, need); err != nil {
		return rpc.Response{}, err
	}
	_, release, err := s.e.pool(req, m.Pool) // the pool has storage here
	if err != nil {
		return rpc.Response{}, err
	}
	release() // a parked request must not hold up the pool's destroy
	if r.cmd != lockCmdRenew && r.cmd != lockCmdDropClient {
		if m.MapVersion != 0 {
			if err := s.e.checkLockServer(&r, req.Target); err != nil {
				return rpc.Response{}, err
			}
		}
	}
	s.sweep()
	r.target = req.Target
	rep, err := s.serve(ctx, &r)
	if err != nil {
		return rpc.Response{}, err
	}
	b, _ := proto.Marshal(rep)
	return rpc.Response{Header: b}, nil
}

// serve runs a validated request.
func (s *lockService) serve(ctx context.Context, r *lockReq) (*enginepb.LockRep, error) {
	k := lockKey{r.pool, r.cont, r.oid}
	lk := leaseKey{r.pool, r.cont, r.owner.client}
	switch r.cmd {
	case lockCmdRenew:
		known, n := s.touch(lk, r.lease)
		return &enginepb.LockRep{Known: known, Tables: uint32(n)}, nil
	case lockCmdDropClient:
		s.dropClient(lk)
		return &enginepb.LockRep{}, nil
	case lockCmdGet:
		t := s.table(k, false)
		rep := &enginepb.LockRep{Type: lockUnlock}
		if t == nil {
			return rep, nil
		}
		s.purge(k, t)
		if c := t.conflicts(r.owner, r.typ, r.start, r.end); len(c) > 0 {
			rep.Type, rep.Start, rep.End, rep.Pid = c[0].typ, c[0].start, c[0].end, t.pids[c[0].owner]
		}
		s.done(k, t)
		return rep, nil
	case lockCmdUnlockOwner:
		s.touch(lk, r.lease)
		t := s.table(k, false)
		if t == nil {
			return &enginepb.LockRep{}, nil
		}
		s.purge(k, t)
		if t.unlockOwner(r.owner) {
			t.wake()
		}
		s.note(lk, k, t.holds(r.owner.client))
		s.done(k, t)
		_, n := s.tablesOf(lk)
		return &enginepb.LockRep{Tables: uint32(n)}, nil
	}
	return s.set(ctx, k, lk, r)
}

// stopping is closed when the engine shuts down.
func (s *lockService) stopping() <-chan struct{} {
	if s.e == nil || s.e.bgCtx == nil {
		return nil
	}
	return s.e.bgCtx.Done()
}

// tablesOf is how many tables hold client's locks.
func (s *lockService) tablesOf(lk leaseKey) (bool, int) {
	sh := s.leaseShard(lk)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if l := sh.leases[lk]; l != nil {
		return true, len(l.tables)
	}
	return false, 0
}

// set takes or releases a lock (SET), or parks until it could be taken
// (WAIT, up to its wait): a parked request never takes the lock itself, so
// a client that gives up waiting (its caller interrupted, its deadline
// passed) while the engine answers cannot be left holding a lock it does
// not know of. Once told the lock is free, the client sends a SET, which
// answers at once.
func (s *lockService) set(ctx context.Context, k lockKey, lk leaseKey, r *lockReq) (*enginepb.LockRep, error) {
	s.touch(lk, r.lease)
	wait := r.cmd == lockCmdWait
	var waitID uint64
	if wait {
		waitID = s.waits.newID()
		defer s.waits.wait(r.owner, waitID, nil)
	}
	deadline := time.NewTimer(r.wait)
	defer deadline.Stop()
	for {
		t := s.table(k, r.typ != lockUnlock && !wait)
		if t == nil {
			_, n := s.tablesOf(lk)
			return &enginepb.LockRep{Tables: uint32(n)}, nil // nothing to unlock, or nothing to wait for
		}
		s.purge(k, t)
		var conflicts []heldLock
		if r.typ != lockUnlock {
			conflicts = t.conflicts(r.owner, r.typ, r.start, r.end)
		}
		if len(conflicts) == 0 && wait {
			s.done(k, t)
			_, n := s.tablesOf(lk)
			return &enginepb.LockRep{Tables: uint32(n)}, nil
		}
		if len(conflicts) == 0 && r.typ != lockUnlock && len(t.locks) >= lockTableMax {
			s.done(k, t)
			return nil, daoserr.Newf(daoserr.NoSpace, "lock of object %s: its lock table holds %d locks, the most it may (ENOLCK)", r.oid, lockTableMax).
				WithResolution("release locks (fcntl F_UNLCK) before taking more")
		}
		if len(conflicts) == 0 {
			if t.set(r.owner, r.typ, r.start, r.end) {
				t.wake()
			}
			if r.typ != lockUnlock {
				t.pids[r.owner] = r.pid
			}
			s.note(lk, k, t.holds(r.owner.client))
			s.done(k, t)
			_, n := s.tablesOf(lk)
			return &enginepb.LockRep{Tables: uint32(n)}, nil
		}
		c := conflicts[0]
		if !wait {
			pid := t.pids[c.owner]
			s.done(k, t)
			return nil, daoserr.Newf(daoserr.Busy, "lock of object %s bytes %d-%s: %s lock of bytes %d-%s held by pid %d of client %s",
				r.oid, r.start, endText(r.end), typeText(c.typ), c.start, endText(c.end), pid, c.owner.client)
		}
		var blockers []lockOwner
		leaseWake := time.Time{}
		for _, b := range conflicts {
			if !slices.Contains(blockers, b.owner) {
				blockers = append(blockers, b.owner)
				// a blocker that dies frees its locks when its lease ends
				if end := s.leaseEnd(k.pool, k.cont, b.owner.client); leaseWake.IsZero() || end.Before(leaseWake) {
					leaseWake = end
				}
			}
		}
		if !s.waits.wait(r.owner, waitID, blockers) {
			s.done(k, t)
			return nil, daoserr.Newf(daoserr.Deadlk, "lock of object %s bytes %d-%s by owner %#x of client %s: waiting for client %s owner %#x would deadlock",
				r.oid, r.start, endText(r.end), r.owner.id, r.owner.client, c.owner.client, c.owner.id)
		}
		parked := &s.parked[int(r.target)%len(s.parked)]
		if parked.Add(1) > lockParkMax {
			parked.Add(-1)
			s.done(k, t)
			_, n := s.tablesOf(lk)
			return &enginepb.LockRep{Status: lockWaiting, Tables: uint32(n)}, nil // the client sends it again a little later
		}
		ch := t.waitChan()
		t.waiters++
		t.mu.Unlock()
		leaseTimer := time.NewTimer(max(leaseWake.Sub(s.now()), 0) + time.Millisecond)
		var stop error
		select {
		case <-ch:
		case <-leaseTimer.C:
		case <-deadline.C:
			stop = errLockWaitOver
		case <-s.stopping():
			stop = errLockWaitOver // the engine shuts down: answer, so its shutdown does not wait for us
		case <-ctx.Done():
			stop = daoserr.Wrap(daoserr.Canceled, ctx.Err(), "lock of object %s: wait ended", r.oid)
		}
		leaseTimer.Stop()
		parked.Add(-1)
		t.mu.Lock()
		t.waiters--
		s.done(k, t)
		switch {
		case stop == errLockWaitOver:
			return &enginepb.LockRep{Status: lockWaiting}, nil
		case stop != nil:
			return nil, stop
		}
	}
}

var errLockWaitOver = daoserr.New(daoserr.TimedOut, "lock wait over")

func typeText(t uint32) string {
	switch t {
	case lockRead:
		return "read"
	case lockWrite:
		return "write"
	}
	return "unlock"
}

func endText(end uint64) string {
	if end == math.MaxUint64 {
		return "EOF"
	}
	return fmt.Sprint(end)
}
