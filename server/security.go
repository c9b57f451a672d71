package server

import (
	"crypto"
	"crypto/tls"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/security/auth"
	"github.com/godaos/godaos/internal/security/capability"
	"github.com/godaos/godaos/internal/security/certs"
	"github.com/godaos/godaos/server/config"
)

// transport is the server's security material: mutual TLS for the control
// plane (nil configs when allow_insecure) and the verifier of the agents'
// credentials.
type transport struct {
	serverTLS, clientTLS *tls.Config
	verifier             *auth.Verifier
	// capSigner signs container handles' capabilities (the server key, which
	// every server shares: each verifies what any other signed); nil when
	// insecure.
	capSigner crypto.Signer
}

// capVerifier is what engines check capabilities with.
func (t *transport) capVerifier() capability.Verifier {
	if t.capSigner == nil {
		return capability.Verifier{}
	}
	return capability.Verifier{Key: t.capSigner.Public()}
}

// seal seals a request only servers may send (enginepb.ServerOps) with the
// server key; unsigned when insecure.
func (t *transport) seal(op uint16, msg []byte) ([]byte, error) {
	return capability.Seal(t.capSigner, op, msg)
}

func loadTransport(cfg *config.Server, log *slog.Logger) (*transport, error) {
	tc := cfg.TransportConfig
	t := &transport{verifier: &auth.Verifier{AllowInsecure: tc.AllowInsecure}}
	if tc.ClientCertDir != "" {
		keys, err := certs.LoadVerifiers(tc.ClientCertDir, tc.CACert)
		if err != nil {
			return nil, &config.Error{Key: "transport_config.client_cert_dir", Msg: err.Error(),
				Resolution: "put the agents' certificates (agent.crt from 'dmg cert generate') in it"}
		}
		t.verifier.Keys = keys
	}
	if tc.AllowInsecure {
		log.Warn("transport_config.allow_insecure is true: the control plane is not authenticated and unsigned client credentials are accepted (development only)")
		return t, nil
	}
	if tc.ClientCertDir == "" {
		return nil, &config.Error{Key: "transport_config.client_cert_dir", Msg: "not set",
			Resolution: "name the directory holding the agents' certificates (agent.crt): servers verify the credentials agents sign with them"}
	}
	var err error
	if t.serverTLS, err = certs.ServerTLS(tc.CACert, tc.Cert, tc.Key); err != nil {
		return nil, &config.Error{Key: "transport_config", Msg: err.Error()}
	}
	if t.clientTLS, err = certs.ClientTLS(tc.CACert, tc.Cert, tc.Key); err != nil {
		return nil, &config.Error{Key: "transport_config", Msg: err.Error()}
	}
	if t.capSigner, err = certs.LoadSigner(tc.Key); err != nil {
		return nil, &config.Error{Key: "transport_config.key", Msg: err.Error()}
	}
	return t, nil
}

// grpcOptions are the control service's: TLS and the per-method component
// check when secure.
func (t *transport) grpcOptions() []grpc.ServerOption {
	if t.serverTLS == nil {
		return nil
	}
	a := authorizer()
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(t.serverTLS)),
		grpc.UnaryInterceptor(a.UnaryInterceptor(false)), grpc.StreamInterceptor(a.StreamInterceptor(false))}
}

// Who may call what on the control service, by certificate (component):
// servers call everything (they forward dmg's and clients' calls to the
// leader), dmg (admin) the administrative calls, agents what they need to
// serve attach info. Clients' pool-service calls arrive on the data plane
// with a signed credential, not here.
var (
	serverOnly = map[string]bool{"Join": true, "EngineStop": true, "EngineStart": true, "PoolConnect": true,
		"ContCreate": true, "ContOpen": true, "ContDestroy": true, "ContList": true, "ContAllocOIDs": true, "ContACL": true, "ContProp": true, "ContAttr": true, "ContSnap": true, "GetAttachInfo": true}
	agentCalls = map[string]bool{"GetAttachInfo": true, "LeaderQuery": true}
)

func authorizer() certs.Authorizer {
	a := certs.Authorizer{}
	for _, m := range ctlpb.Ctl_ServiceDesc.Methods {
		allowed := []string{certs.Server}
		if !serverOnly[m.MethodName] {
			allowed = append(allowed, certs.Admin)
		}
		if agentCalls[m.MethodName] {
			allowed = append(allowed, certs.Agent)
		}
		a["/"+ctlpb.Ctl_ServiceDesc.ServiceName+"/"+m.MethodName] = allowed
	}
	return a
}
