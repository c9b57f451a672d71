package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security/capability"
	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/server/config"
	"github.com/godaos/godaos/server/vos"
)

// The test binary doubles as daos_server: with this variable set it runs main's
// logic on its arguments, so the tests start real server processes.
const asServer = "GODAOS_TEST_AS_DAOS_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(asServer) != "" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// testConfig writes a generated configuration with free ports; it returns its
// path and the engine's data-plane address.
func testConfig(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	b, err := config.Generate(config.GenerateOptions{DataDir: dir, Targets: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctl, tele, fab := testsys.FreePortPair(t), testsys.FreePort(t), testsys.FreePort(t)
	s := string(b)
	for old, new := range map[string]string{
		"127.0.0.1:10001": fmt.Sprintf("127.0.0.1:%d", ctl), "\nport: 10001": fmt.Sprintf("\nport: %d", ctl),
		"telemetry_port: 9191": fmt.Sprintf("telemetry_port: %d", tele), "fabric_iface_port: 31416": fmt.Sprintf("fabric_iface_port: %d", fab),
	} {
		if !strings.Contains(s, old) {
			t.Fatalf("generated config lacks %q", old)
		}
		s = strings.ReplaceAll(s, old, new)
	}
	path := filepath.Join(dir, "server.yml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, fmt.Sprintf("127.0.0.1:%d", fab)
}

// syncBuffer is a bytes.Buffer safe to read while the process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type serverProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited; then err is its status
	err    error
}

func startServer(t *testing.T, args ...string) *serverProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asServer+"=1")
	sp := &serverProc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = sp.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { sp.err = cmd.Wait(); close(sp.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-sp.done
	})
	return sp
}

// waitReady dials addr until the engine answers (bounded).
func waitReady(t *testing.T, sp *serverProc, addr string) *rpc.Client {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-sp.done:
			t.Fatalf("daos_server exited before serving (%v):\n%s", sp.err, sp.stderr)
		default:
		}
		if c, err := rpc.Dial(context.Background(), addr, rpc.ClientOptions{}); err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("daos_server not serving on %s after 30 s:\n%s", addr, sp.stderr)
	return nil
}

func call(t *testing.T, c *rpc.Client, op uint16, tgt uint32, m proto.Message, bulk, recv []byte) error {
	t.Helper()
	hdr, _ := proto.Marshal(m)
	if enginepb.ServerOps[op] { // as a server sends them, unsigned: the test system is insecure
		var err error
		if hdr, err = capability.Seal(nil, op, hdr); err != nil {
			t.Fatal(err)
		}
	}
	var b, r [][]byte
	if bulk != nil {
		b = [][]byte{bulk}
	}
	if recv != nil {
		r = [][]byte{recv}
	}
	_, err := c.Call(context.Background(), rpc.Message{Opcode: op, Target: tgt, Header: hdr, Bulk: b}, r)
	return err
}

// Start, write, SIGKILL, start again: every acknowledged value is there. Then
// SIGTERM stops the server cleanly with exit status 0.
func TestStartKillRestartStop(t *testing.T) {
	cfgPath, addr := testConfig(t)
	pool, cont := vos.UUIDFromUint64(1), vos.UUIDFromUint64(2)
	// an insecure system's capability (unsigned) for the container
	capab, err := capability.Issue(nil, &enginepb.CapToken{Handle: cont[:], Pool: pool[:], Cont: cont[:],
		Rights: enginepb.CapRead | enginepb.CapWrite, Expires: time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	iod := func(n int) *enginepb.IOD {
		return &enginepb.IOD{Akey: []byte("a"), Type: uint32(vos.IODSingle), Size: uint64(n)}
	}
	io := func(dkey string, n int) *enginepb.ObjIOReq {
		return &enginepb.ObjIOReq{Pool: pool[:], Cont: cont[:], Oid: &enginepb.OID{Lo: 1}, Dkey: []byte(dkey), Iods: []*enginepb.IOD{iod(n)}, Cap: capab}
	}

	sp := startServer(t, "start", "--auto-format", "-o", cfgPath)
	c := waitReady(t, sp, addr)
	for tgt := range uint32(2) {
		if err := call(t, c, enginepb.OpTargetCreate, tgt, &enginepb.TargetCreateReq{Pool: pool[:], ScmSize: 32 << 20, NvmeSize: 32 << 20}, nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := call(t, c, enginepb.OpContCreate, tgt, &enginepb.ContCreateReq{Pool: pool[:], Cont: cont[:]}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	acked := map[string]string{}
	for i := range 20 {
		dkey, val := fmt.Sprintf("k%d", i), strings.Repeat(fmt.Sprintf("v%d-", i), 1+i*500) // up to ~40 KiB: both tiers
		if err := call(t, c, enginepb.OpObjUpdate, uint32(i%2), io(dkey, len(val)), []byte(val), nil); err != nil {
			t.Fatal(err)
		}
		acked[dkey] = val
	}
	sp.cmd.Process.Signal(syscall.SIGKILL)
	<-sp.done

	sp = startServer(t, "start", "--auto-format", "-o", cfgPath)
	c = waitReady(t, sp, addr)
	for i := range 20 {
		dkey := fmt.Sprintf("k%d", i)
		want := acked[dkey]
		got := make([]byte, len(want))
		if err := call(t, c, enginepb.OpObjFetch, uint32(i%2), io(dkey, len(want)), nil, got); err != nil || string(got) != want {
			t.Errorf("%s after SIGKILL and restart: %v, %d bytes differ", dkey, err, len(want))
		}
	}

	sp.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-sp.done:
		if sp.err != nil {
			t.Errorf("SIGTERM: exit %v, want 0:\n%s", sp.err, sp.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("daos_server did not stop within 30 s of SIGTERM:\n%s", sp.stderr)
	}
	if !strings.Contains(sp.stderr.String(), "daos_server stopped") {
		t.Errorf("no clean-stop line in the log:\n%s", sp.stderr)
	}
}

// A bad configuration or a port in use stops the start with exit status 1 and
// one line that names the key and the fix.
func TestStartRefusesBadInput(t *testing.T) {
	cfgPath, addr := testConfig(t)
	b, _ := os.ReadFile(cfgPath)
	typo := filepath.Join(t.TempDir(), "typo.yml")
	os.WriteFile(typo, bytes.Replace(b, []byte("targets: 2"), []byte("targetz: 2"), 1), 0o644)
	busy, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		want  []string
		setup func()
	}{
		{"misspelled key", []string{"start", "--auto-format", "-o", typo}, []string{`unknown key "targetz"`, `did you mean "targets"?`}, nil},
		{"missing file", []string{"start", "-o", "/nonexistent/server.yml"}, []string{"/nonexistent/server.yml"}, nil},
		{"fabric port in use", []string{"start", "--auto-format", "-o", cfgPath}, []string{"engines[0].fabric_iface_port", "cannot listen on " + addr, "another daos_server?"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := startServer(t, tc.args...)
			select {
			case <-sp.done:
				if ee, ok := sp.err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
					t.Errorf("exit %v, want status 1", sp.err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("daos_server did not exit")
			}
			var last string
			for _, l := range strings.Split(strings.TrimSpace(sp.stderr.String()), "\n") {
				if strings.HasPrefix(l, "daos_server:") {
					last = l
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(last, w) {
					t.Errorf("error line %q does not contain %q (stderr:\n%s)", last, w, sp.stderr)
				}
			}
		})
	}
	busy.Close()
}

func TestConfigGenerateAndVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := run([]string{"config", "generate", "--data-dir", "/srv/d", "--engines", "2"}, &out, &errb); rc != 0 {
		t.Fatalf("rc %d: %s", rc, errb.String())
	}
	cfg, err := config.Parse(out.Bytes())
	if err != nil || len(cfg.Engines) != 2 || cfg.Engines[1].Storage[0].ScmMount != "/srv/d/scm1" {
		t.Errorf("generated: %v %+v", err, cfg)
	}
	out.Reset()
	if rc := run([]string{"version"}, &out, &errb); rc != 0 || !strings.Contains(out.String(), "GoDAOS") {
		t.Errorf("version: %d %q", rc, out.String())
	}
	if rc := run([]string{"--help"}, &out, &errb); rc != 0 {
		t.Errorf("--help: rc %d", rc)
	}
	if rc := run([]string{"stat"}, &out, &errb); rc != 2 {
		t.Errorf("unknown command: rc %d, want 2", rc)
	}
}

// SIGTERM while the server is still starting (its first log line is out, its
// engines and management service are not up yet) stops it cleanly, status 0.
func TestSIGTERMDuringStartup(t *testing.T) {
	cfgPath, _ := testConfig(t)
	for range 3 {
		sp := startServer(t, "start", "--auto-format", "-o", cfgPath)
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(sp.stderr.String(), "allow_insecure") {
			if time.Now().After(deadline) {
				t.Fatalf("no start-up log line:\n%s", sp.stderr)
			}
			time.Sleep(time.Millisecond)
		}
		sp.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-sp.done:
			if sp.err != nil {
				t.Fatalf("SIGTERM during start-up: exit %v, want 0:\n%s", sp.err, sp.stderr)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("daos_server did not stop")
		}
	}
}
