package daoscmd

import (
	"bytes"
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/testsys/inproc"
)

func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	rc := Run(args, &out, &errb)
	return out.String(), errb.String(), rc
}

// TestCommands runs the daos tool against a secure in-process system through
// its agent, as a user does from the shell.
func TestCommands(t *testing.T) {
	s := inproc.Start(t, true)
	t.Setenv("DAOS_AGENT_DRPC_DIR", filepath.Dir(s.Agent.Socket()))
	u, _ := user.Current()
	aclFile := filepath.Join(t.TempDir(), "acl")
	unsDir := filepath.Join(t.TempDir(), "uns")
	os.WriteFile(aclFile, []byte("# the owner keeps data rights only\nA::OWNER@:rwdt\n"), 0o644)
	s.CreatePool(t, "tank", u.Username)
	s.CreatePool(t, "theirs", "nobody", "A::OWNER@:rw", "A::EVERYONE@:r")

	steps := []struct {
		args []string
		rc   int
		want []string // in stdout (rc 0) or stderr
	}{
		{[]string{"pool", "query", "tank"}, 0, []string{"Label       : tank", "SCM         : ", "free", "Your access : rw (read, write)"}},
		{[]string{"cont", "create", "tank", "ckpt", "--type", "POSIX", "--properties", "rd_fac:0,cksum:crc64,cksum_size:16K"}, 0, []string{"Successfully created container ckpt", "Container Type : POSIX"}},
		{[]string{"cont", "create", "tank", "ckpt"}, 1, []string{"DER_EXIST", `labeled "ckpt"`}},
		{[]string{"cont", "create", "tank", "x", "--type", "NTFS"}, 1, []string{"DER_INVAL", `container type "NTFS"`}},
		{[]string{"cont", "create", "tank", "x", "--properties", "cksum:md5"}, 1, []string{"DER_INVAL", "property cksum"}},
		{[]string{"cont", "list", "tank"}, 0, []string{"ckpt", "UUID"}},
		{[]string{"pool", "list-containers", "tank"}, 0, []string{"ckpt"}},
		{[]string{"cont", "query", "tank", "ckpt"}, 0, []string{"Container Label: ckpt", "rd_fac", "Your access    : rwdtTaAo"}},
		{[]string{"cont", "create", "theirs", "mine"}, 1, []string{"DER_NO_PERM", "pool theirs", `missing permission "w"`}},
		{[]string{"pool", "query", "nosuch"}, 1, []string{"DER_NONEXIST", "nosuch"}},
		{[]string{"cont", "get-acl", "tank", "ckpt"}, 0, []string{"A::OWNER@:rwdtTaAo", "A:G:GROUP@:rwtT", "# Owner: " + u.Username + "@"}},
		{[]string{"cont", "update-acl", "tank", "ckpt", "--entry", "A::EVERYONE@:r"}, 0, []string{"A::EVERYONE@:r", "A::OWNER@:rwdtTaAo"}},
		{[]string{"cont", "update-acl", "tank", "ckpt", "--entry", "A::bad"}, 1, []string{"DER_INVAL"}},
		{[]string{"cont", "delete-acl", "tank", "ckpt", "--principal", "EVERYONE@"}, 0, []string{"A::OWNER@"}},
		{[]string{"cont", "get-prop", "tank", "ckpt"}, 0, []string{"rd_fac", "layout_type", "POSIX"}},
		{[]string{"cont", "set-prop", "tank", "ckpt", "label:results,rd_lvl:node"}, 0, []string{"Properties were successfully set", "results", "node"}},
		{[]string{"cont", "set-prop", "tank", "results", "cksum:crc64"}, 1, []string{"DER_INVAL", "set when the container is created"}},
		{[]string{"cont", "set-prop", "tank", "results", "colour:red"}, 1, []string{"DER_INVAL", `unknown container property "colour"`}},
		{[]string{"cont", "get-prop", "tank", "ckpt"}, 1, []string{"DER_NONEXIST", "ckpt"}},
		{[]string{"cont", "overwrite-acl", "tank", "results", "--acl-file", aclFile}, 0, []string{"A::OWNER@:rwdt"}},
		{[]string{"cont", "set-prop", "tank", "results", "rd_lvl:rank"}, 1, []string{"DER_NO_PERM", `missing permission "T"`}},
		// without A in its entry, the owner still has its minimum (a, A) and repairs the ACL
		{[]string{"cont", "update-acl", "tank", "results", "--entry", "A::OWNER@:rwdtTaAo"}, 0, []string{"A::OWNER@:rwdtTaAo"}},
		{[]string{"cont", "set-prop", "tank", "results", "rd_lvl:rank"}, 0, []string{"Properties were successfully set"}},
		{[]string{"cont", "list-attrs", "tank", "results"}, 0, []string{"has no attributes"}},
		{[]string{"cont", "set-attr", "tank", "results", "run", "42"}, 0, []string{"Attribute run set"}},
		{[]string{"cont", "set-attr", "tank", "results", "code", "lammps 2Aug2023"}, 0, []string{"Attribute code set"}},
		{[]string{"cont", "get-attr", "tank", "results", "code"}, 0, []string{"lammps 2Aug2023"}},
		{[]string{"cont", "list-attrs", "tank", "results"}, 0, []string{"code\nrun"}},
		{[]string{"cont", "del-attr", "tank", "results", "run"}, 0, []string{"Attribute run deleted"}},
		{[]string{"cont", "get-attr", "tank", "results", "run"}, 1, []string{"DER_NONEXIST", `no attribute "run"`}},
		{[]string{"cont", "del-attr", "tank", "results", "run"}, 1, []string{"DER_NONEXIST"}},
		// POSIX containers and UNS
		{[]string{"cont", "create", "tank", "fs1", "--type", "POSIX", "--chunk-size", "64KiB", "--file-oclass", "S2", "--path", unsDir}, 0, []string{"Successfully created container fs1"}},
		{[]string{"cont", "query", "--path", unsDir}, 0, []string{"Container Label: fs1", "Container Type : POSIX"}},
		{[]string{"cont", "create", "tank", "fs2", "--type", "POSIX", "--path", unsDir}, 1, []string{"DER_EXIST", unsDir}},
		{[]string{"cont", "query", "tank", "fs2"}, 1, []string{"DER_NONEXIST"}}, // the failed create left nothing
		{[]string{"cont", "create", "tank", "x", "--chunk-size", "1MiB"}, 1, []string{"DER_INVAL", "--chunk-size is for POSIX containers"}},
		{[]string{"cont", "create", "tank", "x", "--type", "POSIX", "--oclass", "S9X"}, 1, []string{"DER_INVAL", "--oclass"}},
		{[]string{"cont", "query", "--path", t.TempDir()}, 1, []string{"DER_NONEXIST", "not a UNS path"}},
		{[]string{"cont", "query", "tank", "fs1", "--path", unsDir}, 1, []string{"DER_INVAL", "not both"}},
		{[]string{"cont", "destroy", "tank", "fs1"}, 0, []string{"Successfully destroyed container fs1"}},
		{[]string{"cont", "query", "--path", unsDir}, 1, []string{"DER_NONEXIST"}}, // a UNS path whose container is gone
		{[]string{"cont", "create", "tank", "fs3", "--type", "POSIX", "--path", unsDir + "2"}, 0, []string{"Successfully created container fs3"}},
		{[]string{"cont", "destroy", "--path", unsDir + "2"}, 0, []string{"Successfully destroyed container"}},
		{[]string{"cont", "destroy", "tank", "results"}, 0, []string{"Successfully destroyed container results"}},
		{[]string{"cont", "list", "tank"}, 0, []string{"Pool tank has no containers."}},
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
		})
	}

	out, _, rc := run(t, "-j", "pool", "query", "theirs")
	var env struct {
		Response map[string]any `json:"response"`
		Status   int            `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &env); err != nil || rc != 0 || env.Response["permissions"] != "r" {
		t.Fatalf("json pool query: rc %d %v %s", rc, err, out)
	}
	out, _, rc = run(t, "-j", "cont", "create", "theirs", "mine")
	if err := json.Unmarshal([]byte(out), &env); err != nil || rc != 1 || env.Status != -1001 {
		t.Fatalf("json refusal: rc %d %v %s", rc, err, out)
	}
}

func TestNoAgent(t *testing.T) {
	t.Setenv("DAOS_AGENT_DRPC_DIR", t.TempDir())
	_, errs, rc := run(t, "pool", "query", "tank")
	if rc != 1 || !strings.Contains(errs, "start daos_agent") {
		t.Fatalf("rc %d: %s", rc, errs)
	}
}
