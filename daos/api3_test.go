package daos

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/testsys/cluster"
	"github.com/godaos/godaos/server/vos"
)

// api3 is what the error cases act on: a secure 3-server system, and
// handles to things that exist, that were destroyed under their handles, and
// that belong to someone else.
type api3 struct {
	sys  *cluster.System
	self string

	p          *Pool // the system's pool, owned by the test's user, RW
	h          *Cont // "data" in p, RW, holding written keys
	s1, sx     *Obj  // objects of h with data under dkey "d" (akeys "sv" single, "arr" array of 8-byte records)
	doomed     *Pool // connected, then the pool was destroyed
	doomedCont *Cont
	doomedObj  *Obj
	gone       *Cont // opened, then the container was destroyed
	goneObj    *Obj
	guest      *Pool // "guest": owned by nobody, the test's user has r and c
	theirs     *Cont // "theirs" in guest: owned by nobody, EVERYONE@:r; opened RO
	theirsObj  *Obj
	readonly   *Pool // "readonly": owned by nobody, EVERYONE@:r; connected RO
}

// admin makes an administrator's call, bounded and retried over elections.
func admin[T interface{ GetError() *ctlpb.Error }](t *testing.T, what string, call func(context.Context) (T, error)) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := ctlclient.Retry(ctx, call)
	if err := ctlclient.Err(err, r.GetError(), what); err != nil {
		t.Fatal(err)
	}
	return r
}

func setupAPI3(t *testing.T, sys *cluster.System) *api3 {
	t.Helper()
	ctx := context.Background()
	a := &api3{sys: sys, self: me(t)}
	var err error
	chk := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	c, err := Init(ctx, Options{AgentSocket: sys.AgentSocket, Logger: quiet()})
	chk(err)
	t.Cleanup(func() { c.Fini() })
	obj := func(h *Cont, class ClassID) *Obj {
		t.Helper()
		oid, err := h.GenerateOID(ctx, class, OTMultiHashed)
		chk(err)
		o, err := h.Obj(oid)
		chk(err)
		return o
	}

	a.p, err = c.PoolConnect(ctx, sys.Pool, RW)
	chk(err)
	_, err = a.p.ContCreate(ctx, ContCreateOptions{Label: "data"})
	chk(err)
	a.h, err = a.p.ContOpen(ctx, "data", RW)
	chk(err)
	a.s1, a.sx = obj(a.h, S1), obj(a.h, SX)
	for _, o := range []*Obj{a.s1, a.sx} {
		iods := []IOD{{Akey: []byte("sv"), Type: Single, Size: 8}, {Akey: []byte("arr"), Type: Array, Size: 8, Recxs: []Recx{{0, 8}}}}
		_, err = o.Update(ctx, []byte("d"), iods, [][]byte{[]byte("12345678"), make([]byte, 64)})
		chk(err)
	}

	// a pool destroyed under its connection and the handles made through it
	sys.CreatePool(t, "doomed", a.self)
	a.doomed, err = c.PoolConnect(ctx, "doomed", RW)
	chk(err)
	_, err = a.doomed.ContCreate(ctx, ContCreateOptions{Label: "c"})
	chk(err)
	a.doomedCont, err = a.doomed.ContOpen(ctx, "c", RW)
	chk(err)
	a.doomedObj, err = a.doomedCont.Obj(a.s1.OID)
	chk(err)
	admin(t, "destroy pool doomed", func(ctx context.Context) (*ctlpb.PoolResp, error) {
		return sys.Admin.PoolDestroy(ctx, &ctlpb.PoolReq{Id: "doomed", Recursive: true})
	})

	// a container destroyed under its handle
	_, err = a.p.ContCreate(ctx, ContCreateOptions{Label: "gone"})
	chk(err)
	a.gone, err = a.p.ContOpen(ctx, "gone", RW)
	chk(err)
	a.goneObj, err = a.gone.Obj(a.sx.OID)
	chk(err)
	chk(a.p.ContDestroy(ctx, "gone"))

	// someone else's: the test's user is not the owner and has little
	sys.CreatePool(t, "guest", "nobody", "A::OWNER@:rw", "A::"+a.self+"@:rc")
	a.guest, err = c.PoolConnect(ctx, "guest", RW)
	chk(err)
	_, err = a.guest.ContCreate(ctx, ContCreateOptions{Label: "theirs", ACL: []string{"A::OWNER@:rwdtTaAo", "A::EVERYONE@:r"}})
	chk(err)
	admin(t, "set owner of guest/theirs", func(ctx context.Context) (*ctlpb.ContResp, error) {
		return sys.Admin.ContSetOwner(ctx, &ctlpb.ContSetOwnerReq{Pool: "guest", Cont: "theirs", User: "nobody", Group: "nobody"})
	})
	a.theirs, err = a.guest.ContOpen(ctx, "theirs", RO)
	chk(err)
	a.theirsObj, err = a.theirs.Obj(a.s1.OID)
	chk(err)
	sys.CreatePool(t, "closed", "nobody") // the default ACL: nothing for others
	sys.CreatePool(t, "readonly", "nobody", "A::OWNER@:rw", "A::EVERYONE@:r")
	a.readonly, err = c.PoolConnect(ctx, "readonly", RO)
	chk(err)
	return a
}

// errCase is one call that must fail with code, its message naming each of
// names.
type errCase struct {
	name  string
	call  func(ctx context.Context) error
	code  daoserr.Code
	names []string
}

func runErrCases(t *testing.T, cases []errCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			err := tc.call(ctx)
			if !daoserr.Is(err, tc.code) {
				t.Fatalf("err %.300v, want %s", err, tc.code.Name())
			}
			for _, n := range tc.names {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("%s does not name %q: %v", tc.code.Name(), n, err)
				}
			}
		})
	}
}

// ignore2 drops a call's result.
func ignore2[T any](_ T, err error) error { return err }

// TestAPIErrors3: against a real 3-server system with certificates, every
// call of the pool, container and object API refuses what it must — missing
// pools and containers, missing permissions, oversized keys, invalid extents,
// buffers that do not match their IODs — with the DER_* code DAOS uses and a
// message naming the pool, container or object.
func TestAPIErrors3(t *testing.T) {
	sys := cluster.Start(t, cluster.Options{Servers: 3, Targets: 2, Secure: true})
	a := setupAPI3(t, sys)
	c := a.p.c
	doomedU, goneU := a.doomed.Info.Uuid, a.gone.Info.Uuid
	s1, sx := a.s1.OID.String(), a.sx.OID.String()
	bigKey := bytes.Repeat([]byte("k"), vos.MaxKeySize+1)
	longLabel := strings.Repeat("l", 128)
	sv := func(size uint64) []IOD { return []IOD{{Akey: []byte("sv"), Type: Single, Size: size}} }
	arr := func(size uint64, rx ...Recx) []IOD {
		return []IOD{{Akey: []byte("arr"), Type: Array, Size: size, Recxs: rx}}
	}
	buf := func(n int) [][]byte { return [][]byte{make([]byte, n)} }
	dkey := []byte("d")

	t.Run("pool connect", func(t *testing.T) {
		runErrCases(t, []errCase{
			{"missing pool", func(ctx context.Context) error { return ignore2(c.PoolConnect(ctx, "nosuch", RO)) }, daoserr.Nonexist, []string{"nosuch"}},
			{"destroyed pool", func(ctx context.Context) error { return ignore2(c.PoolConnect(ctx, doomedU, RO)) }, daoserr.Nonexist, []string{doomedU}},
			{"no permission", func(ctx context.Context) error { return ignore2(c.PoolConnect(ctx, "closed", RO)) }, daoserr.NoPerm, []string{"pool closed", `missing permission "r"`}},
			{"read-only for others", func(ctx context.Context) error { return ignore2(c.PoolConnect(ctx, "readonly", RW)) }, daoserr.NoPerm, []string{"pool readonly", `missing permission "w"`}},
			{"bad mode", func(ctx context.Context) error { return ignore2(c.PoolConnect(ctx, sys.Pool, 3)) }, daoserr.Inval, []string{sys.Pool}},
			{"oversized label", func(ctx context.Context) error { return ignore2(c.PoolConnect(ctx, longLabel, RO)) }, daoserr.Nonexist, []string{longLabel}},
			{"query of a destroyed pool", func(ctx context.Context) error { return ignore2(a.doomed.Query(ctx)) }, daoserr.Nonexist, []string{doomedU}},
		})
	})
	t.Run("cont create", func(t *testing.T) {
		runErrCases(t, []errCase{
			{"missing pool", func(ctx context.Context) error {
				return ignore2(a.doomed.ContCreate(ctx, ContCreateOptions{Label: "x"}))
			}, daoserr.Nonexist, []string{doomedU}},
			{"no permission", func(ctx context.Context) error {
				return ignore2(a.readonly.ContCreate(ctx, ContCreateOptions{Label: "x"}))
			}, daoserr.NoPerm, []string{"pool readonly", `missing permission "c"`}},
			{"label taken", func(ctx context.Context) error {
				return ignore2(a.p.ContCreate(ctx, ContCreateOptions{Label: "data"}))
			}, daoserr.Exist, []string{"data", sys.Pool}},
			{"oversized label", func(ctx context.Context) error {
				return ignore2(a.p.ContCreate(ctx, ContCreateOptions{Label: longLabel}))
			}, daoserr.Inval, []string{longLabel}},
			{"unknown property", func(ctx context.Context) error {
				return ignore2(a.p.ContCreate(ctx, ContCreateOptions{Label: "x", Props: map[string]string{"colour": "red"}}))
			}, daoserr.Inval, []string{"colour"}},
		})
	})
	t.Run("cont open", func(t *testing.T) {
		runErrCases(t, []errCase{
			{"missing pool", func(ctx context.Context) error { return ignore2(a.doomed.ContOpen(ctx, "c", RO)) }, daoserr.Nonexist, []string{doomedU}},
			{"missing container", func(ctx context.Context) error { return ignore2(a.p.ContOpen(ctx, "nosuch", RO)) }, daoserr.Nonexist, []string{"nosuch"}},
			{"destroyed container", func(ctx context.Context) error { return ignore2(a.p.ContOpen(ctx, goneU, RO)) }, daoserr.Nonexist, []string{goneU}},
			{"no permission", func(ctx context.Context) error { return ignore2(a.guest.ContOpen(ctx, "theirs", RW)) }, daoserr.NoPerm, []string{"guest/theirs", `missing permission "w"`}},
			{"bad mode", func(ctx context.Context) error { return ignore2(a.p.ContOpen(ctx, "data", 3)) }, daoserr.Inval, []string{"data"}},
		})
	})
	t.Run("cont destroy", func(t *testing.T) {
		runErrCases(t, []errCase{
			{"missing pool", func(ctx context.Context) error { return a.doomed.ContDestroy(ctx, "c") }, daoserr.Nonexist, []string{doomedU}},
			{"missing container", func(ctx context.Context) error { return a.p.ContDestroy(ctx, "nosuch") }, daoserr.Nonexist, []string{"nosuch"}},
			{"no permission", func(ctx context.Context) error { return a.guest.ContDestroy(ctx, "theirs") }, daoserr.NoPerm, []string{"guest/theirs", `missing permission "d"`}},
		})
	})
	t.Run("cont query", func(t *testing.T) {
		runErrCases(t, []errCase{
			{"missing pool", func(ctx context.Context) error { return ignore2(a.doomed.ContProps(ctx, "c", nil)) }, daoserr.Nonexist, []string{doomedU}},
			{"missing container", func(ctx context.Context) error { return ignore2(a.p.ContProps(ctx, "nosuch", nil)) }, daoserr.Nonexist, []string{"nosuch"}},
			{"no permission", func(ctx context.Context) error { return ignore2(a.guest.ContProps(ctx, "theirs", nil)) }, daoserr.NoPerm, []string{"guest/theirs", `missing permission "t"`}},
		})
	})

	t.Run("obj update", func(t *testing.T) {
		runErrCases(t, []errCase{
			{"missing pool", func(ctx context.Context) error {
				return ignore2(a.doomedObj.Update(ctx, dkey, sv(2), [][]byte{[]byte("hi")}))
			}, daoserr.Nonexist, []string{a.doomedObj.OID.String(), doomedU}},
			{"missing container", func(ctx context.Context) error {
				return ignore2(a.goneObj.Update(ctx, dkey, sv(2), [][]byte{[]byte("hi")}))
			}, daoserr.Nonexist, []string{a.goneObj.OID.String(), goneU}},
			{"no permission", func(ctx context.Context) error {
				return ignore2(a.theirsObj.Update(ctx, dkey, sv(2), [][]byte{[]byte("hi")}))
			}, daoserr.NoPerm, []string{a.theirsObj.OID.String(), a.theirs.Info.Uuid}},
			{"oversized dkey", func(ctx context.Context) error {
				return ignore2(a.sx.Update(ctx, bigKey, sv(2), [][]byte{[]byte("hi")}))
			}, daoserr.Key2Big, []string{sx, "dkey"}},
			{"oversized akey", func(ctx context.Context) error {
				return ignore2(a.s1.Update(ctx, dkey, []IOD{{Akey: bigKey, Type: Single, Size: 2}}, [][]byte{[]byte("hi")}))
			}, daoserr.Key2Big, []string{s1, "akey"}},
			{"empty dkey", func(ctx context.Context) error { return ignore2(a.s1.Update(ctx, nil, sv(2), [][]byte{[]byte("hi")})) }, daoserr.Inval, []string{s1, "dkey"}},
			{"zero-length recx", func(ctx context.Context) error { return ignore2(a.s1.Update(ctx, dkey, arr(8, Recx{4, 0}), buf(0))) }, daoserr.Inval, []string{s1, "idx 4 nr 0"}},
			{"overflowing recx", func(ctx context.Context) error {
				return ignore2(a.sx.Update(ctx, dkey, arr(8, Recx{math.MaxUint64 - 1, 4}), buf(32)))
			}, daoserr.Inval, []string{sx, "arr"}},
			{"huge recx", func(ctx context.Context) error {
				return ignore2(a.sx.Update(ctx, dkey, arr(8, Recx{0, 1 << 61}), buf(8)))
			}, daoserr.Rec2Big, []string{sx, "arr"}},
			{"array without recxs", func(ctx context.Context) error { return ignore2(a.s1.Update(ctx, dkey, arr(8), buf(0))) }, daoserr.Inval, []string{s1, "arr"}},
			{"record size 0 with data", func(ctx context.Context) error { return ignore2(a.s1.Update(ctx, dkey, arr(0, Recx{0, 4}), buf(32))) }, daoserr.IOInval, []string{s1}},
			{"unknown IOD type", func(ctx context.Context) error {
				return ignore2(a.s1.Update(ctx, dkey, []IOD{{Akey: []byte("t"), Type: 7, Size: 2}}, buf(2)))
			}, daoserr.Inval, []string{s1, "IOD type 7"}},
			{"same akey twice", func(ctx context.Context) error {
				return ignore2(a.s1.Update(ctx, dkey, append(sv(2), sv(2)...), [][]byte{[]byte("hi"), []byte("ho")}))
			}, daoserr.Inval, []string{s1, "twice"}},
			{"fewer buffers than IODs", func(ctx context.Context) error {
				return ignore2(a.s1.Update(ctx, dkey, append(sv(2), arr(8, Recx{0, 1})...), buf(2)))
			}, daoserr.Inval, []string{s1}},
			{"single value larger than its buffer", func(ctx context.Context) error { return ignore2(a.s1.Update(ctx, dkey, sv(8), buf(4))) }, daoserr.IOInval, []string{s1}},
			{"single value smaller than its buffer", func(ctx context.Context) error { return ignore2(a.sx.Update(ctx, dkey, sv(8), buf(12))) }, daoserr.IOInval, []string{sx}},
			{"recxs larger than their buffer", func(ctx context.Context) error { return ignore2(a.sx.Update(ctx, dkey, arr(8, Recx{0, 4}), buf(16))) }, daoserr.IOInval, []string{sx}},
		})
	})
	t.Run("obj fetch", func(t *testing.T) {
		runErrCases(t, []errCase{
			{"missing pool", func(ctx context.Context) error { return ignore2(a.doomedObj.Fetch(ctx, dkey, sv(8), buf(8))) }, daoserr.Nonexist, []string{a.doomedObj.OID.String(), doomedU}},
			{"missing container", func(ctx context.Context) error { return ignore2(a.goneObj.Fetch(ctx, dkey, sv(8), buf(8))) }, daoserr.Nonexist, []string{a.goneObj.OID.String(), goneU}},
			{"oversized dkey", func(ctx context.Context) error { return ignore2(a.sx.Fetch(ctx, bigKey, sv(8), buf(8))) }, daoserr.Key2Big, []string{sx, "dkey"}},
			{"oversized akey", func(ctx context.Context) error {
				return ignore2(a.s1.Fetch(ctx, dkey, []IOD{{Akey: bigKey, Type: Single, Size: 8}}, buf(8)))
			}, daoserr.Key2Big, []string{s1, "akey"}},
			{"zero-length recx", func(ctx context.Context) error { return ignore2(a.s1.Fetch(ctx, dkey, arr(8, Recx{4, 0}), buf(0))) }, daoserr.Inval, []string{s1, "idx 4 nr 0"}},
			{"zero-length recx of an akey never written", func(ctx context.Context) error {
				return ignore2(a.s1.Fetch(ctx, dkey, []IOD{{Akey: []byte("new"), Type: Array, Size: 8, Recxs: []Recx{{4, 0}}}}, buf(0)))
			}, daoserr.Inval, []string{s1, "idx 4 nr 0"}},
			{"overflowing recx", func(ctx context.Context) error {
				return ignore2(a.sx.Fetch(ctx, dkey, arr(8, Recx{math.MaxUint64 - 1, 4}), buf(32)))
			}, daoserr.Inval, []string{sx, "arr"}},
			{"huge recx", func(ctx context.Context) error {
				return ignore2(a.sx.Fetch(ctx, dkey, arr(8, Recx{0, 1 << 61}), buf(8)))
			}, daoserr.Rec2Big, []string{sx, "arr"}},
			{"wrong record size", func(ctx context.Context) error { return ignore2(a.s1.Fetch(ctx, dkey, arr(4, Recx{0, 2}), buf(8))) }, daoserr.RecSize, []string{s1, "arr"}},
			{"array fetched as a single value", func(ctx context.Context) error {
				return ignore2(a.s1.Fetch(ctx, dkey, []IOD{{Akey: []byte("arr"), Type: Single, Size: 8}}, buf(8)))
			}, daoserr.Inval, []string{s1, "arr"}},
			{"single value larger than the IOD", func(ctx context.Context) error { return ignore2(a.sx.Fetch(ctx, dkey, sv(4), buf(4))) }, daoserr.Rec2Big, []string{sx, "sv"}},
			{"buffer smaller than the IOD", func(ctx context.Context) error { return ignore2(a.s1.Fetch(ctx, dkey, sv(8), buf(4))) }, daoserr.Trunc, []string{s1}},
			{"more buffers than IODs", func(ctx context.Context) error { return ignore2(a.s1.Fetch(ctx, dkey, sv(8), [][]byte{nil, nil})) }, daoserr.Inval, []string{s1}},
		})
	})
	t.Run("obj punch", func(t *testing.T) {
		runErrCases(t, []errCase{
			{"missing pool", func(ctx context.Context) error { return a.doomedObj.Punch(ctx) }, daoserr.Nonexist, []string{a.doomedObj.OID.String(), doomedU}},
			{"missing container", func(ctx context.Context) error { return a.goneObj.PunchDkeys(ctx, [][]byte{dkey}) }, daoserr.Nonexist, []string{a.goneObj.OID.String(), goneU}},
			{"no permission (object)", func(ctx context.Context) error { return a.theirsObj.Punch(ctx) }, daoserr.NoPerm, []string{a.theirsObj.OID.String(), a.theirs.Info.Uuid}},
			{"no permission (dkeys)", func(ctx context.Context) error { return a.theirsObj.PunchDkeys(ctx, [][]byte{dkey}) }, daoserr.NoPerm, []string{a.theirsObj.OID.String()}},
			{"no permission (akeys)", func(ctx context.Context) error {
				return a.theirsObj.PunchAkeys(ctx, dkey, [][]byte{[]byte("sv")})
			}, daoserr.NoPerm, []string{a.theirsObj.OID.String()}},
			{"oversized dkey", func(ctx context.Context) error { return a.sx.PunchDkeys(ctx, [][]byte{bigKey}) }, daoserr.Key2Big, []string{sx, "dkey"}},
			{"oversized akey", func(ctx context.Context) error { return a.s1.PunchAkeys(ctx, dkey, [][]byte{bigKey}) }, daoserr.Key2Big, []string{s1, "akey"}},
			{"empty dkey", func(ctx context.Context) error { return a.s1.PunchDkeys(ctx, [][]byte{nil}) }, daoserr.Inval, []string{s1, "dkey"}},
			{"akeys without a dkey", func(ctx context.Context) error { return a.s1.PunchAkeys(ctx, nil, [][]byte{[]byte("sv")}) }, daoserr.Inval, []string{s1}},
		})
	})
	t.Run("obj list", func(t *testing.T) {
		runErrCases(t, []errCase{
			{"missing pool", func(ctx context.Context) error { return ignore2(a.doomedObj.ListDkeys(ctx, &Anchor{}, 10)) }, daoserr.Nonexist, []string{a.doomedObj.OID.String(), doomedU}},
			{"missing container", func(ctx context.Context) error { return ignore2(a.goneObj.ListDkeys(ctx, &Anchor{}, 10)) }, daoserr.Nonexist, []string{a.goneObj.OID.String(), goneU}},
			{"missing container (akeys)", func(ctx context.Context) error {
				return ignore2(a.goneObj.ListAkeys(ctx, dkey, &Anchor{}, 10))
			}, daoserr.Nonexist, []string{a.goneObj.OID.String(), goneU}},
			{"oversized dkey", func(ctx context.Context) error { return ignore2(a.sx.ListAkeys(ctx, bigKey, &Anchor{}, 10)) }, daoserr.Key2Big, []string{sx, "dkey"}},
			{"empty dkey", func(ctx context.Context) error { return ignore2(a.s1.ListAkeys(ctx, nil, &Anchor{}, 10)) }, daoserr.Inval, []string{s1, "dkey"}},
		})
	})

	t.Run("keys at the limit", func(t *testing.T) {
		// VOS takes keys of up to vos.MaxKeySize bytes: so must the API
		ctx := context.Background()
		k := bigKey[:vos.MaxKeySize]
		_, err := a.s1.Update(ctx, k, []IOD{{Akey: k, Type: Single, Size: 2}}, [][]byte{[]byte("hi")})
		if err != nil {
			t.Fatalf("update with %d-byte keys: %.300v", len(k), err)
		}
		got := buf(2)
		if _, err := a.s1.Fetch(ctx, k, []IOD{{Akey: k, Type: Single, Size: 2}}, got); err != nil || string(got[0]) != "hi" {
			t.Fatalf("fetch with %d-byte keys: %q %.300v", len(k), got[0], err)
		}
	})

	// Closed handles: the lead's Cont.Close and Pool.Disconnect refuse every
	// later call through them, and through what was opened from them.
	t.Run("closed handles", func(t *testing.T) {
		ctx := context.Background()
		h2, err := a.p.ContOpen(ctx, "data", RW)
		if err != nil {
			t.Fatal(err)
		}
		o2, err := h2.Obj(a.sx.OID)
		if err != nil {
			t.Fatal(err)
		}
		if err := h2.Close(ctx); err != nil {
			t.Fatal(err)
		}
		p3, err := c.PoolConnect(ctx, sys.Pool, RW)
		if err != nil {
			t.Fatal(err)
		}
		h3, err := p3.ContOpen(ctx, "data", RW)
		if err != nil {
			t.Fatal(err)
		}
		o3, err := h3.Obj(a.s1.OID)
		if err != nil {
			t.Fatal(err)
		}
		if err := p3.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
		closed := []string{sys.Pool + "/data", h2.Handle}
		disc := []string{"pool " + sys.Pool, p3.Handle}
		runErrCases(t, []errCase{
			{"cont close twice", func(ctx context.Context) error { return h2.Close(ctx) }, daoserr.NoHdl, closed},
			{"obj update", func(ctx context.Context) error { return ignore2(o2.Update(ctx, dkey, sv(2), [][]byte{[]byte("hi")})) }, daoserr.NoHdl, append(closed, sx)},
			{"obj fetch", func(ctx context.Context) error { return ignore2(o2.Fetch(ctx, dkey, sv(8), buf(8))) }, daoserr.NoHdl, append(closed, sx)},
			{"obj punch", func(ctx context.Context) error { return o2.PunchAkeys(ctx, dkey, [][]byte{[]byte("sv")}) }, daoserr.NoHdl, append(closed, sx)},
			{"obj list", func(ctx context.Context) error { return ignore2(o2.ListDkeys(ctx, &Anchor{}, 10)) }, daoserr.NoHdl, append(closed, sx)},
			{"object IDs", func(ctx context.Context) error { return ignore2(h2.GenerateOID(ctx, S1, OTMultiHashed)) }, daoserr.NoHdl, closed},
			{"pool disconnect twice", func(ctx context.Context) error { return p3.Disconnect(ctx) }, daoserr.NoHdl, disc},
			{"pool query", func(ctx context.Context) error { return ignore2(p3.Query(ctx)) }, daoserr.NoHdl, disc},
			{"cont create", func(ctx context.Context) error { return ignore2(p3.ContCreate(ctx, ContCreateOptions{Label: "x"})) }, daoserr.NoHdl, disc},
			{"cont open", func(ctx context.Context) error { return ignore2(p3.ContOpen(ctx, "data", RO)) }, daoserr.NoHdl, disc},
			{"cont destroy", func(ctx context.Context) error { return p3.ContDestroy(ctx, "data") }, daoserr.NoHdl, disc},
			{"cont query", func(ctx context.Context) error { return ignore2(p3.ContProps(ctx, "data", nil)) }, daoserr.NoHdl, disc},
			{"obj update through the disconnected pool", func(ctx context.Context) error {
				return ignore2(o3.Update(ctx, dkey, sv(2), [][]byte{[]byte("hi")}))
			}, daoserr.NoHdl, append(disc, s1)},
		})
	})

	// Forged and garbage capabilities: the engines refuse them, whatever the
	// client library sends (each case on a handle of its own).
	t.Run("forged capabilities", func(t *testing.T) {
		ctx := context.Background()
		withCap := func(p *Pool, cont string, mode ctlpb.AccessFlags, oid OID, forge func(capb []byte) []byte) *Obj {
			t.Helper()
			h, err := p.ContOpen(ctx, cont, mode)
			if err != nil {
				t.Fatal(err)
			}
			forged := forge(h.capBytes())
			h.capab.Store(&forged)
			o, err := h.Obj(oid)
			if err != nil {
				t.Fatal(err)
			}
			return o
		}
		decode := func(capb []byte) (*enginepb.Capability, *enginepb.CapToken) {
			var cp enginepb.Capability
			var tok enginepb.CapToken
			if err := proto.Unmarshal(capb, &cp); err != nil {
				t.Fatal(err)
			}
			if err := proto.Unmarshal(cp.Token, &tok); err != nil {
				t.Fatal(err)
			}
			return &cp, &tok
		}
		marshal := func(m proto.Message) []byte {
			b, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		garbage := withCap(a.p, "data", RW, a.s1.OID, func([]byte) []byte { return []byte("not a capability") })
		none := withCap(a.p, "data", RW, a.s1.OID, func([]byte) []byte { return nil })
		unsigned := withCap(a.p, "data", RW, a.sx.OID, func(b []byte) []byte {
			cp, _ := decode(b)
			cp.Sig, cp.Signer = nil, ""
			return marshal(cp)
		})
		raised := withCap(a.guest, "theirs", RO, a.s1.OID, func(b []byte) []byte {
			cp, tok := decode(b) // read-only: grant write, keep the signature
			tok.Rights |= enginepb.CapWrite
			cp.Token = marshal(tok)
			return marshal(cp)
		})
		borrowed := withCap(a.guest, "theirs", RO, a.s1.OID, func([]byte) []byte { return a.h.capBytes() }) // data's read-write one
		runErrCases(t, []errCase{
			{"garbage update", func(ctx context.Context) error {
				return ignore2(garbage.Update(ctx, dkey, sv(2), [][]byte{[]byte("hi")}))
			}, daoserr.NoHdl, []string{s1, "capability"}},
			{"garbage fetch", func(ctx context.Context) error { return ignore2(garbage.Fetch(ctx, dkey, sv(8), buf(8))) }, daoserr.NoHdl, []string{s1, "capability"}},
			{"none punch", func(ctx context.Context) error { return garbage.Punch(ctx) }, daoserr.NoHdl, []string{s1}},
			{"none list", func(ctx context.Context) error { return ignore2(none.ListDkeys(ctx, &Anchor{}, 10)) }, daoserr.NoHdl, []string{s1, "handle"}},
			{"unsigned update", func(ctx context.Context) error {
				return ignore2(unsigned.Update(ctx, dkey, sv(2), [][]byte{[]byte("hi")}))
			}, daoserr.NoHdl, []string{sx, "unsigned"}},
			{"rights raised", func(ctx context.Context) error {
				return ignore2(raised.Update(ctx, dkey, sv(2), [][]byte{[]byte("hi")}))
			}, daoserr.NoHdl, []string{s1, "signature"}},
			{"rights raised punch", func(ctx context.Context) error { return raised.PunchDkeys(ctx, [][]byte{dkey}) }, daoserr.NoHdl, []string{s1, "signature"}},
			{"another container's", func(ctx context.Context) error {
				return ignore2(borrowed.Update(ctx, dkey, sv(2), [][]byte{[]byte("hi")}))
			}, daoserr.NoHdl, []string{s1, a.h.Info.Uuid}},
			{"another container's fetch", func(ctx context.Context) error { return ignore2(borrowed.Fetch(ctx, dkey, sv(8), buf(8))) }, daoserr.NoHdl, []string{s1, a.h.Info.Uuid}},
		})
	})

	// what a read-only handle may still do, and that every refusal above left
	// the data and the engines as they were
	t.Run("still served", func(t *testing.T) {
		ctx := context.Background()
		if _, err := a.theirsObj.Fetch(ctx, dkey, sv(8), buf(8)); err != nil {
			t.Errorf("fetch through a read-only handle: %v", err)
		}
		if _, err := a.theirsObj.ListDkeys(ctx, &Anchor{}, 10); err != nil {
			t.Errorf("list through a read-only handle: %v", err)
		}
		for _, o := range []*Obj{a.s1, a.sx} {
			got := [][]byte{make([]byte, 8), make([]byte, 64)}
			iods := []IOD{{Akey: []byte("sv"), Type: Single, Size: 8}, {Akey: []byte("arr"), Type: Array, Size: 8, Recxs: []Recx{{0, 8}}}}
			res, err := o.Fetch(ctx, dkey, iods, got)
			if err != nil || string(got[0]) != "12345678" || res[1].Size != 8 {
				t.Errorf("object %s after the refusals: %q %+v %v", o.OID, got[0], res, err)
			}
		}
	})
}
