package engine

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security/capability"
	"github.com/godaos/godaos/internal/security/certs"
	"github.com/godaos/godaos/server/vos"
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
	withCap := func(c []byte, cont vos.UUID) *enginepb.ObjIOReq {
		m := ioReq("d", sv)
		m.Cap, m.Cont = c, cont[:]
		return m
	}
	rw := enginepb.CapRead | enginepb.CapWrite
	// The same bytes sent again are found in the target's cache of verified
	// capabilities: what they grant is checked again each time.
	ro := testCap(key, tPool, tCont, enginepb.CapRead, time.Hour)
	otherCont := vos.UUIDFromUint64(0xc002)
	tests := []struct {
		name     string
		op       uint16
		cap      []byte
		cont     vos.UUID // the request's (zero: tCont)
		code     daoserr.Code
		contains string
	}{
		{"signed read-write: update", enginepb.OpObjUpdate, testCap(key, tPool, tCont, rw, time.Hour), vos.UUID{}, 0, ""},
		{"signed read-write: fetch", enginepb.OpObjFetch, testCap(key, tPool, tCont, rw, time.Hour), vos.UUID{}, 0, ""},
		{"read-only handle cannot update", enginepb.OpObjUpdate, testCap(key, tPool, tCont, enginepb.CapRead, time.Hour), vos.UUID{}, daoserr.NoPerm, "may not write"},
		{"read-only handle can fetch", enginepb.OpObjFetch, testCap(key, tPool, tCont, enginepb.CapRead, time.Hour), vos.UUID{}, 0, ""},
		{"no rights cannot fetch", enginepb.OpObjFetch, testCap(key, tPool, tCont, 0, time.Hour), vos.UUID{}, daoserr.NoPerm, "may not read"},
		{"no capability", enginepb.OpObjUpdate, nil, vos.UUID{}, daoserr.NoHdl, "without a container handle"},
		{"garbage", enginepb.OpObjFetch, []byte{0xff, 0x01, 0x02}, vos.UUID{}, daoserr.NoHdl, "invalid container handle"},
		{"unsigned on a secure system", enginepb.OpObjUpdate, testCap(nil, tPool, tCont, rw, time.Hour), vos.UUID{}, daoserr.NoHdl, "unsigned"},
		{"signed by another key", enginepb.OpObjUpdate, testCap(forger, tPool, tCont, rw, time.Hour), vos.UUID{}, daoserr.NoHdl, "does not verify"},
		{"another container's", enginepb.OpObjUpdate, testCap(key, tPool, tPool, rw, time.Hour), vos.UUID{}, daoserr.NoHdl, "not for this request"},
		{"expired", enginepb.OpObjFetch, testCap(key, tPool, tCont, rw, -time.Second), vos.UUID{}, daoserr.NoHdl, "expired"},
		{"cached: read-only fetch", enginepb.OpObjFetch, ro, vos.UUID{}, 0, ""},
		{"cached: read-only cannot update", enginepb.OpObjUpdate, ro, vos.UUID{}, daoserr.NoPerm, "may not write"},
		{"cached: for another container", enginepb.OpObjFetch, ro, otherCont, daoserr.NoHdl, "not for this request's pool " + tPool.String() + " container " + otherCont.String()},
		{"cached: fetch again", enginepb.OpObjFetch, ro, vos.UUID{}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var bulk, recv []byte
			if tc.op == enginepb.OpObjUpdate {
				bulk = []byte("abc")
			} else {
				recv = make([]byte, 3)
			}
			cont := tc.cont
			if cont == (vos.UUID{}) {
				cont = tCont
			}
			_, err := te.call(t, tc.op, 1, withCap(tc.cap, cont), bulk, recv)
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
	t.Run("cached until it expires", func(t *testing.T) {
		// valid for about 2 s (expiry is in whole seconds): verified and cached
		// by the first fetch, refused by the same target once expired
		exp := time.Now().Add(2 * time.Second).Unix()
		h := vos.UUIDFromUint64(0x4a4e)
		short, err := capability.Issue(key, &enginepb.CapToken{Handle: h[:], Pool: tPool[:], Cont: tCont[:], Rights: enginepb.CapRead, Expires: exp})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := te.call(t, enginepb.OpObjFetch, 2, withCap(short, tCont), nil, make([]byte, 3)); err != nil {
			t.Fatalf("before expiry: %v", err)
		}
		time.Sleep(time.Until(time.Unix(exp, 0)) + 10*time.Millisecond) // at most 2 s
		if _, err := te.call(t, enginepb.OpObjFetch, 2, withCap(short, tCont), nil, make([]byte, 3)); !daoserr.Is(err, daoserr.NoHdl) || !strings.Contains(err.Error(), capability.ExpiredText) {
			t.Fatalf("after expiry: %v, want DER_NO_HDL saying it expired", err)
		}
	})
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
	if _, err := te.call(t, enginepb.OpObjUpdate, 2, withCap(bad, tCont), []byte("abc"), nil); !daoserr.Is(err, daoserr.NoHdl) {
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
		{"another opcode", seal(key, enginepb.OpTargetDestroy), "sealed for TargetDestroy (opcode 2)"},
		{"altered time", altered(), "does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := te.cl.Call(context.Background(), rpc.Message{Opcode: enginepb.OpTargetCreate, Header: tc.hdr}, nil)
			if !daoserr.Is(err, daoserr.NoPerm) || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("got %v, want DER_NO_PERM containing %q", err, tc.contains)
			}
		})
	}
	sealed := seal(key, enginepb.OpTargetCreate)
	if _, err := te.cl.Call(context.Background(), rpc.Message{Opcode: enginepb.OpTargetCreate, Header: sealed}, nil); err != nil {
		t.Fatalf("a sealed request: %v", err)
	}
	// the same request again, well within its validity: a replay
	if _, err := te.cl.Call(context.Background(), rpc.Message{Opcode: enginepb.OpTargetCreate, Header: sealed}, nil); !daoserr.Is(err, daoserr.NoPerm) || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("replayed request: %v, want DER_NO_PERM naming the replay", err)
	}
	// two requests with the same message sealed at once differ (their nonces)
	if a, b := seal(key, enginepb.OpTargetCreate), seal(key, enginepb.OpTargetCreate); string(a) == string(b) {
		t.Fatal("two sealings of one message are identical")
	}

	// Collectives are servers' requests too: an unsealed one would make the
	// engine send to whatever peers it names.
	selfPeer := []*enginepb.Peer{{Rank: 3, Addr: te.addr, Targets: 4}}
	coll := func(peers []*enginepb.Peer) []byte {
		return mustMarshal(&enginepb.CollectiveReq{Op: uint32(enginepb.OpPing), Peers: peers, Degree: 1, Rank: 3})
	}
	sealColl := func(b []byte) []byte {
		s, err := capability.Seal(key, enginepb.OpCollective, b)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		hdr      []byte
		code     daoserr.Code
		contains string
	}{
		{"unsealed collective", coll(selfPeer), daoserr.NoPerm, "sent as Collective (opcode 30)"},
		{"unsigned collective", func() []byte { b, _ := capability.Seal(nil, enginepb.OpCollective, coll(nil)); return b }(), daoserr.NoPerm, "unsigned"},
		{"collective naming its receiver as a peer", sealColl(coll(selfPeer)), daoserr.Inval, "receiver's own rank 3"},
		{"collective naming a rank twice", sealColl(coll([]*enginepb.Peer{{Rank: 5, Addr: "127.0.0.1:1"}, {Rank: 6, Addr: "127.0.0.1:1"}, {Rank: 5, Addr: "127.0.0.1:1"}})), daoserr.Inval, "rank 5 twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := te.cl.Call(context.Background(), rpc.Message{Opcode: enginepb.OpCollective, Header: tc.hdr}, nil)
			if !daoserr.Is(err, tc.code) || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("got %v, want %s containing %q", err, tc.code, tc.contains)
			}
		})
	}
	if _, err := te.cl.Call(context.Background(), rpc.Message{Opcode: enginepb.OpCollective, Header: sealColl(coll(nil))}, nil); err != nil {
		t.Fatalf("a sealed collective: %v", err)
	}
	// an old request, properly signed at its time, is refused as stale
	old := &enginepb.ServerSigned{Op: uint32(enginepb.OpTargetDestroy), Time: time.Now().Add(-2 * capability.MaxServerSkew).UnixNano(), Msg: create}
	old.Nonce = make([]byte, capability.NonceSize)
	old.Sig, _ = certs.Sign(key, capability.SignedBytes(old.Op, old.Time, old.Nonce, old.Msg))
	if _, err := te.cl.Call(context.Background(), rpc.Message{Opcode: enginepb.OpTargetDestroy, Header: mustMarshal(old)}, nil); !daoserr.Is(err, daoserr.NoPerm) || !strings.Contains(err.Error(), "clock") {
		t.Fatalf("stale request: %v, want DER_NO_PERM naming the clocks", err)
	}
}

// A full capability cache drops the expired grants, then a random half of
// the rest: not everything, which would make every handle in use pay a
// signature verification again at once.
func TestCapCacheEviction(t *testing.T) {
	live := &capability.Grant{Expires: time.Now().Add(time.Hour)}
	dead := &capability.Grant{Expires: time.Now().Add(-time.Second)}
	fill := func(expiredEvery int) *capCache {
		c := &capCache{}
		for i := range capCacheMax {
			g := live
			if expiredEvery > 0 && i%expiredEvery == 0 {
				g = dead
			}
			c.remember(fmt.Sprint(i), g)
		}
		if len(c.grants) != capCacheMax {
			t.Fatalf("filled with %d grants, want %d", len(c.grants), capCacheMax)
		}
		return c
	}

	c := fill(0) // all live
	c.remember("new", live)
	if n := len(c.grants); n != capCacheMax/2+1 {
		t.Errorf("full of live grants: %d kept after adding one, want %d", n, capCacheMax/2+1)
	}
	if c.grants["new"] == nil {
		t.Error("the new grant was not kept")
	}

	c = fill(4) // a quarter expired: they make the room, no live one goes
	c.remember("new", live)
	for k, g := range c.grants {
		if g == dead {
			t.Fatalf("expired grant %s kept", k)
		}
	}
	if n, want := len(c.grants), capCacheMax-capCacheMax/4+1; n != want {
		t.Errorf("with a quarter expired: %d kept, want %d (every live one and the new)", n, want)
	}
}

// Refused server requests are logged at most once a second, with the count
// of those not logged: a peer sending garbage cannot flood the log.
func TestServerRefusalLogLimited(t *testing.T) {
	var r rateLimit
	t0 := time.Unix(1000, 0)
	for _, step := range []struct {
		at         time.Duration
		ok         bool
		suppressed int
	}{{0, true, 0}, {300 * time.Millisecond, false, 0}, {900 * time.Millisecond, false, 0}, {time.Second, true, 2}, {1500 * time.Millisecond, false, 0}, {5 * time.Second, true, 1}} {
		if ok, n := r.allow(t0.Add(step.at)); ok != step.ok || n != step.suppressed {
			t.Errorf("at %v: allow = %v, %d, want %v, %d", step.at, ok, n, step.ok, step.suppressed)
		}
	}

	logs := &countingHandler{}
	opts := engineOpts(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	opts.Caps = capability.Verifier{Key: key.Public()}
	opts.Logger = slog.New(logs)
	te := startEngine(t, opts)
	const sent = 50
	start := time.Now()
	for range sent {
		if _, err := te.cl.Call(context.Background(), rpc.Message{Opcode: enginepb.OpTargetCreate, Header: []byte("garbage")}, nil); !daoserr.Is(err, daoserr.NoPerm) {
			t.Fatalf("garbage: %v", err)
		}
	}
	n := logs.count("server request refused")
	if limit := 1 + int(time.Since(start)/time.Second); n < 1 || n > limit {
		t.Fatalf("%d refusals logged for %d sent in %v, want 1 to %d", n, sent, time.Since(start), limit)
	}
}

// countingHandler counts log records by message.
type countingHandler struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.msgs == nil {
		h.msgs = map[string]int{}
	}
	h.msgs[r.Message]++
	return nil
}

func (h *countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}
