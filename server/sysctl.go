package server

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/server/mgmt"
)

// Storage format and system stop/start.

// StorageFormat formats this server's unformatted engine storage and starts
// those engines (never forwarded: dmg asks each host). Formatted storage is
// left alone unless req.Reformat, which wipes it (its engine must be stopped).
func (c *ctlService) StorageFormat(ctx context.Context, req *ctlpb.StorageFormatReq) (*ctlpb.StorageFormatResp, error) {
	host, _ := os.Hostname()
	resp := &ctlpb.StorageFormatResp{Host: host}
	var errs []error
	for _, re := range c.s.engines {
		st := re.stateNow()
		if st != engineUnformatted && !req.Reformat {
			resp.Formatted = append(resp.Formatted, fmt.Sprintf("engine %d: already formatted (%s)", re.idx, st))
			continue
		}
		done, err := c.s.format(re, st != engineUnformatted)
		resp.Formatted = append(resp.Formatted, done...)
		if err == nil {
			err = c.s.runEngine(re)
		}
		if err != nil {
			errs = append(errs, daoserr.Context(err, "%s engine %d", host, re.idx))
			continue
		}
		// it joins in the background: dmg system query shows it within seconds
		c.s.joinAsync(re)
	}
	sq, _ := c.ServerQuery(ctx, &ctlpb.ServerQueryReq{})
	resp.Storage = sq.GetStorage()
	if len(errs) > 0 {
		resp.Error = ctlclient.FromError(errs[0])
	}
	return resp, nil
}

// EngineStop stops the engine serving a rank on this server (the MS leader's
// call, for dmg system stop).
func (c *ctlService) EngineStop(ctx context.Context, req *ctlpb.EngineReq) (*ctlpb.EngineResp, error) {
	re, err := c.s.engineByRank(req.Rank)
	if err == nil {
		err = c.s.stopEngine(ctx, re)
	}
	if err != nil {
		return &ctlpb.EngineResp{Error: ctlclient.FromError(err)}, nil
	}
	return &ctlpb.EngineResp{State: re.stateNow()}, nil
}

// EngineStart runs a stopped engine again and waits until it has rejoined.
func (c *ctlService) EngineStart(ctx context.Context, req *ctlpb.EngineReq) (*ctlpb.EngineResp, error) {
	re, err := c.s.engineByRank(req.Rank)
	if err == nil {
		err = c.s.runEngine(re)
	}
	if err == nil {
		c.s.join(ctx, re)
		err = ctx.Err()
	}
	if err != nil {
		return &ctlpb.EngineResp{Error: ctlclient.FromError(err)}, nil
	}
	return &ctlpb.EngineResp{State: mgmt.MemberJoined}, nil
}

// rankCallTimeout bounds one rank's stop or start.
const rankCallTimeout = time.Minute

// SystemStop stops the engines of the given ranks (every rank when none are
// given), each through the server that hosts it, and marks them stopped.
func (c *ctlService) SystemStop(ctx context.Context, req *ctlpb.SystemStopReq) (*ctlpb.SystemRanksResp, error) {
	return c.systemRanks(ctx, req.Ranks, true)
}

// SystemStart starts stopped ranks again (every stopped rank when none are given).
func (c *ctlService) SystemStart(ctx context.Context, req *ctlpb.SystemStartReq) (*ctlpb.SystemRanksResp, error) {
	return c.systemRanks(ctx, req.Ranks, false)
}

func (c *ctlService) systemRanks(ctx context.Context, ranks []uint32, stop bool) (*ctlpb.SystemRanksResp, error) {
	errResp := func(err error) *ctlpb.SystemRanksResp { return &ctlpb.SystemRanksResp{Error: ctlclient.FromError(err)} }
	call := ctlpb.CtlClient.SystemStart
	if stop {
		call = func(cl ctlpb.CtlClient, ctx context.Context, req *ctlpb.SystemStartReq, _ ...grpc.CallOption) (*ctlpb.SystemRanksResp, error) {
			return cl.SystemStop(ctx, &ctlpb.SystemStopReq{Ranks: req.Ranks})
		}
	}
	return onLeader(c, ctx, &ctlpb.SystemStartReq{Ranks: ranks}, call, errResp, func() (*ctlpb.SystemRanksResp, error) {
		members, _, err := c.s.ms.Members()
		if err != nil {
			return nil, err
		}
		var targets []mgmt.Member
		for _, r := range ranks {
			if !slices.ContainsFunc(members, func(m mgmt.Member) bool { return m.Rank == r }) {
				return nil, daoserr.Newf(daoserr.Nonexist, "rank %d is not a member of the system", r).WithResolution("see the ranks with 'dmg system query'")
			}
		}
		for _, m := range members {
			if len(ranks) > 0 && !slices.Contains(ranks, m.Rank) {
				continue
			}
			if !stop && len(ranks) == 0 && m.State == mgmt.MemberJoined {
				continue // start: only those that are not running
			}
			targets = append(targets, m)
		}
		resp := &ctlpb.SystemRanksResp{Results: make([]*ctlpb.RankResult, len(targets))}
		var wg sync.WaitGroup
		for i, m := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp.Results[i] = c.rankStopStart(ctx, m, stop)
			}()
		}
		wg.Wait()
		for _, r := range resp.Results {
			if r.Error != nil {
				resp.Error = &ctlpb.Error{Code: r.Error.Code, Msg: "some ranks failed: see the results", Resolution: "check those ranks' servers and logs, then retry"}
				break
			}
		}
		return resp, nil
	})
}

// rankStopStart stops or starts one rank through its server and records the
// outcome in the system map.
func (c *ctlService) rankStopStart(ctx context.Context, m mgmt.Member, stop bool) *ctlpb.RankResult {
	res := &ctlpb.RankResult{Rank: m.Rank, ControlAddr: m.ControlAddr, State: m.State}
	ctx, cancel := context.WithTimeout(ctx, rankCallTimeout)
	defer cancel()
	cl, err := c.client(m.ControlAddr)
	var r *ctlpb.EngineResp
	if err == nil {
		if stop {
			r, err = cl.EngineStop(ctx, &ctlpb.EngineReq{Rank: m.Rank})
		} else {
			r, err = cl.EngineStart(ctx, &ctlpb.EngineReq{Rank: m.Rank})
		}
	}
	if err = ctlclient.Err(err, r.GetError(), "rank "+strconv.Itoa(int(m.Rank))+" at "+m.ControlAddr); err != nil {
		if stop && daoserr.Is(err, daoserr.Unreach) {
			// its server is gone: the engine is not serving either
			err = nil
		} else {
			res.Error = ctlclient.FromError(err)
			return res
		}
	}
	if stop {
		if err := c.s.ms.SetMemberState(m.Rank, mgmt.MemberStopped); err != nil {
			res.Error = ctlclient.FromError(err)
			return res
		}
		res.State = mgmt.MemberStopped
	} else {
		res.State = mgmt.MemberJoined
	}
	return res
}
