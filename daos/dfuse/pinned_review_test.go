package dfuse_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"golang.org/x/sys/unix"
)

// Behaviour pinned by review: what a dfuse mount does right today and must
// keep doing.

// replaceRenamedOpenFile: mount a has file x open; mount b (another client)
// renames x to y and creates a new x; then a removes its x with op (the
// kernel of a may still trust its entry for x). The file now named y must
// keep its data after a closes it. It returns what y holds through b and
// through DFS.
func replaceRenamedOpenFile(t *testing.T, op func(dir, x string) error) (viaMount, viaDFS string) {
	t.Helper()
	cont := newCont(t, dfs.Attr{})
	// the entry timeout only makes the kernel's trust in its entry for x
	// certain; the default 1 s gives the same while the steps below take
	// less (they take milliseconds)
	a, b := mount(t, cont, "--entry-timeout", "1h"), mount(t, cont)
	x := filepath.Join(a.dir, "x")
	f, err := os.Create(x)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("precious")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(b.dir, "x"), filepath.Join(b.dir, "y")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "x"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := op(a.dir, x); err != nil {
		t.Fatal(err)
	}
	f.Close()
	a.Stop(t) // the kernel sends the release asynchronously; unmounting waits for it
	_, direct := readDirect(t, cont, "/y", 0, 8)
	got, _ := os.ReadFile(filepath.Join(b.dir, "y"))
	return string(got), string(direct)
}

// TestReviewRenameOverRenamedOpenFile: a rename over x revalidates x (FUSE
// looks rename targets up again), so the open file another client renamed
// to y keeps its data. (Unlink does not revalidate: see
// TestReviewUnlinkOfRenamedOpenFile.)
func TestReviewRenameOverRenamedOpenFile(t *testing.T) {
	got, direct := replaceRenamedOpenFile(t, func(dir, x string) error {
		w := filepath.Join(dir, "w")
		if err := os.WriteFile(w, []byte("w"), 0o644); err != nil {
			return err
		}
		return os.Rename(w, x)
	})
	if got != "precious" || direct != "precious" {
		t.Errorf("y reads %q through the other mount, %q through DFS; want \"precious\"", got, direct)
	}
}

// TestReviewCloseThenUnlinkLeaks: files written, closed and unlinked at
// once (the kernel sends the release after close returns, so dfuse may see
// it meet the unlink) leave no object holding data behind.
func TestReviewCloseThenUnlinkLeaks(t *testing.T) {
	cont := newCont(t, dfs.Attr{})
	d := mount(t, cont)
	data := []byte("some data")
	const files = 400
	for i := 0; i < files; i++ { // bounded
		p := filepath.Join(d.dir, fmt.Sprintf("f%d", i%8))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	d.Stop(t) // every release done
	ctx := context.Background()
	h := openCont(t, cont)
	var all []daos.OID
	for a := (daos.Anchor{}); !a.EOF; {
		oids, err := h.ListObjects(ctx, &a, 1000)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, oids...)
	}
	// the superblock and the root directory at most
	if len(all) > 2 {
		t.Errorf("after %d files written and removed, %d objects hold data: %v", files, len(all), all[:min(len(all), 10)])
	}
}

// openCont opens container cont of pool tank for the test.
func openCont(t *testing.T, cont string) *daos.Cont {
	t.Helper()
	ctx := context.Background()
	c, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Fini() })
	pl, err := c.PoolConnect(ctx, "tank", daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pl.Disconnect(ctx) })
	h, err := pl.ContOpen(ctx, cont, daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	return h
}

// readDirect reads n bytes at off of the file at p of container cont
// through DFS in this process (no kernel cache), and returns its size.
func readDirect(t *testing.T, cont, p string, off int64, n int) (uint64, []byte) {
	t.Helper()
	ctx := context.Background()
	f, err := dfs.Mount(ctx, openCont(t, cont), true)
	if err != nil {
		t.Fatal(err)
	}
	o, err := f.LookupPath(ctx, p, false)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close(ctx)
	size, err := o.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	m, err := o.Read(ctx, buf, off)
	if err != nil {
		t.Fatal(err)
	}
	return size, buf[:m]
}

// TestReviewXattrOfReplacedName: an open file's xattrs are its own, not
// those of whatever now has its old name (failed before aeab4f4).
func TestReviewXattrOfReplacedName(t *testing.T) {
	d := mount(t, newCont(t, dfs.Attr{}))
	p := filepath.Join(d.dir, "a")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(p, "user.who", []byte("the new file"), 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := unix.Fgetxattr(int(f.Fd()), "user.who", buf)
	if err == nil {
		t.Errorf("fgetxattr of the unlinked open file returned %q: the xattr of the file that took its name", buf[:n])
	}
	lb := make([]byte, 256)
	if n, err := unix.Flistxattr(int(f.Fd()), lb); err == nil && bytes.Contains(lb[:n], []byte("user.who")) {
		t.Errorf("flistxattr of the unlinked open file lists %q: the other file's", lb[:n])
	}
}
