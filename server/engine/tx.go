package engine

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/server/vos"
)

// Transactions, on one target. A client buffers a transaction's writes and
// remembers the dkeys it read and the epoch it read them at; at commit it
// sends each target its part (OpTxPrepare). The target locks those dkeys,
// and refuses (DER_TX_RESTART) when one is locked by another transaction or
// changed after the read epoch. With one target the prepare commits at once;
// with several the client commits each at the largest prepared clock
// (OpTxCommit), or aborts.
//
// While a transaction is prepared, I/O on its dkeys at or after its prepare
// stamp gets DER_INPROGRESS and the client retries: a reader cannot see half
// of a transaction, nor miss a part that will commit below its epoch. A
// prepared transaction whose commit does not come within txPreparedTTL is
// aborted, which frees its locks.
//
// Prepared state is in memory: an engine that restarts between a prepare and
// a commit loses its part (the durable DTX log is the redundancy issue's).

// txPreparedTTL bounds how long a prepared transaction holds its locks.
const txPreparedTTL = 30 * time.Second

type txObj struct {
	cont vos.UUID
	oid  vos.OID
}

type txKey struct {
	txObj
	dkey string // "": the whole object
}

type preparedTx struct {
	id       [16]byte
	cont     vos.UUID
	stamp    uint64 // the clock at prepare: I/O at or after it waits
	deadline time.Time
	keys     []txKey
	writes   []*enginepb.TxWrite
	bulk     []byte // the writes' values (copied: the request's buffer is reused)
}

// txTable is a target's prepared transactions, the dkeys they lock, and
// the writes in progress outside transactions.
type txTable struct {
	active   atomic.Int32 // prepared transactions: with none, reads of the latest skip the table
	mu       sync.Mutex
	prepared map[[16]byte]*preparedTx
	keys     map[txKey]*preparedTx
	objs     map[txObj]int // locked keys per object
	// writing holds the epochs of the updates and punches in progress
	// outside transactions, per dkey ("" for the whole object's): a
	// transaction may not prepare over one, and a read at an epoch must wait
	// for one stamped at or below it, whose data it could otherwise miss.
	writing map[txKey][]uint64
}

func (tt *txTable) init() {
	if tt.prepared == nil {
		tt.prepared, tt.keys, tt.objs = map[[16]byte]*preparedTx{}, map[txKey]*preparedTx{}, map[txObj]int{}
		tt.writing = map[txKey][]uint64{}
	}
}

// release drops a prepared transaction and its locks (tt.mu held).
func (tt *txTable) release(ptx *preparedTx) {
	if tt.prepared[ptx.id] != ptx {
		return
	}
	delete(tt.prepared, ptx.id)
	for _, k := range ptx.keys {
		if tt.keys[k] == ptx {
			delete(tt.keys, k)
			if tt.objs[k.txObj]--; tt.objs[k.txObj] <= 0 {
				delete(tt.objs, k.txObj)
			}
		}
	}
	tt.active.Add(-1)
}

// holder is the live transaction locking k (tt.mu held); an expired one is
// aborted on the way.
func (tt *txTable) holder(k txKey, now time.Time) *preparedTx {
	ptx := tt.keys[k]
	if ptx != nil && now.After(ptx.deadline) {
		tt.release(ptx)
		return nil
	}
	return ptx
}

func inProgress(oid vos.OID) error {
	return daoserr.Newf(daoserr.InProgress, "object %s: a transaction or write is committing there", oid).
		WithResolution("retry (the client library does)")
}

// beginWrite stamps an update or punch of oid's dkeys (none: the whole
// object) outside transactions with the engine's clock (or the epoch given)
// and registers it, or says DER_INPROGRESS when a prepared transaction holds
// one of them. The caller calls end when the write is done.
func (e *Engine) beginWrite(tt *txTable, epoch uint64, cont vos.UUID, oid vos.OID, dkeys ...[]byte) (stamp uint64, end func(), err error) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tt.init()
	o := txObj{cont, oid}
	var keys []txKey
	for _, d := range dkeys {
		keys = append(keys, txKey{o, string(d)})
	}
	if len(keys) == 0 {
		keys = []txKey{{o, ""}}
	}
	now := time.Now()
	if tt.holder(txKey{o, ""}, now) != nil || (len(dkeys) == 0 && tt.objs[o] > 0) {
		return 0, nil, inProgress(oid)
	}
	for _, k := range keys {
		if tt.holder(k, now) != nil {
			return 0, nil, inProgress(oid)
		}
	}
	stamp = e.stamp(epoch)
	for _, k := range keys {
		tt.writing[k] = append(tt.writing[k], stamp)
	}
	return stamp, func() {
		tt.mu.Lock()
		defer tt.mu.Unlock()
		for _, k := range keys {
			w := tt.writing[k]
			if i := slices.Index(w, stamp); i >= 0 {
				w = slices.Delete(w, i, i+1)
			}
			if len(w) == 0 {
				delete(tt.writing, k)
			} else {
				tt.writing[k] = w
			}
		}
	}, nil
}

// writeBelow says whether a write outside transactions stamped at or below
// epoch is in progress on k, or on its object (tt.mu held).
func (tt *txTable) writeBelow(k txKey, epoch uint64) bool {
	below := func(w []uint64) bool { return slices.ContainsFunc(w, func(s uint64) bool { return s <= epoch }) }
	if k.dkey != "" {
		return below(tt.writing[k]) || below(tt.writing[txKey{k.txObj, ""}])
	}
	for wk, w := range tt.writing {
		if wk.txObj == k.txObj && below(w) {
			return true
		}
	}
	return false
}

// readAt makes a read at epoch (0: the latest) of oid's dkey (nil: a listing
// of the object) safe: the clock moves past the epoch, so nothing stamped
// later lands inside it, and DER_INPROGRESS says to retry when a prepared
// transaction or a write in progress may still add to what it must see.
func (e *Engine) readAt(tt *txTable, epoch uint64, cont vos.UUID, oid vos.OID, dkey []byte) error {
	if epoch == 0 {
		if tt.active.Load() == 0 {
			return nil // the latest: what is durable now; only a prepared transaction makes it wait
		}
	} else {
		e.clock.Update(epoch)
	}
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tt.init()
	now := time.Now()
	o := txObj{cont, oid}
	keys := []txKey{{o, ""}}
	if dkey != nil {
		keys = append(keys, txKey{o, string(dkey)})
	} else if tt.objs[o] > 0 {
		for k := range tt.keys {
			if k.txObj == o {
				keys = append(keys, k)
			}
		}
	}
	limit := epoch
	if limit == 0 {
		limit = vos.EpochMax
	}
	for _, k := range keys {
		if h := tt.holder(k, now); h != nil && h.stamp <= limit {
			return inProgress(oid)
		}
	}
	if epoch != 0 && tt.writeBelow(txKey{o, string(dkey)}, epoch) {
		return inProgress(oid)
	}
	return nil
}

// txKeys are the dkeys a transaction part reads and writes, without repeats.
func txKeys(cont vos.UUID, m *enginepb.TxPrepareReq) []txKey {
	var keys []txKey
	add := func(oid *enginepb.OID, dkey []byte) {
		k := txKey{txObj{cont, vos.OID{Hi: oid.GetHi(), Lo: oid.GetLo()}}, string(dkey)}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, r := range m.Reads {
		add(r.Oid, r.Dkey)
	}
	for _, w := range m.Writes {
		add(w.Oid, w.Dkey)
	}
	return keys
}

func (e *Engine) txPrepare(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.TxPrepareReq
	need := enginepb.CapRead
	p, c, release, err := e.contReq(req, &m, need)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	if len(m.Writes) > 0 {
		if err := e.checkCap(req, &m, enginepb.CapWrite); err != nil {
			return rpc.Response{}, err
		}
	}
	if len(m.Txid) != 16 {
		return rpc.Response{}, daoserr.Newf(daoserr.Inval, "transaction id of %d bytes, want 16", len(m.Txid))
	}
	if _, err := splitTxBulk(m.Writes, req.Bulk); err != nil {
		return rpc.Response{}, err
	}
	keys := txKeys(c, &m)
	tt := &e.targets[req.Target].txs
	tt.mu.Lock()
	tt.init()
	now := time.Now()
	for _, k := range keys {
		if h := tt.holder(k, now); (h != nil && h.id != [16]byte(m.Txid)) || tt.writeBelow(k, vos.EpochMax) {
			tt.mu.Unlock()
			return rpc.Response{}, daoserr.Newf(daoserr.TxRestart, "object %s dkey %q: another write is in progress there", k.oid, k.dkey).
				WithResolution("restart the transaction")
		}
	}
	// Nothing may have changed what the transaction read, or what it
	// writes over, since its read epoch (the locks keep it so until commit).
	for _, k := range keys {
		latest, err := p.LatestEpoch(c, k.oid, []byte(k.dkey))
		if err != nil && !daoserr.Is(err, daoserr.Nonexist) {
			tt.mu.Unlock()
			return rpc.Response{}, err
		}
		if latest > m.Epoch {
			tt.mu.Unlock()
			return rpc.Response{}, daoserr.Newf(daoserr.TxRestart, "object %s dkey %q changed at epoch %d, after the transaction read at %d", k.oid, k.dkey, latest, m.Epoch).
				WithResolution("restart the transaction")
		}
	}
	if m.Commit { // the only participant: commit now, under the check just made
		epoch := e.clock.Now()
		err := e.applyTx(p, c, m.Writes, req.Bulk, epoch)
		tt.mu.Unlock()
		if err != nil {
			return rpc.Response{}, err
		}
		hdr, _ := proto.Marshal(&enginepb.TxPrepareRep{Epoch: epoch})
		return rpc.Response{Header: hdr}, nil
	}
	ptx := &preparedTx{id: [16]byte(m.Txid), cont: c, stamp: e.clock.Now(), deadline: now.Add(txPreparedTTL),
		keys: keys, writes: m.Writes, bulk: slices.Clone(req.Bulk)}
	if old := tt.prepared[ptx.id]; old != nil { // a retried prepare
		tt.release(old)
	}
	tt.prepared[ptx.id] = ptx
	for _, k := range keys {
		tt.keys[k] = ptx
		tt.objs[k.txObj]++
	}
	tt.active.Add(1)
	tt.mu.Unlock()
	hdr, _ := proto.Marshal(&enginepb.TxPrepareRep{Epoch: ptx.stamp})
	return rpc.Response{Header: hdr}, nil
}

func (e *Engine) txCommit(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.TxCommitReq
	p, c, release, err := e.contReq(req, &m, enginepb.CapRead)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	tt := &e.targets[req.Target].txs
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tt.init()
	ptx := tt.prepared[[16]byte(m.Txid)]
	if ptx == nil || ptx.cont != c {
		if m.Abort {
			return rpc.Response{}, nil // nothing prepared: nothing to abort
		}
		return rpc.Response{}, daoserr.New(daoserr.TxRestart, "transaction not prepared here (aborted after waiting too long for its commit, or the engine restarted)").
			WithResolution("restart the transaction")
	}
	defer tt.release(ptx)
	if m.Abort {
		return rpc.Response{}, nil
	}
	if m.Epoch < ptx.stamp {
		return rpc.Response{}, daoserr.Newf(daoserr.Inval, "commit epoch %d is below the prepared stamp %d", m.Epoch, ptx.stamp)
	}
	e.clock.Update(m.Epoch)
	return rpc.Response{}, e.applyTx(p, c, ptx.writes, ptx.bulk, m.Epoch)
}

// applyTx writes a transaction's part at its commit epoch.
func (e *Engine) applyTx(p *vos.Pool, c vos.UUID, writes []*enginepb.TxWrite, bulk []byte, epoch uint64) error {
	sgls, err := splitTxBulk(writes, bulk)
	if err != nil {
		return err
	}
	for i, w := range writes {
		oid := vos.OID{Hi: w.Oid.GetHi(), Lo: w.Oid.GetLo()}
		switch {
		case !w.Punch:
			err = p.Update(c, oid, vos.Epoch(epoch), 0, w.Dkey, vosIODs(w.Iods), sgls[i])
		case len(w.Dkey) == 0:
			err = p.PunchObject(c, oid, vos.Epoch(epoch), 0)
		case len(w.Akeys) == 0:
			err = p.PunchDkeys(c, oid, vos.Epoch(epoch), 0, [][]byte{w.Dkey})
		default:
			err = p.PunchAkeys(c, oid, vos.Epoch(epoch), 0, w.Dkey, w.Akeys)
		}
		if err != nil {
			return daoserr.Context(err, "transaction write %d (object %s dkey %q)", i, oid, w.Dkey)
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
