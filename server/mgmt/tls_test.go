package mgmt

import (
	"crypto/tls"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/godaos/godaos/internal/security/certs"
	"github.com/godaos/godaos/internal/testsys"
)

// TestRaftOverTLS: replicas with server certificates elect a leader and
// replicate; a peer speaking plain TCP, or TLS with an admin certificate from
// the same CA, cannot append to the log (the attack: win an election with a
// higher term and rewrite pool ACLs).
func TestRaftOverTLS(t *testing.T) {
	dir := t.TempDir()
	if _, err := certs.Generate(dir, certs.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	tlsFor := func(component string) (*tls.Config, *tls.Config) {
		ca, crt, key := filepath.Join(dir, "daosCA.crt"), filepath.Join(dir, component+".crt"), filepath.Join(dir, component+".key")
		var srv *tls.Config
		if component == certs.Server {
			var err error
			if srv, err = certs.ServerTLS(ca, crt, key); err != nil {
				t.Fatal(err)
			}
		}
		cl, err := certs.ClientTLS(ca, crt, key)
		if err != nil {
			t.Fatal(err)
		}
		return srv, cl
	}
	srvTLS, cliTLS := tlsFor(certs.Server)
	var addrs []string
	for range 3 {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", testsys.FreePort(t)))
	}
	svcs := map[string]*Service{}
	for i, a := range addrs {
		s, err := Start(Options{Addr: a, Replicas: addrs, Dir: filepath.Join(t.TempDir(), fmt.Sprint(i)), Fast: true, Logger: quiet(),
			ServerTLS: srvTLS, ClientTLS: cliTLS})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Shutdown()
		svcs[a] = s
	}
	leader := leaderOf(t, svcs)
	if err := leader.AddPool(Pool{UUID: "p1", Label: "tank"}); err != nil {
		t.Fatalf("replicating over TLS: %v", err)
	}

	appendAsAttacker := func(trans *raft.NetworkTransport) error {
		req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("evil"), Addr: []byte(trans.LocalAddr())},
			Term: 1 << 40, PrevLogEntry: 0, LeaderCommitIndex: 0}
		var resp raft.AppendEntriesResponse
		return trans.AppendEntries(raft.ServerID(addrs[0]), raft.ServerAddress(addrs[0]), req, &resp)
	}
	plain, err := raft.NewTCPTransport(fmt.Sprintf("127.0.0.1:%d", testsys.FreePort(t)), nil, 1, time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := appendAsAttacker(plain); err == nil {
		t.Error("a plaintext peer appended to the log")
	}
	_, adminTLS := tlsFor(certs.Admin)
	stream, err := newTLSStream(fmt.Sprintf("127.0.0.1:%d", testsys.FreePort(t)), nil, srvTLS, adminTLS)
	if err != nil {
		t.Fatal(err)
	}
	admin := raft.NewNetworkTransport(stream, 1, time.Second, io.Discard)
	defer admin.Close()
	if err := appendAsAttacker(admin); err == nil {
		t.Error("a peer with an admin certificate appended to the log")
	}
	if l := leaderOf(t, svcs); l.raft.CurrentTerm() >= 1<<40 {
		t.Error("the attacker's term was taken")
	}
	if p, err := leaderOf(t, svcs).FindPool("tank"); err != nil || p.UUID != "p1" {
		t.Fatalf("pool after the attempts: %v %v", p, err)
	}
}
