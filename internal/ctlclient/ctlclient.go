// Package ctlclient connects to the servers' control service (gRPC): dmg,
// daos_agent and the launcher use it. It picks the first server of a list that
// answers, and retries a call while the management service elects a leader or
// a server restarts, so callers survive a leader change.
package ctlclient

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/ctlpb"
)

// Conn is a connection to one server's control service.
type Conn struct {
	ctlpb.CtlClient
	cc   *grpc.ClientConn
	Host string
}

// Close closes the connection.
func (c *Conn) Close() error { return c.cc.Close() }

// Transport is the credentials for a TLS config, or insecure ones for nil.
func Transport(tlsConf *tls.Config) grpc.DialOption {
	if tlsConf == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(tlsConf))
}

// Dial connects to the first server of hosts (host:port) that answers a
// leader query within a few seconds. tlsConf nil means insecure.
func Dial(ctx context.Context, hosts []string, tlsConf *tls.Config) (*Conn, error) {
	var last error
	for _, h := range hosts {
		cc, err := grpc.NewClient(h, Transport(tlsConf))
		if err != nil {
			last = err
			continue
		}
		c := ctlpb.NewCtlClient(cc)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = c.LeaderQuery(cctx, &ctlpb.LeaderQueryReq{}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			cc.Close()
			last = err
			continue
		}
		return &Conn{CtlClient: c, cc: cc, Host: h}, nil
	}
	e := daoserr.Wrap(daoserr.Unreach, last, "no server answers at %s", strings.Join(hosts, ", "))
	switch msg := errString(last); {
	case status.Code(last) == codes.PermissionDenied || strings.Contains(msg, "certificate") || strings.Contains(msg, "tls:"):
		return nil, e.WithResolution("check transport_config: the certificates must come from the servers' CA (or set allow_insecure on both sides)")
	case strings.Contains(msg, "server preface"):
		// a plaintext client talking to a TLS server sees the connection close
		return nil, e.WithResolution("the servers may require TLS: give transport_config with ca_cert, cert and key (e.g. dmg -o daos_control.yml), or run everything with allow_insecure")
	}
	return nil, e.WithResolution("start daos_server, or point at it with -l host:port (or access_points / hostlist in the config)")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// RetryFor is how long Retry keeps trying.
var RetryFor = 30 * time.Second

// Retry makes a call, again while the answer is "no leader (yet)" or the server
// is unreachable, for up to RetryFor.
func Retry[T interface{ GetError() *ctlpb.Error }](ctx context.Context, call func(context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(RetryFor)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		resp, err := call(ctx)
		again := status.Code(err) == codes.Unavailable
		if err == nil {
			again = daoserr.Is(ToError(resp.GetError()), daoserr.NotLeader)
		}
		if !again || time.Now().After(deadline) {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return resp, err
		case <-time.After(wait):
		}
	}
}

// ToError converts a control-plane error to a daoserr error (nil for none).
func ToError(e *ctlpb.Error) error {
	if e == nil || e.Code == 0 {
		return nil
	}
	return &daoserr.Error{Code: daoserr.Code(e.Code), Msg: e.Msg, Resolution: e.Resolution}
}

// FromError converts an error to its control-plane form (nil for none).
func FromError(err error) *ctlpb.Error {
	if err == nil {
		return nil
	}
	var de *daoserr.Error
	if errors.As(err, &de) {
		msg := de.Msg
		if de.Err != nil {
			msg += ": " + de.Err.Error()
		}
		return &ctlpb.Error{Code: int32(de.Code), Msg: msg, Resolution: de.Resolution}
	}
	code := daoserr.CodeOf(err)
	if code == 0 {
		code = daoserr.Misc
	}
	return &ctlpb.Error{Code: int32(code), Msg: err.Error()}
}

// Err turns a call's transport error or reply error into one error about what.
func Err(err error, e *ctlpb.Error, what string) error {
	if err != nil {
		if status.Code(err) == codes.PermissionDenied {
			return daoserr.Wrap(daoserr.NoPerm, err, "%s", what)
		}
		return daoserr.Wrap(daoserr.Unreach, err, "%s", what)
	}
	if e := ToError(e); e != nil {
		return daoserr.Context(e, "%s", what)
	}
	return nil
}

// Hosts normalises a host list: host or host:port (comma-separated entries
// allowed), with port (default 10001) where none is given.
func Hosts(list []string, port int) []string {
	if port == 0 {
		port = DefaultPort
	}
	var out []string
	for _, h := range list {
		for _, e := range strings.Split(h, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			if _, _, err := net.SplitHostPort(e); err != nil {
				e = net.JoinHostPort(e, strconv.Itoa(port))
			}
			out = append(out, e)
		}
	}
	return out
}

// DefaultPort is the servers' control port when a host is given without one.
const DefaultPort = 10001

// AttachInfo asks the servers at hosts for what a client needs to reach the
// system: management service replicas, every rank's fabric address, and the
// maps of pools (labels or UUIDs).
func AttachInfo(ctx context.Context, hosts []string, tlsConf *tls.Config, pools ...string) (*ctlpb.AttachInfoResp, error) {
	conn, err := Dial(ctx, hosts, tlsConf)
	if err != nil {
		return nil, daoserr.Context(err, "attach info")
	}
	defer conn.Close()
	r, err := Retry(ctx, func(ctx context.Context) (*ctlpb.AttachInfoResp, error) {
		return conn.GetAttachInfo(ctx, &ctlpb.AttachInfoReq{Pools: pools})
	})
	if err := Err(err, r.GetError(), "attach info"); err != nil {
		return nil, err
	}
	return r, nil
}

// ACLChange says how to change an ACL (pool or container); the zero value
// reads it.
type ACLChange struct {
	Overwrite []string // replace the ACL with these ACE strings
	Update    []string // add these entries, replacing those of the same principals
	Delete    string   // remove this principal's entry: OWNER@, GROUP@, EVERYONE@, u:name@, g:name@
}

// Req is the change as the control plane's request for the pool id.
func (ch ACLChange) Req(id string) *ctlpb.PoolACLReq {
	req := &ctlpb.PoolACLReq{Id: id}
	switch {
	case ch.Overwrite != nil:
		req.Mode, req.Entries = ctlpb.PoolACLReq_OVERWRITE, ch.Overwrite
	case ch.Update != nil:
		req.Mode, req.Entries = ctlpb.PoolACLReq_UPDATE, ch.Update
	case ch.Delete != "":
		req.Mode, req.Principal = ctlpb.PoolACLReq_DELETE, ch.Delete
	}
	return req
}
