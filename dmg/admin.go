package dmg

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/units"
)

// SystemStop stops the engines of ranks (all when empty); SystemStart starts
// stopped ones again. Each prints a table of ranks and their outcome.
func (c *Client) SystemStop(ctx context.Context, ranks []uint32) error {
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.SystemRanksResp, error) {
		return c.ctl.SystemStop(ctx, &ctlpb.SystemStopReq{Ranks: ranks})
	})
	return c.printRanks("system stop", resp, err)
}

// SystemStart starts stopped ranks (every stopped rank when ranks is empty).
func (c *Client) SystemStart(ctx context.Context, ranks []uint32) error {
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.SystemRanksResp, error) {
		return c.ctl.SystemStart(ctx, &ctlpb.SystemStartReq{Ranks: ranks})
	})
	return c.printRanks("system start", resp, err)
}

func (c *Client) printRanks(what string, resp *ctlpb.SystemRanksResp, err error) error {
	if err != nil {
		return c.print(nil, ctlclient.Err(err, nil, what), nil)
	}
	type result struct {
		Rank    uint32 `json:"rank"`
		Addr    string `json:"addr"`
		State   string `json:"state"`
		Errored bool   `json:"errored"`
		Msg     string `json:"msg,omitempty"`
	}
	var out []result
	var failed []string
	for _, r := range resp.Results {
		res := result{Rank: r.Rank, Addr: r.ControlAddr, State: r.State}
		if e := ctlclient.ToError(r.Error); e != nil {
			res.Errored, res.Msg = true, e.Error()
			failed = append(failed, fmt.Sprintf("rank %d: %v", r.Rank, e))
		}
		out = append(out, res)
	}
	var callErr error
	if e := ctlclient.ToError(resp.Error); e != nil {
		callErr = daoserr.Context(e, "%s", what)
		if len(failed) > 0 {
			callErr = daoserr.Newf(daoserr.CodeOf(e), "%s failed on %s", what, strings.Join(failed, "; ")).
				WithResolution("check those ranks' servers ('dmg system query') and their logs, then retry")
		}
	}
	if c.JSON {
		return c.print(map[string]any{"results": out}, callErr, nil)
	}
	var rows [][]string
	for _, r := range out {
		res := titleCase(r.State)
		if r.Errored {
			res = "FAILED: " + r.Msg
		}
		rows = append(rows, []string{strconv.Itoa(int(r.Rank)), r.Addr, res})
	}
	if len(rows) == 0 {
		fmt.Fprintln(c.Out, "No ranks to act on.")
	} else {
		table(c.Out, "Rank\tControl Address\tResult", rows)
	}
	return callErr
}

// StorageFormat formats each server's storage (once, unless reformat) and
// starts the engines on it.
func (c *Client) StorageFormat(ctx context.Context, hosts []string, reformat bool) error {
	type hostResult struct {
		Host   string   `json:"host"`
		Done   []string `json:"done"`
		Engine int      `json:"engines"`
	}
	var all []hostResult
	err := c.eachHost(ctx, hosts, "storage format", func(ctx context.Context, h string, ctl ctlpb.CtlClient) error {
		resp, err := ctl.StorageFormat(ctx, &ctlpb.StorageFormatReq{Reformat: reformat})
		all = append(all, hostResult{Host: h, Done: resp.GetFormatted(), Engine: len(resp.GetStorage())})
		return ctlclient.Err(err, resp.GetError(), "storage format "+h)
	})
	return c.print(all, err, func(w io.Writer) {
		var rows [][]string
		for _, r := range all {
			rows = append(rows, []string{r.Host, strconv.Itoa(r.Engine), strings.Join(r.Done, "; ")})
		}
		table(w, "Host\tEngines\tFormat Result", rows)
	})
}

// StorageQueryUsage prints each engine's tiers: configured size, space its
// pools hold, and free space of the filesystem beneath.
func (c *Client) StorageQueryUsage(ctx context.Context, hosts []string) error {
	type usage struct {
		Host       string `json:"host"`
		Engine     uint32 `json:"engine"`
		State      string `json:"state"`
		ScmTotal   uint64 `json:"scm_total"`
		ScmUsed    uint64 `json:"scm_used"`
		ScmFree    uint64 `json:"scm_free"`
		NvmeTotal  uint64 `json:"nvme_total"`
		NvmeUsed   uint64 `json:"nvme_used"`
		NvmeFree   uint64 `json:"nvme_free"`
		ScmFsFree  uint64 `json:"scm_fs_free"`
		NvmeFsFree uint64 `json:"nvme_fs_free"`
	}
	var all []usage
	err := c.eachHost(ctx, hosts, "storage query usage", func(ctx context.Context, h string, ctl ctlpb.CtlClient) error {
		resp, err := ctl.ServerQuery(ctx, &ctlpb.ServerQueryReq{})
		if err := ctlclient.Err(err, resp.GetError(), "storage query usage "+h); err != nil {
			return err
		}
		for _, e := range resp.Storage {
			all = append(all, usage{Host: h, Engine: e.Engine, State: e.State,
				ScmTotal: e.ScmSize, ScmUsed: e.ScmReserved, ScmFree: e.ScmSize - min(e.ScmSize, e.ScmReserved),
				NvmeTotal: e.BdevSize, NvmeUsed: e.NvmeReserved, NvmeFree: e.BdevSize - min(e.BdevSize, e.NvmeReserved),
				ScmFsFree: e.ScmFsFree, NvmeFsFree: e.BdevFsFree})
		}
		return nil
	})
	if err != nil {
		return c.print(nil, err, nil)
	}
	return c.print(all, nil, func(w io.Writer) {
		var rows [][]string
		pct := func(used, total uint64) string {
			if total == 0 {
				return "-"
			}
			return fmt.Sprintf("%d %%", used*100/total)
		}
		for _, u := range all {
			rows = append(rows, []string{u.Host, strconv.Itoa(int(u.Engine)), u.State,
				units.Human(u.ScmTotal), units.Human(u.ScmFree), pct(u.ScmUsed, u.ScmTotal),
				units.Human(u.NvmeTotal), units.Human(u.NvmeFree), pct(u.NvmeUsed, u.NvmeTotal)})
		}
		table(w, "Host\tEngine\tState\tSCM-Total\tSCM-Free\tSCM-Used\tNVMe-Total\tNVMe-Free\tNVMe-Used", rows)
	})
}

// ContSetOwner gives a container to another user and/or group.
func (c *Client) ContSetOwner(ctx context.Context, pool, cont, user, group string) error {
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.ContResp, error) {
		return c.ctl.ContSetOwner(ctx, &ctlpb.ContSetOwnerReq{Pool: pool, Cont: cont, User: user, Group: group})
	})
	if err = ctlclient.Err(err, resp.GetError(), "cont set-owner "+pool+"/"+cont); err != nil {
		return c.print(nil, err, nil)
	}
	ct := resp.Cont
	return c.print(map[string]any{"uuid": ct.Uuid, "label": ct.Label, "owner": ct.Owner, "group": ct.Group}, nil, func(w io.Writer) {
		fmt.Fprintf(w, "Successfully set owner of container %s to %s, group %s\n", ct.Label, ct.Owner, ct.Group)
	})
}

// PoolTargets excludes, drains or reintegrates targets of a rank in a pool
// (dmg pool exclude|drain|reintegrate): op names which. No targets: all of
// the rank's.
func (c *Client) PoolTargets(ctx context.Context, op, pool string, rank uint32, targets []uint32) error {
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolResp, error) {
		return c.ctl.PoolTargets(ctx, &ctlpb.PoolTargetsReq{Id: pool, Op: op, Rank: rank, Targets: targets})
	})
	what := fmt.Sprintf("pool %s %s rank %d", op, pool, rank)
	if err = ctlclient.Err(err, resp.GetError(), what); err != nil {
		return c.print(nil, err, nil)
	}
	return c.printPoolMap(op, resp.Pool)
}

// PoolExtend adds ranks to a pool (dmg pool extend).
func (c *Client) PoolExtend(ctx context.Context, pool string, ranks []uint32) error {
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolResp, error) {
		return c.ctl.PoolExtend(ctx, &ctlpb.PoolExtendReq{Id: pool, Ranks: ranks})
	})
	if err = ctlclient.Err(err, resp.GetError(), "pool extend "+pool); err != nil {
		return c.print(nil, err, nil)
	}
	return c.printPoolMap("extend", resp.Pool)
}

func (c *Client) printPoolMap(op string, p *ctlpb.Pool) error {
	out := map[string]any{"uuid": p.Uuid, "label": p.Label, "map_version": p.MapVersion, "disabled_targets": p.DisabledTargets}
	return c.print(out, nil, func(w io.Writer) {
		fmt.Fprintf(w, "%s: pool %s is at map version %d\n", op, p.Label, p.MapVersion)
		printDisabled(w, p)
	})
}

// printDisabled lists a pool's targets that are not UPIN.
func printDisabled(w io.Writer, p *ctlpb.Pool) {
	if len(p.DisabledTargets) == 0 {
		fmt.Fprintln(w, "All targets are UPIN.")
		return
	}
	fmt.Fprintf(w, "Targets not UPIN (rank:target state): %s\n", strings.Join(p.DisabledTargets, ", "))
}

// SystemExclude marks ranks excluded, taking their targets out of every
// pool, or with clear lets excluded ranks join again (dmg system
// exclude|clear-exclude).
func (c *Client) SystemExclude(ctx context.Context, ranks []uint32, clear bool) error {
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.SystemRanksResp, error) {
		return c.ctl.SystemExclude(ctx, &ctlpb.SystemExcludeReq{Ranks: ranks, Clear: clear})
	})
	what := "system exclude"
	if clear {
		what = "system clear-exclude"
	}
	return c.printRanks(what, resp, err)
}

// PoolRebuild stops or starts a pool's rebuild (dmg pool rebuild stop|start).
func (c *Client) PoolRebuild(ctx context.Context, pool string, stop bool) error {
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolResp, error) {
		return c.ctl.PoolRebuild(ctx, &ctlpb.PoolRebuildReq{Id: pool, Stop: stop})
	})
	what := "pool rebuild start " + pool
	if stop {
		what = "pool rebuild stop " + pool
	}
	if err = ctlclient.Err(err, resp.GetError(), what); err != nil {
		return c.print(nil, err, nil)
	}
	p := resp.Pool
	return c.print(map[string]any{"uuid": p.Uuid, "label": p.Label, "rebuild": p.Rebuild}, nil, func(w io.Writer) {
		fmt.Fprintf(w, "%s: %s\n", what, rebuildLine(p.Rebuild))
	})
}
