package dfs

import (
	"context"
	"syscall"
	"time"

	"github.com/godaos/godaos/daos"
)

// Regular files: byte arrays, read and written at offsets (dfs_read,
// dfs_write), straight from and into the caller's buffers.

func (o *Obj) checkFile(op string) error {
	if o.file == nil {
		if o.dir != nil {
			return errf(op, o.Name(), syscall.EISDIR, "a directory has no data")
		}
		return errf(op, o.Name(), syscall.EINVAL, "a symlink has no data")
	}
	return nil
}

// Read reads into buf from offset off and returns the bytes read: fewer
// than len(buf) only at the end of the file. Holes read as zeros.
func (o *Obj) Read(ctx context.Context, buf []byte, off int64) (int, error) {
	if err := o.checkFile("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, errf("read", o.Name(), syscall.EINVAL, "negative offset %d", off)
	}
	if len(buf) == 0 {
		return 0, nil
	}
	end, err := o.file.ReadAt(ctx, buf, uint64(off))
	if err != nil {
		return 0, pathErr("read", o.Name(), err)
	}
	if want := uint64(off) + uint64(len(buf)); end == want {
		return len(buf), nil // the last byte asked for holds data: not at the end
	}
	// The range ends in a hole: the file may end there, or go on past it.
	size, err := o.file.GetSize(ctx)
	if err != nil {
		return 0, pathErr("read", o.Name(), err)
	}
	if size <= uint64(off) {
		return 0, nil
	}
	return int(min(size-uint64(off), uint64(len(buf)))), nil
}

// Write writes buf at offset off. The data is durable when Write returns.
func (o *Obj) Write(ctx context.Context, buf []byte, off int64) error {
	if err := o.checkFile("write"); err != nil {
		return err
	}
	if err := o.fs.writable("write", o.Name()); err != nil {
		return err
	}
	if off < 0 || uint64(off)+uint64(len(buf)) < uint64(off) {
		return errf("write", o.Name(), syscall.EINVAL, "offset %d", off)
	}
	if len(buf) == 0 {
		return nil
	}
	err := o.file.Write(ctx, []daos.ArrayRange{{Idx: uint64(off), Len: uint64(len(buf))}}, [][]byte{buf})
	if err != nil {
		return pathErr("write", o.Name(), err)
	}
	o.n.lastWrite.Store(time.Now().UnixNano())
	return nil
}

// Size is a file's size in bytes (dfs_get_size).
func (o *Obj) Size(ctx context.Context) (uint64, error) {
	if err := o.checkFile("size"); err != nil {
		return 0, err
	}
	n, err := o.file.GetSize(ctx)
	return n, pathErr("size", o.Name(), err)
}

// PunchRange punches len bytes from offset off (dfs_punch, fallocate's
// PUNCH_HOLE|KEEP_SIZE): they read as zeros, and the size is kept.
func (o *Obj) PunchRange(ctx context.Context, off, length uint64) error {
	if err := o.checkFile("punch"); err != nil {
		return err
	}
	if err := o.fs.writable("punch", o.Name()); err != nil {
		return err
	}
	size, err := o.file.GetSize(ctx)
	if err != nil {
		return pathErr("punch", o.Name(), err)
	}
	if off >= size || length == 0 {
		return nil
	}
	length = min(length, size-off)
	if err := o.file.Punch(ctx, []daos.ArrayRange{{Idx: off, Len: length}}); err != nil {
		return pathErr("punch", o.Name(), err)
	}
	if off+length == size {
		// Punching the last bytes would shrink the array: keep its size
		// with a zero byte in the last one (it reads as zero either way).
		// Not SetSize(size), which would also punch whatever another
		// client wrote past size meanwhile (an acknowledged write lost).
		if err := o.file.Write(ctx, []daos.ArrayRange{{Idx: size - 1, Len: 1}}, [][]byte{{0}}); err != nil {
			return pathErr("punch", o.Name(), err)
		}
	}
	o.n.lastWrite.Store(time.Now().UnixNano())
	return nil
}
