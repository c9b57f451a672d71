package engine

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/security/capability"
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
