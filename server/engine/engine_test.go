package engine

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security/capability"
	"github.com/godaos/godaos/server/vos"
)

var (
	tPool = vos.UUIDFromUint64(0x9001)
	tCont = vos.UUIDFromUint64(0xc001)
)

type testEngine struct {
	e      *Engine
	opts   Options
	addr   string
	cl     *rpc.Client
	signer crypto.Signer // seals the servers' requests (nil: unsigned, insecure)
}

// sealed is hdr as a server sends it for op.
func (te *testEngine) sealed(op uint16, hdr []byte) []byte {
	if !enginepb.ServerOps[op] {
		return hdr
	}
	b, err := capability.Seal(te.signer, op, hdr)
	if err != nil {
		panic(err)
	}
	return b
}

func startEngine(t *testing.T, opts Options) *testEngine {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.Serve(l)
	cl, err := rpc.Dial(context.Background(), l.Addr().String(), rpc.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	te := &testEngine{e: e, opts: opts, addr: l.Addr().String(), cl: cl}
	t.Cleanup(te.stop)
	return te
}

// restart stops the engine and opens it again on the same storage and
// address, as a restarted server does (what it kept is what it logged).
func (te *testEngine) restart(t *testing.T) {
	t.Helper()
	te.stop()
	e, err := Open(te.opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", te.addr)
	if err != nil {
		t.Fatal(err)
	}
	go e.Serve(l)
	cl, err := rpc.Dial(context.Background(), te.addr, rpc.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	te.e, te.cl = e, cl
}

func (te *testEngine) stop() {
	if te.e == nil {
		return
	}
	te.cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	te.e.Shutdown(ctx)
	te.e = nil
}

func (te *testEngine) call(t *testing.T, op uint16, tgt uint32, m proto.Message, bulk []byte, recv []byte) (rpc.Reply, error) {
	t.Helper()
	hdr, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var b [][]byte
	if bulk != nil {
		b = [][]byte{bulk}
	}
	var r [][]byte
	if recv != nil {
		r = [][]byte{recv}
	}
	return te.cl.Call(context.Background(), rpc.Message{Opcode: op, Target: tgt, Header: te.sealed(op, hdr), Bulk: b}, r)
}

func (te *testEngine) mustCall(t *testing.T, op uint16, tgt uint32, m proto.Message, bulk []byte) {
	t.Helper()
	if _, err := te.call(t, op, tgt, m, bulk, nil); err != nil {
		t.Fatalf("opcode %d target %d: %v", op, tgt, err)
	}
}

func engineOpts(t *testing.T) Options {
	dir := t.TempDir()
	return Options{Rank: 3, Targets: 4, ScmDir: filepath.Join(dir, "scm"), BdevDir: filepath.Join(dir, "bdev")}
}

// createPool makes the pool's VOS instance on every target and a container on each.
func (te *testEngine) createPool(t *testing.T) {
	t.Helper()
	for tgt := range uint32(te.opts.Targets) {
		te.mustCall(t, enginepb.OpTargetCreate, tgt, &enginepb.TargetCreateReq{Pool: tPool[:], ScmSize: 64 << 20, NvmeSize: 64 << 20}, nil)
		te.mustCall(t, enginepb.OpContCreate, tgt, &enginepb.ContCreateReq{Pool: tPool[:], Cont: tCont[:]}, nil)
	}
}

// ioReq is an update or fetch of the latest (the engine stamps updates).
func ioReq(dkey string, iods ...*enginepb.IOD) *enginepb.ObjIOReq {
	return &enginepb.ObjIOReq{Pool: tPool[:], Cont: tCont[:], Oid: &enginepb.OID{Lo: 7}, Dkey: []byte(dkey), Iods: iods,
		Cap: testCap(nil, tPool, tCont, enginepb.CapRead|enginepb.CapWrite, time.Hour)}
}

// testCap is a capability for pool and container, signed by signer (nil:
// unsigned, as an insecure system's are), valid for ttl.
func testCap(signer crypto.Signer, pool, cont vos.UUID, rights uint32, ttl time.Duration) []byte {
	h := vos.UUIDFromUint64(0x4a4d)
	b, err := capability.Issue(signer, &enginepb.CapToken{Handle: h[:], Pool: pool[:], Cont: cont[:], Rights: rights, Expires: time.Now().Add(ttl).Unix()})
	if err != nil {
		panic(err)
	}
	return b
}

func TestUpdateFetchOverRPC(t *testing.T) {
	te := startEngine(t, engineOpts(t))
	te.createPool(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB: NVMe tier
	sv := &enginepb.IOD{Akey: []byte("sv"), Type: uint32(vos.IODSingle), Size: 5}
	arr := &enginepb.IOD{Akey: []byte("arr"), Type: uint32(vos.IODArray), Size: 1, Recxs: []*enginepb.Recx{{Idx: 0, Nr: uint64(len(big))}}}
	te.mustCall(t, enginepb.OpObjUpdate, 2, ioReq("d", sv, arr), append([]byte("hello"), big...))

	recv := make([]byte, 5+len(big)+10)
	arrHole := &enginepb.IOD{Akey: []byte("arr"), Type: uint32(vos.IODArray), Size: 1, Recxs: []*enginepb.Recx{{Idx: uint64(len(big)) - 6, Nr: 16}}}
	r, err := te.call(t, enginepb.OpObjFetch, 2, ioReq("d", sv, arrHole), nil, recv)
	if err != nil {
		t.Fatal(err)
	}
	var rep enginepb.ObjFetchRep
	if err := proto.Unmarshal(r.Header, &rep); err != nil {
		t.Fatal(err)
	}
	if r.Bulk != 21 || string(recv[:5]) != "hello" || !bytes.Equal(recv[5:11], big[len(big)-6:]) || !bytes.Equal(recv[11:21], make([]byte, 10)) {
		t.Errorf("fetched %d bytes: %q", r.Bulk, recv[:r.Bulk])
	}
	if len(rep.Results) != 2 || rep.Results[0].Size != 5 || rep.Results[1].Size != 1 ||
		len(rep.Results[1].Extents) != 1 || rep.Results[1].Extents[0].Nr != 6 {
		t.Errorf("results %v", rep.Results)
	}
	// the same dkey on another target is another VOS instance: nothing there
	r, err = te.call(t, enginepb.OpObjFetch, 1, ioReq("d", sv), nil, make([]byte, 5))
	if err != nil {
		t.Fatal(err)
	}
	proto.Unmarshal(r.Header, &rep)
	if rep.Results[0].Size != 0 {
		t.Errorf("target 1 has the value written to target 2: %v", rep.Results)
	}
}

func TestEngineErrors(t *testing.T) {
	te := startEngine(t, engineOpts(t))
	te.createPool(t)
	other := vos.UUIDFromUint64(0xdead)
	sv := &enginepb.IOD{Akey: []byte("a"), Type: uint32(vos.IODSingle), Size: 3}
	tests := []struct {
		name     string
		op       uint16
		tgt      uint32
		hdr      []byte
		bulk     []byte
		code     daoserr.Code
		contains string
	}{
		{"unknown pool", enginepb.OpObjUpdate, 0, mustMarshal(&enginepb.ObjIOReq{Pool: other[:], Cont: tCont[:], Oid: &enginepb.OID{}, Dkey: []byte("d"), Iods: []*enginepb.IOD{sv},
			Cap: testCap(nil, other, tCont, enginepb.CapWrite, time.Hour)}), []byte("abc"),
			daoserr.Nonexist, "pool " + other.String() + " has no storage on rank 3 target 0"},
		{"garbage header", enginepb.OpObjUpdate, 0, []byte{0xff, 0xff, 0xff}, nil, daoserr.Proto, "bad message header"},
		{"short uuid", enginepb.OpContCreate, 0, mustMarshal(&enginepb.ContCreateReq{Pool: []byte{1, 2}}), nil, daoserr.Inval, "pool uuid of 2 bytes"},
		{"bulk shorter than the IODs", enginepb.OpObjUpdate, 1, mustMarshal(ioReq("d", sv)), []byte("ab"), daoserr.IOInval, "describe more than the 2 bulk bytes"},
		{"bulk longer than the IODs", enginepb.OpObjUpdate, 1, mustMarshal(ioReq("d", sv)), []byte("abcd"), daoserr.IOInval, "4 bulk bytes sent, the IODs describe 3"},
		{"unknown container", enginepb.OpObjUpdate, 1, mustMarshal(&enginepb.ObjIOReq{Pool: tPool[:], Cont: other[:], Oid: &enginepb.OID{}, Dkey: []byte("d"), Iods: []*enginepb.IOD{sv},
			Cap: testCap(nil, tPool, other, enginepb.CapWrite, time.Hour)}), []byte("abc"),
			daoserr.Nonexist, "container " + other.String()},
		{"VOS error comes through", enginepb.OpObjUpdate, 1, mustMarshal(ioReq("", sv)), []byte("abc"), daoserr.Inval, "dkey"},
		{"update naming its epoch", enginepb.OpObjUpdate, 1, mustMarshal(func() *enginepb.ObjIOReq { m := ioReq("d", sv); m.Epoch = 1 << 62; return m }()), []byte("abc"), daoserr.Inval, "names epoch"},
		{"huge extent", enginepb.OpObjFetch, 1, mustMarshal(ioReq("d", &enginepb.IOD{Akey: []byte("x"), Type: uint32(vos.IODArray), Size: 1 << 20, Recxs: []*enginepb.Recx{{Nr: 1 << 40}}})), nil,
			daoserr.Rec2Big, "too large"},
		{"no such target", enginepb.OpObjFetch, 9, nil, nil, daoserr.BadTarget, "target 9 does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var bulk [][]byte
			if tc.bulk != nil {
				bulk = [][]byte{tc.bulk}
			}
			_, err := te.cl.Call(context.Background(), rpc.Message{Opcode: tc.op, Target: tc.tgt, Header: te.sealed(tc.op, tc.hdr), Bulk: bulk}, nil)
			if !daoserr.Is(err, tc.code) || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("got %v, want %s containing %q", err, tc.code, tc.contains)
			}
		})
	}
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// A restarted engine serves its pools and their data again; a destroyed pool
// target is gone from disk.
func TestRestartAndDestroy(t *testing.T) {
	opts := engineOpts(t)
	te := startEngine(t, opts)
	te.createPool(t)
	sv := &enginepb.IOD{Akey: []byte("a"), Type: uint32(vos.IODSingle), Size: 8}
	for tgt := range uint32(4) {
		te.mustCall(t, enginepb.OpObjUpdate, tgt, ioReq("d", sv), []byte(fmt.Sprintf("target-%d", tgt)))
	}
	te.stop()

	te = startEngine(t, opts)
	if pools := te.e.Pools(); len(pools) != 1 || pools[0] != tPool {
		t.Fatalf("pools after restart: %v", pools)
	}
	for tgt := range uint32(4) {
		recv := make([]byte, 8)
		if _, err := te.call(t, enginepb.OpObjFetch, tgt, ioReq("d", sv), nil, recv); err != nil || string(recv) != fmt.Sprintf("target-%d", tgt) {
			t.Errorf("target %d after restart: %q, %v", tgt, recv, err)
		}
	}
	r, err := te.call(t, enginepb.OpTargetQuery, 0, &enginepb.TargetDestroyReq{Pool: tPool[:]}, nil, nil)
	var q enginepb.TargetQueryRep
	if err != nil || proto.Unmarshal(r.Header, &q) != nil || q.ScmTotal != 64<<20 || q.NvmeTotal != 64<<20 || q.ScmUsed == 0 {
		t.Errorf("query: %v %v", &q, err)
	}

	for tgt := range uint32(4) {
		te.mustCall(t, enginepb.OpTargetDestroy, tgt, &enginepb.TargetDestroyReq{Pool: tPool[:]}, nil)
		te.mustCall(t, enginepb.OpTargetDestroy, tgt, &enginepb.TargetDestroyReq{Pool: tPool[:]}, nil) // again: idempotent
	}
	for _, d := range []string{opts.ScmDir, opts.BdevDir} {
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Errorf("left in %s after destroy: %v", d, ents)
		}
	}
	if _, err := te.call(t, enginepb.OpObjFetch, 0, ioReq("d", sv), nil, make([]byte, 8)); !daoserr.Is(err, daoserr.Nonexist) {
		t.Errorf("fetch from a destroyed pool: %v", err)
	}
}

// Clients writing to different targets at once (race detector).
func TestTargetsInParallel(t *testing.T) {
	te := startEngine(t, engineOpts(t))
	te.createPool(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			tgt := uint32(g % 4)
			for i := range 50 {
				val := []byte(fmt.Sprintf("g%02d-i%03d", g, i))
				iod := &enginepb.IOD{Akey: []byte("a"), Type: uint32(vos.IODSingle), Size: uint64(len(val))}
				dkey := fmt.Sprintf("g%d-%d", g, i)
				if _, err := te.call(t, enginepb.OpObjUpdate, tgt, ioReq(dkey, iod), val, nil); err != nil {
					t.Error(err)
					return
				}
				recv := make([]byte, len(val))
				if _, err := te.call(t, enginepb.OpObjFetch, tgt, ioReq(dkey, iod), nil, recv); err != nil || !bytes.Equal(recv, val) {
					t.Errorf("read back %q, %v; want %q", recv, err, val)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A fetch's reply buffer is reused: what VOS does not fill (a missing value, a
// shorter one) must read as zeros, never as an earlier reply's bytes.
func TestFetchDoesNotLeakEarlierReplies(t *testing.T) {
	te := startEngine(t, engineOpts(t))
	te.createPool(t)
	secret := bytes.Repeat([]byte("S"), 4000)
	big := &enginepb.IOD{Akey: []byte("secret"), Type: uint32(vos.IODSingle), Size: uint64(len(secret))}
	te.mustCall(t, enginepb.OpObjUpdate, 0, ioReq("d", big), secret)
	short := &enginepb.IOD{Akey: []byte("short"), Type: uint32(vos.IODSingle), Size: 3}
	te.mustCall(t, enginepb.OpObjUpdate, 0, ioReq("d", short), []byte("abc"))
	for range 20 {
		if _, err := te.call(t, enginepb.OpObjFetch, 0, ioReq("d", big), nil, make([]byte, len(secret))); err != nil {
			t.Fatal(err)
		}
		missing := &enginepb.IOD{Akey: []byte("missing"), Type: uint32(vos.IODSingle), Size: uint64(len(secret))}
		longer := &enginepb.IOD{Akey: []byte("short"), Type: uint32(vos.IODSingle), Size: uint64(len(secret))}
		recv := make([]byte, 2*len(secret))
		if _, err := te.call(t, enginepb.OpObjFetch, 0, ioReq("d", missing, longer), nil, recv); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(recv, []byte("S")) || !bytes.Equal(recv[len(secret):len(secret)+3], []byte("abc")) || bytes.Count(recv, []byte{0}) != len(recv)-3 {
			t.Fatalf("reply carries bytes that were not fetched: %q...", recv[:16])
		}
	}
}
