package daos

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/proto/enginepb"
)

// The client's pool map. It comes with the connect and is replaced when an
// engine says it is stale (DER_STALE: a target was excluded, drained,
// reintegrated or added since), after which the request is placed again
// with the new map. Objects cache their layout per map version.

// clientMap is one version of the pool map and where each rank serves.
type clientMap struct {
	pm   *placement.PoolMap
	addr map[uint32]string
}

type poolMapState struct {
	mapMu   sync.Mutex
	cur     *clientMap
	mapErr  error
	refresh chan struct{} // a refresh in progress ends by closing it
}

// decodeClientMap builds a client map from the wire form; a server without
// pool maps sends none, and then the connect's members make one (all UPIN).
func decodeClientMap(m *enginepb.PoolMap, version uint32, members []*ctlpb.Member) (*clientMap, error) {
	cm := &clientMap{addr: map[uint32]string{}}
	var specs []placement.RankSpec
	if m != nil {
		version = m.Version
		for _, r := range m.Ranks {
			st := make([]placement.TargetState, len(r.States))
			for i, b := range r.States {
				st[i] = placement.TargetState(b)
			}
			specs = append(specs, placement.RankSpec{Rank: r.Rank, FaultDomain: r.FaultDomain, Added: r.Added, Targets: len(st), TargetStates: st, TargetFseq: r.Fseq})
			cm.addr[r.Rank] = r.FabricAddr
		}
	} else {
		for _, mb := range members {
			specs = append(specs, placement.RankSpec{Rank: mb.Rank, FaultDomain: mb.FaultDomain, Targets: int(mb.Targets)})
			cm.addr[mb.Rank] = mb.FabricAddr
		}
	}
	pm, err := placement.NewPoolMap(version, specs)
	if err != nil {
		return nil, daoserr.Context(err, "pool map version %d", version)
	}
	cm.pm = pm
	return cm, nil
}

// currentMap is the pool map as this client knows it now.
func (p *Pool) currentMap() (*clientMap, error) {
	p.mapMu.Lock()
	defer p.mapMu.Unlock()
	if p.cur == nil && p.mapErr == nil {
		p.cur, p.mapErr = decodeClientMap(p.connectMap, p.MapVersion, p.Members)
	}
	return p.cur, p.mapErr
}

// poolMap is the placement map of currentMap.
func (p *Pool) poolMap() (*placement.PoolMap, error) {
	cm, err := p.currentMap()
	if err != nil {
		return nil, err
	}
	return cm.pm, nil
}

// refreshMap asks for the pool's current map when this client's is still
// at version stale (a request placed with it was refused). Concurrent
// callers share one request.
func (p *Pool) refreshMap(ctx context.Context, stale uint32) error {
	p.mapMu.Lock()
	if p.cur != nil && p.cur.pm.Version() > stale {
		p.mapMu.Unlock()
		return nil
	}
	if ch := p.refresh; ch != nil {
		p.mapMu.Unlock()
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ch := make(chan struct{})
	p.refresh = ch
	p.mapMu.Unlock()
	defer func() {
		p.mapMu.Lock()
		p.refresh = nil
		p.mapMu.Unlock()
		close(ch)
	}()
	cred, err := p.credential(ctx)
	if err != nil {
		return err
	}
	var r ctlpb.PoolMapResp
	if err := p.c.svcCall(ctx, enginepb.OpSvcPoolMap, &ctlpb.PoolReq{Id: p.Info.GetUuid(), Cred: cred}, &r); err != nil {
		return daoserr.Context(err, "refresh the map of pool %s", p.Info.GetLabel())
	}
	cm, err := decodeClientMap(r.PoolMap, 0, nil)
	if err != nil {
		return err
	}
	p.mapMu.Lock()
	if p.cur == nil || p.cur.pm.Version() < cm.pm.Version() {
		p.cur, p.mapErr = cm, nil
		p.MapVersion = cm.pm.Version()
	}
	p.mapMu.Unlock()
	return nil
}

// CurrentMapVersion is the version of the pool map this client uses now.
func (p *Pool) CurrentMapVersion() uint32 {
	cm, err := p.currentMap()
	if err != nil {
		return 0
	}
	return cm.pm.Version()
}

// failoverFor is how long an operation on an object with redundancy keeps
// placing its requests again while its targets fail: long enough for a dead
// server to be found and excluded (SWIM) and the new map to reach clients.
var failoverFor = 2 * time.Minute

// attemptTimeout bounds one attempt of a request to a target of a redundant
// object: a server that stopped answering (SIGSTOP, a network partition)
// does not hold the operation beyond it, and the next attempt goes where
// the map says then.
var attemptTimeout = 30 * time.Second // more than a leader's worst case: a prepare and a commit, each bounded by 10 s

// retryable reports whether an operation that failed with err may succeed
// when placed again with a newer map: a stale map always; an unreachable
// target when the object has redundancy (another replica serves, or the
// target is excluded meanwhile).
func retryable(err error, redundant bool) bool {
	switch daoserr.CodeOf(err) {
	case daoserr.Stale:
		return true
	case daoserr.Unreach, daoserr.TimedOut, daoserr.Shutdown, daoserr.Evicted, daoserr.InProgress:
		// InProgress: a write whose leader died holds the dkey until the
		// survivors resolve it, once the map excludes that leader
		return redundant
	}
	return false
}

// placed runs op with the object's layout under the current map, and
// again with a newer map while it fails in a way a newer map may cure (see
// retryable), for up to failoverFor. The application sees none of it.
func (o *Obj) placed(ctx context.Context, op func(ctx context.Context, l placement.Layout) error) error {
	redundant := o.OID.GroupSize() > 1
	deadline := time.Now().Add(failoverFor)
	for attempt := 0; ; attempt++ {
		l, err := o.currentLayout()
		if err != nil {
			return err
		}
		if err := o.cont.checkHealth(); err != nil {
			return err
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if redundant {
			actx, cancel = context.WithTimeout(ctx, attemptTimeout)
		}
		err = op(actx, l)
		cancel()
		if err == nil || ctx.Err() != nil || !retryable(err, redundant) || time.Now().After(deadline) {
			return err
		}
		if rerr := o.cont.Pool.refreshMap(ctx, l.Version); rerr != nil && daoserr.CodeOf(err) == daoserr.Stale {
			return daoserr.Context(rerr, "after %v", err)
		}
		if werr := sleepCtx(ctx, min(time.Millisecond<<min(attempt, 10), time.Second)); werr != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// currentLayout is the object's layout under the current pool map,
// computed once per map version.
func (o *Obj) currentLayout() (placement.Layout, error) {
	pm, err := o.cont.Pool.poolMap()
	if err != nil {
		return placement.Layout{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.layout.Shards != nil && o.layout.Version == pm.Version() {
		return o.layout, nil
	}
	l, err := pm.Layout(o.OID)
	if err != nil {
		return placement.Layout{}, daoserr.Context(err, "layout of object %s", o.OID)
	}
	o.layout = l
	return l, nil
}

// checkHealth fails with DER_RF once more fault domains have failed in the
// pool map than the container's rd_fac survives (DAOS's client does the
// same RF check on each map it receives): its data may be lost, and reads
// must not return what a lost shard no longer holds. The failures the
// container's owner accepted (status:healthy, health_ver) do not count;
// reopen the container after accepting them.
func (c *Cont) checkHealth() error {
	pm, err := c.Pool.poolMap()
	if err != nil {
		return err
	}
	props := c.Info.GetProps()
	rdFac, _ := strconv.Atoi(props["rd_fac"])
	since, _ := strconv.ParseUint(props["health_ver"], 10, 32)
	if failed := pm.FailedDomains(uint32(since)); failed > rdFac {
		return daoserr.Newf(daoserr.RF, "container %s is UNCLEAN: %d fault domains have failed (pool map version %d), more than its rd_fac %d: data may be lost",
			c.Info.GetLabel(), failed, pm.Version(), rdFac).
			WithResolution("bring the failed servers back (dmg system start, dmg pool reintegrate), or accept the loss: daos cont set-prop %s %s status:healthy, then reopen",
				c.Pool.Info.GetLabel(), c.Info.GetLabel())
	}
	return nil
}
