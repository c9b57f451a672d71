// Package agentsock is where applications find daos_agent and how they reach
// it: gRPC over the agent's unix socket.
package agentsock

import (
	"context"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/godaos/godaos/internal/proto/agentpb"
	"github.com/godaos/godaos/internal/proto/ctlpb"
)

// DefaultDir holds the agent's socket (DAOS's).
const DefaultDir = "/var/run/daos_agent"

// Name is the socket's file name in the agent's runtime directory.
const Name = "daos_agent.sock"

// Dir is where applications look for the agent: $DAOS_AGENT_DRPC_DIR when
// set, else DefaultDir.
func Dir() string {
	if d := os.Getenv("DAOS_AGENT_DRPC_DIR"); d != "" {
		return d
	}
	return DefaultDir
}

// Path is the agent socket applications use.
func Path() string { return filepath.Join(Dir(), Name) }

// Dial connects to the agent at sock. The connection is made lazily; the
// first call fails if no agent listens.
func Dial(sock string) (agentpb.AgentClient, *grpc.ClientConn, error) {
	cc, err := grpc.NewClient("unix:"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}))
	if err != nil {
		return nil, nil, err
	}
	return agentpb.NewAgentClient(cc), cc, nil
}

// FromCtl is the management service's attach info as the agent serves it.
func FromCtl(r *ctlpb.AttachInfoResp) *agentpb.AttachInfoResp {
	return &agentpb.AttachInfoResp{System: r.System, MsReplicas: r.MsReplicas, Members: r.Members, MapVersion: r.MapVersion,
		Provider: r.Provider, Pools: r.Pools}
}
