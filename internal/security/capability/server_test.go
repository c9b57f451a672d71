package capability

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
)

// Open names opcodes, accepts what the servers' key sealed, and gives each
// request an ID that a second sealing of the same message does not share.
func TestSealOpen(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := Verifier{Key: key.Public()}
	msg := []byte("create")
	a, err := Seal(key, enginepb.OpTargetCreate, msg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Seal(key, enginepb.OpTargetCreate, msg)
	oa, err := v.Open(enginepb.OpTargetCreate, a)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := v.Open(enginepb.OpTargetCreate, b)
	if err != nil {
		t.Fatal(err)
	}
	if string(oa.Msg) != "create" || !oa.Signed || oa.ID == ob.ID {
		t.Errorf("opened %+v and %+v: want the message, signed, distinct IDs", oa, ob)
	}
	if _, err := v.Open(enginepb.OpTargetDestroy, a); !daoserr.Is(err, daoserr.NoPerm) ||
		!strings.Contains(err.Error(), "sealed for TargetCreate (opcode 1), sent as TargetDestroy (opcode 2)") {
		t.Errorf("misdirected: %v, want the opcodes named", err)
	}
	if _, err := v.Open(enginepb.OpCollective, msg); !daoserr.Is(err, daoserr.NoPerm) || !strings.Contains(err.Error(), "Collective (opcode 30) is for servers only") {
		t.Errorf("not sealed: %v, want the opcode named", err)
	}
	// a nonce changed after signing is a forgery
	var s enginepb.ServerSigned
	if err := proto.Unmarshal(a, &s); err != nil {
		t.Fatal(err)
	}
	s.Nonce[0] ^= 1
	if _, err := v.Open(enginepb.OpTargetCreate, mustMarshal(t, &s)); !daoserr.Is(err, daoserr.NoPerm) || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("altered nonce: %v", err)
	}
	// insecure: unsigned, opened, no ID to remember
	u, _ := Seal(nil, enginepb.OpTargetCreate, msg)
	if o, err := (Verifier{}).Open(enginepb.OpTargetCreate, u); err != nil || o.Signed || string(o.Msg) != "create" {
		t.Errorf("insecure: %+v, %v", o, err)
	}
}

// A request is refused when seen again, also with its signature altered
// into another valid one (ECDSA's s -> n-s): the ID is not the signature's.
func TestReplayCache(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := Verifier{Key: key.Public()}
	c := NewReplayCache(0)
	now := time.Now()
	a, _ := Seal(key, enginepb.OpContRollback, []byte("m"))
	oa, err := v.Open(enginepb.OpContRollback, a)
	if err != nil {
		t.Fatal(err)
	}
	if c.Seen(oa, now) {
		t.Fatal("a new request was seen")
	}
	if !c.Seen(oa, now.Add(time.Minute)) {
		t.Error("the same request again was not seen")
	}

	var s enginepb.ServerSigned
	if err := proto.Unmarshal(a, &s); err != nil {
		t.Fatal(err)
	}
	s.Sig = negateS(t, s.Sig)
	om, err := v.Open(enginepb.OpContRollback, mustMarshal(t, &s))
	if err != nil {
		t.Fatalf("the malleated signature should verify (it is how the attack works): %v", err)
	}
	if !c.Seen(om, now.Add(time.Minute)) {
		t.Error("the request with its signature malleated was not seen")
	}
	if c.Seen(oa, now.Add(ReplayTTL)) {
		t.Error("remembered past ReplayTTL")
	}

	// unsigned requests (insecure systems) are never remembered
	u, _ := Seal(nil, enginepb.OpContRollback, []byte("m"))
	ou, _ := (Verifier{}).Open(enginepb.OpContRollback, u)
	if c.Seen(ou, now) || c.Seen(ou, now) {
		t.Error("an unsigned request was seen")
	}
}

// A full cache forgets its oldest entries, never refuses a new request.
func TestReplayCacheFull(t *testing.T) {
	c := NewReplayCache(4)
	now := time.Now()
	id := func(i byte) Opened { return Opened{ID: [32]byte{i}, Signed: true} }
	for i := range byte(10) {
		if c.Seen(id(i), now.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("request %d seen before it was sent", i)
		}
	}
	if n := c.Len(); n != 4 {
		t.Errorf("%d remembered, want 4", n)
	}
	for i := byte(6); i < 10; i++ {
		if !c.Seen(id(i), now.Add(10*time.Second)) {
			t.Errorf("recent request %d forgotten", i)
		}
	}
	if c.Seen(id(0), now.Add(10*time.Second)) {
		t.Error("the oldest request is still remembered")
	}
}

// negateS turns an ASN.1 ECDSA P-256 signature (r, s) into (r, n-s), which
// verifies just as well.
func negateS(t *testing.T, sig []byte) []byte {
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		t.Fatalf("not an ASN.1 ECDSA signature: %v", err)
	}
	rs.S.Sub(elliptic.P256().Params().N, rs.S)
	b, err := asn1.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
