package ddb

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godaos/godaos/server/vos"
)

// fixture is a target with known content, closed and ready for ddb.
type fixture struct {
	dir    string
	cont   vos.UUID
	oid    vos.OID // hashed keys: text dkeys and akeys
	intOID vos.OID // integer dkeys
	big    []byte  // array "big": 70000 one-byte records, in the NVMe tier and above the redo-log size
	small  []byte  // array "small": 100 records, in the SCM tier
	bin    []byte  // single value under akey 0x00ff, binary, NVMe tier
}

func (f *fixture) path(parts ...string) string {
	return "/" + f.cont.String() + strings.Join(append([]string{""}, parts...), "/")
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i+int(seed))%26
	}
	return b
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		dir:    filepath.Join(t.TempDir(), "tgt"),
		oid:    vos.OID{Hi: 1, Lo: 2},
		intOID: vos.OID{Hi: uint64(vos.ObjDkeyUint64) << 56, Lo: 7},
		big:    pattern(70000, 0),
		small:  pattern(100, 3),
		bin:    make([]byte, 5000),
	}
	for i := range f.bin {
		f.bin[i] = byte(i * 7)
	}
	var err error
	if f.cont, err = vos.ParseUUID("12345678-1234-1234-1234-123456789abc"); err != nil {
		t.Fatal(err)
	}
	if err := vos.Format(f.dir, vos.FormatOptions{ScmSize: 64 << 20, NvmeSize: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	p, err := vos.Open(f.dir, vos.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(p.CreateContainer(f.cont, vos.ContOptions{}))
	single := func(akey string, v []byte) vos.IOD {
		return vos.IOD{Akey: []byte(akey), Type: vos.IODSingle, Size: uint64(len(v))}
	}
	array := func(akey string, v []byte) vos.IOD {
		return vos.IOD{Akey: []byte(akey), Type: vos.IODArray, Size: 1, Recxs: []vos.Recx{{Idx: 0, Nr: uint64(len(v))}}}
	}
	must(p.Update(f.cont, f.oid, 5, 0, []byte("dkey1"),
		[]vos.IOD{single("sv", []byte("hello world")), array("small", f.small), array("big", f.big), single("\x00\xff", f.bin)},
		[]vos.SGL{{[]byte("hello world")}, {f.small}, {f.big}, {f.bin}}))
	must(p.Update(f.cont, f.oid, 10, 0, []byte("dkey1"),
		[]vos.IOD{single("sv", []byte("hello again"))}, []vos.SGL{{[]byte("hello again")}}))
	must(p.Update(f.cont, f.oid, 5, 0, []byte("dkey2"),
		[]vos.IOD{single("a", []byte("x"))}, []vos.SGL{{[]byte("x")}}))
	must(p.Update(f.cont, f.intOID, 5, 0, binary.LittleEndian.AppendUint64(nil, 42),
		[]vos.IOD{single("v", []byte("int"))}, []vos.SGL{{[]byte("int")}}))
	return f
}

// run runs ddb and returns its exit status, stdout and stderr, checking what
// every run must satisfy: no panic, no stack trace, at most one error line.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(args, &out, &errb)
	if s := errb.String(); strings.Contains(s, "goroutine ") || strings.Contains(s, "panic") {
		t.Fatalf("ddb %v: stack trace on stderr:\n%s", args, s)
	}
	if n := strings.Count(errb.String(), "\n"); n > 1 {
		t.Errorf("ddb %v: %d lines on stderr, want at most one:\n%s", args, n, errb.String())
	}
	return code, out.String(), errb.String()
}

type cmdCase struct {
	name    string
	args    []string
	code    int
	out     []string // substrings of stdout
	notOut  []string // must not be in stdout
	errText []string // substrings of stderr
}

func runCases(t *testing.T, cases []cmdCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run(t, tc.args...)
			if code != tc.code {
				t.Fatalf("ddb %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", tc.args, code, tc.code, out, errs)
			}
			for _, s := range tc.out {
				if !strings.Contains(out, s) {
					t.Errorf("ddb %v: stdout lacks %q:\n%s", tc.args, s, out)
				}
			}
			for _, s := range tc.notOut {
				if strings.Contains(out, s) {
					t.Errorf("ddb %v: stdout has %q:\n%s", tc.args, s, out)
				}
			}
			for _, s := range tc.errText {
				if !strings.Contains(errs, s) {
					t.Errorf("ddb %v: stderr lacks %q:\n%s", tc.args, s, errs)
				}
			}
			if code == ExitError && errs == "" {
				t.Errorf("ddb %v: failed without a message on stderr", tc.args)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	f := newFixture(t)
	d := f.dir
	intObj := f.intOID.String()
	runCases(t, []cmdCase{
		{name: "ls root", args: []string{d, "ls"}, out: []string{f.cont.String()}},
		{name: "ls root slash", args: []string{d, "ls", "/"}, out: []string{f.cont.String()}},
		{name: "ls container", args: []string{d, "ls", f.path()}, out: []string{"1.2\n", intObj + "\n"}},
		{name: "ls object", args: []string{d, "ls", f.path("1.2")}, out: []string{"dkey1\n", "dkey2\n"}},
		{name: "ls dkey", args: []string{d, "ls", f.path("1.2", "dkey1")},
			out: []string{"sv\n", "small\n", "big\n", "0x00ff\n"}},
		{name: "ls array akey", args: []string{d, "ls", f.path("1.2", "dkey1", "big")},
			out: []string{"KIND", "extent", "[0, 70000)", "nvme"}},
		{name: "ls small array akey", args: []string{d, "ls", f.path("1.2", "dkey1", "small")},
			out: []string{"extent", "[0, 100)", "scm"}, notOut: []string{"nvme"}},
		{name: "ls single akey", args: []string{d, "ls", f.path("1.2", "dkey1", "sv")},
			out: []string{"single  5", "single  10"}},
		{name: "ls single akey at epoch", args: []string{d, "ls", "--epoch", "7", f.path("1.2", "dkey1", "sv")},
			out: []string{"single  5"}, notOut: []string{"single  10"}},
		{name: "ls before any write", args: []string{d, "ls", "--epoch", "3", f.path()}, notOut: []string{"1.2"}},
		{name: "ls integer dkeys", args: []string{d, "ls", f.path(intObj)}, out: []string{"u64:42\n"}},
		{name: "ls integer dkey", args: []string{d, "ls", f.path(intObj, "u64:42")}, out: []string{"v\n"}},
		{name: "ls integer dkey as hex", args: []string{d, "ls", f.path(intObj, "0x2a00000000000000")}, out: []string{"v\n"}},
		{name: "ls recursive", args: []string{d, "ls", "-r", "/"},
			out: []string{f.path("1.2", "dkey1", "big") + "  (array)", f.path("1.2", "dkey2", "a") + "  (single)",
				f.path(intObj, "u64:42", "v"), "[0, 70000)"}},
		{name: "ls recursive subtree", args: []string{d, "ls", "-r", f.path("1.2", "dkey2")},
			out: []string{f.path("1.2", "dkey2", "a")}, notOut: []string{"dkey1"}},

		{name: "dump single latest", args: []string{d, "dump", f.path("1.2", "dkey1", "sv")},
			out: []string{"single value, 11 bytes", "hello again"}},
		{name: "dump single old epoch", args: []string{d, "dump", "--epoch", "5", f.path("1.2", "dkey1", "sv")},
			out: []string{"hello world"}, notOut: []string{"hello again"}},
		{name: "dump small array", args: []string{d, "dump", f.path("1.2", "dkey1", "small")},
			out: []string{"extent [0, 100) epoch 5", string(f.small)}},
		{name: "dump binary as hexdump", args: []string{d, "dump", f.path("1.2", "dkey1", "0x00ff")},
			out: []string{"5000 bytes", "00000000  00 07 0e 15"}},

		{name: "verify clean", args: []string{d, "verify"}, out: []string{"no damage found"}},
		{name: "space", args: []string{d, "space"}, out: []string{"SCM", "NVMe", "64.0 MiB (67108864)"}},
		{name: "usage alias", args: []string{d, "usage"}, out: []string{"NVMe"}},
		{name: "superblock", args: []string{d, "superblock"},
			out: []string{"data_thresh:", "4.0 KiB (4096)", filepath.Join(d, "data"), "containers:   1"}},
		{name: "log", args: []string{d, "log"},
			out: []string{"checkpoint: none", "wal-", "cont-create=1", "update=4", "replays 5 records"}},

		// bad input: one clear line, exit 2, never a panic
		{name: "bad uuid", args: []string{d, "ls", "/not-a-uuid"}, code: ExitError, errText: []string{"uuid", "not-a-uuid"}},
		{name: "bad oid", args: []string{d, "ls", f.path("xyz")}, code: ExitError, errText: []string{"object id", "HI.LO"}},
		{name: "bad hex key", args: []string{d, "ls", f.path("1.2", "0xzz")}, code: ExitError, errText: []string{"not valid hex"}},
		{name: "bad u64 key", args: []string{d, "ls", f.path("1.2", "u64:-1")}, code: ExitError, errText: []string{"u64:N"}},
		{name: "too deep", args: []string{d, "ls", f.path("1.2", "a", "b", "c")}, code: ExitError, errText: []string{"at most 4"}},
		{name: "empty component", args: []string{d, "ls", "/" + f.cont.String() + "//x"}, code: ExitError, errText: []string{"empty component"}},
		{name: "missing container", args: []string{d, "ls", "/" + vos.UUIDFromUint64(9).String()}, code: ExitError, errText: []string{"DER_NONEXIST"}},
		{name: "missing object", args: []string{d, "ls", f.path("9.9")}, code: ExitError, errText: []string{"DER_NONEXIST", "9.9"}},
		{name: "missing dkey", args: []string{d, "ls", f.path("1.2", "nope")}, code: ExitError, errText: []string{"DER_NONEXIST", "nope"}},
		{name: "missing akey", args: []string{d, "ls", f.path("1.2", "dkey1", "nope")}, code: ExitError, errText: []string{"DER_NONEXIST"}},
		{name: "dump needs akey", args: []string{d, "dump", f.path("1.2")}, code: ExitError, errText: []string{"akey path"}},
		{name: "dump punched epoch", args: []string{d, "dump", "--epoch", "3", f.path("1.2", "dkey1", "sv")}, code: ExitError, errText: []string{"no value visible"}},
		{name: "bad epoch", args: []string{d, "ls", "--epoch", "soon"}, code: ExitError, errText: []string{"epoch"}},
		{name: "unknown command", args: []string{d, "frobnicate"}, code: ExitError, errText: []string{"frobnicate"}},
		{name: "missing target dir", args: []string{filepath.Join(d, "nope"), "ls"}, code: ExitError, errText: []string{"does not exist"}},
		{name: "target is a file", args: []string{filepath.Join(d, "superblock.json"), "ls"}, code: ExitError, errText: []string{"not a directory"}},
		{name: "unformatted dir", args: []string{t.TempDir(), "verify"}, code: ExitError, errText: []string{"not a formatted VOS target"}},
		{name: "unformatted dir log", args: []string{t.TempDir(), "log"}, code: ExitError, errText: []string{"not a formatted VOS target"}},
		{name: "rm whole target", args: []string{d, "rm", "/"}, code: ExitError, errText: []string{"refusing"}},
	})
}

func TestDumpOut(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		akey string
		want []byte
	}{
		{"big", f.big},
		{"small", f.small},
		{"0x00ff", f.bin},
		{"sv", []byte("hello again")},
	} {
		t.Run(tc.akey, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "value")
			code, stdout, stderr := run(t, f.dir, "dump", "--out", out, f.path("1.2", "dkey1", tc.akey))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("dumped %d bytes, want the %d written", len(got), len(tc.want))
			}
			if !strings.Contains(stdout, "wrote") {
				t.Errorf("stdout: %q", stdout)
			}
		})
	}
	t.Run("failed dump leaves no file", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "value")
		if code, _, _ := run(t, f.dir, "dump", "--out", out, f.path("1.2", "dkey1", "nope")); code != ExitError {
			t.Fatalf("exit %d", code)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("output file left behind: %v", err)
		}
	})
}

// decodeJSON runs ddb --json and decodes its envelope's response into resp.
func decodeJSON(t *testing.T, resp any, args ...string) (int, envelope) {
	t.Helper()
	code, out, _ := run(t, append([]string{"--json"}, args...)...)
	env := envelope{Response: resp}
	if err := json.Unmarshal([]byte(out), &env); err != nil {
		t.Fatalf("ddb --json %v: bad JSON (%v):\n%s", args, err, out)
	}
	return code, env
}

func TestJSON(t *testing.T) {
	f := newFixture(t)
	t.Run("ls records at epoch", func(t *testing.T) {
		var res lsResult
		decodeJSON(t, &res, f.dir, "ls", "--epoch", "7", f.path("1.2", "dkey1", "sv"))
		if len(res.Records) != 1 || res.Records[0].Epoch != 5 || res.ValueType != "single" {
			t.Fatalf("records %+v type %q", res.Records, res.ValueType)
		}
	})
	t.Run("ls big extent offset", func(t *testing.T) {
		var res lsResult
		decodeJSON(t, &res, f.dir, "ls", f.path("1.2", "dkey1", "big"))
		r := res.Records
		if len(r) != 1 || r[0].Tier != "nvme" || r[0].Offset == nil || r[0].Recx == nil || r[0].Recx.Nr != 70000 {
			t.Fatalf("records %+v", r)
		}
	})
	t.Run("ls recursive tree", func(t *testing.T) {
		var res lsResult
		decodeJSON(t, &res, f.dir, "ls", "-r")
		if len(res.Entries) != 1 || len(res.Entries[0].Children) != 2 {
			t.Fatalf("entries %+v", res.Entries)
		}
	})
	t.Run("dump array data", func(t *testing.T) {
		var res dumpResult
		decodeJSON(t, &res, f.dir, "dump", f.path("1.2", "dkey1", "big"))
		if len(res.Extents) != 1 || !bytes.Equal(res.Extents[0].Data, f.big) || res.RecordSize != 1 {
			t.Fatalf("got %d extents", len(res.Extents))
		}
	})
	t.Run("dump single data", func(t *testing.T) {
		var res dumpResult
		decodeJSON(t, &res, f.dir, "dump", f.path("1.2", "dkey1", "0x00ff"))
		if !bytes.Equal(res.Data, f.bin) {
			t.Fatalf("got %d bytes", len(res.Data))
		}
	})
	t.Run("space", func(t *testing.T) {
		var res spaceResult
		decodeJSON(t, &res, f.dir, "space")
		if res.NVMe.Total != 64<<20 || res.NVMe.Used == 0 || res.NVMe.Free != res.NVMe.Total-res.NVMe.Used || res.SCM.Used == 0 {
			t.Fatalf("space %+v", res)
		}
	})
	t.Run("log", func(t *testing.T) {
		var res logResult
		decodeJSON(t, &res, f.dir, "log")
		if len(res.Segments) == 0 || res.Segments[0].Ops["update"] != 4 || res.Open == nil {
			t.Fatalf("log %+v", res)
		}
	})
	t.Run("error envelope", func(t *testing.T) {
		code, env := decodeJSON(t, nil, f.dir, "ls", f.path("9.9"))
		if code != ExitError || env.Error == nil || env.Status != -1005 {
			t.Fatalf("exit %d envelope %+v", code, env)
		}
	})
}

// corrupt flips bytes of the NVMe extent of akey "big" in the data file.
func corrupt(t *testing.T, f *fixture) {
	t.Helper()
	p, err := vos.Open(f.dir, vos.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := p.AkeyRecords(f.cont, f.oid, []byte("dkey1"), []byte("big"))
	dataFile := p.Query().DataFile
	p.Close()
	if err != nil || len(recs) != 1 || recs[0].Tier != "nvme" {
		t.Fatalf("records of big: %+v, %v", recs, err)
	}
	df, err := os.OpenFile(dataFile, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	if _, err := df.WriteAt([]byte("CORRUPT"), int64(recs[0].Off)+100); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyDamage(t *testing.T) {
	f := newFixture(t)
	corrupt(t, f)
	big := f.path("1.2", "dkey1", "big")
	runCases(t, []cmdCase{
		{name: "verify reports damage", args: []string{f.dir, "verify"}, code: ExitDamage,
			out: []string{"DAMAGE " + big + " epoch 5", "DER_CSUM", "1 damaged"}, notOut: []string{"dkey1/sv "}},
		{name: "dump fails with csum error", args: []string{f.dir, "dump", big}, code: ExitError, errText: []string{"DER_CSUM"}},
		{name: "other values still dump", args: []string{f.dir, "dump", f.path("1.2", "dkey1", "small")}, out: []string{string(f.small)}},
	})
	t.Run("json", func(t *testing.T) {
		var res verifyResult
		code, _ := decodeJSON(t, &res, f.dir, "verify")
		if code != ExitDamage || res.Damaged != 1 || res.Damage[0].Path != big || res.Checked < 5 {
			t.Fatalf("exit %d result %+v", code, res)
		}
	})
	t.Run("rm repairs", func(t *testing.T) {
		if code, _, errs := run(t, f.dir, "rm", big); code != 0 {
			t.Fatalf("rm: exit %d: %s", code, errs)
		}
		if code, out, _ := run(t, f.dir, "verify"); code != 0 || !strings.Contains(out, "no damage") {
			t.Fatalf("verify after rm: exit %d:\n%s", code, out)
		}
	})
}

func TestRm(t *testing.T) {
	f := newFixture(t)
	d := f.dir
	runCases(t, []cmdCase{
		{name: "rm dkey", args: []string{d, "rm", f.path("1.2", "dkey2")}, out: []string{"removed dkey " + f.path("1.2", "dkey2")}},
		{name: "dkey gone", args: []string{d, "ls", f.path("1.2")}, out: []string{"dkey1"}, notOut: []string{"dkey2"}},
		{name: "rm dkey again", args: []string{d, "rm", f.path("1.2", "dkey2")}, code: ExitError, errText: []string{"DER_NONEXIST", "--force"}},
		{name: "rm dkey again forced", args: []string{d, "rm", "-f", f.path("1.2", "dkey2")}, out: []string{"removed"}},
		{name: "rm akey", args: []string{d, "rm", f.path("1.2", "dkey1", "small")}, out: []string{"removed akey"}},
		{name: "akey gone", args: []string{d, "ls", f.path("1.2", "dkey1")}, out: []string{"big"}, notOut: []string{"small"}},
		{name: "rm object", args: []string{d, "rm", f.path(f.intOID.String())}, out: []string{"removed object"}},
		{name: "object gone", args: []string{d, "ls", f.path()}, out: []string{"1.2"}, notOut: []string{f.intOID.String()}},
		{name: "space after rm", args: []string{d, "verify"}, out: []string{"no damage"}},
		{name: "rm container", args: []string{d, "rm", f.path()}, out: []string{"removed container"}},
		{name: "container gone", args: []string{d, "ls"}, notOut: []string{f.cont.String()}},
		{name: "rm missing container", args: []string{d, "rm", f.path()}, code: ExitError, errText: []string{"DER_NONEXIST"}},
	})
}

func TestBusy(t *testing.T) {
	f := newFixture(t)
	p, err := vos.Open(f.dir, vos.Options{})
	if err != nil {
		t.Fatal(err)
	}
	busy := []string{"DER_BUSY", "in use", "stop it first"}
	runCases(t, []cmdCase{
		{name: "ls", args: []string{f.dir, "ls"}, code: ExitError, errText: busy},
		{name: "verify", args: []string{f.dir, "verify"}, code: ExitError, errText: busy},
		{name: "rm", args: []string{f.dir, "rm", f.path("1.2")}, code: ExitError, errText: busy},
		{name: "log", args: []string{f.dir, "log"}, code: ExitError, errText: busy},
		{name: "space", args: []string{f.dir, "--json", "space"}, code: ExitError, errText: busy, out: []string{`"status": -1012`}},
	})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	runCases(t, []cmdCase{{name: "after close", args: []string{f.dir, "ls"}, out: []string{f.cont.String()}}})
}

func TestHelp(t *testing.T) {
	runCases(t, []cmdCase{
		{name: "help", args: []string{"--help"}, out: []string{"ddb [--json] TARGET_DIR COMMAND", "verify", "superblock"}},
		{name: "command help", args: []string{"/x", "ls", "--help"}, out: []string{"--recursive", "--epoch"}},
		{name: "no args", args: nil, code: ExitError, errText: []string{"--help"}},
	})
}

func TestKeys(t *testing.T) {
	u64 := func(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }
	for _, tc := range []struct {
		key     []byte
		integer bool
		printed string
	}{
		{[]byte("dkey"), false, "dkey"},
		{[]byte("with space"), false, "with space"},
		{[]byte("a/b"), false, "0x612f62"},
		{[]byte("0xab"), false, "0x30786162"},
		{[]byte("u64:1"), false, "0x7536343a31"},
		{[]byte{0, 0xff}, false, "0x00ff"},
		{[]byte("caf\xc3\xa9"), false, "0x636166c3a9"},
		{u64(42), true, "u64:42"},
		{u64(42), false, "0x2a00000000000000"},
		{[]byte("short"), true, "short"},
	} {
		t.Run(tc.printed, func(t *testing.T) {
			if got := formatKey(tc.key, tc.integer); got != tc.printed {
				t.Fatalf("formatKey(%q) = %q, want %q", tc.key, got, tc.printed)
			}
			back, err := parseKey(tc.printed)
			if err != nil || !bytes.Equal(back, tc.key) {
				t.Fatalf("parseKey(%q) = %q, %v; want %q", tc.printed, back, err, tc.key)
			}
		})
	}
	for _, bad := range []string{"0x", "0xabc", "0xzz", "u64:", "u64:x", "u64:18446744073709551616"} {
		if _, err := parseKey(bad); err == nil {
			t.Errorf("parseKey(%q) succeeded", bad)
		}
	}
}
