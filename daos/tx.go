package daos

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/enginepb"
)

// Transactions (daos_tx_open, daos_tx_commit, ...). A transaction reads the
// container as it was at one epoch, chosen when it opens, and buffers its
// updates and punches here; Commit sends them, and the dkeys it read, to the
// targets concerned. A target refuses with DER_TX_RESTART when another
// transaction is committing on one of those dkeys or one changed after the
// transaction's epoch; Restart then starts it again at a new epoch. Commit
// is all or nothing for readers: while a transaction commits, reads of its
// dkeys wait (the client retries DER_INPROGRESS), so nobody sees half of it.
//
// The transaction's own buffered writes are not visible to its fetches: they
// read the container at the transaction's epoch.
//
// With one target the commit takes one round trip (prepare and commit
// together). With several the client prepares each and commits them all at
// one epoch; the prepared state lives in the engines' memory, so an engine
// restarting between the two steps, or a client dying between them, can
// leave a transaction applied on some targets only (the durable DTX log
// comes with redundancy).

// inProgressRetries bounds the retries of DER_INPROGRESS (about 10 s).
const inProgressRetries = 200

// backoff sleeps before retry number attempt: 1 ms, doubling to 64 ms.
func backoff(ctx context.Context, attempt int) error {
	d := time.Millisecond << min(attempt, 6)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Tx is a transaction of a container handle.
type Tx struct {
	cont     *Cont
	readOnly bool // a snapshot's
	mu       sync.Mutex
	id       [16]byte
	epoch    uint64
	state    txState
	reads    map[placement.Shard][]*enginepb.TxKey
	writes   map[placement.Shard]*txPart
	order    []placement.Shard // shards in the order first written, for stable commits
	// ver is the pool map version the transaction's shards were placed
	// with; mapChanged says a later operation met another: the transaction
	// must restart, placed again with one map.
	ver        uint32
	mapChanged bool
}

type txState int

const (
	txOpen txState = iota
	txCommitted
	txAborted
	txClosed
)

// txPart is what one target commits.
type txPart struct {
	writes []*enginepb.TxWrite
	bulk   [][]byte
}

// TxOpen opens a transaction (daos_tx_open) reading the container at the
// system's current epoch.
func (c *Cont) TxOpen(ctx context.Context) (*Tx, error) {
	tx := &Tx{cont: c}
	if err := tx.begin(ctx); err != nil {
		return nil, err
	}
	return tx, nil
}

// TxOpenSnap opens a read-only transaction at a snapshot's epoch
// (daos_tx_open_snap): fetches and listings see the container as it was.
func (c *Cont) TxOpenSnap(epoch uint64) (*Tx, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	if epoch == 0 {
		return nil, daoserr.New(daoserr.Inval, "open a snapshot at epoch 0").WithResolution("give a snapshot's epoch (daos cont list-snaps)")
	}
	return &Tx{cont: c, readOnly: true, epoch: epoch}, nil
}

// begin gives the transaction a new id and epoch: the clock of an engine
// of the pool (engines move their clocks past the epochs they read at, so
// what commits later orders after it).
func (tx *Tx) begin(ctx context.Context) error {
	c := tx.cont
	if err := c.usable(); err != nil {
		return err
	}
	rand.Read(tx.id[:])
	epoch, err := c.Pool.clockNow(ctx, c)
	if err != nil {
		return daoserr.Context(err, "open a transaction in container %s", c.Info.GetLabel())
	}
	tx.epoch, tx.state = epoch, txOpen
	tx.reads, tx.writes, tx.order = map[placement.Shard][]*enginepb.TxKey{}, map[placement.Shard]*txPart{}, nil
	tx.ver, tx.mapChanged = 0, false
	return nil
}

// clockNow is an epoch at or after every epoch this client has seen: the
// clock of the first of the pool's engines that answers, or the newest epoch
// an update of this client got, if that is later (an engine's clock may lag
// another's; a transaction must see what its own process wrote).
func (p *Pool) clockNow(ctx context.Context, c *Cont) (uint64, error) {
	var last error
	for _, m := range p.Members {
		var rep enginepb.ObjUpdateRep
		err := c.send(ctx, dest{Shard: placement.Shard{Rank: m.Rank}}, enginepb.OpEpochQuery, &enginepb.EpochSyncReq{}, &rep)
		if err == nil {
			return max(rep.Epoch, p.seen.Load()), nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return 0, daoserr.Context(last, "read the engines' clocks")
}

// sawEpoch notes an epoch an update or commit of this client got.
func (p *Pool) sawEpoch(e uint64) {
	for {
		cur := p.seen.Load()
		if e <= cur || p.seen.CompareAndSwap(cur, e) {
			return
		}
	}
}

// Epoch is the epoch the transaction reads at (daos_tx_hdl2epoch).
func (tx *Tx) Epoch() uint64 { return tx.epoch }

func (tx *Tx) usable(writing bool) error {
	switch {
	case tx.state == txCommitted:
		return daoserr.New(daoserr.NoHdl, "transaction already committed").WithResolution("open a new one")
	case tx.state == txAborted:
		return daoserr.New(daoserr.NoHdl, "transaction aborted").WithResolution("restart it (Restart) or open a new one")
	case tx.state == txClosed:
		return daoserr.New(daoserr.NoHdl, "transaction closed")
	case writing && tx.readOnly:
		return daoserr.New(daoserr.NoPerm, "a snapshot's transaction is read-only")
	}
	return tx.cont.usable()
}

// layout is o's current layout, noting its map version: a transaction's
// parts are placed with one map.
func (tx *Tx) layout(o *Obj) (placement.Layout, error) {
	l, err := o.currentLayout()
	if err != nil {
		return l, err
	}
	if tx.ver == 0 {
		tx.ver = l.Version
	} else if tx.ver != l.Version {
		tx.mapChanged = true
	}
	return l, nil
}

// noteRead remembers a dkey read in group g (dkey nil: the object's dkeys
// were listed), for the group's leader to check at commit.
func (tx *Tx) noteRead(o *Obj, g int, dkey []byte) error {
	if tx.readOnly {
		return nil
	}
	l, err := tx.layout(o)
	if err != nil {
		return err
	}
	s := o.groupLeader(l, g).Shard
	tx.reads[s] = append(tx.reads[s], &enginepb.TxKey{Oid: o.oid, Dkey: dkey})
	return nil
}

// Fetch reads iods under dkey at the transaction's epoch.
func (tx *Tx) Fetch(ctx context.Context, o *Obj, dkey []byte, iods []IOD, sgls [][]byte) ([]FetchResult, error) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usable(false); err != nil {
		return nil, err
	}
	if len(sgls) != len(iods) {
		return nil, daoserr.Newf(daoserr.Inval, "fetch object %s: %d IODs and %d buffers", o.OID, len(iods), len(sgls))
	}
	res, err := o.fetchAt(ctx, tx.epoch, 0, dkey, iods, sgls)
	if err == nil {
		err = tx.noteRead(o, o.dkeyGroup(dkey), dkey)
	}
	return res, err
}

// ListDkeys lists the object's dkeys at the transaction's epoch.
func (tx *Tx) ListDkeys(ctx context.Context, o *Obj, anchor *Anchor, max int) ([][]byte, error) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usable(false); err != nil {
		return nil, err
	}
	keys, err := o.listDkeysAt(ctx, tx.epoch, anchor, max)
	for g := range o.groups() {
		if err == nil {
			err = tx.noteRead(o, g, nil)
		}
	}
	return keys, err
}

// ListAkeys lists dkey's akeys at the transaction's epoch.
func (tx *Tx) ListAkeys(ctx context.Context, o *Obj, dkey []byte, anchor *Anchor, max int) ([][]byte, error) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usable(false); err != nil {
		return nil, err
	}
	keys, err := o.listAkeysAt(ctx, tx.epoch, dkey, anchor, max)
	if err == nil {
		err = tx.noteRead(o, o.dkeyGroup(dkey), dkey)
	}
	return keys, err
}

// add buffers a write for every shard of group g of o (each replica takes
// part in the commit).
func (tx *Tx) add(o *Obj, g int, w *enginepb.TxWrite, bufs [][]byte) error {
	l, err := tx.layout(o)
	if err != nil {
		return err
	}
	pm, err := tx.cont.Pool.poolMap()
	if err != nil {
		return err
	}
	shards := slices.Clone(l.Group(g)) // l is the cached layout: not appended to
	for _, s := range l.Group(g) {
		// a moving shard's old place still serves reads: it takes the write too
		if t, found := pm.Target(s.Prev); s.HasPrev && found {
			shards = append(shards, placement.Shard{Rank: t.Rank, Target: t.Index, ID: t.ID})
		}
	}
	for _, s := range shards {
		part := tx.writes[s]
		if part == nil {
			part = &txPart{}
			tx.writes[s] = part
			tx.order = append(tx.order, s)
		}
		part.writes = append(part.writes, w)
		part.bulk = append(part.bulk, bufs...)
	}
	return nil
}

// Update buffers an update of iods under dkey; the caller's buffers must
// stay unchanged until Commit returns (DAOS_TF_ZERO_COPY: no copy is made).
func (tx *Tx) Update(ctx context.Context, o *Obj, dkey []byte, iods []IOD, sgls [][]byte) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usable(true); err != nil {
		return err
	}
	if len(sgls) != len(iods) {
		return daoserr.Newf(daoserr.Inval, "update object %s: %d IODs and %d buffers", o.OID, len(iods), len(sgls))
	}
	m, err := o.ioReq(dkey, iods, 0)
	if err != nil {
		return err
	}
	for i, d := range iods {
		if want := iodSize(d); uint64(len(sgls[i])) != want {
			return daoserr.Newf(daoserr.IOInval, "update object %s dkey %q akey %q: buffer of %d bytes, the IOD describes %d", o.OID, dkey, d.Akey, len(sgls[i]), want)
		}
	}
	if o.isEC() {
		return tx.addEC(ctx, o, dkey, iods, sgls)
	}
	return tx.add(o, o.dkeyGroup(dkey), &enginepb.TxWrite{Oid: o.oid, Dkey: dkey, Iods: m.Iods}, sgls)
}

// iodSize is how many bytes an IOD's values take.
func iodSize(d IOD) uint64 {
	if d.Type == Single {
		return d.Size
	}
	var n uint64
	for _, r := range d.Recxs {
		n += r.Nr * d.Size
	}
	return n
}

// Punch buffers a punch of the whole object.
func (tx *Tx) Punch(ctx context.Context, o *Obj) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usable(true); err != nil {
		return err
	}
	for g := range o.groups() {
		if err := tx.add(o, g, &enginepb.TxWrite{Oid: o.oid, Punch: true}, nil); err != nil {
			return err
		}
	}
	return nil
}

// PunchDkeys buffers punches of dkeys.
func (tx *Tx) PunchDkeys(ctx context.Context, o *Obj, dkeys [][]byte) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usable(true); err != nil {
		return err
	}
	for _, d := range dkeys {
		if len(d) == 0 {
			return daoserr.Newf(daoserr.Inval, "punch object %s: empty dkey", o.OID)
		}
	}
	for _, d := range dkeys {
		if err := tx.add(o, o.dkeyGroup(d), &enginepb.TxWrite{Oid: o.oid, Dkey: d, Punch: true}, nil); err != nil {
			return err
		}
	}
	return nil
}

// PunchAkeys buffers punches of akeys under dkey.
func (tx *Tx) PunchAkeys(ctx context.Context, o *Obj, dkey []byte, akeys [][]byte) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usable(true); err != nil {
		return err
	}
	if len(dkey) == 0 || len(akeys) == 0 {
		return daoserr.Newf(daoserr.Inval, "punch object %s: give a dkey and akeys", o.OID)
	}
	return tx.add(o, o.dkeyGroup(dkey), &enginepb.TxWrite{Oid: o.oid, Dkey: dkey, Akeys: akeys, Punch: true}, nil)
}

// Commit makes the transaction's writes visible, all at one epoch, or
// fails: DER_TX_RESTART means another writer got there first, and Restart
// then lets the caller run the transaction again. A read-only transaction
// commits nothing (its reads were consistent when made).
func (tx *Tx) Commit(ctx context.Context) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usable(false); err != nil {
		return err
	}
	if len(tx.writes) == 0 {
		tx.state = txCommitted
		return nil
	}
	if tx.mapChanged {
		tx.state = txAborted
		return daoserr.Newf(daoserr.TxRestart, "commit transaction in container %s: the pool map changed while it ran", tx.cont.Info.GetLabel()).
			WithResolution("restart it (Restart): its operations are placed again with the new map")
	}
	committed, err := tx.commit(ctx)
	if daoserr.Is(err, daoserr.Stale) && !committed {
		// refused at prepare, before anything was applied: placed again on restart
		tx.cont.Pool.refreshMap(ctx, tx.ver)
		err = daoserr.Wrap(daoserr.TxRestart, err, "the pool map changed")
	}
	tx.state = txAborted
	if committed {
		tx.state = txCommitted
	}
	return daoserr.Context(err, "commit transaction in container %s", tx.cont.Info.GetLabel())
}

func (tx *Tx) prepareReq(s placement.Shard, one bool) *enginepb.TxPrepareReq {
	m := &enginepb.TxPrepareReq{Pool: uuidBytes(tx.cont.Pool.Info.Uuid), Cont: uuidBytes(tx.cont.Info.Uuid), Txid: tx.id[:],
		Epoch: tx.epoch, Reads: tx.reads[s], Commit: one}
	if part := tx.writes[s]; part != nil {
		m.Writes = part.writes
	}
	return m
}

// commit sends the transaction's parts. committed says the transaction is
// committed (decided), even if err reports that a part did not confirm it.
func (tx *Tx) commit(ctx context.Context) (committed bool, err error) {
	c := tx.cont
	// every target the transaction read from and did not write to must
	// still check its reads: it takes part too
	for s := range tx.reads {
		if tx.writes[s] == nil {
			tx.writes[s] = &txPart{}
			tx.order = append(tx.order, s)
		}
	}
	// Once a part is sent, the caller's cancel must not leave the outcome
	// unknown or locks behind: the protocol runs to its end (bounded).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), txCommitTimeout)
	defer cancel()
	if len(tx.order) == 1 {
		s := tx.order[0]
		var rep enginepb.TxPrepareRep
		r, err := c.rpc(ctx, dest{s, tx.ver}, enginepb.OpTxPrepare, tx.prepareReq(s, true), tx.writes[s].bulk, nil)
		if err = decodeReply(r, err, &rep); err != nil {
			return false, outcome(err)
		}
		c.Pool.sawEpoch(rep.Epoch)
		return true, nil
	}
	// Two phases. The first part is the coordinator: prepared first, it
	// records the decision when committed first; the others, prepared
	// together, ask it if the client's word never comes.
	coord := tx.order[0]
	coordAddr, err := c.target(coord.Rank)
	if err != nil {
		return false, err
	}
	// Every part knows the others: if the coordinator is excluded before a
	// part learns the outcome, the parts settle it among themselves (any
	// committed: commit; else abort), see server/engine/replicate.go.
	var peers []*enginepb.TxPeer
	for _, s := range tx.order[1:] {
		addr, err := c.target(s.Rank)
		if err != nil {
			return false, err
		}
		peers = append(peers, &enginepb.TxPeer{Rank: s.Rank, Addr: addr, Target: s.Target})
	}
	var commitEpoch uint64
	var mu sync.Mutex
	prepare := func(s placement.Shard) error {
		m := tx.prepareReq(s, false)
		m.Coordinator, m.CoordAddr, m.CoordTarget, m.CoordRank, m.Peers = s == coord, coordAddr, coord.Target, coord.Rank, peers
		var rep enginepb.TxPrepareRep
		r, err := c.rpc(ctx, dest{s, tx.ver}, enginepb.OpTxPrepare, m, tx.writes[s].bulk, nil)
		if err = decodeReply(r, err, &rep); err == nil {
			mu.Lock()
			commitEpoch = max(commitEpoch, rep.Epoch)
			mu.Unlock()
		}
		return err
	}
	sent := []placement.Shard{coord} // every part a prepare went to: it may hold locks
	perr := prepare(coord)
	if perr == nil {
		sent = tx.order
		errs := make([]error, len(tx.order))
		var wg sync.WaitGroup
		for i, s := range tx.order[1:] {
			wg.Go(func() { errs[i+1] = prepare(s) })
		}
		wg.Wait()
		perr = errors.Join(errs...)
	}
	finish := func(s placement.Shard, abort bool) error {
		m := &enginepb.TxCommitReq{Pool: uuidBytes(c.Pool.Info.Uuid), Cont: uuidBytes(c.Info.Uuid), Txid: tx.id[:],
			Epoch: commitEpoch, Abort: abort, Coordinator: s == coord}
		// no map version: a part prepared is committed or aborted whatever
		// the map has become meanwhile
		return c.send(ctx, dest{Shard: s}, enginepb.OpTxCommit, m, nil)
	}
	abortAll := func() {
		for _, s := range sent {
			finish(s, true) // a part that misses it asks the coordinator, which decided to abort
		}
	}
	if perr != nil {
		abortAll()
		return false, perr
	}
	if txAfterPrepare != nil {
		txAfterPrepare(coord)
	}
	if err := finish(coord, false); err != nil {
		err = daoserr.Context(err, "commit at the coordinator (rank %d target %d)", coord.Rank, coord.Target)
		if daoserr.Is(err, daoserr.TxRestart) { // it decided to abort: tell the others now
			abortAll()
			return false, err
		}
		// Unknown (or its apply failed after deciding): the others learn the
		// outcome from the coordinator; aborting them could split it.
		return false, outcome(err)
	}
	c.Pool.sawEpoch(commitEpoch)
	if txAfterDecide != nil {
		txAfterDecide(coord)
	}
	// decided: the others commit now, or learn it from the coordinator
	errs := make([]error, len(tx.order))
	var wg sync.WaitGroup
	for i, s := range tx.order[1:] {
		wg.Go(func() { errs[i+1] = finish(s, false) })
	}
	wg.Wait()
	var ferr error
	for i, err := range errs[1:] {
		if err != nil {
			s := tx.order[i+1]
			ferr = errors.Join(ferr, daoserr.Context(err, "rank %d target %d", s.Rank, s.Target))
		}
	}
	if ferr != nil && c.Pool.refreshMap(ctx, c.Pool.CurrentMapVersion()) == nil && shardExcluded(c.Pool, coord) {
		// The coordinator is out of the map: the parts still in it settle
		// the transaction among themselves (committed if any of them
		// committed). Parts out of the map too do not count: one on the
		// coordinator's server may have taken a commit it decided late.
		accepted, fenced, live := 0, 0, 0
		for i, s := range tx.order[1:] {
			if shardExcluded(c.Pool, s) {
				continue
			}
			live++
			switch err := errs[i+1]; {
			case err == nil:
				accepted++
			case daoserr.Is(err, daoserr.TxRestart):
				fenced++ // aborted there: the parts settled without the coordinator
			}
		}
		switch {
		case accepted > 0:
			// committed: the others learn it from the parts that have it
		case fenced == live:
			// Every part in the map refused: the coordinator decided after
			// it was excluded (a paused server), and the parts, settling
			// without it, aborted. Its own part is on a target no reader
			// reaches, emptied when it is reintegrated.
			return false, daoserr.Wrap(daoserr.TxRestart, ferr, "the transaction was aborted: its coordinator was excluded from the pool map before its decision reached the other parts")
		default:
			// some parts did not answer: they settle it without the
			// coordinator, and may find that another part committed
			return false, daoserr.Wrap(daoserr.Misc, ferr, "transaction outcome unknown: its coordinator is excluded and some parts did not answer; they settle it among themselves")
		}
	}
	if ferr != nil {
		// not DER_TX_RESTART: running the transaction again would apply it twice
		return true, daoserr.Wrap(daoserr.Misc, ferr, "the transaction is committed (its coordinator decided), but not every part confirmed it; "+
			"the others learn it from the coordinator")
	}
	return true, nil
}

// Fault-test hooks (nil outside tests): txAfterPrepare runs once every part
// of a transaction of several parts is prepared, before the coordinator's
// commit is sent; txAfterDecide once the coordinator's commit returned,
// before the other parts' are sent. coord is the coordinator's shard.
var txAfterPrepare, txAfterDecide func(coord placement.Shard)

// txCommitTimeout bounds a commit once its first part is sent.
const txCommitTimeout = time.Minute

// outcome turns an error whose cause may be after the servers acted (the
// connection lost, a time-out) into one that does not say to restart: the
// transaction may have committed.
func outcome(err error) error {
	if daoserr.Is(err, daoserr.TxRestart) || daoserr.Is(err, daoserr.Stale) || daoserr.Is(err, daoserr.NoPerm) || daoserr.Is(err, daoserr.Inval) ||
		daoserr.Is(err, daoserr.NoHdl) || daoserr.Is(err, daoserr.Busy) || daoserr.Is(err, daoserr.IOInval) {
		return err // refused before anything was applied
	}
	return daoserr.Wrap(daoserr.Misc, err, "transaction outcome unknown: it may have committed")
}

// Abort drops the transaction's buffered writes.
func (tx *Tx) Abort(ctx context.Context) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usable(false); err != nil {
		return err
	}
	tx.state = txAborted
	return nil
}

// Restart starts an aborted or failed transaction again at a new epoch,
// with nothing buffered (daos_tx_restart): the caller redoes its reads and
// writes.
func (tx *Tx) Restart(ctx context.Context) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.readOnly {
		return daoserr.New(daoserr.NoPerm, "a snapshot's transaction cannot restart")
	}
	if tx.state == txClosed {
		return daoserr.New(daoserr.NoHdl, "transaction closed")
	}
	return tx.begin(ctx)
}

// Close releases the transaction (daos_tx_close); an open one is aborted.
func (tx *Tx) Close() {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	tx.state, tx.reads, tx.writes = txClosed, nil, nil
}

// shardExcluded reports whether the target of shard s is out of the pool's
// current map (DOWN or DOWNOUT).
func shardExcluded(p *Pool, s placement.Shard) bool {
	pm, err := p.poolMap()
	if err != nil {
		return false
	}
	t, ok := pm.FindTarget(s.Rank, int(s.Target))
	return ok && (t.State == placement.TargetDown || t.State == placement.TargetOut)
}
