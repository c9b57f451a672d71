package mover

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// posixTree is a local directory (any POSIX file system: ext4, xfs, Lustre,
// tmpfs, or a dfuse mount).
type posixTree struct{ root string }

func (t *posixTree) String() string { return t.root }

func (t *posixTree) full(p string) string {
	if p == "" {
		return t.root
	}
	return filepath.Join(t.root, filepath.FromSlash(p))
}

func statInfo(st *unix.Stat_t) info {
	return info{mode: st.Mode, uid: st.Uid, gid: st.Gid, size: st.Size, blocks: st.Blocks,
		mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec), atime: time.Unix(st.Atim.Sec, st.Atim.Nsec)}
}

// lstat follows the root, if it is a symlink, as cp -r does.
func (t *posixTree) lstat(_ context.Context, p string) (info, error) {
	var st unix.Stat_t
	stat := unix.Lstat
	if p == "" {
		stat = unix.Stat
	}
	if err := stat(t.full(p), &st); err != nil {
		return info{}, &fs.PathError{Op: "lstat", Path: t.full(p), Err: err}
	}
	return statInfo(&st), nil
}

func (t *posixTree) readDir(_ context.Context, p string) ([]dirent, error) {
	es, err := os.ReadDir(t.full(p))
	if err != nil {
		return nil, err
	}
	out := make([]dirent, len(es))
	for i, e := range es {
		out[i].name = e.Name()
		switch ty := e.Type(); {
		case ty.IsDir():
			out[i].mode = sIFDIR
		case ty&fs.ModeSymlink != 0:
			out[i].mode = sIFLNK
		case ty.IsRegular():
			out[i].mode = sIFREG
		default:
			out[i].mode = uint32(unixType(ty))
		}
	}
	return out, nil
}

// unixType is the S_IF* bits of a special file's type.
func unixType(m fs.FileMode) uint32 {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return unix.S_IFIFO
	case m&fs.ModeSocket != 0:
		return unix.S_IFSOCK
	case m&fs.ModeCharDevice != 0:
		return unix.S_IFCHR
	case m&fs.ModeDevice != 0:
		return unix.S_IFBLK
	}
	return 0
}

func (t *posixTree) mkdir(_ context.Context, p string, perm uint32, own *owner) error {
	if err := os.Mkdir(t.full(p), fs.FileMode(perm&0o777)); err != nil {
		return err
	}
	if own != nil {
		return os.Lchown(t.full(p), int(own.uid), int(own.gid))
	}
	return nil
}

func (t *posixTree) symlink(_ context.Context, target, p string, own *owner) error {
	if err := os.Symlink(target, t.full(p)); err != nil {
		return err
	}
	if own != nil {
		return os.Lchown(t.full(p), int(own.uid), int(own.gid))
	}
	return nil
}

func (t *posixTree) readlink(_ context.Context, p string) (string, error) {
	return os.Readlink(t.full(p))
}

func (t *posixTree) remove(_ context.Context, p string) error { return os.Remove(t.full(p)) }

func (t *posixTree) openRead(_ context.Context, p string) (reader, info, error) {
	f, err := os.Open(t.full(p))
	if err != nil {
		return nil, info{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, info{}, &fs.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	return &posixFile{f: f}, statInfo(&st), nil
}

func (t *posixTree) create(_ context.Context, p string, _ uint32, own *owner) (writer, error) {
	full := t.full(p)
	// The mode is set at the end: a read-only file is written first.
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if errors.Is(err, fs.ErrPermission) {
		// a read-only file an earlier copy finished: replace it
		if os.Remove(full) == nil {
			f, err = os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		}
	}
	if err != nil {
		return nil, err
	}
	return &posixFile{f: f}, nil
}

func (t *posixTree) setMeta(_ context.Context, p string, m meta, own *owner) error {
	full := t.full(p)
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: full, Err: err}
	}
	if own != nil {
		if err := os.Lchown(full, int(own.uid), int(own.gid)); err != nil {
			return err
		}
	}
	if !isLink(st.Mode) {
		if err := unix.Chmod(full, m.mode); err != nil {
			return &fs.PathError{Op: "chmod", Path: full, Err: err}
		}
	}
	return setTimes(full, m)
}

func setTimes(full string, m meta) error {
	at := m.atime
	if at.IsZero() {
		at = m.mtime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(m.mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, full, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimensat", Path: full, Err: err}
	}
	return nil
}

func (t *posixTree) xattrs(_ context.Context, p string) (map[string][]byte, error) {
	return listXattrs(t.full(p))
}

func (t *posixTree) setXattrs(_ context.Context, p string, x map[string][]byte) error {
	return setXattrs(t.full(p), x)
}

func (t *posixTree) close(context.Context) {}

// listXattrs reads the user xattrs of full (the only ones a user may set
// anywhere; system namespaces such as security.* belong to the file system).
func listXattrs(full string) (map[string][]byte, error) {
	buf := make([]byte, 4096)
	var n int
	var err error
	for {
		n, err = unix.Llistxattr(full, buf)
		if !errors.Is(err, unix.ERANGE) {
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, &fs.PathError{Op: "listxattr", Path: full, Err: err}
	}
	out := map[string][]byte{}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if !strings.HasPrefix(name, "user.") {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(full, name, v)
		if errors.Is(err, unix.ENODATA) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, &fs.PathError{Op: "getxattr " + name, Path: full, Err: err}
		}
		out[name] = v[:m]
	}
	return out, nil
}

func setXattrs(full string, x map[string][]byte) error {
	for name, v := range x {
		if err := unix.Lsetxattr(full, name, v, 0); err != nil {
			return &fs.PathError{Op: "setxattr " + name, Path: full, Err: err}
		}
	}
	return nil
}

// posixFile is an open local file, read and written with pread/pwrite, so
// workers share it.
type posixFile struct{ f *os.File }

func (f *posixFile) readAt(_ context.Context, buf []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(buf, off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// regions asks the file system where data is (SEEK_DATA, SEEK_HOLE); one
// that cannot tell has it all as data.
func (f *posixFile) regions(_ context.Context, size int64) ([]region, error) {
	fd := int(f.f.Fd())
	var out []region
	for off := int64(0); off < size; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole from off on
		}
		if err != nil {
			return []region{{0, size}}, nil
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return []region{{0, size}}, nil
		}
		h = min(h, size)
		if h > d {
			out = append(out, region{d, h - d})
		}
		off = h
	}
	return out, nil
}

func (f *posixFile) xattrs(context.Context) (map[string][]byte, error) { return listXattrs(f.f.Name()) }

func (f *posixFile) close(context.Context) error { return f.f.Close() }

func (f *posixFile) writeAt(_ context.Context, buf []byte, off int64) error {
	_, err := f.f.WriteAt(buf, off)
	return err
}

func (f *posixFile) setXattrs(_ context.Context, x map[string][]byte) error {
	return setXattrs(f.f.Name(), x)
}

func (f *posixFile) finish(_ context.Context, size int64, m meta, own *owner) error {
	defer f.f.Close()
	if err := f.f.Truncate(size); err != nil {
		return err
	}
	if own != nil {
		if err := f.f.Chown(int(own.uid), int(own.gid)); err != nil {
			return err
		}
	}
	if err := f.f.Chmod(fs.FileMode(m.mode&0o777) | modeBits(m.mode)); err != nil {
		return err
	}
	if err := f.f.Close(); err != nil {
		return err
	}
	return setTimes(f.f.Name(), m)
}

// modeBits are the setuid, setgid and sticky bits of a mode as Go's.
func modeBits(mode uint32) fs.FileMode {
	var m fs.FileMode
	if mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

func (f *posixFile) abort(context.Context) { f.f.Close() }
