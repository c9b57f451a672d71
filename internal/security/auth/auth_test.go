package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/authpb"
	"github.com/godaos/godaos/internal/security"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func token() *authpb.Token {
	return &authpb.Token{Uid: 1000, Gids: []uint32{1000, 27}, User: "alice", Group: "alice", Groups: []string{"alice", "devs"},
		Host: "node1", Issued: now.Unix(), Expires: now.Add(DefaultTTL).Unix()}
}

func keys(t *testing.T) (map[string]crypto.Signer, map[string]crypto.PublicKey) {
	t.Helper()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signers := map[string]crypto.Signer{"ed25519": ed, "ecdsa": ec}
	pubs := map[string]crypto.PublicKey{"ed25519": ed.Public(), "ecdsa": ec.Public()}
	return signers, pubs
}

func TestVerify(t *testing.T) {
	signers, pubs := keys(t)
	secure := &Verifier{Keys: pubs, Now: func() time.Time { return now }}
	insecure := &Verifier{AllowInsecure: true, Now: func() time.Time { return now }}
	sign := func(tok *authpb.Token, alg string) *authpb.Credential {
		c, err := Sign(tok, signers[alg], alg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	unsigned, _ := Sign(token(), nil, "")
	expired := token()
	expired.Expires = now.Add(-time.Second).Unix()
	future := token()
	future.Issued = now.Add(time.Hour).Unix()
	forever := token()
	forever.Expires = now.Add(30 * 24 * time.Hour).Unix()
	forged := sign(token(), "ed25519")
	{ // alice becomes root: same signature, altered token
		tok := &authpb.Token{}
		proto.Unmarshal(forged.Token, tok)
		tok.Uid, tok.User = 0, "root"
		forged.Token, _ = proto.Marshal(tok)
	}
	wrongKey := sign(token(), "ecdsa")
	wrongKey.Verifier = "ed25519"
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	stranger, _ := Sign(token(), otherKey, "unknown-fingerprint")
	for _, tc := range []struct {
		name string
		v    *Verifier
		cred *authpb.Credential
		want string // substring of the error; "" for success
	}{
		{"ed25519 signed", secure, sign(token(), "ed25519"), ""},
		{"ecdsa signed", secure, sign(token(), "ecdsa"), ""},
		{"unsigned refused by a secure server", secure, unsigned, "not signed"},
		{"unsigned accepted by an insecure server", insecure, unsigned, ""},
		{"forged token", secure, forged, "does not verify"},
		{"signature checked with the wrong key", secure, wrongKey, "does not verify"},
		{"unknown agent key", secure, stranger, "does not trust"},
		{"expired", secure, sign(expired, "ed25519"), "expired"},
		{"expired, insecure server", insecure, func() *authpb.Credential { c, _ := Sign(expired, nil, ""); return c }(), "expired"},
		{"issued in the future", secure, sign(future, "ed25519"), "future"},
		{"good for a month", secure, sign(forever, "ed25519"), "longer than servers accept"},
		{"no credential", secure, nil, "no credential"},
		{"garbage token", insecure, &authpb.Credential{Token: []byte{0xff, 0xff}}, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tc.v.Verify(tc.cred)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tok.User != "alice" || tok.Uid != 1000 {
					t.Fatalf("token %v", tok)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
			if !daoserr.Is(err, daoserr.NoPerm) {
				t.Fatalf("err %v is not DER_NO_PERM", err)
			}
		})
	}
}

// TestVerifiedCache: a credential verified once is taken from memory after,
// but its expiry is still checked, and an altered copy is still refused.
func TestVerifiedCache(t *testing.T) {
	signers, pubs := keys(t)
	clock := now
	v := &Verifier{Keys: pubs, Now: func() time.Time { return clock }}
	cred, _ := Sign(token(), signers["ecdsa"], "ecdsa")
	for i := range 2 {
		if _, err := v.Verify(cred); err != nil {
			t.Fatalf("verify %d: %v", i, err)
		}
	}
	if len(v.verified) != 1 {
		t.Fatalf("%d remembered, want 1", len(v.verified))
	}
	altered := proto.Clone(cred).(*authpb.Credential)
	altered.Token = append(altered.Token, 0x48, 0x01) // one more field: still a valid token, not what was signed
	if _, err := v.Verify(altered); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("altered copy of a remembered credential: %v", err)
	}
	clock = now.Add(DefaultTTL + time.Second)
	if _, err := v.Verify(cred); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("remembered credential after its expiry: %v", err)
	}
}

func TestIdentity(t *testing.T) {
	tok := token()
	acl, err := security.ParseACL("A::OWNER@:rw\nA:G:devs@:r\nA::EVERYONE@:")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		owner, group string
		want         string
	}{
		{"alice@", "alice@", "rw"},
		{"bob@", "bob@", "r"},    // through group devs
		{"bob", "staff", "r"},    // names without @ are normalized
		{"alice", "staff", "rw"}, // owner by name
	} {
		t.Run(tc.owner, func(t *testing.T) {
			if got := acl.Perms(Identity(tok, tc.owner, tc.group)).String(); got != tc.want {
				t.Fatalf("perms %q, want %q", got, tc.want)
			}
		})
	}
}

// A domain user (SSSD's alice@EXAMPLE.COM) owns what she creates.
func TestDomainUserIsOwner(t *testing.T) {
	tok := token()
	tok.User = "alice@EXAMPLE.COM"
	acl, _ := security.ParseACL("A::OWNER@:rw")
	if got := acl.Perms(Identity(tok, Principal(tok.User), "x@")).String(); got != "rw" {
		t.Fatalf("owner perms %q", got)
	}
	for in, want := range map[string]string{"alice": "alice@", "alice@": "alice@", "alice@EXAMPLE.COM": "alice@EXAMPLE.COM", "": ""} {
		if got := Principal(in); got != want {
			t.Errorf("Principal(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzVerify feeds arbitrary credentials to the verifier: it must refuse or
// accept, never panic.
func FuzzVerify(f *testing.F) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	good, _ := Sign(token(), ed, "k")
	b, _ := proto.Marshal(good)
	f.Add(b)
	f.Add([]byte{})
	v := &Verifier{Keys: map[string]crypto.PublicKey{"k": ed.Public()}, AllowInsecure: true, Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, b []byte) {
		cred := &authpb.Credential{}
		if proto.Unmarshal(b, cred) != nil {
			return
		}
		if tok, err := v.Verify(cred); err == nil && tok.User == "" {
			t.Fatal("accepted a token without a user")
		}
	})
}
