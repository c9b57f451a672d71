package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security"
	"github.com/godaos/godaos/server/mgmt"
	"github.com/godaos/godaos/server/vos"
	"google.golang.org/protobuf/proto"
)

// Pool maps (see internal/placement): the management service keeps each
// pool's map, with every target's state and a version bumped on each
// change. The leader changes it (dmg pool exclude|drain|reintegrate|extend,
// a rank found dead) and sends the new map to the pool's engines; clients
// and engines that meet a newer version elsewhere (DER_STALE) ask for it.

// poolMapPB is p's map on the wire, with each rank's engine address.
func poolMapPB(p mgmt.Pool, members []mgmt.Member) *enginepb.PoolMap {
	u, _ := vos.ParseUUID(p.UUID)
	addr := map[uint32]string{}
	for _, m := range members {
		addr[m.Rank] = m.FabricAddr
	}
	out := &enginepb.PoolMap{Pool: u[:], Version: p.MapVersion}
	for _, r := range p.Map {
		st := make([]byte, len(r.States))
		for i, s := range r.States {
			st[i] = byte(s)
		}
		out.Ranks = append(out.Ranks, &enginepb.PoolMapRank{Rank: r.Rank, FaultDomain: r.FaultDomain, Added: r.Added, States: st,
			FabricAddr: addr[r.Rank], Fseq: r.Fseq})
	}
	return out
}

// disabledTargets lists p's targets that are not UPIN, as "rank:index STATE".
func disabledTargets(p mgmt.Pool) []string {
	var out []string
	for _, r := range p.Map {
		for i, s := range r.States {
			if s != placement.TargetUp {
				out = append(out, fmt.Sprintf("%d:%d %s", r.Rank, i, s))
			}
		}
	}
	return out
}

// serves reports whether a target in state s holds data to serve: UPIN, UP
// and DRAIN targets do; DOWN and DOWNOUT ones are out of the pool's I/O.
func serves(s placement.TargetState) bool {
	return s != placement.TargetDown && s != placement.TargetOut
}

// livePoolRanks are the ranks of p's map with a target that serves: the
// ones pool-wide operations (container create, snapshots, queries) reach.
// Each must be joined.
func (c *ctlService) livePoolRanks(p mgmt.Pool) ([]rankTargets, error) {
	var ranks []uint32
	for _, r := range p.Map {
		if slices.ContainsFunc(r.States, serves) {
			ranks = append(ranks, r.Rank)
		}
	}
	if len(ranks) == 0 {
		return nil, daoserr.Newf(daoserr.Unreach, "pool %s has no target in service: every one is excluded", p.Label).
			WithResolution("reintegrate its ranks (dmg pool reintegrate)")
	}
	out, err := c.poolRanks(ranks)
	if err != nil {
		return nil, daoserr.Context(err, "pool %s (restart the rank, or exclude it: dmg pool exclude, dmg system exclude)", p.Label)
	}
	return out, nil
}

// PoolMapQuery answers a pool's current map: clients (with their
// credential, which must be allowed to connect) and engines refreshing one.
func (c *ctlService) PoolMapQuery(ctx context.Context, req *ctlpb.PoolReq) (*ctlpb.PoolMapResp, error) {
	errResp := func(err error) *ctlpb.PoolMapResp { return &ctlpb.PoolMapResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.PoolMapQuery, errResp, func() (*ctlpb.PoolMapResp, error) {
		p, err := c.s.ms.FindPool(req.Id)
		if err != nil {
			return nil, err
		}
		if req.Cred != nil {
			tok, err := c.caller(req.Cred)
			if err == nil {
				_, err = poolAccess(tok, p, accessRule{mode: "read-only", needs: []security.Perm{security.PermRead}})
			}
			if err != nil {
				return nil, err
			}
		}
		members, _, err := c.s.ms.Members()
		if err != nil {
			return nil, err
		}
		return &ctlpb.PoolMapResp{PoolMap: poolMapPB(p, members)}, nil
	})
}

// changePoolMap applies change to pool id's map and records the result one
// version later, then sends it to the pool's engines. change returns nil
// when there is nothing to change. A change made meanwhile by another
// caller is not lost: the map is read again and change applied to it.
func (c *ctlService) changePoolMap(ctx context.Context, id, what string, change func(*placement.PoolMap) (*placement.PoolMap, error)) (mgmt.Pool, error) {
	for try := 0; ; try++ {
		p, err := c.s.ms.FindPool(id)
		if err != nil {
			return mgmt.Pool{}, err
		}
		pm, err := p.PlacementMap()
		if err != nil {
			return mgmt.Pool{}, daoserr.Context(err, "pool %s map", p.Label)
		}
		npm, err := change(pm)
		if err != nil {
			return mgmt.Pool{}, daoserr.Context(err, "%s in pool %s", what, p.Label)
		}
		if npm == nil {
			return p, nil
		}
		err = c.s.ms.SetPoolMap(p.UUID, p.MapVersion, mgmt.MapFrom(npm))
		if daoserr.Is(err, daoserr.Again) && try < 10 {
			continue
		}
		if err != nil {
			return mgmt.Pool{}, daoserr.Context(err, "%s in pool %s", what, p.Label)
		}
		if p, err = c.s.ms.FindPool(p.UUID); err != nil {
			return mgmt.Pool{}, err
		}
		c.s.log.Info("pool map changed", "pool", p.Label, "version", p.MapVersion, "change", what, "disabled", disabledTargets(p))
		c.pushPoolMap(ctx, p)
		return p, nil
	}
}

// pushPoolMap sends p's map to the joined ranks of its map. It is best
// effort: an engine that misses it learns the version from the next request
// that carries it and asks (see engine.Options.PoolMap).
func (c *ctlService) pushPoolMap(ctx context.Context, p mgmt.Pool) {
	members, _, err := c.s.ms.Members()
	if err != nil {
		return
	}
	byRank := map[uint32]mgmt.Member{}
	for _, m := range members {
		byRank[m.Rank] = m
	}
	// Joined ranks now; excluded ones too, in the background: one that was
	// paused and resumed must learn that it is out, and refuse the I/O of
	// clients whose map still places shards on it.
	var ranks, excluded []rankTargets
	for _, r := range p.Map {
		m, ok := byRank[r.Rank]
		switch {
		case !ok:
		case m.State == mgmt.MemberJoined:
			ranks = append(ranks, rankTargets{rank: r.Rank, fabric: m.FabricAddr, targets: m.Targets})
		case m.State == mgmt.MemberExcluded:
			excluded = append(excluded, rankTargets{rank: r.Rank, fabric: m.FabricAddr, targets: m.Targets})
		}
	}
	msg := poolMapPB(p, members)
	push := func(ranks []rankTargets) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, failed := c.fanOut(ctx, ranks, enginepb.OpPoolMapUpdate, msg); len(failed) > 0 {
			c.s.log.Debug("pool map: some engines did not take it; they will ask", "pool", p.Label, "version", p.MapVersion, "failed", len(failed))
		}
	}
	if len(excluded) > 0 {
		go push(excluded)
	}
	push(ranks)
}

// targetChange is what dmg pool exclude|drain|reintegrate do to one target.
func targetChange(op string, cur placement.TargetState) (placement.TargetState, bool, error) {
	switch op {
	case "exclude":
		if !serves(cur) {
			return cur, false, nil // already out
		}
		return placement.TargetDown, true, nil
	case "drain":
		switch cur {
		case placement.TargetDrain:
			return cur, false, nil
		case placement.TargetUp:
			return placement.TargetDrain, true, nil
		}
		return cur, false, daoserr.Newf(daoserr.Inval, "target is %s: only UPIN targets can be drained", cur).
			WithResolution("reintegrate it first, or leave it: it holds no data to move")
	case "reintegrate":
		if cur == placement.TargetUp || cur == placement.TargetIntegrating {
			return cur, false, nil
		}
		return placement.TargetIntegrating, true, nil
	}
	return cur, false, daoserr.Newf(daoserr.Inval, "unknown pool target operation %q", op).WithResolution("use exclude, drain or reintegrate")
}

// setTargets applies op to rank's targets (all of them when idx is empty).
func setTargets(pm *placement.PoolMap, op string, rank uint32, idx []uint32) (*placement.PoolMap, error) {
	var spec *placement.RankSpec
	specs := pm.Ranks()
	for i := range specs {
		if specs[i].Rank == rank {
			spec = &specs[i]
		}
	}
	if spec == nil {
		return nil, daoserr.Newf(daoserr.Nonexist, "rank %d is not in the pool", rank).WithResolution("see the pool's ranks with 'dmg pool query'")
	}
	if len(idx) == 0 {
		for i := range spec.Targets {
			idx = append(idx, uint32(i))
		}
	}
	out, changed := pm, false
	for _, i := range idx {
		if int(i) >= spec.Targets {
			return nil, daoserr.Newf(daoserr.Nonexist, "rank %d has no target %d (it has %d)", rank, i, spec.Targets)
		}
		to, change, err := targetChange(op, spec.TargetStates[i])
		if err != nil {
			return nil, daoserr.Context(err, "rank %d target %d", rank, i)
		}
		if !change {
			continue
		}
		if out, err = out.WithTargetState(rank, int(i), to); err != nil {
			return nil, err
		}
		changed = true
	}
	if !changed {
		return nil, nil
	}
	return out, nil
}

// PoolTargets changes a rank's targets in a pool map: dmg pool
// exclude|drain|reintegrate.
func (c *ctlService) PoolTargets(ctx context.Context, req *ctlpb.PoolTargetsReq) (*ctlpb.PoolResp, error) {
	errResp := func(err error) *ctlpb.PoolResp { return &ctlpb.PoolResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.PoolTargets, errResp, func() (*ctlpb.PoolResp, error) {
		what := fmt.Sprintf("%s rank %d", req.Op, req.Rank)
		if len(req.Targets) > 0 {
			what += fmt.Sprintf(" targets %v", req.Targets)
		}
		if req.Op == "reintegrate" {
			if err := c.rankJoined(req.Rank); err != nil {
				return nil, daoserr.Context(err, "reintegrate")
			}
			if err := c.wipeForReintegration(ctx, req.Id, req.Rank, req.Targets); err != nil {
				return nil, daoserr.Context(err, "reintegrate rank %d", req.Rank)
			}
		}
		p, err := c.changePoolMap(ctx, req.Id, what, func(pm *placement.PoolMap) (*placement.PoolMap, error) {
			return setTargets(pm, req.Op, req.Rank, req.Targets)
		})
		if err != nil {
			return nil, err
		}
		return &ctlpb.PoolResp{Pool: poolPB(p, 0)}, nil
	})
}

// rankJoined says why rank cannot take part in a pool if it is not joined.
func (c *ctlService) rankJoined(rank uint32) error {
	members, _, err := c.s.ms.Members()
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.Rank == rank {
			if m.State != mgmt.MemberJoined {
				return daoserr.Newf(daoserr.Unreach, "rank %d is %s", rank, m.State).
					WithResolution("start it first (dmg system start --ranks %d; an excluded rank: dmg system clear-exclude --ranks %d)", rank, rank)
			}
			return nil
		}
	}
	return daoserr.Newf(daoserr.Nonexist, "rank %d is not a member of the system", rank).WithResolution("see 'dmg system query'")
}

// PoolExtend adds joined ranks to a pool (dmg pool extend): their targets
// are created, then the map takes them in, UP, so placement moves to them
// only the shards that must move.
func (c *ctlService) PoolExtend(ctx context.Context, req *ctlpb.PoolExtendReq) (*ctlpb.PoolResp, error) {
	errResp := func(err error) *ctlpb.PoolResp { return &ctlpb.PoolResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.PoolExtend, errResp, func() (*ctlpb.PoolResp, error) {
		p, err := c.s.ms.FindPool(req.Id)
		if err != nil {
			return nil, err
		}
		if len(req.Ranks) == 0 {
			return nil, daoserr.New(daoserr.Inval, "extend: no ranks given").WithResolution("name the ranks to add, e.g. --ranks 4,5")
		}
		for _, r := range req.Ranks {
			if slices.Contains(p.Ranks, r) {
				return nil, daoserr.Newf(daoserr.Exist, "rank %d is already in pool %s", r, p.Label).
					WithResolution("to bring an excluded rank back, use dmg pool reintegrate")
			}
		}
		ranks, err := c.poolRanks(req.Ranks)
		if err != nil {
			return nil, daoserr.Context(err, "extend pool %s", p.Label)
		}
		u, _ := vos.ParseUUID(p.UUID)
		if _, failed := c.fanOut(ctx, ranks, enginepb.OpTargetCreate, &enginepb.TargetCreateReq{Pool: u[:], ScmSize: p.TgtScm, NvmeSize: p.TgtNvme}); len(failed) > 0 {
			return nil, failureThen("extend pool "+p.Label, failed, "the pool was not extended; retry once the ranks are healthy")
		}
		if err := c.createContsOn(ctx, p, ranks); err != nil {
			return nil, daoserr.Context(err, "extend pool %s", p.Label)
		}
		members, _, err := c.s.ms.Members()
		if err != nil {
			return nil, err
		}
		fd := map[uint32]string{}
		for _, m := range members {
			fd[m.Rank] = m.FaultDomain
		}
		p, err = c.changePoolMap(ctx, p.UUID, fmt.Sprintf("extend by ranks %v", req.Ranks), func(pm *placement.PoolMap) (*placement.PoolMap, error) {
			var add []placement.RankSpec
			for _, r := range ranks {
				add = append(add, placement.RankSpec{Rank: r.rank, FaultDomain: fd[r.rank], Targets: int(r.targets), State: placement.TargetIntegrating})
			}
			return pm.Extend(add...)
		})
		if err != nil {
			return nil, err
		}
		return &ctlpb.PoolResp{Pool: poolPB(p, 0)}, nil
	})
}

// createContsOn creates p's containers on ranks' targets (new to the pool).
func (c *ctlService) createContsOn(ctx context.Context, p mgmt.Pool, ranks []rankTargets) error {
	for _, ct := range p.ContList() {
		m, err := targetContCreate(p, ct)
		if err != nil {
			return err
		}
		if _, failed := c.fanOut(ctx, ranks, enginepb.OpContCreate, m); len(failed) > 0 {
			return failureThen("create container "+ct.Label, failed, "retry")
		}
	}
	return nil
}

// selfHealExcludes reports whether p's self_heal property lets a dead rank
// be excluded from it automatically (DAOS's default "exclude;rebuild").
func selfHealExcludes(p mgmt.Pool) bool {
	v, ok := p.Props["self_heal"]
	return !ok || strings.Contains(v, "exclude")
}

// excludeRank marks rank's targets DOWN in every pool map that has them;
// pools whose self_heal leaves out "exclude" are skipped unless admin.
func (c *ctlService) excludeRank(ctx context.Context, rank uint32, reason string, admin bool) error {
	pools, err := c.s.ms.Pools()
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pools {
		if !slices.Contains(p.Ranks, rank) {
			continue
		}
		if !admin && !selfHealExcludes(p) {
			c.s.log.Warn("rank is dead but pool self_heal does not exclude it: its I/O fails until it is back or excluded by hand",
				"pool", p.Label, "rank", rank, "self_heal", p.Props["self_heal"])
			continue
		}
		if _, err := c.changePoolMap(ctx, p.UUID, "exclude rank "+fmt.Sprint(rank)+" ("+reason+")", func(pm *placement.PoolMap) (*placement.PoolMap, error) {
			return setTargets(pm, "exclude", rank, nil)
		}); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return daoserr.Newf(daoserr.Misc, "exclude rank %d: %v", rank, errs)
	}
	return nil
}

// SystemExclude marks ranks excluded, excluding their targets from every
// pool (dmg system exclude), or clears the mark so that they may join and be
// reintegrated (dmg system clear-exclude).
func (c *ctlService) SystemExclude(ctx context.Context, req *ctlpb.SystemExcludeReq) (*ctlpb.SystemRanksResp, error) {
	errResp := func(err error) *ctlpb.SystemRanksResp { return &ctlpb.SystemRanksResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.SystemExclude, errResp, func() (*ctlpb.SystemRanksResp, error) {
		if len(req.Ranks) == 0 {
			return nil, daoserr.New(daoserr.Inval, "no ranks given").WithResolution("name them, e.g. --ranks 2,3")
		}
		members, _, err := c.s.ms.Members()
		if err != nil {
			return nil, err
		}
		byRank := map[uint32]mgmt.Member{}
		for _, m := range members {
			byRank[m.Rank] = m
		}
		resp := &ctlpb.SystemRanksResp{}
		for _, r := range req.Ranks {
			m, ok := byRank[r]
			res := &ctlpb.RankResult{Rank: r, ControlAddr: m.ControlAddr, State: m.State}
			resp.Results = append(resp.Results, res)
			switch {
			case !ok:
				res.Error = ctlclient.FromError(daoserr.Newf(daoserr.Nonexist, "rank %d is not a member of the system", r))
			case req.Clear:
				if m.State == mgmt.MemberExcluded {
					// Its engine may be running: joined again; if not, its
					// next join says so. Its pool targets stay out until
					// reintegrated.
					if err := c.s.ms.SetMemberState(r, mgmt.MemberJoined); err != nil {
						res.Error = ctlclient.FromError(err)
						continue
					}
					res.State = mgmt.MemberJoined
				}
			default:
				if err := c.s.ms.SetMemberState(r, mgmt.MemberExcluded); err != nil {
					res.Error = ctlclient.FromError(err)
					continue
				}
				res.State = mgmt.MemberExcluded
				if err := c.excludeRank(ctx, r, "dmg system exclude", true); err != nil {
					res.Error = ctlclient.FromError(err)
				}
			}
		}
		return resp, nil
	})
}

// poolMapFor is engine.Options.PoolMap: the engines of this server ask the
// leader for a pool's current map.
func (c *ctlService) poolMapFor(ctx context.Context, pool string) (*enginepb.PoolMap, error) {
	resp, err := c.PoolMapQuery(ctx, &ctlpb.PoolReq{Id: pool})
	if err != nil {
		return nil, err
	}
	if err := ctlclient.ToError(resp.Error); err != nil {
		return nil, err
	}
	return resp.PoolMap, nil
}

// wipeForReintegration empties the pool's storage on the rank's targets that
// are out (DOWN, DOWNOUT) before they are reintegrated (DAOS's default
// reintegration, DATA_SYNC: discard, then rebuild everything): what they
// held is stale, and a key punched while they were out would otherwise come
// back. Their containers are created again, empty.
func (c *ctlService) wipeForReintegration(ctx context.Context, pool string, rank uint32, idx []uint32) error {
	p, err := c.s.ms.FindPool(pool)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(p.Map, func(r mgmt.PoolRank) bool { return r.Rank == rank })
	if i < 0 {
		return daoserr.Newf(daoserr.Nonexist, "rank %d is not in pool %s", rank, p.Label)
	}
	states := p.Map[i].States
	if len(idx) == 0 {
		for t := range states {
			idx = append(idx, uint32(t))
		}
	}
	rts, err := c.poolRanks([]uint32{rank})
	if err != nil {
		return err
	}
	cl, err := c.engines.Get(ctx, rts[0].fabric)
	if err != nil {
		return err
	}
	u, _ := vos.ParseUUID(p.UUID)
	call := func(t uint32, op uint16, m proto.Message) error {
		hdr, err := c.seal(op, m)
		if err != nil {
			return err
		}
		_, err = cl.Call(ctx, rpc.Message{Opcode: op, Target: t, Header: hdr}, nil)
		return daoserr.Context(err, "%s on target %d", enginepb.OpName(op), t)
	}
	for _, t := range idx {
		if int(t) >= len(states) || serves(states[t]) {
			continue // in service (or no such target: the map change says so)
		}
		if err := call(t, enginepb.OpTargetDestroy, &enginepb.TargetDestroyReq{Pool: u[:]}); err != nil {
			return err
		}
		if err := call(t, enginepb.OpTargetCreate, &enginepb.TargetCreateReq{Pool: u[:], ScmSize: p.TgtScm, NvmeSize: p.TgtNvme}); err != nil {
			return err
		}
		for _, ct := range p.ContList() {
			m, err := targetContCreate(p, ct)
			if err != nil {
				return err
			}
			if err := call(t, enginepb.OpContCreate, m); err != nil {
				return err
			}
		}
		c.s.log.Info("reintegration: target emptied", "pool", p.Label, "rank", rank, "target", t)
	}
	return nil
}
