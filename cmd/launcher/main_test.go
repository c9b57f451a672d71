package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/launcher"
)

var bins struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// launcherBin builds launcher and, next to it where it looks first, daos_server.
func launcherBin(t *testing.T) string {
	t.Helper()
	bins.once.Do(func() {
		if bins.dir, bins.err = os.MkdirTemp("", "godaos-launcher-cmd-test"); bins.err != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", bins.dir+"/", ".", "github.com/godaos/godaos/cmd/daos_server").CombinedOutput()
		if err != nil {
			bins.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return filepath.Join(bins.dir, "launcher")
}

// run runs the launcher and returns its status, standard output and error.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, launcherBin(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// `launcher pdsh` returns once every rank has joined and leaves the servers
// running under pdsh; `launcher stop` ends them.
func TestPdshAndStop(t *testing.T) {
	if _, err := exec.LookPath("pdsh"); err != nil {
		t.Fatal("pdsh not found: install the Debian package pdsh (scripts/deps.sh does)")
	}
	dir := t.TempDir()
	port := testsys.FreeBase(t, 2)
	t.Cleanup(func() { launcher.StopDir(dir) })
	rc, out, errOut := run(t, "pdsh", "-R", "exec", "-w", "n[1-2]", "--dir", dir, "--port", strconv.Itoa(port), "--targets", "1")
	if rc != 0 {
		t.Fatalf("launcher pdsh: %d\n%s%s", rc, out, errOut)
	}
	hosts := []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", port+10)}
	for _, w := range []string{"2 servers up on n1,n2 (pdsh -R exec)", "Use: dmg -l " + strings.Join(hosts, ",") + " system query", "Stop: launcher stop --dir " + dir} {
		if !strings.Contains(out, w) {
			t.Errorf("output does not say %q:\n%s", w, out)
		}
	}
	if n, err := launcher.Joined(context.Background(), hosts); err != nil || n != 2 {
		t.Errorf("after launcher pdsh exited: %d ranks joined, %v", n, err)
	}
	rc, out, errOut = run(t, "stop", "--dir", dir)
	if rc != 0 || out != "stopped\n" {
		t.Fatalf("launcher stop: %d\n%s%s", rc, out, errOut)
	}
	if _, err := launcher.Joined(context.Background(), hosts[:1]); err == nil {
		t.Error("a server still answers after launcher stop")
	}
}

func TestTemplate(t *testing.T) {
	rc, out, _ := run(t, "template")
	if rc != 0 || !strings.HasPrefix(out, "# GoDAOS per-node") || !strings.Contains(out, "port: {{.Port}}") {
		t.Errorf("launcher template: %d\n%s", rc, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("name: x\nport: {{.Prot}}\n"), 0o644)
	rc, out, errOut := run(t, "pdsh", "-R", "exec", "-w", "n1", "--dir", t.TempDir(), "--template", bad)
	want := "launcher: DER_INVAL: launcher: template " + bad + " line 2: <.Prot>: can't evaluate field Prot"
	if rc != 1 || out != "" || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
		t.Errorf("bad template: %d %q, want one line starting %q", rc, out+errOut, want)
	}
}

func TestNodeWithoutConfiguration(t *testing.T) {
	dir := t.TempDir()
	rc, _, errOut := run(t, "node", "--dir", dir)
	if rc != 1 || !strings.Contains(errOut, "give --node NAME") {
		t.Errorf("launcher node in an empty directory: %d %s", rc, errOut)
	}
	rc, _, errOut = run(t, "node", "--dir", dir, "--node", "n9")
	if rc != 1 || !strings.Contains(errOut, "n9.yml") {
		t.Errorf("launcher node --node n9: %d %s", rc, errOut)
	}
}
