package rpc

import (
	"context"
	"sync"
)

// ClientCache keeps one connection per address and replaces a connection that
// has failed, so callers can ask for a client before every call.
type ClientCache struct {
	opts    ClientOptions
	mu      sync.Mutex
	clients map[string]*Client
}

// NewClientCache makes an empty cache; its clients use opts.
func NewClientCache(opts ClientOptions) *ClientCache {
	return &ClientCache{opts: opts, clients: map[string]*Client{}}
}

// Get returns a usable client of addr, dialing if there is none.
func (cc *ClientCache) Get(ctx context.Context, addr string) (*Client, error) {
	cc.mu.Lock()
	cl := cc.clients[addr]
	cc.mu.Unlock()
	if cl != nil && cl.Err() == nil {
		return cl, nil
	}
	cl, err := Dial(ctx, addr, cc.opts) // not under the lock: dials to other addresses go on
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if old := cc.clients[addr]; old != nil {
		if old.Err() == nil { // another caller won the race
			cl.Close()
			return old, nil
		}
		old.Close() // broken: replace it
	}
	cc.clients[addr] = cl
	return cl, nil
}

// Close closes every client.
func (cc *ClientCache) Close() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for a, cl := range cc.clients {
		cl.Close()
		delete(cc.clients, a)
	}
}
