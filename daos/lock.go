package daos

// POSIX byte-range locks (fcntl F_SETLK, F_SETLKW, F_GETLK) consistent across
// every client of a container: dfuse calls these from its lock handlers.
// See docs/design/locks.md.

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"
	"weak"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/enginepb"
)

// LockType is a byte-range lock's type, fcntl's.
type LockType uint8

const (
	LockRead   LockType = 1 // F_RDLCK: shared
	LockWrite  LockType = 2 // F_WRLCK: exclusive
	LockUnlock LockType = 3 // F_UNLCK: release (GetLock: no conflicting lock)
)

func (t LockType) String() string {
	switch t {
	case LockRead:
		return "read"
	case LockWrite:
		return "write"
	case LockUnlock:
		return "unlock"
	}
	return "LockType(?)"
}

// LockEOF as a ByteLock's End: to the end of the file, however it grows
// (fcntl's l_len 0).
const LockEOF = math.MaxUint64

// LockOwner is who holds a lock. Client names the client (empty: the
// container handle's own id, see SetLockOptions); Owner is the kernel's lock
// owner within it (FUSE's lock_owner: a process for POSIX locks, an open
// file description for OFD locks); Pid is what GetLock reports to others.
type LockOwner struct {
	Client string
	Owner  uint64
	Pid    uint32
}

// ByteLock is a lock of the bytes Start to End, both included (End LockEOF:
// to the end of the file). Pid, in what GetLock returns, is the holder's;
// in a request, it overrides the owner's Pid when not 0.
type ByteLock struct {
	Type       LockType
	Start, End uint64
	Pid        uint32
}

// LockOptions shape a container handle's locks.
type LockOptions struct {
	// ClientID names this client on the engines (empty: keep the handle's,
	// a random UUID). Two handles with one id are one client: one's locks
	// never conflict with the other's of the same Owner.
	ClientID string
	// Lease is how long engines keep the client's locks after they last
	// heard of it (0: 30 s): a client that dies loses its locks then.
	Lease time.Duration
	// Renew is how often the handle renews its lease in the background
	// while it holds locks (0: Lease/6).
	Renew time.Duration
}

const (
	lockLeaseDefault = 30 * time.Second
	lockLeaseMin     = 100 * time.Millisecond // the engines' bounds
	lockLeaseMax     = 10 * time.Minute
	lockWaitSlice    = 10 * time.Second // the longest an F_SETLKW request parks on its engine before it is sent again
	lockSettle       = 30 * time.Second // how long a lock change goes on after its caller gave up (see settled)
)

// Engine lock commands and reply status (enginepb.LockReq.cmd, LockRep.status).
const (
	lockCmdSet         = 1
	lockCmdGet         = 2
	lockCmdUnlockOwner = 3
	lockCmdRenew       = 4
	lockCmdDropClient  = 5
	lockCmdWait        = 6
	lockWaiting        = 1
)

// lockState is a container handle's lock client: its id, lease, and where it
// holds locks (to renew them). It is kept beside the handle, keyed by a weak
// pointer, and forgotten once the handle is collected; it holds no reference
// to the handle (the renewer holds one only while it runs).
type lockState struct {
	mu       sync.Mutex
	client   string
	lease    time.Duration
	renew    time.Duration
	where    map[lockSite]*lockSiteState
	renewing bool // the renewer runs
	frozen   bool // tests: the client is "dead", it renews no more
}

// lockSite is an engine holding (or maybe holding) locks of a client id.
type lockSite struct {
	client string
	rank   uint32
}

// lockSiteState tracks the requests to a site: it is forgotten only when an
// engine's answer says the client holds nothing there and no other request
// to it overlapped the one answered (answers may arrive out of order).
type lockSiteState struct {
	target   uint32 // the rank's target last used (renewals go there)
	inflight int
	seq      uint64
	held     bool // an answer said the client holds locks there
}

var lockStates sync.Map // weak.Pointer[Cont] -> *lockState

// locks is c's lock client.
func (c *Cont) locks() *lockState {
	k := weak.Make(c)
	if v, ok := lockStates.Load(k); ok {
		return v.(*lockState)
	}
	st := &lockState{client: newUUID(), lease: lockLeaseDefault, renew: lockLeaseDefault / 6, where: map[lockSite]*lockSiteState{}}
	v, loaded := lockStates.LoadOrStore(k, st)
	if !loaded {
		runtime.AddCleanup(c, func(k weak.Pointer[Cont]) { lockStates.Delete(k) }, k)
	}
	return v.(*lockState)
}

// SetLockOptions sets the handle's lock client id and lease. Set them before
// taking locks: locks already held stay under the former id.
func (c *Cont) SetLockOptions(o LockOptions) error {
	if o.Lease == 0 {
		o.Lease = lockLeaseDefault
	}
	if o.Renew == 0 {
		o.Renew = o.Lease / 6
	}
	if o.Lease < lockLeaseMin || o.Lease > lockLeaseMax || o.Renew <= 0 || o.Renew >= o.Lease {
		return daoserr.Newf(daoserr.Inval, "lock lease %v renewed every %v", o.Lease, o.Renew).
			WithResolution("use a lease from %v to %v, renewed more often than it lasts", lockLeaseMin, lockLeaseMax)
	}
	if len(o.ClientID) > 128 {
		return daoserr.Newf(daoserr.Inval, "lock client id of %d bytes (at most 128)", len(o.ClientID))
	}
	st := c.locks()
	st.mu.Lock()
	defer st.mu.Unlock()
	if o.ClientID != "" {
		st.client = o.ClientID
	}
	st.lease, st.renew = o.Lease, o.Renew
	return nil
}

// LockClientID is the id the handle's locks are held under (when a
// LockOwner names no Client).
func (c *Cont) LockClientID() string {
	st := c.locks()
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.client
}

// lockReq is the request common to an owner's commands on oid.
func (c *Cont) lockReq(cmd uint32, oid OID, owner LockOwner) (*enginepb.LockReq, *lockState) {
	st := c.locks()
	st.mu.Lock()
	defer st.mu.Unlock()
	if owner.Client == "" {
		owner.Client = st.client
	}
	return &enginepb.LockReq{Pool: uuidBytes(c.Pool.Info.Uuid), Cont: uuidBytes(c.Info.Uuid), Oid: &enginepb.OID{Hi: oid.Hi, Lo: oid.Lo},
		Cmd: cmd, Client: owner.Client, Owner: owner.Owner, Pid: owner.Pid, LeaseMs: uint32(st.lease / time.Millisecond)}, st
}

func checkRange(what string, oid OID, l ByteLock) error {
	if l.Start > l.End {
		return daoserr.Newf(daoserr.Inval, "%s of object %s: range %d-%d ends before it starts", what, oid, l.Start, l.End)
	}
	return nil
}

// SetLock takes (LockRead, LockWrite) or releases (LockUnlock) owner's lock
// of l's range on object oid, as fcntl F_SETLK (wait false) or F_SETLKW
// (wait true) do: the owner's own locks in the range are replaced (a write
// lock over part of a read lock converts that part, an unlock in the middle
// splits a lock). A conflicting lock of another owner makes it fail with
// DER_BUSY (EAGAIN), or, waiting, wait until it is released or ctx ends
// (DER_TIMEDOUT, with ctx's error); a wait that would deadlock with owners
// waiting on this one fails with DER_DEADLK (EDEADLK). The engine never
// grants a lock to a waiting request: told the lock is free, SetLock takes
// it with a request that goes on for a while when ctx ends, so a caller that
// gives up holds nothing it was not told of.
func (c *Cont) SetLock(ctx context.Context, oid OID, owner LockOwner, l ByteLock, wait bool) error {
	if l.Type != LockRead && l.Type != LockWrite && l.Type != LockUnlock {
		return daoserr.Newf(daoserr.Inval, "lock of object %s: type %d", oid, l.Type)
	}
	if err := checkRange("lock", oid, l); err != nil {
		return err
	}
	m, st := c.lockReq(lockCmdSet, oid, owner)
	m.Type, m.Start, m.End = uint32(l.Type), l.Start, l.End
	if l.Pid != 0 {
		m.Pid = l.Pid
	}
	for {
		var rep enginepb.LockRep
		sctx, cancel := settled(ctx)
		err := c.lockCall(sctx, st, oid, m, &rep, true)
		cancel()
		if !wait || l.Type == LockUnlock || !daoserr.Is(err, daoserr.Busy) {
			return err
		}
		if err := c.waitLock(ctx, st, oid, m); err != nil {
			return err
		}
	}
}

// settled is the context of a request that changes locks: it goes on when
// the caller's context ends, for up to lockSettle. A lock granted while the
// caller gives up would be held without anybody knowing; the caller hears
// of the grant instead (an interrupted fcntl that took its lock says so).
func settled(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), lockSettle)
}

// waitLock parks on the engine (WAIT requests, sent again after each slice)
// until set's lock is free, ctx ends, or waiting would deadlock.
func (c *Cont) waitLock(ctx context.Context, st *lockState, oid OID, set *enginepb.LockReq) error {
	m := proto.Clone(set).(*enginepb.LockReq)
	m.Cmd = lockCmdWait
	var backoffWait time.Duration
	for {
		if err := ctx.Err(); err != nil {
			return daoserr.Wrap(daoserr.TimedOut, err, "lock of object %s: gave up waiting", oid)
		}
		slice := min(lockWaitSlice, time.Duration(m.LeaseMs)*time.Millisecond/3)
		if dl, ok := ctx.Deadline(); ok {
			slice = min(slice, time.Until(dl)*3/4) // the engine answers before the caller's deadline
		}
		m.WaitMs = uint32(max(slice/time.Millisecond, 1))
		var rep enginepb.LockRep
		sent := time.Now()
		if err := c.lockCall(ctx, st, oid, m, &rep, true); err != nil {
			if ctx.Err() != nil {
				return daoserr.Wrap(daoserr.TimedOut, ctx.Err(), "lock of object %s: gave up waiting", oid)
			}
			return err
		}
		if rep.Status != lockWaiting {
			return nil
		}
		if time.Since(sent) < slice/2 {
			// the engine did not park it (it has too many parked): back off
			backoffWait = min(max(2*backoffWait, 10*time.Millisecond), time.Second)
			sleepCtx(ctx, backoffWait/2+rand.N(backoffWait/2+1))
		}
	}
}

// GetLock is fcntl F_GETLK: the first lock of another owner that would
// conflict with owner taking l (Type LockRead or LockWrite), or, when none
// would, a ByteLock of Type LockUnlock.
func (c *Cont) GetLock(ctx context.Context, oid OID, owner LockOwner, l ByteLock) (ByteLock, error) {
	if l.Type != LockRead && l.Type != LockWrite {
		return ByteLock{}, daoserr.Newf(daoserr.Inval, "F_GETLK of object %s: type %v", oid, l.Type).WithResolution("ask with a read or write lock")
	}
	if err := checkRange("F_GETLK", oid, l); err != nil {
		return ByteLock{}, err
	}
	m, st := c.lockReq(lockCmdGet, oid, owner)
	m.Type, m.Start, m.End = uint32(l.Type), l.Start, l.End
	var rep enginepb.LockRep
	if err := c.lockCall(ctx, st, oid, m, &rep, false); err != nil {
		return ByteLock{}, err
	}
	return ByteLock{Type: LockType(rep.Type), Start: rep.Start, End: rep.End, Pid: rep.Pid}, nil
}

// UnlockOwner releases every lock of owner on oid (POSIX: closing any file
// descriptor of a file releases the process's locks on it; dfuse calls it
// on flush and release).
func (c *Cont) UnlockOwner(ctx context.Context, oid OID, owner LockOwner) error {
	m, st := c.lockReq(lockCmdUnlockOwner, oid, owner)
	var rep enginepb.LockRep
	sctx, cancel := settled(ctx)
	defer cancel()
	return c.lockCall(sctx, st, oid, m, &rep, true)
}

// ReleaseLocks releases every lock the handle holds, on every engine, and
// stops renewing its lease (dfuse calls it at unmount; a handle dropped
// without it loses its locks when its lease ends).
func (c *Cont) ReleaseLocks(ctx context.Context) error {
	st := c.locks()
	st.mu.Lock()
	sites := make(map[lockSite]uint32, len(st.where))
	for s, ss := range st.where {
		sites[s] = ss.target
	}
	clear(st.where)
	st.mu.Unlock()
	var first error
	for s, tgt := range sites {
		m := &enginepb.LockReq{Pool: uuidBytes(c.Pool.Info.Uuid), Cont: uuidBytes(c.Info.Uuid), Cmd: lockCmdDropClient, Client: s.client}
		if err := c.send(ctx, dest{placement.Shard{Rank: s.rank, Target: tgt}, 0}, enginepb.OpLock, m, nil); err != nil && first == nil {
			first = daoserr.Context(err, "release the locks of client %s on rank %d", s.client, s.rank)
		}
	}
	return first
}

// lockCall sends m to the engine target holding oid's lock table: the first
// live shard of the object's group 0 under the current pool map (placed
// again when the map changes). track: the answer says where the client
// holds locks (see lockSiteState).
func (c *Cont) lockCall(ctx context.Context, st *lockState, oid OID, m *enginepb.LockReq, rep *enginepb.LockRep, track bool) error {
	o, err := c.Obj(oid)
	if err != nil {
		return daoserr.Context(err, "lock")
	}
	return o.placed(ctx, func(ctx context.Context, l placement.Layout) error {
		d := o.groupLeader(l, 0)
		if !track {
			return o.send(ctx, d, enginepb.OpLock, m, rep)
		}
		site := lockSite{m.Client, d.Rank}
		tk := st.begin(site, d.Target)
		err := o.send(ctx, d, enginepb.OpLock, m, rep)
		st.end(c, tk, err == nil, rep.Tables)
		return err
	})
}

type lockTicket struct {
	site  lockSite
	seq   uint64
	alone bool // no other request to the site was in flight when it started
}

func (st *lockState) begin(site lockSite, target uint32) lockTicket {
	st.mu.Lock()
	defer st.mu.Unlock()
	ss := st.where[site]
	if ss == nil {
		ss = &lockSiteState{}
		st.where[site] = ss
	}
	ss.seq++
	ss.target = target
	tk := lockTicket{site, ss.seq, ss.inflight == 0}
	ss.inflight++
	return tk
}

// end records an answer: tables is how many objects hold the client's locks
// on the engine (ok: the request was answered).
func (st *lockState) end(c *Cont, tk lockTicket, ok bool, tables uint32) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ss := st.where[tk.site]
	if ss == nil {
		return // ReleaseLocks forgot it meanwhile
	}
	ss.inflight--
	if ok && tables > 0 {
		ss.held = true
		if !st.renewing && !st.frozen {
			st.renewing = true
			go st.renewLoop(c)
		}
		return
	}
	if ss.inflight == 0 && tk.alone && ss.seq == tk.seq && (ok || !ss.held) {
		delete(st.where, tk.site)
	}
}

// renewLoop renews the client's leases while it holds locks and the handle
// is open.
func (st *lockState) renewLoop(c *Cont) {
	for {
		st.mu.Lock()
		every := st.renew
		st.mu.Unlock()
		time.Sleep(every)
		st.mu.Lock()
		if st.frozen || len(st.where) == 0 || c.usable() != nil {
			st.renewing = false
			st.mu.Unlock()
			return
		}
		sites := make(map[lockSite]uint32, len(st.where))
		for s, ss := range st.where {
			sites[s] = ss.target
		}
		lease := st.lease
		st.mu.Unlock()
		for s, tgt := range sites {
			m := &enginepb.LockReq{Pool: uuidBytes(c.Pool.Info.Uuid), Cont: uuidBytes(c.Info.Uuid), Cmd: lockCmdRenew, Client: s.client, LeaseMs: uint32(lease / time.Millisecond)}
			ctx, cancel := context.WithTimeout(context.Background(), lease/2)
			tk := st.begin(s, tgt)
			var rep enginepb.LockRep
			err := c.send(ctx, dest{placement.Shard{Rank: s.rank, Target: tgt}, 0}, enginepb.OpLock, m, &rep)
			cancel()
			st.end(c, tk, err == nil, rep.Tables)
			switch {
			case err != nil:
				c.Pool.c.log.Warn("renewing the lease of POSIX locks failed", "client", s.client, "rank", s.rank, "err", err)
			case !rep.Known:
				c.Pool.c.log.Error("POSIX locks lost: the engine no longer knew the client's lease (it restarted, or the lease ran out)",
					"client", s.client, "rank", s.rank, "container", c.Info.GetLabel())
			}
		}
	}
}

// freezeLocks makes the handle stop renewing its leases, as a client that
// died would (tests).
func (c *Cont) freezeLocks() {
	st := c.locks()
	st.mu.Lock()
	st.frozen = true
	st.mu.Unlock()
}
