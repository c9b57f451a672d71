package testsys

import (
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
