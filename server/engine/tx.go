package engine

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/hlc"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security/capability"
	"github.com/godaos/godaos/server/vos"
)

// Transactions, on one target (see docs/design/transactions.md). A client
// buffers a transaction's writes and remembers the dkeys it read and the
// epoch it read them at; at commit it sends each target its part
// (OpTxPrepare). The target takes shared locks on the dkeys the part read and
// exclusive locks on those it writes, and refuses (DER_TX_RESTART) when one is
// locked against it, has a write in progress outside transactions, or changed
// after the read epoch.
//
// One target: the prepare commits at once. Several: the first participant
// the client prepares is the coordinator. The client commits it first
// (OpTxCommit with coordinator set), which records the decision, then the
// others; an abort goes to all. A participant whose commit or abort does not
// come within txPreparedTTL asks the coordinator (OpTxStatus) and does what
// was decided; a coordinator asked about a transaction it has not decided,
// whose own part has expired, decides to abort it (presumed abort), so a late
// commit from the client is refused there before it reaches anyone else.
//
// While a transaction holds an exclusive lock, I/O on that dkey at or after
// its prepare stamp gets DER_INPROGRESS and the client retries: a reader
// cannot see half of a transaction. Shared locks only keep writers out.
//
// Prepared parts and commit decisions are also logged in the target's
// transaction table (dtx.go), so that an engine restarting between prepare
// and commit brings them back.

// txPreparedTTL is how long a prepared part waits for the client's commit
// or abort before asking the coordinator.
var txPreparedTTL = 30 * time.Second

// txGiveUp is how long a participant asks an unreachable coordinator every
// second; after it, every 30 s, with an error logged each time (it never
// decides alone: the coordinator may have committed).
const txGiveUp = 10 * time.Minute

// txDecisionTTL is how long decisions are remembered for participants.
const txDecisionTTL = 20 * time.Minute

// Bounds per target: prepared transactions and the bytes they hold.
const (
	txMaxPrepared = 4096
	txMaxBytes    = 1 << 30
)

// maxClockAhead is how far in this engine's future an epoch from elsewhere
// may be (the servers' clocks' skew, as DAOS's HLC epsilon).
const maxClockAhead = time.Second

type txObj struct {
	cont vos.UUID
	oid  vos.OID
}

type txKey struct {
	txObj
	dkey string // "": the whole object
}

// lockEntry is who holds a dkey: one writer, or readers.
type lockEntry struct {
	writer  *preparedTx
	readers []*preparedTx
}

type preparedTx struct {
	id          [16]byte
	cont        vos.UUID
	handle      [16]byte // the container handle that prepared it: only it commits or aborts
	pool        *vos.Pool
	stamp       uint64 // the clock at prepare: I/O of its written dkeys at or after it waits
	deadline    time.Time
	reads       []txKey
	writes      []txKey
	ops         []*enginepb.TxWrite
	bulk        []byte // the writes' values (copied: the request's buffer is reused)
	coordinator bool
	coordAddr   string
	coordTarget uint32
	// A replicated write's part (see replicate.go): its peers and leader,
	// asked instead of the leader once the leader is excluded.
	replica    bool
	poolID     vos.UUID
	peers      []*enginepb.TxPeer
	coordRank  uint32
	target     uint32    // the target it is prepared on
	durable    bool      // logged in the target's transaction table (dtx.go): dropped there when released
	committing bool      // its writes are being applied
	resolving  bool      // asking the coordinator
	firstAsked time.Time // when it first asked
}

type txDecision struct {
	committed bool
	epoch     uint64
	expires   time.Time
	pool      *vos.Pool // logged in its transaction table (dtx.go): dropped there when it expires
}

// txTable is a target's prepared transactions, their locks, the decisions
// it took as a coordinator or learnt as a participant, and the writes in
// progress outside transactions.
type txTable struct {
	active    atomic.Int32  // prepared transactions: with none, reads of the latest skip the table
	gen       atomic.Uint64 // counts the parts locked: a read of the latest that saw it change retries
	mu        sync.Mutex
	prepared  map[[16]byte]*preparedTx
	locks     map[txKey]*lockEntry
	objLocks  map[txObj]int // locked keys per object
	decisions map[[16]byte]txDecision
	nextGC    int // decisions are swept of expired ones when they reach it
	bytes     int
	// writing counts the updates and punches in progress outside
	// transactions, per dkey ("" for the whole object's): a transaction may
	// not prepare over one, whose epoch it cannot see yet.
	writing map[txKey]int
}

func (tt *txTable) init() {
	if tt.prepared == nil {
		tt.prepared, tt.locks, tt.objLocks = map[[16]byte]*preparedTx{}, map[txKey]*lockEntry{}, map[txObj]int{}
		tt.decisions, tt.writing = map[[16]byte]txDecision{}, map[txKey]int{}
	}
}

func inProgress(oid vos.OID, dkey []byte) error {
	return daoserr.Newf(daoserr.InProgress, "object %s dkey %q: a transaction holds it (prepared or committing)", oid, dkey).
		WithResolution("retry: the client library retries for about 12 s before it reports this")
}

func txRestart(k txKey, why string) error {
	if k.dkey == "" {
		return daoserr.Newf(daoserr.TxRestart, "object %s: %s", k.oid, why).WithResolution("restart the transaction")
	}
	return daoserr.Newf(daoserr.TxRestart, "object %s dkey %q: %s", k.oid, k.dkey, why).WithResolution("restart the transaction")
}

// related are the lock entries that bear on k: k itself and its object's
// whole-object key, or, for a whole-object key, every locked key of the
// object (tt.mu held).
func (tt *txTable) related(k txKey) []*lockEntry {
	var out []*lockEntry
	add := func(k txKey) {
		if e := tt.locks[k]; e != nil {
			out = append(out, e)
		}
	}
	if k.dkey != "" {
		add(k)
		add(txKey{k.txObj, ""})
		return out
	}
	if tt.objLocks[k.txObj] > 0 {
		for lk, e := range tt.locks {
			if lk.txObj == k.txObj {
				out = append(out, e)
			}
		}
	}
	return out
}

// writerOf is a transaction other than me holding an exclusive lock that
// bears on k (tt.mu held).
func (tt *txTable) writerOf(k txKey, me *preparedTx) *preparedTx {
	for _, e := range tt.related(k) {
		if e.writer != nil && e.writer != me {
			return e.writer
		}
	}
	return nil
}

// lockedAgainstWrite says whether another transaction holds any lock that
// bears on k (tt.mu held).
func (tt *txTable) lockedAgainstWrite(k txKey, me *preparedTx) bool {
	for _, e := range tt.related(k) {
		if e.writer != nil && e.writer != me {
			return true
		}
		for _, r := range e.readers {
			if r != me {
				return true
			}
		}
	}
	return false
}

// writeInProgress says whether a write outside transactions is in progress
// that bears on k (tt.mu held).
func (tt *txTable) writeInProgress(k txKey) bool {
	if k.dkey != "" {
		return tt.writing[k] > 0 || tt.writing[txKey{k.txObj, ""}] > 0
	}
	for wk, n := range tt.writing {
		if wk.txObj == k.txObj && n > 0 {
			return true
		}
	}
	return false
}

func (tt *txTable) lock(ptx *preparedTx) {
	entry := func(k txKey) *lockEntry {
		e := tt.locks[k]
		if e == nil {
			e = &lockEntry{}
			tt.locks[k] = e
			tt.objLocks[k.txObj]++
		}
		return e
	}
	for _, k := range ptx.writes {
		entry(k).writer = ptx
	}
	for _, k := range ptx.reads {
		if !slices.Contains(ptx.writes, k) {
			e := entry(k)
			e.readers = append(e.readers, ptx)
		}
	}
	tt.prepared[ptx.id] = ptx
	tt.bytes += len(ptx.bulk)
	tt.active.Add(1)
	tt.gen.Add(1)
}

// release drops a prepared transaction and its locks (tt.mu held).
func (tt *txTable) release(ptx *preparedTx) {
	if tt.prepared[ptx.id] != ptx {
		return
	}
	delete(tt.prepared, ptx.id)
	unlock := func(k txKey) {
		e := tt.locks[k]
		if e == nil {
			return
		}
		if e.writer == ptx {
			e.writer = nil
		}
		e.readers = slices.DeleteFunc(e.readers, func(r *preparedTx) bool { return r == ptx })
		if e.writer == nil && len(e.readers) == 0 {
			delete(tt.locks, k)
			if tt.objLocks[k.txObj]--; tt.objLocks[k.txObj] <= 0 {
				delete(tt.objLocks, k.txObj)
			}
		}
	}
	for _, k := range ptx.writes {
		unlock(k)
	}
	for _, k := range ptx.reads {
		unlock(k)
	}
	tt.bytes -= len(ptx.bulk)
	tt.active.Add(-1)
	if ptx.durable {
		// logged after the part's writes (applied before this): a crash
		// before it is durable brings the part back, decided
		ptx.pool.DtxDelAsync(dtxKey(dtxPrepared, ptx.id))
	}
}

// decide records a coordinator's or participant's outcome (tt.mu held),
// for txDecisionTTL.
func (tt *txTable) decide(id [16]byte, committed bool, epoch uint64) {
	tt.decideFor(id, committed, epoch, txDecisionTTL)
}

// decideFor records an outcome for ttl. Expired ones are swept when the
// table has doubled since the last sweep: amortised O(1) per decision.
func (tt *txTable) decideFor(id [16]byte, committed bool, epoch uint64, ttl time.Duration) {
	now := time.Now()
	tt.decisions[id] = txDecision{committed: committed, epoch: epoch, expires: now.Add(ttl)}
	if len(tt.decisions) >= tt.nextGC {
		for k, d := range tt.decisions {
			if now.After(d.expires) {
				tt.forget(k)
			}
		}
		tt.nextGC = max(2*len(tt.decisions), 1024)
	}
}

// forget drops decision id (tt.mu held), from the transaction table too.
func (tt *txTable) forget(id [16]byte) {
	if d, ok := tt.decisions[id]; ok && d.pool != nil {
		d.pool.DtxDelAsync(dtxKey(dtxDecided, id))
	}
	delete(tt.decisions, id)
}

// logDecision logs a participant's commit decision id on pool p ahead of
// whatever it writes next (see persistDecision) and notes it (tt.mu not
// held).
func (tt *txTable) logDecision(p *vos.Pool, id [16]byte, epoch uint64, ttl time.Duration) {
	persistDecision(p, id, epoch, ttl, false)
	tt.notePersisted(id, p)
}

// notePersisted notes that decision id is logged on p, so that it is
// dropped there when it expires (tt.mu not held).
func (tt *txTable) notePersisted(id [16]byte, p *vos.Pool) {
	tt.mu.Lock()
	if d, ok := tt.decisions[id]; ok {
		d.pool = p
		tt.decisions[id] = d
	}
	tt.mu.Unlock()
}

// beginWrite registers an update or punch of oid's dkeys (none: the whole
// object) outside transactions, or says DER_INPROGRESS when a prepared
// transaction holds a lock that bears on one. The caller calls end when the
// write is done.
func (e *Engine) beginWrite(tt *txTable, cont vos.UUID, oid vos.OID, dkeys ...[]byte) (end func(), err error) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tt.init()
	o := txObj{cont, oid}
	keys := []txKey{{o, ""}}
	if len(dkeys) > 0 {
		keys = keys[:0]
		for _, d := range dkeys {
			keys = append(keys, txKey{o, string(d)})
		}
	}
	for _, k := range keys {
		if tt.lockedAgainstWrite(k, nil) {
			return nil, inProgress(oid, []byte(k.dkey))
		}
	}
	for _, k := range keys {
		tt.writing[k]++
	}
	return func() {
		tt.mu.Lock()
		defer tt.mu.Unlock()
		for _, k := range keys {
			if tt.writing[k]--; tt.writing[k] <= 0 {
				delete(tt.writing, k)
			}
		}
	}, nil
}

// checkEpoch refuses an epoch from elsewhere that is further in this
// engine's future than clock skew explains: moving the clock there would
// stamp what follows beyond any real time.
func (e *Engine) checkEpoch(epoch uint64, what string) error {
	if ahead := hlc.Time(epoch).Sub(hlc.Time(e.clock.Now())); ahead > maxClockAhead {
		return daoserr.Newf(daoserr.Inval, "%s at epoch %#x: %s in this engine's future", what, epoch, ahead.Round(time.Millisecond)).
			WithResolution("epochs come from the servers' clocks: synchronise them (NTP)")
	}
	return nil
}

// readAt makes a read at epoch (0: the latest) of oid's dkey (nil: a listing
// of the object) consistent: the clock moves past the epoch, so nothing
// stamped later lands inside it; DER_INPROGRESS says to retry when a
// prepared transaction writing there may commit at or below it; and the read
// waits for the batch that may still hold epochs at or below it.
//
// It returns the target's lock generation for readDone, once the read is made.
func (e *Engine) readAt(p *vos.Pool, tt *txTable, epoch uint64, cont vos.UUID, oid vos.OID, dkey []byte) (gen uint64, err error) {
	gen = tt.gen.Load()
	if epoch != 0 {
		if err := e.checkEpoch(epoch, "read"); err != nil {
			return 0, err
		}
		e.clock.Update(epoch)
	}
	if tt.active.Load() != 0 {
		tt.mu.Lock()
		k := txKey{txObj{cont, oid}, string(dkey)}
		if dkey == nil {
			k.dkey = ""
		}
		w := tt.writerOf(k, nil)
		tt.mu.Unlock()
		if w != nil && (epoch == 0 || w.stamp <= epoch) {
			return 0, inProgress(oid, dkey)
		}
	}
	if epoch != 0 {
		p.WaitDurable(vos.Epoch(epoch))
	}
	return gen, nil
}

// readDone follows a read readAt allowed: a read of the latest that started
// before a part was locked may have met the part half applied (its writes
// are separate VOS ops), so it retries when a part was locked on this target
// while it ran.
func readDone(tt *txTable, gen, epoch uint64, oid vos.OID, dkey []byte) error {
	if epoch == 0 && tt.gen.Load() != gen {
		return inProgress(oid, dkey)
	}
	return nil
}

// txKeys are the dkeys a transaction part reads and writes, without repeats.
func txKeys(cont vos.UUID, m *enginepb.TxPrepareReq) (reads, writes []txKey) {
	seen := map[txKey]bool{}
	key := func(oid *enginepb.OID, dkey []byte) txKey {
		return txKey{txObj{cont, vos.OID{Hi: oid.GetHi(), Lo: oid.GetLo()}}, string(dkey)}
	}
	for _, w := range m.Writes {
		if k := key(w.Oid, w.Dkey); !seen[k] {
			seen[k] = true
			writes = append(writes, k)
		}
	}
	for _, r := range m.Reads {
		if k := key(r.Oid, r.Dkey); !seen[k] {
			seen[k] = true
			reads = append(reads, k)
		}
	}
	return reads, writes
}

// txMsg is a transaction request of a client.
type txMsg interface {
	capMsg
	GetTxid() []byte
}

// txReq decodes a client's transaction request: its pool (with its release,
// see pool), container and the grant of its handle, which must be allowed to write
// (a part locks; only a writer takes part).
func (e *Engine) txReq(req *rpc.Request, m txMsg) (*vos.Pool, vos.UUID, *capability.Grant, func(), error) {
	if err := decode(req, m); err != nil {
		return nil, vos.UUID{}, nil, nil, err
	}
	g, err := e.checkCap(req, m, enginepb.CapWrite)
	if err != nil {
		return nil, vos.UUID{}, nil, nil, err
	}
	if len(m.GetTxid()) != 16 {
		return nil, vos.UUID{}, nil, nil, daoserr.Newf(daoserr.Inval, "transaction id of %d bytes, want 16", len(m.GetTxid()))
	}
	p, c, release, err := e.poolCont(req, m.GetPool(), m.GetCont())
	return p, c, g, release, err
}

func (e *Engine) txPrepare(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.TxPrepareReq
	p, c, g, release, err := e.txReq(req, &m)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	if err := e.checkEpoch(m.Epoch, "transaction"); err != nil {
		return rpc.Response{}, err
	}
	if !m.Commit && !m.Coordinator && m.CoordAddr == "" {
		return rpc.Response{}, daoserr.New(daoserr.Inval, "a transaction part of several names no coordinator")
	}
	if _, err := splitTxBulk(m.Writes, req.Bulk); err != nil {
		return rpc.Response{}, err
	}
	reads, writes := txKeys(c, &m)
	ptx := &preparedTx{id: [16]byte(m.Txid), cont: c, handle: g.Handle, pool: p, reads: reads, writes: writes, ops: m.Writes,
		coordinator: m.Coordinator, coordAddr: m.CoordAddr, coordTarget: m.CoordTarget,
		replica: m.Replica, poolID: vos.UUID(m.Pool), peers: m.Peers, coordRank: m.CoordRank, target: uint32(req.Target)}
	tt := &e.targets[req.Target].txs
	bulk := req.Bulk
	var rec []byte
	if !m.Commit {
		// kept until the commit (the request's buffer is reused): as the
		// tail of the part's transaction table record (dtx.go)
		if rec, err = preparedRecord(&m, g.Handle, req.Bulk); err != nil {
			return rpc.Response{}, err
		}
		bulk = rec[len(rec)-len(req.Bulk):]
	}
	if err := e.lockPart(tt, ptx, m.Epoch, m.Replica, m.Commit, bulk); err != nil {
		return rpc.Response{}, err
	}
	if !m.Commit {
		// durable before it is answered: a restart must not lose a part
		// its coordinator may commit (dtx.go)
		if err := e.persistPrepared(tt, ptx, rec); err != nil {
			tt.mu.Lock()
			tt.release(ptx)
			tt.mu.Unlock()
			return rpc.Response{}, err
		}
	}
	if m.Commit { // the only participant: commit now, under the locks just taken
		if err := e.applyTx(tt, ptx, ptx.stamp, req.Bulk); err != nil {
			return rpc.Response{}, err
		}
	}
	hdr, _ := proto.Marshal(&enginepb.TxPrepareRep{Epoch: ptx.stamp})
	return rpc.Response{Header: hdr}, nil
}

// lockPart prepares ptx on tt: it checks that nothing holds or changed what
// the part reads and writes since readEpoch (a replica's part has no read
// epoch: only locks are checked, and a held one says DER_INPROGRESS), then
// locks its dkeys and stamps it. committing says it is applied at once (one
// phase); otherwise bulk is kept for the commit.
func (e *Engine) lockPart(tt *txTable, ptx *preparedTx, readEpoch uint64, replica, committing bool, bulk []byte) error {
	p, c := ptx.pool, ptx.cont
	held := func(k txKey, why string) error {
		if replica {
			return inProgress(k.oid, []byte(k.dkey))
		}
		return txRestart(k, why)
	}
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tt.init()
	if err := tt.admit(ptx, len(bulk)); err != nil {
		return err
	}
	for _, k := range ptx.writes {
		if tt.lockedAgainstWrite(k, nil) {
			return held(k, "another transaction holds it")
		}
	}
	for _, k := range ptx.reads {
		if tt.writerOf(k, nil) != nil {
			return held(k, "another transaction is writing it")
		}
	}
	// Nothing may have changed what the transaction read, or what it
	// writes over, since its read epoch; the locks keep it so until commit.
	for _, k := range append(slices.Clone(ptx.writes), ptx.reads...) {
		if tt.writeInProgress(k) {
			return held(k, "a write is in progress there")
		}
		if replica {
			continue
		}
		latest, err := p.LatestEpoch(c, k.oid, []byte(k.dkey))
		if err != nil && !daoserr.Is(err, daoserr.Nonexist) {
			return err
		}
		if latest > readEpoch {
			return txRestart(k, "changed at epoch "+hexEpoch(latest)+", after the transaction read at "+hexEpoch(readEpoch))
		}
	}
	// Locked first, stamped after: a reader whose clock moved past an epoch
	// before the stamp was taken either sees the lock or reads below a
	// commit that can only land above the stamp.
	ptx.deadline = time.Now().Add(txPreparedTTL)
	if replica {
		ptx.deadline = time.Now().Add(replicaPreparedTTL)
		if ptx.coordinator {
			ptx.deadline = time.Now().Add(2 * replicaTimeout) // it waits for its peers that long
		}
	}
	ptx.committing = committing
	if !committing {
		ptx.bulk = bulk
	}
	tt.lock(ptx)
	ptx.stamp = e.clock.Now()
	return nil
}

func hexEpoch(e uint64) string { return "0x" + strconv.FormatUint(e, 16) }

// seal wraps a request only servers may make (Options.Seal; unsigned
// without it, as insecure systems send them).
func (e *Engine) seal(op uint16, msg []byte) ([]byte, error) {
	if e.opts.Seal != nil {
		return e.opts.Seal(op, msg)
	}
	return capability.Seal(nil, op, msg)
}

// admit checks that ptx may be prepared here: not prepared twice, within the
// target's bounds (tt.mu held).
func (tt *txTable) admit(ptx *preparedTx, bulk int) error {
	if d, ok := tt.decisions[ptx.id]; ok {
		return daoserr.Newf(daoserr.TxRestart, "transaction already %s here", map[bool]string{true: "committed", false: "aborted"}[d.committed]).
			WithResolution("restart the transaction")
	}
	if old := tt.prepared[ptx.id]; old != nil {
		if old.committing || old.handle != ptx.handle {
			return daoserr.New(daoserr.TxRestart, "transaction already prepared here").WithResolution("restart the transaction")
		}
		tt.release(old) // the client's retried prepare
	}
	if len(tt.prepared) >= txMaxPrepared || tt.bytes+bulk > txMaxBytes {
		return daoserr.Newf(daoserr.Busy, "%d transactions (%d bytes) are committing on this target: the most it holds", len(tt.prepared), tt.bytes).
			WithResolution("retry later, or commit smaller transactions")
	}
	return nil
}

func (e *Engine) txCommit(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.TxCommitReq
	_, c, g, release, err := e.txReq(req, &m)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	tt := &e.targets[req.Target].txs
	tt.mu.Lock()
	tt.init()
	id := [16]byte(m.Txid)
	ptx := tt.prepared[id]
	if ptx != nil && (ptx.cont != c || ptx.handle != g.Handle) {
		tt.mu.Unlock()
		return rpc.Response{}, daoserr.New(daoserr.NoPerm, "the transaction was prepared through another container handle")
	}
	if ptx == nil || ptx.committing {
		d, decided := tt.decisions[id]
		tt.mu.Unlock()
		switch {
		case decided && d.committed == !m.Abort:
			return rpc.Response{}, nil // already done (resolved with the coordinator, or a retry)
		case m.Abort && !decided:
			return rpc.Response{}, nil // nothing prepared: nothing to abort
		case decided:
			return rpc.Response{}, daoserr.New(daoserr.TxRestart, "the transaction was aborted here: its coordinator decided so after waiting for the commit too long").
				WithResolution("restart the transaction")
		case ptx != nil:
			// its commit is being applied (a repeated request): the outcome
			// is known in a moment
			return rpc.Response{}, daoserr.New(daoserr.InProgress, "the transaction is being committed here").WithResolution("retry")
		}
		return rpc.Response{}, daoserr.New(daoserr.TxRestart, "transaction not prepared here (the engine restarted, or it is being committed)").
			WithResolution("restart the transaction")
	}
	if m.Abort {
		if ptx.coordinator {
			tt.decide(id, false, 0)
		} else if len(ptx.peers) > 0 {
			tt.decideFor(id, false, 0, replicaDecisionTTL)
		}
		tt.release(ptx)
		tt.mu.Unlock()
		return rpc.Response{}, nil
	}
	if m.Epoch < ptx.stamp {
		tt.mu.Unlock()
		return rpc.Response{}, daoserr.Newf(daoserr.Inval, "commit epoch %#x is below the prepared stamp %#x", m.Epoch, ptx.stamp)
	}
	if ptx.coordinator || m.Coordinator { // it decides: bound the epoch; a participant takes what was decided
		if err := e.checkEpoch(m.Epoch, "commit"); err != nil {
			tt.mu.Unlock()
			return rpc.Response{}, err
		}
		if ptx.coordinator && !time.Now().Before(ptx.deadline) {
			// Presumed abort, as the sweeper (resolveExpired) and txStatus
			// decide it: the participants may be settling it already. A
			// commit that waited out a pause of this server (SIGSTOP) and
			// reached it before the sweeper ran must not be the one that
			// commits.
			tt.decide(id, false, 0)
			tt.release(ptx)
			tt.mu.Unlock()
			return rpc.Response{}, daoserr.New(daoserr.TxRestart, "the transaction was aborted: its commit reached the coordinator after the participants' wait (they may be settling it without it)").
				WithResolution("restart the transaction")
		}
	}
	if !ptx.coordinator && !m.Coordinator && len(ptx.peers) > 0 && e.leaderExcluded(ptx) {
		// Fenced: the coordinator is out of the pool map, so the parts
		// settle the transaction among themselves (askPeers); a commit it
		// decided late (a paused server resumed) must not split them.
		tt.mu.Unlock()
		return rpc.Response{}, daoserr.Newf(daoserr.TxRestart, "the transaction's coordinator (rank %d) is excluded from the pool map: its parts settle it without it", ptx.coordRank).
			WithResolution("restart the transaction if none of its parts committed")
	}
	ptx.committing = true
	if ptx.coordinator || m.Coordinator {
		// The decision is logged ahead of the part's writes, so it is
		// durable once they are (dtx.go), and recorded here only then:
		// until it is, a part asking hears "undecided" (committing) and asks
		// again, so none commits on a decision a crash could still lose.
		// An EC write's coordinator (its first parity shard, which holds
		// every key of the group) also checks the write's conditions, which
		// its part alone carries: a failed one drops the logged decision,
		// durably, before the write is aborted everywhere.
		tt.mu.Unlock()
		e.clock.Update(m.Epoch)
		// (a part that only read has no writes to carry it: waited for)
		if derr := persistDecision(ptx.pool, id, m.Epoch, txDecisionTTL, len(ptx.ops) == 0); derr != nil {
			e.log.Error("transaction decision not logged: a restart would forget it", "txid", ptx.id, "err", derr)
		}
		err := e.applyWrites(ptx, m.Epoch, ptx.bulk)
		if conditionFailed(ptx, err) {
			if derr := ptx.pool.DtxDel(dtxKey(dtxDecided, id)); derr != nil {
				e.log.Error("aborted transaction's decision not dropped from the table", "txid", ptx.id, "err", derr)
			}
			tt.mu.Lock()
			tt.decide(id, false, 0)
			tt.release(ptx)
			tt.mu.Unlock()
			return rpc.Response{}, err
		}
		tt.mu.Lock()
		tt.decide(id, true, m.Epoch)
		tt.release(ptx)
		tt.mu.Unlock()
		tt.notePersisted(id, ptx.pool)
		return rpc.Response{}, err
	}
	peers := len(ptx.peers) > 0
	if peers {
		tt.decideFor(id, true, m.Epoch, replicaDecisionTTL) // its peers may ask, if the coordinator dies
	}
	tt.mu.Unlock()
	e.clock.Update(m.Epoch)
	if peers {
		// logged before the part's writes (durable with them)
		tt.logDecision(ptx.pool, id, m.Epoch, replicaDecisionTTL)
	}
	return rpc.Response{}, e.applyTx(tt, ptx, m.Epoch, ptx.bulk)
}

// conditionFailed reports whether err is a condition of part ptx failing
// (nothing applied).
func conditionFailed(ptx *preparedTx, err error) bool {
	return err != nil && conditional(ptx) && (daoserr.Is(err, daoserr.Exist) || daoserr.Is(err, daoserr.Nonexist))
}

// conditional reports whether a part's writes carry conditions.
func conditional(ptx *preparedTx) bool {
	for _, w := range ptx.ops {
		if w.Flags != 0 {
			return true
		}
		for _, d := range w.Iods {
			if d.Flags != 0 {
				return true
			}
		}
	}
	return false
}

// applyTx writes a prepared part at its commit epoch, without the table's
// mutex (its locks keep the dkeys to it meanwhile), then releases it.
func (e *Engine) applyTx(tt *txTable, ptx *preparedTx, epoch uint64, bulk []byte) error {
	defer func() {
		tt.mu.Lock()
		tt.release(ptx)
		tt.mu.Unlock()
	}()
	return e.applyWrites(ptx, epoch, bulk)
}

// applyWrites writes a prepared part at its commit epoch, keeping its locks
// (the caller releases them).
func (e *Engine) applyWrites(ptx *preparedTx, epoch uint64, bulk []byte) error {
	sgls, err := splitTxBulk(ptx.ops, bulk)
	if err != nil {
		return err
	}
	p, c := ptx.pool, ptx.cont
	for i, w := range ptx.ops {
		oid := vos.OID{Hi: w.Oid.GetHi(), Lo: w.Oid.GetLo()}
		switch {
		case !w.Punch:
			err = p.Update(c, oid, vos.Epoch(epoch), clientCond(w.Flags), w.Dkey, vosIODs(w.Iods), sgls[i])
		case len(w.Dkey) == 0:
			err = p.PunchObject(c, oid, vos.Epoch(epoch), clientCond(w.Flags))
		case len(w.Akeys) == 0:
			err = p.PunchDkeys(c, oid, vos.Epoch(epoch), clientCond(w.Flags), [][]byte{w.Dkey})
		default:
			err = p.PunchAkeys(c, oid, vos.Epoch(epoch), clientCond(w.Flags), w.Dkey, w.Akeys)
		}
		if err != nil && i == 0 && w.Flags != 0 {
			return err // a condition failed before anything was applied: the caller aborts
		}
		if err != nil {
			e.log.Error("transaction part applied partly", "txid", ptx.id, "write", i, "of", len(ptx.ops), "err", err)
			return daoserr.Context(err, "transaction write %d of %d (object %s dkey %q); the ones before it are applied", i+1, len(ptx.ops), oid, w.Dkey)
		}
	}
	return nil
}

// splitTxBulk cuts a transaction's bulk into each update's SGLs.
func splitTxBulk(writes []*enginepb.TxWrite, bulk []byte) ([][]vos.SGL, error) {
	out := make([][]vos.SGL, len(writes))
	var off int
	for i, w := range writes {
		if w.Punch {
			continue
		}
		iods := vosIODs(w.Iods)
		var n uint64
		for j := range iods {
			b, err := iodBytes(&iods[j])
			if err != nil {
				return nil, err
			}
			n += b
		}
		if uint64(len(bulk)-off) < n {
			return nil, daoserr.Newf(daoserr.IOInval, "transaction write %d: the IODs describe more than the %d bulk bytes sent", i, len(bulk))
		}
		sgls, err := splitBulk(iods, bulk[off:off+int(n)])
		if err != nil {
			return nil, err
		}
		out[i] = sgls
		off += int(n)
	}
	if off != len(bulk) {
		return nil, daoserr.Newf(daoserr.IOInval, "%d transaction bulk bytes sent, the writes describe %d", len(bulk), off)
	}
	return out, nil
}

// txStatus answers a participant: what the coordinator (this target)
// decided, deciding to abort a transaction whose own part has expired.
func (e *Engine) txStatus(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.TxStatusReq
	if err := decode(req, &m); err != nil {
		return rpc.Response{}, err
	}
	if len(m.Txid) != 16 {
		return rpc.Response{}, daoserr.Newf(daoserr.Inval, "transaction id of %d bytes, want 16", len(m.Txid))
	}
	id := [16]byte(m.Txid)
	if len(m.Pool) == 16 && m.MapVersion != 0 {
		// a peer resolving: know the coordinator's exclusion before answering
		// (see txCommit's fence)
		if cur := e.mapAtLeast(ctx, vos.UUID(m.Pool), m.MapVersion); cur == nil || cur.Version() < m.MapVersion {
			return rpc.Response{}, daoserr.Newf(daoserr.Stale, "transaction status: this engine cannot get pool map version %d yet", m.MapVersion).WithResolution("the asking engine retries")
		}
	}
	tt := &e.targets[req.Target].txs
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tt.init()
	rep := &enginepb.TxStatusRep{}
	ptx := tt.prepared[id]
	if d, ok := tt.decisions[id]; ok {
		rep.State, rep.Epoch = 2, d.epoch
		if d.committed {
			rep.State = 1
		}
	} else if ptx != nil && (ptx.committing || !ptx.coordinator || time.Now().Before(ptx.deadline)) {
		// undecided: waiting for the client (or, a participant asked by a
		// resolving peer, for the outcome: it is fenced against a late
		// commit now, see txCommit)
		rep.State = 0
	} else {
		tt.decide(id, false, 0) // presumed abort: a late commit is refused here
		if ptx != nil {
			tt.release(ptx)
		}
		rep.State = 2
	}
	hdr, _ := proto.Marshal(rep)
	return rpc.Response{Header: hdr}, nil
}

// resolveExpired runs on every target once a second: a coordinator decides
// to abort its expired parts; a participant asks the coordinator about its
// own and does what was decided.
func (e *Engine) resolveExpired(ctx context.Context) {
	now := time.Now()
	for ti, t := range e.targets {
		tt := &t.txs
		if tt.active.Load() == 0 {
			continue
		}
		var ask []*preparedTx
		tt.mu.Lock()
		for id, ptx := range tt.prepared {
			if ptx.committing || ptx.resolving || now.Before(ptx.deadline) {
				continue
			}
			if ptx.coordinator {
				tt.decide(id, false, 0)
				tt.release(ptx)
				e.log.Warn("transaction aborted: its commit did not come in time", "txid", id, "target", ti)
				continue
			}
			ptx.resolving = true
			if ptx.firstAsked.IsZero() {
				ptx.firstAsked = now
			}
			ask = append(ask, ptx)
		}
		tt.mu.Unlock()
		for _, ptx := range ask {
			go e.askCoordinator(ctx, tt, ptx)
		}
	}
}

func (e *Engine) askCoordinator(ctx context.Context, tt *txTable, ptx *preparedTx) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var rep *enginepb.TxStatusRep
	var err error
	if len(ptx.peers) > 0 && e.leaderExcluded(ptx) {
		rep, err = e.askPeers(ctx, ptx)
	} else {
		rep, err = e.callCoordinator(ctx, ptx)
	}
	tt.mu.Lock()
	ptx.resolving = false
	if tt.prepared[ptx.id] != ptx || ptx.committing { // the client's commit or abort came meanwhile
		tt.mu.Unlock()
		return
	}
	switch {
	case err != nil && time.Since(ptx.firstAsked) > txGiveUp:
		// It may have committed: the part keeps its locks rather than guess,
		// and asks less often.
		e.log.Error("transaction part still undecided: its coordinator does not answer", "txid", ptx.id,
			"coordinator", ptx.coordAddr, "since", ptx.firstAsked, "err", err)
		ptx.deadline = time.Now().Add(30 * time.Second)
	case err != nil || rep.State == 0:
		ptx.deadline = time.Now().Add(time.Second) // ask again
	case rep.State == 2:
		tt.decide(ptx.id, false, 0)
		tt.release(ptx)
	case rep.State == 1:
		tt.decide(ptx.id, true, rep.Epoch)
		ptx.committing = true
		tt.mu.Unlock()
		e.clock.Update(rep.Epoch)
		if len(ptx.peers) > 0 {
			tt.logDecision(ptx.pool, ptx.id, rep.Epoch, txDecisionTTL) // before its writes, for its peers
		}
		if err := e.applyTx(tt, ptx, rep.Epoch, ptx.bulk); err != nil {
			e.log.Error("transaction part resolved with its coordinator failed to apply", "txid", ptx.id, "err", err)
		}
		return
	}
	tt.mu.Unlock()
}

func (e *Engine) callCoordinator(ctx context.Context, ptx *preparedTx) (*enginepb.TxStatusRep, error) {
	b, _ := proto.Marshal(&enginepb.TxStatusReq{Txid: ptx.id[:]})
	hdr, err := e.seal(enginepb.OpTxStatus, b)
	if err != nil {
		return nil, err
	}
	cl, err := e.peers.Get(ctx, ptx.coordAddr)
	if err != nil {
		return nil, err
	}
	r, err := cl.Call(ctx, rpc.Message{Opcode: enginepb.OpTxStatus, Target: ptx.coordTarget, Header: hdr}, nil)
	if err != nil {
		return nil, err
	}
	var rep enginepb.TxStatusRep
	if err := proto.Unmarshal(r.Header, &rep); err != nil {
		return nil, daoserr.Wrap(daoserr.Proto, err, "transaction status reply")
	}
	return &rep, nil
}

// txSweepEvery is how often the sweeper runs (tests stop it).
var txSweepEvery = time.Second

// txSweeper runs resolveExpired until ctx ends.
func (e *Engine) txSweeper(ctx context.Context) {
	t := time.NewTicker(txSweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.resolveExpired(ctx)
		}
	}
}
