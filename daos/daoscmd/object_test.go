package daoscmd

import (
	"context"
	"encoding/json"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/testsys/inproc"
)

// objFixture is a system with a pool "tank", a container "objs" and three
// objects written through the client API, as a program would have left them.
type objFixture struct {
	s1, sx, uint64Obj, unwritten, replicated placement.OID
}

func startObjects(t *testing.T) objFixture {
	t.Helper()
	s := inproc.Start(t, true)
	t.Setenv("DAOS_AGENT_DRPC_DIR", filepath.Dir(s.Agent.Socket()))
	u, _ := user.Current()
	s.CreatePool(t, "tank", u.Username)
	ctx := context.Background()
	c, err := daos.Init(ctx, daos.Options{AgentSocket: s.Agent.Socket(), Logger: inproc.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Fini() })
	p, err := c.PoolConnect(ctx, "tank", daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{"objs", "empty"} {
		if _, err := p.ContCreate(ctx, daos.ContCreateOptions{Label: label}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := p.ContOpen(ctx, "objs", daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	var f objFixture
	gen := func(class placement.ClassID, ot placement.OType) (placement.OID, *daos.Obj) {
		oid, err := h.GenerateOID(ctx, class, ot)
		if err != nil {
			t.Fatal(err)
		}
		o, err := h.Obj(oid)
		if err != nil {
			t.Fatal(err)
		}
		return oid, o
	}
	update := func(o *daos.Obj, dkey []byte, iods []daos.IOD, sgls [][]byte) {
		if _, err := o.Update(ctx, dkey, iods, sgls); err != nil {
			t.Fatal(err)
		}
	}
	var o *daos.Obj
	f.s1, o = gen(daos.S1, daos.OTMultiHashed)
	for _, dkey := range []string{"alpha", "beta"} {
		update(o, []byte(dkey), []daos.IOD{
			{Akey: []byte("name"), Type: daos.Single, Size: 5},
			{Akey: []byte("bin"), Type: daos.Single, Size: 4},
			{Akey: []byte("temps"), Type: daos.Array, Size: 2, Recxs: []daos.Recx{{Idx: 0, Nr: 3}, {Idx: 10, Nr: 2}}},
		}, [][]byte{[]byte("hello"), {0, 1, 2, 255}, []byte("t0t1t2t9tA")})
	}
	f.sx, o = gen(daos.SX, daos.OTMultiHashed)
	for _, dkey := range []string{"k1", "k2", "k3", "k4"} {
		update(o, []byte(dkey), []daos.IOD{{Akey: []byte("v"), Type: daos.Single, Size: 2}}, [][]byte{[]byte("ok")})
	}
	f.uint64Obj, o = gen(daos.S1, daos.OTDkeyUint64)
	for _, n := range []byte{0, 7} {
		update(o, []byte{n, 0, 0, 0, 0, 0, 0, 0}, []daos.IOD{{Akey: []byte("x"), Type: daos.Single, Size: 1}}, [][]byte{{'x'}})
	}
	f.unwritten, _ = gen(daos.S1, daos.OTMultiHashed)
	f.replicated = placement.MakeOID(99, 0, daos.RP2G1, daos.OTMultiHashed)
	return f
}

// TestObjectCommands: daos object query|list-keys|dump and daos cont
// list-objects on objects a program wrote; bad OIDs, missing objects, keys
// and containers; --json.
func TestObjectCommands(t *testing.T) {
	f := startObjects(t)
	s1, sx, u64, none := f.s1.String(), f.sx.String(), f.uint64Obj.String(), f.unwritten.String()
	steps := []struct {
		args []string
		rc   int
		want []string // in stdout (rc 0) or stderr
		not  []string
	}{
		{[]string{"object", "query", "tank", "objs", s1}, 0, []string{"oid: " + s1 + " ver ", "grp_nr: 1\n", "class: S1, type: MULTI_HASHED, 1 redundancy groups of 1 shards", "grp: 0\nreplica 0 rank 0 target "}, nil},
		{[]string{"obj", "query", "tank", "objs", sx}, 0, []string{"grp_nr: 2\n", "class: S2", "grp: 1\nreplica 0 rank 0 target"}, nil},
		{[]string{"object", "query", "tank", "objs", f.replicated.String()}, 0, []string{"class: RP_2G1", "1 redundancy groups of 2 shards", "replica 1 rank 0 target"}, nil},
		{[]string{"object", "query", "tank", "objs", "abc"}, 1, []string{"DER_INVAL", `bad object id "abc"`, "<hi>.<lo> in decimal"}, nil},
		{[]string{"object", "query", "tank", "objs", "1.2.3"}, 1, []string{"DER_INVAL", "bad object id"}, nil},
		{[]string{"object", "query", "tank", "objs", "1.2"}, 1, []string{"DER_INVAL", "container objs", "has no valid class"}, nil},
		{[]string{"object", "query", "tank", "objs", "18374686479671623680.1"}, 1, []string{"DER_INVAL", "object type 255"}, nil},
		{[]string{"object", "query", "tank", "nosuch", s1}, 1, []string{"DER_NONEXIST", "nosuch"}, nil},
		{[]string{"object", "query", "nopool", "objs", s1}, 1, []string{"DER_NONEXIST", "nopool"}, nil},

		{[]string{"object", "list-keys", "tank", "objs", s1}, 0, []string{"alpha\n", "beta\n"}, nil},
		{[]string{"object", "list-keys", "tank", "objs", sx}, 0, []string{"k1\n", "k2\n", "k3\n", "k4\n"}, nil},
		{[]string{"object", "list-keys", "tank", "objs", s1, "--dkey", "beta"}, 0, []string{"name\n", "bin\n", "temps\n"}, []string{"alpha"}},
		{[]string{"object", "list-keys", "tank", "objs", u64}, 0, []string{"0\n", "7\n"}, nil},
		{[]string{"object", "list-keys", "tank", "objs", u64, "--dkey", "7"}, 0, []string{"x\n"}, nil},
		{[]string{"object", "list-keys", "tank", "objs", u64, "--dkey", "seven"}, 1, []string{"DER_INVAL", "64-bit integers"}, nil},
		{[]string{"object", "list-keys", "tank", "objs", s1, "--dkey", "gamma"}, 1, []string{"DER_NONEXIST", `no dkey "gamma"`, "object " + s1, "container objs"}, nil},
		{[]string{"object", "list-keys", "tank", "objs", none}, 1, []string{"DER_NONEXIST", "object " + none + " in pool tank container objs has no dkeys", "list-objects"}, nil},
		{[]string{"object", "list-keys", "tank", "objs", f.replicated.String()}, 1, []string{"DER_NONEXIST", "has no dkeys"}, nil},
		{[]string{"object", "list-keys", "tank", "objs", "12"}, 1, []string{"DER_INVAL", "bad object id"}, nil},

		{[]string{"object", "dump", "tank", "objs", s1}, 0, []string{"object " + s1 + " (S1, MULTI_HASHED) in pool tank container objs\n",
			"dkey alpha\n  akey bin: single value, 4 bytes: 0x000102ff\n  akey name: single value, 5 bytes: \"hello\"\n  akey temps: array of 2-byte records, 2 extents\n    [0, 3): \"t0t1t2\"\n    [10, 12): \"t9tA\"\ndkey beta\n"}, nil},
		{[]string{"object", "dump", "tank", "objs", s1, "--max-bytes", "3"}, 0, []string{`5 bytes: "hel"...`, `[0, 3): "t0t"...`, `[10, 12): "t9t"...`, "0x000102..."}, nil},
		{[]string{"object", "dump", "tank", "objs", u64}, 0, []string{"(S1, DKEY_UINT64)", "dkey 0\n  akey x: single value, 1 bytes: \"x\"\ndkey 7\n"}, nil},
		{[]string{"object", "dump", "tank", "objs", sx}, 0, []string{"dkey k1\n", "dkey k4\n  akey v: single value, 2 bytes: \"ok\""}, nil},
		{[]string{"object", "dump", "tank", "objs", none}, 1, []string{"DER_NONEXIST", "object " + none + " in pool tank container objs has no dkeys"}, nil},
		{[]string{"object", "dump", "tank", "objs", "x.1"}, 1, []string{"DER_INVAL", "bad object id"}, nil},
		{[]string{"object", "dump", "tank", "empty", s1}, 1, []string{"DER_NONEXIST", "container empty"}, nil},

		{[]string{"cont", "list-objects", "tank", "objs"}, 0, []string{s1 + "\n", sx + "\n", u64 + "\n"}, []string{none}},
		{[]string{"cont", "list-obj", "tank", "empty"}, 0, []string{"Container empty has no objects."}, nil},
		{[]string{"cont", "list-objects", "tank", "nosuch"}, 1, []string{"DER_NONEXIST", "nosuch"}, nil},
	}
	for _, st := range steps {
		t.Run(strings.Join(st.args, " "), func(t *testing.T) {
			out, errs, rc := run(t, st.args...)
			if rc != st.rc {
				t.Fatalf("rc %d, want %d\nstdout: %s\nstderr: %s", rc, st.rc, out, errs)
			}
			got := out
			if rc != 0 {
				got = errs
			}
			for _, w := range st.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			for _, w := range st.not {
				if strings.Contains(got, w) {
					t.Errorf("output has %q:\n%s", w, got)
				}
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		var q struct {
			Response objLayout `json:"response"`
			Status   int       `json:"status"`
		}
		out, _, rc := run(t, "-j", "object", "query", "tank", "objs", sx)
		if err := json.Unmarshal([]byte(out), &q); err != nil || rc != 0 || q.Response.OID != sx || q.Response.Class != "S2" ||
			q.Response.Groups != 2 || len(q.Response.Shards) != 2 || len(q.Response.Shards[1].Replicas) != 1 {
			t.Fatalf("query: rc %d %v %s", rc, err, out)
		}
		var keys struct {
			Response struct {
				OID   string   `json:"oid"`
				Dkeys []string `json:"dkeys"`
				Akeys []string `json:"akeys"`
			} `json:"response"`
		}
		out, _, rc = run(t, "-j", "object", "list-keys", "tank", "objs", u64)
		if err := json.Unmarshal([]byte(out), &keys); err != nil || rc != 0 || strings.Join(keys.Response.Dkeys, ",") != "0,7" {
			t.Fatalf("list-keys: rc %d %v %s", rc, err, out)
		}
		out, _, rc = run(t, "-j", "object", "list-keys", "tank", "objs", s1, "--dkey", "alpha")
		if err := json.Unmarshal([]byte(out), &keys); err != nil || rc != 0 || len(keys.Response.Akeys) != 3 {
			t.Fatalf("list-keys --dkey: rc %d %v %s", rc, err, out)
		}
		var dump struct {
			Response struct {
				OID    string     `json:"oid"`
				Class  string     `json:"class"`
				Values []dumpAkey `json:"values"`
			} `json:"response"`
		}
		out, _, rc = run(t, "-j", "object", "dump", "tank", "objs", s1)
		if err := json.Unmarshal([]byte(out), &dump); err != nil || rc != 0 || dump.Response.Class != "S1" || len(dump.Response.Values) != 6 {
			t.Fatalf("dump: rc %d %v %s", rc, err, out)
		}
		bin, temps := dump.Response.Values[0], dump.Response.Values[2]
		if bin.Dkey != "alpha" || bin.Akey != "bin" || bin.Type != "single" || bin.Size != 4 || bin.Data.Encoding != "hex" || bin.Data.Value != "000102ff" {
			t.Fatalf("dump of bin: %+v", bin)
		}
		if temps.Type != "array" || temps.Size != 2 || len(temps.Extents) != 2 || temps.Extents[1].Idx != 10 || temps.Extents[1].Nr != 2 ||
			temps.Extents[1].Value != "t9tA" || temps.Extents[1].Epoch == 0 {
			t.Fatalf("dump of temps: %+v", temps)
		}
		var objs struct {
			Response []string `json:"response"`
		}
		out, _, rc = run(t, "-j", "cont", "list-objects", "tank", "objs")
		if err := json.Unmarshal([]byte(out), &objs); err != nil || rc != 0 || len(objs.Response) != 3 {
			t.Fatalf("list-objects: rc %d %v %s", rc, err, out)
		}
		var fail struct {
			Error  string `json:"error"`
			Status int    `json:"status"`
		}
		out, _, rc = run(t, "-j", "object", "list-keys", "tank", "objs", none)
		if err := json.Unmarshal([]byte(out), &fail); err != nil || rc != 1 || fail.Status != -1005 || !strings.Contains(fail.Error, none) {
			t.Fatalf("list-keys of a missing object: rc %d %v %s", rc, err, out)
		}
	})
}
