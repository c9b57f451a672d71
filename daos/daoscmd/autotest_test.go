package daoscmd

import (
	"encoding/json"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/testsys/inproc"
)

// TestPoolAutotest: daos pool autotest passes on a working pool, leaving no
// container behind, and fails at the step that fails, naming it.
func TestPoolAutotest(t *testing.T) {
	s := inproc.Start(t, true)
	t.Setenv("DAOS_AGENT_DRPC_DIR", filepath.Dir(s.Agent.Socket()))
	u, _ := user.Current()
	s.CreatePool(t, "tank", u.Username)
	s.CreatePool(t, "readonly", "nobody", "A::OWNER@:rw", "A::EVERYONE@:r")

	everyStep := []string{"Initializing DAOS", "Connecting to pool", "Creating container", "Opening container",
		"Generating 8 S1 objects", "Generating 2 SX objects", "Inserting 512 128 B values", "Reading 128 B values back",
		"Inserting 512 4 KiB values", "Reading 4 KiB values back", "Listing dkeys", "Punching objects",
		"Closing container", "Destroying container", "Disconnecting from pool", "Tearing down DAOS"}
	cases := []struct {
		name    string
		args    []string
		rc      int
		ok      []string // operations reported OK
		skipped []string
		failed  string // the operation reported FAIL
		stderr  []string
	}{
		{name: "every step", args: []string{"pool", "autotest", "tank"}, ok: append(everyStep, "Inserting 16 1 MiB SX extents", "Reading 1 MiB SX extents back")},
		{name: "skip big", args: []string{"pool", "autotest", "tank", "--skip-big"}, ok: everyStep,
			skipped: []string{"Inserting 16 1 MiB SX extents", "Reading 1 MiB SX extents back"}},
		{name: "no such pool", args: []string{"pool", "autotest", "nosuch"}, rc: 1, ok: everyStep[:1], failed: "Connecting to pool",
			stderr: []string{"DER_NONEXIST", "pool nosuch: autotest step 1 (Connecting to pool) failed"}},
		{name: "no write permission", args: []string{"pool", "autotest", "readonly"}, rc: 1, ok: everyStep[:1], failed: "Connecting to pool",
			stderr: []string{"DER_NO_PERM", "autotest step 1 (Connecting to pool) failed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errs, rc := run(t, c.args...)
			if rc != c.rc {
				t.Fatalf("rc %d, want %d\nstdout: %s\nstderr: %s", rc, c.rc, out, errs)
			}
			status := map[string]string{}
			for _, line := range strings.Split(out, "\n")[1:] {
				for _, st := range []string{" OK ", " FAIL ", " SKIP "} {
					if op, _, found := strings.Cut(line, st); found && len(op) > 5 {
						status[strings.TrimSpace(op[5:])] = strings.TrimSpace(st)
					}
				}
			}
			for _, op := range c.ok {
				if status[op] != "OK" {
					t.Errorf("%q: %q, want OK\n%s", op, status[op], out)
				}
			}
			for _, op := range c.skipped {
				if status[op] != "SKIP" {
					t.Errorf("%q: %q, want SKIP\n%s", op, status[op], out)
				}
			}
			if c.failed != "" && status[c.failed] != "FAIL" {
				t.Errorf("%q: %q, want FAIL\n%s", c.failed, status[c.failed], out)
			}
			if want := len(c.ok) + len(c.skipped) + len(c.failed)/max(1, len(c.failed)); len(status) != want {
				t.Errorf("%d steps reported, want %d:\n%s", len(status), want, out)
			}
			for _, w := range c.stderr {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q: %s", w, errs)
				}
			}
		})
	}

	t.Run("no container left", func(t *testing.T) {
		if out, _, rc := run(t, "cont", "list", "tank"); rc != 0 || !strings.Contains(out, "has no containers") {
			t.Fatalf("rc %d: %s", rc, out)
		}
	})

	t.Run("json", func(t *testing.T) {
		type env struct {
			Response []autotestStep `json:"response"`
			Error    *string        `json:"error"`
			Status   int            `json:"status"`
		}
		var e env
		out, _, rc := run(t, "-j", "pool", "autotest", "tank", "--skip-big")
		if err := json.Unmarshal([]byte(out), &e); err != nil || rc != 0 || e.Status != 0 || e.Error != nil || len(e.Response) != len(everyStep)+2 {
			t.Fatalf("rc %d %v: %s", rc, err, out)
		}
		if last := e.Response[len(e.Response)-1]; last.Step != 99 || last.Status != "OK" {
			t.Fatalf("last step %+v", last)
		}
		e = env{}
		out, _, rc = run(t, "-j", "pool", "autotest", "nosuch")
		if err := json.Unmarshal([]byte(out), &e); err != nil || rc != 1 || e.Status != -1005 || e.Error == nil ||
			len(e.Response) != 2 || e.Response[1].Status != "FAIL" || !strings.Contains(e.Response[1].Comment, "nosuch") {
			t.Fatalf("rc %d %v: %s", rc, err, out)
		}
	})
}
