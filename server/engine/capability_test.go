package engine

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security/capability"
	"github.com/godaos/godaos/internal/security/certs"
)

// On a secure system an engine does object I/O only for a capability the
// servers' key signed, for the request's pool and container, unexpired, with
// the rights the operation needs.
func TestCapabilityChecks(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	opts := engineOpts(t)
	opts.Caps = capability.Verifier{Key: key.Public()}
	te := startEngine(t, opts)
	te.signer = key
	te.createPool(t)
	sv := &enginepb.IOD{Akey: []byte("a"), Type: 1, Size: 3}
	withCap := func(c []byte) *enginepb.ObjIOReq {
		m := ioReq("d", 0, sv)
		m.Cap = c
		return m
	}
	rw := enginepb.CapRead | enginepb.CapWrite
	tests := []struct {
		name     string
		op       uint16
		cap      []byte
		code     daoserr.Code
		contains string
	}{
		{"signed read-write: update", enginepb.OpObjUpdate, testCap(key, tPool, tCont, rw, time.Hour), 0, ""},
		{"signed read-write: fetch", enginepb.OpObjFetch, testCap(key, tPool, tCont, rw, time.Hour), 0, ""},
		{"read-only handle cannot update", enginepb.OpObjUpdate, testCap(key, tPool, tCont, enginepb.CapRead, time.Hour), daoserr.NoPerm, "may not write"},
		{"read-only handle can fetch", enginepb.OpObjFetch, testCap(key, tPool, tCont, enginepb.CapRead, time.Hour), 0, ""},
		{"no rights cannot fetch", enginepb.OpObjFetch, testCap(key, tPool, tCont, 0, time.Hour), daoserr.NoPerm, "may not read"},
		{"no capability", enginepb.OpObjUpdate, nil, daoserr.NoHdl, "without a container handle"},
		{"garbage", enginepb.OpObjFetch, []byte{0xff, 0x01, 0x02}, daoserr.NoHdl, "invalid container handle"},
		{"unsigned on a secure system", enginepb.OpObjUpdate, testCap(nil, tPool, tCont, rw, time.Hour), daoserr.NoHdl, "unsigned"},
		{"signed by another key", enginepb.OpObjUpdate, testCap(forger, tPool, tCont, rw, time.Hour), daoserr.NoHdl, "does not verify"},
		{"another container's", enginepb.OpObjUpdate, testCap(key, tPool, tPool, rw, time.Hour), daoserr.NoHdl, "not for this request"},
		{"expired", enginepb.OpObjFetch, testCap(key, tPool, tCont, rw, -time.Second), daoserr.NoHdl, "expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var bulk, recv []byte
			if tc.op == enginepb.OpObjUpdate {
				bulk = []byte("abc")
			} else {
				recv = make([]byte, 3)
			}
			_, err := te.call(t, tc.op, 1, withCap(tc.cap), bulk, recv)
			if tc.code == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !daoserr.Is(err, tc.code) || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("got %v, want %s containing %q", err, tc.code, tc.contains)
			}
		})
	}
	// a tampered token (write added to a read capability) keeps the old signature
	var c enginepb.Capability
	var tok enginepb.CapToken
	if err := proto.Unmarshal(testCap(key, tPool, tCont, enginepb.CapRead, time.Hour), &c); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(c.Token, &tok); err != nil {
		t.Fatal(err)
	}
	tok.Rights = rw
	c.Token = mustMarshal(&tok)
	bad := mustMarshal(&c)
	if _, err := te.call(t, enginepb.OpObjUpdate, 2, withCap(bad), []byte("abc"), nil); !daoserr.Is(err, daoserr.NoHdl) {
		t.Fatalf("tampered capability: got %v, want DER_NO_HDL", err)
	}
}

// Requests only servers may make must be sealed with the servers' key, for
// their opcode, and recent.
func TestServerOnlyRequests(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	opts := engineOpts(t)
	opts.Caps = capability.Verifier{Key: key.Public()}
	te := startEngine(t, opts)
	create := mustMarshal(&enginepb.TargetCreateReq{Pool: tPool[:], ScmSize: 64 << 20, NvmeSize: 64 << 20})
	seal := func(s crypto.Signer, op uint16) []byte {
		b, err := capability.Seal(s, op, create)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	altered := func() []byte { // a signed request whose time was changed afterwards
		var m enginepb.ServerSigned
		proto.Unmarshal(seal(key, enginepb.OpTargetCreate), &m)
		m.Time -= int64(time.Second)
		return mustMarshal(&m)
	}
	for _, tc := range []struct {
		name     string
		hdr      []byte
		contains string
	}{
		{"plain message", create, "not a sealed server request"},
		{"unsigned", seal(nil, enginepb.OpTargetCreate), "unsigned"},
		{"another key", seal(forger, enginepb.OpTargetCreate), "does not verify"},
		{"another opcode", seal(key, enginepb.OpTargetDestroy), "sealed for opcode 2"},
		{"altered time", altered(), "does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := te.cl.Call(context.Background(), rpc.Message{Opcode: enginepb.OpTargetCreate, Header: tc.hdr}, nil)
			if !daoserr.Is(err, daoserr.NoPerm) || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("got %v, want DER_NO_PERM containing %q", err, tc.contains)
			}
		})
	}
	if _, err := te.cl.Call(context.Background(), rpc.Message{Opcode: enginepb.OpTargetCreate, Header: seal(key, enginepb.OpTargetCreate)}, nil); err != nil {
		t.Fatalf("a sealed request: %v", err)
	}
	// an old request, properly signed at its time, is refused as stale
	old := &enginepb.ServerSigned{Op: uint32(enginepb.OpTargetDestroy), Time: time.Now().Add(-2 * capability.MaxServerSkew).UnixNano(), Msg: create}
	old.Sig, _ = certs.Sign(key, capability.SignedBytes(old.Op, old.Time, old.Msg))
	if _, err := te.cl.Call(context.Background(), rpc.Message{Opcode: enginepb.OpTargetDestroy, Header: mustMarshal(old)}, nil); !daoserr.Is(err, daoserr.NoPerm) || !strings.Contains(err.Error(), "clock") {
		t.Fatalf("stale request: %v, want DER_NO_PERM naming the clocks", err)
	}
}
