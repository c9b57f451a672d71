package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/props"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security"
	"github.com/godaos/godaos/internal/security/auth"
	"github.com/godaos/godaos/server/engine"
	"github.com/godaos/godaos/server/mgmt"
	"github.com/godaos/godaos/server/vos"
)

// The control service answers dmg and other servers on the server's `port`
// (gRPC). Management-service calls are served by the MS leader; a server that
// does not lead forwards them there, so dmg can talk to any server.

// raftAddr is a replica's Raft address: its control port + 1.
func raftAddr(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port+1)) }

// controlAddrOfRaft maps a Raft address back to the control address.
func controlAddrOfRaft(a string) string {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return ""
	}
	n, _ := strconv.Atoi(p)
	return net.JoinHostPort(h, strconv.Itoa(n-1))
}

type ctlService struct {
	ctlpb.UnimplementedCtlServer
	s *Server

	mu      sync.Mutex
	conns   map[string]*grpc.ClientConn // other servers' control services
	engines *rpc.ClientCache            // engines' data planes, by fabric address

	// ecFolded is, by container, the last epoch every target folded its EC
	// replicas below completely (aggregateAll; owned by its goroutine, and
	// forgotten with the leadership: the next round folds again first).
	ecFolded map[string]uint64
}

func (c *ctlService) client(addr string) (ctlpb.CtlClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.conns[addr]; cc != nil {
		return ctlpb.NewCtlClient(cc), nil
	}
	cc, err := grpc.NewClient(addr, ctlclient.Transport(c.s.transport.clientTLS))
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Unreach, err, "control service at %s", addr)
	}
	c.conns[addr] = cc
	return ctlpb.NewCtlClient(cc), nil
}

func (c *ctlService) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range c.conns {
		cc.Close()
	}
	c.engines.Close()
}

// leader returns nil when this server leads the MS, else a client of the
// leader's control service.
func (c *ctlService) leader(ctx context.Context) (ctlpb.CtlClient, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(forwardedKey)) > 0 && (c.s.ms == nil || !c.s.ms.IsLeader()) {
		// forwarded here by a server that took us for the leader: no second hop,
		// which could bounce between two servers with different views
		return nil, daoserr.Newf(daoserr.NotLeader, "server %s was taken for the management service leader and is not", c.s.ctlAddr).
			WithResolution("an election is under way: retry")
	}
	if ms := c.s.ms; ms != nil {
		if ms.IsLeader() {
			return nil, nil
		}
		if l := ms.Leader(); l != "" {
			return c.client(controlAddrOfRaft(l))
		}
		return nil, daoserr.New(daoserr.NotLeader, "no management service leader elected yet").WithResolution("a majority of mgmt_svc_replicas must be up; retry")
	}
	// not a replica: ask the replicas who leads
	var last error
	for _, r := range c.s.replicas {
		cl, err := c.client(r)
		if err != nil {
			last = err
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := cl.LeaderQuery(cctx, &ctlpb.LeaderQueryReq{})
		cancel()
		if err != nil || resp.Leader == "" {
			last = err
			continue
		}
		return c.client(resp.Leader)
	}
	return nil, daoserr.Wrap(daoserr.Unreach, last, "no management service replica answers (%s)", strings.Join(c.s.replicas, ", "))
}

const forwardedKey = "godaos-forwarded"

// forwarded marks a call forwarded to the leader.
func forwarded(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, forwardedKey, "1")
}

func (c *ctlService) LeaderQuery(ctx context.Context, _ *ctlpb.LeaderQueryReq) (*ctlpb.LeaderQueryResp, error) {
	resp := &ctlpb.LeaderQueryResp{Replicas: c.s.replicas}
	if c.s.ms == nil {
		cl, err := c.leader(ctx)
		if err != nil {
			resp.Error = ctlclient.FromError(err)
			return resp, nil
		}
		return cl.LeaderQuery(forwarded(ctx), &ctlpb.LeaderQueryReq{})
	}
	if l := c.s.ms.Leader(); l != "" {
		resp.Leader = controlAddrOfRaft(l)
	}
	return resp, nil
}

func (c *ctlService) ServerQuery(ctx context.Context, _ *ctlpb.ServerQueryReq) (*ctlpb.ServerQueryResp, error) {
	host, _ := os.Hostname()
	resp := &ctlpb.ServerQueryResp{Ranks: c.s.Ranks(), MsReplica: c.s.ms != nil, Host: host}
	for _, re := range c.s.engines {
		ec := c.s.cfg.Engines[re.idx]
		scm, bdev := ec.Storage[0], ec.Storage[1]
		resp.Storage = append(resp.Storage, &ctlpb.EngineStorage{Engine: uint32(re.idx),
			ScmClass: scm.Class, ScmMount: scm.ScmMount, ScmSize: uint64(scm.ScmSize), ScmFsFree: fsFree(scm.ScmMount),
			BdevClass: bdev.Class, BdevPath: bdev.BdevList[0], BdevSize: uint64(bdev.BdevSize), BdevFsFree: fsFree(bdev.BdevList[0]),
			State: re.stateNow()})
		if eng := re.engine(); eng != nil {
			st := resp.Storage[len(resp.Storage)-1]
			st.Pools = uint32(len(eng.Pools()))
			st.ScmReserved, st.NvmeReserved = eng.Reserved()
		}
	}
	return resp, nil
}

// fsFree is the space available to unprivileged writers on path's filesystem.
func fsFree(path string) uint64 {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return 0
	}
	return st.Bavail * uint64(st.Bsize)
}

func memberPB(m mgmt.Member) *ctlpb.Member {
	return &ctlpb.Member{Rank: m.Rank, Uuid: m.UUID, ControlAddr: m.ControlAddr, FabricAddr: m.FabricAddr,
		FaultDomain: m.FaultDomain, State: m.State, Incarnation: m.Incarnation, Targets: m.Targets}
}

func (c *ctlService) Join(ctx context.Context, req *ctlpb.JoinReq) (*ctlpb.JoinResp, error) {
	if resp, done, err := forward(c, ctx, req, ctlpb.CtlClient.Join, func(e *ctlpb.Error) *ctlpb.JoinResp { return &ctlpb.JoinResp{Error: e} }); done {
		return resp, err
	}
	m := req.GetMember()
	if m == nil {
		return &ctlpb.JoinResp{Error: ctlclient.FromError(daoserr.New(daoserr.Inval, "join without a member"))}, nil
	}
	got, err := c.s.ms.Join(mgmt.Member{UUID: m.Uuid, ControlAddr: m.ControlAddr, FabricAddr: m.FabricAddr, FaultDomain: m.FaultDomain, Targets: m.Targets})
	if err != nil {
		return &ctlpb.JoinResp{Error: ctlclient.FromError(err)}, nil
	}
	return &ctlpb.JoinResp{Member: memberPB(got)}, nil
}

func (c *ctlService) SystemQuery(ctx context.Context, req *ctlpb.SystemQueryReq) (*ctlpb.SystemQueryResp, error) {
	if resp, done, err := forward(c, ctx, req, ctlpb.CtlClient.SystemQuery, func(e *ctlpb.Error) *ctlpb.SystemQueryResp { return &ctlpb.SystemQueryResp{Error: e} }); done {
		return resp, err
	}
	ms, ver, err := c.s.ms.Members()
	resp := &ctlpb.SystemQueryResp{Error: ctlclient.FromError(err), MapVersion: ver, Leader: controlAddrOfRaft(c.s.ms.Leader())}
	for _, m := range ms {
		resp.Members = append(resp.Members, memberPB(m))
	}
	return resp, nil
}

// pool labels: DAOS's rule (letters, digits, '-', '_', '.', ':'; up to 127; not a UUID).
var labelRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,127}$`)

// DefaultTierRatio is the SCM share of a pool created with a total size (DAOS: 6%).
const DefaultTierRatio = 6

// poolPB is p on the wire; targets 0 counts the targets of its map.
func poolPB(p mgmt.Pool, targets uint32) *ctlpb.Pool {
	if targets == 0 {
		for _, r := range p.Map {
			targets += uint32(len(r.States))
		}
	}
	return &ctlpb.Pool{Uuid: p.UUID, Label: p.Label, State: p.State, Ranks: p.Ranks, TgtScm: p.TgtScm, TgtNvme: p.TgtNvme,
		Targets: targets, Owner: p.Owner, Group: p.Group, Props: p.Props, MapVersion: p.MapVersion, DisabledTargets: disabledTargets(p)}
}

func (c *ctlService) PoolCreate(ctx context.Context, req *ctlpb.PoolCreateReq) (*ctlpb.PoolCreateResp, error) {
	if resp, done, err := forward(c, ctx, req, ctlpb.CtlClient.PoolCreate, func(e *ctlpb.Error) *ctlpb.PoolCreateResp { return &ctlpb.PoolCreateResp{Error: e} }); done {
		return resp, err
	}
	p, targets, err := c.poolCreate(ctx, req)
	if err != nil {
		return &ctlpb.PoolCreateResp{Error: ctlclient.FromError(err)}, nil
	}
	if q, err := c.s.ms.FindPool(p.UUID); err == nil {
		c.pushPoolMap(ctx, q) // the engines need it for the first I/O; without it they ask
	}
	return &ctlpb.PoolCreateResp{Pool: poolPB(p, targets)}, nil
}

// rankTargets is one rank of a pool and its engine.
type rankTargets struct {
	rank    uint32
	fabric  string
	targets uint32
}

func (c *ctlService) poolRanks(ranks []uint32) ([]rankTargets, error) {
	members, _, err := c.s.ms.Members()
	if err != nil {
		return nil, err
	}
	byRank := map[uint32]mgmt.Member{}
	for _, m := range members {
		byRank[m.Rank] = m
	}
	if len(ranks) == 0 {
		for _, m := range members {
			if m.State == mgmt.MemberJoined {
				ranks = append(ranks, m.Rank)
			}
		}
	}
	if len(ranks) == 0 {
		return nil, daoserr.New(daoserr.Unreach, "no ranks have joined the system").WithResolution("start the servers and check 'dmg system query'")
	}
	var out []rankTargets
	for _, r := range ranks {
		m, ok := byRank[r]
		if !ok || m.State != mgmt.MemberJoined {
			return nil, daoserr.Newf(daoserr.Unreach, "rank %d is not joined", r).WithResolution("choose joined ranks ('dmg system query')")
		}
		out = append(out, rankTargets{rank: r, fabric: m.FabricAddr, targets: m.Targets})
	}
	return out, nil
}

func (c *ctlService) poolCreate(ctx context.Context, req *ctlpb.PoolCreateReq) (mgmt.Pool, uint32, error) {
	if !labelRE.MatchString(req.Label) {
		return mgmt.Pool{}, 0, daoserr.Newf(daoserr.Inval, "pool label %q: use 1 to 127 letters, digits, '-', '_', '.' or ':'", req.Label)
	}
	if _, err := vos.ParseUUID(req.Label); err == nil {
		return mgmt.Pool{}, 0, daoserr.Newf(daoserr.Inval, "pool label %q looks like a UUID", req.Label).WithResolution("choose a label that is not a UUID")
	}
	ranks, err := c.poolRanks(req.Ranks)
	if err != nil {
		return mgmt.Pool{}, 0, err
	}
	var ntgt uint32
	for _, r := range ranks {
		ntgt += r.targets
	}
	scm, nvme := req.ScmSize, req.NvmeSize
	if req.TotalSize > 0 {
		scm = req.TotalSize * DefaultTierRatio / 100
		nvme = req.TotalSize - scm
	}
	if scm == 0 {
		return mgmt.Pool{}, 0, daoserr.New(daoserr.Inval, "pool size missing").WithResolution("give --size (e.g. 10G) or --scm-size and --nvme-size")
	}
	acl := security.DefaultPoolACL()
	if len(req.Acl) > 0 {
		if acl, err = security.ParseACL(strings.Join(req.Acl, "\n")); err != nil {
			return mgmt.Pool{}, 0, daoserr.Context(err, "pool %s ACL", req.Label)
		}
	}
	owner, group := principal(req.User, "root"), principal(req.Group, "root")
	for k, v := range req.Props {
		if req.Props[k], err = props.Check(k, v); err != nil {
			return mgmt.Pool{}, 0, daoserr.Context(err, "pool %s", req.Label)
		}
	}
	tgtScm, tgtNvme := scm/uint64(ntgt), nvme/uint64(ntgt)
	if tgtScm < 1<<20 {
		return mgmt.Pool{}, 0, daoserr.Newf(daoserr.Inval, "pool of %d SCM bytes over %d targets leaves each less than 1 MiB", scm, ntgt).WithResolution("give the pool more space")
	}
	var u vos.UUID
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80
	p := mgmt.Pool{UUID: u.String(), Label: req.Label, State: mgmt.PoolCreating, TgtScm: tgtScm, TgtNvme: tgtNvme, MapVersion: 1,
		Owner: owner, Group: group, Props: req.Props, ACL: aclStrings(acl)}
	for _, r := range ranks {
		p.Ranks = append(p.Ranks, r.rank)
	}
	if err := c.s.ms.AddPool(p); err != nil {
		return mgmt.Pool{}, 0, err
	}
	create := &enginepb.TargetCreateReq{Pool: u[:], ScmSize: tgtScm, NvmeSize: tgtNvme}
	rollback := func() {
		// Destroy on every rank (idempotent): a failed rank may have created
		// some of its targets, a timed-out subtree all of them.
		ctx := context.WithoutCancel(ctx)
		if _, failed := c.fanOut(ctx, ranks, enginepb.OpTargetDestroy, &enginepb.TargetDestroyReq{Pool: u[:]}); len(failed) > 0 {
			c.s.log.Warn("pool create rollback: targets left behind", "pool", p.UUID,
				"err", failureThen("destroy pool "+p.UUID, failed, "its targets stay on those ranks' storage until the pool is destroyed there"))
		}
		if err := c.s.ms.RemovePool(p.UUID); err != nil {
			c.s.log.Warn("pool create rollback: record left behind", "pool", p.UUID, "err", err)
		}
	}
	if _, failed := c.fanOut(ctx, ranks, enginepb.OpTargetCreate, create); len(failed) > 0 {
		rollback()
		return mgmt.Pool{}, 0, failureThen("create pool "+req.Label, failed,
			"the pool was not created: its targets on the other ranks were destroyed again (this server logs any it could not destroy)")
	}
	if err := c.s.ms.SetPoolState(p.UUID, mgmt.PoolReady); err != nil {
		rollback()
		return mgmt.Pool{}, 0, err
	}
	p.State = mgmt.PoolReady
	return p, ntgt, nil
}

// principal is a user or group name as an ACL principal ("alice" -> "alice@").
func principal(name, def string) string {
	if name == "" {
		name = def
	}
	return auth.Principal(name)
}

func aclStrings(acl security.ACL) []string {
	out := make([]string, len(acl))
	for i, a := range acl {
		out[i] = a.String()
	}
	return out
}

func (c *ctlService) PoolACL(ctx context.Context, req *ctlpb.PoolACLReq) (*ctlpb.PoolACLResp, error) {
	if resp, done, err := forward(c, ctx, req, ctlpb.CtlClient.PoolACL, func(e *ctlpb.Error) *ctlpb.PoolACLResp { return &ctlpb.PoolACLResp{Error: e} }); done {
		return resp, err
	}
	p, err := c.s.ms.FindPool(req.Id)
	if err != nil {
		return &ctlpb.PoolACLResp{Error: ctlclient.FromError(err)}, nil
	}
	acl, err := security.ParseACL(strings.Join(p.ACL, "\n"))
	if err == nil {
		acl, err = changeACL(acl, req)
	}
	if err == nil && req.Mode != ctlpb.PoolACLReq_GET {
		err = c.s.ms.SetPoolACL(p.UUID, aclStrings(acl))
	}
	if err != nil {
		return &ctlpb.PoolACLResp{Error: ctlclient.FromError(daoserr.Context(err, "pool %s", p.Label))}, nil
	}
	return &ctlpb.PoolACLResp{Entries: aclStrings(acl), Owner: p.Owner, Group: p.Group}, nil
}

func (c *ctlService) PoolProp(ctx context.Context, req *ctlpb.PoolPropReq) (*ctlpb.PoolPropResp, error) {
	if resp, done, err := forward(c, ctx, req, ctlpb.CtlClient.PoolProp, func(e *ctlpb.Error) *ctlpb.PoolPropResp { return &ctlpb.PoolPropResp{Error: e} }); done {
		return resp, err
	}
	p, err := c.s.ms.FindPool(req.Id)
	if err != nil {
		return &ctlpb.PoolPropResp{Error: ctlclient.FromError(err)}, nil
	}
	if len(req.Set) > 0 {
		set := map[string]string{}
		for k, v := range req.Set {
			if set[k], err = props.Check(k, v); err != nil {
				return &ctlpb.PoolPropResp{Error: ctlclient.FromError(daoserr.Context(err, "pool %s", p.Label))}, nil
			}
		}
		if err := c.s.ms.SetPoolProps(p.UUID, set); err != nil {
			return &ctlpb.PoolPropResp{Error: ctlclient.FromError(err)}, nil
		}
		if p, err = c.s.ms.FindPool(p.UUID); err != nil {
			return &ctlpb.PoolPropResp{Error: ctlclient.FromError(err)}, nil
		}
	}
	all := props.Merge(p.Props)
	all["label"] = p.Label
	return &ctlpb.PoolPropResp{Props: all, Label: p.Label}, nil
}

// changeACL applies an ACL request to acl.
func changeACL(acl security.ACL, req *ctlpb.PoolACLReq) (security.ACL, error) {
	switch req.Mode {
	case ctlpb.PoolACLReq_GET:
		return acl, nil
	case ctlpb.PoolACLReq_OVERWRITE, ctlpb.PoolACLReq_UPDATE:
		entries, err := security.ParseACL(strings.Join(req.Entries, "\n"))
		if err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			return nil, daoserr.New(daoserr.Inval, "no ACL entries given").WithResolution("give an --acl-file with one ACE per line, or --entry")
		}
		if req.Mode == ctlpb.PoolACLReq_OVERWRITE {
			return entries, nil
		}
		return acl.Update(entries...), nil
	case ctlpb.PoolACLReq_DELETE:
		name, group := req.Principal, false
		switch {
		case strings.HasPrefix(name, "u:"):
			name = name[2:]
		case strings.HasPrefix(name, "g:"):
			name, group = name[2:], true
		case name == security.Owner || name == security.OwnerGroup || name == security.Everyone:
		default:
			return nil, daoserr.Newf(daoserr.Inval, "principal %q", req.Principal).WithResolution("write OWNER@, GROUP@, EVERYONE@, u:user@ or g:group@")
		}
		return acl.Delete(name, group)
	}
	return nil, daoserr.Newf(daoserr.Inval, "ACL request mode %d", req.Mode)
}

// failure summarises per-rank errors in one error naming the ranks. It says
// nothing of what became of the operation on the other ranks: callers that
// know use failureThen.
func failure(what string, failed map[uint32]error) error {
	return failureThen(what, failed, "")
}

// failureThen is failure that also tells the user what became of the
// operation (outcome, e.g. "the pool was not created: ...").
func failureThen(what string, failed map[uint32]error, outcome string) error {
	ranks := slices.Sorted(maps.Keys(failed))
	names := make([]string, len(ranks))
	for i, r := range ranks {
		names[i] = strconv.Itoa(int(r))
	}
	var first error
	if len(ranks) > 0 {
		first = failed[ranks[0]]
	}
	code := daoserr.CodeOf(first)
	if code == 0 {
		code = daoserr.Unreach
	}
	res := "check those ranks with 'dmg system query' and their engine logs"
	if outcome != "" {
		res += "; " + outcome
	}
	return daoserr.Newf(code, "%s failed on rank(s) %s: %v", what, strings.Join(names, ","), first).WithResolution("%s", res)
}

// seal encodes a request only servers may make (enginepb.ServerOps), signed
// with the server key.
func (c *ctlService) seal(op uint16, m proto.Message) ([]byte, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Misc, err, "encode opcode %d", op)
	}
	if !enginepb.ServerOps[op] {
		return b, nil
	}
	return c.s.transport.seal(op, b)
}

// fanOut runs one operation on every target of the given ranks, over a tree of
// ranks (engine.Broadcast): this server contacts a few ranks, not each. It
// returns the ranks where it succeeded and the errors of the others.
func (c *ctlService) fanOut(ctx context.Context, ranks []rankTargets, op uint16, m proto.Message) ([]rankTargets, map[uint32]error) {
	done, failed, _ := c.fanOutEpoch(ctx, ranks, op, m)
	return done, failed
}

// fanOutEpoch is fanOut that also returns the largest epoch the targets
// answered with (engine.BroadcastEpoch).
func (c *ctlService) fanOutEpoch(ctx context.Context, ranks []rankTargets, op uint16, m proto.Message) ([]rankTargets, map[uint32]error, uint64) {
	hdr, err := c.seal(op, m)
	if err != nil {
		failed := map[uint32]error{}
		for _, r := range ranks {
			failed[r.rank] = err
		}
		return nil, failed, 0
	}
	peers := make([]*enginepb.Peer, len(ranks))
	for i, r := range ranks {
		peers[i] = &enginepb.Peer{Rank: r.rank, Addr: r.fabric, Targets: r.targets}
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	failed, epoch := engine.BroadcastEpoch(ctx, c.engines.Get, c.s.transport.seal, op, hdr, peers, engine.DefaultDegree, nil)
	var done []rankTargets
	for _, r := range ranks {
		if failed[r.rank] == nil {
			done = append(done, r)
		}
	}
	return done, failed, epoch
}

func (c *ctlService) PoolDestroy(ctx context.Context, req *ctlpb.PoolReq) (*ctlpb.PoolResp, error) {
	if resp, done, err := forward(c, ctx, req, ctlpb.CtlClient.PoolDestroy, func(e *ctlpb.Error) *ctlpb.PoolResp { return &ctlpb.PoolResp{Error: e} }); done {
		return resp, err
	}
	p, err := c.s.ms.FindPool(req.Id)
	if err != nil {
		return &ctlpb.PoolResp{Error: ctlclient.FromError(err)}, nil
	}
	if n := len(p.Conts); n > 0 && !req.Recursive {
		return &ctlpb.PoolResp{Error: ctlclient.FromError(daoserr.Newf(daoserr.Busy, "pool %s holds %d container(s)", p.Label, n).
			WithResolution("destroy them first, or destroy the pool with them: dmg pool destroy --recursive %s", p.Label))}, nil
	}
	if err := c.s.ms.SetPoolState(p.UUID, mgmt.PoolDestroying); err != nil {
		return &ctlpb.PoolResp{Error: ctlclient.FromError(err)}, nil
	}
	ranks, err := c.livePoolRanks(p)
	if err != nil {
		return &ctlpb.PoolResp{Error: ctlclient.FromError(err)}, nil
	}
	u, _ := vos.ParseUUID(p.UUID)
	if _, failed := c.fanOut(ctx, ranks, enginepb.OpTargetDestroy, &enginepb.TargetDestroyReq{Pool: u[:]}); len(failed) > 0 {
		return &ctlpb.PoolResp{Error: ctlclient.FromError(failureThen("destroy pool "+p.Label, failed,
			fmt.Sprintf("the pool's targets on the other ranks are destroyed, the pool stays listed as %s: run 'dmg pool destroy %s' again once those ranks are up", mgmt.PoolDestroying, p.Label)))}, nil
	}
	if err := c.s.ms.RemovePool(p.UUID); err != nil {
		return &ctlpb.PoolResp{Error: ctlclient.FromError(err)}, nil
	}
	return &ctlpb.PoolResp{Pool: poolPB(p, 0)}, nil
}

func (c *ctlService) PoolList(ctx context.Context, req *ctlpb.PoolListReq) (*ctlpb.PoolListResp, error) {
	if resp, done, err := forward(c, ctx, req, ctlpb.CtlClient.PoolList, func(e *ctlpb.Error) *ctlpb.PoolListResp { return &ctlpb.PoolListResp{Error: e} }); done {
		return resp, err
	}
	pools, err := c.s.ms.Pools()
	resp := &ctlpb.PoolListResp{Error: ctlclient.FromError(err)}
	for _, p := range pools {
		resp.Pools = append(resp.Pools, poolPB(p, 0))
	}
	return resp, nil
}

func (c *ctlService) PoolQuery(ctx context.Context, req *ctlpb.PoolReq) (*ctlpb.PoolResp, error) {
	if resp, done, err := forward(c, ctx, req, ctlpb.CtlClient.PoolQuery, func(e *ctlpb.Error) *ctlpb.PoolResp { return &ctlpb.PoolResp{Error: e} }); done {
		return resp, err
	}
	p, err := c.s.ms.FindPool(req.Id)
	if err != nil {
		return &ctlpb.PoolResp{Error: ctlclient.FromError(err)}, nil
	}
	if req.Cred != nil {
		// a client's query (dmg's carry no credential: the admin certificate vouches)
		tok, err := c.caller(req.Cred)
		if err == nil {
			_, err = poolAccess(tok, p, accessRule{mode: "read-only", needs: []security.Perm{security.PermRead | security.PermGetProp}})
		}
		if err != nil {
			return &ctlpb.PoolResp{Error: ctlclient.FromError(err)}, nil
		}
	}
	// Space is summed over the ranks that answer: a rank that died and is
	// not excluded yet (or is paused) must not make the query fail or hang;
	// its targets' space is missing until then, and the log says so.
	resp := &ctlpb.PoolResp{}
	u, _ := vos.ParseUUID(p.UUID)
	members, _, err := c.s.ms.Members()
	if err != nil {
		return &ctlpb.PoolResp{Error: ctlclient.FromError(err)}, nil
	}
	for _, r := range p.Map {
		if !slices.ContainsFunc(r.States, serves) {
			continue
		}
		var m *mgmt.Member
		for i := range members {
			if members[i].Rank == r.Rank && members[i].State == mgmt.MemberJoined {
				m = &members[i]
			}
		}
		if m == nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		scm, nvme, err := c.queryRankSpace(rctx, m.FabricAddr, u, len(r.States))
		cancel()
		if err != nil {
			c.s.log.Info("pool query: a rank does not answer; its space is left out", "pool", p.Label, "rank", r.Rank, "err", err)
			continue
		}
		resp.ScmUsed += scm
		resp.NvmeUsed += nvme
	}
	resp.Pool = poolPB(p, 0)
	if c.s.rebuild != nil {
		resp.Pool.Rebuild = rebuildPB(c.s.rebuild.Status(p.UUID))
	}
	return resp, nil
}

// ---- joining ----

// engineUUID returns the engine's identity, kept in its SCM directory so that a
// restarted engine gets its rank back.
func engineUUID(scmDir string) (string, error) {
	path := filepath.Join(scmDir, "engine.uuid")
	if b, err := os.ReadFile(path); err == nil {
		if u, err := vos.ParseUUID(strings.TrimSpace(string(b))); err == nil {
			return u.String(), nil
		}
	}
	var u vos.UUID
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	if err := os.MkdirAll(scmDir, 0o750); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(u.String()+"\n"), 0o640); err != nil {
		return "", err
	}
	return u.String(), nil
}

// queryRankSpace sums the space used by pool u on a rank's targets.
func (c *ctlService) queryRankSpace(ctx context.Context, addr string, u vos.UUID, targets int) (scm, nvme uint64, err error) {
	cl, err := c.engines.Get(ctx, addr)
	if err != nil {
		return 0, 0, err
	}
	for t := range targets {
		// sealed for each target: engines refuse a sealed request seen before
		hdr, err := c.seal(enginepb.OpTargetQuery, &enginepb.TargetDestroyReq{Pool: u[:]})
		if err != nil {
			return 0, 0, err
		}
		rep, err := cl.Call(ctx, rpc.Message{Opcode: enginepb.OpTargetQuery, Target: uint32(t), Header: hdr}, nil)
		var q enginepb.TargetQueryRep
		if err == nil {
			err = proto.Unmarshal(rep.Header, &q)
		}
		if err != nil {
			return 0, 0, daoserr.Context(err, "target %d", t)
		}
		scm += q.ScmUsed
		nvme += q.NvmeUsed
	}
	return scm, nvme, nil
}
