// Package capability issues and checks container-handle capabilities: what a
// container open returns and every object request carries. The pool service
// signs a capability with the servers' key; an engine verifies it once and
// then only compares bytes (see docs/design/security.md, "Handles").
//
// A capability names its handle, pool and container, the rights it grants
// (enginepb.CapRead, CapWrite) and when it expires; the client library
// reopens its handle when an engine reports one expired. A closed handle is
// refused by the client library at once; its capability stays valid on the
// engines until it expires, which is what bounds TTL: it is the longest a
// closed or revoked handle's capability can still be used.
package capability

import (
	"bytes"
	"crypto"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/security/certs"
)

// TTL is how long a capability is valid. An hour bounds how long a closed or
// revoked handle's capability can still be used by a client that kept it,
// while costing one reopen per handle per hour.
const TTL = time.Hour

// Issue encodes and signs a capability (signer nil: unsigned, for systems
// running with allow_insecure).
func Issue(signer crypto.Signer, tok *enginepb.CapToken) ([]byte, error) {
	tb, err := proto.Marshal(tok)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Misc, err, "encode capability")
	}
	c := &enginepb.Capability{Token: tb}
	if signer != nil {
		if c.Sig, err = certs.Sign(signer, tb); err != nil {
			return nil, daoserr.Context(err, "sign capability")
		}
		c.Signer, _ = certs.Fingerprint(signer.Public())
	}
	return proto.Marshal(c)
}

// ExpiredText is in the message of the DER_NO_HDL an expired capability
// gets: the client library reopens the container when it sees it.
const ExpiredText = "capability expired at"

// A Grant is what a verified capability allows.
type Grant struct {
	Handle, Pool, Cont [16]byte
	Rights             uint32
	Expires            time.Time
}

// Verifier checks capabilities against the servers' public key. With no Key
// the system runs insecure and unsigned capabilities are trusted as sent.
type Verifier struct {
	Key crypto.PublicKey
}

// Verify decodes a capability and checks its signature (not its expiry or
// what it names: see Grant.Allows).
func (v Verifier) Verify(b []byte) (Grant, error) {
	var g Grant
	if len(b) == 0 {
		return g, daoserr.New(daoserr.NoHdl, "object request without a container handle").
			WithResolution("open the container first and do object I/O through its handle")
	}
	var c enginepb.Capability
	if err := proto.Unmarshal(b, &c); err != nil {
		return g, daoserr.Wrap(daoserr.NoHdl, err, "invalid container handle capability")
	}
	if v.Key != nil {
		if len(c.Sig) == 0 {
			return g, daoserr.New(daoserr.NoHdl, "unsigned container handle capability on a secure system").
				WithResolution("open the container through a server of this system")
		}
		if err := certs.Verify(v.Key, c.Token, c.Sig); err != nil {
			hint := "reopen the container"
			if fp, _ := certs.Fingerprint(v.Key); c.Signer != "" && c.Signer != fp {
				hint = fmt.Sprintf("the capability was signed by server key %s, this server has %s: every server must have the same server certificate and key (dmg cert generate)", c.Signer, fp)
			}
			return g, daoserr.New(daoserr.NoHdl, "container handle capability: signature does not verify").WithResolution("%s", hint)
		}
	}
	var t enginepb.CapToken
	if err := proto.Unmarshal(c.Token, &t); err != nil {
		return g, daoserr.Wrap(daoserr.NoHdl, err, "invalid container handle capability token")
	}
	if len(t.Handle) != 16 || len(t.Pool) != 16 || len(t.Cont) != 16 {
		return g, daoserr.Newf(daoserr.NoHdl, "container handle capability with %d/%d/%d-byte handle/pool/container UUIDs, want 16", len(t.Handle), len(t.Pool), len(t.Cont))
	}
	copy(g.Handle[:], t.Handle)
	copy(g.Pool[:], t.Pool)
	copy(g.Cont[:], t.Cont)
	g.Rights, g.Expires = t.Rights, time.Unix(t.Expires, 0)
	return g, nil
}

// Allows checks that g, at now, grants need on pool/cont.
func (g *Grant) Allows(now time.Time, pool, cont []byte, need uint32) error {
	if !bytes.Equal(pool, g.Pool[:]) || !bytes.Equal(cont, g.Cont[:]) {
		return daoserr.Newf(daoserr.NoHdl, "container handle %s is for pool %s container %s, not for this request's pool %s container %s",
			uuidString(g.Handle), uuidString(g.Pool), uuidString(g.Cont), uuidOf(pool), uuidOf(cont)).
			WithResolution("send each container's I/O with the capability of a handle to that container")
	}
	if !now.Before(g.Expires) {
		return daoserr.Newf(daoserr.NoHdl, "container handle %s "+ExpiredText+" %s", uuidString(g.Handle), g.Expires.UTC().Format(time.RFC3339)).
			WithResolution("reopen the container (the client library does so by itself)")
	}
	if missing := need &^ g.Rights; missing != 0 {
		if missing&enginepb.CapWrite != 0 {
			return daoserr.Newf(daoserr.NoPerm, "container %s: handle %s may not write", uuidString(g.Cont), uuidString(g.Handle)).
				WithResolution("open the container read-write (and have w in its ACL) to change it")
		}
		return daoserr.Newf(daoserr.NoPerm, "container %s: handle %s may not read", uuidString(g.Cont), uuidString(g.Handle)).
			WithResolution("open the container with a handle that may read it (and have r in its ACL)")
	}
	return nil
}

// uuidOf formats a request's UUID field, whatever its length.
func uuidOf(b []byte) string {
	if len(b) != 16 {
		return fmt.Sprintf("%x (%d bytes, not a UUID)", b, len(b))
	}
	return uuidString([16]byte(b))
}

func uuidString(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}
