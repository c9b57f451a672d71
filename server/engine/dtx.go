package engine

import (
	"encoding/binary"
	"errors"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/server/vos"
)

// The durable transaction table (DAOS's DTX table in VOS): what an engine
// must still know after a crash and restart, kept in each target's VOS
// (vos.Pool.DtxPut), so that a restart within SWIM's detection time (the
// engine is not excluded) splits no transaction:
//
//   - a prepared part ("P" + txid): its writes and their values, written
//     durably before the prepare is answered, dropped once the part is
//     applied or aborted. Reopened, it is locked again and resolved like any
//     part whose commit is late (the sweeper asks the coordinator, or the
//     peers);
//   - a commit decision ("D" + txid): a coordinator's or a replicated
//     write's leader's, durable before anyone hears of it; a participant's
//     (with peers that may ask it once their leader is excluded), logged
//     before its part is applied. Abort decisions are not kept: a
//     coordinator that knows nothing of a transaction presumes it aborted.
//
// Log order does the rest: an entry logged before an update is durable when
// the update is, so a part's "P" is dropped (asynchronously) only after its
// writes, and a participant's "D" precedes them. Reapplying a part after a
// crash writes the same values at the same epoch again, which VOS takes.
//
// Not covered: a replicated write's leader applies its own part (from the
// request's buffer) before it records its decision; it crashing between the
// two leaves its replicas to abort a write it holds, until the client,
// which got no answer, writes it again.

const (
	dtxPrepared = 'P'
	dtxDecided  = 'D'
)

func dtxKey(kind byte, id [16]byte) []byte { return append([]byte{kind}, id[:]...) }

// preparedRecord is the transaction table's record of a part prepared by
// m through container handle handle:
//
//	u32 header length | header (the prepare, without values) | handle | u64 stamp | values
//
// The part keeps its values as the record's tail (ptx.bulk), so they are
// copied out of the request once; the stamp, known once the part is
// locked, is filled in by persistPrepared.
func preparedRecord(m *enginepb.TxPrepareReq, handle [16]byte, bulk []byte) ([]byte, error) {
	hdr, err := proto.Marshal(&enginepb.TxPrepareReq{Pool: m.Pool, Cont: m.Cont, Txid: m.Txid, Reads: m.Reads, Writes: m.Writes,
		Coordinator: m.Coordinator, CoordAddr: m.CoordAddr, CoordTarget: m.CoordTarget, Replica: m.Replica, Peers: m.Peers, CoordRank: m.CoordRank})
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Proto, err, "transaction table entry")
	}
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(hdr)+16+8+len(bulk)), uint32(len(hdr)))
	b = append(b, hdr...)
	b = append(b, handle[:]...)
	b = append(b, make([]byte, 8)...)
	return append(b, bulk...), nil
}

// persistPrepared logs part ptx durably on its target, whose table tt holds
// it: rec is its preparedRecord, whose values ptx.bulk is.
func (e *Engine) persistPrepared(tt *txTable, ptx *preparedTx, rec []byte) error {
	binary.LittleEndian.PutUint64(rec[len(rec)-len(ptx.bulk)-8:], ptx.stamp)
	if err := ptx.pool.DtxPut(dtxKey(dtxPrepared, ptx.id), rec); err != nil {
		return daoserr.Context(err, "log prepared transaction part")
	}
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if cur := tt.prepared[ptx.id]; cur != ptx {
		// released meanwhile (aborted): its entry goes too, unless a
		// repeated prepare holds the id now (its own entry is that key)
		if cur == nil {
			ptx.pool.DtxDelAsync(dtxKey(dtxPrepared, ptx.id))
		}
		return nil
	}
	ptx.durable = true
	return nil
}

// decodePrepared reads a preparedRecord: the prepare (its Epoch the
// part's stamp), the container handle and the writes' values.
func decodePrepared(b []byte) (*enginepb.TxPrepareReq, [16]byte, []byte, error) {
	var handle [16]byte
	if len(b) < 4 {
		return nil, handle, nil, daoserr.New(daoserr.Proto, "prepared part record too short")
	}
	n := int(binary.LittleEndian.Uint32(b))
	if len(b) < 4+n+16+8 {
		return nil, handle, nil, daoserr.Newf(daoserr.Proto, "prepared part record of %d bytes, its header says %d", len(b), n)
	}
	var m enginepb.TxPrepareReq
	if err := proto.Unmarshal(b[4:4+n], &m); err != nil || len(m.Txid) != 16 || len(m.Pool) != 16 || len(m.Cont) != 16 {
		return nil, handle, nil, daoserr.New(daoserr.Proto, "prepared part record: bad header")
	}
	copy(handle[:], b[4+n:])
	m.Epoch = binary.LittleEndian.Uint64(b[4+n+16:])
	return &m, handle, b[4+n+16+8:], nil
}

// persistDecision logs a commit decision on p; wait says durably before it
// returns (else it is logged before whatever the caller writes next).
func persistDecision(p *vos.Pool, id [16]byte, epoch uint64, ttl time.Duration, wait bool) error {
	b := binary.LittleEndian.AppendUint64(nil, epoch)
	b = binary.LittleEndian.AppendUint64(b, uint64(time.Now().Add(ttl).UnixNano()))
	if !wait {
		p.DtxPutAsync(dtxKey(dtxDecided, id), b)
		return nil
	}
	return daoserr.Context(p.DtxPut(dtxKey(dtxDecided, id), b), "log transaction decision")
}

// reinstateTxs brings back each target's transaction table after the
// engine opened its pools: decisions first, then prepared parts, which are
// locked again and left to the sweeper (or, decided committed here, applied
// at once).
func (e *Engine) reinstateTxs() {
	now := time.Now()
	for ti, t := range e.targets {
		tt := &t.txs
		for _, p := range t.pools {
			entries := p.DtxEntries()
			tt.mu.Lock()
			tt.init()
			for k, v := range entries {
				if len(k) != 17 || k[0] != dtxDecided || len(v) != 16 {
					continue
				}
				id := [16]byte([]byte(k[1:]))
				expires := time.Unix(0, int64(binary.LittleEndian.Uint64(v[8:])))
				if now.After(expires) {
					p.DtxDelAsync([]byte(k))
					continue
				}
				tt.decisions[id] = txDecision{committed: true, epoch: binary.LittleEndian.Uint64(v), expires: expires, pool: p}
			}
			tt.mu.Unlock()
			for k, v := range entries {
				if len(k) != 17 || k[0] != dtxPrepared {
					continue
				}
				if err := e.reinstatePart(ti, tt, p, v); err != nil {
					e.log.Error("prepared transaction part not brought back (dropped)", "target", ti, "err", err)
					p.DtxDelAsync([]byte(k))
				}
			}
		}
	}
}

// reinstatePart brings back one prepared part of target ti.
func (e *Engine) reinstatePart(ti int, tt *txTable, p *vos.Pool, rec []byte) error {
	m, handle, bulk, err := decodePrepared(rec)
	if err != nil {
		return err
	}
	c := vos.UUID(m.Cont)
	reads, writes := txKeys(c, m)
	ptx := &preparedTx{id: [16]byte(m.Txid), cont: c, handle: handle, pool: p, stamp: m.Epoch, reads: reads, writes: writes, ops: m.Writes,
		bulk: bulk, coordinator: m.Coordinator, coordAddr: m.CoordAddr, coordTarget: m.CoordTarget,
		replica: m.Replica, poolID: vos.UUID(m.Pool), peers: m.Peers, coordRank: m.CoordRank, target: uint32(ti), durable: true}
	ptx.deadline = time.Now().Add(txPreparedTTL)
	if ptx.replica {
		ptx.deadline = time.Now().Add(replicaPreparedTTL)
	}
	e.clock.Update(ptx.stamp)
	tt.mu.Lock()
	d, decided := tt.decisions[ptx.id]
	if decided && d.committed {
		// decided here before the crash: applied again (the same values at
		// the same epoch), then dropped. A condition that fails again (the
		// crash came before its failure dropped the decision) aborts it.
		ptx.committing = true
		tt.lock(ptx)
		tt.mu.Unlock()
		e.log.Info("prepared transaction part committed again after a restart", "target", ti, "txid", ptx.id)
		err := e.applyWrites(ptx, d.epoch, ptx.bulk)
		tt.mu.Lock()
		if conditionFailed(ptx, err) {
			delete(tt.decisions, ptx.id)
			tt.decide(ptx.id, false, 0)
		}
		tt.release(ptx)
		tt.mu.Unlock()
		if conditionFailed(ptx, err) {
			return errors.Join(err, p.DtxDel(dtxKey(dtxDecided, ptx.id)))
		}
		return err
	}
	if ptx.coordinator {
		// A coordinator logs its commit decision before anyone hears of it:
		// with none, it had not decided, and it presumes an abort now (it
		// may have answered so already, before the crash).
		tt.decide(ptx.id, false, 0)
		tt.mu.Unlock()
		p.DtxDelAsync(dtxKey(dtxPrepared, ptx.id))
		e.log.Info("prepared transaction part of a coordinator aborted after a restart: it had not decided", "target", ti, "txid", ptx.id)
		return nil
	}
	tt.lock(ptx)
	tt.mu.Unlock()
	e.log.Info("prepared transaction part brought back after a restart: it waits for its outcome", "target", ti, "txid", ptx.id,
		"coordinator", ptx.coordinator)
	return nil
}
