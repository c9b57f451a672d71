package daos

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

// TestKV: put, get, remove and list on a flat KV spread over two targets,
// DAOS's layout, conditional puts and removes, and every refusal.
func TestKV(t *testing.T) {
	h := testCont(t)
	ctx := context.Background()
	oid, err := h.GenerateOID(ctx, SX, OTKVHashed)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := h.KVOpen(oid)
	if err != nil {
		t.Fatal(err)
	}
	val := func(i int) []byte { return []byte(strings.Repeat(fmt.Sprintf("value-%d;", i), i+1)) }

	t.Run("put and get", func(t *testing.T) {
		for i := range 60 {
			if err := kv.Put(ctx, fmt.Sprintf("key-%02d", i), val(i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 60 {
			buf := make([]byte, 1000)
			n, err := kv.Get(ctx, fmt.Sprintf("key-%02d", i), buf)
			if err != nil || !bytes.Equal(buf[:n], val(i)) {
				t.Fatalf("key-%02d: %q %v", i, buf[:n], err)
			}
		}
		// a put replaces the whole value
		if err := kv.Put(ctx, "key-05", []byte("short")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		if n, err := kv.Get(ctx, "key-05", buf); err != nil || string(buf[:n]) != "short" {
			t.Fatalf("after overwrite %q %v", buf[:n], err)
		}
		// DAOS's layout: the key is the dkey, the value a single value at akey "0"
		o, err := h.Obj(oid)
		if err != nil {
			t.Fatal(err)
		}
		res, err := o.Fetch(ctx, []byte("key-05"), []IOD{{Akey: []byte("0"), Type: Single, Size: 5}}, [][]byte{buf[:5]})
		if err != nil || res[0].Size != 5 || string(buf[:5]) != "short" {
			t.Fatalf("raw fetch %v %q %v", res, buf[:5], err)
		}
	})

	t.Run("sizes", func(t *testing.T) {
		n, err := kv.Get(ctx, "key-10", nil)
		if err != nil || n != len(val(10)) {
			t.Fatalf("size query %d %v, want %d", n, err, len(val(10)))
		}
		n, err = kv.Get(ctx, "key-10", make([]byte, 3))
		wantCode(t, "small buffer", err, daoserr.Rec2Big)
		if n != len(val(10)) || !strings.Contains(err.Error(), fmt.Sprint(n)) {
			t.Fatalf("too small a buffer: size %d (want %d), %v", n, len(val(10)), err)
		}
		_, err = kv.Get(ctx, "missing", make([]byte, 10))
		wantCode(t, "missing key", err, daoserr.Nonexist)
		_, err = kv.Get(ctx, "missing", nil)
		wantCode(t, "size of a missing key", err, daoserr.Nonexist)
	})

	t.Run("list", func(t *testing.T) {
		for _, page := range []int{1, 7, 100} {
			var got []string
			var a Anchor
			for n := 0; !a.EOF; n++ {
				keys, err := kv.List(ctx, &a, page)
				if err != nil || len(keys) > page || n > 100 {
					t.Fatalf("page %d: %v %v", n, keys, err)
				}
				got = append(got, keys...)
			}
			slices.Sort(got)
			if len(got) != 60 || got[0] != "key-00" || got[59] != "key-59" || len(slices.Compact(got)) != 60 {
				t.Fatalf("page %d: listed %d keys: %v", page, len(got), got)
			}
		}
	})

	t.Run("remove", func(t *testing.T) {
		if err := kv.Remove(ctx, "key-00"); err != nil {
			t.Fatal(err)
		}
		_, err := kv.Get(ctx, "key-00", make([]byte, 100))
		wantCode(t, "get after remove", err, daoserr.Nonexist)
		if err := kv.Remove(ctx, "key-00"); err != nil {
			t.Fatalf("removing a removed key: %v", err)
		}
		wantCode(t, "conditional remove of a removed key", kv.RemoveCond(ctx, CondPunch, "key-00"), daoserr.Nonexist)
		if err := kv.RemoveCond(ctx, CondPunch, "key-01"); err != nil {
			t.Fatal(err)
		}
		var a Anchor
		keys, err := kv.List(ctx, &a, 1000)
		if err != nil || len(keys) != 58 || slices.Contains(keys, "key-01") {
			t.Fatalf("after removes: %d keys %v", len(keys), err)
		}
	})

	t.Run("conditional put", func(t *testing.T) {
		wantCode(t, "insert an existing key", kv.PutCond(ctx, CondDkeyInsert, "key-02", []byte("x")), daoserr.Exist)
		wantCode(t, "update a missing key", kv.PutCond(ctx, CondDkeyUpdate, "new", []byte("x")), daoserr.Nonexist)
		if err := kv.PutCond(ctx, CondDkeyInsert, "new", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := kv.PutCond(ctx, CondDkeyUpdate, "new", []byte("y")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		if _, err := kv.Get(ctx, "new", buf); err != nil || buf[0] != 'y' {
			t.Fatalf("%q %v", buf, err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		plain, err := h.GenerateOID(ctx, SX, OTMultiHashed)
		if err != nil {
			t.Fatal(err)
		}
		closed, err := h.KVOpen(oid)
		if err != nil {
			t.Fatal(err)
		}
		if err := closed.Close(); err != nil {
			t.Fatal(err)
		}
		big := strings.Repeat("k", MaxKeySize+1)
		var a Anchor
		cases := []struct {
			name string
			call func() error
			code daoserr.Code
		}{
			{"open: not a KV type", func() error { _, err := h.KVOpen(plain); return err }, daoserr.Inval},
			{"put: empty key", func() error { return kv.Put(ctx, "", []byte("v")) }, daoserr.Inval},
			{"put: oversized key", func() error { return kv.Put(ctx, big, []byte("v")) }, daoserr.Key2Big},
			{"put: empty value", func() error { return kv.Put(ctx, "k", nil) }, daoserr.Inval},
			{"put: value over 64 MiB", func() error { return kv.Put(ctx, "k", make([]byte, maxValue+1)) }, daoserr.Rec2Big},
			{"put: a punch flag", func() error { return kv.PutCond(ctx, CondPunch, "k", []byte("v")) }, daoserr.Inval},
			{"get: empty key", func() error { _, err := kv.Get(ctx, "", nil); return err }, daoserr.Inval},
			{"get: oversized key", func() error { _, err := kv.Get(ctx, big, nil); return err }, daoserr.Key2Big},
			{"remove: empty key", func() error { return kv.Remove(ctx, "") }, daoserr.Inval},
			{"remove: an update flag", func() error { return kv.RemoveCond(ctx, CondDkeyInsert, "k") }, daoserr.Inval},
			{"list: max 0", func() error { _, err := kv.List(ctx, &a, 0); return err }, daoserr.Inval},
			{"list: no anchor", func() error { _, err := kv.List(ctx, nil, 1); return err }, daoserr.Inval},
			{"closed: put", func() error { return closed.Put(ctx, "k", []byte("v")) }, daoserr.NoHdl},
			{"closed: get", func() error { _, err := closed.Get(ctx, "k", nil); return err }, daoserr.NoHdl},
			{"closed: remove", func() error { return closed.Remove(ctx, "k") }, daoserr.NoHdl},
			{"closed: list", func() error { _, err := closed.List(ctx, &a, 1); return err }, daoserr.NoHdl},
			{"closed: destroy", func() error { return closed.Destroy(ctx) }, daoserr.NoHdl},
			{"closed: close", func() error { return closed.Close() }, daoserr.NoHdl},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { wantCode(t, c.name, c.call(), c.code) })
		}
	})

	t.Run("destroy", func(t *testing.T) {
		if err := kv.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		var a Anchor
		if keys, err := kv.List(ctx, &a, 100); err != nil || len(keys) != 0 {
			t.Fatalf("after destroy: %v %v", keys, err)
		}
		_, err := kv.Get(ctx, "key-30", nil)
		wantCode(t, "get after destroy", err, daoserr.Nonexist)
		if err := h.Close(ctx); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "put through a closed container", kv.Put(ctx, "k", []byte("v")), daoserr.NoHdl)
	})
}
