// Package inproc starts whole systems inside a test's process: a daos_server
// (with its engine and management service), a daos_agent, and an admin
// control-plane client, secure (certificates generated for the test) or
// insecure. Tests of the client API and of security use it.
package inproc

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/godaos/godaos/agent"
	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/security/certs"
	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/server"
	"github.com/godaos/godaos/server/config"
)

// Quiet is a logger that drops everything.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// System is one daos_server (in this process), an agent, and an admin
// control-plane client.
type System struct {
	Server   *server.Server
	Admin    ctlpb.CtlClient // with the admin certificate when secure
	Agent    *agent.Agent
	CertDir  string // dmg cert generate's files, when secure
	CtlAddr  string
	Fabric   string // the engine's data-plane address
	Insecure bool
}

// Start starts the system: certificates, server and agent when secure,
// everything with allow_insecure otherwise. All of it stops when the test ends.
func Start(t testing.TB, secure bool) *System {
	t.Helper()
	return StartWith(t, secure, server.Options{})
}

// StartWith is Start with server options (a logger and auto-format are
// always set).
func StartWith(t testing.TB, secure bool, opts server.Options) *System {
	t.Helper()
	dir := t.TempDir()
	s := &System{Insecure: !secure, CertDir: filepath.Join(dir, "certs")}
	if err := os.MkdirAll(filepath.Join(dir, "srv"), 0o750); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default(filepath.Join(dir, "srv"))
	cfg.Port, cfg.TelemetryPort = testsys.FreePortPair(t), testsys.FreePort(t)
	cfg.MgmtSvcReplicas = []string{"127.0.0.1:" + strconv.Itoa(cfg.Port)}
	cfg.Engines[0].Targets = 2
	cfg.Engines[0].FabricIfacePort = testsys.FreePort(t)
	acfg := &agent.Config{AccessPoints: []string{"127.0.0.1:" + strconv.Itoa(cfg.Port)}, RuntimeDir: filepath.Join(dir, "agent")}
	if secure {
		if _, err := certs.Generate(s.CertDir, certs.GenerateOptions{}); err != nil {
			t.Fatal(err)
		}
		cfg.TransportConfig = config.TransportConfig{CACert: s.Cert("daosCA.crt"), Cert: s.Cert("server.crt"), Key: s.Cert("server.key"),
			ClientCertDir: s.Cert("clients")}
		acfg.TransportConfig = agent.TransportConfig{CACert: s.Cert("daosCA.crt"), Cert: s.Cert("agent.crt"), Key: s.Cert("agent.key")}
	} else {
		cfg.TransportConfig = config.TransportConfig{AllowInsecure: true}
		acfg.TransportConfig.AllowInsecure = true
	}
	opts.Logger, opts.AutoFormat = Quiet(), true
	srv, err := server.Start(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	s.Server, s.CtlAddr, s.Fabric = srv, srv.ControlAddr(), srv.EngineAddrs()[0]
	if secure {
		s.Admin = testsys.CtlClientTLS(t, s.CtlAddr, s.ClientTLS(t, "admin"))
	} else {
		s.Admin = testsys.CtlClient(t, s.CtlAddr)
	}
	WaitRanks(t, s.Admin, 1)
	if s.Agent, err = agent.Start(acfg, Quiet()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Agent.Shutdown(context.Background()) })
	return s
}

// Cert is the path of one of the generated certificate files.
func (s *System) Cert(name string) string { return filepath.Join(s.CertDir, name) }

// ClientTLS is a TLS client configuration with component's certificate.
func (s *System) ClientTLS(t testing.TB, component string) *tls.Config {
	t.Helper()
	c, err := certs.ClientTLS(s.Cert("daosCA.crt"), s.Cert(component+".crt"), s.Cert(component+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// WaitRanks waits (bounded) until the system map has n ranks.
func WaitRanks(t testing.TB, c ctlpb.CtlClient, n int) {
	t.Helper()
	for range 300 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := c.SystemQuery(ctx, &ctlpb.SystemQueryReq{})
		cancel()
		if err == nil && r.Error == nil && len(r.Members) == n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%d ranks did not join", n)
}

// CreatePool creates a pool as the administrator.
func (s *System) CreatePool(t testing.TB, label, owner string, acl ...string) {
	t.Helper()
	r, err := ctlclient.Retry(context.Background(), func(ctx context.Context) (*ctlpb.PoolCreateResp, error) {
		return s.Admin.PoolCreate(ctx, &ctlpb.PoolCreateReq{Label: label, ScmSize: 64 << 20, NvmeSize: 256 << 20, User: owner, Group: owner, Acl: acl})
	})
	if err := ctlclient.Err(err, r.GetError(), "pool create "+label); err != nil {
		t.Fatal(err)
	}
}

// mainTB lets Start run where there is no test yet (TestMain, for example
// tests): it implements the few testing.TB methods the helpers use.
type mainTB struct {
	testing.TB // unset: only the methods below are called
	cleanups   []func()
}

type mainFatal struct{ msg string }

func (m *mainTB) Helper()                   {}
func (m *mainTB) Cleanup(f func())          { m.cleanups = append(m.cleanups, f) }
func (m *mainTB) Fatal(args ...any)         { panic(mainFatal{fmt.Sprint(args...)}) }
func (m *mainTB) Fatalf(f string, a ...any) { panic(mainFatal{fmt.Sprintf(f, a...)}) }
func (m *mainTB) TempDir() string {
	d, err := os.MkdirTemp("", "godaos-inproc")
	if err != nil {
		m.Fatal(err)
	}
	m.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func (m *mainTB) stop() {
	for i := len(m.cleanups) - 1; i >= 0; i-- {
		m.cleanups[i]()
	}
}

// StartMain is Start for a TestMain (where example tests get their system):
// it creates pools owned by the current user, and returns a function that
// stops everything.
func StartMain(secure bool, pools ...string) (s *System, stop func(), err error) {
	m := &mainTB{}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(mainFatal)
			if !ok {
				panic(r)
			}
			m.stop()
			s, stop, err = nil, nil, fmt.Errorf("start an in-process system: %s", f.msg)
		}
	}()
	s = Start(m, secure)
	u, err := user.Current()
	if err != nil {
		m.stop()
		return nil, nil, err
	}
	for _, p := range pools {
		s.CreatePool(m, p, u.Username)
	}
	return s, m.stop, nil
}
