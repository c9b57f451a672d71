package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/checksum"
	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/authpb"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security"
	"github.com/godaos/godaos/internal/security/auth"
	"github.com/godaos/godaos/internal/security/capability"
	"github.com/godaos/godaos/internal/units"
	"github.com/godaos/godaos/server/mgmt"
	"github.com/godaos/godaos/server/vos"
)

// The pool and container service: what clients ask when they connect to a
// pool and create, open or destroy containers. Every call carries the
// caller's credential (signed by daos_agent); it is verified and the pool's or
// container's ACL evaluated on the management service leader, where the
// records live. Clients reach it through any engine's data plane (clientOps),
// as DAOS clients reach the pool service through an engine.

// forward sends req to the management service leader with call when this
// server does not lead (answering with errResp when no leader can be found).
// done is false when this server leads and must serve req itself.
func forward[Req, Resp any](c *ctlService, ctx context.Context, req Req,
	call func(ctlpb.CtlClient, context.Context, Req, ...grpc.CallOption) (Resp, error),
	errResp func(*ctlpb.Error) Resp) (resp Resp, done bool, err error) {
	cl, err := c.leader(ctx)
	if err != nil {
		return errResp(ctlclient.FromError(err)), true, nil
	}
	if cl != nil {
		resp, err = call(cl, forwarded(ctx), req)
		return resp, true, err
	}
	return resp, false, nil
}

// onLeader serves req with local on the management service leader (see
// forward); local's error is answered with errResp.
func onLeader[Req, Resp any](c *ctlService, ctx context.Context, req Req,
	call func(ctlpb.CtlClient, context.Context, Req, ...grpc.CallOption) (Resp, error),
	errResp func(error) Resp, local func() (Resp, error)) (Resp, error) {
	if resp, done, err := forward(c, ctx, req, call, func(e *ctlpb.Error) Resp { return errResp(ctlclient.ToError(e)) }); done {
		return resp, err
	}
	resp, err := local()
	if err != nil {
		return errResp(err), nil
	}
	return resp, nil
}

func newUUID() string {
	var u vos.UUID
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80
	return u.String()
}

// checkLabel applies DAOS's label rule to a pool or container label.
func checkLabel(kind, label string) error {
	if !labelRE.MatchString(label) {
		return daoserr.Newf(daoserr.Inval, "%s label %q: use 1 to 127 letters, digits, '-', '_', '.' or ':'", kind, label)
	}
	if _, err := vos.ParseUUID(label); err == nil {
		return daoserr.Newf(daoserr.Inval, "%s label %q looks like a UUID", kind, label).WithResolution("choose a label that is not a UUID")
	}
	return nil
}

// accessRule is what opening a pool or container in a mode needs: at least
// one permission of each set.
type accessRule struct {
	mode  string
	needs []security.Perm
}

func (r accessRule) allows(have security.Perm) bool {
	for _, n := range r.needs {
		if have&n == 0 {
			return false
		}
	}
	return true
}

// missing names the permissions to add: the first of each set not met.
func (r accessRule) missing(have security.Perm) security.Perm {
	var m security.Perm
	for _, n := range r.needs {
		if have&n == 0 {
			m |= n & -n // lowest bit: r before t, w before c and d
		}
	}
	return m
}

func modeName(flags uint32) (string, error) {
	switch ctlpb.AccessFlags(flags) {
	case ctlpb.AccessFlags_RO:
		return "read-only", nil
	case ctlpb.AccessFlags_RW:
		return "read-write", nil
	case ctlpb.AccessFlags_EX:
		return "exclusive", nil
	}
	return "", daoserr.Newf(daoserr.Inval, "access flags %#x: give exactly one of RO (1), RW (2), EX (4)", flags)
}

// poolRule is DAOS's pool connect rule: for pools t reads as r, and c or d
// write as w.
func poolRule(flags uint32) (accessRule, error) {
	mode, err := modeName(flags)
	r := accessRule{mode: mode, needs: []security.Perm{security.PermRead | security.PermGetProp}}
	if err == nil && ctlpb.AccessFlags(flags) != ctlpb.AccessFlags_RO {
		r.needs = append(r.needs, security.PermWrite|security.PermCreate|security.PermDelete)
	}
	return r, err
}

// contRule is what opening a container needs: r, and w too to write. (DAOS
// opens with any read- or write-type permission and limits the handle's
// capabilities. Here opening requires the data permissions themselves; the
// handle's capability (issueCap), which engines check on every object
// request, then grants read, and write when opened read-write.)
func contRule(flags uint32) (accessRule, error) {
	mode, err := modeName(flags)
	r := accessRule{mode: mode, needs: []security.Perm{security.PermRead}}
	if err == nil && ctlpb.AccessFlags(flags) != ctlpb.AccessFlags_RO {
		r.needs = append(r.needs, security.PermWrite)
	}
	return r, err
}

// ownerMinPerms are what a container's owner always has, whatever the ACL
// says (DAOS: the owner can always read and repair the ACL).
const ownerMinPerms = security.PermGetACL | security.PermSetACL

// contPerms is what tok's caller may do on container ct.
func contPerms(tok *authpb.Token, ct mgmt.Cont) security.Perm {
	have := permsOn(tok, ct.ACL, ct.Owner, ct.Group)
	if auth.Principal(tok.User) == ct.Owner {
		have |= ownerMinPerms
	}
	return have
}

// caller verifies a request's credential.
func (c *ctlService) caller(cred *authpb.Credential) (*authpb.Token, error) {
	return c.s.verifier.Verify(cred)
}

// readyPool finds a pool that can be used (not being created or destroyed).
func (c *ctlService) readyPool(id string) (mgmt.Pool, error) {
	p, err := c.s.ms.FindPool(id)
	if err != nil {
		return p, err
	}
	if p.State != mgmt.PoolReady {
		return p, daoserr.Newf(daoserr.Busy, "pool %s is %s", p.Label, p.State).WithResolution("retry when 'dmg pool query %s' shows it ready", p.Label)
	}
	return p, nil
}

// permsOn is what tok's caller may do on an object with acl, owner and group.
func permsOn(tok *authpb.Token, acl []string, owner, group string) security.Perm {
	parsed, err := security.ParseACL(strings.Join(acl, "\n"))
	if err != nil {
		return 0 // a record's ACL was validated when stored; an unreadable one grants nothing
	}
	return parsed.Perms(auth.Identity(tok, owner, group))
}

// denied is DER_NO_PERM naming who, what, the missing permission and the fix.
func denied(tok *authpb.Token, what string, have, need security.Perm, fix string) error {
	grants := "nothing"
	if have != 0 {
		grants = fmt.Sprintf("%q", have.String())
	}
	return daoserr.Newf(daoserr.NoPerm, "%s may not %s: missing permission %q (the ACL grants %s)",
		auth.Who(tok), what, (need&^have).String(), grants).WithResolution("%s", fix)
}

// poolAccess checks that tok's caller may open pool p as rule says and
// returns what it has.
func poolAccess(tok *authpb.Token, p mgmt.Pool, rule accessRule) (security.Perm, error) {
	have := permsOn(tok, p.ACL, p.Owner, p.Group)
	if !rule.allows(have) {
		need := rule.missing(have)
		return have, denied(tok, fmt.Sprintf("connect %s to pool %s", rule.mode, p.Label), have, need,
			fmt.Sprintf("ask the pool's owner or an administrator to grant it: dmg pool update-acl %s --entry A::%s:%s", p.Label, auth.Principal(tok.User), (have|need).String()))
	}
	return have, nil
}

func (c *ctlService) PoolConnect(ctx context.Context, req *ctlpb.PoolConnectReq) (*ctlpb.PoolConnectResp, error) {
	errResp := func(err error) *ctlpb.PoolConnectResp { return &ctlpb.PoolConnectResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.PoolConnect, errResp, func() (*ctlpb.PoolConnectResp, error) {
		tok, err := c.caller(req.Cred)
		if err != nil {
			return nil, daoserr.Context(err, "connect to pool %s", req.Id)
		}
		rule, err := poolRule(req.Flags)
		if err != nil {
			return nil, daoserr.Context(err, "connect to pool %s", req.Id)
		}
		p, err := c.readyPool(req.Id)
		if err != nil {
			return nil, err
		}
		have, err := poolAccess(tok, p, rule)
		if err != nil {
			return nil, err
		}
		if _, err := c.livePoolRanks(p); err != nil {
			return nil, daoserr.Context(err, "connect to pool %s", p.Label)
		}
		members, _, err := c.s.ms.Members()
		if err != nil {
			return nil, err
		}
		resp := &ctlpb.PoolConnectResp{Handle: newUUID(), Perms: have.String(), MapVersion: p.MapVersion, PoolMap: poolMapPB(p, members)}
		for _, m := range members {
			if slices.Contains(p.Ranks, m.Rank) {
				resp.Members = append(resp.Members, memberPB(m))
			}
		}
		resp.Pool = poolPB(p, 0)
		c.s.log.Info("pool connect", "pool", p.Label, "user", auth.Who(tok), "mode", rule.mode, "perms", have.String())
		return resp, nil
	})
}

// contTypes are DAOS's container layout types.
var contTypes = map[string]bool{"POSIX": true, "HDF5": true, "PYTHON": true, "SPARK": true, "DATABASE": true,
	"ROOT": true, "SEISMIC": true, "METEO": true, "unknown": true}

// contProps are the container properties DAOS knows; their values are
// checked by the client API that acts on them.
var contProps = map[string]bool{"label": true, "layout_type": true, "layout_version": true, "cksum": true, "cksum_size": true,
	"srv_cksum": true, "dedup": true, "dedup_threshold": true, "compression": true, "encryption": true, "rd_fac": true,
	"rd_lvl": true, "ec_cell_sz": true, "ec_pda": true, "rp_pda": true, "oclass": true, "dir_oclass": true,
	"file_oclass": true, "status": true, "perf_domain": true, "scm_hugepages": true, "chunk_size": true}

// createOnlyProps describe how targets store the container's data: they
// cannot change afterwards (as in DAOS).
var createOnlyProps = map[string]bool{"cksum": true, "cksum_size": true, "srv_cksum": true, "ec_cell_sz": true,
	"dedup": true, "dedup_threshold": true, "compression": true, "encryption": true, "layout_type": true}

func contPB(c mgmt.Cont) *ctlpb.Cont {
	return &ctlpb.Cont{Uuid: c.UUID, Label: c.Label, Type: c.Type, Owner: c.Owner, Group: c.Group, Props: c.Props, Acl: c.ACL}
}

// contPBFor is what a caller with permissions have may see of c: its ACL
// needs a, its properties (type and owner included) t.
func contPBFor(c mgmt.Cont, have security.Perm) *ctlpb.Cont {
	pb := &ctlpb.Cont{Uuid: c.UUID, Label: c.Label}
	if have&security.PermGetProp != 0 {
		pb.Type, pb.Owner, pb.Group, pb.Props = c.Type, c.Owner, c.Group, c.Props
	}
	if have&security.PermGetACL != 0 {
		pb.Acl = c.ACL
	}
	return pb
}

func (c *ctlService) ContCreate(ctx context.Context, req *ctlpb.ContCreateReq) (*ctlpb.ContResp, error) {
	errResp := func(err error) *ctlpb.ContResp { return &ctlpb.ContResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.ContCreate, errResp, func() (*ctlpb.ContResp, error) {
		tok, err := c.caller(req.Cred)
		if err != nil {
			return nil, daoserr.Context(err, "create a container in pool %s", req.Pool)
		}
		p, err := c.readyPool(req.Pool)
		if err != nil {
			return nil, err
		}
		// DAOS: a pool's "w" is an alias of "cd" (create and delete containers)
		if have := permsOn(tok, p.ACL, p.Owner, p.Group); have&(security.PermCreate|security.PermWrite) == 0 {
			return nil, denied(tok, "create containers in pool "+p.Label, have, security.PermCreate, fmt.Sprintf(
				"ask the pool's owner or an administrator: dmg pool update-acl %s --entry A::%s:%s", p.Label, auth.Principal(tok.User), (have|security.PermCreate).String()))
		}
		if tok.Group == "" {
			// GROUP@ would otherwise go to whatever group stands in for it
			return nil, daoserr.Newf(daoserr.NoPerm, "%s: the credential names no primary group, and a container needs an owning group", auth.Who(tok)).
				WithResolution("give the user's primary group (gid %d) a name on the client node", firstGid(tok))
		}
		cont := mgmt.Cont{UUID: newUUID(), Label: req.Label, Type: req.Type, Owner: auth.Principal(tok.User), Group: auth.Principal(tok.Group), Props: maps.Clone(req.Props)}
		if l, ok := cont.Props["label"]; ok { // --properties label:x names it too
			if cont.Label == "" {
				cont.Label = l
			}
			delete(cont.Props, "label")
		}
		if req.Uuid != "" {
			u, err := vos.ParseUUID(req.Uuid)
			if err != nil {
				return nil, daoserr.Newf(daoserr.Inval, "container UUID %q", req.Uuid)
			}
			cont.UUID = u.String()
			if old, err := p.FindCont(cont.UUID); err == nil {
				// the same client asking again (its first answer was lost): the same answer
				if old.Owner == cont.Owner && (req.Label == "" || old.Label == req.Label) {
					return &ctlpb.ContResp{Cont: contPB(old)}, nil
				}
				return nil, daoserr.Newf(daoserr.Exist, "container %s already exists in pool %s", cont.UUID, p.Label)
			}
		}
		if cont.Label == "" {
			cont.Label = "container-" + cont.UUID[:8]
		} else if err := checkLabel("container", cont.Label); err != nil {
			return nil, err
		}
		if cont.Type == "" {
			cont.Type = "unknown"
		}
		if !contTypes[cont.Type] {
			return nil, daoserr.Newf(daoserr.Inval, "container type %q", cont.Type).WithResolution("use one of POSIX, HDF5, PYTHON, SPARK, DATABASE, ROOT, SEISMIC, METEO, unknown")
		}
		for k := range req.Props {
			if !contProps[k] || k == "status" {
				return nil, daoserr.Newf(daoserr.Inval, "unknown container property %q", k).WithResolution("see 'daos cont create --help' for the properties")
			}
		}
		if cont.Props == nil {
			cont.Props = map[string]string{}
		}
		// rd_fac: the pool's unless given (DAOS); failures older than the
		// container do not count against it (see health.go)
		if _, ok := cont.Props["rd_fac"]; !ok {
			cont.Props["rd_fac"] = cmp.Or(p.Props["rd_fac"], "0")
		}
		if f, err := strconv.Atoi(cont.Props["rd_fac"]); err != nil || f < 0 || f > 4 {
			return nil, daoserr.Newf(daoserr.Inval, "container rd_fac %q", cont.Props["rd_fac"]).WithResolution("rd_fac is 0 to 4: the fault domains whose loss the container survives")
		}
		cont.Props["health_ver"] = strconv.FormatUint(uint64(p.MapVersion), 10)
		acl := security.DefaultContACL()
		if len(req.Acl) > 0 {
			if acl, err = security.ParseACL(strings.Join(req.Acl, "\n")); err != nil {
				return nil, daoserr.Context(err, "container %s ACL", cont.Label)
			}
		}
		cont.ACL = aclStrings(acl)
		create, err := targetContCreate(p, cont)
		if err != nil {
			return nil, daoserr.Context(err, "container %s", cont.Label)
		}
		ranks, err := c.livePoolRanks(p)
		if err != nil {
			return nil, daoserr.Context(err, "create container %s in pool %s", cont.Label, p.Label)
		}
		if err := c.s.ms.AddCont(p.UUID, cont); err != nil {
			return nil, daoserr.Context(err, "create container %s in pool %s", cont.Label, p.Label)
		}
		// Every target gets the container now (DAOS: when a handle is first
		// opened), so I/O finds it and its checksum settings everywhere.
		if _, failed := c.fanOut(ctx, ranks, enginepb.OpContCreate, create); len(failed) > 0 {
			ctx := context.WithoutCancel(ctx)
			c.fanOut(ctx, ranks, enginepb.OpContDestroy, &enginepb.ContDestroyReq{Pool: create.Pool, Cont: create.Cont})
			if err := c.s.ms.RemoveCont(p.UUID, cont.UUID); err != nil {
				c.s.log.Warn("container create rollback: record left behind", "pool", p.Label, "cont", cont.UUID, "err", err)
			}
			return nil, failureThen(fmt.Sprintf("create container %s in pool %s", cont.Label, p.Label), failed,
				"the container was not created; retry once those ranks are up")
		}
		c.s.log.Info("container created", "pool", p.Label, "cont", cont.Label, "uuid", cont.UUID, "user", auth.Who(tok))
		return &ctlpb.ContResp{Cont: contPB(cont)}, nil
	})
}

// targetContCreate is the engines' request to create cont on every target,
// with its checksum properties (cksum: off, crc32, crc64, sha256, xxh64;
// cksum_size: the chunk in bytes).
func targetContCreate(p mgmt.Pool, cont mgmt.Cont) (*enginepb.ContCreateReq, error) {
	pu, _ := vos.ParseUUID(p.UUID)
	cu, _ := vos.ParseUUID(cont.UUID)
	req := &enginepb.ContCreateReq{Pool: pu[:], Cont: cu[:]}
	if v, ok := cont.Props["cksum"]; ok {
		t, err := checksum.Parse(v)
		if err != nil {
			return nil, daoserr.Wrap(daoserr.Inval, err, "property cksum").WithResolution("use off, crc32, crc64, sha256 or xxh64")
		}
		req.Csum, req.NoCsum = uint32(t), t == checksum.Off
	}
	if v, ok := cont.Props["cksum_size"]; ok {
		n, err := units.ParseByteSize(v)
		if err != nil || n < 512 || n > 1<<30 {
			return nil, daoserr.Newf(daoserr.Inval, "property cksum_size %q", v).WithResolution("give a size from 512 bytes to 1 GiB, e.g. 32K")
		}
		req.Chunk = uint32(n)
	}
	return req, nil
}

// ownerRE is a user or group name as set-owner takes it ("alice", "alice@",
// "alice@EXAMPLE.COM").
var ownerRE = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*(@[A-Za-z0-9_.-]*)?$`)

func firstGid(tok *authpb.Token) uint32 {
	if len(tok.Gids) > 0 {
		return tok.Gids[0]
	}
	return 0
}

// contOf finds a pool and one of its containers for tok's caller, who must be
// able to connect to the pool read-only.
func (c *ctlService) contOf(tok *authpb.Token, pool, cont string) (mgmt.Pool, mgmt.Cont, error) {
	p, err := c.readyPool(pool)
	if err != nil {
		return p, mgmt.Cont{}, err
	}
	if _, err := poolAccess(tok, p, accessRule{mode: "read-only", needs: []security.Perm{security.PermRead | security.PermGetProp}}); err != nil {
		return p, mgmt.Cont{}, err
	}
	if cont == "" {
		return p, mgmt.Cont{}, nil
	}
	ct, err := p.FindCont(cont)
	return p, ct, err
}

func (c *ctlService) ContOpen(ctx context.Context, req *ctlpb.ContReq) (*ctlpb.ContResp, error) {
	errResp := func(err error) *ctlpb.ContResp { return &ctlpb.ContResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.ContOpen, errResp, func() (*ctlpb.ContResp, error) {
		tok, err := c.caller(req.Cred)
		if err != nil {
			return nil, daoserr.Context(err, "open container %s", req.Cont)
		}
		rule, err := contRule(req.Flags)
		if err != nil {
			return nil, daoserr.Context(err, "open container %s", req.Cont)
		}
		p, ct, err := c.contOf(tok, req.Pool, req.Cont)
		if err != nil {
			return nil, err
		}
		have := contPerms(tok, ct)
		if !rule.allows(have) {
			need := rule.missing(have)
			return nil, denied(tok, fmt.Sprintf("open container %s/%s %s", p.Label, ct.Label, rule.mode), have, need,
				fmt.Sprintf("ask the container's owner: daos cont update-acl %s %s --entry A::%s:%s", p.Label, ct.Label, auth.Principal(tok.User), (have|need).String()))
		}
		if err := uncleanError(p, ct); err != nil {
			return nil, err
		}
		ct = withStatus(p, ct)
		handle := newUUID()
		if req.Handle != "" { // a renewal keeps the handle: transactions prepared through it still commit
			u, err := vos.ParseUUID(req.Handle)
			if err != nil {
				return nil, daoserr.Newf(daoserr.Inval, "renew container handle %q: not a UUID", req.Handle)
			}
			handle = u.String()
		}
		capb, err := c.issueCap(handle, p.UUID, ct.UUID, rule, have)
		if err != nil {
			return nil, daoserr.Context(err, "open container %s/%s", p.Label, ct.Label)
		}
		return &ctlpb.ContResp{Cont: contPBFor(ct, have), Perms: have.String(), Handle: handle, Cap: capb}, nil
	})
}

// issueCap makes the capability of a container handle: read, and write when
// opened read-write, as far as the caller's permissions go.
func (c *ctlService) issueCap(handle, pool, cont string, rule accessRule, have security.Perm) ([]byte, error) {
	var rights uint32
	if have&security.PermRead != 0 {
		rights |= enginepb.CapRead
	}
	if len(rule.needs) > 1 && have&security.PermWrite != 0 { // opened RW or EX
		rights |= enginepb.CapWrite
	}
	tok := &enginepb.CapToken{Handle: uuidBytes(handle), Pool: uuidBytes(pool), Cont: uuidBytes(cont), Rights: rights,
		Expires: time.Now().Add(capability.TTL).Unix()}
	return capability.Issue(c.s.transport.capSigner, tok)
}

// uuidBytes is a canonical UUID string's 16 bytes.
func uuidBytes(s string) []byte {
	u, err := vos.ParseUUID(s)
	if err != nil {
		return nil // Verify refuses the capability, naming the UUID's length
	}
	return u[:]
}

func (c *ctlService) ContList(ctx context.Context, req *ctlpb.ContReq) (*ctlpb.ContResp, error) {
	errResp := func(err error) *ctlpb.ContResp { return &ctlpb.ContResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.ContList, errResp, func() (*ctlpb.ContResp, error) {
		tok, err := c.caller(req.Cred)
		if err != nil {
			return nil, daoserr.Context(err, "list containers of pool %s", req.Pool)
		}
		p, _, err := c.contOf(tok, req.Pool, "")
		if err != nil {
			return nil, err
		}
		resp := &ctlpb.ContResp{}
		for _, ct := range p.ContList() {
			// a listing names containers; what they hold is for those their ACLs admit
			resp.Conts = append(resp.Conts, &ctlpb.Cont{Uuid: ct.UUID, Label: ct.Label})
		}
		return resp, nil
	})
}

func (c *ctlService) ContDestroy(ctx context.Context, req *ctlpb.ContReq) (*ctlpb.ContResp, error) {
	errResp := func(err error) *ctlpb.ContResp { return &ctlpb.ContResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.ContDestroy, errResp, func() (*ctlpb.ContResp, error) {
		tok, err := c.caller(req.Cred)
		if err != nil {
			return nil, daoserr.Context(err, "destroy container %s", req.Cont)
		}
		p, ct, err := c.contOf(tok, req.Pool, req.Cont)
		if err != nil {
			return nil, err
		}
		// DAOS: the pool's d (or w) or the container's own d allows it
		poolHave := permsOn(tok, p.ACL, p.Owner, p.Group)
		contHave := contPerms(tok, ct)
		if poolHave&(security.PermDelete|security.PermWrite) == 0 && contHave&security.PermDelete == 0 {
			return nil, denied(tok, fmt.Sprintf("destroy container %s/%s", p.Label, ct.Label), contHave, security.PermDelete,
				fmt.Sprintf("the container's owner can grant it: daos cont update-acl %s %s --entry A::%s@:d", p.Label, ct.Label, tok.User))
		}
		ranks, err := c.livePoolRanks(p)
		if err != nil {
			return nil, daoserr.Context(err, "destroy container %s/%s", p.Label, ct.Label)
		}
		pu, _ := vos.ParseUUID(p.UUID)
		cu, _ := vos.ParseUUID(ct.UUID)
		if _, failed := c.fanOut(ctx, ranks, enginepb.OpContDestroy, &enginepb.ContDestroyReq{Pool: pu[:], Cont: cu[:]}); len(failed) > 0 {
			return nil, failureThen(fmt.Sprintf("destroy container %s/%s", p.Label, ct.Label), failed,
				"the container remains: destroy it again once those ranks are up")
		}
		if err := c.s.ms.RemoveCont(p.UUID, ct.UUID); err != nil {
			return nil, err
		}
		c.s.log.Info("container destroyed", "pool", p.Label, "cont", ct.Label, "user", auth.Who(tok))
		return &ctlpb.ContResp{Cont: &ctlpb.Cont{Uuid: ct.UUID, Label: ct.Label}}, nil
	})
}

// ContAllocOIDs reserves object IDs in a container for a caller who may
// write it.
func (c *ctlService) ContAllocOIDs(ctx context.Context, req *ctlpb.ContOIDsReq) (*ctlpb.ContOIDsResp, error) {
	errResp := func(err error) *ctlpb.ContOIDsResp { return &ctlpb.ContOIDsResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.ContAllocOIDs, errResp, func() (*ctlpb.ContOIDsResp, error) {
		// object IDs are for writers
		p, ct, _, err := c.openedCont(req.Cred, req.Pool, req.Cont, "allocate object IDs", security.PermRead|security.PermWrite)
		if err != nil {
			return nil, err
		}
		first, err := c.s.ms.AllocOIDs(p.UUID, ct.UUID, req.Count)
		if err != nil {
			return nil, daoserr.Context(err, "container %s/%s", p.Label, ct.Label)
		}
		return &ctlpb.ContOIDsResp{First: first, Count: req.Count}, nil
	})
}

// openedCont verifies cred and finds a container whose ACL grants need.
// It returns what the caller may do.
func (c *ctlService) openedCont(cred *authpb.Credential, pool, cont, what string, need security.Perm) (mgmt.Pool, mgmt.Cont, security.Perm, error) {
	tok, err := c.caller(cred)
	if err != nil {
		return mgmt.Pool{}, mgmt.Cont{}, 0, daoserr.Context(err, "%s of container %s", what, cont)
	}
	p, ct, err := c.contOf(tok, pool, cont)
	if err != nil {
		return p, ct, 0, err
	}
	have := contPerms(tok, ct)
	if have&need != need {
		return p, ct, have, denied(tok, fmt.Sprintf("%s of container %s/%s", what, p.Label, ct.Label), have, need,
			fmt.Sprintf("ask the container's owner: daos cont update-acl %s %s --entry A::%s:%s", p.Label, ct.Label, auth.Principal(tok.User), (have|need).String()))
	}
	return p, ct, have, nil
}

// ContACL reads (a) or changes (A) a container's ACL.
func (c *ctlService) ContACL(ctx context.Context, req *ctlpb.ContACLReq) (*ctlpb.PoolACLResp, error) {
	errResp := func(err error) *ctlpb.PoolACLResp { return &ctlpb.PoolACLResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.ContACL, errResp, func() (*ctlpb.PoolACLResp, error) {
		change := req.GetAcl()
		if change == nil {
			change = &ctlpb.PoolACLReq{}
		}
		need, what := security.PermGetACL, "read the ACL"
		if change.Mode != ctlpb.PoolACLReq_GET {
			need, what = security.PermSetACL, "change the ACL"
		}
		p, ct, _, err := c.openedCont(req.Cred, req.Pool, req.Cont, what, need)
		if err != nil {
			return nil, err
		}
		acl, err := security.ParseACL(strings.Join(ct.ACL, "\n"))
		if err == nil {
			acl, err = changeACL(acl, change)
		}
		if err == nil && change.Mode != ctlpb.PoolACLReq_GET {
			err = c.s.ms.SetContACL(p.UUID, ct.UUID, aclStrings(acl))
		}
		if err != nil {
			return nil, daoserr.Context(err, "container %s/%s", p.Label, ct.Label)
		}
		return &ctlpb.PoolACLResp{Entries: aclStrings(acl), Owner: ct.Owner, Group: ct.Group}, nil
	})
}

// ContProp reads (t) a container's properties after setting (T) those asked.
func (c *ctlService) ContProp(ctx context.Context, req *ctlpb.ContPropReq) (*ctlpb.PoolPropResp, error) {
	errResp := func(err error) *ctlpb.PoolPropResp { return &ctlpb.PoolPropResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.ContProp, errResp, func() (*ctlpb.PoolPropResp, error) {
		need, what := security.PermGetProp, "read the properties"
		if len(req.Set) > 0 {
			need, what = security.PermSetProp, "set properties"
		}
		p, ct, have, err := c.openedCont(req.Cred, req.Pool, req.Cont, what, need)
		if err != nil {
			return nil, err
		}
		if len(req.Set) > 0 {
			for k, v := range req.Set {
				if !contProps[k] {
					return nil, daoserr.Newf(daoserr.Inval, "unknown container property %q", k).WithResolution("see 'daos cont set-prop --help' for the properties")
				}
				if k == "label" {
					if err := checkLabel("container", v); err != nil {
						return nil, err
					}
				}
				if createOnlyProps[k] {
					return nil, daoserr.Newf(daoserr.Inval, "container property %s is set when the container is created", k).
						WithResolution("create a new container with --properties %s:%s and copy the data (daos fs copy)", k, v)
				}
			}
			if err := setHealthy(p, req.Set); err != nil {
				return nil, err
			}
			if err := c.s.ms.SetContProps(p.UUID, ct.UUID, req.Set); err != nil {
				return nil, daoserr.Context(err, "container %s/%s", p.Label, ct.Label)
			}
			if p, err = c.s.ms.FindPool(p.UUID); err == nil {
				ct, err = p.FindCont(ct.UUID)
			}
			if err != nil {
				return nil, err
			}
		}
		if have&security.PermGetProp == 0 {
			return &ctlpb.PoolPropResp{Label: ct.Label}, nil // set without t: nothing to read back
		}
		all := map[string]string{"label": ct.Label, "layout_type": ct.Type, "owner": ct.Owner, "group": ct.Group}
		for k, v := range withStatus(p, ct).Props {
			all[k] = v
		}
		return &ctlpb.PoolPropResp{Props: all, Label: ct.Label}, nil
	})
}

// ContAttr sets and deletes (w) and reads (r) a container's user attributes.
func (c *ctlService) ContAttr(ctx context.Context, req *ctlpb.ContAttrReq) (*ctlpb.ContAttrResp, error) {
	errResp := func(err error) *ctlpb.ContAttrResp { return &ctlpb.ContAttrResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.ContAttr, errResp, func() (*ctlpb.ContAttrResp, error) {
		need, what := security.PermRead, "read the attributes"
		if len(req.Set) > 0 || len(req.Del) > 0 {
			need, what = security.PermRead|security.PermWrite, "change the attributes"
		}
		p, ct, _, err := c.openedCont(req.Cred, req.Pool, req.Cont, what, need)
		if err != nil {
			return nil, err
		}
		if len(req.Set) > 0 || len(req.Del) > 0 {
			if err := c.s.ms.ChangeContAttrs(p.UUID, ct.UUID, req.Set, req.Del); err != nil {
				return nil, daoserr.Context(err, "container %s/%s", p.Label, ct.Label)
			}
			if p, err = c.s.ms.FindPool(p.UUID); err == nil {
				ct, err = p.FindCont(ct.UUID)
			}
			if err != nil {
				return nil, err
			}
		}
		resp := &ctlpb.ContAttrResp{Values: map[string][]byte{}}
		for _, n := range req.Get {
			v, ok := ct.Attrs[n]
			if !ok {
				return nil, daoserr.Newf(daoserr.Nonexist, "container %s/%s has no attribute %q", p.Label, ct.Label, n).
					WithResolution("list them with 'daos cont list-attrs %s %s'", p.Label, ct.Label)
			}
			resp.Values[n] = v
		}
		if req.List {
			for n := range ct.Attrs {
				resp.Names = append(resp.Names, n)
			}
			sort.Strings(resp.Names)
		}
		return resp, nil
	})
}

// ContSetOwner is dmg's (an administrator's): no credential, the control
// plane's certificates authorize it.
func (c *ctlService) ContSetOwner(ctx context.Context, req *ctlpb.ContSetOwnerReq) (*ctlpb.ContResp, error) {
	errResp := func(err error) *ctlpb.ContResp { return &ctlpb.ContResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.ContSetOwner, errResp, func() (*ctlpb.ContResp, error) {
		if req.User == "" && req.Group == "" {
			return nil, daoserr.New(daoserr.Inval, "set-owner without a user or group").WithResolution("give --user and/or --group")
		}
		for _, n := range []string{req.User, req.Group} {
			if n != "" && !ownerRE.MatchString(n) {
				return nil, daoserr.Newf(daoserr.Inval, "owner name %q: use a user or group name, optionally ending in @", n)
			}
		}
		p, err := c.s.ms.FindPool(req.Pool)
		if err != nil {
			return nil, err
		}
		ct, err := p.FindCont(req.Cont)
		if err != nil {
			return nil, err
		}
		user, group := "", ""
		if req.User != "" {
			user = auth.Principal(req.User)
		}
		if req.Group != "" {
			group = auth.Principal(req.Group)
		}
		if err := c.s.ms.SetContOwner(p.UUID, ct.UUID, user, group); err != nil {
			return nil, daoserr.Context(err, "set owner of container %s/%s", p.Label, ct.Label)
		}
		if p, err = c.s.ms.FindPool(p.UUID); err == nil {
			ct, err = p.FindCont(ct.UUID)
		}
		if err != nil {
			return nil, err
		}
		return &ctlpb.ContResp{Cont: contPB(ct)}, nil
	})
}

func (c *ctlService) GetAttachInfo(ctx context.Context, req *ctlpb.AttachInfoReq) (*ctlpb.AttachInfoResp, error) {
	errResp := func(err error) *ctlpb.AttachInfoResp { return &ctlpb.AttachInfoResp{Error: ctlclient.FromError(err)} }
	return onLeader(c, ctx, req, ctlpb.CtlClient.GetAttachInfo, errResp, func() (*ctlpb.AttachInfoResp, error) {
		members, ver, err := c.s.ms.Members()
		if err != nil {
			return nil, err
		}
		resp := &ctlpb.AttachInfoResp{MsReplicas: c.s.replicas, MapVersion: ver, System: c.s.cfg.Name, Provider: c.s.cfg.Provider}
		for _, m := range members {
			resp.Members = append(resp.Members, memberPB(m))
		}
		targets := map[uint32]uint32{}
		for _, m := range members {
			targets[m.Rank] = m.Targets
		}
		for _, id := range req.Pools {
			p, err := c.s.ms.FindPool(id)
			if err != nil {
				return nil, err
			}
			pm := &ctlpb.PoolMap{Uuid: p.UUID, Label: p.Label, Version: p.MapVersion, Ranks: p.Ranks}
			for _, r := range p.Ranks {
				pm.Targets += targets[r]
			}
			resp.Pools = append(resp.Pools, pm)
		}
		return resp, nil
	})
}

// ---- the data-plane entry ----

// clientOps are the pool-service opcodes an engine serves for clients: each
// takes the control-plane request as its message header and answers with the
// control-plane reply, or with the reply's error as the RPC's error.
func (c *ctlService) clientOps() map[uint16]rpc.Handler {
	return map[uint16]rpc.Handler{
		enginepb.OpSvcPoolConnect: svcOp(c, func() *ctlpb.PoolConnectReq { return &ctlpb.PoolConnectReq{} }, c.PoolConnect),
		enginepb.OpSvcPoolMap:     svcOp(c, func() *ctlpb.PoolReq { return &ctlpb.PoolReq{} }, c.PoolMapQuery),
		enginepb.OpSvcContCreate:  svcOp(c, func() *ctlpb.ContCreateReq { return &ctlpb.ContCreateReq{} }, c.ContCreate),
		enginepb.OpSvcContOpen:    svcOp(c, func() *ctlpb.ContReq { return &ctlpb.ContReq{} }, c.ContOpen),
		enginepb.OpSvcContList:    svcOp(c, func() *ctlpb.ContReq { return &ctlpb.ContReq{} }, c.ContList),
		enginepb.OpSvcContDestroy: svcOp(c, func() *ctlpb.ContReq { return &ctlpb.ContReq{} }, c.ContDestroy),
		enginepb.OpSvcContOIDs:    svcOp(c, func() *ctlpb.ContOIDsReq { return &ctlpb.ContOIDsReq{} }, c.ContAllocOIDs),
		enginepb.OpSvcPoolQuery:   svcOp(c, func() *ctlpb.PoolReq { return &ctlpb.PoolReq{} }, c.PoolQuery),
		enginepb.OpSvcContACL:     svcOp(c, func() *ctlpb.ContACLReq { return &ctlpb.ContACLReq{} }, c.ContACL),
		enginepb.OpSvcContProp:    svcOp(c, func() *ctlpb.ContPropReq { return &ctlpb.ContPropReq{} }, c.ContProp),
		enginepb.OpSvcContAttr:    svcOp(c, func() *ctlpb.ContAttrReq { return &ctlpb.ContAttrReq{} }, c.ContAttr),
		enginepb.OpSvcContSnap:    svcOp(c, func() *ctlpb.ContSnapReq { return &ctlpb.ContSnapReq{} }, c.ContSnap),
	}
}

// svcOp adapts a pool-service call to the data plane. The credential is
// verified here first, so a forged one goes no further than the engine that
// received it (the leader verifies again: it may be another server).
func svcOp[Req interface {
	proto.Message
	GetCred() *authpb.Credential
}, Resp interface {
	proto.Message
	GetError() *ctlpb.Error
}](c *ctlService, newReq func() Req, call func(context.Context, Req) (Resp, error)) rpc.Handler {
	return func(ctx context.Context, r *rpc.Request) (rpc.Response, error) {
		req := newReq()
		if err := proto.Unmarshal(r.Header, req); err != nil {
			return rpc.Response{}, daoserr.Wrap(daoserr.Proto, err, "decode pool service request (opcode %d)", r.Opcode)
		}
		if _, err := c.caller(req.GetCred()); err != nil {
			c.s.log.Warn("credential refused", "peer", r.Peer, "err", err)
			return rpc.Response{}, err
		}
		resp, err := call(ctx, req)
		if err != nil {
			// the leader went away under the forwarded call: the client waits
			// for the election and asks again (a create it repeats is found by
			// its UUID)
			return rpc.Response{}, daoserr.Wrap(daoserr.NotLeader, err, "pool service: the management service leader did not answer").
				WithResolution("an election may be under way: retry")
		}
		if err := ctlclient.ToError(resp.GetError()); err != nil {
			return rpc.Response{}, err
		}
		b, err := proto.Marshal(resp)
		return rpc.Response{Header: b}, err
	}
}
