package server

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/hlc"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/security"
	"github.com/godaos/godaos/server/mgmt"
	"github.com/godaos/godaos/server/vos"
)

// Container snapshots (daos cont create-snap | list-snaps | destroy-snap |
// rollback) and the aggregation that merges history no snapshot reads.

// ContSnap creates, lists or destroys snapshots, or rolls a container back.
func (c *ctlService) ContSnap(ctx context.Context, req *ctlpb.ContSnapReq) (*ctlpb.ContSnapResp, error) {
	errResp := func(err error) *ctlpb.ContSnapResp { return &ctlpb.ContSnapResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.ContSnap, errResp, func() (*ctlpb.ContSnapResp, error) {
		need := security.PermRead | security.PermWrite // changing the container's history
		if req.Op == "list" {
			need = security.PermRead
		}
		p, ct, _, err := c.openedCont(req.Cred, req.Pool, req.Cont, req.Op+" snapshots", need)
		if err != nil {
			return nil, err
		}
		where := fmt.Sprintf("container %s/%s", p.Label, ct.Label)
		switch req.Op {
		case "create":
			epoch, err := c.snapshotEpoch(ctx, p)
			if err != nil {
				return nil, daoserr.Context(err, "snapshot %s", where)
			}
			if err := c.s.ms.AddSnapshot(p.UUID, ct.UUID, mgmt.Snapshot{Epoch: epoch, Name: req.Name, Created: time.Now().Unix()}); err != nil {
				return nil, daoserr.Context(err, "snapshot %s", where)
			}
			c.s.log.Info("snapshot created", "pool", p.Label, "cont", ct.Label, "epoch", epoch, "name", req.Name)
			return &ctlpb.ContSnapResp{Epoch: epoch}, nil
		case "list":
			resp := &ctlpb.ContSnapResp{}
			for _, s := range ct.Snapshots {
				resp.Snaps = append(resp.Snaps, &ctlpb.Snapshot{Epoch: s.Epoch, Name: s.Name, Created: s.Created})
			}
			return resp, nil
		case "destroy":
			s, err := findSnapshot(ct, req)
			if err != nil {
				return nil, daoserr.Context(err, "destroy snapshot of %s", where)
			}
			if err := c.s.ms.RemoveSnapshots(p.UUID, ct.UUID, s.Epoch); err != nil {
				return nil, daoserr.Context(err, "destroy snapshot of %s", where)
			}
			return &ctlpb.ContSnapResp{Epoch: s.Epoch}, nil
		case "rollback":
			s, err := findSnapshot(ct, req)
			if err != nil {
				return nil, daoserr.Context(err, "roll back %s", where)
			}
			if err := c.rollback(ctx, p, ct, s.Epoch); err != nil {
				return nil, daoserr.Context(err, "roll back %s to epoch %d", where, s.Epoch)
			}
			c.s.log.Info("container rolled back", "pool", p.Label, "cont", ct.Label, "epoch", s.Epoch)
			return &ctlpb.ContSnapResp{Epoch: s.Epoch}, nil
		}
		return nil, daoserr.Newf(daoserr.Inval, "snapshot operation %q", req.Op).WithResolution("use create, list, destroy or rollback")
	})
}

// findSnapshot is the snapshot a request names, by epoch or else by name.
func findSnapshot(ct mgmt.Cont, req *ctlpb.ContSnapReq) (mgmt.Snapshot, error) {
	for _, s := range ct.Snapshots {
		if (req.Epoch != 0 && s.Epoch == req.Epoch) || (req.Epoch == 0 && req.Name != "" && s.Name == req.Name) {
			return s, nil
		}
	}
	what := fmt.Sprintf("epoch %d", req.Epoch)
	if req.Epoch == 0 {
		what = fmt.Sprintf("name %q", req.Name)
	}
	return mgmt.Snapshot{}, daoserr.Newf(daoserr.Nonexist, "no snapshot with %s", what).
		WithResolution("list them: daos cont list-snaps")
}

// snapshotEpoch picks a snapshot's epoch: the latest of every engine's
// clock, so every update already acknowledged is in it; a second round moves
// every clock past it, so no update stamped after the snapshot returns gets
// an epoch inside it, whatever the clocks' skew.
func (c *ctlService) snapshotEpoch(ctx context.Context, p mgmt.Pool) (uint64, error) {
	ranks, err := c.livePoolRanks(p)
	if err != nil {
		return 0, err
	}
	_, failed, epoch := c.fanOutEpoch(ctx, ranks, enginepb.OpEpochSync, &enginepb.EpochSyncReq{})
	if len(failed) > 0 {
		return 0, failureThen("read the engines' clocks", failed, "no snapshot was created")
	}
	if _, failed, _ = c.fanOutEpoch(ctx, ranks, enginepb.OpEpochSync, &enginepb.EpochSyncReq{Min: epoch}); len(failed) > 0 {
		return 0, failureThen("advance the engines' clocks", failed, "no snapshot was created")
	}
	return epoch, nil
}

// rollback discards what the container holds newer than epoch on every
// target, then forgets the snapshots newer than it (their data is gone).
func (c *ctlService) rollback(ctx context.Context, p mgmt.Pool, ct mgmt.Cont, epoch uint64) error {
	ranks, err := c.livePoolRanks(p)
	if err != nil {
		return err
	}
	pu, _ := vos.ParseUUID(p.UUID)
	cu, _ := vos.ParseUUID(ct.UUID)
	if _, failed := c.fanOut(ctx, ranks, enginepb.OpContRollback, &enginepb.ContEpochReq{Pool: pu[:], Cont: cu[:], Epoch: epoch}); len(failed) > 0 {
		return failureThen("discard newer data", failed,
			"the newer data is discarded on the other ranks only and the container's snapshots are kept: roll back again once those ranks are up")
	}
	return c.s.ms.RemoveSnapshotsAfter(p.UUID, ct.UUID, epoch)
}

// Aggregation defaults: every AggregationInterval the leader asks every
// target to merge each container's history older than AggregationLag that
// no snapshot reads. The lag keeps recent epochs readable for transactions
// in flight, which read at their start epoch.
const (
	DefaultAggregationInterval = 30 * time.Second
	DefaultAggregationLag      = time.Minute
)

// AggregationEnv, set in daos_server's environment to "INTERVAL/LAG" (Go
// durations, e.g. "500ms/1s"), paces aggregation when Options leave it at
// the defaults: multi-process tests see it (and EC aggregation) in seconds.
const AggregationEnv = "GODAOS_AGGREGATION"

// aggregationPace is the interval and lag: opts', else AggregationEnv's,
// else the defaults.
func aggregationPace(opts Options) (interval, lag time.Duration, err error) {
	interval, lag = opts.AggregationInterval, opts.AggregationLag
	if env := os.Getenv(AggregationEnv); env != "" && interval == 0 && lag == 0 {
		i, l, ok := strings.Cut(env, "/")
		var err1, err2 error
		interval, err1 = time.ParseDuration(i)
		lag, err2 = time.ParseDuration(l)
		if !ok || err1 != nil || err2 != nil || interval <= 0 || lag <= 0 {
			return 0, 0, daoserr.Newf(daoserr.Inval, "%s=%q: want INTERVAL/LAG, two positive durations", AggregationEnv, env).
				WithResolution("e.g. %s=30s/1m, or unset it for the defaults", AggregationEnv)
		}
	}
	return cmp.Or(interval, DefaultAggregationInterval), cmp.Or(lag, DefaultAggregationLag), nil
}

// aggregateLoop runs aggregation while this server leads the management
// service, until ctx ends.
func (s *Server) aggregateLoop(ctx context.Context, interval, lag time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.ms != nil && s.ms.IsLeader() {
			s.ctl.aggregateAll(ctx, lag)
		}
	}
}

// aggregateAll aggregates every container of every ready pool whose reclaim
// property is not "disabled", in two rounds: every target folds the EC
// replicas below hi into parity (server/engine/aggregate_ec.go); then every
// target merges the history below the last epoch every target folded
// completely (ecFolded), since a degraded EC read needs the data cells as
// they were at their stripe's parity.
func (c *ctlService) aggregateAll(ctx context.Context, lag time.Duration) {
	pools, err := c.s.ms.Pools()
	if err != nil {
		return // lost the leadership meanwhile
	}
	hi := uint64(time.Now().Add(-lag).UnixNano())&^(1<<hlc.LogicalBits-1) - 1
	for _, p := range pools {
		if p.State != mgmt.PoolReady || p.Props["reclaim"] == "disabled" || len(p.Conts) == 0 {
			continue
		}
		ranks, err := c.livePoolRanks(p)
		if err != nil {
			continue
		}
		pu, _ := vos.ParseUUID(p.UUID)
		for _, ct := range p.Conts {
			cu, _ := vos.ParseUUID(ct.UUID)
			fold := &enginepb.ContEpochReq{Pool: pu[:], Cont: cu[:], Epoch: hi, EcFold: true}
			if _, failed := c.fanOut(ctx, ranks, enginepb.OpContAggregate, fold); len(failed) == 0 {
				if c.ecFolded == nil {
					c.ecFolded = map[string]uint64{}
				}
				c.ecFolded[ct.UUID] = hi
			} else {
				c.s.log.Debug("EC aggregation incomplete: history is merged below the last complete one", "pool", p.Label, "cont", ct.Label,
					"epoch", c.ecFolded[ct.UUID], "err", failureThen("fold", failed, "it runs again at the next interval"))
			}
			upTo := min(hi, c.ecFolded[ct.UUID])
			if upTo == 0 {
				continue
			}
			req := &enginepb.ContEpochReq{Pool: pu[:], Cont: cu[:], Epoch: upTo}
			for _, sn := range ct.Snapshots {
				req.Snapshots = append(req.Snapshots, sn.Epoch)
			}
			if _, failed := c.fanOut(ctx, ranks, enginepb.OpContAggregate, req); len(failed) > 0 {
				c.s.log.Warn("aggregation failed", "pool", p.Label, "cont", ct.Label, "err", failureThen("aggregate", failed, "aggregation runs again at the next interval"))
			}
		}
	}
}
