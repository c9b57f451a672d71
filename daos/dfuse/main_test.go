package dfuse_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/internal/testsys/inproc"
	"github.com/godaos/godaos/internal/testsys/posixload"
)

// TestMain starts a one-server system with a pool "tank" owned by the user;
// the tests mount its containers with the dfuse command.
func TestMain(m *testing.M) {
	s, stop, err := inproc.StartMain(false, "tank")
	sys = s
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("DAOS_AGENT_DRPC_DIR", filepath.Dir(s.Agent.Socket()))
	code := m.Run()
	stop()
	testsys.RemoveBinaries()
	posixload.Cleanup()
	os.Exit(code)
}

var (
	contSeq atomic.Int64
	sys     *inproc.System // for tests that need a pool of their own
)

// newCont creates a POSIX container with a DFS namespace in pool tank and
// returns its label; the container is destroyed when the test ends (after
// its mounts, which are stopped first).
func newCont(t testing.TB, attr dfs.Attr) string {
	t.Helper()
	return newContIn(t, "tank", attr)
}

func newContIn(t testing.TB, pool string, attr dfs.Attr) string {
	t.Helper()
	ctx := context.Background()
	c, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Fini()
	p, err := c.PoolConnect(ctx, pool, daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Disconnect(ctx)
	label := fmt.Sprintf("fuse%d", contSeq.Add(1))
	if _, err := p.ContCreate(ctx, daos.ContCreateOptions{Label: label, Type: "POSIX"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyCont(t, pool, label) })
	h, err := p.ContOpen(ctx, label, daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	if err := dfs.Format(ctx, h, attr); err != nil {
		t.Fatal(err)
	}
	return label
}

// dfuseProc is a running dfuse command.
type dfuseProc struct {
	dir string
	cmd *exec.Cmd
	log *bytes.Buffer
}

// mount runs `dfuse -f` on a new directory for cont and waits (bounded)
// until the mount is there; it is unmounted when the test ends.
func mount(t testing.TB, cont string, extra ...string) *dfuseProc {
	t.Helper()
	return mountPool(t, "tank", cont, extra...)
}

func mountPool(t testing.TB, pool, cont string, extra ...string) *dfuseProc {
	t.Helper()
	return mountWith(t, nil, pool, cont, extra...)
}

// mountWith is mount with env added to dfuse's environment (e.g. another
// system's DAOS_AGENT_DRPC_DIR).
func mountWith(t testing.TB, env []string, pool, cont string, extra ...string) *dfuseProc {
	t.Helper()
	bin := testsys.Binaries(t, testsys.Cmd("dfuse"))
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &dfuseProc{dir: dir, log: &bytes.Buffer{}}
	d.cmd = exec.Command(filepath.Join(bin, "dfuse"), append([]string{"-f", "-m", dir, "--pool", pool, "--cont", cont}, extra...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.Env = append(os.Environ(), env...)
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stop(t) })
	for i := 0; i < 200; i++ {
		if mounted(dir) {
			return d
		}
		if d.cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("dfuse did not mount %s:\n%s", dir, d.log)
	return nil
}

// mounted tells whether dir is a FUSE mount point.
func mounted(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && fields[4] == dir && strings.Contains(s.Text(), "fuse") {
			return true
		}
	}
	return false
}

// stop unmounts with fusermount3 -u and waits for dfuse to exit (bounded).
func (d *dfuseProc) stop(t testing.TB) {
	if d.cmd.ProcessState != nil {
		return
	}
	if mounted(d.dir) {
		if out, err := exec.Command("fusermount3", "-u", d.dir).CombinedOutput(); err != nil {
			t.Logf("fusermount3 -u %s: %v %s; stopping dfuse with SIGTERM", d.dir, err, out)
			d.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dfuse exited: %v\n%s", err, d.log)
		}
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-done
		exec.Command("fusermount3", "-u", "-z", d.dir).Run()
		t.Errorf("dfuse did not exit after the unmount:\n%s", d.log)
	}
}

// destroyCont destroys a test's container, so that the pool's space goes
// back for the tests after it.
func destroyCont(t testing.TB, pool, label string) {
	ctx := context.Background()
	c, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Fini()
	p, err := c.PoolConnect(ctx, pool, daos.RW)
	if err != nil {
		t.Error(err)
		return
	}
	defer p.Disconnect(ctx)
	if err := p.ContDestroy(ctx, label); err != nil {
		t.Errorf("destroy container %s: %v", label, err)
	}
}
