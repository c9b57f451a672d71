package daos

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/security/capability"
	"github.com/godaos/godaos/internal/security/certs"
	"github.com/godaos/godaos/internal/testsys/inproc"
)

// Handles: a read-only handle cannot write (the engines refuse it), closed
// and disconnected handles refuse every call, and an expired capability is
// renewed without the caller noticing.
func TestHandles(t *testing.T) {
	s := inproc.Start(t, true) // signed capabilities
	s.CreatePool(t, "hdl", me(t))
	ctx := context.Background()
	c := client(t, s)
	p, err := c.PoolConnect(ctx, "hdl", RW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ContCreate(ctx, ContCreateOptions{Label: "c"}); err != nil {
		t.Fatal(err)
	}
	rw, err := p.ContOpen(ctx, "c", RW)
	if err != nil {
		t.Fatal(err)
	}
	oid, err := rw.GenerateOID(ctx, placement.S1, placement.OTMultiHashed)
	if err != nil {
		t.Fatal(err)
	}
	iods := []IOD{{Akey: []byte("a"), Type: Single, Size: 2}}
	update := func(h *Cont) error {
		o, err := h.Obj(oid)
		if err != nil {
			return err
		}
		_, err = o.Update(ctx, []byte("d"), iods, [][]byte{[]byte("hi")})
		return err
	}
	fetch := func(h *Cont) error {
		o, err := h.Obj(oid)
		if err != nil {
			return err
		}
		_, err = o.Fetch(ctx, []byte("d"), iods, [][]byte{make([]byte, 2)})
		return err
	}
	if err := update(rw); err != nil {
		t.Fatal(err)
	}

	t.Run("read-only handle", func(t *testing.T) {
		ro, err := p.ContOpen(ctx, "c", RO)
		if err != nil {
			t.Fatal(err)
		}
		if err := fetch(ro); err != nil {
			t.Fatal(err)
		}
		if err := update(ro); !daoserr.Is(err, daoserr.NoPerm) || !strings.Contains(err.Error(), "may not write") {
			t.Fatalf("update through a read-only handle: %v, want DER_NO_PERM", err)
		}
	})
	t.Run("forged capability", func(t *testing.T) {
		h, err := p.ContOpen(ctx, "c", RO)
		if err != nil {
			t.Fatal(err)
		}
		// the client makes itself a read-write capability: unsigned, refused
		var tok enginepb.CapToken
		tok.Handle, tok.Pool, tok.Cont = uuidBytes(h.Handle), uuidBytes(p.Info.Uuid), uuidBytes(h.Info.Uuid)
		tok.Rights, tok.Expires = enginepb.CapRead|enginepb.CapWrite, time.Now().Add(time.Hour).Unix()
		forged, _ := capability.Issue(nil, &tok)
		h.capab.Store(&forged)
		if err := update(h); !daoserr.Is(err, daoserr.NoHdl) || !strings.Contains(err.Error(), "unsigned") {
			t.Fatalf("update with a forged capability: %v, want DER_NO_HDL", err)
		}
	})
	t.Run("expired capability is renewed", func(t *testing.T) {
		h, err := p.ContOpen(ctx, "c", RW)
		if err != nil {
			t.Fatal(err)
		}
		// an old capability of this handle, as an hour-old one would be
		var tok enginepb.CapToken
		tok.Handle, tok.Pool, tok.Cont = uuidBytes(h.Handle), uuidBytes(p.Info.Uuid), uuidBytes(h.Info.Uuid)
		tok.Rights, tok.Expires = enginepb.CapRead, time.Now().Add(-time.Minute).Unix()
		old, _ := capability.Issue(nil, &tok)
		h.capab.Store(&old)
		if err := update(h); !daoserr.Is(err, daoserr.NoHdl) { // unsigned: not renewed, refused
			t.Fatalf("unsigned expired capability: %v", err)
		}
		// one the servers signed (the test has their key) an hour ago
		key, err := certs.LoadSigner(s.Cert("server.key"))
		if err != nil {
			t.Fatal(err)
		}
		tok.Rights = enginepb.CapRead | enginepb.CapWrite
		expired, _ := capability.Issue(key, &tok)
		h.capab.Store(&expired)
		if err := update(h); err != nil {
			t.Fatalf("update with an expired capability: %v, want a transparent reopen", err)
		}
		if string(h.capBytes()) == string(expired) {
			t.Fatal("the expired capability was not replaced")
		}
		// the renewal keeps the handle: what it prepared, it can still commit
		if g, err := (capability.Verifier{}).Verify(h.capBytes()); err != nil || string(g.Handle[:]) != string(uuidBytes(h.Handle)) {
			t.Fatalf("renewed capability names handle %x, want %s (%v)", g.Handle, h.Handle, err)
		}
	})
	t.Run("renewal refused", func(t *testing.T) {
		// the handle's capability expires after its owner lost the right to
		// open the container read-write: the reopen fails, and says why
		if _, err := p.ContCreate(ctx, ContCreateOptions{Label: "revoked"}); err != nil {
			t.Fatal(err)
		}
		h, err := p.ContOpen(ctx, "revoked", RW)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := p.ContACL(ctx, "revoked", ACLChange{Overwrite: []string{"A::OWNER@:aA"}}); err != nil {
			t.Fatal(err)
		}
		key, err := certs.LoadSigner(s.Cert("server.key"))
		if err != nil {
			t.Fatal(err)
		}
		var tok enginepb.CapToken
		tok.Handle, tok.Pool, tok.Cont = uuidBytes(h.Handle), uuidBytes(p.Info.Uuid), uuidBytes(h.Info.Uuid)
		tok.Rights, tok.Expires = enginepb.CapRead|enginepb.CapWrite, time.Now().Add(-time.Minute).Unix()
		expired, _ := capability.Issue(key, &tok)
		h.capab.Store(&expired)
		err = update(h)
		var de *daoserr.Error
		if !errors.As(err, &de) || de.Code != daoserr.NoPerm || !strings.Contains(err.Error(), "reopen container hdl/revoked") ||
			strings.Contains(de.Resolution, "does so by itself") {
			t.Fatalf("update after the reopen was refused: %v, want DER_NO_PERM saying the reopen failed and why", err)
		}
	})
	t.Run("closed container", func(t *testing.T) {
		h, err := p.ContOpen(ctx, "c", RW)
		if err != nil {
			t.Fatal(err)
		}
		o, err := h.Obj(oid)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := o.Update(ctx, []byte("d"), iods, [][]byte{[]byte("no")}); !daoserr.Is(err, daoserr.NoHdl) || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("update through a closed handle: %v, want DER_NO_HDL", err)
		}
		// h never leased OIDs: a lease needs the handle
		if _, err := h.NextOID(ctx); !daoserr.Is(err, daoserr.NoHdl) || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("next OID through a closed handle: %v, want DER_NO_HDL", err)
		}
		if _, err := h.AllocOIDs(ctx, 1); !daoserr.Is(err, daoserr.NoHdl) || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("alloc OIDs through a closed handle: %v, want DER_NO_HDL", err)
		}
		if err := h.Close(ctx); !daoserr.Is(err, daoserr.NoHdl) {
			t.Fatalf("second close: %v, want DER_NO_HDL", err)
		}
	})
	t.Run("disconnected pool", func(t *testing.T) {
		p2, err := c.PoolConnect(ctx, "hdl", RW)
		if err != nil {
			t.Fatal(err)
		}
		h, err := p2.ContOpen(ctx, "c", RW)
		if err != nil {
			t.Fatal(err)
		}
		if err := p2.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
		if err := fetch(h); !daoserr.Is(err, daoserr.NoHdl) || !strings.Contains(err.Error(), "disconnected") {
			t.Fatalf("fetch after disconnect: %v, want DER_NO_HDL", err)
		}
		if _, err := p2.ContOpen(ctx, "c", RW); !daoserr.Is(err, daoserr.NoHdl) {
			t.Fatalf("open after disconnect: %v, want DER_NO_HDL", err)
		}
		if err := fetch(rw); err != nil { // other handles are untouched
			t.Fatal(err)
		}
	})
}
