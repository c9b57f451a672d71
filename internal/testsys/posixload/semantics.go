package posixload

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SemanticsOptions says what the filesystem under test does not support.
type SemanticsOptions struct {
	// NoHardLinks: link(2) must fail with EOPNOTSUPP or EMLINK (DFS has no
	// hard links and says so). Without it, link(2) must work as on a local
	// filesystem.
	NoHardLinks bool
	// NoChown: ownership is not the files' own (dfuse without
	// --multi-user shows every file as the mounting user's): the chown
	// subtest skips.
	NoChown bool
	// LargeDir is the number of entries of the large-directory test; 0
	// means 3000.
	LargeDir int
}

// Semantics runs a pjdfstest-style suite of POSIX semantics in fresh
// subdirectories of dir, one subtest each (t.Run): modes and umask, chmod,
// chown (as root), ns times, rename with replace semantics, unlink of open
// files, O_APPEND, O_EXCL, O_TRUNC, readdir while modifying, symlinks,
// user xattrs, truncate and holes, pwrite past EOF, rmdir, name lengths,
// hard links, statfs and a large directory.
//
// It sets the process's umask in the modes subtest (and restores it): do
// not run it in parallel with tests that create files whose modes matter.
func Semantics(t *testing.T, dir string, opts SemanticsOptions) {
	if opts.LargeDir == 0 {
		opts.LargeDir = 3000
	}
	s := &semantics{root: dir, opts: opts}
	for _, c := range []struct {
		name string
		fn   func(*testing.T, string)
	}{
		{"CreateModes", s.createModes},
		{"Chmod", s.chmod},
		{"Chown", s.chown},
		{"Times", s.times},
		{"Rename", s.rename},
		{"UnlinkOpen", s.unlinkOpen},
		{"Append", s.append},
		{"Excl", s.excl},
		{"Trunc", s.trunc},
		{"ReaddirWhileModifying", s.readdirModify},
		{"Symlink", s.symlink},
		{"Xattr", s.xattr},
		{"Truncate", s.truncate},
		{"PwritePastEOF", s.pwritePastEOF},
		{"Rmdir", s.rmdir},
		{"NameLength", s.nameLength},
		{"HardLink", s.hardLink},
		{"Statfs", s.statfs},
		{"LargeDir", s.largeDir},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, s.dir(t, c.name)) })
	}
}

type semantics struct {
	root string
	opts SemanticsOptions
}

// dir makes a fresh directory for one subtest, removed after it.
func (s *semantics) dir(t *testing.T, name string) string {
	d, err := os.MkdirTemp(s.root, "sem-"+name+"-")
	if err != nil {
		t.Fatalf("creating the test directory in %s: %v", s.root, err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// --- helpers ---------------------------------------------------------------

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatalf("mkdir %s: %v", path, err)
	}
}

func wantContent(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("reading %s: %v", path, err)
		return
	}
	if string(got) != want {
		t.Errorf("%s holds %q, want %q", path, clip(got), clip([]byte(want)))
	}
}

func clip(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%s... (%d bytes)", b[:64], len(b))
	}
	return string(b)
}

// wantErrno checks that err is one of the errnos.
func wantErrno(t *testing.T, what string, err error, want ...syscall.Errno) {
	t.Helper()
	for _, w := range want {
		if errors.Is(err, w) {
			return
		}
	}
	names := make([]string, len(want))
	for i, w := range want {
		names[i] = unix.ErrnoName(w)
	}
	if err == nil {
		t.Errorf("%s succeeded, want %s", what, strings.Join(names, " or "))
		return
	}
	t.Errorf("%s: %v, want %s", what, err, strings.Join(names, " or "))
}

func wantOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantMissing(t *testing.T, path string) {
	t.Helper()
	var st unix.Stat_t
	wantErrno(t, "lstat "+path, unix.Lstat(path, &st), unix.ENOENT)
}

func lstat(t *testing.T, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatalf("lstat %s: %v", path, err)
	}
	return st
}

// dirent is one entry that getdents64 returned.
type dirent struct {
	name string
	typ  uint8
}

// readdirRaw reads a directory with getdents64 and a small buffer, so that
// listing it takes many calls (and, on FUSE, many READDIR requests at the
// offsets the filesystem handed out); between calls it runs between(i).
// "." and ".." are left out.
func readdirRaw(path string, bufSize int, between func(call int)) ([]dirent, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, bufSize)
	var out []dirent
	for call := 0; ; call++ {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return out, fmt.Errorf("getdents64 %s: %w", path, err)
		}
		if n == 0 {
			return out, nil
		}
		ents, err := parseDirents(buf[:n])
		out = append(out, ents...)
		if err != nil {
			return out, fmt.Errorf("getdents64 %s: %w", path, err)
		}
		if between != nil {
			between(call)
		}
		if call > 1_000_000 {
			return out, fmt.Errorf("getdents64 %s: no end after a million calls", path)
		}
	}
}

// parseDirents decodes getdents64's records (struct linux_dirent64: ino u64,
// off s64, reclen u16, type u8, name NUL-terminated and padded), leaving out
// "." and "..".
func parseDirents(b []byte) ([]dirent, error) {
	var out []dirent
	for len(b) > 0 {
		if len(b) < 19 {
			return out, fmt.Errorf("truncated record (%d bytes)", len(b))
		}
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < 19 || reclen > len(b) {
			return out, fmt.Errorf("bad record length %d (%d bytes left)", reclen, len(b))
		}
		name := b[19:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if s := string(name); s != "." && s != ".." {
			out = append(out, dirent{s, b[18]})
		}
		b = b[reclen:]
	}
	return out, nil
}

// --- the checks --------------------------------------------------------------

func (s *semantics) createModes(t *testing.T, dir string) {
	for i, c := range []struct {
		dir         bool
		umask, mode uint32
		want        uint32
	}{
		{false, 0o022, 0o666, 0o644},
		{false, 0o077, 0o777, 0o700},
		{false, 0, 0o640, 0o640},
		{false, 0, 0, 0},
		{false, 0o027, 0o751, 0o750},
		{true, 0o022, 0o777, 0o755},
		{true, 0o077, 0o777, 0o700},
		{true, 0, 0o711, 0o711},
		{true, 0o002, 0o775, 0o775},
	} {
		kind := map[bool]string{false: "file", true: "dir"}[c.dir]
		t.Run(fmt.Sprintf("%s-%04o-umask-%03o", kind, c.mode, c.umask), func(t *testing.T) {
			p := filepath.Join(dir, fmt.Sprintf("%s%d", kind, i))
			old := unix.Umask(int(c.umask))
			var err error
			if c.dir {
				err = unix.Mkdir(p, c.mode)
			} else {
				var fd int
				fd, err = unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, c.mode)
				if err == nil {
					unix.Close(fd)
				}
			}
			unix.Umask(old)
			wantOK(t, "creating "+p, err)
			st := lstat(t, p)
			wantType := uint32(unix.S_IFREG)
			if c.dir {
				wantType = unix.S_IFDIR
			}
			if st.Mode&unix.S_IFMT != wantType {
				t.Errorf("%s: type %o, want %o", p, st.Mode&unix.S_IFMT, wantType)
			}
			if got := st.Mode & 0o7777; got != c.want {
				t.Errorf("%s created with mode %04o under umask %03o: mode %04o, want %04o", p, c.mode, c.umask, got, c.want)
			}
		})
	}
}

func (s *semantics) chmod(t *testing.T, dir string) {
	f := filepath.Join(dir, "f")
	d := filepath.Join(dir, "d")
	writeFile(t, f, "x")
	mkdir(t, d)
	for _, c := range []struct {
		path string
		mode uint32
	}{
		{f, 0}, {f, 0o400}, {f, 0o644}, {f, 0o755}, {f, 0o777}, {f, 0o4755}, {f, 0o2750},
		{d, 0o700}, {d, 0o555}, {d, 0o1777}, {d, 0o755},
	} {
		t.Run(fmt.Sprintf("%s-%04o", filepath.Base(c.path), c.mode), func(t *testing.T) {
			wantOK(t, "chmod", unix.Chmod(c.path, c.mode))
			if got := lstat(t, c.path).Mode & 0o7777; got != c.mode {
				t.Errorf("chmod %s %04o: mode %04o", c.path, c.mode, got)
			}
		})
	}
	t.Run("fchmod", func(t *testing.T) {
		fd, err := unix.Open(f, unix.O_RDONLY, 0)
		wantOK(t, "open", err)
		defer unix.Close(fd)
		wantOK(t, "fchmod", unix.Fchmod(fd, 0o604))
		var st unix.Stat_t
		wantOK(t, "fstat", unix.Fstat(fd, &st))
		if st.Mode&0o7777 != 0o604 {
			t.Errorf("fchmod 0604: fstat says %04o", st.Mode&0o7777)
		}
		if got := lstat(t, f).Mode & 0o7777; got != 0o604 {
			t.Errorf("fchmod 0604: stat says %04o", got)
		}
	})
}

func (s *semantics) chown(t *testing.T, dir string) {
	if s.opts.NoChown {
		t.Skip("SemanticsOptions.NoChown: ownership is the mount's, not the files'")
	}
	f := filepath.Join(dir, "f")
	writeFile(t, f, "x")
	if os.Geteuid() != 0 {
		// Not root: giving a file away must be refused.
		wantErrno(t, "chown to another uid as non-root", unix.Chown(f, os.Geteuid()+1, -1), unix.EPERM)
		t.Skip("chown to other users needs root")
	}
	const other = 65534 // nobody/nogroup
	owner := func(p string, follow bool) (uint32, uint32) {
		var st unix.Stat_t
		var err error
		if follow {
			err = unix.Stat(p, &st)
		} else {
			err = unix.Lstat(p, &st)
		}
		wantOK(t, "stat "+p, err)
		return st.Uid, st.Gid
	}
	if u, g := owner(f, false); u != 0 || g != uint32(os.Getegid()) {
		t.Errorf("a file root created is owned by %d:%d, want 0:%d", u, g, os.Getegid())
	}
	wantOK(t, "chown", unix.Chown(f, other, other))
	if u, g := owner(f, false); u != other || g != other {
		t.Errorf("chown %d:%d: owner %d:%d", other, other, u, g)
	}
	wantOK(t, "chown -1:-1", unix.Chown(f, -1, -1))
	if u, g := owner(f, false); u != other || g != other {
		t.Errorf("chown -1:-1 changed the owner to %d:%d", u, g)
	}
	wantOK(t, "chown gid only", unix.Chown(f, -1, 0))
	if u, g := owner(f, false); u != other || g != 0 {
		t.Errorf("chown -1:0: owner %d:%d, want %d:0", u, g, other)
	}
	// lchown changes the link, chown through it the target.
	l := filepath.Join(dir, "l")
	wantOK(t, "symlink", unix.Symlink("f", l))
	wantOK(t, "lchown", unix.Lchown(l, other, other))
	if u, _ := owner(l, false); u != other {
		t.Errorf("lchown: the link is owned by %d", u)
	}
	wantOK(t, "chown back", unix.Chown(l, 0, 0))
	if u, g := owner(f, false); u != 0 || g != 0 {
		t.Errorf("chown 0:0 through a symlink: the target is owned by %d:%d", u, g)
	}
	if u, _ := owner(l, false); u != other {
		t.Errorf("chown through a symlink changed the link's owner to %d", u)
	}
	fd, err := unix.Open(f, unix.O_RDONLY, 0)
	wantOK(t, "open", err)
	defer unix.Close(fd)
	wantOK(t, "fchown", unix.Fchown(fd, other, 0))
	if u, g := owner(f, true); u != other || g != 0 {
		t.Errorf("fchown %d:0: owner %d:%d", other, u, g)
	}
}

func (s *semantics) times(t *testing.T, dir string) {
	f := filepath.Join(dir, "f")
	d := filepath.Join(dir, "d")
	writeFile(t, f, "x")
	mkdir(t, d)
	omit := unix.Timespec{Nsec: unix.UTIME_OMIT}
	for _, c := range []struct {
		name string
		path string
		ts   unix.Timespec
	}{
		{"file", f, unix.Timespec{Sec: 1234567890, Nsec: 123456789}},
		{"file-other", f, unix.Timespec{Sec: 1600000000, Nsec: 1}},
		{"file-zero-ns", f, unix.Timespec{Sec: 1000000000, Nsec: 0}},
		{"file-max-ns", f, unix.Timespec{Sec: 2000000000, Nsec: 999999999}},
		{"dir", d, unix.Timespec{Sec: 1111111111, Nsec: 222222222}},
	} {
		t.Run("utimensat-"+c.name, func(t *testing.T) {
			wantOK(t, "utimensat", unix.UtimesNanoAt(unix.AT_FDCWD, c.path, []unix.Timespec{omit, c.ts}, 0))
			if m := lstat(t, c.path).Mtim; m != c.ts {
				t.Errorf("mtime set to %d.%09d reads %d.%09d", c.ts.Sec, c.ts.Nsec, m.Sec, m.Nsec)
			}
		})
	}
	t.Run("futimens", func(t *testing.T) {
		fd, err := unix.Open(f, unix.O_RDWR, 0)
		wantOK(t, "open", err)
		defer unix.Close(fd)
		ts := []unix.Timespec{omit, {Sec: 1500000000, Nsec: 987654321}}
		// futimens(fd, ts) is utimensat(fd, NULL, ts, 0).
		_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
		if e != 0 {
			t.Fatalf("futimens: %v", e)
		}
		var st unix.Stat_t
		wantOK(t, "fstat", unix.Fstat(fd, &st))
		if st.Mtim != ts[1] {
			t.Errorf("futimens mtime %d.%09d: fstat %d.%09d", ts[1].Sec, ts[1].Nsec, st.Mtim.Sec, st.Mtim.Nsec)
		}
		if m := lstat(t, f).Mtim; m != ts[1] {
			t.Errorf("futimens mtime %d.%09d: stat %d.%09d", ts[1].Sec, ts[1].Nsec, m.Sec, m.Nsec)
		}
		// A write moves mtime on from a time long past.
		if _, err := unix.Pwrite(fd, []byte("more"), 1); err != nil {
			t.Fatalf("pwrite: %v", err)
		}
		unix.Close(fd)
		fd = -1
		if m := lstat(t, f).Mtim; m.Sec <= ts[1].Sec {
			t.Errorf("a write left mtime at %d.%09d (set to %d before it)", m.Sec, m.Nsec, ts[1].Sec)
		}
	})
	t.Run("dir-mtime-on-create", func(t *testing.T) {
		old := unix.Timespec{Sec: 1234567890}
		wantOK(t, "utimensat", unix.UtimesNanoAt(unix.AT_FDCWD, d, []unix.Timespec{omit, old}, 0))
		writeFile(t, filepath.Join(d, "new"), "")
		if m := lstat(t, d).Mtim; m.Sec <= old.Sec {
			t.Errorf("creating an entry left the directory's mtime at %d.%09d", m.Sec, m.Nsec)
		}
	})
}

func (s *semantics) rename(t *testing.T, dir string) {
	type fs map[string]string // path -> content ("/" for a directory, "->x" for a symlink to x)
	for _, c := range []struct {
		name     string
		before   fs
		from, to string
		errno    syscall.Errno // 0: must succeed
		after    fs            // must exist afterwards, as is
		gone     []string      // must not exist afterwards
	}{
		{name: "file-same-dir", before: fs{"a": "A"}, from: "a", to: "b",
			after: fs{"b": "A"}, gone: []string{"a"}},
		{name: "file-across-dirs", before: fs{"d1": "/", "d2": "/", "d1/a": "A"}, from: "d1/a", to: "d2/b",
			after: fs{"d2/b": "A"}, gone: []string{"d1/a"}},
		{name: "dir-across-dirs", before: fs{"d1": "/", "d2": "/", "d1/s": "/", "d1/s/x": "X", "d1/s/y": "/"},
			from: "d1/s", to: "d2/s", after: fs{"d2/s/x": "X", "d2/s/y": "/"}, gone: []string{"d1/s"}},
		{name: "file-over-file", before: fs{"a": "A", "b": "B"}, from: "a", to: "b",
			after: fs{"b": "A"}, gone: []string{"a"}},
		{name: "file-over-file-across-dirs", before: fs{"d1": "/", "d2": "/", "d1/a": "A", "d2/a": "B"},
			from: "d1/a", to: "d2/a", after: fs{"d2/a": "A"}, gone: []string{"d1/a"}},
		{name: "dir-over-empty-dir", before: fs{"da": "/", "da/x": "X", "db": "/"}, from: "da", to: "db",
			after: fs{"db/x": "X"}, gone: []string{"da"}},
		{name: "dir-over-nonempty-dir", before: fs{"da": "/", "db": "/", "db/x": "X"}, from: "da", to: "db",
			errno: unix.ENOTEMPTY, after: fs{"da": "/", "db/x": "X"}},
		{name: "file-over-dir", before: fs{"a": "A", "db": "/"}, from: "a", to: "db",
			errno: unix.EISDIR, after: fs{"a": "A", "db": "/"}},
		{name: "dir-over-file", before: fs{"da": "/", "b": "B"}, from: "da", to: "b",
			errno: unix.ENOTDIR, after: fs{"da": "/", "b": "B"}},
		{name: "dir-into-itself", before: fs{"da": "/", "da/s": "/"}, from: "da", to: "da/s/x",
			errno: unix.EINVAL, after: fs{"da/s": "/"}, gone: []string{"da/s/x"}},
		{name: "missing-source", before: fs{}, from: "nope", to: "b", errno: unix.ENOENT, gone: []string{"b"}},
		{name: "to-missing-dir", before: fs{"a": "A"}, from: "a", to: "nodir/b", errno: unix.ENOENT,
			after: fs{"a": "A"}},
		{name: "onto-itself", before: fs{"a": "A"}, from: "a", to: "a", after: fs{"a": "A"}},
		{name: "symlink", before: fs{"a": "A", "l": "->a"}, from: "l", to: "m",
			after: fs{"m": "->a", "a": "A"}, gone: []string{"l"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := os.MkdirTemp(dir, c.name+"-")
			wantOK(t, "mkdir", err)
			paths := make([]string, 0, len(c.before))
			for p := range c.before {
				paths = append(paths, p)
			}
			sort.Strings(paths) // parents first
			for _, p := range paths {
				v, full := c.before[p], filepath.Join(d, p)
				switch {
				case v == "/":
					mkdir(t, full)
				case strings.HasPrefix(v, "->"):
					wantOK(t, "symlink", os.Symlink(v[2:], full))
				default:
					writeFile(t, full, v)
				}
			}
			err = unix.Rename(filepath.Join(d, c.from), filepath.Join(d, c.to))
			if c.errno != 0 {
				wantErrno(t, fmt.Sprintf("rename %s %s", c.from, c.to), err, c.errno)
			} else if err != nil {
				t.Errorf("rename %s %s: %v", c.from, c.to, err)
			}
			for p, v := range c.after {
				full := filepath.Join(d, p)
				switch {
				case v == "/":
					if st := lstat(t, full); st.Mode&unix.S_IFMT != unix.S_IFDIR {
						t.Errorf("%s is not a directory any more", p)
					}
				case strings.HasPrefix(v, "->"):
					if got, err := os.Readlink(full); err != nil || got != v[2:] {
						t.Errorf("readlink %s: %q, %v; want %q", p, got, err, v[2:])
					}
				default:
					wantContent(t, full, v)
				}
			}
			for _, p := range c.gone {
				wantMissing(t, filepath.Join(d, p))
			}
		})
	}
	t.Run("dotdot-follows", func(t *testing.T) {
		d1, d2 := filepath.Join(dir, "p1"), filepath.Join(dir, "p2")
		mkdir(t, d1)
		mkdir(t, d2)
		mkdir(t, filepath.Join(d1, "s"))
		wantOK(t, "rename", os.Rename(filepath.Join(d1, "s"), filepath.Join(d2, "s")))
		if a, b := lstat(t, filepath.Join(d2, "s", "..")), lstat(t, d2); a.Ino != b.Ino || a.Dev != b.Dev {
			t.Errorf("after moving s into p2, s/.. is not p2")
		}
		// A directory's link count is 2 + its subdirectories, or 1 on
		// filesystems that do not count them (btrfs; find(1) knows).
		if n := lstat(t, d1).Nlink; n != 2 && n != 1 {
			t.Errorf("p1 lost its subdirectory but has %d links, want 2 (or 1: not counted)", n)
		}
		if n := lstat(t, d2).Nlink; n != 3 && n != 1 {
			t.Errorf("p2 gained a subdirectory but has %d links, want 3 (or 1: not counted)", n)
		}
	})
	t.Run("open-file", func(t *testing.T) {
		a, b := filepath.Join(dir, "oa"), filepath.Join(dir, "ob")
		writeFile(t, a, "1")
		f, err := os.OpenFile(a, os.O_RDWR, 0)
		wantOK(t, "open", err)
		defer f.Close()
		wantOK(t, "rename", os.Rename(a, b))
		if _, err := f.WriteAt([]byte("2"), 1); err != nil {
			t.Fatalf("write through a renamed file's fd: %v", err)
		}
		wantContent(t, b, "12")
		wantMissing(t, a)
	})
}

func (s *semantics) unlinkOpen(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	wantOK(t, "create", err)
	defer f.Close()
	if _, err := f.Write([]byte("before unlink;")); err != nil {
		t.Fatalf("write: %v", err)
	}
	wantOK(t, "unlink", os.Remove(p))
	wantMissing(t, p)
	if _, err := f.Write([]byte("after unlink")); err != nil {
		t.Fatalf("write after unlink: %v", err)
	}
	got := make([]byte, 64)
	n, err := f.ReadAt(got, 0)
	if want := "before unlink;after unlink"; string(got[:n]) != want {
		t.Errorf("read after unlink: %q (%v), want %q", got[:n], err, want)
	}
	st, err := f.Stat()
	if err != nil || st.Size() != 26 {
		t.Errorf("fstat after unlink: %v, %v; want size 26", st, err)
	}
	// A new file of that name is another file.
	writeFile(t, p, "new")
	n, _ = f.ReadAt(got, 0)
	if string(got[:n]) != "before unlink;after unlink" {
		t.Errorf("creating a new file of the unlinked name changed the open one: %q", got[:n])
	}
	wantContent(t, p, "new")
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Errorf("directory lists %v (%v), want only the new f", ents, err)
	}
	// Through a second fd open before the unlink too.
	q := filepath.Join(dir, "g")
	writeFile(t, q, "g-data")
	r, err := os.Open(q)
	wantOK(t, "open", err)
	defer r.Close()
	wantOK(t, "unlink", os.Remove(q))
	b := make([]byte, 16)
	if n, err := r.Read(b); string(b[:n]) != "g-data" {
		t.Errorf("read from an fd opened before unlink: %q, %v", b[:n], err)
	}
}

func (s *semantics) append(t *testing.T, dir string) {
	p := filepath.Join(dir, "log")
	writeFile(t, p, "head\n")
	open := func() *os.File {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		wantOK(t, "open O_APPEND", err)
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b := open(), open()
	var want strings.Builder
	want.WriteString("head\n")
	for i := 0; i < 50; i++ {
		f, rec := a, fmt.Sprintf("A%03d\n", i)
		if i%3 == 1 {
			f, rec = b, fmt.Sprintf("B%03d-longer\n", i)
		}
		if _, err := f.Write([]byte(rec)); err != nil {
			t.Fatalf("append: %v", err)
		}
		want.WriteString(rec)
	}
	wantContent(t, p, want.String())
	// A write through a plain fd at offset 0 overwrites; the next append
	// still goes to the end.
	c, err := os.OpenFile(p, os.O_WRONLY, 0)
	wantOK(t, "open", err)
	defer c.Close()
	if _, err := c.Write([]byte("HEAD")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("tail\n")); err != nil {
		t.Fatal(err)
	}
	wantContent(t, p, "HEAD"+strings.TrimPrefix(want.String(), "head")+"tail\n")
}

func (s *semantics) excl(t *testing.T, dir string) {
	f := filepath.Join(dir, "f")
	writeFile(t, f, "keep")
	_, err := unix.Open(f, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_TRUNC, 0o644)
	wantErrno(t, "O_CREAT|O_EXCL on an existing file", err, unix.EEXIST)
	wantContent(t, f, "keep")
	d := filepath.Join(dir, "d")
	mkdir(t, d)
	_, err = unix.Open(d, unix.O_CREAT|unix.O_EXCL|unix.O_RDONLY, 0o644)
	wantErrno(t, "O_CREAT|O_EXCL on a directory", err, unix.EEXIST)
	// A dangling symlink exists: O_EXCL does not follow it.
	l := filepath.Join(dir, "l")
	wantOK(t, "symlink", unix.Symlink("target", l))
	_, err = unix.Open(l, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
	wantErrno(t, "O_CREAT|O_EXCL on a dangling symlink", err, unix.EEXIST)
	wantMissing(t, filepath.Join(dir, "target"))
	// And creates when nothing is there.
	fd, err := unix.Open(filepath.Join(dir, "new"), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
	wantOK(t, "O_CREAT|O_EXCL on a new name", err)
	unix.Close(fd)
	// Without O_EXCL, O_CREAT opens the existing file.
	fd, err = unix.Open(f, unix.O_CREAT|unix.O_RDONLY, 0o644)
	wantOK(t, "O_CREAT on an existing file", err)
	unix.Close(fd)
	wantContent(t, f, "keep")
}

func (s *semantics) trunc(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	writeFile(t, p, strings.Repeat("x", 100000))
	f, err := os.OpenFile(p, os.O_RDWR|os.O_TRUNC, 0)
	wantOK(t, "open O_TRUNC", err)
	defer f.Close()
	if st, _ := f.Stat(); st == nil || st.Size() != 0 {
		t.Errorf("after O_TRUNC: %v, want size 0", st)
	}
	buf := make([]byte, 10)
	if n, _ := f.ReadAt(buf, 0); n != 0 {
		t.Errorf("read %d bytes after O_TRUNC", n)
	}
	if _, err := f.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	wantContent(t, p, "0123456789")
	// O_TRUNC with O_RDONLY on Linux truncates too; O_TRUNC on an empty
	// file is harmless.
	g, err := os.OpenFile(filepath.Join(dir, "empty"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	wantOK(t, "create O_TRUNC", err)
	g.Close()
	wantContent(t, filepath.Join(dir, "empty"), "")
}

func (s *semantics) readdirModify(t *testing.T, dir string) {
	const keep, del = 400, 400
	for i := 0; i < keep; i++ {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("keep-%04d", i)), "")
	}
	for i := 0; i < del; i++ {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("del-%04d", i)), "")
	}
	created, deleted := 0, 0
	var failed error
	ents, err := readdirRaw(dir, 1024, func(call int) {
		// Between getdents calls: create 3 and delete 3 entries.
		for k := 0; k < 3 && failed == nil; k++ {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("new-%04d", created)), nil, 0o644); err != nil {
				failed = err
			}
			created++
			if deleted < del {
				if err := os.Remove(filepath.Join(dir, fmt.Sprintf("del-%04d", deleted))); err != nil {
					failed = err
				}
				deleted++
			}
		}
	})
	wantOK(t, "readdir", err)
	wantOK(t, "modifying the directory during readdir", failed)
	if created < 30 {
		t.Fatalf("the listing took only %d getdents calls: nothing was modified during it", created/3)
	}
	seen := map[string]int{}
	for _, e := range ents {
		seen[e.name]++
		if !strings.HasPrefix(e.name, "keep-") && !strings.HasPrefix(e.name, "new-") && !strings.HasPrefix(e.name, "del-") {
			t.Errorf("readdir returned an entry never created: %q", e.name)
		}
	}
	for name, n := range seen {
		if n > 1 {
			t.Errorf("readdir returned %s %d times", name, n)
		}
	}
	for i := 0; i < keep; i++ {
		if n := seen[fmt.Sprintf("keep-%04d", i)]; n != 1 {
			t.Errorf("readdir returned keep-%04d, untouched during the listing, %d times", i, n)
		}
	}
	t.Logf("%d entries listed; %d created and %d deleted during the listing", len(ents), created, deleted)
}

func (s *semantics) symlink(t *testing.T, dir string) {
	f := filepath.Join(dir, "f")
	writeFile(t, f, "target data")
	l := filepath.Join(dir, "l")
	wantOK(t, "symlink", unix.Symlink("f", l))
	if got, err := os.Readlink(l); err != nil || got != "f" {
		t.Errorf("readlink: %q, %v; want \"f\"", got, err)
	}
	st := lstat(t, l)
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("lstat of a symlink: mode %o", st.Mode)
	}
	if st.Size != 1 {
		t.Errorf("lstat of a symlink to \"f\": size %d, want 1", st.Size)
	}
	wantContent(t, l, "target data")
	var fst unix.Stat_t
	wantOK(t, "stat through the link", unix.Stat(l, &fst))
	if fst.Mode&unix.S_IFMT != unix.S_IFREG || fst.Ino != lstat(t, f).Ino {
		t.Errorf("stat through a symlink does not reach its target")
	}
	// Dangling: lstat and readlink work, stat and open say ENOENT.
	dl := filepath.Join(dir, "dangling")
	wantOK(t, "symlink", unix.Symlink("no/such/file", dl))
	lstat(t, dl)
	wantErrno(t, "stat of a dangling symlink", unix.Stat(dl, &fst), unix.ENOENT)
	_, err := os.Open(dl)
	wantErrno(t, "open of a dangling symlink", err, unix.ENOENT)
	// Long targets, absolute targets, links to directories.
	long := strings.Repeat("long/", 800) + "end" // 4003 bytes
	ll := filepath.Join(dir, "long")
	wantOK(t, "symlink with a long target", unix.Symlink(long, ll))
	if got, err := os.Readlink(ll); err != nil || got != long {
		t.Errorf("readlink of a %d-byte target: %d bytes, %v", len(long), len(got), err)
	}
	sub := filepath.Join(dir, "sub")
	mkdir(t, sub)
	writeFile(t, filepath.Join(sub, "x"), "in sub")
	dl2 := filepath.Join(dir, "dirlink")
	wantOK(t, "symlink to a directory", unix.Symlink(sub, dl2))
	wantContent(t, filepath.Join(dl2, "x"), "in sub")
	// Errors.
	wantErrno(t, "symlink over an existing name", unix.Symlink("x", f), unix.EEXIST)
	_, err = os.Readlink(f)
	wantErrno(t, "readlink of a regular file", err, unix.EINVAL)
	// readdir types.
	ents, err := readdirRaw(dir, 4096, nil)
	wantOK(t, "readdir", err)
	types := map[string]uint8{}
	for _, e := range ents {
		types[e.name] = e.typ
	}
	for name, want := range map[string]uint8{"f": unix.DT_REG, "l": unix.DT_LNK, "dangling": unix.DT_LNK, "sub": unix.DT_DIR} {
		if got := types[name]; got != want && got != unix.DT_UNKNOWN {
			t.Errorf("readdir: %s has type %d, want %d", name, got, want)
		}
	}
	// Removing the link leaves the target.
	wantOK(t, "unlink symlink", os.Remove(l))
	wantContent(t, f, "target data")
}

func (s *semantics) xattr(t *testing.T, dir string) {
	f := filepath.Join(dir, "f")
	writeFile(t, f, "x")
	d := filepath.Join(dir, "d")
	mkdir(t, d)
	get := func(p, name string) ([]byte, error) {
		buf := make([]byte, 70000)
		n, err := unix.Getxattr(p, name, buf)
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	binaryVal := []byte{0, 1, 2, 0, 255, 'a', 0}
	big := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1 KiB: ext4 keeps all of a file's xattrs in one block
	for _, p := range []string{f, d} {
		for _, c := range []struct {
			name string
			val  []byte
		}{{"user.a", []byte("value1")}, {"user.binary", binaryVal}, {"user.empty", nil}, {"user.big", big}} {
			wantOK(t, "setxattr "+c.name, unix.Setxattr(p, c.name, c.val, 0))
			got, err := get(p, c.name)
			if err != nil || !bytes.Equal(got, c.val) {
				t.Errorf("getxattr %s %s: %q, %v; want %q", p, c.name, clip(got), err, clip(c.val))
			}
		}
		// Size query.
		if n, err := unix.Getxattr(p, "user.big", nil); err != nil || n != len(big) {
			t.Errorf("getxattr size of user.big: %d, %v; want %d", n, err, len(big))
		}
		wantOK(t, "replace", unix.Setxattr(p, "user.a", []byte("v2"), 0))
		if got, _ := get(p, "user.a"); string(got) != "v2" {
			t.Errorf("after replacing user.a: %q", got)
		}
		wantErrno(t, "XATTR_CREATE on an existing xattr", unix.Setxattr(p, "user.a", []byte("v3"), unix.XATTR_CREATE), unix.EEXIST)
		wantErrno(t, "XATTR_REPLACE on a missing xattr", unix.Setxattr(p, "user.nope", []byte("v"), unix.XATTR_REPLACE), unix.ENODATA)
		_, err := get(p, "user.nope")
		wantErrno(t, "getxattr of a missing xattr", err, unix.ENODATA)
		small := make([]byte, 2)
		_, err = unix.Getxattr(p, "user.big", small)
		wantErrno(t, "getxattr into a small buffer", err, unix.ERANGE)
		// list
		buf := make([]byte, 4096)
		n, err := unix.Listxattr(p, buf)
		wantOK(t, "listxattr", err)
		var names []string
		for _, nm := range strings.Split(string(buf[:n]), "\x00") {
			if strings.HasPrefix(nm, "user.") {
				names = append(names, nm)
			}
		}
		sort.Strings(names)
		if want := []string{"user.a", "user.big", "user.binary", "user.empty"}; !slices.Equal(names, want) {
			t.Errorf("listxattr %s: %q, want %q", p, names, want)
		}
		wantOK(t, "removexattr", unix.Removexattr(p, "user.a"))
		_, err = get(p, "user.a")
		wantErrno(t, "getxattr after removexattr", err, unix.ENODATA)
		wantErrno(t, "removexattr of a missing xattr", unix.Removexattr(p, "user.a"), unix.ENODATA)
	}
	// xattrs follow the file through a rename.
	g := filepath.Join(dir, "g")
	wantOK(t, "rename", os.Rename(f, g))
	if got, err := get(g, "user.binary"); err != nil || !bytes.Equal(got, binaryVal) {
		t.Errorf("after rename: user.binary %q, %v", got, err)
	}
}

func (s *semantics) truncate(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	writeFile(t, p, "hello")
	const mib = 1 << 20
	check := func(size int64, want func(off int64) byte) {
		t.Helper()
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if int64(len(data)) != size {
			t.Fatalf("size %d, want %d", len(data), size)
		}
		for i, b := range data {
			if w := want(int64(i)); b != w {
				t.Fatalf("byte %d is %q, want %q", i, b, w)
			}
		}
	}
	hello := func(n int64) func(int64) byte {
		return func(off int64) byte {
			if off < n {
				return "hello"[off]
			}
			return 0
		}
	}
	wantOK(t, "truncate up", os.Truncate(p, 3*mib+7))
	check(3*mib+7, hello(5))
	wantOK(t, "truncate down", os.Truncate(p, 3))
	check(3, hello(3))
	// Growing again must not bring back "lo": the hole reads zeros.
	wantOK(t, "truncate up again", os.Truncate(p, 10))
	check(10, hello(3))
	// ftruncate, and data written after a hole.
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	wantOK(t, "open", err)
	defer f.Close()
	wantOK(t, "ftruncate", f.Truncate(2*mib))
	if _, err := f.WriteAt([]byte("end"), 2*mib-3); err != nil {
		t.Fatal(err)
	}
	check(2*mib, func(off int64) byte {
		switch {
		case off < 3:
			return "hel"[off]
		case off >= 2*mib-3:
			return "end"[off-(2*mib-3)]
		}
		return 0
	})
	wantOK(t, "truncate to 0", f.Truncate(0))
	check(0, nil)
	var st unix.Stat_t
	wantOK(t, "stat", unix.Stat(p, &st))
	if st.Blocks != 0 {
		t.Logf("an empty file still has %d blocks", st.Blocks) // allowed; informative
	}
	wantErrno(t, "truncate to a negative size", os.Truncate(p, -1), unix.EINVAL)
	wantErrno(t, "truncate of a directory", os.Truncate(dir, 0), unix.EISDIR)
}

func (s *semantics) pwritePastEOF(t *testing.T, dir string) {
	p := filepath.Join(dir, "f")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	wantOK(t, "create", err)
	defer f.Close()
	const mib = 1 << 20
	writes := []struct {
		off  int64
		data string
	}{
		{5*mib + 3, "xyz"},       // far past EOF
		{mib - 5, "0123456789"},  // across a 1 MiB boundary (DFS's default chunk)
		{0, "start"},             // the beginning
		{5*mib + 1, "ab"},        // adjoining the first write
		{4*mib - 1, "\x01\x02"},  // across another boundary, in the hole
		{5*mib + 6, ""},          // empty: no change
		{2*mib + 100, "middle!"}, // in the hole
	}
	want := make([]byte, 0)
	for _, w := range writes {
		if _, err := f.WriteAt([]byte(w.data), w.off); err != nil {
			t.Fatalf("pwrite %d bytes at %d: %v", len(w.data), w.off, err)
		}
		if end := w.off + int64(len(w.data)); end > int64(len(want)) && len(w.data) > 0 {
			want = append(want, make([]byte, end-int64(len(want)))...)
		}
		copy(want[w.off:], w.data)
	}
	got, err := os.ReadFile(p)
	wantOK(t, "read", err)
	if len(got) != len(want) {
		t.Fatalf("size %d, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("byte %d is 0x%02x, want 0x%02x", i, got[i], want[i])
		}
	}
	// A read at EOF returns 0 bytes, past EOF too.
	buf := make([]byte, 8)
	if n, _ := f.ReadAt(buf, int64(len(want))); n != 0 {
		t.Errorf("read at EOF returned %d bytes", n)
	}
	if n, _ := f.ReadAt(buf, int64(len(want))+mib); n != 0 {
		t.Errorf("read past EOF returned %d bytes", n)
	}
}

func (s *semantics) rmdir(t *testing.T, dir string) {
	d := filepath.Join(dir, "d")
	mkdir(t, d)
	writeFile(t, filepath.Join(d, "x"), "")
	wantErrno(t, "rmdir of a non-empty directory", unix.Rmdir(d), unix.ENOTEMPTY)
	f := filepath.Join(dir, "f")
	writeFile(t, f, "")
	wantErrno(t, "rmdir of a file", unix.Rmdir(f), unix.ENOTDIR)
	wantErrno(t, "unlink of a directory", unix.Unlink(d), unix.EISDIR)
	wantErrno(t, "rmdir of a missing directory", unix.Rmdir(filepath.Join(dir, "nope")), unix.ENOENT)
	wantErrno(t, "rmdir of .", unix.Rmdir(d+"/."), unix.EINVAL) // not filepath.Join: it drops the "."
	// Only an empty directory goes; a directory holding only an empty
	// subdirectory is not empty.
	mkdir(t, filepath.Join(d, "sub"))
	wantOK(t, "unlink", unix.Unlink(filepath.Join(d, "x")))
	wantErrno(t, "rmdir of a directory holding an empty one", unix.Rmdir(d), unix.ENOTEMPTY)
	wantOK(t, "rmdir", unix.Rmdir(filepath.Join(d, "sub")))
	wantOK(t, "rmdir of an emptied directory", unix.Rmdir(d))
	wantMissing(t, d)
}

func (s *semantics) nameLength(t *testing.T, dir string) {
	n255 := strings.Repeat("n", 250) + "-name"
	u255 := strings.Repeat("é", 127) + "x" // 2-byte runes: 255 bytes
	for _, name := range []string{n255, u255} {
		if len(name) != 255 {
			t.Fatalf("test name of %d bytes", len(name))
		}
		p := filepath.Join(dir, name)
		writeFile(t, p, "ok")
		wantContent(t, p, "ok")
		wantOK(t, "unlink", os.Remove(p))
		wantOK(t, "mkdir of a 255-byte name", os.Mkdir(p, 0o755))
		wantOK(t, "rmdir", os.Remove(p))
	}
	writeFile(t, filepath.Join(dir, n255), "listed")
	ents, err := readdirRaw(dir, 4096, nil)
	if err != nil || len(ents) != 1 || ents[0].name != n255 {
		t.Errorf("readdir of a 255-byte name: %d entries, %v", len(ents), err)
	}
	n256 := n255 + "x"
	p := filepath.Join(dir, n256)
	_, err = unix.Open(p, unix.O_CREAT|unix.O_WRONLY, 0o644)
	wantErrno(t, "create with a 256-byte name", err, unix.ENAMETOOLONG)
	wantErrno(t, "mkdir with a 256-byte name", unix.Mkdir(p, 0o755), unix.ENAMETOOLONG)
	wantErrno(t, "symlink with a 256-byte name", unix.Symlink("x", p), unix.ENAMETOOLONG)
	wantErrno(t, "rename to a 256-byte name", unix.Rename(filepath.Join(dir, n255), p), unix.ENAMETOOLONG)
	var st unix.Stat_t
	wantErrno(t, "stat of a 256-byte name", unix.Lstat(p, &st), unix.ENAMETOOLONG)
	wantContent(t, filepath.Join(dir, n255), "listed")
}

func (s *semantics) hardLink(t *testing.T, dir string) {
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeFile(t, a, "shared")
	err := unix.Link(a, b)
	if s.opts.NoHardLinks {
		wantErrno(t, "link on a filesystem without hard links", err, unix.EOPNOTSUPP, unix.EMLINK)
		wantMissing(t, b)
		wantContent(t, a, "shared")
		return
	}
	wantOK(t, "link", err)
	sa, sb := lstat(t, a), lstat(t, b)
	if sa.Ino != sb.Ino || sa.Nlink != 2 || sb.Nlink != 2 {
		t.Errorf("after link: inodes %d and %d, links %d and %d; want one inode with 2 links", sa.Ino, sb.Ino, sa.Nlink, sb.Nlink)
	}
	f, err := os.OpenFile(b, os.O_WRONLY|os.O_APPEND, 0)
	wantOK(t, "open", err)
	f.Write([]byte("+b"))
	f.Close()
	wantContent(t, a, "shared+b")
	wantOK(t, "unlink", os.Remove(a))
	wantContent(t, b, "shared+b")
	if n := lstat(t, b).Nlink; n != 1 {
		t.Errorf("after unlinking one name: %d links, want 1", n)
	}
	wantErrno(t, "link over an existing name", unix.Link(b, b), unix.EEXIST)
	d := filepath.Join(dir, "d")
	mkdir(t, d)
	wantErrno(t, "link of a directory", unix.Link(d, filepath.Join(dir, "d2")), unix.EPERM)
}

func (s *semantics) statfs(t *testing.T, dir string) {
	var st unix.Statfs_t
	wantOK(t, "statfs", unix.Statfs(dir, &st))
	switch {
	case st.Bsize <= 0:
		t.Errorf("statfs: block size %d", st.Bsize)
	case st.Blocks == 0:
		t.Errorf("statfs: 0 blocks")
	case st.Bfree > st.Blocks:
		t.Errorf("statfs: %d free blocks of %d", st.Bfree, st.Blocks)
	case st.Bavail > st.Bfree:
		t.Errorf("statfs: %d available blocks, more than the %d free", st.Bavail, st.Bfree)
	case st.Files > 0 && st.Ffree > st.Files:
		t.Errorf("statfs: %d free inodes of %d", st.Ffree, st.Files)
	case st.Namelen != 255:
		t.Errorf("statfs: name length %d, want 255", st.Namelen)
	}
	var fst unix.Statfs_t
	f, err := os.Create(filepath.Join(dir, "f"))
	wantOK(t, "create", err)
	defer f.Close()
	wantOK(t, "fstatfs", unix.Fstatfs(int(f.Fd()), &fst))
	if fst.Type != st.Type || fst.Blocks != st.Blocks || fst.Bsize != st.Bsize {
		t.Errorf("fstatfs and statfs disagree: type %x/%x, %d/%d blocks of %d/%d", fst.Type, st.Type, fst.Blocks, st.Blocks, fst.Bsize, st.Bsize)
	}
	t.Logf("statfs: %d blocks of %d, %d free, %d available, %d inodes, %d free", st.Blocks, st.Bsize, st.Bfree, st.Bavail, st.Files, st.Ffree)
}

func (s *semantics) largeDir(t *testing.T, dir string) {
	n := s.opts.LargeDir
	for i := 0; i < n; i++ {
		// Names of varied lengths, so that records of getdents vary.
		name := fmt.Sprintf("entry-%05d-%s", i, strings.Repeat("z", i%40))
		fd, err := unix.Open(filepath.Join(dir, name), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
		if err != nil {
			t.Fatalf("creating entry %d of %d: %v", i, n, err)
		}
		unix.Close(fd)
	}
	for _, bufSize := range []int{600, 32768} {
		ents, err := readdirRaw(dir, bufSize, nil)
		wantOK(t, "readdir", err)
		seen := make([]int, n)
		for _, e := range ents {
			var i int
			if _, err := fmt.Sscanf(e.name, "entry-%05d-", &i); err != nil || i < 0 || i >= n {
				t.Fatalf("readdir returned %q", e.name)
			}
			seen[i]++
		}
		for i, c := range seen {
			if c != 1 {
				t.Errorf("readdir (buffer %d) returned entry %d %d times", bufSize, i, c)
			}
		}
		if len(ents) != n {
			t.Errorf("readdir (buffer %d) returned %d entries, want %d", bufSize, len(ents), n)
		}
	}
	// Remove them all: the directory is then empty.
	ents, err := os.ReadDir(dir)
	wantOK(t, "readdir", err)
	for _, e := range ents {
		wantOK(t, "unlink", os.Remove(filepath.Join(dir, e.Name())))
	}
	if ents, err := readdirRaw(dir, 4096, nil); err != nil || len(ents) != 0 {
		t.Errorf("after removing every entry, readdir returns %d entries (%v)", len(ents), err)
	}
}
