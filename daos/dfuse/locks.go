package dfuse

import (
	"context"
	"math"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/internal/daoserr"
)

// POSIX byte-range locks (fcntl F_GETLK, F_SETLK, F_SETLKW) and flock go to
// the lock table the engines keep for each object (daos.Cont.SetLock), so
// that they hold across every mount of the container: two dfuse mounts on
// two nodes see each other's locks, as ROMIO's data sieving and HDF5 need.

var (
	_ fs.FileGetlker  = (*handle)(nil)
	_ fs.FileSetlker  = (*handle)(nil)
	_ fs.FileSetlkwer = (*handle)(nil)
)

// The kernel's lock types (fcntl.h).
const (
	fRdlck = 0
	fWrlck = 1
	fUnlck = 2
)

// offsetMax is the kernel's "to the end of the file" (OFFSET_MAX).
const offsetMax = math.MaxInt64

func toByteLock(lk *fuse.FileLock) (daos.ByteLock, bool) {
	l := daos.ByteLock{Start: lk.Start, End: lk.End, Pid: lk.Pid}
	if lk.End >= offsetMax {
		l.End = daos.LockEOF
	}
	switch lk.Typ {
	case fRdlck:
		l.Type = daos.LockRead
	case fWrlck:
		l.Type = daos.LockWrite
	case fUnlck:
		l.Type = daos.LockUnlock
	default:
		return l, false
	}
	return l, true
}

// lockOwners remembers who locked through a handle, to release their locks
// when the file is released (flock's locks belong to the open file; POSIX
// locks are also released by the kernel's own unlock at each close).
type lockOwners struct {
	mu     sync.Mutex
	owners map[uint64]daos.OID // owner -> the lock table it locked in
}

// flockBit marks the lock table of flock(2) locks: Linux keeps them apart
// from fcntl's (neither conflicts with the other), so they go in a table of
// their own, keyed by the file's OID with the top bit of its user part set.
const flockBit = 1 << 31

// lockKey is the lock table of file oid for a request with FUSE lock flags.
func lockKey(oid daos.OID, flags uint32) daos.OID {
	if flags&fuse.FUSE_LK_FLOCK != 0 {
		oid.Hi |= flockBit
	}
	return oid
}

func (h *handle) owner(ctx context.Context, owner uint64) daos.LockOwner {
	o := daos.LockOwner{Owner: owner}
	if c, ok := fuse.FromContext(ctx); ok {
		o.Pid = c.Pid
	}
	return o
}

func (h *handle) Getlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32, out *fuse.FileLock) syscall.Errno {
	ctx = uninterruptible(ctx)
	l, ok := toByteLock(lk)
	if !ok || l.Type == daos.LockUnlock {
		return syscall.EINVAL
	}
	got, err := h.n.m.fs.Cont().GetLock(ctx, lockKey(h.n.obj.OID(), flags), h.owner(ctx, owner), l)
	if err != nil {
		return errno(err)
	}
	*out = fuse.FileLock{Start: got.Start, End: got.End, Pid: got.Pid}
	if got.End == daos.LockEOF {
		out.End = offsetMax
	}
	switch got.Type {
	case daos.LockRead:
		out.Typ = fRdlck
	case daos.LockWrite:
		out.Typ = fWrlck
	default:
		out.Typ = fUnlck
	}
	return 0
}

func (h *handle) Setlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	ctx = uninterruptible(ctx)
	return h.setlk(ctx, owner, lk, flags, false)
}

func (h *handle) Setlkw(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return h.setlk(ctx, owner, lk, flags, true)
}

func (h *handle) setlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32, wait bool) syscall.Errno {
	l, ok := toByteLock(lk)
	if !ok {
		return syscall.EINVAL
	}
	key := lockKey(h.n.obj.OID(), flags)
	err := h.n.m.fs.Cont().SetLock(ctx, key, h.owner(ctx, owner), l, wait)
	switch {
	case daoserr.Is(err, daoserr.Busy):
		return syscall.EAGAIN // fcntl's answer to a conflict
	case err != nil && ctx.Err() != nil:
		return syscall.EINTR // the waiter was interrupted
	case err != nil:
		return errno(err)
	}
	if l.Type != daos.LockUnlock {
		if key == h.n.obj.OID() { // fcntl's: released at each close (FLUSH)
			h.n.m.noteLock(ino(key), owner, key)
		}
		h.locks.mu.Lock()
		if h.locks.owners == nil {
			h.locks.owners = map[uint64]daos.OID{}
		}
		h.locks.owners[owner] = key
		h.locks.mu.Unlock()
	}
	return 0
}

// releaseLocks drops the locks of everyone who locked through h.
func (h *handle) releaseLocks(ctx context.Context) error {
	h.locks.mu.Lock()
	owners := h.locks.owners
	h.locks.owners = nil
	h.locks.mu.Unlock()
	var first error
	for o, key := range owners {
		if err := h.n.m.fs.Cont().UnlockOwner(ctx, key, daos.LockOwner{Owner: o}); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// heldLock is an owner's locks on an inode, taken through this mount.
type heldLock struct{ ino, owner uint64 }

func (m *mount) noteLock(ino, owner uint64, oid daos.OID) {
	m.heldMu.Lock()
	m.held[heldLock{ino, owner}] = oid
	m.heldMu.Unlock()
}

// lockFlusher releases a lock owner's locks on a file when it closes a
// descriptor of it, as POSIX wants: the kernel keeps no record of locks a
// FUSE file system holds, so the FLUSH of every close (which names the
// node and the lock owner) is the only word of it. go-fuse's node API does
// not pass the lock owner on, so this wraps the raw file system.
type lockFlusher struct {
	fuse.RawFileSystem
	m *mount
}

func (l *lockFlusher) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	key := heldLock{in.NodeId, in.LockOwner}
	l.m.heldMu.Lock()
	oid, ok := l.m.held[key]
	delete(l.m.held, key)
	l.m.heldMu.Unlock()
	if ok {
		if err := l.m.fs.Cont().UnlockOwner(context.Background(), oid, daos.LockOwner{Owner: in.LockOwner}); err != nil {
			l.m.log.Warn("releasing locks at close", "oid", oid, "err", err)
		}
	}
	return l.RawFileSystem.Flush(cancel, in)
}
