package engine

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security/capability"
	"github.com/godaos/godaos/server/vos"
)

// capCacheMax bounds each target's cache of verified capabilities: one entry
// per container handle in use on the target (a reopen adds one).
const capCacheMax = 4096

// capCache remembers, per target, the capabilities already verified, keyed
// by their bytes: a later request with the same bytes costs a map lookup, not
// a signature verification. Each target has its own, so targets share no lock.
type capCache struct {
	mu     sync.RWMutex
	grants map[string]*capability.Grant
}

// checkCap checks that m's capability grants need on m's pool and container,
// and returns what it grants.
func (e *Engine) checkCap(req *rpc.Request, m capMsg, need uint32) (*capability.Grant, error) {
	t := e.targets[req.Target]
	b := m.GetCap()
	t.caps.mu.RLock()
	g := t.caps.grants[string(b)]
	t.caps.mu.RUnlock()
	if g == nil {
		v, err := e.opts.Caps.Verify(b)
		if err != nil {
			return nil, err
		}
		g = &v
		t.caps.remember(string(b), g)
	}
	if err := g.Allows(time.Now(), m.GetPool(), m.GetCont(), need); err != nil {
		return g, err
	}
	if err := e.checkMapVersion(m.GetPool(), m.GetMapVersion()); err != nil {
		return g, err
	}
	return g, e.checkTargetIn(m.GetPool(), m.GetMapVersion(), req.Target)
}

// checkTargetIn refuses a client's request to a target that its own map has
// out of the pool (DOWN or DOWNOUT): an engine excluded while it was paused
// must not serve a client whose map is as old as its own.
func (e *Engine) checkTargetIn(pool []byte, v uint32, target uint32) error {
	rank := e.rank.Load()
	if v == 0 || len(pool) != 16 || rank < 0 {
		return nil
	}
	cur := e.PoolMapOf(vos.UUID(pool))
	if cur == nil {
		return nil
	}
	if t, ok := cur.FindTarget(uint32(rank), int(target)); ok && (t.State == placement.TargetDown || t.State == placement.TargetOut) {
		return daoserr.Newf(daoserr.Stale, "rank %d target %d is %s in pool map version %d", rank, target, t.State, cur.Version()).
			WithResolution("the client library refreshes its pool map and places the request elsewhere")
	}
	return nil
}

// remember adds a verified grant. A full cache first drops the expired
// grants, then, if that freed nothing, a random half of the others: those
// are verified again when they come back, a few at a time, instead of every
// handle in use at once as emptying the cache would make them.
func (c *capCache) remember(key string, g *capability.Grant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.grants == nil {
		c.grants = map[string]*capability.Grant{}
	}
	if len(c.grants) >= capCacheMax {
		now := time.Now()
		for k, old := range c.grants {
			if !now.Before(old.Expires) {
				delete(c.grants, k)
			}
		}
	}
	if len(c.grants) >= capCacheMax {
		keys := make([]string, 0, len(c.grants))
		for k := range c.grants {
			keys = append(keys, k)
		}
		rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		for _, k := range keys[:len(keys)/2] {
			delete(c.grants, k)
		}
	}
	c.grants[key] = g
}

// A serverGate admits the requests only servers may send (enginepb.ServerOps)
// to one engine: it opens their seal (capability.Seal), refuses a signed one
// it has seen before, and logs refusals at a bounded rate.
type serverGate struct {
	e       *Engine
	replays *capability.ReplayCache
	refused rateLimit
}

func newServerGate(e *Engine) *serverGate {
	return &serverGate{e: e, replays: capability.NewReplayCache(capability.DefaultReplayEntries)}
}

// gateKey is the context key under which serverOnly hands its gate to the
// handler it admitted to: the collective handler admits its inner request
// through the same gate (see collective).
type gateKey struct{}

func gateOf(ctx context.Context) *serverGate {
	g, _ := ctx.Value(gateKey{}).(*serverGate)
	return g
}

// serverOnly wraps the handler of an opcode only servers may send: it admits
// the sealed request before the handler decodes it. The replay check is done
// here, once per RPC received: a collective runs its inner request on each of
// its targets by calling the unwrapped handler (see collective).
func (g *serverGate) serverOnly(op uint16, h rpc.Handler) rpc.Handler {
	return func(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
		msg, err := g.admit(op, req.Header, req.Peer)
		if err != nil {
			return rpc.Response{}, err
		}
		r := *req
		r.Header = msg
		return h(context.WithValue(ctx, gateKey{}, g), &r)
	}
}

// admit opens a sealed request for op and refuses a replayed one.
func (g *serverGate) admit(op uint16, b []byte, peer string) ([]byte, error) {
	o, err := g.e.opts.Caps.Open(op, b)
	if err == nil && g.replays.Seen(o, time.Now()) {
		err = daoserr.Newf(daoserr.NoPerm, "%s (opcode %d): replayed server request (sent at %s, already received)",
			enginepb.OpName(op), op, o.Sent.UTC().Format(time.RFC3339Nano))
	}
	if err != nil {
		if ok, suppressed := g.refused.allow(time.Now()); ok {
			g.e.log.Warn("server request refused", "opcode", enginepb.OpName(op), "peer", peer, "err", err, "suppressed", suppressed)
		}
		return nil, err
	}
	return o.Msg, nil
}

// rateLimit lets one event a second through, counting those it holds back:
// a peer sending garbage cannot flood the log.
type rateLimit struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether an event at now may be logged and, if so, how many
// were suppressed since the last one that was.
func (r *rateLimit) allow(now time.Time) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Before(r.next) {
		r.suppressed++
		return false, 0
	}
	n := r.suppressed
	r.next, r.suppressed = now.Add(time.Second), 0
	return true, n
}
