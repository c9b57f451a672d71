package mover

import (
	"bytes"
	"context"
	"time"
)

// A tree is one side of a copy: a local directory, or a directory of a DFS
// namespace. Paths are relative to its root, slash-separated; "" is the
// root itself. Methods are safe for concurrent use.
type tree interface {
	// String names the tree's root for messages.
	String() string
	// lstat describes the entry at p without following a symlink.
	lstat(ctx context.Context, p string) (info, error)
	// readDir lists directory p: names and types (S_IF* bits of mode).
	readDir(ctx context.Context, p string) ([]dirent, error)
	// mkdir makes directory p (an error matching EEXIST if p exists).
	mkdir(ctx context.Context, p string, perm uint32, own *owner) error
	// symlink makes p a symlink to target.
	symlink(ctx context.Context, target, p string, own *owner) error
	readlink(ctx context.Context, p string) (string, error)
	// remove removes p; a directory must be empty.
	remove(ctx context.Context, p string) error
	// openRead opens regular file p for reading, and describes it.
	openRead(ctx context.Context, p string) (reader, info, error)
	// create creates (or empties) regular file p for writing.
	create(ctx context.Context, p string, perm uint32, own *owner) (writer, error)
	// setMeta sets a directory's or symlink's owner (when own is set),
	// mode (not for symlinks) and mtime, in that order.
	setMeta(ctx context.Context, p string, m meta, own *owner) error
	// xattrs and setXattrs read and write the user xattrs of a directory.
	xattrs(ctx context.Context, p string) (map[string][]byte, error)
	setXattrs(ctx context.Context, p string, x map[string][]byte) error
	// close releases what the tree holds open.
	close(ctx context.Context)
}

// entryOpener is a tree whose readDir may leave an entry's type unknown
// (mode 0), because asking costs a lookup per entry (DFS): openEntry then
// looks the entry up once and gives what a copy needs of it, a reader for
// a regular file (nil for others) and a symlink's target.
type entryOpener interface {
	openEntry(ctx context.Context, p string) (r reader, i info, target string, err error)
}

// reader is an open source file.
type reader interface {
	readAt(ctx context.Context, buf []byte, off int64) (int, error)
	// regions are the parts of the file's first size bytes that may hold
	// data, in order; the rest are holes.
	regions(ctx context.Context, size int64) ([]region, error)
	xattrs(ctx context.Context) (map[string][]byte, error)
	close(ctx context.Context) error
}

// writer is an open destination file.
type writer interface {
	writeAt(ctx context.Context, buf []byte, off int64) error
	setXattrs(ctx context.Context, x map[string][]byte) error
	// finish sets the size (holes at the end stay holes), owner, mode and
	// then mtime, the mark of a complete copy, and closes the file.
	finish(ctx context.Context, size int64, m meta, own *owner) error
	// abort closes the file as it is.
	abort(ctx context.Context)
}

// info describes an entry.
type info struct {
	mode   uint32 // S_IF* type and permission bits
	uid    uint32
	gid    uint32
	size   int64
	mtime  time.Time
	atime  time.Time // zero when the tree keeps none (DFS)
	blocks int64     // 512-byte blocks allocated (POSIX), for tests
}

func (i info) meta() meta { return meta{mode: i.mode & 0o7777, mtime: i.mtime, atime: i.atime} }

// meta is what a copy keeps of an entry besides its data.
type meta struct {
	mode  uint32 // permission bits
	mtime time.Time
	atime time.Time // zero: mtime
}

// owner is a uid and gid to give (only when running as root).
type owner struct{ uid, gid uint32 }

type dirent struct {
	name string
	mode uint32 // S_IF* type bits
}

// region is a byte range [off, off+n).
type region struct{ off, n int64 }

// S_IF* as Linux and DFS both have them.
const (
	sIFMT  = 0o170000
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
)

func isDir(mode uint32) bool  { return mode&sIFMT == sIFDIR }
func isReg(mode uint32) bool  { return mode&sIFMT == sIFREG }
func isLink(mode uint32) bool { return mode&sIFMT == sIFLNK }

// join is p/name, with "" as the root.
func join(p, name string) string {
	if p == "" {
		return name
	}
	return p + "/" + name
}

// allZero tells whether b (at most zeroBlock bytes) holds only zeros.
func allZero(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }

var zeros [zeroBlock]byte

// zeroBlock is the granularity at which all-zero data is left as a hole.
const zeroBlock = 4096

// dataRuns cuts buf (file bytes from off) into the runs that hold non-zero
// data, at zeroBlock boundaries of the file: the rest is left as holes.
func dataRuns(buf []byte, off int64) []region {
	var out []region
	for i := 0; i < len(buf); {
		// the block ends at the next multiple of zeroBlock in the file
		end := min(len(buf), i+int(zeroBlock-(off+int64(i))%zeroBlock))
		if !allZero(buf[i:end]) {
			if n := len(out); n > 0 && out[n-1].off+out[n-1].n == int64(i) {
				out[n-1].n += int64(end - i)
			} else {
				out = append(out, region{int64(i), int64(end - i)})
			}
		}
		i = end
	}
	return out
}
