package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security/capability"
)

// Collective operations (pool create and destroy, container destroy, ...) reach
// every rank over a tree instead of from one sender to each rank: the sender
// splits the ranks into `degree` groups and sends the request to the first rank
// of each group with the rest of the group; that rank runs the operation on its
// own targets and does the same with its group, and failures flow back up. A
// sender thus contacts `degree` ranks whatever the system's size, and the time
// to reach N ranks grows like log(N).
//
// The handler blocks one of target 0's service goroutines while its subtree
// answers; collective operations are rare control operations.
//
// Only servers may start or forward a collective: its request, peers
// included, travels sealed (capability.Seal) like every server-only request,
// and each engine that forwards it seals what it sends its children. The
// operation's own message is sealed once, by the server that starts the
// collective, and reaches every engine unchanged.

// DefaultDegree is the tree's fan-out.
const DefaultDegree = 4

// maxCollectivePeers bounds a collective's peer list: far more ranks than a
// system has, few enough that a list cannot make an engine work for long.
const maxCollectivePeers = 1 << 16

// Dialer returns a client for a data-plane address.
type Dialer func(ctx context.Context, addr string) (*rpc.Client, error)

// A Sealer seals a request only servers may send (capability.Seal with the
// server key); nil seals unsigned, as insecure systems do.
type Sealer func(op uint16, msg []byte) ([]byte, error)

func (s Sealer) seal(op uint16, msg []byte) ([]byte, error) {
	if s == nil {
		return capability.Seal(nil, op, msg)
	}
	return s(op, msg)
}

// Broadcast runs op (with message header hdr, sealed already if op is one of
// enginepb.ServerOps) on every target of every peer, over a tree of the
// given degree rooted at the caller, and returns the ranks where it failed.
// seal seals the collective requests the caller sends. pace, when set, is
// called before each message is sent (the collective benchmark models a
// sender's per-message cost with it).
func Broadcast(ctx context.Context, dial Dialer, seal Sealer, op uint16, hdr []byte, peers []*enginepb.Peer, degree int, pace func()) map[uint32]error {
	failed, _ := BroadcastEpoch(ctx, dial, seal, op, hdr, peers, degree, pace)
	return failed
}

// BroadcastEpoch is Broadcast that also returns the largest epoch the
// targets answered with (an ObjUpdateRep): the clock of the system, for
// OpEpochSync.
func BroadcastEpoch(ctx context.Context, dial Dialer, seal Sealer, op uint16, hdr []byte, peers []*enginepb.Peer, degree int, pace func()) (map[uint32]error, uint64) {
	if degree < 1 {
		degree = DefaultDegree
	}
	failed := map[uint32]error{}
	var epoch uint64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, group := range split(peers, degree) {
		if pace != nil {
			pace()
		}
		wg.Go(func() {
			errs, e := sendToSubtree(ctx, dial, seal, op, hdr, group, degree)
			mu.Lock()
			for r, err := range errs {
				failed[r] = err
			}
			epoch = max(epoch, e)
			mu.Unlock()
		})
	}
	wg.Wait()
	return failed, epoch
}

// split cuts peers into at most n contiguous groups of near-equal size.
func split(peers []*enginepb.Peer, n int) [][]*enginepb.Peer {
	var out [][]*enginepb.Peer
	for i := 0; i < len(peers); {
		size := (len(peers) - i + n - len(out) - 1) / (n - len(out))
		out = append(out, peers[i:i+size])
		i += size
	}
	return out
}

// sendToSubtree sends the collective to group[0] with the rest of the group.
func sendToSubtree(ctx context.Context, dial Dialer, seal Sealer, op uint16, hdr []byte, group []*enginepb.Peer, degree int) (map[uint32]error, uint64) {
	head := group[0]
	unreached := func(err error) map[uint32]error {
		out := map[uint32]error{head.Rank: err}
		for _, p := range group[1:] {
			out[p.Rank] = daoserr.Newf(daoserr.Unreach, "not reached: rank %d, its parent in the collective tree, failed", head.Rank)
		}
		return out
	}
	req, err := proto.Marshal(&enginepb.CollectiveReq{Op: uint32(op), Header: hdr, Peers: group[1:], Degree: uint32(degree), Rank: head.Rank})
	if err != nil {
		return unreached(daoserr.Wrap(daoserr.Misc, err, "encode the collective for rank %d", head.Rank)), 0
	}
	if req, err = seal.seal(enginepb.OpCollective, req); err != nil {
		return unreached(daoserr.Context(err, "collective for rank %d", head.Rank)), 0
	}
	cl, err := dial(ctx, head.Addr)
	if err != nil {
		return unreached(daoserr.Context(err, "rank %d", head.Rank)), 0
	}
	reply, err := cl.Call(ctx, rpc.Message{Opcode: enginepb.OpCollective, Target: 0, Header: req}, nil)
	if err != nil {
		return unreached(daoserr.Context(err, "rank %d", head.Rank)), 0
	}
	var rep enginepb.CollectiveRep
	if err := proto.Unmarshal(reply.Header, &rep); err != nil {
		return unreached(daoserr.Wrap(daoserr.Proto, err, "rank %d: collective reply", head.Rank)), 0
	}
	out := map[uint32]error{}
	for _, f := range rep.Failed {
		out[f.Rank] = &daoserr.Error{Code: daoserr.Code(f.Code), Msg: f.Msg}
	}
	return out, rep.Epoch
}

// collective is the OpCollective handler. serverOnly has admitted the
// collective request itself; the inner request is admitted here, once, and
// then run on each target by the unwrapped handler: its copies on the
// targets are one request, not replays of it.
func (e *Engine) collective(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.CollectiveReq
	if err := decode(req, &m); err != nil {
		return rpc.Response{}, err
	}
	op := uint16(m.Op)
	h := e.handlers[op]
	if h == nil || op == enginepb.OpCollective {
		return rpc.Response{}, daoserr.Newf(daoserr.NoSys, "collective of opcode %d: not an operation of this engine", m.Op)
	}
	if err := checkPeers(&m); err != nil {
		return rpc.Response{}, err
	}
	inner, innerErr := m.Header, error(nil)
	if enginepb.ServerOps[op] {
		g := gateOf(ctx)
		if g == nil { // not admitted by serverOnly: cannot happen, OpCollective is a server op
			return rpc.Response{}, daoserr.Newf(daoserr.NoPerm, "collective of %s: not admitted as a server request", enginepb.OpName(op))
		}
		// Refused here, it is still forwarded: each engine admits it for itself.
		inner, innerErr = g.admit(op, m.Header, req.Peer)
	}
	var wg sync.WaitGroup
	var failed map[uint32]error
	var subEpoch uint64
	wg.Go(func() {
		failed, subEpoch = BroadcastEpoch(ctx, e.peers.Get, e.opts.Seal, op, m.Header, m.Peers, int(m.Degree), e.opts.collectivePace)
	})
	errs := make([]error, len(e.targets))
	epochs := make([]uint64, len(e.targets))
	var local sync.WaitGroup
	for t := range e.targets {
		if innerErr != nil {
			errs[0] = innerErr // once for the rank, not per target
			break
		}
		local.Go(func() {
			defer func() { // as the RPC server does for a handler called directly
				if r := recover(); r != nil {
					e.log.Error("handler panicked in a collective", "opcode", op, "target", t, "panic", r, "stack", string(debug.Stack()))
					errs[t] = daoserr.Newf(daoserr.Misc, "target %d: opcode %d failed inside the engine (logged)", t, op)
				}
			}()
			r, err := h(ctx, &rpc.Request{Opcode: op, Target: uint32(t), Header: inner, Peer: req.Peer})
			if err != nil {
				errs[t] = fmt.Errorf("target %d: %w", t, err)
				return
			}
			if op == enginepb.OpEpochSync {
				var er enginepb.ObjUpdateRep
				if proto.Unmarshal(r.Header, &er) == nil {
					epochs[t] = er.Epoch
				}
			}
		})
	}
	local.Wait()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		failed[m.Rank] = err
	}
	rep := &enginepb.CollectiveRep{Epoch: max(subEpoch, slices.Max(epochs))}
	for r, err := range failed {
		code := daoserr.CodeOf(err)
		if code == 0 {
			code = daoserr.Misc
		}
		rep.Failed = append(rep.Failed, &enginepb.RankError{Rank: r, Code: int32(code), Msg: err.Error()})
	}
	b, _ := proto.Marshal(rep)
	return rpc.Response{Header: b}, nil
}

// checkPeers refuses a peer list that would make the tree loop or grow out
// of bounds: one naming the receiver itself (by the rank the collective
// addresses it as), naming a rank twice, or too long.
func checkPeers(m *enginepb.CollectiveReq) error {
	if n := len(m.Peers); n > maxCollectivePeers {
		return daoserr.Newf(daoserr.Inval, "collective of %s to rank %d: %d peers, at most %d", enginepb.OpName(uint16(m.Op)), m.Rank, n, maxCollectivePeers)
	}
	seen := make(map[uint32]bool, len(m.Peers))
	for _, p := range m.Peers {
		switch {
		case p.Rank == m.Rank:
			return daoserr.Newf(daoserr.Inval, "collective of %s: its peers name the receiver's own rank %d", enginepb.OpName(uint16(m.Op)), m.Rank)
		case seen[p.Rank]:
			return daoserr.Newf(daoserr.Inval, "collective of %s to rank %d: its peers name rank %d twice", enginepb.OpName(uint16(m.Op)), m.Rank, p.Rank)
		}
		seen[p.Rank] = true
	}
	return nil
}
