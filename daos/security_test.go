package daos

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/authpb"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security/auth"
	"github.com/godaos/godaos/internal/security/certs"
	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/internal/testsys/inproc"
)

func quiet() *slog.Logger { return inproc.Quiet() }

// client is a client of s through its agent, finished when the test ends.
func client(t testing.TB, s *inproc.System) *Client {
	t.Helper()
	c, err := Init(context.Background(), Options{AgentSocket: s.Agent.Socket(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Fini() })
	return c
}

func me(t testing.TB) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

func wantErr(t *testing.T, err error, code daoserr.Code, contains ...string) {
	t.Helper()
	if !daoserr.Is(err, code) {
		t.Fatalf("err %v, want %s", err, code.Name())
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Fatalf("err %q does not mention %q", err, c)
		}
	}
}

// TestACLEnforcement: through a real agent and a secure server, connects and
// opens succeed or fail as the pool's and container's ACLs say, with
// DER_NO_PERM naming the pool and the missing permission.
func TestACLEnforcement(t *testing.T) {
	s := inproc.Start(t, true)
	ctx := context.Background()
	self := me(t)
	s.CreatePool(t, "mine", self)                                           // default ACL: OWNER@:rw
	s.CreatePool(t, "readonly", "nobody", "A::OWNER@:rw", "A::EVERYONE@:r") // others read
	s.CreatePool(t, "closed", "nobody", "A::OWNER@:rw", "A:G:GROUP@:rw")    // nothing for others
	s.CreatePool(t, "named", "nobody", "A::OWNER@:rw", "A::"+self+"@:rwcd") // an entry for the caller
	s.CreatePool(t, "creator", "nobody", "A::OWNER@:rw", "A::"+self+"@:rc") // DAOS: c writes as w
	s.CreatePool(t, "props", "nobody", "A::OWNER@:rw", "A::"+self+"@:t")    // DAOS: t reads as r
	c := client(t, s)

	t.Run("owner connects read-write", func(t *testing.T) {
		p, err := c.PoolConnect(ctx, "mine", RW)
		if err != nil {
			t.Fatal(err)
		}
		if p.Perms != "rw" || p.Info.Label != "mine" || len(p.Members) != 1 || p.Handle == "" {
			t.Fatalf("pool %+v perms %q", p.Info, p.Perms)
		}
		sp, err := p.Query(ctx)
		if err != nil || sp.ScmTotal != 64<<20/2*2 || sp.NvmeTotal == 0 || sp.ScmUsed > sp.ScmTotal {
			t.Fatalf("pool query: %+v %v", sp, err)
		}
		// a client's query is a connect's: the closed pool's space is not for this caller
		cred, _ := c.credential(ctx)
		var r ctlpb.PoolResp
		err = c.svcCall(ctx, enginepb.OpSvcPoolQuery, &ctlpb.PoolReq{Id: "closed", Cred: cred}, &r)
		wantErr(t, err, daoserr.NoPerm, "pool closed")
	})
	t.Run("EVERYONE@:r allows read-only", func(t *testing.T) {
		if _, err := c.PoolConnect(ctx, "readonly", RO); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("EVERYONE@:r refuses read-write", func(t *testing.T) {
		_, err := c.PoolConnect(ctx, "readonly", RW)
		wantErr(t, err, daoserr.NoPerm, "pool readonly", `missing permission "w"`, self+"@")
	})
	t.Run("no entry refuses everything", func(t *testing.T) {
		_, err := c.PoolConnect(ctx, "closed", RO)
		wantErr(t, err, daoserr.NoPerm, "pool closed", `missing permission "r"`, "the ACL grants nothing", "dmg pool update-acl closed")
	})
	t.Run("a user's own entry", func(t *testing.T) {
		if _, err := c.PoolConnect(ctx, "named", EX); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("pool c counts as w, t as r", func(t *testing.T) {
		p, err := c.PoolConnect(ctx, "creator", RW)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.ContCreate(ctx, ContCreateOptions{Label: "made-with-c"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PoolConnect(ctx, "props", RO); err != nil {
			t.Fatal(err)
		}
		_, err = c.PoolConnect(ctx, "props", RW)
		wantErr(t, err, daoserr.NoPerm, "pool props", `missing permission "w"`)
	})
	t.Run("missing pool", func(t *testing.T) {
		_, err := c.PoolConnect(ctx, "nosuch", RO)
		wantErr(t, err, daoserr.Nonexist, "nosuch")
	})
	t.Run("bad flags", func(t *testing.T) {
		_, err := c.PoolConnect(ctx, "mine", 3)
		wantErr(t, err, daoserr.Inval, "RO (1), RW (2), EX (4)")
	})

	t.Run("containers", func(t *testing.T) {
		p, err := c.PoolConnect(ctx, "named", RW)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := p.ContCreate(ctx, ContCreateOptions{Label: "ckpt", Type: "POSIX"})
		if err != nil {
			t.Fatal(err)
		}
		if ct.Owner != self+"@" || ct.Type != "POSIX" {
			t.Fatalf("container %+v", ct)
		}
		if _, err := p.ContCreate(ctx, ContCreateOptions{Label: "ckpt"}); !daoserr.Is(err, daoserr.Exist) {
			t.Fatalf("second ckpt: %v", err)
		}
		if _, err := p.ContCreate(ctx, ContCreateOptions{Label: "bad label!"}); !daoserr.Is(err, daoserr.Inval) {
			t.Fatalf("bad label: %v", err)
		}
		if _, err := p.ContCreate(ctx, ContCreateOptions{Label: "x", Props: map[string]string{"colour": "red"}}); !daoserr.Is(err, daoserr.Inval) {
			t.Fatalf("unknown property: %v", err)
		}
		shared, err := p.ContCreate(ctx, ContCreateOptions{Label: "shared", ACL: []string{"A::OWNER@:rwdtTaAo", "A::EVERYONE@:r"}})
		if err != nil {
			t.Fatal(err)
		}
		if h, err := p.ContOpen(ctx, "ckpt", RW); err != nil || h.Perms != "rwdtTaAo" {
			t.Fatalf("owner open: %v %+v", err, h)
		}
		list, err := p.ContList(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("list %v %v", list, err)
		}
		// an administrator gives "shared" to someone else: the caller is no
		// longer its owner, and EVERYONE@:r is what is left
		r, err := s.Admin.ContSetOwner(ctx, &ctlpb.ContSetOwnerReq{Pool: "named", Cont: shared.Uuid, User: "nobody"})
		if err := ctlclient.Err(err, r.GetError(), "set-owner"); err != nil || r.Cont.Owner != "nobody@" {
			t.Fatalf("set-owner: %v %+v", err, r.GetCont())
		}
		h, err := p.ContOpen(ctx, "shared", RO)
		if err != nil || h.Info.Acl != nil || h.Info.Owner != "" {
			// r alone shows neither the ACL (needs a) nor the properties (t)
			t.Fatalf("read-only open as not the owner: %v %+v", err, h)
		}
		_, err = h.AllocOIDs(ctx, 1)
		wantErr(t, err, daoserr.NoPerm, "allocate object IDs", `missing permission "w"`)
		if l, _ := p.ContList(ctx); len(l) != 2 || l[0].Acl != nil || l[0].Owner != "" {
			t.Fatalf("a listing shows more than names: %+v", l)
		}
		// a create repeated with the same UUID (its answer was lost) finds its container
		cred, _ := c.credential(ctx)
		again := &ctlpb.ContCreateReq{Pool: p.Info.Uuid, Cred: cred, Label: "retried", Uuid: "0b6b4a5e-7d2e-4c59-9a3e-5f1d2c3b4a59"}
		var first, second ctlpb.ContResp
		if err := c.svcCall(ctx, enginepb.OpSvcContCreate, again, &first); err != nil {
			t.Fatal(err)
		}
		if err := c.svcCall(ctx, enginepb.OpSvcContCreate, again, &second); err != nil || second.Cont.Uuid != first.Cont.Uuid {
			t.Fatalf("repeated create: %v %+v", err, second.Cont)
		}
		again.Label = "other"
		if err := c.svcCall(ctx, enginepb.OpSvcContCreate, again, &second); !daoserr.Is(err, daoserr.Exist) {
			t.Fatalf("another create with a taken UUID: %v", err)
		}
		if err := p.ContDestroy(ctx, "retried"); err != nil {
			t.Fatal(err)
		}
		// an owner whose entry grants little still reads and repairs the ACL
		if _, err := p.ContCreate(ctx, ContCreateOptions{Label: "locked", ACL: []string{"A::OWNER@:r"}}); err != nil {
			t.Fatal(err)
		}
		if h, err := p.ContOpen(ctx, "locked", RO); err != nil || h.Perms != "raA" || len(h.Info.Acl) != 1 {
			t.Fatalf("owner of a locked container: %v %+v", err, h)
		}
		if err := p.ContDestroy(ctx, "locked"); err != nil {
			t.Fatal(err)
		}
		_, err = p.ContOpen(ctx, "shared", RW)
		wantErr(t, err, daoserr.NoPerm, "named/shared", `missing permission "w"`)
		// the pool's rwcd entry still lets the caller destroy it (DAOS: pool d or container d)
		if err := p.ContDestroy(ctx, "shared"); err != nil {
			t.Fatal(err)
		}
		if err := p.ContDestroy(ctx, "ckpt"); err != nil {
			t.Fatal(err)
		}
		if _, err := p.ContOpen(ctx, "ckpt", RO); !daoserr.Is(err, daoserr.Nonexist) {
			t.Fatalf("open destroyed: %v", err)
		}
		_, err = p.ContOpen(ctx, "", 0)
		wantErr(t, err, daoserr.Inval)
	})

	t.Run("a pool with containers is destroyed only recursively", func(t *testing.T) {
		r, err := s.Admin.PoolDestroy(ctx, &ctlpb.PoolReq{Id: "creator"}) // holds made-with-c
		if e := ctlclient.Err(err, r.GetError(), "destroy"); !daoserr.Is(e, daoserr.Busy) || !strings.Contains(e.Error(), "--recursive") {
			t.Fatalf("destroy without --recursive: %v", e)
		}
		r, err = s.Admin.PoolDestroy(ctx, &ctlpb.PoolReq{Id: "creator", Recursive: true})
		if e := ctlclient.Err(err, r.GetError(), "destroy"); e != nil {
			t.Fatal(e)
		}
	})
}

// TestOIDAllocation: clients of their own, each leasing ranges, never get
// the same object ID; a reader without w gets none.
func TestOIDAllocation(t *testing.T) {
	s := inproc.Start(t, false)
	s.CreatePool(t, "oids", me(t))
	ctx := context.Background()
	owner := client(t, s)
	p, err := owner.PoolConnect(ctx, "oids", RW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ContCreate(ctx, ContCreateOptions{Label: "objs", ACL: []string{"A::OWNER@:rwdtTaAo", "A::EVERYONE@:r"}}); err != nil {
		t.Fatal(err)
	}
	const clients, each = 4, 3 * OIDLease / 2 // every client leases twice
	got := make(chan uint64, clients*each)
	errs := make(chan error, clients)
	for range clients {
		go func() {
			c, err := Init(ctx, Options{AgentSocket: s.Agent.Socket(), Logger: quiet()})
			if err == nil {
				defer c.Fini()
				var p *Pool
				var h *Cont
				if p, err = c.PoolConnect(ctx, "oids", RW); err == nil {
					h, err = p.ContOpen(ctx, "objs", RW)
				}
				for i := 0; err == nil && i < each; i++ {
					var oid uint64
					if oid, err = h.NextOID(ctx); err == nil {
						got <- oid
					}
				}
			}
			errs <- err
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(got)
	seen := map[uint64]bool{}
	for oid := range got {
		if seen[oid] || oid < 1024 {
			t.Fatalf("object ID %d handed out twice or from the reserved range", oid)
		}
		seen[oid] = true
	}
	if len(seen) != clients*each {
		t.Fatalf("%d IDs, want %d", len(seen), clients*each)
	}
	h, err := p.ContOpen(ctx, "objs", RW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.AllocOIDs(ctx, 0); !daoserr.Is(err, daoserr.Inval) {
		t.Fatalf("zero OIDs: %v", err)
	}
}

// rawCall sends a pool-service request with a credential of the test's
// making straight to the engine's data plane.
func rawCall(t *testing.T, s *inproc.System, cred *authpb.Credential) error {
	t.Helper()
	hdr, _ := proto.Marshal(&ctlpb.PoolConnectReq{Id: "p", Cred: cred, Flags: uint32(RO)})
	cl, err := rpc.Dial(context.Background(), s.Fabric, rpc.ClientOptions{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, err = cl.Call(context.Background(), rpc.Message{Opcode: enginepb.OpSvcPoolConnect, Header: hdr}, nil)
	return err
}

// TestBadCredentials: forged, expired, unsigned and strangers' credentials
// are refused with DER_NO_PERM by a secure server; the engine keeps serving.
func TestBadCredentials(t *testing.T) {
	s := inproc.Start(t, true)
	s.CreatePool(t, "p", me(t))
	c := client(t, s)
	good, err := c.credential(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	agentKey, err := certs.LoadSigner(s.Cert("agent.key"))
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := certs.Fingerprint(agentKey.Public())
	tokenOf := func(cred *authpb.Credential) *authpb.Token {
		tok := &authpb.Token{}
		if err := proto.Unmarshal(cred.Token, tok); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	now := time.Now()
	forged := proto.Clone(good).(*authpb.Credential)
	{
		tok := tokenOf(forged)
		tok.User, tok.Uid, tok.Groups = "nobody", 65534, []string{"nogroup"}
		forged.Token, _ = proto.Marshal(tok)
	}
	expiredTok := tokenOf(good)
	expiredTok.Issued, expiredTok.Expires = now.Add(-time.Hour).Unix(), now.Add(-time.Minute).Unix()
	expired, _ := auth.Sign(expiredTok, agentKey, fp) // properly signed, but too old
	unsigned, _ := auth.Sign(tokenOf(good), nil, "")
	strangerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	strangerFP, _ := certs.Fingerprint(strangerKey.Public())
	stranger, _ := auth.Sign(tokenOf(good), strangerKey, strangerFP)

	for _, tc := range []struct {
		name string
		cred *authpb.Credential
		want string
	}{
		{"forged token", forged, "does not verify"},
		{"expired", expired, "expired"},
		{"unsigned", unsigned, "not signed"},
		{"unknown agent key", stranger, "does not trust"},
		{"none", nil, "no credential"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, rawCall(t, s, tc.cred), daoserr.NoPerm, tc.want)
		})
	}
	if err := rawCall(t, s, good); err != nil {
		t.Fatalf("the good credential after the bad ones: %v", err)
	}
}

// TestControlPlaneCertificates: the control service admits each component to
// its own calls only, and nobody without a certificate from the CA.
func TestControlPlaneCertificates(t *testing.T) {
	s := inproc.Start(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	agentCtl := testsys.CtlClientTLS(t, s.CtlAddr, s.ClientTLS(t, "agent"))
	if _, err := agentCtl.PoolCreate(ctx, &ctlpb.PoolCreateReq{Label: "x", ScmSize: 1 << 30}); status.Code(err) != codes.PermissionDenied ||
		!strings.Contains(err.Error(), "admin") {
		t.Fatalf("agent certificate creating a pool: %v", err)
	}
	if r, err := agentCtl.GetAttachInfo(ctx, &ctlpb.AttachInfoReq{}); err != nil || len(r.Members) != 1 {
		t.Fatalf("agent attach info: %v %v", r, err)
	}
	if _, err := s.Admin.Join(ctx, &ctlpb.JoinReq{Member: &ctlpb.Member{Uuid: "x"}}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("admin certificate joining a rank: %v", err)
	}
	if _, err := testsys.CtlClient(t, s.CtlAddr).SystemQuery(ctx, &ctlpb.SystemQueryReq{}); err == nil {
		t.Fatal("a client without TLS was served")
	}
	other := t.TempDir()
	if _, err := certs.Generate(other, certs.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	foreign, err := certs.ClientTLS(filepath.Join(other, "daosCA.crt"), filepath.Join(other, "admin.crt"), filepath.Join(other, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testsys.CtlClientTLS(t, s.CtlAddr, foreign).SystemQuery(ctx, &ctlpb.SystemQueryReq{}); err == nil {
		t.Fatal("an admin certificate from another CA was served")
	}
}

// TestInsecureMode: servers with allow_insecure take unsigned credentials, from
// an insecure agent or from a client without any agent.
func TestInsecureMode(t *testing.T) {
	s := inproc.Start(t, false)
	s.CreatePool(t, "dev", me(t))
	ctx := context.Background()
	if _, err := client(t, s).PoolConnect(ctx, "dev", RW); err != nil {
		t.Fatalf("through an insecure agent: %v", err)
	}
	c, err := Init(ctx, Options{Insecure: true, AccessPoints: []string{s.CtlAddr}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Fini()
	if _, err := c.PoolConnect(ctx, "dev", RW); err != nil {
		t.Fatalf("without an agent: %v", err)
	}
	if _, err := Init(ctx, Options{AgentSocket: filepath.Join(t.TempDir(), "none.sock")}); !daoserr.Is(err, daoserr.AgentIncompat) ||
		!strings.Contains(err.Error(), "start daos_agent") {
		t.Fatalf("no agent: %v", err)
	}
}

// BenchmarkPoolConnect measures a pool connect through a secure system: a
// cached credential from the agent, the engine's check of its signature, the
// leader's check and ACL evaluation, and the reply with the pool map.
func BenchmarkPoolConnect(b *testing.B) {
	for _, secure := range []bool{true, false} {
		b.Run(map[bool]string{true: "secure", false: "insecure"}[secure], func(b *testing.B) {
			s := inproc.Start(b, secure)
			s.CreatePool(b, "bench", me(b))
			c := client(b, s)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.PoolConnect(ctx, "bench", RO); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
