package dfs_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
)

// TestLargeDirectory: a directory of more entries than one listing request
// returns, over both targets (SX), read in pages of every size, after
// removing every third entry too.
func TestLargeDirectory(t *testing.T) {
	ctx := context.Background()
	f := newFS(t, dfs.Attr{DirClass: daos.SX})
	if err := f.Mkdir(ctx, f.Root(), "big", 0o755, dfs.OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	d := lookupPath(t, f, "/big")
	defer d.Close(ctx)
	want := map[string]bool{}
	for i := range 700 {
		name := fmt.Sprintf("entry-%04d", i)
		if i%2 == 0 {
			must(f.Open(ctx, d, name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644, dfs.OpenOptions{})).Close(ctx)
		} else if err := f.Mkdir(ctx, d, name, 0o755, dfs.OpenOptions{}); err != nil {
			t.Fatal(err)
		}
		want[name] = true
	}
	check := func(t *testing.T) {
		for _, page := range []int{1, 7, 256, 257, 1000} {
			var got []string
			var a daos.Anchor
			for i := 0; !a.EOF; i++ {
				if i > 2000 {
					t.Fatalf("pages of %d: no end", page)
				}
				ns := must(f.Readdir(ctx, d, &a, page))
				if len(ns) > page {
					t.Fatalf("a page of %d holds %d", page, len(ns))
				}
				got = append(got, ns...)
			}
			slices.Sort(got)
			if w := slices.Sorted(maps.Keys(want)); !slices.Equal(got, w) {
				t.Fatalf("pages of %d: %d names (%d distinct wanted)", page, len(got), len(w))
			}
		}
		n := len(listAll(t, f, "/big")) // ReaddirPlus
		if n != len(want) {
			t.Fatalf("ReaddirPlus: %d entries, want %d", n, len(want))
		}
	}
	t.Run("full", check)
	for i := 0; i < 700; i += 3 {
		name := fmt.Sprintf("entry-%04d", i)
		must(f.Remove(ctx, d, name, dfs.RemoveOptions{}))
		delete(want, name)
	}
	t.Run("after removals", check)
	// a recursive remove of it all
	must(f.Remove(ctx, f.Root(), "big", dfs.RemoveOptions{Recursive: true}))
	if _, err := f.LookupPath(ctx, "/big", false); dfs.Errno(err) != syscall.ENOENT {
		t.Fatalf("after a recursive remove: %v", err)
	}
}

// TestReadOnlyMount: a read-only mount reads, and refuses every change
// with EROFS.
func TestReadOnlyMount(t *testing.T) {
	ctx := context.Background()
	f := newFS(t, dfs.Attr{})
	o := must(f.Open(ctx, f.Root(), "f", os.O_CREATE|os.O_RDWR, 0o644, dfs.OpenOptions{}))
	if err := o.Write(ctx, []byte("data"), 0); err != nil {
		t.Fatal(err)
	}
	if err := o.SetXattr(ctx, "user.x", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	o.Close(ctx)
	if err := f.Mkdir(ctx, f.Root(), "d", 0o755, dfs.OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	ro, err := dfs.Mount(ctx, f.Cont(), true)
	if err != nil {
		t.Fatal(err)
	}
	root := ro.Root()
	r := must(ro.Open(ctx, root, "f", os.O_RDONLY, 0, dfs.OpenOptions{}))
	defer r.Close(ctx)
	buf := make([]byte, 10)
	if n := must(r.Read(ctx, buf, 0)); string(buf[:n]) != "data" {
		t.Fatalf("read %q", buf[:n])
	}
	if v := must(r.GetXattr(ctx, "user.x")); string(v) != "v" {
		t.Fatalf("xattr %q", v)
	}
	mode, size := uint32(0o600), uint64(0)
	for name, err := range map[string]error{
		"create":      second(ro.Open(ctx, root, "g", os.O_CREATE|os.O_RDWR, 0o644, dfs.OpenOptions{})),
		"open rw":     second(ro.Open(ctx, root, "f", os.O_RDWR, 0, dfs.OpenOptions{})),
		"mkdir":       ro.Mkdir(ctx, root, "e", 0o755, dfs.OpenOptions{}),
		"symlink":     second(ro.Symlink(ctx, root, "l", "f", dfs.OpenOptions{})),
		"remove":      second(ro.Remove(ctx, root, "f", dfs.RemoveOptions{})),
		"rename":      second(ro.Rename(ctx, root, "f", root, "g", dfs.RenameOptions{})),
		"write":       r.Write(ctx, []byte("x"), 0),
		"punch":       r.PunchRange(ctx, 0, 1),
		"chmod":       second(r.SetAttr(ctx, dfs.SetAttr{Mode: &mode})),
		"truncate":    second(r.SetAttr(ctx, dfs.SetAttr{Size: &size})),
		"setxattr":    r.SetXattr(ctx, "user.y", nil, 0),
		"removexattr": r.RemoveXattr(ctx, "user.x"),
	} {
		if dfs.Errno(err) != syscall.EROFS {
			t.Errorf("%s on a read-only mount: %v, want EROFS", name, err)
		}
	}
	if got := readAll(t, must(f.Open(ctx, f.Root(), "f", os.O_RDONLY, 0, dfs.OpenOptions{}))); string(got) != "data" {
		t.Fatalf("content changed: %q", got)
	}
}

func second[T any](_ T, err error) error { return err }

// TestRemovedOpenFile: a file removed (or replaced by a rename) with
// KeepData, as dfuse does while it is open, stays readable and writable
// through its handle until the caller punches it; its name is free at
// once.
func TestRemovedOpenFile(t *testing.T) {
	ctx := context.Background()
	f := newFS(t, dfs.Attr{ChunkSize: 4096})
	root := f.Root()
	data := bytes.Repeat([]byte("0123456789"), 1000)
	for _, how := range []string{"remove", "rename over"} {
		t.Run(how, func(t *testing.T) {
			o := must(f.Open(ctx, root, "f", os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644, dfs.OpenOptions{}))
			defer o.Close(ctx)
			if err := o.Write(ctx, data, 0); err != nil {
				t.Fatal(err)
			}
			var st dfs.Stat
			switch how {
			case "remove":
				st = must(f.Remove(ctx, root, "f", dfs.RemoveOptions{KeepData: true}))
			case "rename over":
				must(f.Open(ctx, root, "g", os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644, dfs.OpenOptions{})).Close(ctx)
				st = must(f.Rename(ctx, root, "g", root, "f", dfs.RenameOptions{KeepData: true}))
			}
			if st.OID != o.OID() {
				t.Fatalf("removed %s, not the open file %s", st.OID, o.OID())
			}
			if got := readAll(t, o); !bytes.Equal(got, data) {
				t.Fatalf("the removed file reads %d bytes, want %d", len(got), len(data))
			}
			if err := o.Write(ctx, []byte("more"), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			if _, err := o.Stat(ctx); dfs.Errno(err) != syscall.ENOENT {
				t.Fatalf("stat of a removed file's handle: %v, want ENOENT", err)
			}
			mode := uint32(0o600)
			if _, err := o.SetAttr(ctx, dfs.SetAttr{Mode: &mode}); dfs.Errno(err) != syscall.ENOENT {
				t.Fatalf("chmod of a removed file's handle: %v, want ENOENT", err)
			}
			if err := f.Punch(ctx, o.OID(), o.Mode()); err != nil {
				t.Fatal(err)
			}
			if n := must(o.Size(ctx)); n != 0 {
				t.Fatalf("size after the punch: %d", n)
			}
			switch how {
			case "remove":
				if _, err := f.LookupPath(ctx, "/f", false); dfs.Errno(err) != syscall.ENOENT {
					t.Fatalf("lookup of the removed name: %v", err)
				}
			case "rename over":
				n := must(f.Lookup(ctx, root, "f"))
				if n.OID() == o.OID() {
					t.Fatal("the name still names the replaced file")
				}
				n.Close(ctx)
				must(f.Remove(ctx, root, "f", dfs.RemoveOptions{}))
			}
		})
	}
}

// TestBadNames: names no entry may have, and xattr names and values out of
// bounds, fail with the errno POSIX programs expect, for every operation
// that takes one.
func TestBadNames(t *testing.T) {
	ctx := context.Background()
	f := newFS(t, dfs.Attr{})
	root := f.Root()
	o := must(f.Open(ctx, root, "f", os.O_CREATE|os.O_RDWR, 0o644, dfs.OpenOptions{}))
	defer o.Close(ctx)
	long := string(bytes.Repeat([]byte("n"), 256))
	for _, tc := range []struct {
		name string
		want syscall.Errno
	}{
		{"", syscall.EINVAL}, {".", syscall.EINVAL}, {"..", syscall.EINVAL},
		{"a/b", syscall.EINVAL}, {"a\x00b", syscall.EINVAL}, {long, syscall.ENAMETOOLONG},
	} {
		t.Run(fmt.Sprintf("%.8q", tc.name), func(t *testing.T) {
			for op, err := range map[string]error{
				"mkdir":   f.Mkdir(ctx, root, tc.name, 0o755, dfs.OpenOptions{}),
				"create":  second(f.Open(ctx, root, tc.name, os.O_CREATE|os.O_RDWR, 0o644, dfs.OpenOptions{})),
				"lookup":  second(f.Lookup(ctx, root, tc.name)),
				"symlink": second(f.Symlink(ctx, root, tc.name, "f", dfs.OpenOptions{})),
				"remove":  second(f.Remove(ctx, root, tc.name, dfs.RemoveOptions{})),
				"rename":  second(f.Rename(ctx, root, "f", root, tc.name, dfs.RenameOptions{})),
				"rename2": second(f.Rename(ctx, root, tc.name, root, "g", dfs.RenameOptions{})),
			} {
				if got := dfs.Errno(err); got != tc.want {
					t.Errorf("%s: %v, want %v", op, err, tc.want)
				}
			}
		})
	}
	for _, tc := range []struct {
		name  string
		value []byte
		want  syscall.Errno
	}{
		{"", nil, syscall.EINVAL},
		{"user." + long, nil, syscall.ERANGE},
		{"user.big", make([]byte, 64<<10+1), syscall.E2BIG},
		{"user.max", make([]byte, 64<<10), 0},
	} {
		if got := dfs.Errno(o.SetXattr(ctx, tc.name, tc.value, 0)); got != tc.want {
			t.Errorf("setxattr %.12q (%d bytes): %v, want %v", tc.name, len(tc.value), got, tc.want)
		}
	}
	// the file is still alone, and whole
	if all := listAll(t, f, "/"); len(all) != 1 {
		t.Fatalf("root holds %v", slices.Collect(maps.Keys(all)))
	}
}

// TestLargeAndSparseIO: writes larger than one request carries, at
// unaligned offsets, through two mounts at once on disjoint ranges; a
// write far out (a sparse file of GiBs); reads across the holes.
func TestLargeAndSparseIO(t *testing.T) {
	ctx := context.Background()
	fa := newFS(t, dfs.Attr{})
	fb := secondMount(t, fa)
	a := must(fa.Open(ctx, fa.Root(), "f", os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644, dfs.OpenOptions{}))
	defer a.Close(ctx)
	b := must(fb.Open(ctx, fb.Root(), "f", os.O_RDWR, 0, dfs.OpenOptions{}))
	defer b.Close(ctx)
	const part = 10<<20 + 12345 // more than a request's 8 MiB, over chunk boundaries
	pa, pb := bytes.Repeat([]byte{0xa5}, part), bytes.Repeat([]byte{0x5b}, part)
	errs := make(chan error, 2)
	go func() { errs <- a.Write(ctx, pa, 3) }()
	go func() { errs <- b.Write(ctx, pb, 3+part) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	const far = 5 << 30
	if err := a.Write(ctx, []byte("end"), far); err != nil {
		t.Fatal(err)
	}
	for _, o := range []*dfs.Obj{a, b} {
		if n := must(o.Size(ctx)); n != far+3 {
			t.Fatalf("size %d, want %d", n, far+3)
		}
		buf := make([]byte, 2*part+10)
		if n := must(o.Read(ctx, buf, 0)); n != len(buf) {
			t.Fatalf("read %d of %d", n, len(buf))
		}
		if !bytes.Equal(buf[:3], make([]byte, 3)) || !bytes.Equal(buf[3:3+part], pa) || !bytes.Equal(buf[3+part:3+2*part], pb) || !bytes.Equal(buf[3+2*part:], make([]byte, 7)) {
			t.Fatal("the two mounts' writes read back wrong")
		}
		hole := make([]byte, 1<<20)
		if n := must(o.Read(ctx, hole, far-1<<20+2)); n != 1<<20 || !bytes.Equal(hole[:1<<20-2], make([]byte, 1<<20-2)) || string(hole[1<<20-2:]) != "en" {
			t.Fatalf("read across the hole up to the end: %d bytes, tail %q", n, hole[1<<20-2:])
		}
		if n := must(o.Read(ctx, hole, far+1)); n != 2 || string(hole[:2]) != "nd" {
			t.Fatalf("read at the end: %d", n)
		}
	}
}

// TestMountBadInput: a container without a namespace, one formatted twice,
// and superblocks that are not DFS's or are newer than we read fail with a
// clear errno, never a panic.
func TestMountBadInput(t *testing.T) {
	ctx := context.Background()
	f := newFS(t, dfs.Attr{})
	if err := dfs.Format(ctx, f.Cont(), dfs.Attr{}); dfs.Errno(err) != syscall.EEXIST {
		t.Fatalf("format twice: %v, want EEXIST", err)
	}
	p := f.Cont().Pool
	if _, err := p.ContCreate(ctx, daos.ContCreateOptions{Label: "plain"}); err != nil {
		t.Fatal(err)
	}
	defer p.ContDestroy(ctx, "plain")
	h, err := p.ContOpen(ctx, "plain", daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	if _, err := dfs.Mount(ctx, h, false); dfs.Errno(err) != syscall.ENOENT {
		t.Fatalf("mount of a container without a namespace: %v, want ENOENT", err)
	}
	if err := dfs.Format(ctx, h, dfs.Attr{}); err != nil {
		t.Fatal(err)
	}
	oid, err := h.EncodeOID(0, 0, 0, daos.OTMultiHashed) // the superblock
	if err != nil {
		t.Fatal(err)
	}
	sb, err := h.Obj(oid)
	if err != nil {
		t.Fatal(err)
	}
	put := func(akey string, v []byte) {
		t.Helper()
		iod := []daos.IOD{{Akey: []byte(akey), Type: daos.Single, Size: uint64(len(v))}}
		if _, err := sb.Update(ctx, []byte("DFS_SB_METADATA"), iod, [][]byte{v}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		akey string
		v    []byte
		want syscall.Errno
	}{
		{"DFS_LAYOUT_VERSION", []byte{9, 0}, syscall.EPROTO},
		{"DFS_LAYOUT_VERSION", []byte{3, 0}, 0},
		{"DFS_CHUNK_SIZE", []byte{1, 2, 3}, syscall.EINVAL},
		{"DFS_CHUNK_SIZE", make([]byte, 8), 0}, // 0: the default
		{"DFS_MAGIC", []byte("notdfs!!"), syscall.EINVAL},
	} {
		put(tc.akey, tc.v)
		g, err := dfs.Mount(ctx, h, false)
		if dfs.Errno(err) != tc.want {
			t.Fatalf("superblock %s = %x: mount %v, want %v", tc.akey, tc.v, err, tc.want)
		}
		if err == nil && g.Attr().ChunkSize != dfs.DefaultChunk {
			t.Fatalf("chunk size %d", g.Attr().ChunkSize)
		}
	}
}

// TestRemovedDirectoryHandle: a handle of a directory that was removed
// (through this mount or another, or replaced by a rename) creates nothing
// there: no path would reach it. Create, mkdir, symlink and rename into it
// fail with ENOENT, and it lists nothing. (A mount that created in the
// directory less than removedCheckWindow before another client removed it
// does not check again, which the remote cases avoid by not creating.)
func TestRemovedDirectoryHandle(t *testing.T) {
	ctx := context.Background()
	fa := newFS(t, dfs.Attr{})
	fb := secondMount(t, fa)
	for _, how := range []string{"rmdir here", "rmdir there", "rename over there"} {
		t.Run(how, func(t *testing.T) {
			for _, n := range []string{"d", "e"} {
				if err := fa.Mkdir(ctx, fa.Root(), n, 0o755, dfs.OpenOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			d := lookupPath(t, fa, "/d")
			defer d.Close(ctx)
			if how == "rmdir here" {
				// used just before: the mount found it present, and
				// forgets that when it removes it
				must(fa.Open(ctx, d, "x", os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644, dfs.OpenOptions{})).Close(ctx)
				must(fa.Remove(ctx, d, "x", dfs.RemoveOptions{}))
			}
			switch how {
			case "rmdir here":
				must(fa.Remove(ctx, fa.Root(), "d", dfs.RemoveOptions{}))
			case "rmdir there":
				must(fb.Remove(ctx, fb.Root(), "d", dfs.RemoveOptions{}))
			case "rename over there":
				must(fb.Rename(ctx, fb.Root(), "e", fb.Root(), "d", dfs.RenameOptions{}))
			}
			must(fa.Open(ctx, fa.Root(), "f", os.O_CREATE|os.O_RDWR, 0o644, dfs.OpenOptions{})).Close(ctx)
			for op, err := range map[string]error{
				"create":  second(fa.Open(ctx, d, "y", os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644, dfs.OpenOptions{})),
				"mkdir":   fa.Mkdir(ctx, d, "z", 0o755, dfs.OpenOptions{}),
				"symlink": second(fa.Symlink(ctx, d, "l", "f", dfs.OpenOptions{})),
				"rename":  second(fa.Rename(ctx, fa.Root(), "f", d, "f", dfs.RenameOptions{})),
			} {
				if dfs.Errno(err) != syscall.ENOENT {
					t.Errorf("%s in a removed directory: %v, want ENOENT", op, err)
				}
			}
			if ns := must(fa.Readdir(ctx, d, &daos.Anchor{}, 10)); len(ns) != 0 {
				t.Errorf("the removed directory lists %q", ns)
			}
			if _, err := fa.Lookup(ctx, fa.Root(), "f"); err != nil {
				t.Errorf("the rename's source: %v", err)
			}
			for _, n := range []string{"d", "e", "f"} {
				fa.Remove(ctx, fa.Root(), n, dfs.RemoveOptions{Recursive: true})
			}
		})
	}
}
