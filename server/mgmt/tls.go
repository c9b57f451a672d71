package mgmt

import (
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/godaos/godaos/internal/security/certs"
)

// tlsStream carries Raft over mutual TLS: both ends present server
// certificates from the system's CA, so nothing but a server can append to
// the management service's log (a plaintext Raft port would let anyone on the
// network win an election with a higher term and rewrite pools and ACLs).
type tlsStream struct {
	net.Listener
	advertise net.Addr
	client    *tls.Config
}

func newTLSStream(addr string, advertise net.Addr, server, client *tls.Config) (*tlsStream, error) {
	server = server.Clone()
	server.VerifyConnection = serversOnly
	client = client.Clone()
	client.VerifyConnection = serversOnly
	l, err := tls.Listen("tcp", addr, server)
	if err != nil {
		return nil, err
	}
	return &tlsStream{Listener: l, advertise: advertise, client: client}, nil
}

// serversOnly refuses a peer whose certificate is not a server's (an agent
// or admin certificate from the same CA must not speak Raft either).
func serversOnly(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].Subject.CommonName != certs.Server {
		return errors.New("management service: the peer's certificate is not a server certificate")
	}
	return nil
}

func (t *tlsStream) Addr() net.Addr {
	if t.advertise != nil {
		return t.advertise
	}
	return t.Listener.Addr()
}

func (t *tlsStream) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: t.client}
	return d.Dial("tcp", string(a))
}
