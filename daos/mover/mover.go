// Package mover is GoDAOS's data mover: `daos fs copy` (DAOS's `daos
// filesystem copy`), which copies file trees between POSIX file systems and
// POSIX containers through DFS, and `daos cont clone`, which copies every
// object of a container of any type into a new container through the
// object API.
//
// A copy runs on a bounded pool of workers: directories are listed, files
// are opened, and a file's data regions are cut into pieces that several
// workers copy at once, so one big file uses every worker. It keeps modes,
// mtimes, symlinks, user xattrs, sparse regions (holes are never written:
// data regions come from SEEK_DATA/SEEK_HOLE or the array's chunks, and
// all-zero blocks are skipped) and, run as root, ownership.
//
// A copy is idempotent and resumable: a file whose destination already has
// its size and mtime is skipped (Options.Force copies it again), and a file
// gets its mtime last, after its data, so a file an interrupted run left
// half-written is copied again by the next run.
package mover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/daos/uns"
	"github.com/godaos/godaos/internal/daoserr"
)

// Endpoint is one side of a copy: a local (POSIX) path, or a path in a
// container's namespace.
type Endpoint struct {
	// Path is a local path; empty for a container.
	Path string
	// Pool and Cont name a container (labels or UUIDs); Dir is a path in
	// its namespace ("/" for its root).
	Pool, Cont, Dir string
	// UNS is the UNS directory the container was found through, if any.
	UNS string
	// Contents copies a source directory's entries rather than the
	// directory itself (a path ending in "/", or a container's root), as
	// rsync does; otherwise the directory is copied into the destination
	// under its own name, as DAOS's fs copy does.
	Contents bool
}

// IsDAOS tells whether the endpoint is a container.
func (e Endpoint) IsDAOS() bool { return e.Path == "" }

// String is the endpoint as a user writes it.
func (e Endpoint) String() string {
	if !e.IsDAOS() {
		return e.Path
	}
	if e.UNS != "" { // as the user named it
		return filepath.Join(e.UNS, filepath.FromSlash(e.Dir))
	}
	s := "daos://" + e.Pool
	if e.Cont != "" {
		s += "/" + e.Cont
	}
	if e.Dir != "" && e.Dir != "/" {
		s += e.Dir
	}
	return s
}

// ParseEndpoint reads "daos://POOL/CONT[/PATH]" (DAOS's syntax; "daos://POOL"
// alone names a pool, for a clone's destination), or a local path. A local
// path inside a UNS directory (one whose user.daos xattr names a container,
// as `daos cont create --path` makes it) is a path in that container, as
// DAOS's duns resolves it: the path itself and then each parent is looked
// at.
func ParseEndpoint(s string) (Endpoint, error) {
	if s == "" {
		return Endpoint{}, daoserr.New(daoserr.Inval, "an empty path").WithResolution("give a local path or daos://POOL/CONT[/PATH]")
	}
	if rest, ok := strings.CutPrefix(s, "daos://"); ok {
		pool, rest, _ := strings.Cut(rest, "/")
		cont, dir, _ := strings.Cut(rest, "/")
		if pool == "" || (cont == "" && dir != "") {
			return Endpoint{}, daoserr.Newf(daoserr.Inval, "%q names no pool and container", s).WithResolution("write daos://POOL/CONT[/PATH]")
		}
		e := Endpoint{Pool: pool, Cont: cont, Dir: path.Clean("/" + dir)}
		e.Contents = e.Dir == "/" || strings.HasSuffix(s, "/")
		return e, nil
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return Endpoint{}, daoserr.Wrap(daoserr.Inval, err, "path %s", s)
	}
	contents := strings.HasSuffix(s, "/") || strings.HasSuffix(s, "/.")
	for p := abs; ; p = filepath.Dir(p) {
		l, found, err := unsLink(p)
		if err != nil {
			return Endpoint{}, err
		}
		if found {
			rel, _ := filepath.Rel(p, abs)
			e := Endpoint{Pool: l.Pool, Cont: l.Cont, Dir: path.Clean("/" + filepath.ToSlash(rel)), UNS: p}
			e.Contents = contents || e.Dir == "/"
			return e, nil
		}
		if p == "/" || p == filepath.Dir(p) {
			break
		}
	}
	return Endpoint{Path: abs, Contents: contents}, nil
}

// unsLink reads the UNS link at p, if p has one. Any failure to read the
// attribute (none, no such path, no xattr support, no permission) means p
// is no UNS directory; a value that is no link is an error.
func unsLink(p string) (uns.Link, bool, error) {
	buf := make([]byte, 1024)
	n, err := unix.Getxattr(p, uns.Xattr, buf)
	if err != nil {
		return uns.Link{}, false, nil
	}
	l, err := uns.Parse(string(buf[:n]))
	if err != nil {
		return uns.Link{}, false, daoserr.Context(err, "UNS directory %s", p)
	}
	return l, true, nil
}

// Options tune a copy or a clone.
type Options struct {
	// Client reaches the containers; nil: one is made through daos_agent
	// (daos.Init) and closed at the end.
	Client *daos.Client
	// Workers copy files and pieces of files concurrently (default 16).
	Workers int
	// PieceSize is how much of a file one worker copies at once, and so
	// how a big file is split (default 8 MiB, the largest array request).
	PieceSize int64
	// Force copies files again even when the destination's size and mtime
	// match.
	Force bool
	// Verify compares the crc32c (Castagnoli) of every file on both sides
	// after the copy; mismatches fail it with DER_CSUM.
	Verify bool
	// Progress, when set, gets a progress line (files, bytes, rate) now
	// and then, rewritten in place with "\r" (for a terminal).
	Progress io.Writer
	// ProgressEvery is how often it is written (default 500 ms).
	ProgressEvery time.Duration
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.PieceSize <= 0 {
		o.PieceSize = 8 << 20
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 500 * time.Millisecond
	}
	return o
}

// Stats is what a copy did.
type Stats struct {
	Src string `json:"src"` // what was copied
	Dst string `json:"dst"` // where to, as resolved (with the source's name when it was added)
	// DstType is DAOS (a container) or POSIX.
	DstType  string `json:"dst_type"`
	Dirs     int64  `json:"directories"`
	Files    int64  `json:"files"`   // regular files copied
	Links    int64  `json:"links"`   // symlinks made (or found right)
	Skipped  int64  `json:"skipped"` // regular files already up to date
	Bytes    int64  `json:"bytes"`   // file data copied (holes not counted)
	Verified int64  `json:"verified,omitempty"`
	// Mismatches are the files whose checksums differ (Verify).
	Mismatches []string      `json:"mismatches,omitempty"`
	Warnings   []string      `json:"warnings,omitempty"` // what was left out (device files, FIFOs, sockets ...)
	Elapsed    time.Duration `json:"elapsed_ns"`
}

// client returns the options' client, or a new one and how to close it.
func (o Options) client(ctx context.Context) (*daos.Client, func(), error) {
	if o.Client != nil {
		return o.Client, func() {}, nil
	}
	c, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		return nil, nil, err
	}
	return c, func() { c.Fini() }, nil
}

// openCont connects to an endpoint's pool and opens its container, with
// errors that say which and what to do.
func openCont(ctx context.Context, c *daos.Client, e Endpoint, write bool) (*daos.Pool, *daos.Cont, error) {
	mode := daos.RO
	if write {
		mode = daos.RW
	}
	p, err := c.PoolConnect(ctx, e.Pool, mode)
	if err != nil {
		err = daoserr.Context(err, "connect to pool %s (for %s)", e.Pool, e)
		if e.UNS != "" && daoserr.Is(err, daoserr.Nonexist) {
			err = asDaos(err).WithResolution("UNS directory %s points at pool %s, which does not exist: remove the stale directory (rmdir %s)", e.UNS, e.Pool, e.UNS)
		}
		return nil, nil, err
	}
	h, err := p.ContOpen(ctx, e.Cont, mode)
	if err != nil {
		p.Disconnect(ctx)
		if !daoserr.Is(err, daoserr.Nonexist) {
			return nil, nil, daoserr.Context(err, "open container %s of pool %s", e.Cont, e.Pool)
		}
		if e.UNS != "" {
			return nil, nil, daoserr.Wrap(daoserr.Nonexist, err, "UNS directory %s points at container %s of pool %s, which does not exist", e.UNS, e.Cont, e.Pool).
				WithResolution("the container was destroyed: remove the stale directory (rmdir %s), or create a new one with `daos cont create %s --type POSIX --path DIR`", e.UNS, e.Pool)
		}
		return nil, nil, daoserr.Wrap(daoserr.Nonexist, err, "container %s does not exist in pool %s", e.Cont, e.Pool).
			WithResolution("check the name with `daos cont list %s`, or create it with `daos cont create %s %s --type POSIX`", e.Pool, e.Pool, e.Cont)
	}
	return p, h, nil
}

// asDaos is err as a *daoserr.Error (wrapped in DER_MISC if it carries no code).
func asDaos(err error) *daoserr.Error {
	var de *daoserr.Error
	if errors.As(err, &de) {
		return de
	}
	return daoserr.Wrap(daoserr.Misc, err, "")
}

// wrap gives err a DAOS code (from its errno when it has none) and context.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if daoserr.CodeOf(err) != 0 {
		return daoserr.Context(err, format, args...)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return daoserr.Wrap(daoserr.Canceled, err, format, args...)
	}
	var c daoserr.Code
	switch dfs.Errno(err) {
	case syscall.ENOENT:
		c = daoserr.Nonexist
	case syscall.EEXIST:
		c = daoserr.Exist
	case syscall.EACCES, syscall.EPERM:
		c = daoserr.NoPerm
	case syscall.ENOSPC:
		c = daoserr.NoSpace
	case syscall.ENOTDIR:
		c = daoserr.NotDir
	case syscall.EINVAL:
		c = daoserr.Inval
	case syscall.ENAMETOOLONG:
		c = daoserr.Key2Big
	case syscall.EINTR, syscall.ECANCELED:
		c = daoserr.Canceled
	default:
		c = daoserr.IO
	}
	return daoserr.Wrap(c, err, format, args...)
}

func isExist(err error) bool    { return dfs.Errno(err) == syscall.EEXIST }
func isNotExist(err error) bool { return dfs.Errno(err) == syscall.ENOENT }

// Summary is DAOS's final report of a copy, in its words.
func (s Stats) Summary(w io.Writer, verify bool) {
	fmt.Fprintf(w, "Successfully copied to %s: %s\n", s.DstType, s.Dst)
	fmt.Fprintf(w, "    Directories: %d\n    Files:       %d\n    Links:       %d\n", s.Dirs, s.Files, s.Links)
	if s.Skipped > 0 {
		fmt.Fprintf(w, "    Skipped:     %d (already up to date)\n", s.Skipped)
	}
	fmt.Fprintf(w, "    Data:        %s in %s (%s/s)\n", human(s.Bytes), s.Elapsed.Round(time.Millisecond), human(rate(s.Bytes, s.Elapsed)))
	if verify {
		fmt.Fprintf(w, "    Verified:    %d files (crc32c)\n", s.Verified)
	}
	for _, m := range s.Warnings {
		fmt.Fprintf(w, "    Not copied:  %s\n", m)
	}
}

func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

// human is a byte count in binary units.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, u := float64(n), 0
	for f >= unit && u < 5 {
		f /= unit
		u++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTP"[u-1])
}

// isTerminal tells whether f is a terminal (for the progress line).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// ProgressTo is f when it is a terminal, else nil: a progress line is for
// people watching.
func ProgressTo(f *os.File) io.Writer {
	if f != nil && isTerminal(f) {
		return f
	}
	return nil
}
