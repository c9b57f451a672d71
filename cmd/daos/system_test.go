package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godaos/godaos/daos/daoscmd"
	"github.com/godaos/godaos/internal/testsys"
)

// asTool makes the test binary the daos tool, so a child can run it as
// another user.
const asTool = "GODAOS_TEST_AS_DAOS"

func TestMain(m *testing.M) {
	if os.Getenv(asTool) != "" {
		os.Exit(daoscmd.Run(os.Args[1:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	testsys.RemoveBinaries()
	os.Exit(code)
}

// TestSecureSystem is an administrator's and two users' day with the real
// binaries: certificates from dmg, a daos_server with mutual TLS, storage
// formatted by dmg, a pool, a daos_agent on the client side, and the daos
// tool run as root (the pool's owner) and as nobody (refused, then allowed
// read-only once the ACL says so). Everything is stopped with SIGTERM.
func TestSecureSystem(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test runs the daos tool as nobody, which needs root (CI runs as root)")
	}
	dir, err := os.MkdirTemp("", "secure-system")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // nobody reaches the agent's socket below it
	bin := testsys.Binaries(t, ".", testsys.Cmd("daos_server"), testsys.Cmd("dmg"), testsys.Cmd("daos_agent"))
	run := func(env []string, name string, args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(name string, args ...string) string {
		t.Helper()
		out, err := run(nil, name, args...)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return out
	}
	certs := filepath.Join(dir, "certs")
	must("dmg", "cert", "generate", "--dir", certs)

	// server.yml: the generated example with free ports and certificates
	port, tele, fabric := testsys.FreePortPair(t), testsys.FreePort(t), testsys.FreePort(t)
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o750)
	cfg := must("daos_server", "config", "generate", "--data-dir", data, "--targets", "2")
	for _, r := range []struct{ re, with string }{
		{`127\.0\.0\.1:10001`, fmt.Sprintf("127.0.0.1:%d", port)},
		{`(?m)^port: 10001`, fmt.Sprintf("port: %d", port)},
		{`telemetry_port: 9191`, fmt.Sprintf("telemetry_port: %d", tele)},
		{`fabric_iface_port: 31416`, fmt.Sprintf("fabric_iface_port: %d", fabric)},
		{`(?m)^transport_config:\n(  .*\n)+`, fmt.Sprintf("transport_config:\n  allow_insecure: false\n  ca_cert: %s/daosCA.crt\n  cert: %s/server.crt\n  key: %s/server.key\n  client_cert_dir: %s/clients\n", certs, certs, certs, certs)},
	} {
		re := regexp.MustCompile(r.re)
		if !re.MatchString(cfg) {
			t.Fatalf("generated server.yml has no %s:\n%s", r.re, cfg)
		}
		cfg = re.ReplaceAllString(cfg, r.with)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	serverYML := write("server.yml", cfg)
	ctlYML := write("daos_control.yml", fmt.Sprintf("name: daos_server\nport: %d\nhostlist: ['127.0.0.1']\ntransport_config:\n  ca_cert: %s/daosCA.crt\n  cert: %s/admin.crt\n  key: %s/admin.key\n", port, certs, certs, certs))
	agentDir := filepath.Join(dir, "agent")
	agentYML := write("daos_agent.yml", fmt.Sprintf("name: daos_server\naccess_points: ['127.0.0.1:%d']\nruntime_dir: %s\ntransport_config:\n  ca_cert: %s/daosCA.crt\n  cert: %s/agent.crt\n  key: %s/agent.key\n", port, agentDir, certs, certs, certs))

	start := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		log, _ := os.Create(filepath.Join(dir, name+".log"))
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s did not exit cleanly on SIGTERM: %v", name, err)
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Errorf("%s did not stop within 30 s of SIGTERM", name)
			}
		})
		return cmd
	}
	start("daos_server", "start", "-o", serverYML)
	dmg := func(args ...string) (string, error) {
		return run(nil, "dmg", append([]string{"-o", ctlYML}, args...)...)
	}
	retry := func(what string, f func() (string, error), ok func(string) bool) string {
		t.Helper()
		var out string
		var err error
		for range 150 { // bounded: 30 s
			if out, err = f(); err == nil && ok(out) {
				return out
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("%s: %v\n%s", what, err, out)
		return ""
	}
	// the server answers before its storage is formatted; its engine waits
	retry("storage query usage", func() (string, error) { return dmg("storage", "query", "usage") },
		func(s string) bool { return strings.Contains(s, "unformatted") })
	if out, err := dmg("storage", "format"); err != nil || !strings.Contains(out, "formatted") {
		t.Fatalf("storage format: %v\n%s", err, out)
	}
	retry("system query", func() (string, error) { return dmg("system", "query") }, func(s string) bool { return strings.Contains(s, "Joined") })
	if out, err := dmg("pool", "create", "--size", "1G", "tank"); err != nil {
		t.Fatalf("pool create: %v\n%s", err, out)
	}
	// dmg without certificates is turned away, and told why
	if out, err := run(nil, "dmg", "-l", fmt.Sprintf("127.0.0.1:%d", port), "system", "query"); err == nil || !strings.Contains(out, "require TLS") {
		t.Fatalf("dmg without certificates: %v\n%s", err, out)
	}

	start("daos_agent", "start", "-o", agentYML)
	sock := filepath.Join(agentDir, "daos_agent.sock")
	retry("agent socket", func() (string, error) { _, err := os.Stat(sock); return "", err }, func(string) bool { return true })
	os.Chmod(agentDir, 0o755)
	env := []string{"DAOS_AGENT_DRPC_DIR=" + agentDir}
	asNobody := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, "daos.test"), args...)
		cmd.Env = append(os.Environ(), append(env, asTool+"=1")...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// the daos tool is this test binary, copied where nobody can run it
	self, _ := os.Executable()
	b, _ := os.ReadFile(self)
	if err := os.WriteFile(filepath.Join(bin, "daos.test"), b, 0o755); err != nil {
		t.Fatal(err)
	}

	if out, err := run(env, "daos", "pool", "query", "tank"); err != nil || !strings.Contains(out, "Your access : rw") {
		t.Fatalf("owner's pool query: %v\n%s", err, out)
	}
	if out, err := run(env, "daos", "cont", "create", "tank", "results", "--type", "POSIX"); err != nil {
		t.Fatalf("owner's cont create: %v\n%s", err, out)
	}
	if out, err := asNobody("pool", "query", "tank"); err == nil || !strings.Contains(out, "DER_NO_PERM") || !strings.Contains(out, "nobody@") {
		t.Fatalf("nobody's pool query before the ACL change: %v\n%s", err, out)
	}
	if out, err := dmg("pool", "update-acl", "tank", "--entry", "A::EVERYONE@:r"); err != nil {
		t.Fatalf("update-acl: %v\n%s", err, out)
	}
	if out, err := asNobody("cont", "list", "tank"); err != nil || !strings.Contains(out, "results") {
		t.Fatalf("nobody's cont list after the ACL change: %v\n%s", err, out)
	}
	if out, err := asNobody("cont", "create", "tank", "mine"); err == nil || !strings.Contains(out, `missing permission "w"`) {
		t.Fatalf("nobody's cont create: %v\n%s", err, out)
	}
	if out, err := run(nil, "daos_agent", "dump-attachinfo", "-o", agentYML, "--pool", "tank"); err != nil || !strings.Contains(out, `"label": "tank"`) {
		t.Fatalf("dump-attachinfo: %v\n%s", err, out)
	}
}
