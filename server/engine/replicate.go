package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/server/vos"
)

// Replication (RP_n classes). A client sends an update or punch of a
// replicated object to the leader of the dkey's group: the first of the
// group's shards, in layout order, that is not rebuilding, under the map
// version the client placed it with (which the engine has checked is its
// own). The leader runs the write as a transaction over the group's shards
// (see tx.go), itself the coordinator:
//
//  1. it locks the dkey here and sends the write to every other shard of
//     the group (OpTxPrepare with replica set, under the client's own
//     capability), which lock it and keep it, invisible;
//  2. with every shard prepared it decides the epoch (the largest stamp),
//     applies the write here, conditions checked here only, and commits the
//     others;
//  3. it answers once every shard has applied it: every replica in the map
//     holds the write durably.
//
// A reader meeting a prepared write gets DER_INPROGRESS and retries, so a
// replica never serves a write its group has not finished, nor an older
// value once a newer one is answered. A shard that fails the prepare aborts
// the write (the client places it again, after the map has excluded the
// dead one); a shard that misses the commit asks the leader, as a
// transaction's participant asks its coordinator.

// replicaTimeout bounds a leader's wait for one replica: a replica that
// stopped answering fails the write, which the client places again once
// the map has excluded it.
var replicaTimeout = 10 * time.Second

// replicaPreparedTTL is how long a replica's prepared part waits for its
// leader's commit or abort before asking (normally they come within
// milliseconds).
var replicaPreparedTTL = 2 * time.Second

// replicaDecisionTTL is how long a replica remembers what it did with a
// part, for peers resolving a write whose leader died.
const replicaDecisionTTL = time.Minute

// SetRank tells the engine its rank (once the system has given it one): a
// replicated write's leader finds its own shard in the layout by it.
func (e *Engine) SetRank(rank uint32) { e.rank.Store(int64(rank)) }

// replicated reports whether oid's class keeps replicas.
func replicated(oid vos.OID) bool {
	o := placement.OID{Hi: oid.Hi, Lo: oid.Lo}
	return o.Redun().Valid() && o.GroupSize() > 1 && !o.Redun().IsEC()
}

// forwarded reports whether a client's write to oid under dkey (nil: the
// whole object) must reach more than this target: a replicated class, or,
// while the pool has shards moving (drain, extend, reintegration), a group
// with a shard whose data is still served elsewhere (Shard.Prev).
func (e *Engine) forwarded(pool []byte, oid vos.OID, dkey []byte) bool {
	if replicated(oid) {
		return true
	}
	if len(pool) != 16 {
		return false
	}
	pm := e.PoolMapOf(vos.UUID(pool))
	if pm == nil || !pm.moving {
		return false
	}
	po := placement.OID{Hi: oid.Hi, Lo: oid.Lo}
	if !po.Redun().Valid() || po.Redun().IsEC() {
		return false
	}
	l, err := pm.Layout(po)
	if err != nil {
		return false
	}
	groups := []int{0}
	if len(dkey) > 0 {
		groups[0] = placement.DkeyGroupOf(po, dkey)
	} else {
		groups = groups[:0]
		for g := range l.Groups {
			groups = append(groups, g)
		}
	}
	for _, g := range groups {
		for _, s := range l.Group(g) {
			if s.HasPrev {
				return true
			}
		}
	}
	return false
}

// groupLeader is the shard of grp that leads its writes: the first not
// rebuilding (the client computes it the same way).
func groupLeader(grp []placement.Shard) placement.Shard {
	for _, s := range grp {
		if !s.Rebuilding {
			return s
		}
	}
	return grp[0]
}

// replicaPeers are the shards a write to oid's group(s) led from this
// target must reach besides this one: the group of dkey, or with no dkey
// (an object punch) every group this target leads.
func (e *Engine) replicaPeers(pool vos.UUID, target uint32, oid vos.OID, dkey []byte) (*PoolMap, []placement.Shard, error) {
	pm := e.PoolMapOf(pool)
	if pm == nil {
		return nil, nil, daoserr.Newf(daoserr.Stale, "engine has no map of pool %s", pool).WithResolution("retry")
	}
	po := placement.OID{Hi: oid.Hi, Lo: oid.Lo}
	l, err := pm.Layout(po)
	if err != nil {
		return nil, nil, err
	}
	me := e.rank.Load()
	isMe := func(s placement.Shard) bool { return int64(s.Rank) == me && s.Target == target }
	var groups []int
	if len(dkey) > 0 {
		groups = []int{placement.DkeyGroupOf(po, dkey)}
	} else {
		for g := range l.Groups {
			if isMe(groupLeader(l.Group(g))) {
				groups = append(groups, g)
			}
		}
	}
	var peers []placement.Shard
	seen := map[placement.Shard]bool{}
	for _, g := range groups {
		grp := l.Group(g)
		if !isMe(groupLeader(grp)) {
			return nil, nil, daoserr.Newf(daoserr.Stale, "object %s group %d: this target (rank %d target %d) does not lead it in pool map version %d",
				oid, g, me, target, pm.Version()).WithResolution("the client library places the write again with the current map")
		}
		for _, s := range grp {
			if !isMe(s) && !seen[s] {
				seen[s] = true
				peers = append(peers, s)
			}
			// a shard moving (drain, extend, reintegration): the target that
			// still serves its reads takes the write too
			if s.HasPrev {
				if t, ok := pm.Target(s.Prev); ok {
					ps := placement.Shard{Rank: t.Rank, Target: t.Index, ID: t.ID}
					if !isMe(ps) && !seen[ps] {
						seen[ps] = true
						peers = append(peers, ps)
					}
				}
			}
		}
	}
	if len(groups) == 0 {
		return nil, nil, daoserr.Newf(daoserr.Stale, "object %s: this target leads none of its groups in pool map version %d", oid, pm.Version())
	}
	return pm, peers, nil
}

// replicate runs a client's write (writes, all of one object, with their
// bulk) as described above, and returns the epoch it was applied at.
func (e *Engine) replicate(ctx context.Context, req *rpc.Request, m capMsg, p *vos.Pool, c vos.UUID,
	oid vos.OID, dkey []byte, writes []*enginepb.TxWrite) (uint64, error) {
	g, err := e.checkCap(req, m, enginepb.CapWrite) // verified already: the cached grant
	if err != nil {
		return 0, err
	}
	capb, ver := m.GetCap(), m.GetMapVersion()
	pool := vos.UUID(m.GetPool())
	if len(writes) > 1 && writes[0].Flags != 0 {
		// checked here write by write, a later condition failing would leave
		// the earlier writes applied here and not on the replicas
		return 0, daoserr.Newf(daoserr.Inval, "object %s: a conditional punch of %d dkeys of a redundant object: one dkey a request", oid, len(writes)).
			WithResolution("the client library sends them one by one (DAOS punches one dkey a call)")
	}
	pm, peers, err := e.replicaPeers(pool, req.Target, oid, dkey)
	if err != nil {
		return 0, err
	}
	var txid [16]byte
	rand.Read(txid[:])
	me := uint32(e.rank.Load())
	myAddr := pm.Addr[me]

	// 1. Prepare: here (locks, no copy: the write is applied from the
	// request's buffer before the handler returns), then the peers.
	reads, wkeys := txKeys(c, &enginepb.TxPrepareReq{Writes: writes})
	ptx := &preparedTx{id: txid, cont: c, handle: g.Handle, pool: p, reads: reads, writes: wkeys, ops: writes, coordinator: true}
	tt := &e.targets[req.Target].txs
	if err := e.lockPart(tt, ptx, 0, true, false, nil); err != nil {
		return 0, err
	}
	epoch := ptx.stamp
	abortHere := func() {
		tt.mu.Lock()
		tt.decide(txid, false, 0)
		tt.release(ptx)
		tt.mu.Unlock()
	}
	// the peers' parts carry no conditions: they are checked here
	peerWrites := make([]*enginepb.TxWrite, len(writes))
	for i, w := range writes {
		peerWrites[i] = &enginepb.TxWrite{Oid: w.Oid, Dkey: w.Dkey, Iods: w.Iods, Punch: w.Punch, Akeys: w.Akeys}
	}
	var tpeers []*enginepb.TxPeer
	for _, s := range peers {
		tpeers = append(tpeers, &enginepb.TxPeer{Rank: s.Rank, Addr: pm.Addr[s.Rank], Target: s.Target})
	}
	pm2 := &enginepb.TxPrepareReq{Pool: pool[:], Cont: c[:], Txid: txid[:], Writes: peerWrites, Replica: true,
		CoordAddr: myAddr, CoordTarget: req.Target, CoordRank: me, Peers: tpeers, Cap: capb, MapVersion: ver}
	stamps := make([]uint64, len(peers))
	perrs := e.toPeers(ctx, pm, peers, func(ctx context.Context, cl *rpc.Client, i int, s placement.Shard) error {
		hdr, _ := proto.Marshal(pm2)
		r, err := cl.Call(ctx, rpc.Message{Opcode: enginepb.OpTxPrepare, Target: s.Target, Header: hdr, Bulk: [][]byte{req.Bulk}}, nil)
		if err != nil {
			return err
		}
		var rep enginepb.TxPrepareRep
		if err := proto.Unmarshal(r.Header, &rep); err != nil {
			return daoserr.Wrap(daoserr.Proto, err, "prepare reply")
		}
		stamps[i] = rep.Epoch
		return nil
	})
	finish := func(abort bool, to []placement.Shard) []error {
		// No map version: a map change since the prepare (a rebuild done)
		// must not refuse a live leader's commit; a replica that knows this
		// leader excluded refuses it anyway (txCommit's fence).
		cm := &enginepb.TxCommitReq{Pool: pool[:], Cont: c[:], Txid: txid[:], Epoch: epoch, Abort: abort, Cap: capb}
		return e.toPeers(context.WithoutCancel(ctx), pm, to, func(ctx context.Context, cl *rpc.Client, _ int, s placement.Shard) error {
			hdr, _ := proto.Marshal(cm)
			_, err := cl.Call(ctx, rpc.Message{Opcode: enginepb.OpTxCommit, Target: s.Target, Header: hdr}, nil)
			return err
		})
	}
	if err := errors.Join(perrs...); err != nil {
		abortHere()
		finish(true, peers) // a peer that misses it asks this leader, which decided to abort
		return 0, peerError(err)
	}

	// 2. Apply here first, keeping the dkey locked: a condition that fails
	// aborts all, and no reader here sees the write before every replica
	// has it. Until the decision is recorded, a replica asking hears
	// "undecided" (committing, no decision), never a commit that a failed
	// condition would then turn into an abort.
	for _, st := range stamps {
		epoch = max(epoch, st)
	}
	e.clock.Update(epoch)
	tt.mu.Lock()
	if _, decided := tt.decisions[txid]; decided || tt.prepared[txid] != ptx {
		// expired while the peers took their time: aborted here already
		tt.mu.Unlock()
		finish(true, peers)
		return 0, daoserr.New(daoserr.InProgress, "replicated write timed out while its replicas prepared").WithResolution("retry")
	}
	ptx.committing = true
	tt.mu.Unlock()
	releaseHere := func() {
		tt.mu.Lock()
		tt.release(ptx)
		tt.mu.Unlock()
	}
	// The decision is logged (dtx.go) once the write is applied here, and
	// recorded only then, before any replica hears of it (a replica asking
	// meanwhile hears "undecided"): asked after a restart, this leader must
	// still say committed. (Logged ahead of the write, it could be durable
	// without it: the leader's own part is not in the table.)
	cond := conditional(ptx)
	decideCommit := func() {
		if err := persistDecision(p, txid, epoch, txDecisionTTL, true); err != nil {
			e.log.Error("replicated write's decision not logged: a restart would forget it", "txid", txid, "err", err)
		}
		tt.mu.Lock()
		tt.decide(txid, true, epoch)
		tt.mu.Unlock()
		tt.notePersisted(txid, p)
	}
	if err := e.applyWrites(ptx, epoch, req.Bulk); err != nil {
		if cond && (daoserr.Is(err, daoserr.Exist) || daoserr.Is(err, daoserr.Nonexist)) {
			tt.mu.Lock()
			tt.decide(txid, false, 0) // nothing applied anywhere (one conditional write a request)
			tt.release(ptx)
			tt.mu.Unlock()
			finish(true, peers)
			return 0, err
		}
		// applied here in part: the replicas commit, so that they at least
		// agree (this one is repaired by the next rebuild of its target)
		decideCommit()
		releaseHere()
		finish(false, peers)
		return 0, err
	}
	decideCommit()
	// 3. The peers apply; then the dkey is released here.
	ferrs := finish(false, peers)
	releaseHere()
	if err := errors.Join(ferrs...); err != nil {
		return 0, daoserr.Wrap(daoserr.Unreach, err, "replicated write applied at epoch %#x here but not confirmed by every replica (they learn it from this leader)", epoch)
	}
	tt.mu.Lock()
	tt.forget(txid) // every peer has applied it: none will ask
	tt.mu.Unlock()
	return epoch, nil
}

// leaderExcluded reports whether the leader of replicated part ptx is out
// of the pool's current map: its word no longer counts (it may be a server
// that was paused, excluded, and resumed).
func (e *Engine) leaderExcluded(ptx *preparedTx) bool {
	pm := e.PoolMapOf(ptx.poolID)
	if pm == nil {
		return false
	}
	t, ok := pm.FindTarget(ptx.coordRank, int(ptx.coordTarget))
	return !ok || t.State == placement.TargetDown || t.State == placement.TargetOut
}

// peerExcluded reports whether peer's target is out of pool's map.
func (e *Engine) peerExcluded(pool vos.UUID, p *enginepb.TxPeer) bool {
	pm := e.PoolMapOf(pool)
	if pm == nil {
		return false
	}
	t, ok := pm.FindTarget(p.Rank, int(p.Target))
	return !ok || t.State == placement.TargetDown || t.State == placement.TargetOut
}

// askPeers resolves a part whose leader (coordinator) is excluded:
// committed if any peer committed it (at that epoch), aborted otherwise.
// Each peer asked first gets the map that excludes the leader, and from
// then on refuses a commit the leader decides late (txCommit's fence), so
// the set of committed parts cannot grow once a resolution has seen it,
// and every part resolving reaches the same outcome. Peers the map
// excludes too are not asked: their data is rebuilt from the others, and
// one on the coordinator's server may have taken its late commit.
func (e *Engine) askPeers(ctx context.Context, ptx *preparedTx) (*enginepb.TxStatusRep, error) {
	var ver uint32
	if pm := e.PoolMapOf(ptx.poolID); pm != nil {
		ver = pm.Version()
	}
	b, _ := proto.Marshal(&enginepb.TxStatusReq{Txid: ptx.id[:], Pool: ptx.poolID[:], MapVersion: ver})
	out := &enginepb.TxStatusRep{State: 2}
	for _, p := range ptx.peers {
		if int64(p.Rank) == e.rank.Load() && p.Target == ptx.target {
			continue // this part itself
		}
		if e.peerExcluded(ptx.poolID, p) {
			// Out of the map too: its word does not count. It may have
			// taken a commit the excluded coordinator decided late (it is
			// on the coordinator's server, paused with it, and learnt of
			// neither exclusion); its data is not read, and is emptied when
			// it is reintegrated.
			continue
		}
		hdr, err := e.seal(enginepb.OpTxStatus, b)
		if err != nil {
			return nil, err
		}
		cl, err := e.peers.Get(ctx, p.Addr)
		var r rpc.Reply
		if err == nil {
			r, err = cl.Call(ctx, rpc.Message{Opcode: enginepb.OpTxStatus, Target: p.Target, Header: hdr}, nil)
		}
		if err != nil {
			// A peer in the map that is merely slow or paused may hold a
			// commit: ask again later (unless it has been excluded meanwhile).
			if e.peerExcluded(ptx.poolID, p) {
				continue
			}
			return nil, daoserr.Context(err, "ask peer rank %d target %d", p.Rank, p.Target)
		}
		var rep enginepb.TxStatusRep
		if proto.Unmarshal(r.Header, &rep) == nil && rep.State == 1 {
			return &rep, nil
		}
	}
	e.log.Warn("replicated write resolved with its peers: its leader is excluded and no peer committed it: aborted",
		"txid", ptx.id, "leader_rank", ptx.coordRank)
	return out, nil
}

// peerError keeps a peer's DER code (DER_INPROGRESS, DER_STALE: the client
// retries) and says the write was not applied.
func peerError(err error) error {
	code := daoserr.CodeOf(err)
	if code == 0 {
		code = daoserr.Unreach
	}
	return daoserr.Wrap(code, err, "replicated write not applied (a replica refused or did not answer)")
}

// toPeers runs call on each of peers at once, each bounded by
// replicaTimeout, and returns their errors (nil ones for successes).
func (e *Engine) toPeers(ctx context.Context, pm *PoolMap, peers []placement.Shard,
	call func(ctx context.Context, cl *rpc.Client, i int, s placement.Shard) error) []error {
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, s := range peers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, replicaTimeout)
			defer cancel()
			addr := pm.Addr[s.Rank]
			cl, err := e.peers.Get(ctx, addr)
			if err == nil {
				err = call(ctx, cl, i, s)
			}
			if err != nil {
				errs[i] = daoserr.Context(err, "replica rank %d target %d", s.Rank, s.Target)
			}
		})
	}
	wg.Wait()
	return errs
}
