// Package agent is daos_agent: it runs on each client node and answers
// applications on a unix socket. It tells them who they are, in a credential
// it signs (the kernel names the caller with SO_PEERCRED, so nobody can ask
// for someone else's), and how to reach the system (attach info: management
// service replicas, ranks and their fabric addresses), which it caches.
package agent

import (
	"context"
	"crypto"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/agentsock"
	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/agentpb"
	"github.com/godaos/godaos/internal/proto/authpb"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/security/auth"
	"github.com/godaos/godaos/internal/security/certs"
)

// Agent is a running daos_agent.
type Agent struct {
	agentpb.UnimplementedAgentServer
	cfg      *Config
	log      *slog.Logger
	signer   crypto.Signer // nil when allow_insecure
	verifier string
	tls      *tls.Config
	host     string
	grpc     *grpc.Server
	sock     string
	done     chan struct{}

	mu      sync.Mutex
	attach  *agentpb.AttachInfoResp // the system part, without pool maps
	fetched time.Time
	pools   map[string]cachedPool // by the label or UUID clients asked with
}

type cachedPool struct {
	m       *ctlpb.PoolMap
	fetched time.Time
}

// Start loads the agent's key, listens on its socket and serves.
func Start(cfg *Config, log *slog.Logger) (*Agent, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: log, done: make(chan struct{})}
	a.host, _ = os.Hostname()
	tc := cfg.TransportConfig
	if tc.AllowInsecure {
		log.Warn("transport_config.allow_insecure is true: credentials are not signed and servers must run insecure too (development only)")
	} else {
		var err error
		if a.signer, err = certs.LoadSigner(tc.Key); err != nil {
			return nil, daoserr.Context(err, "agent key")
		}
		if a.verifier, err = certs.Fingerprint(a.signer.Public()); err != nil {
			return nil, err
		}
		if a.tls, err = certs.ClientTLS(tc.CACert, tc.Cert, tc.Key); err != nil {
			return nil, daoserr.Context(err, "agent certificate")
		}
	}
	l, err := listen(filepath.Join(cfg.RuntimeDir, SocketName))
	if err != nil {
		return nil, err
	}
	a.sock = l.Addr().String()
	a.grpc = grpc.NewServer(grpc.Creds(peerCreds{}))
	agentpb.RegisterAgentServer(a.grpc, a)
	go func() {
		defer close(a.done)
		a.grpc.Serve(l)
	}()
	log.Info("daos_agent listening", "socket", a.sock, "access_points", cfg.AccessPoints, "system", cfg.Name)
	return a, nil
}

// listen opens the socket, replacing a stale one left by an agent that died
// but never taking over from one that is alive.
func listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, daoserr.Wrap(daoserr.IO, err, "agent runtime_dir").WithResolution("create %s or set runtime_dir to a writable directory", filepath.Dir(path))
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, daoserr.Newf(daoserr.Busy, "another daos_agent is serving %s", path).WithResolution("stop it, or give this one another runtime_dir")
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.IO, err, "agent socket").WithResolution("check that %s is writable", filepath.Dir(path))
	}
	// every user's applications talk to the agent; SO_PEERCRED tells them apart
	if err := os.Chmod(path, 0o777); err != nil {
		l.Close()
		return nil, daoserr.Wrap(daoserr.IO, err, "agent socket mode")
	}
	return l, nil
}

// Socket is the path the agent listens on.
func (a *Agent) Socket() string { return a.sock }

// Shutdown stops serving (waiting for calls in progress) and removes the socket.
func (a *Agent) Shutdown(ctx context.Context) error {
	stopped := make(chan struct{})
	go func() {
		a.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		a.grpc.Stop()
	}
	<-a.done
	os.Remove(a.sock)
	return nil
}

// GetCredential signs a credential for the caller.
func (a *Agent) GetCredential(ctx context.Context, _ *agentpb.CredentialReq) (*agentpb.CredentialResp, error) {
	cred, err := a.credential(ctx)
	if err != nil {
		a.log.Warn("credential refused", "err", err)
		return &agentpb.CredentialResp{Error: ctlclient.FromError(err)}, nil
	}
	return &agentpb.CredentialResp{Cred: cred}, nil
}

func (a *Agent) credential(ctx context.Context) (*authpb.Credential, error) {
	p, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := auth.TokenFor(p.Uid, p.Gid)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tok.Host, tok.Machine = a.host, a.cfg.Name
	tok.Issued, tok.Expires = now.Unix(), now.Add(a.cfg.credentialTTL()).Unix()
	return auth.Sign(tok, a.signer, a.verifier)
}

// GetAttachInfo answers from the cache, or asks the servers: the system's
// replicas and ranks, and the maps of the pools asked for.
func (a *Agent) GetAttachInfo(ctx context.Context, req *agentpb.AttachInfoReq) (*agentpb.AttachInfoResp, error) {
	a.mu.Lock()
	defer a.mu.Unlock() // one fetch at a time: a burst of clients starting makes one call to the servers
	fresh := func(t time.Time) bool { return !req.Refresh && time.Since(t) < a.cfg.cacheFor() }
	var missing []string
	for _, id := range req.Pools {
		if c, ok := a.pools[id]; !ok || !fresh(c.fetched) {
			missing = append(missing, id)
		}
	}
	if a.attach == nil || !fresh(a.fetched) || len(missing) > 0 {
		resp, err := a.fetchAttachInfo(ctx, missing)
		if err != nil {
			a.log.Warn("attach info", "err", err)
			return &agentpb.AttachInfoResp{Error: ctlclient.FromError(err)}, nil
		}
		now := time.Now()
		if a.pools == nil {
			a.pools = map[string]cachedPool{}
		}
		for i, m := range resp.Pools {
			a.pools[missing[i]] = cachedPool{m, now}
		}
		resp.Pools = nil
		a.attach, a.fetched = resp, now
	}
	out := proto.Clone(a.attach).(*agentpb.AttachInfoResp)
	for _, id := range req.Pools {
		out.Pools = append(out.Pools, a.pools[id].m)
	}
	return out, nil
}

func (a *Agent) fetchAttachInfo(ctx context.Context, pools []string) (*agentpb.AttachInfoResp, error) {
	return fetchAttachInfo(ctx, a.cfg, a.tls, pools)
}

// FetchAttachInfo asks the access points of cfg for attach info (and the maps
// of pools), as the agent does when its cache is cold (daos_agent
// dump-attachinfo).
func FetchAttachInfo(ctx context.Context, cfg *Config, pools ...string) (*agentpb.AttachInfoResp, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	var tlsConf *tls.Config
	if tc := cfg.TransportConfig; !tc.AllowInsecure {
		var err error
		if tlsConf, err = certs.ClientTLS(tc.CACert, tc.Cert, tc.Key); err != nil {
			return nil, err
		}
	}
	return fetchAttachInfo(ctx, cfg, tlsConf, pools)
}

func fetchAttachInfo(ctx context.Context, cfg *Config, tlsConf *tls.Config, pools []string) (*agentpb.AttachInfoResp, error) {
	r, err := ctlclient.AttachInfo(ctx, ctlclient.Hosts(cfg.AccessPoints, cfg.Port), tlsConf, pools...)
	if err != nil {
		return nil, err
	}
	if r.System != "" && cfg.Name != "" && r.System != cfg.Name {
		return nil, daoserr.Newf(daoserr.Inval, "access points belong to system %q, the agent is configured for %q", r.System, cfg.Name).
			WithResolution("make name in daos_agent.yml match the servers' name")
	}
	return agentsock.FromCtl(r), nil
}
