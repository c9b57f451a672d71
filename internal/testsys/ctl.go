package testsys

import (
	"crypto/tls"
	"google.golang.org/grpc/credentials"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/godaos/godaos/internal/proto/ctlpb"
)

// CtlClient is a control-plane client of the server at addr, closed when the
// test ends.
func CtlClient(tb testing.TB, addr string) ctlpb.CtlClient {
	tb.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	return ctlpb.NewCtlClient(cc)
}

// CtlClientTLS is CtlClient over TLS (tlsConf from certs.ClientTLS).
func CtlClientTLS(tb testing.TB, addr string, tlsConf *tls.Config) ctlpb.CtlClient {
	tb.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsConf)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	return ctlpb.NewCtlClient(cc)
}
