package capability

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
)

var (
	uHandle = []byte("hhhhhhhhhhhhhhhh")
	uPool   = []byte("pppppppppppppppp")
	uCont   = []byte("cccccccccccccccc")
)

func TestIssueVerifyAllows(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, err := Issue(key, &enginepb.CapToken{Handle: uHandle, Pool: uPool, Cont: uCont, Rights: enginepb.CapRead, Expires: time.Now().Add(TTL).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	g, err := Verifier{Key: key.Public()}.Verify(b)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := g.Allows(now, uPool, uCont, enginepb.CapRead); err != nil {
		t.Errorf("read: %v", err)
	}
	if err := g.Allows(now, uPool, uCont, enginepb.CapWrite); !daoserr.Is(err, daoserr.NoPerm) {
		t.Errorf("write with a read capability: %v, want DER_NO_PERM", err)
	}
	if err := g.Allows(now.Add(TTL+time.Minute), uPool, uCont, enginepb.CapRead); !daoserr.Is(err, daoserr.NoHdl) {
		t.Errorf("after expiry: %v, want DER_NO_HDL", err)
	}
	if err := g.Allows(now, uPool, uHandle, enginepb.CapRead); !daoserr.Is(err, daoserr.NoHdl) {
		t.Errorf("another container: %v, want DER_NO_HDL", err)
	}
	// an insecure system trusts unsigned capabilities, a secure one does not
	u, _ := Issue(nil, &enginepb.CapToken{Handle: uHandle, Pool: uPool, Cont: uCont, Expires: 1})
	if _, err := (Verifier{}).Verify(u); err != nil {
		t.Errorf("insecure: %v", err)
	}
	if _, err := (Verifier{Key: key.Public()}).Verify(u); !daoserr.Is(err, daoserr.NoHdl) {
		t.Errorf("unsigned on a secure system: %v, want DER_NO_HDL", err)
	}
	short, _ := Issue(nil, &enginepb.CapToken{Handle: uHandle[:3], Pool: uPool, Cont: uCont})
	if _, err := (Verifier{}).Verify(short); !daoserr.Is(err, daoserr.NoHdl) {
		t.Errorf("short handle UUID: %v, want DER_NO_HDL", err)
	}
}

// Verify never panics and accepts nothing unsigned when it has a key.
func FuzzVerify(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, _ := Issue(key, &enginepb.CapToken{Handle: uHandle, Pool: uPool, Cont: uCont, Rights: 3, Expires: 1 << 40})
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	v := Verifier{Key: key.Public()}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := v.Verify(b)
		if err != nil {
			return
		}
		if g.Pool != [16]byte(uPool) || g.Cont != [16]byte(uCont) {
			t.Fatalf("a capability the key never signed verified: %+v", g)
		}
	})
}

// Allows' messages say what is missing and name both sides of a mismatch.
func TestAllowsMessages(t *testing.T) {
	g, err := (Verifier{}).Verify(mustIssue(t, enginepb.CapWrite))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = g.Allows(now, uPool, uCont, enginepb.CapRead)
	var de *daoserr.Error
	if !errors.As(err, &de) || de.Code != daoserr.NoPerm || !strings.Contains(de.Msg, "may not read") ||
		strings.Contains(de.Resolution, "write") || !strings.Contains(de.Resolution, "read") {
		t.Errorf("read with a write-only capability: %#v", err)
	}
	err = g.Allows(now, uPool, uHandle, enginepb.CapWrite)
	if !daoserr.Is(err, daoserr.NoHdl) || !strings.Contains(err.Error(), "not for this request's pool 70707070-7070-7070-7070-707070707070 container 68686868-6868-6868-6868-686868686868") {
		t.Errorf("another container: %v, want the request's pool and container named", err)
	}
	if err := g.Allows(now, uPool, []byte("c"), enginepb.CapWrite); !daoserr.Is(err, daoserr.NoHdl) || !strings.Contains(err.Error(), "not a UUID") {
		t.Errorf("malformed container: %v", err)
	}
}

func mustIssue(t *testing.T, rights uint32) []byte {
	t.Helper()
	b, err := Issue(nil, &enginepb.CapToken{Handle: uHandle, Pool: uPool, Cont: uCont, Rights: rights, Expires: time.Now().Add(TTL).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
