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
	"testing"
	"time"

	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/launcher"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testsys.RemoveBinaries()
	os.Exit(code)
}

// launcherBin builds launcher and, next to it where it looks first, daos_server.
func launcherBin(t *testing.T) string {
	t.Helper()
	return filepath.Join(testsys.Binaries(t, ".", testsys.Cmd("daos_server")), "launcher")
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

// What pdsh over ssh runs on each node: `launcher node --dir DIR` picks
// DIR/<host name>.yml and becomes that node's daos_server; `launcher node
// --stop` stops it cleanly.
func TestNodeStartStop(t *testing.T) {
	dir := t.TempDir()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	port := testsys.FreeBase(t, 1)
	tmpl, err := launcher.LoadTemplate("")
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	b, _, err := tmpl.Render(launcher.NodeData{Host: host, Addr: "127.0.0.1", N: 1, Port: port, TelemetryPort: port + 2, FabricPort: port + 3,
		FabricIface: "lo", Dir: filepath.Join(dir, host), Replicas: []string{addr}, Targets: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, host+".yml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := launcherBin(t)
	srv := exec.Command(bin, "node", "--dir", dir, "--bin", filepath.Join(filepath.Dir(bin), "daos_server"))
	logf, err := os.Create(filepath.Join(dir, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	log := func() string { b, _ := os.ReadFile(logf.Name()); return string(b) }
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		srv.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(30 * time.Second)
	for n, _ := launcher.Joined(context.Background(), []string{addr}); n != 1; n, _ = launcher.Joined(context.Background(), []string{addr}) {
		if time.Now().After(deadline) {
			t.Fatalf("no rank joined within 30 s:\n%s", log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	rec, err := os.ReadFile(filepath.Join(dir, host+".run.json"))
	if err != nil || !strings.Contains(string(rec), fmt.Sprintf(`"pid":%d`, srv.Process.Pid)) {
		t.Errorf("%s.run.json: %s %v (want the server's pid %d: launcher node becomes it)", host, rec, err, srv.Process.Pid)
	}
	if rc, o, e := run(t, "node", "--stop", "--dir", dir); rc != 0 {
		t.Fatalf("launcher node --stop: %d %s%s", rc, o, e)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("the server exited with %v:\n%s", err, log())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the server still runs after launcher node --stop")
	}
}
