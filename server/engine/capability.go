package engine

import (
	"context"
	"sync"
	"time"

	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security/capability"
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

// serverOnly wraps the handler of an opcode only servers may send: it opens
// the sealed request (capability.Seal) before the handler decodes it.
func (e *Engine) serverOnly(op uint16, h rpc.Handler) rpc.Handler {
	return func(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
		msg, err := e.opts.Caps.Open(op, req.Header)
		if err != nil {
			e.log.Warn("server request refused", "opcode", enginepb.OpName(op), "peer", req.Peer, "err", err)
			return rpc.Response{}, err
		}
		r := *req
		r.Header = msg
		return h(ctx, &r)
	}
}

// checkCap checks that m's capability grants need on m's pool and container.
func (e *Engine) checkCap(req *rpc.Request, m capMsg, need uint32) error {
	t := e.targets[req.Target]
	b := m.GetCap()
	t.caps.mu.RLock()
	g := t.caps.grants[string(b)]
	t.caps.mu.RUnlock()
	if g == nil {
		v, err := e.opts.Caps.Verify(b)
		if err != nil {
			return err
		}
		g = &v
		t.caps.remember(string(b), g)
	}
	return g.Allows(time.Now(), m.GetPool(), m.GetCont(), need)
}

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
		if len(c.grants) >= capCacheMax {
			clear(c.grants) // all still valid: verify them again as they come
		}
	}
	c.grants[key] = g
}
