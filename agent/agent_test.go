package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/agentsock"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/agentpb"
	"github.com/godaos/godaos/internal/proto/authpb"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/security/auth"
	"github.com/godaos/godaos/internal/security/certs"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// When the test binary runs as the child of TestCredentialNamesTheCaller it
// asks the agent for a credential and prints the token.
func TestMain(m *testing.M) {
	if sock := os.Getenv("AGENT_TEST_CHILD_SOCKET"); sock != "" {
		tok, err := askCredential(sock)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(tok)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func agentClient(sock string) (agentpb.AgentClient, func(), error) {
	cl, cc, err := agentsock.Dial(sock)
	if err != nil {
		return nil, nil, err
	}
	return cl, func() { cc.Close() }, nil
}

func askCredential(sock string) (*authpb.Token, error) {
	cl, done, err := agentClient(sock)
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cl.GetCredential(ctx, &agentpb.CredentialReq{})
	if err != nil {
		return nil, err
	}
	if r.Error != nil {
		return nil, fmt.Errorf("%s", r.Error.Msg)
	}
	tok := &authpb.Token{}
	return tok, proto.Unmarshal(r.Cred.Token, tok)
}

// worldDir makes a directory any user can enter.
func worldDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "agent-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	os.Chmod(d, 0o755)
	return d
}

// TestCredentialNamesTheCaller: the agent signs what the kernel says about
// the process on the other end of the socket, not what the process claims: a
// child running as nobody gets nobody's credential, this process root's.
func TestCredentialNamesTheCaller(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test runs a child as another user, which needs root (CI runs as root)")
	}
	certDir := filepath.Join(t.TempDir(), "certs")
	if _, err := certs.Generate(certDir, certs.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := worldDir(t)
	a, err := Start(&Config{RuntimeDir: filepath.Join(dir, "run"), TransportConfig: TransportConfig{
		CACert: filepath.Join(certDir, "daosCA.crt"), Cert: filepath.Join(certDir, "agent.crt"), Key: filepath.Join(certDir, "agent.key")},
		CredentialTTL: 60}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	os.Chmod(filepath.Join(dir, "run"), 0o755)

	self, err := askCredential(a.Socket())
	if err != nil {
		t.Fatal(err)
	}
	if self.Uid != 0 || self.User != "root" || self.Expires-self.Issued != 60 {
		t.Fatalf("own token %+v", self)
	}

	// the same binary, copied where nobody can run it, as uid 65534
	exe, _ := os.Executable()
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(dir, "agent.test")
	if err := os.WriteFile(child, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(child)
	cmd.Env = append(os.Environ(), "AGENT_TEST_CHILD_SOCKET="+a.Socket())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child as nobody: %v %s", err, out)
	}
	var tok authpb.Token
	if err := json.Unmarshal(out, &tok); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	if tok.Uid != 65534 || tok.User != "nobody" || tok.Host == "" {
		t.Fatalf("nobody's token %+v", &tok)
	}

	// and the servers, trusting clients/agent.crt, accept the signature
	keys, err := certs.LoadVerifiers(filepath.Join(certDir, "clients"), filepath.Join(certDir, "daosCA.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cl, done, _ := agentClient(a.Socket())
	defer done()
	r, err := cl.GetCredential(context.Background(), &agentpb.CredentialReq{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := (&auth.Verifier{Keys: keys}).Verify(r.Cred); err != nil || got.User != "root" {
		t.Fatalf("server-side verification: %v %v", got, err)
	}
}

// fakeCtl answers attach-info calls and counts them.
type fakeCtl struct {
	ctlpb.UnimplementedCtlServer
	calls atomic.Int32
	asked chan []string // the pools of each call
}

func (f *fakeCtl) LeaderQuery(context.Context, *ctlpb.LeaderQueryReq) (*ctlpb.LeaderQueryResp, error) {
	return &ctlpb.LeaderQueryResp{Leader: "x"}, nil
}

func (f *fakeCtl) GetAttachInfo(_ context.Context, req *ctlpb.AttachInfoReq) (*ctlpb.AttachInfoResp, error) {
	n := f.calls.Add(1)
	select {
	case f.asked <- req.Pools:
	default:
	}
	resp := &ctlpb.AttachInfoResp{System: "daos_server", MapVersion: uint32(n), MsReplicas: []string{"127.0.0.1:1"},
		Members: []*ctlpb.Member{{Rank: 0, FabricAddr: "127.0.0.1:2", State: "joined"}}}
	for _, p := range req.Pools {
		resp.Pools = append(resp.Pools, &ctlpb.PoolMap{Label: p, Version: uint32(n), Ranks: []uint32{0}})
	}
	return resp, nil
}

// TestAttachInfoCache: many callers, one call to the servers, until the cache
// expires or a caller asks for a refresh.
func TestAttachInfoCache(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	fake := &fakeCtl{asked: make(chan []string, 64)}
	ctlpb.RegisterCtlServer(g, fake)
	go g.Serve(l)
	defer g.Stop()

	for _, tc := range []struct {
		name      string
		cfg       Config
		wantCalls int32
	}{
		{"cached", Config{}, 1},
		{"caching disabled", Config{DisableCaching: true}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake.calls.Store(0)
			cfg := tc.cfg
			cfg.AccessPoints, cfg.RuntimeDir = []string{l.Addr().String()}, t.TempDir()
			cfg.TransportConfig.AllowInsecure = true
			a, err := Start(&cfg, quiet())
			if err != nil {
				t.Fatal(err)
			}
			defer a.Shutdown(context.Background())
			cl, done, _ := agentClient(a.Socket())
			defer done()
			for range 5 {
				r, err := cl.GetAttachInfo(context.Background(), &agentpb.AttachInfoReq{})
				if err != nil || r.Error != nil || len(r.Members) != 1 || r.Members[0].FabricAddr != "127.0.0.1:2" {
					t.Fatalf("attach info: %v %v", r, err)
				}
			}
			if n := fake.calls.Load(); n != tc.wantCalls {
				t.Fatalf("%d calls to the servers, want %d", n, tc.wantCalls)
			}
			r, _ := cl.GetAttachInfo(context.Background(), &agentpb.AttachInfoReq{Refresh: true})
			if n := fake.calls.Load(); n != tc.wantCalls+1 || r.MapVersion != uint32(n) {
				t.Fatalf("refresh: %d calls, map version %d", n, r.MapVersion)
			}
		})
	}

	t.Run("pool maps", func(t *testing.T) {
		fake.calls.Store(0)
		for len(fake.asked) > 0 {
			<-fake.asked
		}
		a, err := Start(&Config{AccessPoints: []string{l.Addr().String()}, RuntimeDir: t.TempDir(),
			TransportConfig: TransportConfig{AllowInsecure: true}}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		defer a.Shutdown(context.Background())
		cl, done, _ := agentClient(a.Socket())
		defer done()
		ask := func(pools ...string) *agentpb.AttachInfoResp {
			r, err := cl.GetAttachInfo(context.Background(), &agentpb.AttachInfoReq{Pools: pools})
			if err != nil || r.Error != nil || len(r.Pools) != len(pools) {
				t.Fatalf("attach info for %v: %v %v", pools, r, err)
			}
			for i, p := range pools {
				if r.Pools[i].Label != p {
					t.Fatalf("pool %d is %s, want %s", i, r.Pools[i].Label, p)
				}
			}
			return r
		}
		ask("tank")
		ask("tank")
		ask()
		ask("scratch", "tank") // only scratch is fetched
		if n := fake.calls.Load(); n != 2 {
			t.Fatalf("%d calls to the servers, want 2", n)
		}
		if got := fmt.Sprint(<-fake.asked, <-fake.asked); got != "[tank] [scratch]" {
			t.Fatalf("asked the servers for %s", got)
		}
	})

	t.Run("no server answers", func(t *testing.T) {
		a, err := Start(&Config{AccessPoints: []string{"127.0.0.1:1"}, RuntimeDir: t.TempDir(),
			TransportConfig: TransportConfig{AllowInsecure: true}}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		defer a.Shutdown(context.Background())
		cl, done, _ := agentClient(a.Socket())
		defer done()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := cl.GetAttachInfo(ctx, &agentpb.AttachInfoReq{})
		if err != nil || r.Error == nil || !strings.Contains(r.Error.Msg, "no server answers") {
			t.Fatalf("%v %v", r, err)
		}
	})
}

func TestSocketAndConfigErrors(t *testing.T) {
	dir := t.TempDir()
	insecureCfg := func() *Config { return &Config{RuntimeDir: dir, TransportConfig: TransportConfig{AllowInsecure: true}} }
	a, err := Start(insecureCfg(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Start(insecureCfg(), quiet()); !daoserr.Is(err, daoserr.Busy) || !strings.Contains(err.Error(), "another daos_agent") {
		t.Fatalf("second agent on the same socket: %v", err)
	}
	a.Shutdown(context.Background())
	// a stale socket file left by a killed agent is replaced
	l, _ := net.Listen("unix", filepath.Join(dir, SocketName))
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if a, err = Start(insecureCfg(), quiet()); err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	a.Shutdown(context.Background())

	if _, err := Start(&Config{RuntimeDir: dir}, quiet()); !daoserr.Is(err, daoserr.Inval) || !strings.Contains(err.Error(), "allow_insecure") {
		t.Fatalf("no certificates, not insecure: %v", err)
	}
	yml := filepath.Join(t.TempDir(), "daos_agent.yml")
	os.WriteFile(yml, []byte("name: daos_server\naccess_pionts: [a]\n"), 0o644)
	if _, err := LoadConfig(yml); err == nil || !strings.Contains(err.Error(), "access_pionts") {
		t.Fatalf("misspelled key: %v", err)
	}
	os.WriteFile(yml, []byte("access_points: [node1:10001]\nruntime_dir: /tmp/x\ntransport_config:\n  allow_insecure: true\ncache_expiration: 2\n"), 0o644)
	c, err := LoadConfig(yml)
	if err != nil || c.AccessPoints[0] != "node1:10001" || c.cacheFor() != 2*time.Minute || c.Port != 10001 {
		t.Fatalf("config %+v %v", c, err)
	}
}
