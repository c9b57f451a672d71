package daoscmd

import (
	"encoding/json"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/testsys/inproc"
)

func TestSnapshotCommands(t *testing.T) {
	s := inproc.Start(t, false)
	t.Setenv("DAOS_AGENT_DRPC_DIR", filepath.Dir(s.Agent.Socket()))
	u, _ := user.Current()
	s.CreatePool(t, "tank", u.Username)
	if _, errOut, rc := run(t, "cont", "create", "tank", "c"); rc != 0 {
		t.Fatal(errOut)
	}
	out, errOut, rc := run(t, "-j", "cont", "create-snap", "tank", "c", "--snap", "before")
	if rc != 0 {
		t.Fatal(errOut)
	}
	var created struct {
		Response struct {
			Epoch uint64 `json:"epoch"`
		} `json:"response"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Response.Epoch == 0 {
		t.Fatalf("create-snap --json: %q (%v)", out, err)
	}
	steps := []struct {
		args []string
		rc   int
		want []string
	}{
		{[]string{"cont", "create-snap", "tank", "c"}, 0, []string{"has been created"}},
		{[]string{"cont", "create-snap", "tank", "c", "--snap", "before"}, 1, []string{"DER_EXIST", `"before"`}},
		{[]string{"cont", "list-snaps", "tank", "c"}, 0, []string{"Epoch", "before"}},
		{[]string{"cont", "destroy-snap", "tank", "c"}, 1, []string{"--snap NAME or --epc EPOCH"}},
		{[]string{"cont", "destroy-snap", "tank", "c", "--epc", "zero"}, 1, []string{`--epc "zero" is not an epoch`}},
		{[]string{"cont", "rollback", "tank", "c", "--snap", "nosuch"}, 1, []string{"DER_NONEXIST", `name "nosuch"`, "list-snaps"}},
		{[]string{"cont", "rollback", "tank", "c", "--snap", "before"}, 0, []string{"rolled back to snapshot"}},
		{[]string{"cont", "destroy-snap", "tank", "c", "--snap", "before"}, 0, []string{"snapshot destroyed"}},
		{[]string{"cont", "list-snaps", "tank", "c"}, 0, []string{"No snapshots."}},
		{[]string{"cont", "list-snaps", "tank", "nosuch"}, 1, []string{"DER_NONEXIST"}},
	}
	for _, st := range steps {
		t.Run(strings.Join(st.args, " "), func(t *testing.T) {
			out, errOut, rc := run(t, st.args...)
			text := out
			if st.rc != 0 {
				text = errOut
			}
			if rc != st.rc {
				t.Fatalf("rc %d, want %d\nstdout: %s\nstderr: %s", rc, st.rc, out, errOut)
			}
			for _, w := range st.want {
				if !strings.Contains(text, w) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
		})
	}
}
