package engine

import (
	"context"
	"sync"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/server/vos"
)

// Pool maps on an engine. The management service leader sends every new map
// of a pool to its engines (OpPoolMapUpdate); a client request placed with a
// newer map than the engine's makes the engine ask for it
// (Options.PoolMap), and one placed with an older map is refused with
// DER_STALE, so the client refreshes its map and places the request again.
// A request is then never served by a target the current map has taken the
// shard from (DAOS's cli_obj.c rejects stale maps the same way).

// PoolMap is a pool map as an engine holds it: the placement map and where
// each rank's engine serves.
type PoolMap struct {
	*placement.PoolMap
	Addr map[uint32]string // rank -> data-plane address
	// moving: a target drains or integrates, so some shards' data is still
	// served by a target other than the one placement now names
	moving bool
	// installed is this engine's clock when it took this map: every write
	// placed with it lands here at a later epoch (see rebuildFence)
	installed uint64
}

// DecodePoolMap builds a PoolMap from its wire form.
func DecodePoolMap(m *enginepb.PoolMap) (*PoolMap, error) {
	specs := make([]placement.RankSpec, 0, len(m.Ranks))
	addr := make(map[uint32]string, len(m.Ranks))
	for _, r := range m.Ranks {
		st := make([]placement.TargetState, len(r.States))
		for i, b := range r.States {
			st[i] = placement.TargetState(b)
		}
		specs = append(specs, placement.RankSpec{Rank: r.Rank, FaultDomain: r.FaultDomain, Added: r.Added, Targets: len(st), TargetStates: st, TargetFseq: r.Fseq})
		addr[r.Rank] = r.FabricAddr
	}
	pm, err := placement.NewPoolMap(m.Version, specs)
	if err != nil {
		return nil, daoserr.Context(err, "pool map version %d", m.Version)
	}
	out := &PoolMap{PoolMap: pm, Addr: addr}
	for _, t := range pm.Targets() {
		out.moving = out.moving || t.State == placement.TargetDrain || t.State == placement.TargetIntegrating
	}
	return out, nil
}

type poolMaps struct {
	mu    sync.Mutex
	maps  map[vos.UUID]*PoolMap
	pulls map[vos.UUID]chan struct{} // a pull in progress ends by closing its channel
}

// PoolMapOf is the engine's current map of pool (nil: none yet).
func (e *Engine) PoolMapOf(pool vos.UUID) *PoolMap {
	e.maps.mu.Lock()
	defer e.maps.mu.Unlock()
	return e.maps.maps[pool]
}

// SetPoolMap takes m as pool's map if it is newer than the one held.
func (e *Engine) SetPoolMap(m *enginepb.PoolMap) error {
	if len(m.Pool) != 16 {
		return daoserr.Newf(daoserr.Inval, "pool map with a pool id of %d bytes", len(m.Pool))
	}
	pm, err := DecodePoolMap(m)
	if err != nil {
		return err
	}
	pool := vos.UUID(m.Pool)
	e.maps.mu.Lock()
	defer e.maps.mu.Unlock()
	if e.maps.maps == nil {
		e.maps.maps = map[vos.UUID]*PoolMap{}
	}
	if old := e.maps.maps[pool]; old == nil || old.Version() < pm.Version() {
		pm.installed = e.clock.Now()
		e.maps.maps[pool] = pm
		e.log.Debug("pool map", "pool", pool, "version", pm.Version())
	}
	return nil
}

func (e *Engine) poolMapUpdate(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.PoolMap
	if err := decode(req, &m); err != nil {
		return rpc.Response{}, err
	}
	return rpc.Response{}, e.SetPoolMap(&m)
}

// pullPoolMap asks for pool's current map, one pull per pool at a time.
func (e *Engine) pullPoolMap(ctx context.Context, pool vos.UUID) {
	if e.opts.PoolMap == nil {
		return
	}
	e.maps.mu.Lock()
	if e.maps.pulls == nil {
		e.maps.pulls = map[vos.UUID]chan struct{}{}
	}
	if ch, ok := e.maps.pulls[pool]; ok {
		e.maps.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return
	}
	ch := make(chan struct{})
	e.maps.pulls[pool] = ch
	e.maps.mu.Unlock()
	defer func() {
		e.maps.mu.Lock()
		delete(e.maps.pulls, pool)
		e.maps.mu.Unlock()
		close(ch)
	}()
	m, err := e.opts.PoolMap(ctx, pool.String())
	if err == nil {
		err = e.SetPoolMap(m)
	}
	if err != nil {
		e.log.Warn("pool map: cannot get the current one", "pool", pool, "err", err)
	}
}

// mapAtLeast is pool's map, asked for first (bounded) when the engine's is
// older than version; it may still be older (nil: none) if the management
// service does not answer.
func (e *Engine) mapAtLeast(ctx context.Context, pool vos.UUID, version uint32) *PoolMap {
	if cur := e.PoolMapOf(pool); cur != nil && cur.Version() >= version {
		return cur
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	e.pullPoolMap(ctx, pool)
	return e.PoolMapOf(pool)
}

// checkMapVersion refuses a request placed with another map version than
// the engine's (0: not checked; the servers' own requests and old tools).
func (e *Engine) checkMapVersion(pool []byte, v uint32) error {
	if v == 0 || len(pool) != 16 {
		return nil
	}
	id := vos.UUID(pool)
	cur := e.mapAtLeast(context.Background(), id, v)
	switch {
	case cur == nil:
		return daoserr.Newf(daoserr.Stale, "engine has no map of pool %s yet (the request's is version %d)", id, v).
			WithResolution("retry: the engine is getting it from the management service")
	case v < cur.Version():
		return daoserr.Newf(daoserr.Stale, "pool map version %d is older than the engine's %d", v, cur.Version()).
			WithResolution("the client library refreshes its pool map and retries")
	case v > cur.Version():
		return daoserr.Newf(daoserr.Stale, "the engine's pool map version %d is older than the request's %d", cur.Version(), v).
			WithResolution("retry: the engine is getting the new map from the management service")
	}
	return nil
}
