package agent

import (
	"context"
	"net"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/godaos/godaos/internal/daoserr"
)

// peerCreds are gRPC transport credentials for the agent's unix socket: the
// server side asks the kernel who is on the other end (SO_PEERCRED) once per
// connection, so a caller cannot claim to be anyone else.
type peerCreds struct{}

// peerInfo is the caller as the kernel reports it.
type peerInfo struct {
	credentials.CommonAuthInfo
	Pid      int32
	Uid, Gid uint32
}

func (peerInfo) AuthType() string { return "peercred" }

func (peerCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, nil, daoserr.Newf(daoserr.Proto, "agent connection from %s is not a unix socket", conn.RemoteAddr())
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) { cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return nil, nil, err
	}
	if serr != nil {
		return nil, nil, daoserr.Wrap(daoserr.NoPerm, serr, "SO_PEERCRED on the agent socket")
	}
	return conn, peerInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity},
		Pid: cred.Pid, Uid: cred.Uid, Gid: cred.Gid}, nil
}

func (peerCreds) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return conn, peerInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

func (peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}
func (p peerCreds) Clone() credentials.TransportCredentials { return p }
func (peerCreds) OverrideServerName(string) error           { return nil }

// callerOf is the kernel's word on who made the call in ctx.
func callerOf(ctx context.Context) (peerInfo, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return peerInfo{}, daoserr.New(daoserr.NoPerm, "no peer on the agent call")
	}
	info, ok := p.AuthInfo.(peerInfo)
	if !ok {
		return peerInfo{}, daoserr.New(daoserr.NoPerm, "the agent call did not come over its unix socket")
	}
	return info, nil
}
