// Package dfsperf is the dfs_perf benchmark, IOR and mdtest in one for a
// POSIX namespace: several processes (ranks) write then read a file each in
// transfers of one size (io), or create, stat and remove files in a
// directory each (md), through DFS directly (api dfs: the client library in
// the process, as IOR's and mdtest's DFS backends) or through any directory
// (api posix: a dfuse mount, the same with the interception library
// preloaded, or a local file system, so that each figure has its baseline
// measured in the same run).
//
// Ranks are processes: the command runs itself once per rank, and the
// parent starts each phase in all of them at once and times it from that
// start to the last rank's end, as MPI benchmarks time between barriers.
package dfsperf

import (
	"context"
	"fmt"
	"os"
	"path"
	"syscall"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/internal/daoserr"
)

// Config is one run.
type Config struct {
	Mode     string // "io" or "md"
	API      string // "dfs" or "posix"
	Pool     string // api dfs: the pool
	Cont     string // api dfs: a POSIX container
	Dir      string // api posix: a directory; api dfs: a path in the container ("" is the root)
	Ranks    int    // processes
	FileSize int64  // io: bytes each rank writes
	Xfer     int    // io: bytes per write or read
	Files    int    // md: files each rank creates
	Verify   bool   // io: check every byte read
}

func (c *Config) check() error {
	switch {
	case c.Mode != "io" && c.Mode != "md":
		return daoserr.Newf(daoserr.Inval, "dfs_perf: mode %q", c.Mode).WithResolution("give io (IOR-like) or md (mdtest-like)")
	case c.API != "dfs" && c.API != "posix":
		return daoserr.Newf(daoserr.Inval, "dfs_perf: api %q", c.API).WithResolution("give dfs (the library in the process) or posix (a directory: a dfuse mount or a local file system)")
	case c.API == "dfs" && (c.Pool == "" || c.Cont == ""):
		return daoserr.New(daoserr.Inval, "dfs_perf: api dfs needs --pool and --cont (a POSIX container)")
	case c.API == "posix" && c.Dir == "":
		return daoserr.New(daoserr.Inval, "dfs_perf: api posix needs --dir")
	case c.Ranks < 1:
		return daoserr.Newf(daoserr.Inval, "dfs_perf: %d ranks", c.Ranks)
	case c.Mode == "io" && (c.Xfer < 16 || c.FileSize < int64(c.Xfer) || c.FileSize%int64(c.Xfer) != 0):
		return daoserr.Newf(daoserr.Inval, "dfs_perf: file size %d, transfer %d", c.FileSize, c.Xfer).
			WithResolution("give a transfer size of at least 16 bytes (each is stamped with its rank and block) that divides the file size")
	case c.Mode == "md" && c.Files < 1:
		return daoserr.Newf(daoserr.Inval, "dfs_perf: %d files", c.Files)
	}
	return nil
}

// Phases are a mode's phases, in order.
func (c *Config) Phases() []string {
	if c.Mode == "io" {
		return []string{"write", "read"}
	}
	return []string{"create", "stat", "remove"}
}

// backend is what a rank does its operations through.
type backend interface {
	mkdirAll(p string) error
	create(p string) (file, error) // O_CREAT|O_EXCL|O_RDWR
	open(p string) (file, error)   // O_RDWR
	stat(p string) error
	remove(p string) error
	close()
}

type file interface {
	writeAt(b []byte, off int64) error
	readAt(b []byte, off int64) (int, error)
	close() error
}

// posix: the operating system's calls on a directory.
type posixBackend struct{}

type posixFile struct{ f *os.File }

func (posixBackend) mkdirAll(p string) error { return os.MkdirAll(p, 0o755) }
func (posixBackend) create(p string) (file, error) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	return posixFile{f}, err
}
func (posixBackend) open(p string) (file, error) {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	return posixFile{f}, err
}
func (posixBackend) stat(p string) error {
	_, err := os.Stat(p) // retries EINTR, which Go's preemption signals cause on FUSE
	return err
}
func (posixBackend) remove(p string) error { return os.Remove(p) }
func (posixBackend) close()                {}
func (f posixFile) writeAt(b []byte, off int64) error {
	_, err := f.f.WriteAt(b, off)
	return err
}
func (f posixFile) readAt(b []byte, off int64) (int, error) { return f.f.ReadAt(b, off) }
func (f posixFile) close() error                            { return f.f.Close() }

// dfs: the namespace through the client library, as IOR's DFS backend.
type dfsBackend struct {
	ctx  context.Context
	cl   *daos.Client
	pool *daos.Pool
	cont *daos.Cont
	fs   *dfs.FS
	dirs map[string]*dfs.Obj // open directories by path
}

type dfsFile struct {
	ctx context.Context
	o   *dfs.Obj
}

func newDFSBackend(ctx context.Context, pool, cont string) (*dfsBackend, error) {
	cl, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		return nil, err
	}
	b := &dfsBackend{ctx: ctx, cl: cl, dirs: map[string]*dfs.Obj{}}
	if b.pool, err = cl.PoolConnect(ctx, pool, daos.RW); err == nil {
		if b.cont, err = b.pool.ContOpen(ctx, cont, daos.RW); err == nil {
			b.fs, err = dfs.Mount(ctx, b.cont, false)
		}
	}
	if err != nil {
		b.close()
		return nil, err
	}
	b.dirs["/"] = b.fs.Root()
	return b, nil
}

// dir opens (and caches) the directory at p.
func (b *dfsBackend) dir(p string) (*dfs.Obj, error) {
	p = path.Clean("/" + p)
	if d := b.dirs[p]; d != nil {
		return d, nil
	}
	d, err := b.fs.LookupPath(b.ctx, p, true)
	if err != nil {
		return nil, err
	}
	b.dirs[p] = d
	return d, nil
}

func (b *dfsBackend) mkdirAll(p string) error {
	p = path.Clean("/" + p)
	if p == "/" {
		return nil
	}
	if _, err := b.dir(p); err == nil {
		return nil
	}
	if err := b.mkdirAll(path.Dir(p)); err != nil {
		return err
	}
	parent, err := b.dir(path.Dir(p))
	if err != nil {
		return err
	}
	if err := b.fs.Mkdir(b.ctx, parent, path.Base(p), 0o755, dfs.OpenOptions{}); err != nil && dfs.Errno(err) != syscall.EEXIST {
		return err
	}
	return nil
}

func (b *dfsBackend) openFlags(p string, flags int) (file, error) {
	d, err := b.dir(path.Dir(path.Clean("/" + p)))
	if err != nil {
		return nil, err
	}
	o, err := b.fs.Open(b.ctx, d, path.Base(p), flags, 0o644, dfs.OpenOptions{})
	if err != nil {
		return nil, err
	}
	return dfsFile{b.ctx, o}, nil
}

func (b *dfsBackend) create(p string) (file, error) {
	return b.openFlags(p, os.O_CREATE|os.O_EXCL|os.O_RDWR)
}
func (b *dfsBackend) open(p string) (file, error) { return b.openFlags(p, os.O_RDWR) }

func (b *dfsBackend) stat(p string) error {
	d, err := b.dir(path.Dir(path.Clean("/" + p)))
	if err != nil {
		return err
	}
	o, _, err := b.fs.LookupStat(b.ctx, d, path.Base(p))
	if err != nil {
		return err
	}
	return o.Close(b.ctx)
}

func (b *dfsBackend) remove(p string) error {
	d, err := b.dir(path.Dir(path.Clean("/" + p)))
	if err != nil {
		return err
	}
	_, err = b.fs.Remove(b.ctx, d, path.Base(p), dfs.RemoveOptions{})
	return err
}

func (b *dfsBackend) close() {
	for _, d := range b.dirs {
		d.Close(b.ctx)
	}
	if b.fs != nil {
		b.fs.Umount()
	}
	if b.cont != nil {
		b.cont.Close(b.ctx)
	}
	if b.pool != nil {
		b.pool.Disconnect(b.ctx)
	}
	b.cl.Fini()
}

func (f dfsFile) writeAt(b []byte, off int64) error       { return f.o.Write(f.ctx, b, off) }
func (f dfsFile) readAt(b []byte, off int64) (int, error) { return f.o.Read(f.ctx, b, off) }
func (f dfsFile) close() error                            { return f.o.Close(f.ctx) }

// rankPath is rank r's directory under the run's top directory (mdtest -u:
// a directory per task).
func rankPath(top string, rank int) string { return path.Join(top, fmt.Sprintf("rank%d", rank)) }
