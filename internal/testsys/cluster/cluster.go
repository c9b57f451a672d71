// Package cluster starts a multi-server system for client API and fault
// tests: real daos_server processes on 127.0.0.1 (launcher.StartLocal), a
// daos_agent in the test's process, an admin control-plane client, and a pool.
// Everything stops when the test ends.
//
// The daos_server binary is built once per test process (testsys.Binaries);
// a package using this one should call testsys.RemoveBinaries from its
// TestMain after m.Run.
package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/godaos/godaos/agent"
	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/security/certs"
	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/internal/testsys/inproc"
	"github.com/godaos/godaos/launcher"
	"github.com/godaos/godaos/server/config"
)

// Options describe the system to start.
type Options struct {
	Servers int  // daos_server processes, one engine (rank) each; default 3
	Targets int  // per engine; default 2
	Secure  bool // certificates for the control plane, signed credentials

	Pool      string   // label of the pool to create; default "pool"
	PoolOwner string   // default: the user running the test
	PoolACL   []string // default: DAOS's default pool ACL
	NoPool    bool     // create no pool
}

// startTimeout bounds a start (every rank joined) and a restart.
const startTimeout = 90 * time.Second

// System is a running multi-server system.
type System struct {
	AgentSocket  string          // for daos.Options.AgentSocket
	AccessPoints []string        // the servers' control addresses (host:port)
	Admin        ctlpb.CtlClient // administrator's control client, failing over across the servers
	Pool         string          // the pool created at start (label), "" with NoPool
	PoolUUID     string
	CertDir      string // certs.Generate's files, when Secure
	Dir          string // the servers' directories and logs

	local    *launcher.LocalSystem
	agent    *agent.Agent
	adminCC  *grpc.ClientConn
	stopOnce sync.Once
}

// Start starts the system described by o, creates its pool and returns when
// every rank has joined. It stops at the end of the test (or with Stop).
func Start(t testing.TB, o Options) *System {
	t.Helper()
	if o.Servers == 0 {
		o.Servers = 3
	}
	if o.Targets == 0 {
		o.Targets = 2
	}
	if o.Pool == "" {
		o.Pool = "pool"
	}
	bins := testsys.Binaries(t, testsys.Cmd("daos_server"))
	s := &System{Dir: t.TempDir()}
	s.CertDir = filepath.Join(s.Dir, "certs")
	lo := launcher.LocalOptions{N: o.Servers, Targets: o.Targets, Dir: filepath.Join(s.Dir, "servers"),
		BasePort: testsys.FreeBase(t, o.Servers), Bin: filepath.Join(bins, "daos_server")}
	// the agent's socket path must fit a sockaddr_un (108 bytes): not under a
	// test's TempDir, whose name grows with the test's
	agentDir, err := os.MkdirTemp("", "godaos-agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(agentDir) })
	acfg := &agent.Config{RuntimeDir: agentDir}
	var adminTLS *tls.Config
	if o.Secure {
		if _, err := certs.Generate(s.CertDir, certs.GenerateOptions{}); err != nil {
			t.Fatal(err)
		}
		lo.Transport = &config.TransportConfig{CACert: s.Cert("daosCA.crt"), Cert: s.Cert("server.crt"), Key: s.Cert("server.key"),
			ClientCertDir: s.Cert("clients")}
		adminTLS = s.ClientTLS(t, "admin")
		lo.TLS = adminTLS
		acfg.TransportConfig = agent.TransportConfig{CACert: s.Cert("daosCA.crt"), Cert: s.Cert("agent.crt"), Key: s.Cert("agent.key")}
	} else {
		acfg.TransportConfig.AllowInsecure = true
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	s.local, err = launcher.StartLocal(ctx, lo)
	if err != nil {
		t.Fatalf("start %d servers: %v", o.Servers, err)
	}
	t.Cleanup(s.Stop) // registered first, so it runs after the agent's and the client's
	s.AccessPoints = append([]string(nil), s.local.HostList...)
	acfg.AccessPoints = s.AccessPoints

	s.adminCC, err = adminConn(s.AccessPoints, adminTLS)
	if err != nil {
		t.Fatal(err)
	}
	s.Admin = ctlpb.NewCtlClient(s.adminCC)

	if s.agent, err = agent.Start(acfg, inproc.Quiet()); err != nil {
		t.Fatal(err)
	}
	s.AgentSocket = s.agent.Socket()

	if !o.NoPool {
		owner := o.PoolOwner
		if owner == "" {
			u, err := user.Current()
			if err != nil {
				t.Fatal(err)
			}
			owner = u.Username
		}
		s.Pool = o.Pool
		s.PoolUUID = s.CreatePool(t, o.Pool, owner, o.PoolACL...)
	}
	return s
}

// adminConn is one control-plane connection over every server: gRPC's
// pick_first moves on to the next address when a server dies.
func adminConn(hosts []string, tlsConf *tls.Config) (*grpc.ClientConn, error) {
	r := manual.NewBuilderWithScheme("godaos-cluster")
	var addrs []resolver.Address
	for _, h := range hosts {
		addrs = append(addrs, resolver.Address{Addr: h})
	}
	r.InitialState(resolver.State{Addresses: addrs})
	return grpc.NewClient(r.Scheme()+":///servers", grpc.WithResolvers(r), ctlclient.Transport(tlsConf))
}

// Cert is the path of one of the generated certificate files.
func (s *System) Cert(name string) string { return filepath.Join(s.CertDir, name) }

// ClientTLS is a TLS client configuration with component's certificate
// ("admin", "agent", "server").
func (s *System) ClientTLS(t testing.TB, component string) *tls.Config {
	t.Helper()
	c, err := certs.ClientTLS(s.Cert("daosCA.crt"), s.Cert(component+".crt"), s.Cert(component+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// CreatePool creates a pool over every rank as the administrator and returns
// its UUID; owner is a user name, acl DAOS ACE strings (none: the default ACL).
func (s *System) CreatePool(t testing.TB, label, owner string, acl ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	r, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolCreateResp, error) {
		return s.Admin.PoolCreate(ctx, &ctlpb.PoolCreateReq{Label: label, ScmSize: 64 << 20 * uint64(len(s.AccessPoints)),
			NvmeSize: 256 << 20 * uint64(len(s.AccessPoints)), User: owner, Group: owner, Acl: acl})
	})
	if err := ctlclient.Err(err, r.GetError(), "pool create "+label); err != nil {
		t.Fatal(err)
	}
	return r.Pool.GetUuid()
}

// Stop stops the agent and the servers (SIGTERM; SIGKILL for those still
// running after launcher's bounded wait). It runs at the end of the test and
// may be called before.
func (s *System) Stop() {
	s.stopOnce.Do(func() {
		if s.agent != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			s.agent.Shutdown(ctx)
			cancel()
		}
		if s.adminCC != nil {
			s.adminCC.Close()
		}
		s.local.Stop()
	})
}

// KillServer kills server i with SIGKILL and waits (bounded) until it has
// exited. It returns errors rather than failing the test, so that fault tests
// can call it from any goroutine; it is not safe to call concurrently with
// RestartServer.
func (s *System) KillServer(i int) error {
	if err := s.local.Kill(i, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill server %d: %w", i, err)
	}
	done := make(chan struct{})
	go func() { s.local.Wait(i); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("server %d did not exit 30 s after SIGKILL", i)
	}
}

// Signal sends sig to server i (SIGSTOP and SIGCONT pause and resume it,
// as a hung node would be). Like KillServer it returns errors rather than
// failing the test.
func (s *System) Signal(i int, sig syscall.Signal) error {
	if err := s.local.Kill(i, sig); err != nil {
		return fmt.Errorf("signal %v to server %d: %w", sig, i, err)
	}
	return nil
}

// RestartServer starts server i again (after KillServer) on its storage and
// waits (bounded) until its engines have joined again (other servers may be
// down).
func (s *System) RestartServer(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.local.Restart(ctx, i, startTimeout); err != nil {
		return fmt.Errorf("restart server %d: %w", i, err)
	}
	return nil
}

// ServerLog is server i's log, for a failing test to show.
func (s *System) ServerLog(i int) string {
	b, err := os.ReadFile(filepath.Join(s.local.Dirs[i], "server.log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}
