// Package daos is the native client API. This first part connects: it asks
// daos_agent for attach info and a signed credential, connects to pools, and
// creates, opens, lists and destroys containers through the pool service that
// every engine serves on its data plane. Objects, arrays, KV, snapshots and
// transactions build on it.
package daos

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/agentsock"
	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/agentpb"
	"github.com/godaos/godaos/internal/proto/authpb"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security/auth"
)

// Access modes for pools (DAOS_PC_*) and containers (DAOS_COO_*).
const (
	RO = ctlpb.AccessFlags_RO
	RW = ctlpb.AccessFlags_RW
	EX = ctlpb.AccessFlags_EX
)

// Options shape a client.
type Options struct {
	// AgentSocket is daos_agent's socket (default $DAOS_AGENT_DRPC_DIR/daos_agent.sock,
	// else /var/run/daos_agent/daos_agent.sock).
	AgentSocket string
	// Insecure runs without an agent, for development against servers with
	// allow_insecure: the client makes its own unsigned credential and asks
	// AccessPoints (host:port) for attach info. It says so in the log.
	Insecure     bool
	AccessPoints []string
	Logger       *slog.Logger
}

// Client is a process's connection to a GoDAOS system.
type Client struct {
	opts    Options
	log     *slog.Logger
	agent   agentpb.AgentClient
	agentCC *grpc.ClientConn
	engines *rpc.ClientCache

	sock    string // the agent's socket
	mu      sync.Mutex
	info    *agentpb.AttachInfoResp
	cred    *authpb.Credential
	credExp time.Time
	credUID int // the effective uid the credential was issued to
}

// Init connects to the agent (or, Insecure, to the access points) and fetches
// the attach info.
func Init(ctx context.Context, opts Options) (*Client, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Client{opts: opts, log: opts.Logger, engines: rpc.NewClientCache(rpc.ClientOptions{Logger: opts.Logger})}
	if opts.Insecure {
		c.log.Warn("daos client in insecure mode: no agent, unsigned credentials (servers must run with allow_insecure)")
		if len(opts.AccessPoints) == 0 {
			return nil, daoserr.New(daoserr.Inval, "insecure mode without access points").WithResolution("give the servers' control addresses (host:port)")
		}
	} else {
		sock := opts.AgentSocket
		if sock == "" {
			sock = agentsock.Path()
		}
		if _, err := os.Stat(sock); err != nil {
			return nil, daoserr.Wrap(daoserr.AgentIncompat, err, "no daos_agent socket at %s", sock).
				WithResolution("start daos_agent, or set DAOS_AGENT_DRPC_DIR to the directory of its socket")
		}
		ac, cc, err := agentsock.Dial(sock)
		if err != nil {
			return nil, daoserr.Wrap(daoserr.AgentIncompat, err, "daos_agent at %s", sock)
		}
		c.agentCC, c.agent, c.sock = cc, ac, sock
	}
	if _, err := c.attachInfo(ctx, false); err != nil {
		c.Fini()
		return nil, err
	}
	return c, nil
}

// Fini closes the client's connections.
func (c *Client) Fini() error {
	c.engines.Close()
	if c.agentCC != nil {
		return c.agentCC.Close()
	}
	return nil
}

// AttachInfo is the system as the agent describes it.
func (c *Client) AttachInfo() *agentpb.AttachInfoResp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info
}

func (c *Client) attachInfo(ctx context.Context, refresh bool) (*agentpb.AttachInfoResp, error) {
	c.mu.Lock()
	info := c.info
	c.mu.Unlock()
	if info != nil && !refresh {
		return info, nil
	}
	var err error
	if c.agent != nil {
		var r *agentpb.AttachInfoResp
		r, err = c.agent.GetAttachInfo(ctx, &agentpb.AttachInfoReq{Refresh: refresh})
		if err = ctlclient.Err(err, r.GetError(), "attach info from daos_agent"); err == nil {
			info = r
		}
	} else {
		var r *ctlpb.AttachInfoResp
		if r, err = ctlclient.AttachInfo(ctx, ctlclient.Hosts(c.opts.AccessPoints, 0), nil); err == nil {
			info = agentsock.FromCtl(r)
		}
	}
	if err != nil {
		return nil, err
	}
	if len(info.Members) == 0 {
		return nil, daoserr.New(daoserr.Unreach, "the system has no ranks").WithResolution("start the servers ('dmg system query' shows them)")
	}
	c.mu.Lock()
	c.info = info
	c.mu.Unlock()
	return info, nil
}

// credential is the caller's, from the agent, reused until shortly before it
// expires.
func (c *Client) credential(ctx context.Context) (*authpb.Credential, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	uid := os.Geteuid()
	if c.cred != nil && time.Now().Before(c.credExp) && uid == c.credUID {
		return c.cred, nil
	}
	var cred *authpb.Credential
	if c.agent != nil {
		// A connection of its own: the agent learns who is asking when a
		// connection is made (SO_PEERCRED), and a process may have changed its
		// uid since Init.
		ac, cc, err := agentsock.Dial(c.sock)
		if err != nil {
			return nil, daoserr.Wrap(daoserr.AgentIncompat, err, "daos_agent at %s", c.sock)
		}
		r, err := ac.GetCredential(ctx, &agentpb.CredentialReq{})
		cc.Close()
		if err := ctlclient.Err(err, r.GetError(), "credential from daos_agent"); err != nil {
			return nil, err
		}
		cred = r.Cred
	} else {
		tok, err := auth.TokenFor(uint32(os.Getuid()), uint32(os.Getgid()))
		if err != nil {
			return nil, err
		}
		host, _ := os.Hostname()
		now := time.Now()
		tok.Host, tok.Issued, tok.Expires = host, now.Unix(), now.Add(auth.DefaultTTL).Unix()
		if cred, err = auth.Sign(tok, nil, ""); err != nil {
			return nil, err
		}
	}
	var tok authpb.Token
	if err := proto.Unmarshal(cred.Token, &tok); err != nil {
		return nil, daoserr.Wrap(daoserr.Proto, err, "credential from daos_agent")
	}
	// renew at half life: a credential must not expire between here and the engine
	c.cred, c.credExp, c.credUID = cred, time.Now().Add(time.Until(time.Unix(tok.Expires, 0))/2), uid
	return cred, nil
}

// svcRetryFor bounds how long a pool-service call waits out a management
// service election.
var svcRetryFor = 30 * time.Second

// svcCall sends a pool-service request to an engine (see svcSend), again
// while the management service has no leader, for up to svcRetryFor.
func (c *Client) svcCall(ctx context.Context, op uint16, req, resp proto.Message) error {
	deadline := time.Now().Add(svcRetryFor)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		err := c.svcSend(ctx, op, req, resp)
		if !daoserr.Is(err, daoserr.NotLeader) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// svcTryTimeout bounds how long one engine may take to answer some
// pool-service requests before the next is tried: a pool map refresh must
// not wait for a stopped (SIGSTOP) engine, which is what it is working around.
var svcTryTimeout = map[uint16]time.Duration{enginepb.OpSvcPoolMap: 3 * time.Second}

// svcSend sends a pool-service request to an engine, trying the ranks in turn
// while they are unreachable.
func (c *Client) svcSend(ctx context.Context, op uint16, req, resp proto.Message) error {
	info, err := c.attachInfo(ctx, false)
	if err != nil {
		return err
	}
	hdr, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	var last error
	for attempt := 0; attempt < 2; attempt++ {
		for _, m := range info.Members {
			if m.State != "joined" {
				continue
			}
			cl, err := c.engines.Get(ctx, m.FabricAddr)
			if err != nil {
				last = err
				continue
			}
			tctx, cancel := ctx, context.CancelFunc(func() {})
			if d := svcTryTimeout[op]; d > 0 {
				tctx, cancel = context.WithTimeout(ctx, d)
			}
			rep, err := cl.Call(tctx, rpc.Message{Opcode: op, Target: 0, Header: hdr}, nil)
			cancel()
			if daoserr.Is(err, daoserr.Unreach) || daoserr.Is(err, daoserr.Shutdown) || (err != nil && tctx.Err() != nil && ctx.Err() == nil) {
				last = err
				continue
			}
			if err != nil {
				return err
			}
			return proto.Unmarshal(rep.Header, resp)
		}
		// every rank we knew failed: the system map may have moved on
		if info, err = c.attachInfo(ctx, true); err != nil {
			return err
		}
	}
	return daoserr.Wrap(daoserr.Unreach, last, "no engine of the system answers")
}

// Pool is a connection to a pool.
type Pool struct {
	c          *Client
	Info       *ctlpb.Pool
	Handle     string
	Perms      string // permission letters the pool's ACL grants
	Members    []*ctlpb.Member
	MapVersion uint32

	poolMapState
	connectMap   *enginepb.PoolMap // the map the connect returned (see poolmap.go)
	disconnected atomic.Bool
	seen         atomic.Uint64 // the newest epoch this client's writes got (transactions read at or after it)
}

// PoolConnect connects to a pool by label or UUID in mode RO, RW or EX.
func (c *Client) PoolConnect(ctx context.Context, id string, mode ctlpb.AccessFlags) (*Pool, error) {
	cred, err := c.credential(ctx)
	if err != nil {
		return nil, err
	}
	var r ctlpb.PoolConnectResp
	if err := c.svcCall(ctx, enginepb.OpSvcPoolConnect, &ctlpb.PoolConnectReq{Id: id, Cred: cred, Flags: uint32(mode)}, &r); err != nil {
		return nil, err
	}
	return &Pool{c: c, Info: r.Pool, Handle: r.Handle, Perms: r.Perms, Members: r.Members, MapVersion: r.MapVersion, connectMap: r.PoolMap}, nil
}

// ACLChange says how ContACL changes a container's ACL; the zero value reads it.
type ACLChange = ctlclient.ACLChange

// ContACL reads (permission a) or changes (A) container cont's ACL and
// returns it with the owner and group.
func (p *Pool) ContACL(ctx context.Context, cont string, ch ACLChange) (acl []string, owner, group string, err error) {
	cred, err := p.credential(ctx)
	if err != nil {
		return nil, "", "", err
	}
	var r ctlpb.PoolACLResp
	err = p.c.svcCall(ctx, enginepb.OpSvcContACL, &ctlpb.ContACLReq{Pool: p.Info.Uuid, Cont: cont, Cred: cred, Acl: ch.Req("")}, &r)
	return r.Entries, r.Owner, r.Group, err
}

// ContProps sets container cont's properties in set (permission T; "label"
// renames it), then returns them all (with t).
func (p *Pool) ContProps(ctx context.Context, cont string, set map[string]string) (map[string]string, error) {
	cred, err := p.credential(ctx)
	if err != nil {
		return nil, err
	}
	var r ctlpb.PoolPropResp
	err = p.c.svcCall(ctx, enginepb.OpSvcContProp, &ctlpb.ContPropReq{Pool: p.Info.Uuid, Cont: cont, Cred: cred, Set: set}, &r)
	return r.Props, err
}

// AttrChange is what ContAttrs does: set and delete attributes (permission
// w), then return the values of Get and, with List, every name (r).
type AttrChange struct {
	Set  map[string][]byte
	Del  []string
	Get  []string
	List bool
}

// ContAttrs changes and reads container cont's user attributes.
func (p *Pool) ContAttrs(ctx context.Context, cont string, ch AttrChange) (values map[string][]byte, names []string, err error) {
	cred, err := p.credential(ctx)
	if err != nil {
		return nil, nil, err
	}
	var r ctlpb.ContAttrResp
	err = p.c.svcCall(ctx, enginepb.OpSvcContAttr, &ctlpb.ContAttrReq{Pool: p.Info.Uuid, Cont: cont, Cred: cred,
		Set: ch.Set, Del: ch.Del, Get: ch.Get, List: ch.List}, &r)
	return r.Values, r.Names, err
}

// PoolSpace is a pool's space per tier.
type PoolSpace struct {
	ScmTotal, ScmUsed, NvmeTotal, NvmeUsed uint64
}

// Query asks the pool's targets how much space they hold and use.
func (p *Pool) Query(ctx context.Context) (PoolSpace, error) {
	cred, err := p.credential(ctx)
	if err != nil {
		return PoolSpace{}, err
	}
	var r ctlpb.PoolResp
	if err := p.c.svcCall(ctx, enginepb.OpSvcPoolQuery, &ctlpb.PoolReq{Id: p.Info.Uuid, Cred: cred}, &r); err != nil {
		return PoolSpace{}, err
	}
	n := uint64(r.Pool.GetTargets())
	return PoolSpace{ScmTotal: r.Pool.GetTgtScm() * n, ScmUsed: r.ScmUsed, NvmeTotal: r.Pool.GetTgtNvme() * n, NvmeUsed: r.NvmeUsed}, nil
}

// ContCreateOptions describe a new container.
type ContCreateOptions struct {
	Label string
	Type  string // POSIX, HDF5, ... (default unknown)
	Props map[string]string
	ACL   []string // ACE strings (default: DAOS's default container ACL)
}

// ContCreate creates a container owned by the caller.
func (p *Pool) ContCreate(ctx context.Context, o ContCreateOptions) (*ctlpb.Cont, error) {
	cred, err := p.credential(ctx)
	if err != nil {
		return nil, err
	}
	var r ctlpb.ContResp
	// the UUID is chosen here, as DAOS's client does, so that a create retried
	// after a lost answer finds the container it made instead of making two
	err = p.c.svcCall(ctx, enginepb.OpSvcContCreate, &ctlpb.ContCreateReq{Pool: p.Info.Uuid, Cred: cred, Label: o.Label,
		Type: o.Type, Props: o.Props, Acl: o.ACL, Uuid: newUUID()}, &r)
	return r.Cont, err
}

func newUUID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

// Cont is an open container.
type Cont struct {
	Pool   *Pool
	Info   *ctlpb.Cont
	Handle string
	Perms  string

	oidMu           sync.Mutex
	oidNext, oidEnd uint64 // the leased range NextOID hands out from

	capab  atomic.Pointer[[]byte] // the handle's capability, attached to object requests
	mode   ctlpb.AccessFlags      // how it was opened: a reopen (expired capability) opens it so again
	closed atomic.Bool
	reopen sync.Mutex // one reopen at a time
}

// capBytes is the capability object requests carry.
func (c *Cont) capBytes() []byte {
	if b := c.capab.Load(); b != nil {
		return *b
	}
	return nil
}

// OIDLease is how many object IDs NextOID reserves at a time: one call to
// the management service per OIDLease objects.
const OIDLease = 4096

// AllocOIDs reserves n object IDs (the low 64 bits of OIDs) and returns the
// first; nobody else, in any process, before or after a restart, gets them.
func (c *Cont) AllocOIDs(ctx context.Context, n uint64) (uint64, error) {
	cred, err := c.credential(ctx)
	if err != nil {
		return 0, err
	}
	var r ctlpb.ContOIDsResp
	err = c.Pool.c.svcCall(ctx, enginepb.OpSvcContOIDs, &ctlpb.ContOIDsReq{Pool: c.Pool.Info.Uuid, Cont: c.Info.Uuid, Cred: cred, Count: n}, &r)
	return r.First, err
}

// NextOID returns an unused object ID from a range leased OIDLease at a time.
func (c *Cont) NextOID(ctx context.Context) (uint64, error) {
	if err := c.usable(); err != nil {
		return 0, err
	}
	c.oidMu.Lock()
	defer c.oidMu.Unlock()
	if c.oidNext == c.oidEnd {
		first, err := c.AllocOIDs(ctx, OIDLease)
		if err != nil {
			return 0, err
		}
		c.oidNext, c.oidEnd = first, first+OIDLease
	}
	c.oidNext++
	return c.oidNext - 1, nil
}

func (p *Pool) contCall(ctx context.Context, op uint16, id string, mode ctlpb.AccessFlags) (*ctlpb.ContResp, error) {
	return p.contCallReq(ctx, op, &ctlpb.ContReq{Pool: p.Info.Uuid, Cont: id, Flags: uint32(mode)})
}

func (p *Pool) contCallReq(ctx context.Context, op uint16, req *ctlpb.ContReq) (*ctlpb.ContResp, error) {
	cred, err := p.credential(ctx)
	if err != nil {
		return nil, err
	}
	req.Cred = cred
	var r ctlpb.ContResp
	err = p.c.svcCall(ctx, op, req, &r)
	return &r, err
}

// ContOpen opens a container by label or UUID in mode RO, RW or EX.
func (p *Pool) ContOpen(ctx context.Context, id string, mode ctlpb.AccessFlags) (*Cont, error) {
	r, err := p.contCall(ctx, enginepb.OpSvcContOpen, id, mode)
	if err != nil {
		return nil, err
	}
	c := &Cont{Pool: p, Info: r.Cont, Handle: r.Handle, Perms: r.Perms, mode: mode}
	c.capab.Store(&r.Cap)
	return c, nil
}

// ContList lists the pool's containers.
func (p *Pool) ContList(ctx context.Context) ([]*ctlpb.Cont, error) {
	r, err := p.contCall(ctx, enginepb.OpSvcContList, "", 0)
	return r.GetConts(), err
}

// ContDestroy destroys a container by label or UUID.
func (p *Pool) ContDestroy(ctx context.Context, id string) error {
	_, err := p.contCall(ctx, enginepb.OpSvcContDestroy, id, 0)
	return err
}
