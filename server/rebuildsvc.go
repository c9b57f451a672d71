package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/server/mgmt"
	"github.com/godaos/godaos/server/rebuild"
	"github.com/godaos/godaos/server/vos"
)

// rebuildSystem is what the rebuild manager (server/rebuild) uses of this
// server when it leads the management service.
type rebuildSystem struct{ c *ctlService }

var _ rebuild.System = rebuildSystem{}

// rebuildInterval is how often the leader looks at the pools' rebuilds.
var rebuildInterval = time.Second

func (r rebuildSystem) Leader() bool { return r.c.s.ms != nil && r.c.s.ms.IsLeader() }

// pending reports whether p's map has targets whose shards are being
// rebuilt: DOWN, DRAIN or UP.
func pending(p mgmt.Pool) bool {
	for _, rk := range p.Map {
		for _, s := range rk.States {
			if s == placement.TargetDown || s == placement.TargetDrain || s == placement.TargetIntegrating {
				return true
			}
		}
	}
	return false
}

// selfHealRebuilds reports whether p's self_heal starts a rebuild by itself
// (DAOS's default "exclude;rebuild"; "delay_rebuild" waits for dmg pool
// rebuild start).
func selfHealRebuilds(p mgmt.Pool) bool {
	v, ok := p.Props["self_heal"]
	return !ok || strings.Contains(v, "rebuild") && !strings.Contains(v, "delay_rebuild")
}

func (r rebuildSystem) Pools(ctx context.Context) ([]rebuild.Pool, error) {
	r.c.sweepExcluded(ctx)
	pools, err := r.c.s.ms.Pools()
	if err != nil {
		return nil, err
	}
	var out []rebuild.Pool
	for _, p := range pools {
		if p.State != mgmt.PoolReady {
			continue
		}
		rp := rebuild.Pool{UUID: p.UUID, Label: p.Label, Version: p.MapVersion, Pending: pending(p), Auto: selfHealRebuilds(p)}
		ranks, err := r.c.livePoolRanks(p)
		if err != nil {
			continue // a rank to rebuild with is not joined: wait for it (or for its exclusion)
		}
		for _, rk := range ranks {
			rp.Ranks = append(rp.Ranks, rk.rank)
		}
		out = append(out, rp)
	}
	return out, nil
}

// toRanks sends req (its pool filled in) to ranks of pool over the collective
// tree; then says what a failure leaves.
func (r rebuildSystem) toRanks(ctx context.Context, pool string, ranks []uint32, req *enginepb.RebuildReq, what, then string) error {
	p, err := r.c.s.ms.FindPool(pool)
	if err != nil {
		return err
	}
	rts, err := r.c.poolRanks(ranks)
	if err != nil {
		return err
	}
	u, _ := vos.ParseUUID(p.UUID)
	req.Pool = u[:]
	if _, failed := r.c.fanOut(ctx, rts, enginepb.OpRebuildStart, req); len(failed) > 0 {
		return failureThen(what+" in pool "+p.Label, failed, then)
	}
	return nil
}

func (r rebuildSystem) Start(ctx context.Context, pool string, version uint32, ranks []uint32) error {
	return r.toRanks(ctx, pool, ranks, &enginepb.RebuildReq{Version: version}, "start rebuild", "the leader tries again")
}

func (r rebuildSystem) Query(ctx context.Context, pool string, rank uint32) (rebuild.Progress, error) {
	rts, err := r.c.poolRanks([]uint32{rank})
	if err != nil {
		return rebuild.Progress{}, err
	}
	u, _ := vos.ParseUUID(pool)
	hdr, err := r.c.seal(enginepb.OpRebuildQuery, &enginepb.RebuildReq{Pool: u[:]})
	if err != nil {
		return rebuild.Progress{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cl, err := r.c.engines.Get(ctx, rts[0].fabric)
	if err != nil {
		return rebuild.Progress{}, err
	}
	rep, err := cl.Call(ctx, rpc.Message{Opcode: enginepb.OpRebuildQuery, Header: hdr}, nil)
	if err != nil {
		return rebuild.Progress{}, err
	}
	var m enginepb.RebuildRep
	if err := proto.Unmarshal(rep.Header, &m); err != nil {
		return rebuild.Progress{}, daoserr.Wrap(daoserr.Proto, err, "rebuild query reply")
	}
	return rebuild.Progress{Version: m.Version, Done: m.Done, Objects: m.Objects, Records: m.Records, Bytes: m.Bytes, Lost: m.Lost, Err: m.Error}, nil
}

func (r rebuildSystem) Complete(ctx context.Context, pool string, version uint32) error {
	_, err := r.c.changePoolMap(ctx, pool, fmt.Sprintf("rebuild to version %d done", version), func(pm *placement.PoolMap) (*placement.PoolMap, error) {
		if pm.Version() != version {
			return nil, nil // moved on: that version rebuilds anew
		}
		out, changed := pm, false
		for _, t := range pm.Targets() {
			to := t.State
			switch t.State {
			case placement.TargetDown, placement.TargetDrain:
				to = placement.TargetOut
			case placement.TargetIntegrating:
				to = placement.TargetUp
			default:
				continue
			}
			var err error
			if out, err = out.WithTargetState(t.Rank, int(t.Index), to); err != nil {
				return nil, err
			}
			changed = true
		}
		if !changed {
			return nil, nil
		}
		return out, nil
	})
	return err
}

func (r rebuildSystem) Stop(ctx context.Context, pool string, ranks []uint32) error {
	return r.toRanks(ctx, pool, ranks, &enginepb.RebuildReq{Stop: true}, "stop rebuild", "those ranks go on scanning until they finish")
}

func (r rebuildSystem) Reclaim(ctx context.Context, pool string, version uint32, ranks []uint32) error {
	return r.toRanks(ctx, pool, ranks, &enginepb.RebuildReq{Version: version, Reclaim: true}, "start reclaim",
		"what moved away stays on those ranks until the next rebuild's reclaim")
}

// sweepExcluded excludes from their pools the targets of ranks the system
// map has excluded but a pool map still has serving: a leader that died
// between marking a rank excluded and excluding its targets leaves that
// to its successor.
func (c *ctlService) sweepExcluded(ctx context.Context) {
	members, _, err := c.s.ms.Members()
	if err != nil {
		return
	}
	pools, err := c.s.ms.Pools()
	if err != nil {
		return
	}
	for _, m := range members {
		if m.State != mgmt.MemberExcluded {
			continue
		}
		for _, p := range pools {
			i := slices.IndexFunc(p.Map, func(r mgmt.PoolRank) bool { return r.Rank == m.Rank })
			if i >= 0 && slices.ContainsFunc(p.Map[i].States, serves) && selfHealExcludes(p) {
				c.s.rankDead(ctx, m.Rank, "excluded in the system map")
				break
			}
		}
	}
}

// rebuildPB is a pool's rebuild status on the wire.
func rebuildPB(st rebuild.Status) *ctlpb.RebuildStatus {
	out := &ctlpb.RebuildStatus{State: st.State, Version: st.Version, Objects: st.Objects, Records: st.Records, Bytes: st.Bytes,
		Ranks: uint32(st.Ranks), RanksDone: uint32(st.RanksDone), Error: st.Err, Lost: st.Lost}
	if !st.Started.IsZero() {
		out.Started = st.Started.UnixMilli()
	}
	if !st.Finished.IsZero() {
		out.Finished = st.Finished.UnixMilli()
	}
	return out
}

// PoolRebuild stops or starts a pool's rebuild (dmg pool rebuild stop|start).
func (c *ctlService) PoolRebuild(ctx context.Context, req *ctlpb.PoolRebuildReq) (*ctlpb.PoolResp, error) {
	errResp := func(err error) *ctlpb.PoolResp { return &ctlpb.PoolResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.PoolRebuild, errResp, func() (*ctlpb.PoolResp, error) {
		p, err := c.s.ms.FindPool(req.Id)
		if err != nil {
			return nil, err
		}
		if c.s.rebuild == nil {
			return nil, daoserr.New(daoserr.NotLeader, "this replica runs no rebuild manager").WithResolution("retry")
		}
		if req.Stop {
			ranks, err := c.livePoolRanks(p)
			if err != nil {
				return nil, err
			}
			var rs []uint32
			for _, r := range ranks {
				rs = append(rs, r.rank)
			}
			if err := c.s.rebuild.Stop(ctx, p.UUID, rs); err != nil {
				return nil, err
			}
			c.s.log.Warn("rebuild stopped by an administrator: shards stay rebuilding until 'dmg pool rebuild start'", "pool", p.Label)
		} else {
			c.s.rebuild.Start(p.UUID, p.MapVersion)
			c.s.log.Info("rebuild started by an administrator", "pool", p.Label, "version", p.MapVersion)
		}
		out := poolPB(p, 0)
		out.Rebuild = rebuildPB(c.s.rebuild.Status(p.UUID))
		return &ctlpb.PoolResp{Pool: out}, nil
	})
}
