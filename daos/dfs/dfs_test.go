package dfs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
)

// must returns v, or panics with err (failing the test with its stack).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func wantErrno(t testing.TB, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
}

func readAll(t testing.TB, o *dfs.Obj) []byte {
	t.Helper()
	ctx := context.Background()
	size := must(o.Size(ctx))
	buf := make([]byte, size+10)
	n := must(o.Read(ctx, buf, 0))
	return buf[:n]
}

func TestFilesAndDirs(t *testing.T) {
	ctx := context.Background()
	f := newFS(t, dfs.Attr{ChunkSize: 4096})
	root := f.Root()

	if err := f.Mkdir(ctx, root, "d", 0o750, dfs.OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, f.Mkdir(ctx, root, "d", 0o750, dfs.OpenOptions{}), syscall.EEXIST)
	d := must(f.Lookup(ctx, root, "d"))
	defer d.Close(ctx)
	st := must(d.Stat(ctx))
	if !st.IsDir() || st.Mode&0o7777 != 0o750 {
		t.Fatalf("dir mode %#o", st.Mode)
	}

	o := must(f.Open(ctx, d, "f", os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o640, dfs.OpenOptions{}))
	_, err := f.Open(ctx, d, "f", os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o640, dfs.OpenOptions{})
	wantErrno(t, err, syscall.EEXIST)

	// a sparse file over several chunks
	data := bytes.Repeat([]byte("godaos!"), 3000)
	if err := o.Write(ctx, data, 10000); err != nil {
		t.Fatal(err)
	}
	if got := must(o.Size(ctx)); got != 10000+uint64(len(data)) {
		t.Fatalf("size %d", got)
	}
	all := readAll(t, o)
	if !bytes.Equal(all[:10000], make([]byte, 10000)) || !bytes.Equal(all[10000:], data) {
		t.Fatal("read back differs")
	}
	// a read past the end is short; one across a hole inside is not
	buf := make([]byte, 100)
	if n := must(o.Read(ctx, buf, int64(10000+len(data)-30))); n != 30 {
		t.Fatalf("short read %d", n)
	}
	if n := must(o.Read(ctx, buf, 5000)); n != 100 || !bytes.Equal(buf, make([]byte, 100)) {
		t.Fatalf("hole read %d", n)
	}
	if n := must(o.Read(ctx, buf, 1<<30)); n != 0 {
		t.Fatalf("read past end %d", n)
	}

	// truncate down, then up: zeros
	size := uint64(12000)
	st = must(o.SetAttr(ctx, dfs.SetAttr{Size: &size}))
	if st.Size != 12000 {
		t.Fatalf("size after truncate %d", st.Size)
	}
	size = 20000
	must(o.SetAttr(ctx, dfs.SetAttr{Size: &size}))
	all = readAll(t, o)
	if len(all) != 20000 || !bytes.Equal(all[10000:12000], data[:2000]) || !bytes.Equal(all[12000:], make([]byte, 8000)) {
		t.Fatal("truncate")
	}
	// punch keeps the size
	if err := o.PunchRange(ctx, 19000, 5000); err != nil {
		t.Fatal(err)
	}
	if got := must(o.Size(ctx)); got != 20000 {
		t.Fatalf("size after punch %d", got)
	}

	// attributes
	mode, uid := uint32(0o600), uint32(4242)
	mt := time.Unix(1700000000, 123456789)
	st = must(o.SetAttr(ctx, dfs.SetAttr{Mode: &mode, UID: &uid, Mtime: &mt}))
	if st.Mode != dfs.S_IFREG|0o600 || st.UID != 4242 || !st.Mtime.Equal(mt) {
		t.Fatalf("setattr: %+v", st)
	}
	// writes move mtime on, once synced
	if err := o.Write(ctx, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	o = must(f.Open(ctx, d, "f", os.O_RDONLY, 0, dfs.OpenOptions{}))
	if st := must(o.Stat(ctx)); !st.Mtime.After(mt) {
		t.Fatalf("mtime %v not after %v", st.Mtime, mt)
	}
	o.Close(ctx)

	// symlinks
	l := must(f.Symlink(ctx, root, "ln", "d/f", dfs.OpenOptions{}))
	if l.Target() != "d/f" {
		t.Fatal(l.Target())
	}
	l.Close(ctx)
	viaLink := must(f.LookupPath(ctx, "/ln", true))
	if viaLink.OID() != st.OID {
		t.Fatal("symlink followed to another object")
	}
	viaLink.Close(ctx)
	nofollow := must(f.LookupPath(ctx, "/ln", false))
	if s := must(nofollow.Stat(ctx)); !s.IsSymlink() || s.Size != 3 {
		t.Fatalf("lstat %+v", s)
	}
	nofollow.Close(ctx)

	// names
	wantErrno(t, f.Mkdir(ctx, root, strings.Repeat("n", 256), 0o755, dfs.OpenOptions{}), syscall.ENAMETOOLONG)
	if err := f.Mkdir(ctx, root, strings.Repeat("n", 255), 0o755, dfs.OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = f.Lookup(ctx, root, "nope")
	wantErrno(t, err, syscall.ENOENT)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatal("ENOENT is not os.ErrNotExist")
	}

	// rmdir of a non-empty directory
	_, err = f.Remove(ctx, root, "d", dfs.RemoveOptions{})
	wantErrno(t, err, syscall.ENOTEMPTY)
	must(f.Remove(ctx, root, "d", dfs.RemoveOptions{Recursive: true}))
	_, err = f.Lookup(ctx, root, "d")
	wantErrno(t, err, syscall.ENOENT)
}

func TestRename(t *testing.T) {
	ctx := context.Background()
	f := newFS(t, dfs.Attr{})
	root := f.Root()
	mk := func(dir *dfs.Obj, name, content string) {
		o := must(f.Open(ctx, dir, name, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644, dfs.OpenOptions{}))
		if err := o.Write(ctx, []byte(content), 0); err != nil {
			t.Fatal(err)
		}
		o.Close(ctx)
	}
	for _, n := range []string{"a", "b", "full", "empty"} {
		if err := f.Mkdir(ctx, root, n, 0o755, dfs.OpenOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := must(f.Lookup(ctx, root, "a")), must(f.Lookup(ctx, root, "b"))
	full := must(f.Lookup(ctx, root, "full"))
	mk(a, "x", "xxx")
	mk(b, "y", "yy")
	mk(full, "z", "z")

	x := must(f.Lookup(ctx, a, "x"))
	if err := x.SetXattr(ctx, "user.tag", []byte("blue"), 0); err != nil {
		t.Fatal(err)
	}
	if err := x.SetXattr(ctx, "user.empty", nil, dfs.XattrCreate); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, x.SetXattr(ctx, "user.empty", nil, dfs.XattrCreate), syscall.EEXIST)
	wantErrno(t, x.SetXattr(ctx, "user.none", nil, dfs.XattrReplace), syscall.ENODATA)

	// across directories, replacing a file: its xattrs come along, the
	// open handle follows
	if _, err := f.Rename(ctx, a, "x", b, "y", dfs.RenameOptions{}); err != nil {
		t.Fatal(err)
	}
	if x.Name() != "y" {
		t.Fatalf("handle's name %q", x.Name())
	}
	if v := must(x.GetXattr(ctx, "user.tag")); string(v) != "blue" {
		t.Fatalf("xattr %q", v)
	}
	if v := must(x.GetXattr(ctx, "user.empty")); len(v) != 0 {
		t.Fatalf("empty xattr %q", v)
	}
	names := must(x.ListXattr(ctx))
	slices.Sort(names)
	if !slices.Equal(names, []string{"user.empty", "user.tag"}) {
		t.Fatal(names)
	}
	if got := string(readAll(t, x)); got != "xxx" {
		t.Fatalf("content %q", got)
	}
	x.Close(ctx)
	_, err := f.Lookup(ctx, a, "x")
	wantErrno(t, err, syscall.ENOENT)

	for _, tc := range []struct {
		from, to string
		want     syscall.Errno
	}{
		{"a", "full", syscall.ENOTEMPTY},
		{"a", "b/y", syscall.ENOTDIR},
		{"b/y", "full", syscall.EISDIR},
		{"a", "empty", 0},
	} {
		t.Run(tc.from+"->"+tc.to, func(t *testing.T) {
			dirOf := func(p string) (*dfs.Obj, string) {
				if i := strings.IndexByte(p, '/'); i > 0 {
					return must(f.Lookup(ctx, root, p[:i])), p[i+1:]
				}
				return root, p
			}
			sd, sn := dirOf(tc.from)
			dd, dn := dirOf(tc.to)
			_, err := f.Rename(ctx, sd, sn, dd, dn, dfs.RenameOptions{})
			if tc.want == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErrno(t, err, tc.want)
		})
	}
	// NoReplace
	_, err = f.Rename(ctx, root, "full", root, "b", dfs.RenameOptions{NoReplace: true})
	wantErrno(t, err, syscall.EEXIST)

	var all []string
	for an := (daos.Anchor{}); !an.EOF; {
		all = append(all, must(f.Readdir(ctx, root, &an, 2))...)
	}
	slices.Sort(all)
	if !slices.Equal(all, []string{"b", "empty", "full"}) {
		t.Fatal(all)
	}
}
