// Package dfusetest gives tests what a POSIX user has: a POSIX container
// with a DFS namespace, and a real dfuse process mounting it on a
// directory of the test's, unmounted and stopped when the test ends. The
// dfuse tests and the interception library's use it.
package dfusetest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/internal/testsys"
)

var contSeq atomic.Int64

// NewPOSIXCont creates a POSIX container in pool (through the agent at
// $DAOS_AGENT_DRPC_DIR), formats its namespace with attr, and returns its
// label. The container is destroyed when the test ends, after the mounts
// made later, which stop first.
func NewPOSIXCont(t testing.TB, pool string, attr dfs.Attr) string {
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
	label := fmt.Sprintf("posix%d", contSeq.Add(1))
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

// destroyCont gives the container's space back to the pool for the tests
// after this one.
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

// Proc is a running `dfuse -f`.
type Proc struct {
	Dir  string // the mount point
	cmd  *exec.Cmd
	log  lockedBuffer
	done chan struct{}
	err  error // dfuse's exit, once done is closed
}

// lockedBuffer is dfuse's output, written by the process while the test
// may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Mount runs `dfuse -f -m DIR --pool POOL --cont CONT ARGS...` on a new
// directory, with env added to its environment, and waits (bounded) until
// the mount is there. When the test ends it unmounts (fusermount3 -u, or
// SIGTERM if that fails) and waits (bounded) for dfuse to exit.
func Mount(t testing.TB, pool, cont string, env []string, args ...string) *Proc {
	t.Helper()
	bin := testsys.Binaries(t, testsys.Cmd("dfuse"))
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Dir: dir, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(bin, "dfuse"), append([]string{"-f", "-m", dir, "--pool", pool, "--cont", cont}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	p.cmd.Env = append(os.Environ(), env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.Stop(t) })
	for i := 0; i < 200; i++ {
		if Mounted(dir) {
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("dfuse exited before mounting %s: %v\n%s", dir, p.err, p.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("dfuse did not mount %s:\n%s", dir, p.Log())
	return nil
}

// Log is what dfuse printed so far.
func (p *Proc) Log() string { return p.log.String() }

// Signal sends sig to dfuse.
func (p *Proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for dfuse to exit and returns how it did.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Stop unmounts (fusermount3 -u, or SIGTERM if that fails) and waits
// (bounded) for dfuse to exit; it does nothing once dfuse has exited.
func (p *Proc) Stop(t testing.TB) {
	select {
	case <-p.done:
		return // stopped by the test
	default:
	}
	if Mounted(p.Dir) {
		if out, err := exec.Command("fusermount3", "-u", p.Dir).CombinedOutput(); err != nil {
			t.Logf("fusermount3 -u %s: %v %s; stopping dfuse with SIGTERM", p.Dir, err, out)
			p.Signal(syscall.SIGTERM)
		}
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("dfuse exited: %v\n%s", p.err, p.Log())
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		exec.Command("fusermount3", "-u", "-z", p.Dir).Run()
		t.Errorf("dfuse did not exit after the unmount:\n%s", p.Log())
	}
}

// Mounted tells whether dir is a FUSE mount point.
func Mounted(dir string) bool {
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
