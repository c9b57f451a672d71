package mover

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/internal/testsys/inproc"
)

var sys *inproc.System

// TestMain starts a one-server system with two pools owned by the user:
// "tank" and "other" (for copies and clones across pools).
func TestMain(m *testing.M) {
	s, stop, err := inproc.StartMain(false, "tank", "other")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sys = s
	os.Setenv("DAOS_AGENT_DRPC_DIR", filepath.Dir(s.Agent.Socket()))
	code := m.Run()
	stop()
	testsys.RemoveBinaries()
	os.Exit(code)
}

var contSeq atomic.Int64

// client is a client for the test, closed when it ends.
func client(t testing.TB) *daos.Client {
	t.Helper()
	c, err := daos.Init(context.Background(), daos.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Fini() })
	return c
}

// newPOSIXCont creates a POSIX container with a formatted namespace in
// pool and returns its label and a mount of it.
func newPOSIXCont(t testing.TB, c *daos.Client, pool string, attr dfs.Attr) (string, *dfs.FS) {
	t.Helper()
	ctx := context.Background()
	p, err := c.PoolConnect(ctx, pool, daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	label := fmt.Sprintf("mv%d", contSeq.Add(1))
	if _, err := p.ContCreate(ctx, daos.ContCreateOptions{Label: label, Type: "POSIX"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.ContDestroy(context.Background(), label) })
	return label, mountCont(t, c, pool, label, attr)
}

// mountCont mounts a POSIX container, formatting it first with attr if it
// holds no namespace yet.
func mountCont(t testing.TB, c *daos.Client, pool, label string, attr dfs.Attr) *dfs.FS {
	t.Helper()
	ctx := context.Background()
	p, err := c.PoolConnect(ctx, pool, daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p.ContOpen(ctx, label, daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	if err := dfs.Format(ctx, h, attr); err != nil && dfs.Errno(err) != unix.EEXIST {
		t.Fatal(err)
	}
	f, err := dfs.Mount(ctx, h, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return f
}

func ep(t testing.TB, s string) Endpoint {
	t.Helper()
	e, err := ParseEndpoint(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// makeWritable undoes read-only directories under dir, so that the test's
// cleanup can remove it.
func makeWritable(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
}

// tempDir is t.TempDir that can be removed even with read-only
// directories in it.
func tempDir(t *testing.T) string {
	d := t.TempDir()
	t.Cleanup(func() { makeWritable(d) })
	return d
}

const mib = 1 << 20

// sparseFiles are the sparse files of the generated tree: their data
// extents and size; the rest is holes.
var sparseFiles = map[string]struct {
	data []region
	size int64
}{
	"sparse/start":  {[]region{{5 * mib, mib}}, 6 * mib},                      // a hole at the start
	"sparse/middle": {[]region{{0, mib}, {7 * mib, mib}}, 8 * mib},            // in the middle
	"sparse/end":    {[]region{{0, mib + 100}}, 9 * mib},                      // at the end
	"sparse/odd":    {[]region{{12345, 5000}, {3*mib + 7, 70000}}, 4*mib + 3}, // unaligned
}

// makeTree generates the test tree: nested directories (one empty, one
// read-only), empty and small files of odd modes, a 20 MiB file, sparse
// files, symlinks (relative, absolute, dangling), user xattrs, owners, and
// mtimes in the past with nanoseconds.
func makeTree(t *testing.T, root string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, d := range []string{"a/b/c/d", "empty", "ro", "sparse", "x"} {
		must(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	files := map[string][]byte{
		"empty.txt":       nil,
		"a/one":           []byte("one\n"),
		"a/b/two":         random(3000),
		"a/b/c/three":     random(mib + 17),
		"a/b/c/d/four":    random(1),
		"big.bin":         random(20 * mib),
		"ro/readonly":     []byte("read only\n"),
		"x/zeros-but-one": append(make([]byte, 3*mib), 1),
	}
	for i := range 40 { // many small files: the pool's workers share them
		files[fmt.Sprintf("x/f%02d", i)] = random(rng.IntN(20000))
	}
	for p, b := range files {
		must(os.WriteFile(filepath.Join(root, p), b, 0o644))
	}
	for p, s := range sparseFiles {
		f, err := os.Create(filepath.Join(root, p))
		must(err)
		for _, r := range s.data {
			_, err := f.WriteAt(random(int(r.n)), r.off)
			must(err)
		}
		must(f.Truncate(s.size))
		must(f.Close())
	}
	must(os.Symlink("b/two", filepath.Join(root, "a/rel-link")))
	must(os.Symlink("../nowhere/at/all", filepath.Join(root, "a/b/dangling")))
	must(os.Symlink("/etc/hostname", filepath.Join(root, "abs-link")))
	must(unix.Setxattr(filepath.Join(root, "a/one"), "user.comment", []byte("the first"), 0))
	must(unix.Setxattr(filepath.Join(root, "a/one"), "user.empty", nil, 0))
	must(unix.Setxattr(filepath.Join(root, "a/b"), "user.dir", []byte{0, 1, 2, 255}, 0))
	must(unix.Setxattr(filepath.Join(root, "big.bin"), "user.checksum", []byte("sha256:whatever"), 0))
	modes := map[string]uint32{"a/one": 0o600, "a/b/two": 0o751, "a/b/c/three": 0o400, "empty.txt": 0o444,
		"a/b/c/d/four": 0o4755, "ro/readonly": 0o444, "a/b/c": 0o700, "x": 0o1777}
	if os.Geteuid() == 0 {
		modes["empty.txt"] = 0o000 // only root reads it to copy it
	}
	for p, m := range modes {
		must(unix.Chmod(filepath.Join(root, p), m))
	}
	if os.Geteuid() == 0 {
		must(os.Lchown(filepath.Join(root, "a/b/two"), 1234, 5678))
		must(os.Lchown(filepath.Join(root, "a/b/dangling"), 4321, 8765))
		must(os.Lchown(filepath.Join(root, "a/b/c"), 99, 98))
	}
	// mtimes last, the deepest first, read-only directories at the very end
	base := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	var all []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		all = append(all, p)
		return err
	})
	sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
	for i, p := range all {
		mt := base.Add(time.Duration(i)*time.Hour + time.Duration(i*1234567+89))
		ts := []unix.Timespec{unix.NsecToTimespec(mt.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
		must(unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
	must(unix.Chmod(filepath.Join(root, "ro"), 0o555))
	ts := []unix.Timespec{unix.NsecToTimespec(base.UnixNano() + 42), unix.NsecToTimespec(base.UnixNano() + 42)}
	must(unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, "ro"), ts, 0))
}

// entryOf is what a comparison looks at in one entry.
type entryOf struct {
	mode     uint32
	uid, gid uint32
	size     int64
	mtime    int64
	target   string
	sum      [32]byte
	xattrs   string
}

// snapshot describes every entry under root but root itself.
func snapshot(t *testing.T, root string) map[string]entryOf {
	t.Helper()
	out := map[string]entryOf{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := entryOf{mode: st.Mode, uid: st.Uid, gid: st.Gid, mtime: st.Mtim.Nano()}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.size, e.sum = st.Size, sha256.Sum256(b)
		case unix.S_IFLNK:
			e.target, _ = os.Readlink(p)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			x, err := listXattrs(p)
			if err != nil {
				return err
			}
			var names []string
			for k, v := range x {
				names = append(names, fmt.Sprintf("%s=%x", k, v))
			}
			sort.Strings(names)
			e.xattrs = strings.Join(names, ",")
		}
		if rel != "." {
			out[rel] = e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails unless the trees under a and b are equal: types, modes,
// owners, sizes, bytes, mtimes, symlink targets and user xattrs.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	sa, sb := snapshot(t, a), snapshot(t, b)
	for p, ea := range sa {
		eb, ok := sb[p]
		if !ok {
			t.Errorf("%s: missing from the copy", p)
			continue
		}
		if ea != eb {
			t.Errorf("%s differs:\n  source %+v\n  copy   %+v", p, ea, eb)
		}
	}
	for p := range sb {
		if _, ok := sa[p]; !ok {
			t.Errorf("%s: in the copy only", p)
		}
	}
}

// checkHoles fails if the sparse files under root have more blocks than
// their data needs (their holes were written).
func checkHoles(t *testing.T, root string) {
	t.Helper()
	for p, s := range sparseFiles {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(root, p), &st); err != nil {
			t.Fatal(err)
		}
		var data int64
		for _, r := range s.data {
			data += (r.off+r.n+4095)/4096*4096 - r.off/4096*4096
		}
		if st.Size != s.size {
			t.Errorf("%s: size %d, want %d", p, st.Size, s.size)
		}
		// allow the file system's own metadata blocks
		if got := st.Blocks * 512; got > data+64<<10 {
			t.Errorf("%s: %d bytes allocated for %d bytes of data: its holes were written", p, got, data)
		}
	}
	var st unix.Stat_t
	unix.Stat(filepath.Join(root, "x/zeros-but-one"), &st)
	if st.Blocks*512 > 64<<10 {
		t.Errorf("x/zeros-but-one: %d bytes allocated: its zeros were written", st.Blocks*512)
	}
}

// chunksOf counts the chunks (array dkeys) a file of the namespace has.
func chunksOf(t *testing.T, f *dfs.FS, p string) int {
	t.Helper()
	ctx := context.Background()
	o, err := f.LookupPath(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close(ctx)
	obj, err := f.Cont().Obj(o.OID())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for a := (daos.Anchor{}); !a.EOF; {
		keys, err := obj.ListDkeys(ctx, &a, 1024)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if len(k) == 8 && binary.LittleEndian.Uint64(k) > 0 {
				n++
			}
		}
	}
	return n
}

func readDFS(t *testing.T, f *dfs.FS, p string) []byte {
	t.Helper()
	ctx := context.Background()
	o, err := f.LookupPath(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close(ctx)
	n, err := o.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if _, err := o.Read(ctx, b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
