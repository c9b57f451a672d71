package il_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fs"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/daos/il"
	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/internal/testsys/dfusetest"
	"github.com/godaos/godaos/internal/testsys/inproc"
	"github.com/godaos/godaos/internal/testsys/posixload"
)

// The system (one server, pool "tank" of 2 GiB owned by the user) starts
// with the first test that needs it, so that the unit tests and fuzz
// targets of the package run without one.
var sys struct {
	once sync.Once
	s    *inproc.System
	stop func()
	err  error
}

func system(t testing.TB) {
	t.Helper()
	sys.once.Do(func() {
		sys.s, sys.stop, sys.err = inproc.StartMain(false)
		if sys.err != nil {
			return
		}
		os.Setenv("DAOS_AGENT_DRPC_DIR", filepath.Dir(sys.s.Agent.Socket()))
		// inproc's pools are 256 MiB: the tests write more
		sys.err = createPool("tank", 2<<30)
	})
	if sys.err != nil {
		t.Fatal(sys.err)
	}
}

// createPool creates a pool owned by the user.
func createPool(label string, size uint64) error {
	u, err := user.Current()
	if err != nil {
		return err
	}
	r, err := sys.s.Admin.PoolCreate(context.Background(), &ctlpb.PoolCreateReq{Label: label, ScmSize: 256 << 20,
		NvmeSize: size, User: u.Username, Group: u.Username})
	return ctlclient.Err(err, r.GetError(), "pool create "+label)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sys.stop != nil {
		sys.stop()
	}
	testsys.RemoveBinaries()
	posixload.Cleanup()
	libs.mu.Lock()
	if libs.dir != "" {
		os.RemoveAll(libs.dir)
	}
	libs.mu.Unlock()
	os.Exit(code)
}

// libs builds the two libraries once per test process.
var libs struct {
	mu  sync.Mutex
	dir string
	err error
}

func shim(t testing.TB) string {
	t.Helper()
	libs.mu.Lock()
	defer libs.mu.Unlock()
	if libs.dir == "" && libs.err == nil {
		libs.dir, libs.err = os.MkdirTemp("", "godaos-il")
		if libs.err == nil {
			os.Chmod(libs.dir, 0o755)
			libs.err = il.Build(libs.dir)
		}
	}
	if libs.err != nil {
		t.Fatal(libs.err)
	}
	return filepath.Join(libs.dir, il.ShimName)
}

// cc compiles testdata/<src> (with csrc/ on the include path) once.
func cc(t testing.TB, src string, args ...string) string {
	t.Helper()
	shim(t)
	bin := filepath.Join(libs.dir, strings.TrimSuffix(src, ".c"))
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	abs, _ := filepath.Abs(filepath.Join("testdata", src))
	out, err := exec.Command("gcc", append([]string{"-O2", "-Wall", "-Icsrc", "-o", bin, abs}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("gcc %s: %v\n%s", src, err, out)
	}
	return bin
}

// newCont creates a POSIX container with a DFS namespace in pool.
func newCont(t testing.TB, pool string) string {
	t.Helper()
	system(t)
	return dfusetest.NewPOSIXCont(t, pool, dfs.Attr{})
}

// mount runs `dfuse -f` for a new container on a new directory and waits
// (bounded) for the mount; it is unmounted when the test ends.
func mount(t testing.TB) string { return mountPool(t, "tank") }

func mountPool(t testing.TB, pool string, extra ...string) string {
	t.Helper()
	// dfuse itself is never intercepted
	return dfusetest.Mount(t, pool, newCont(t, pool), []string{"LD_PRELOAD="}, extra...).Dir
}

// report sums the counts of every process that reported into a file.
type report struct {
	procs  int
	counts map[string]uint64
}

func readReport(t testing.TB, path string) report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	r := report{counts: map[string]uint64{}}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "intercepted") {
			continue
		}
		r.procs++
		for _, f := range strings.Fields(line) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("report line %q: %v", line, err)
			}
			r.counts[k] += n
		}
	}
	return r
}

// ilEnv is the environment of a process under the library, reporting
// into a new file.
func ilEnv(t testing.TB) (env []string, reportPath string) {
	reportPath = filepath.Join(t.TempDir(), fmt.Sprintf("report-%d", time.Now().UnixNano()))
	return append(os.Environ(), "LD_PRELOAD="+shim(t), "GODAOS_IL_REPORT="+reportPath), reportPath
}

// run runs a command under the library (bounded) and returns its output and
// the processes' counts.
func run(t testing.TB, timeout time.Duration, name string, args ...string) (string, report) {
	t.Helper()
	env, rp := ilEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), readReport(t, rp)
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

func randomFile(t testing.TB, path string, mib int) []byte {
	t.Helper()
	out, err := exec.Command("dd", "if=/dev/urandom", "of="+path, "bs=1M", fmt.Sprint("count=", mib), "status=none").CombinedOutput()
	if err != nil {
		t.Fatalf("dd: %v %s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHeaderMatches holds csrc/dfuse_il.h to il's constants.
func TestHeaderMatches(t *testing.T) {
	out, err := exec.Command(cc(t, "header.c")).CombinedOutput()
	if err != nil {
		t.Fatal(err, string(out))
	}
	want := fmt.Sprintf("size=%d cmd=%#x magic=%#x version=%d pool=8 cont=24 hi=40 lo=48 chunk=56\n",
		il.InfoSize, il.IoctlInfo, il.InfoMagic, il.InfoVersion)
	if string(out) != want {
		t.Fatalf("dfuse_il.h says\n%s, il says\n%s", out, want)
	}
}

// TestDD writes 64 MiB with dd under the library and reads it back with
// and without it.
func TestDD(t *testing.T) {
	mnt := mount(t)
	local := t.TempDir()
	want := randomFile(t, filepath.Join(local, "src"), 64)
	f := filepath.Join(mnt, "f")
	_, r := run(t, 2*time.Minute, "dd", "if="+filepath.Join(local, "src"), "of="+f, "bs=1M")
	if r.counts["open"] == 0 || r.counts["write"] < 64 || r.counts["bytes_written"] != 64<<20 {
		t.Fatalf("dd's writes were not intercepted: %v", r.counts)
	}
	// without the library: the kernel's size and data
	st, err := os.Stat(f)
	if err != nil || st.Size() != 64<<20 {
		t.Fatalf("stat through the kernel: %v %v", st, err)
	}
	got, err := os.ReadFile(f)
	if err != nil || sum(got) != sum(want) {
		t.Fatalf("read back without the library: %d bytes, %v, differ", len(got), err)
	}
	back := filepath.Join(local, "back")
	_, r = run(t, 2*time.Minute, "dd", "if="+f, "of="+back, "bs=1M")
	if r.counts["read"] < 64 || r.counts["bytes_read"] != 64<<20 {
		t.Fatalf("dd's reads were not intercepted: %v", r.counts)
	}
	if got, err := os.ReadFile(back); err != nil || sum(got) != sum(want) {
		t.Fatalf("read back with the library: differ (%v)", err)
	}
	// other block sizes, not aligned to the chunks
	_, r = run(t, time.Minute, "dd", "if="+filepath.Join(local, "src"), "of="+filepath.Join(mnt, "g"), "bs=777k")
	if r.counts["write"] == 0 {
		t.Fatalf("not intercepted: %v", r.counts)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "g")); err != nil || sum(got) != sum(want) {
		t.Fatalf("bs=777k: differ (%v)", err)
	}
}

// TestCp copies a file in and out with cp (which tries FICLONE and
// copy_file_range before read and write).
func TestCp(t *testing.T) {
	mnt := mount(t)
	local := t.TempDir()
	want := randomFile(t, filepath.Join(local, "src"), 9)
	_, r := run(t, time.Minute, "cp", filepath.Join(local, "src"), filepath.Join(mnt, "in"))
	if r.counts["write"] == 0 || r.counts["bytes_written"] != uint64(len(want)) {
		t.Fatalf("cp in: not intercepted: %v", r.counts)
	}
	_, r = run(t, time.Minute, "cp", filepath.Join(mnt, "in"), filepath.Join(local, "out"))
	if r.counts["read"] == 0 || r.counts["bytes_read"] != uint64(len(want)) {
		t.Fatalf("cp out: not intercepted: %v", r.counts)
	}
	for _, p := range []string{filepath.Join(mnt, "in"), filepath.Join(local, "out")} {
		if got, err := os.ReadFile(p); err != nil || sum(got) != sum(want) {
			t.Fatalf("%s differs (%v)", p, err)
		}
	}
	// mount to mount
	_, r = run(t, time.Minute, "cp", filepath.Join(mnt, "in"), filepath.Join(mnt, "in2"))
	if r.counts["read"] == 0 || r.counts["write"] == 0 {
		t.Fatalf("cp within the mount: not intercepted: %v", r.counts)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "in2")); err != nil || sum(got) != sum(want) {
		t.Fatalf("in2 differs (%v)", err)
	}
}

// TestFio runs fio's psync engine with crc32c verification, sequential and
// random, several jobs, on the mount: jobs as processes (fio's default,
// forked after the parent opened the files) and as threads of one process
// (concurrent calls into one Go client).
func TestFio(t *testing.T) {
	if _, err := exec.LookPath("fio"); err != nil {
		t.Fatal("fio not installed: scripts/deps.sh installs it (Debian package fio)")
	}
	mnt := mount(t)
	for _, tc := range []struct{ name, global string }{{"processes", ""}, {"threads", "thread=1\n"}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(mnt, tc.name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			job := filepath.Join(t.TempDir(), "il.fio")
			os.WriteFile(job, []byte(fmt.Sprintf(`[global]
%sioengine=psync
directory=%s
verify=crc32c
verify_fatal=1
do_verify=1
verify_state_save=0
bssplit=4k/30:64k/40:1m/30
end_fsync=1

[seq]
rw=write
size=8m
numjobs=3

[rand]
stonewall
rw=randwrite
verify_backlog=16
filename=rand.dat
size=8m
offset_increment=8m
numjobs=3
`, tc.global, dir)), 0o644)
			out, r := run(t, 3*time.Minute, "fio", "--output-format=terse", job)
			if r.counts["pwrite"]+r.counts["write"] == 0 || r.counts["pread"]+r.counts["read"] == 0 || r.counts["bytes_written"] != 48<<20 {
				t.Fatalf("fio's I/O was not intercepted: %v\n%s", r.counts, out)
			}
			t.Logf("fio: %d processes reported, %v", r.procs, r.counts)
		})
	}
}

// TestMPIIO runs posixload's MPI-IO program (independent and collective
// writes through strided views, read back and checked) with the library
// preloaded into the 4 ranks (mpirun passes the environment on), with
// collective buffering and with data sieving (read-modify-write through
// the library under fcntl locks taken through the mount).
func TestMPIIO(t *testing.T) {
	mnt := mount(t)
	for _, mode := range []posixload.MPIIOMode{posixload.CollectiveBuffering, posixload.DataSieving} {
		t.Run(mode.String(), func(t *testing.T) {
			env, rp := ilEnv(t)
			for _, kv := range env {
				if k, v, _ := strings.Cut(kv, "="); k == "LD_PRELOAD" || k == "GODAOS_IL_REPORT" {
					t.Setenv(k, v)
				}
			}
			posixload.MPIIO(t, mnt, posixload.MPIIOOptions{Mode: mode, SizePerRank: 1 << 20, Timeout: 3 * time.Minute})
			r := readReport(t, rp)
			if r.counts["pwrite"]+r.counts["write"] == 0 || r.counts["pread"]+r.counts["read"] == 0 {
				t.Fatalf("the ranks' I/O was not intercepted: %d processes, %v", r.procs, r.counts)
			}
			t.Logf("mpirun: %d processes reported, %v", r.procs, r.counts)
		})
	}
}

// TestSemantics runs testdata/semantics.c under the library: offsets,
// holes, sizes, readv/writev, dup, access modes, O_APPEND, mtime and size
// after close, fork with a shared offset and an exec'ed grandchild, threads.
func TestSemantics(t *testing.T) {
	mnt := mount(t)
	bin := cc(t, "semantics.c", "-lpthread")
	out, r := run(t, time.Minute, bin, mnt)
	if strings.TrimSpace(out) != "ok" {
		t.Fatalf("semantics: %s", out)
	}
	t.Logf("%d processes: %v", r.procs, r.counts)
	for _, k := range []string{"open", "read", "write", "pread", "pwrite", "readv", "writev", "preadv", "pwritev", "lseek", "fstat", "dup", "fallback"} {
		if r.counts[k] == 0 {
			t.Errorf("no %s intercepted: %v", k, r.counts)
		}
	}
}

// TestForkExec: bash under the library runs children that read and write
// through the mount (cat, a subshell's redirections).
func TestForkExec(t *testing.T) {
	mnt := mount(t)
	local := t.TempDir()
	want := randomFile(t, filepath.Join(local, "src"), 5)
	if err := os.WriteFile(filepath.Join(mnt, "f"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`set -e
cat %[1]s/f > %[2]s/cat.out
cat %[1]s/f | cat > %[2]s/pipe.out
exec 3<>%[1]s/seq
printf AAA >&3
( printf BBB >&3 )
bash -c 'printf CCC >&3'
printf DDD >&3
exec 3>&-
cat %[1]s/seq`, mnt, local)
	out, r := run(t, time.Minute, "bash", "-c", script)
	if out != "AAABBBCCCDDD" {
		t.Fatalf("writes through a shared descriptor: %q", out)
	}
	for _, p := range []string{"cat.out", "pipe.out"} {
		if got, err := os.ReadFile(filepath.Join(local, p)); err != nil || sum(got) != sum(want) {
			t.Fatalf("%s differs (%v)", p, err)
		}
	}
	t.Logf("%d processes: %v", r.procs, r.counts)
	if r.counts["read"] == 0 || r.procs < 3 {
		t.Fatalf("the children's reads were not intercepted: %d processes, %v", r.procs, r.counts)
	}
}

// TestNotDfuse: files elsewhere are left alone, and the Go client is never
// loaded for them.
func TestNotDfuse(t *testing.T) {
	local := t.TempDir()
	want := randomFile(t, filepath.Join(local, "src"), 3)
	out, r := run(t, time.Minute, "bash", "-c", fmt.Sprintf("dd if=%[1]s/src of=%[1]s/dst bs=64k status=none && cp %[1]s/dst %[1]s/dst2 && cat %[1]s/dst2 > /dev/null && cat /proc/self/maps", local))
	if r.procs < 3 || r.counts["total"] != 0 || r.counts["declined"] != 0 || r.counts["fallback"] != 0 {
		t.Fatalf("local files touched: %d processes, %v", r.procs, r.counts)
	}
	if !strings.Contains(out, il.ShimName) || strings.Contains(out, il.GoName) {
		t.Fatalf("cat's mappings: want %s and not %s:\n%s", il.ShimName, il.GoName, out)
	}
	if got, err := os.ReadFile(filepath.Join(local, "dst2")); err != nil || sum(got) != sum(want) {
		t.Fatalf("dst2 differs (%v)", err)
	}
}

// TestOtherFUSE: a FUSE file system that is not dfuse (go-fuse's loopback,
// which passes the ioctl to ext4 or tmpfs, which refuse it) is left alone.
func TestOtherFUSE(t *testing.T) {
	under, mnt := t.TempDir(), filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(mnt, 0o755)
	root, err := fs.NewLoopbackRoot(under)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := fs.Mount(mnt, root, &fs.Options{})
	if err != nil {
		t.Fatalf("mount a second FUSE file system: %v (the dfuse tests need FUSE too: /dev/fuse and fuse3)", err)
	}
	defer srv.Unmount()
	local := t.TempDir()
	want := randomFile(t, filepath.Join(local, "src"), 3)
	_, r := run(t, time.Minute, "dd", "if="+filepath.Join(local, "src"), "of="+filepath.Join(mnt, "f"), "bs=1M", "status=none")
	if r.counts["total"] != 0 || r.counts["declined"] == 0 {
		t.Fatalf("want the file declined, nothing intercepted: %v", r.counts)
	}
	if got, err := os.ReadFile(filepath.Join(under, "f")); err != nil || sum(got) != sum(want) {
		t.Fatalf("f differs (%v)", err)
	}
}

// TestDisable: GODAOS_IL_DISABLE=1 intercepts nothing on the mount.
func TestDisable(t *testing.T) {
	mnt := mount(t)
	t.Setenv("GODAOS_IL_DISABLE", "1")
	local := t.TempDir()
	want := randomFile(t, filepath.Join(local, "src"), 3)
	_, r := run(t, time.Minute, "dd", "if="+filepath.Join(local, "src"), "of="+filepath.Join(mnt, "f"), "bs=1M", "status=none")
	if r.procs != 1 || r.counts["total"] != 0 {
		t.Fatalf("intercepted while disabled: %d processes, %v", r.procs, r.counts)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || sum(got) != sum(want) {
		t.Fatalf("f differs (%v)", err)
	}
}

// TestIoctl asks dfuse directly: its answer names the pool, the container,
// the file's object and chunk size; other commands and directories get
// ENOTTY.
func TestIoctl(t *testing.T) {
	mnt := mount(t)
	p := filepath.Join(mnt, "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ioctl := func(path string, cmd uint32) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, il.InfoSize)
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(cmd), uintptr(unsafe.Pointer(&b[0]))); e != 0 {
			return nil, e
		}
		return b, nil
	}
	b, err := ioctl(p, il.IoctlInfo)
	if err != nil {
		t.Fatal(err)
	}
	info, err := il.DecodeInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	// what the client API says about the same file
	ctx := context.Background()
	c, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Fini()
	pool, err := c.PoolConnect(ctx, il.FormatUUID(info.Pool), daos.RO)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Disconnect(ctx)
	if pool.Info.GetLabel() != "tank" {
		t.Fatalf("pool %s is %q, want tank", il.FormatUUID(info.Pool), pool.Info.GetLabel())
	}
	cont, err := pool.ContOpen(ctx, il.FormatUUID(info.Cont), daos.RO)
	if err != nil {
		t.Fatal(err)
	}
	defer cont.Close(ctx)
	fsys, err := dfs.Mount(ctx, cont, true)
	if err != nil {
		t.Fatal(err)
	}
	obj, st, err := fsys.LookupStat(ctx, fsys.Root(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close(ctx)
	if info.OID != st.OID || info.ChunkSize != obj.ChunkSize() {
		t.Fatalf("ioctl says %v chunk %d, DFS says %v chunk %d", info.OID, info.ChunkSize, st.OID, obj.ChunkSize())
	}
	for _, tc := range []struct {
		name string
		path string
		cmd  uint32
	}{
		{"other command", p, il.IoctlInfo + 1},
		{"directory", mnt, il.IoctlInfo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ioctl(tc.path, tc.cmd); err != syscall.ENOTTY {
				t.Fatalf("got %v, want ENOTTY", err)
			}
		})
	}
}

// TestNoAgent: when the Go client cannot attach (here: no daos_agent where
// it looks), descriptors fall back to the mount at their first read or
// write, and the data is right.
func TestNoAgent(t *testing.T) {
	mnt := mount(t)
	t.Setenv("DAOS_AGENT_DRPC_DIR", t.TempDir())
	t.Setenv("GODAOS_IL_DEBUG", "1")
	local := t.TempDir()
	want := randomFile(t, filepath.Join(local, "src"), 3)
	out, r := run(t, time.Minute, "dd", "if="+filepath.Join(local, "src"), "of="+filepath.Join(mnt, "f"), "bs=1M", "status=none")
	if r.counts["fallback"] == 0 || r.counts["write"] != 0 {
		t.Fatalf("want a fallback and no intercepted write: %v\n%s", r.counts, out)
	}
	t.Logf("%v\n%s", r.counts, out)
	if !strings.Contains(out, "cannot open the object") {
		t.Errorf("GODAOS_IL_DEBUG did not say why:\n%s", out)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || sum(got) != sum(want) {
		t.Fatalf("f differs (%v)", err)
	}
}

// TestMultiUser: on a --multi-user mount, a user whom the pool grants
// nothing (nobody; the pool refuses its agent-signed credential with
// DER_NO_PERM) writes and reads through the mount, not through the library:
// the library never gives a process more than its own credential does.
func TestMultiUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: a --multi-user mount and commands run as another user")
	}
	mnt := mountPool(t, "tank", "--multi-user")
	for p := filepath.Dir(mnt); p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	// nobody reaches the agent (as on a real node), which signs its
	// credential: the pool's ACL, not a missing socket, turns it away
	sock := sys.s.Agent.Socket()
	os.Chmod(sock, 0o777)
	for p := filepath.Dir(sock); p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	if err := os.Chmod(mnt, 0o777); err != nil {
		t.Fatal(err)
	}
	local, err := os.MkdirTemp("", "godaos-il-nobody")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(local)
	os.Chmod(local, 0o777)
	want := randomFile(t, filepath.Join(local, "src"), 3)
	os.Chmod(filepath.Join(local, "src"), 0o644)
	rp := filepath.Join(local, "report")
	const nobody = 65534
	cmd := exec.Command("sh", "-c", fmt.Sprintf("dd if=%s of=%s/f bs=1M status=none && dd if=%[2]s/f of=%[3]s/back bs=1M status=none", filepath.Join(local, "src"), mnt, local))
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+shim(t), "GODAOS_IL_REPORT="+rp, "GODAOS_IL_DEBUG=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "DER_NO_PERM") {
		t.Errorf("want the pool to refuse nobody:\n%s", out)
	}
	r := readReport(t, rp)
	if r.procs < 2 || r.counts["write"]+r.counts["read"] != 0 || r.counts["fallback"] == 0 {
		t.Fatalf("nobody's I/O: want fallbacks and nothing intercepted: %d processes, %v", r.procs, r.counts)
	}
	for _, p := range []string{filepath.Join(mnt, "f"), filepath.Join(local, "back")} {
		if got, err := os.ReadFile(p); err != nil || sum(got) != sum(want) {
			t.Fatalf("%s differs (%v)", p, err)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(mnt, "f"), &st); err != nil || st.Uid != nobody {
		t.Fatalf("the file is uid %d (%v), want nobody's", st.Uid, err)
	}
}
