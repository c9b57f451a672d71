package posixload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

//go:embed csrc/*.c
var csrc embed.FS

// tool finds the first of names in PATH. When none is there the test skips
// naming the Debian package that brings it — or fails when CI is set in the
// environment, since CI installs every package with scripts/deps.sh and a
// skipped workload there would hide a broken setup.
func tool(tb testing.TB, pkg string, names ...string) string {
	tb.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found in PATH: install the Debian package %s (scripts/deps.sh installs it)",
		strings.Join(names, " or "), pkg)
	if os.Getenv("CI") != "" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// Compiled C programs, once per test process: every workload run against
// another directory reuses them.
var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]string // by source name
}

// build compiles csrc/<src> with compiler (and extra arguments) into the
// process's build directory, once.
func build(tb testing.TB, src string, compiler string, args ...string) string {
	tb.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if bin, ok := builds.bins[src]; ok {
		return bin
	}
	code, err := csrc.ReadFile("csrc/" + src)
	if err != nil {
		tb.Fatalf("posixload: embedded source %s: %v", src, err)
	}
	if builds.dir == "" {
		d, err := os.MkdirTemp("", "godaos-posixload-bin")
		if err != nil {
			tb.Fatalf("posixload: build directory: %v", err)
		}
		os.Chmod(d, 0o755) // a workload may run as another user
		builds.dir = d
		builds.bins = map[string]string{}
	}
	sum := sha256.Sum256(code)
	base := strings.TrimSuffix(src, ".c")
	srcPath := filepath.Join(builds.dir, src)
	bin := filepath.Join(builds.dir, base+"-"+hex.EncodeToString(sum[:4]))
	if err := os.WriteFile(srcPath, code, 0o644); err != nil {
		tb.Fatalf("posixload: %v", err)
	}
	cmdArgs := append([]string{"-O2", "-Wall", "-o", bin, srcPath}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cc := exec.CommandContext(ctx, compiler, cmdArgs...)
	cc.Dir = builds.dir // h5pcc compiles and links in two steps, leaving the object file in its working directory
	out, err := cc.CombinedOutput()
	if err != nil {
		tb.Fatalf("posixload: compiling %s: %s %s: %v\n%s", src, compiler, strings.Join(cmdArgs, " "), err, out)
	}
	builds.bins[src] = bin
	return bin
}

// Cleanup removes the programs the workloads compiled (call it from TestMain
// after m.Run; without it they stay in a godaos-posixload-bin* directory of
// os.TempDir()).
func Cleanup() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.dir, builds.bins = "", nil
}

// runResult is what run saw of a command.
type runResult struct {
	stdout, stderr string
	elapsed        time.Duration
	err            error // nil, *exec.ExitError or the reason it did not run
	timedOut       bool
}

// run runs a command in its own process group, bounded by timeout: at the
// deadline the whole group is killed, so that MPI ranks that mpirun forked
// do not outlive the test.
func run(dir string, env []string, timeout time.Duration, name string, args ...string) runResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second // children holding the output pipes open
	start := time.Now()
	err := cmd.Run()
	r := runResult{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start), err: err}
	if ctx.Err() != nil {
		r.timedOut = true
	}
	// A rank left behind by an mpirun that died some other way.
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	return r
}

// describe is a failed command's story for a test failure.
func (r runResult) describe(what string, timeout time.Duration) string {
	var why string
	var ee *exec.ExitError
	switch {
	case r.timedOut:
		why = fmt.Sprintf("did not finish within %v (killed)", timeout)
	case errors.As(r.err, &ee):
		why = fmt.Sprintf("failed: %v", ee)
	default:
		why = fmt.Sprintf("did not run: %v", r.err)
	}
	return fmt.Sprintf("%s %s after %v\nstdout:\n%s\nstderr:\n%s", what, why, r.elapsed.Round(time.Millisecond),
		tail(r.stdout), tail(r.stderr))
}

// tail keeps the end of a long output (the error is usually there).
func tail(s string) string {
	const max = 8000
	if len(s) > max {
		return "..." + s[len(s)-max:]
	}
	return s
}

// mpi finds MPICH's compiler wrapper and launcher: the .mpich/hydra names
// first, since the plain names are Debian alternatives that may point to
// Open MPI.
func mpi(tb testing.TB) (mpicc, mpirun string) {
	tb.Helper()
	mpicc = tool(tb, "libmpich-dev", "mpicc.mpich", "mpicc")
	mpirun = tool(tb, "mpich", "mpiexec.hydra", "mpirun.mpich", "mpirun")
	return mpicc, mpirun
}

// mpirunArgs launches np ranks of prog on this host. -launcher fork keeps
// hydra from trying ssh; the rest of the command line is prog's.
func mpirunArgs(np int, prog string, args ...string) []string {
	return append([]string{"-launcher", "fork", "-np", fmt.Sprint(np), prog}, args...)
}
