package vos

import (
	"maps"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

// The transaction table survives a reopen, from the log and from a
// checkpoint, puts replacing and deletes removing entries; bad keys are
// refused.
func TestDtxTable(t *testing.T) {
	p := newTestPool(t)
	dir := p.Dir()
	want := map[string][]byte{}
	put := func(k, v string) {
		t.Helper()
		if err := p.DtxPut([]byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
		want[k] = []byte(v)
	}
	del := func(k string) {
		t.Helper()
		if err := p.DtxDel([]byte(k)); err != nil {
			t.Fatal(err)
		}
		delete(want, k)
	}
	reopen := func(what string) {
		t.Helper()
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		var err error
		if p, err = Open(dir, Options{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		if got := p.DtxEntries(); !maps.EqualFunc(got, want, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Fatalf("%s: table %q, want %q", what, got, want)
		}
	}
	put("Pa", "prepared a")
	put("Pb", "prepared b")
	put("Da", "decided a")
	put("Pa", "prepared a, again")
	del("Pb")
	del("nothing")
	reopen("from the log")
	if err := p.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	reopen("from a checkpoint")
	put("Pc", "prepared c")
	del("Da")
	reopen("from a checkpoint and the log after it")
	// asynchronous puts and deletes are logged in order: durable with the
	// next op waited for
	p.DtxPutAsync([]byte("Pd"), []byte("prepared d"))
	p.DtxDelAsync([]byte("Pc"))
	want["Pd"] = []byte("prepared d")
	delete(want, "Pc")
	del("nothing")
	reopen("after asynchronous changes")

	for _, k := range [][]byte{nil, make([]byte, 257)} {
		if err := p.DtxPut(k, nil); !daoserr.Is(err, daoserr.Inval) {
			t.Fatalf("key of %d bytes: %v, want DER_INVAL", len(k), err)
		}
	}
}
