package certs

import (
	"context"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/godaos/godaos/internal/daoserr"
)

// PeerComponent returns the component of the gRPC caller in ctx: the Common Name
// of its client certificate, as verified against the CA during the handshake. It
// fails if the connection is not TLS or the certificate was not verified, so a
// server configured without client verification cannot be mistaken for one that
// knows who is calling.
func PeerComponent(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", daoserr.New(daoserr.NoPerm, "no gRPC peer in the request context").
			WithResolution("call PeerComponent from a gRPC handler or interceptor")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", daoserr.Newf(daoserr.NoPerm, "connection from %s is not TLS", p.Addr).
			WithResolution("configure the transport_config certificates on both ends, " +
				"or set allow_insecure: true on every component (development only)")
	}
	chains := info.State.VerifiedChains
	if len(chains) == 0 || len(chains[0]) == 0 {
		return "", daoserr.Newf(daoserr.NoPerm, "connection from %s has no verified client certificate", p.Addr).
			WithResolution("the client must present a certificate signed by the CA (ca_cert), " +
				"and the server must require it (certs.ServerTLS)")
	}
	return chains[0][0].Subject.CommonName, nil
}

// Authorizer maps full gRPC method names (e.g. "/godaos.ctl.Ctl/PoolCreate") to
// the components allowed to call them. A method not in the map is refused: deny
// by default, so a newly added method is unreachable until someone decides who
// may call it, rather than open to every certificate holder.
type Authorizer map[string][]string

// Authorize returns nil if the caller in ctx may call method, else a gRPC status
// error: Unauthenticated if the caller has no verified certificate,
// PermissionDenied if its component may not call method.
func (a Authorizer) Authorize(ctx context.Context, method string) error {
	comp, err := PeerComponent(ctx)
	if err != nil {
		return status.Error(codes.Unauthenticated, err.Error())
	}
	allowed, known := a[method]
	if !known {
		return status.Error(codes.PermissionDenied,
			daoserr.Newf(daoserr.NoPerm, "component %q may not call %s: the method is not in the control service's authorization table", comp, method).
				WithResolution("methods are refused unless authorized; if this method should be callable, add it to the server's Authorizer").Error())
	}
	if slices.Contains(allowed, comp) {
		return nil
	}
	return status.Error(codes.PermissionDenied,
		daoserr.Newf(daoserr.NoPerm, "component %q may not call %s (allowed: %s)", comp, method, strings.Join(allowed, ", ")).
			WithResolution("%s", useHint(allowed)).Error())
}

// useHint tells a refused caller which certificate the method needs and where
// that certificate is configured.
func useHint(allowed []string) string {
	var hints []string
	for _, c := range allowed {
		switch c {
		case Admin:
			hints = append(hints, "use the admin certificate (admin.crt) in daos_control.yml, i.e. call it with dmg")
		case Agent:
			hints = append(hints, "use the agent certificate (agent.crt) in daos_agent.yml")
		case Server:
			hints = append(hints, "use the server certificate (server.crt) in daos_server.yml")
		default:
			hints = append(hints, "use a certificate whose Common Name is "+c)
		}
	}
	if len(hints) == 0 {
		return "no component may call this method"
	}
	return strings.Join(hints, ", or ")
}

// UnaryInterceptor refuses a unary call whose caller's component may not call
// the method (see Authorize). When insecure is true (allow_insecure) it lets
// every call through: without TLS there is no certificate to identify the caller
// by, and development clusters run that way on purpose.
func (a Authorizer) UnaryInterceptor(insecure bool) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !insecure {
			if err := a.Authorize(ctx, info.FullMethod); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor is UnaryInterceptor for streaming methods. Install both:
// with only the unary one, streaming methods would bypass authorization.
func (a Authorizer) StreamInterceptor(insecure bool) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !insecure {
			if err := a.Authorize(ss.Context(), info.FullMethod); err != nil {
				return err
			}
		}
		return handler(srv, ss)
	}
}
