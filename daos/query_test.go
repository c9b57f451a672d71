package daos

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/testsys/inproc"
)

// testCont is an open container (read-write) of a fresh one-server system
// with two targets, for the tests of queries, listings, arrays and KVs.
func testCont(t *testing.T) *Cont {
	t.Helper()
	return testContOn(t, inproc.Start(t, false))
}

// testContOn is testCont on a system already started.
func testContOn(t *testing.T, s *inproc.System) *Cont {
	t.Helper()
	s.CreatePool(t, "p", me(t))
	ctx := context.Background()
	p, err := client(t, s).PoolConnect(ctx, "p", RW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ContCreate(ctx, ContCreateOptions{Label: "c"}); err != nil {
		t.Fatal(err)
	}
	h, err := p.ContOpen(ctx, "c", RW)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// testObj opens a new object of class and type in h.
func testObj(t *testing.T, h *Cont, class ClassID, ot OType) *Obj {
	t.Helper()
	oid, err := h.GenerateOID(context.Background(), class, ot)
	if err != nil {
		t.Fatal(err)
	}
	o, err := h.Obj(oid)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func u64(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }

func wantCode(t *testing.T, what string, err error, code daoserr.Code) {
	t.Helper()
	if !daoserr.Is(err, code) {
		t.Fatalf("%s: err %v, want %s", what, err, code.Name())
	}
}

// TestQueryKey: greatest and least dkeys over every shard, akeys and
// extents, the descent past keys without what was asked, and every refusal.
func TestQueryKey(t *testing.T) {
	h := testCont(t)
	ctx := context.Background()
	o := testObj(t, h, SX, OTDkeyUint64)
	if o.layout.Groups < 2 {
		t.Fatalf("SX object with %d groups: the test needs the dkeys spread over shards", o.layout.Groups)
	}
	arr := func(akey string, rx ...Recx) IOD { return IOD{Akey: []byte(akey), Type: Array, Size: 1, Recxs: rx} }
	groups := map[int]bool{}
	for d := uint64(3); d <= 40; d++ {
		groups[placement.DkeyGroupOf(o.OID, u64(d))] = true
		iods := []IOD{arr("a", Recx{d, 2}), arr("b", Recx{100, 1}), {Akey: []byte("sv"), Type: Single, Size: 1}}
		if _, err := o.Update(ctx, u64(d), iods, [][]byte{{1, 2}, {3}, {4}}); err != nil {
			t.Fatal(err)
		}
	}
	if len(groups) < 2 {
		t.Fatal("the dkeys all landed on one shard")
	}
	q := func(flags QueryFlags, dkey, akey []byte) (QueryResult, error) {
		return o.QueryKey(ctx, flags, dkey, akey)
	}
	dkeyOf := func(r QueryResult) uint64 { return binary.LittleEndian.Uint64(r.Dkey) }

	t.Run("dkeys over every shard", func(t *testing.T) {
		if r, err := q(GetDkey|GetMax, nil, nil); err != nil || dkeyOf(r) != 40 {
			t.Fatalf("max dkey %v %v", r, err)
		}
		if r, err := q(GetDkey|GetMin, nil, nil); err != nil || dkeyOf(r) != 3 {
			t.Fatalf("min dkey %v %v", r, err)
		}
	})
	t.Run("akeys and extents", func(t *testing.T) {
		if r, err := q(GetAkey|GetMax, u64(7), nil); err != nil || string(r.Akey) != "sv" {
			t.Fatalf("max akey %q %v", r.Akey, err)
		}
		if r, err := q(GetAkey|GetMin, u64(7), nil); err != nil || string(r.Akey) != "a" {
			t.Fatalf("min akey %q %v", r.Akey, err)
		}
		if r, err := q(GetRecx|GetMax, u64(7), []byte("a")); err != nil || r.Recx != (Recx{7, 2}) {
			t.Fatalf("max recx %v %v", r.Recx, err)
		}
		r, err := q(GetDkey|GetRecx|GetMax, nil, []byte("a"))
		if err != nil || dkeyOf(r) != 40 || r.Recx != (Recx{40, 2}) {
			t.Fatalf("max dkey and recx %v %v", r, err)
		}
		// the greatest akey with an extent passes over the single value
		if r, err := q(GetAkey|GetRecx|GetMax, u64(7), nil); err != nil || string(r.Akey) != "b" || r.Recx != (Recx{100, 1}) {
			t.Fatalf("max akey with an extent %q %v %v", r.Akey, r.Recx, err)
		}
	})
	t.Run("descent past keys without extents", func(t *testing.T) {
		if err := o.PunchDkeys(ctx, [][]byte{u64(40)}); err != nil {
			t.Fatal(err)
		}
		// dkey 39's extents punched: it still has other akeys, but none of "a"
		if _, err := o.Update(ctx, u64(39), []IOD{{Akey: []byte("a"), Type: Array, Recxs: []Recx{{39, 2}}}}, [][]byte{nil}); err != nil {
			t.Fatal(err)
		}
		r, err := q(GetDkey|GetRecx|GetMax, nil, []byte("a"))
		if err != nil || dkeyOf(r) != 38 || r.Recx != (Recx{38, 2}) {
			t.Fatalf("after punching dkey 40 and the extents of 39: %v %v", r, err)
		}
		if r, err := q(GetDkey|GetMax, nil, nil); err != nil || dkeyOf(r) != 39 {
			t.Fatalf("max dkey after punching 40: %v %v", r, err)
		}
	})
	t.Run("hashed dkeys order bytewise", func(t *testing.T) {
		o := testObj(t, h, SX, OTMultiHashed)
		for _, k := range []string{"delta", "alpha", "zulu", "mike"} {
			if _, err := o.Update(ctx, []byte(k), []IOD{{Akey: []byte("v"), Type: Single, Size: 1}}, [][]byte{{1}}); err != nil {
				t.Fatal(err)
			}
		}
		max, err1 := o.QueryKey(ctx, GetDkey|GetMax, nil, nil)
		min, err2 := o.QueryKey(ctx, GetDkey|GetMin, nil, nil)
		if string(max.Dkey) != "zulu" || string(min.Dkey) != "alpha" || err1 != nil || err2 != nil {
			t.Fatalf("max %q %v, min %q %v", max.Dkey, err1, min.Dkey, err2)
		}
	})
	t.Run("errors", func(t *testing.T) {
		empty := testObj(t, h, SX, OTDkeyUint64)
		big := bytes.Repeat([]byte{'k'}, MaxKeySize+1)
		cases := []struct {
			name  string
			o     *Obj
			flags QueryFlags
			dkey  []byte
			akey  []byte
			code  daoserr.Code
		}{
			{"neither max nor min", o, GetDkey, nil, nil, daoserr.Inval},
			{"both max and min", o, GetDkey | GetMax | GetMin, nil, nil, daoserr.Inval},
			{"no level", o, GetMax, u64(7), nil, daoserr.Inval},
			{"unknown flag", o, GetDkey | GetMax | 1<<9, nil, nil, daoserr.Inval},
			{"akey without dkey", o, GetAkey | GetMax, nil, nil, daoserr.Inval},
			{"extent without akey", o, GetRecx | GetMax, u64(7), nil, daoserr.Inval},
			{"oversized dkey", o, GetAkey | GetMax, big, nil, daoserr.Key2Big},
			{"oversized akey", o, GetRecx | GetMax, u64(7), big, daoserr.Key2Big},
			{"extents of a single value", o, GetRecx | GetMax, u64(7), []byte("sv"), daoserr.Inval},
			{"missing dkey", o, GetAkey | GetMax, u64(1000), nil, daoserr.Nonexist},
			{"missing akey", o, GetRecx | GetMax, u64(7), []byte("nope"), daoserr.Nonexist},
			{"empty object", empty, GetDkey | GetMax, nil, nil, daoserr.Nonexist},
			{"empty object, extent", empty, GetDkey | GetRecx | GetMin, nil, []byte("a"), daoserr.Nonexist},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := c.o.QueryKey(ctx, c.flags, c.dkey, c.akey)
				wantCode(t, c.name, err, c.code)
				if !strings.Contains(err.Error(), c.o.OID.String()) {
					t.Fatalf("%q does not name the object", err)
				}
			})
		}
	})
}

// TestListRecx: visible extents in index order with their epochs, paged,
// overwrites and punches as a fetch would see them.
func TestListRecx(t *testing.T) {
	h := testCont(t)
	ctx := context.Background()
	o := testObj(t, h, S1, OTMultiHashed)
	dkey, akey := []byte("d"), []byte("a")
	write := func(rx Recx, size uint64) uint64 {
		t.Helper()
		var buf []byte
		if size > 0 {
			buf = make([]byte, rx.Nr*size)
		}
		e, err := o.Update(ctx, dkey, []IOD{{Akey: akey, Type: Array, Size: size, Recxs: []Recx{rx}}}, [][]byte{buf})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e1 := write(Recx{0, 4}, 8)
	e2 := write(Recx{10, 2}, 8)
	e3 := write(Recx{2, 4}, 8) // overwrites [2, 4)
	write(Recx{20, 5}, 8)
	write(Recx{20, 5}, 0) // punched
	want := []RecxEpoch{{Recx{0, 2}, e1}, {Recx{2, 4}, e3}, {Recx{10, 2}, e2}}

	for _, page := range []int{1, 2, 100} {
		t.Run(fmt.Sprintf("page %d", page), func(t *testing.T) {
			var got []RecxEpoch
			var a Anchor
			for n := 0; !a.EOF; n++ {
				xs, rsize, err := o.ListRecx(ctx, dkey, akey, &a, page)
				if err != nil || len(xs) > page || n > 10 {
					t.Fatalf("page %d: %v %v", n, xs, err)
				}
				if len(xs) > 0 && rsize != 8 {
					t.Fatalf("record size %d", rsize)
				}
				got = append(got, xs...)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("extents %v, want %v", got, want)
			}
		})
	}
	t.Run("nothing there", func(t *testing.T) {
		var a Anchor
		xs, rsize, err := o.ListRecx(ctx, dkey, []byte("other"), &a, 10)
		if err != nil || len(xs) != 0 || rsize != 0 || !a.EOF {
			t.Fatalf("%v %d %v %v", xs, rsize, a.EOF, err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		var a Anchor
		_, _, err := o.ListRecx(ctx, nil, akey, &a, 10)
		wantCode(t, "empty dkey", err, daoserr.Inval)
		_, _, err = o.ListRecx(ctx, dkey, nil, &a, 10)
		wantCode(t, "empty akey", err, daoserr.Inval)
		_, _, err = o.ListRecx(ctx, dkey, bytes.Repeat([]byte{1}, MaxKeySize+1), &a, 10)
		wantCode(t, "oversized akey", err, daoserr.Key2Big)
		_, _, err = o.ListRecx(ctx, dkey, akey, &a, 0)
		wantCode(t, "max 0", err, daoserr.Inval)
		_, _, err = o.ListRecx(ctx, dkey, akey, nil, 10)
		wantCode(t, "no anchor", err, daoserr.Inval)
	})
}

// TestListObjects: every object with data listed once, in OID order, page
// after page, whatever its shards; punched objects left out.
func TestListObjects(t *testing.T) {
	h := testCont(t)
	ctx := context.Background()
	var want []OID
	for i := range 40 {
		class, ot := S1, OTMultiHashed
		if i%2 == 0 {
			class, ot = SX, OTDkeyUint64
		}
		o := testObj(t, h, class, ot)
		for d := range uint64(4) { // SX objects get data on both targets
			if _, err := o.Update(ctx, u64(d), []IOD{{Akey: []byte("v"), Type: Single, Size: 1}}, [][]byte{{byte(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		if i%10 == 9 {
			if err := o.Punch(ctx); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want = append(want, o.OID)
	}
	testObj(t, h, S1, OTMultiHashed) // opened, never written: not an object yet
	slices.SortFunc(want, func(a, b OID) int {
		if oidLess(a, b) {
			return -1
		}
		return 1
	})
	for _, page := range []int{1, 7, 36, 1000} {
		t.Run(fmt.Sprintf("page %d", page), func(t *testing.T) {
			var got []OID
			var a Anchor
			for n := 0; !a.EOF; n++ {
				oids, err := h.ListObjects(ctx, &a, page)
				if err != nil || len(oids) > page || n > 50 {
					t.Fatalf("page %d: %d OIDs, %v", n, len(oids), err)
				}
				got = append(got, oids...)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("listed %v\nwant %v", got, want)
			}
		})
	}
	t.Run("errors", func(t *testing.T) {
		var a Anchor
		_, err := h.ListObjects(ctx, &a, 0)
		wantCode(t, "max 0", err, daoserr.Inval)
		_, err = h.ListObjects(ctx, nil, 10)
		wantCode(t, "no anchor", err, daoserr.Inval)
	})
}

// TestCondFlags: DAOS's conditional update, fetch and punch, each
// condition met and failed, and flags that do not apply.
func TestCondFlags(t *testing.T) {
	h := testCont(t)
	ctx := context.Background()
	o := testObj(t, h, SX, OTMultiHashed)
	sv := func(akey string, flags CondFlags) IOD {
		return IOD{Akey: []byte(akey), Type: Single, Size: 1, Flags: flags}
	}
	upd := func(flags CondFlags, dkey string, iods ...IOD) error {
		bufs := make([][]byte, len(iods))
		for i := range bufs {
			bufs[i] = []byte{7}
		}
		_, err := o.UpdateCond(ctx, flags, []byte(dkey), iods, bufs)
		return err
	}
	fetch := func(flags CondFlags, dkey string, iods ...IOD) error {
		bufs := make([][]byte, len(iods))
		for i := range bufs {
			bufs[i] = make([]byte, 1)
		}
		_, err := o.FetchCond(ctx, flags, []byte(dkey), iods, bufs)
		return err
	}
	// in order: each step sees the ones before
	steps := []struct {
		name string
		run  func() error
		code daoserr.Code // 0: success
	}{
		{"insert a new dkey", func() error { return upd(CondDkeyInsert, "d1", sv("a", 0)) }, 0},
		{"insert it again", func() error { return upd(CondDkeyInsert, "d1", sv("b", 0)) }, daoserr.Exist},
		{"the failed insert wrote nothing", func() error { return fetch(CondAkeyFetch, "d1", sv("b", 0)) }, daoserr.Nonexist},
		{"update a missing dkey", func() error { return upd(CondDkeyUpdate, "d2", sv("a", 0)) }, daoserr.Nonexist},
		{"update an existing dkey", func() error { return upd(CondDkeyUpdate, "d1", sv("b", 0)) }, 0},
		{"insert an existing akey", func() error { return upd(CondAkeyInsert, "d1", sv("a", 0)) }, daoserr.Exist},
		{"insert a new akey", func() error { return upd(CondAkeyInsert, "d1", sv("c", 0)) }, 0},
		{"update a missing akey", func() error { return upd(CondAkeyUpdate, "d1", sv("z", 0)) }, daoserr.Nonexist},
		{"per akey: both met", func() error { return upd(CondPerAkey, "d1", sv("a", CondAkeyUpdate), sv("n", CondAkeyInsert)) }, 0},
		{"per akey: one fails", func() error { return upd(CondPerAkey, "d1", sv("a", CondAkeyUpdate), sv("n", CondAkeyInsert)) }, daoserr.Exist},
		{"fetch a missing dkey", func() error { return fetch(CondDkeyFetch, "d9", sv("a", 0)) }, daoserr.Nonexist},
		{"fetch an existing dkey", func() error { return fetch(CondDkeyFetch, "d1", sv("a", 0)) }, 0},
		{"fetch a missing akey", func() error { return fetch(CondAkeyFetch, "d1", sv("a", 0), sv("z", 0)) }, daoserr.Nonexist},
		{"fetch per akey", func() error { return fetch(CondPerAkey, "d1", sv("a", CondAkeyFetch), sv("z", 0)) }, 0},
		{"punch a missing akey", func() error { return o.PunchAkeysCond(ctx, CondPunch, []byte("d1"), [][]byte{[]byte("z")}) }, daoserr.Nonexist},
		{"punch an akey", func() error { return o.PunchAkeysCond(ctx, CondPunch, []byte("d1"), [][]byte{[]byte("a")}) }, 0},
		{"punch a missing dkey", func() error { return o.PunchDkeysCond(ctx, CondPunch, [][]byte{[]byte("d9")}) }, daoserr.Nonexist},
		{"punch a dkey", func() error { return o.PunchDkeysCond(ctx, CondPunch, [][]byte{[]byte("d1")}) }, 0},
		{"punch the emptied object", func() error { return o.PunchCond(ctx, CondPunch) }, daoserr.Nonexist},
		{"insert after the punch", func() error { return upd(CondDkeyInsert, "d1", sv("a", 0)) }, 0},
		{"punch the object", func() error { return o.PunchCond(ctx, CondPunch) }, 0},
		{"insert and update together", func() error { return upd(CondDkeyInsert|CondDkeyUpdate, "d1", sv("a", 0)) }, daoserr.Inval},
		{"a fetch flag on an update", func() error { return upd(CondDkeyFetch, "d1", sv("a", 0)) }, daoserr.Inval},
		{"an update flag on a fetch", func() error { return fetch(CondDkeyInsert, "d1", sv("a", 0)) }, daoserr.Inval},
		{"an update flag on a punch", func() error { return o.PunchCond(ctx, CondDkeyInsert) }, daoserr.Inval},
	}
	for _, s := range steps {
		err := s.run()
		if s.code == 0 && err != nil || s.code != 0 && !daoserr.Is(err, s.code) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.code)
		}
	}
}
