package dfuse

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
)

// handle is an open file. Reads and writes go straight to DFS: the kernel
// hands over buffers of up to 1 MiB (MaxWrite), each one request per chunk
// to the targets holding it.
type handle struct {
	n     *node
	flags uint32
	locks lockOwners
}

var (
	_ fs.FileReader    = (*handle)(nil)
	_ fs.FileWriter    = (*handle)(nil)
	_ fs.FileFlusher   = (*handle)(nil)
	_ fs.FileFsyncer   = (*handle)(nil)
	_ fs.FileReleaser  = (*handle)(nil)
	_ fs.FileGetattrer = (*handle)(nil)
)

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	ctx = uninterruptible(ctx)
	n, err := h.n.obj.Read(ctx, dest, off)
	if err != nil {
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if err := h.n.obj.Write(ctx, data, off); err != nil {
		return 0, errno(err)
	}
	return uint32(len(data)), 0
}

func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	return h.n.Getattr(ctx, h, out)
}

// Flush (every close of a descriptor) stores the mtime of the writes.
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	ctx = uninterruptible(ctx)
	return errno(h.n.obj.Sync(ctx))
}

// Fsync: data is durable when a write returns; this stores the mtime.
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	ctx = uninterruptible(ctx)
	return errno(h.n.obj.Sync(ctx))
}

// Release is the last close of the open file: an unlinked file's data goes
// once nobody on this mount has it open.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	ctx = uninterruptible(ctx)
	n := h.n
	lockErr := h.releaseLocks(ctx)
	n.mu.Lock()
	n.opens--
	punch := n.opens == 0 && n.unlinked && !n.gone
	if punch {
		n.gone = true
	}
	n.mu.Unlock()
	if punch {
		return errno(n.m.fs.Punch(ctx, n.obj.OID(), dfs.S_IFREG))
	}
	return errno(lockErr)
}

// dirHandle reads a directory in pages of readdirPage entries, with their
// types, resuming from a DFS anchor; offsets are positions in what it has
// read, so that seekdir back to any of them works.
type dirHandle struct {
	n       *node
	anchor  daos.Anchor
	entries []fuse.DirEntry // read so far
	pos     int             // next to return
}

const readdirPage = 256

var (
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
)

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if !n.obj.IsDir() {
		return nil, 0, syscall.ENOTDIR
	}
	return &dirHandle{n: n}, 0, 0
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if d.pos == 0 && len(d.entries) == 0 {
		// "." and "..", which DFS does not store
		d.entries = append(d.entries, fuse.DirEntry{Name: ".", Mode: fuse.S_IFDIR, Ino: ino(d.n.obj.OID())},
			fuse.DirEntry{Name: "..", Mode: fuse.S_IFDIR, Ino: 1})
	}
	for d.pos == len(d.entries) && !d.anchor.EOF {
		page, err := d.n.m.fs.ReaddirPlus(ctx, d.n.obj, &d.anchor, readdirPage)
		if err != nil {
			return nil, errno(err)
		}
		for _, e := range page {
			d.entries = append(d.entries, fuse.DirEntry{Name: e.Name, Mode: e.Mode & dfs.S_IFMT, Ino: ino(e.OID)})
		}
	}
	if d.pos == len(d.entries) {
		return nil, 0
	}
	e := d.entries[d.pos]
	d.pos++
	e.Off = uint64(d.pos)
	return &e, 0
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	ctx = uninterruptible(ctx)
	if off == 0 {
		// rewinddir: read the directory again as it is now
		d.anchor, d.entries, d.pos = daos.Anchor{}, nil, 0
		return 0
	}
	if off > uint64(len(d.entries)) {
		return syscall.EINVAL
	}
	d.pos = int(off)
	return 0
}
