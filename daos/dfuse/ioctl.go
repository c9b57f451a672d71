package dfuse

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"

	"github.com/godaos/godaos/daos/il"
)

// The interception library (daos/il, bin/libpil4dfs.so) asks, with an
// ioctl on a file it opened through the mount, which pool, container and
// object the file is, so that it can read and write the object's byte array
// itself instead of through FUSE. go-fuse calls a node's Ioctl for every
// ioctl on its open files; the kernel forwards only restricted ioctls, whose
// command encodes direction and size (il.IoctlInfo is an _IOR).

var _ fs.NodeIoctler = (*node)(nil)

// Ioctl answers il.IoctlInfo on regular files; everything else is ENOTTY,
// as on a file system without ioctls (cp's FICLONE, for instance).
func (n *node) Ioctl(ctx context.Context, f fs.FileHandle, cmd uint32, arg uint64, input, output []byte) (int32, syscall.Errno) {
	if cmd != il.IoctlInfo {
		return 0, syscall.ENOTTY
	}
	if len(output) != il.InfoSize || n.obj.Array() == nil {
		return 0, syscall.ENOTTY
	}
	c := n.m.fs.Cont()
	pool, err := il.ParseUUID(c.Pool.Info.GetUuid())
	if err != nil {
		return 0, syscall.ENOTTY
	}
	cont, err := il.ParseUUID(c.Info.GetUuid())
	if err != nil {
		return 0, syscall.ENOTTY
	}
	copy(output, il.Info{Pool: pool, Cont: cont, OID: n.obj.OID(), ChunkSize: n.obj.ChunkSize()}.Encode())
	return 0, 0
}
