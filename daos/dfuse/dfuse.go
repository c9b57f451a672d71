// Package dfuse serves a DFS namespace as a FUSE file system (DAOS's
// dfuse), on hanwen/go-fuse: unmodified programs, MPI-IO (ROMIO's UFS
// driver), HDF5 and fio use GoDAOS through the mount.
//
// Writes go through to the servers before they are acknowledged (there is
// no write-back cache), so stopping dfuse, or killing it, loses no write a
// program was told had happened. What the kernel caches, and for how long,
// is set by Options (see docs/user.md, "Caching").
package dfuse

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
)

// Options are a mount's settings.
type Options struct {
	// How long the kernel may trust what a lookup or getattr told it.
	// Another client's change shows after at most this long.
	EntryTimeout, AttrTimeout, NegativeTimeout time.Duration
	// DataCache says how the kernel caches file data: "otoc" (open to
	// close: the page cache of a file is dropped when it is opened again,
	// so a program that opens a file after another client closed it sees
	// that client's data, as NFS does), "on" (kept across opens; for data
	// no other client changes), or "off" (direct I/O, no page cache).
	DataCache string
	// MultiUser lets every user of the node use the mount, with the kernel
	// checking permissions against the owners and modes stored in DFS.
	MultiUser bool
	ReadOnly  bool
	FsName    string // shown by mount and df
	Logger    *slog.Logger
	Debug     bool // log every FUSE request
}

// DefaultOptions are safe with several clients: one second of attribute
// and entry caching (as DAOS's dfuse), no negative caching (a file another
// client creates is found at once), and open-to-close data caching.
func DefaultOptions() Options {
	return Options{EntryTimeout: time.Second, AttrTimeout: time.Second, DataCache: "otoc"}
}

// Mount serves f at mountpoint until the returned server is unmounted
// (fusermount3 -u, umount, or Server.Unmount).
func Mount(mountpoint string, f *dfs.FS, o Options) (*fuse.Server, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m := &mount{fs: f, opts: o, log: o.Logger, held: map[heldLock]daos.OID{}, nodes: map[uint64]*node{}}
	root := &node{m: m, obj: f.Root()}
	neg := o.NegativeTimeout
	fo := &fs.Options{
		EntryTimeout:    &o.EntryTimeout,
		AttrTimeout:     &o.AttrTimeout,
		NegativeTimeout: &neg,
		RootStableAttr:  &fs.StableAttr{Ino: 1},
		// FUSE node IDs are our inode numbers, so that a FLUSH (which
		// names a node and a lock owner) can release that owner's locks
		ExternalNodeID: true,
		// a mode of 0000 is a mode
		NullPermissions: true,
		MountOptions: fuse.MountOptions{
			FsName:     o.FsName,
			Name:       "dfuse",
			AllowOther: o.MultiUser,
			MaxWrite:   1 << 20,
			// read ahead a whole chunk: sequential reads then reach the
			// servers 1 MiB at a time, not 128 KiB
			MaxReadAhead: 1 << 20,
			EnableLocks:  true,
			Debug:        o.Debug,
			// the kernel checks permissions against the modes we report
			Options: []string{"default_permissions"},
		},
	}
	if o.FsName == "" {
		fo.MountOptions.FsName = "dfuse"
	}
	if o.ReadOnly {
		fo.MountOptions.Options = append(fo.MountOptions.Options, "ro")
	}
	srv, err := fuse.NewServer(&lockFlusher{RawFileSystem: fs.NewNodeFS(root, fo), m: m}, mountpoint, &fo.MountOptions)
	if err != nil {
		return nil, err
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return nil, err
	}
	setReadAhead(mountpoint, fo.MaxReadAhead, o.Logger)
	return srv, nil
}

// setReadAhead raises the kernel's read-ahead of the mount to n bytes.
// FUSE only lowers the device's default (128 KiB) to what the file system
// asks; without this, sequential reads reach dfuse 128 KiB at a time, and
// run at half the speed. It needs root (sysfs); others keep the default.
func setReadAhead(mountpoint string, n int, log *slog.Logger) {
	var st syscall.Stat_t
	if err := syscall.Stat(mountpoint, &st); err != nil {
		return
	}
	f := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(f, []byte(strconv.Itoa(n>>10)), 0); err != nil {
		log.Debug("read-ahead left at the kernel's default", "file", f, "err", err)
	}
}

// mount is one mount's state.
type mount struct {
	fs   *dfs.FS
	opts Options
	log  *slog.Logger

	heldMu sync.Mutex
	held   map[heldLock]daos.OID // who took byte-range locks on what, through this mount

	nodesMu sync.Mutex
	nodes   map[uint64]*node // the inodes the kernel knows, by number
}

// nodeOf is the node of an inode number the kernel knows, or nil.
func (m *mount) nodeOf(ino uint64) *node {
	m.nodesMu.Lock()
	defer m.nodesMu.Unlock()
	return m.nodes[ino]
}

// ino is the inode number of an object: its OID's low part, which the
// container hands out once (the root, whose low part is 0, is inode 1).
func ino(oid daos.OID) uint64 {
	if oid.Lo == 0 {
		return 1 // the root (the superblock, also low part 0, is no inode)
	}
	return oid.Lo
}

// node is an inode: the DFS object it stands for, open while the kernel
// knows the inode.
type node struct {
	fs.Inode
	m   *mount
	obj *dfs.Obj

	mu       sync.Mutex
	opens    int      // open file handles
	unlinked bool     // removed while open: data punched at the last close
	gone     bool     // removed, data punched: opens fail with ENOENT
	last     dfs.Stat // the attributes last seen, for an unlinked open file

	noCapability atomic.Bool // security.capability known absent (see Getxattr)
}

var (
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeReadlinker     = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
	_ fs.NodeGetxattrer     = (*node)(nil)
	_ fs.NodeSetxattrer     = (*node)(nil)
	_ fs.NodeListxattrer    = (*node)(nil)
	_ fs.NodeRemovexattrer  = (*node)(nil)
	_ fs.NodeOnForgetter    = (*node)(nil)
	_ fs.NodeAllocater      = (*node)(nil)
)

func errno(err error) syscall.Errno { return dfs.Errno(err) }

// uninterruptible keeps a request going when the kernel forwards a signal
// the caller received (FUSE INTERRUPT): the operations finish in a bounded
// time, and a Go program, whose runtime signals its threads all the time,
// would otherwise see EINTR from close(2), which it must not retry. Only a
// lock wait (F_SETLKW) stops for a signal, as POSIX says.
func uninterruptible(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// fill copies DFS attributes into FUSE's.
func fill(a *fuse.Attr, st *dfs.Stat) {
	a.Ino = ino(st.OID)
	a.Mode = st.Mode
	a.Size = st.Size
	a.Blocks = st.Blocks
	a.Blksize = 1 << 20
	a.Owner = fuse.Owner{Uid: st.UID, Gid: st.GID}
	a.Nlink = 1 // a directory's 1 says "not counted" (DFS keeps no link count), as btrfs does
	mt, ct := st.Mtime, st.Ctime
	a.SetTimes(&mt, &mt, &ct) // DFS keeps no atime: it reads as mtime, as in DAOS
}

// owner is who owns what the caller creates in directory n: the caller,
// with n's group instead of the caller's when n is set-group-ID (whose
// subdirectories are then set-group-ID too: see Mkdir), as Linux does.
func (n *node) owner(ctx context.Context) dfs.OpenOptions {
	c, ok := fuse.FromContext(ctx)
	if !ok {
		return dfs.OpenOptions{}
	}
	uid, gid := c.Uid, c.Gid
	n.mu.Lock()
	if n.last.Mode&syscall.S_ISGID != 0 {
		gid = n.last.GID
	}
	n.mu.Unlock()
	return dfs.OpenOptions{UID: &uid, GID: &gid}
}

// child makes (or finds) the inode of an object just looked up or created.
func (n *node) child(ctx context.Context, obj *dfs.Obj, st *dfs.Stat, out *fuse.EntryOut) *fs.Inode {
	ctx = uninterruptible(ctx)
	c := &node{m: n.m, obj: obj, last: *st}
	in := n.NewInode(ctx, c, fs.StableAttr{Mode: st.Mode & dfs.S_IFMT, Ino: ino(st.OID)})
	if in.Operations() == c {
		n.m.nodesMu.Lock()
		n.m.nodes[ino(st.OID)] = c
		n.m.nodesMu.Unlock()
	} else {
		// the kernel knows the inode already: keep its node, and drop
		// the handle just opened
		obj.Close(ctx)
		if old, ok := in.Operations().(*node); ok {
			old.mu.Lock()
			old.last = *st
			old.mu.Unlock()
		}
	}
	fill(&out.Attr, st)
	return in
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ctx = uninterruptible(ctx)
	obj, st, err := n.m.fs.LookupStat(ctx, n.obj, name)
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, obj, &st, out), 0
}

// OnForget closes the object when the kernel forgets the inode.
func (n *node) OnForget() {
	if n.obj != n.m.fs.Root() {
		n.m.nodesMu.Lock()
		if n.m.nodes[ino(n.obj.OID())] == n {
			delete(n.m.nodes, ino(n.obj.OID()))
		}
		n.m.nodesMu.Unlock()
		n.obj.Close(context.Background())
	}
}

func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	st, err := n.obj.Stat(ctx)
	if err != nil {
		n.mu.Lock()
		unlinked, open, last := n.unlinked, n.opens > 0, n.last
		n.mu.Unlock()
		switch {
		case errno(err) != syscall.ENOENT:
			return errno(err)
		case !unlinked && !open:
			// The name the kernel looked up is gone (another client
			// removed or replaced it since): ESTALE makes the kernel walk
			// the path again, as over NFS, so that an open(O_CREAT)
			// racing the removal creates the file instead of failing.
			return syscall.ESTALE
		case n.obj.Array() == nil:
			return errno(err)
		}
		// An open file whose entry is gone: unlinked here, or removed or
		// renamed by another client (fstat of a rotated log). Its data is
		// still there: its size from the object, the rest as last seen.
		if st.Size, err = n.obj.Size(ctx); err != nil {
			return errno(err)
		}
		st.Mode, st.UID, st.GID, st.Mtime, st.Ctime, st.OID = last.Mode, last.UID, last.GID, last.Mtime, last.Ctime, last.OID
		st.Blocks = (st.Size + 511) / 512
		fill(&out.Attr, &st)
		if unlinked {
			out.Attr.Nlink = 0
		}
		return 0
	}
	n.mu.Lock()
	n.last = st
	n.mu.Unlock()
	fill(&out.Attr, &st)
	return 0
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	var sa dfs.SetAttr
	if m, ok := in.GetMode(); ok {
		sa.Mode = &m
	}
	if u, ok := in.GetUID(); ok {
		sa.UID = &u
	}
	if g, ok := in.GetGID(); ok {
		sa.GID = &g
	}
	if s, ok := in.GetSize(); ok {
		sa.Size = &s
	}
	if t, ok := in.GetMTime(); ok {
		sa.Mtime = &t
	}
	if t, ok := in.GetCTime(); ok {
		sa.Ctime = &t
	}
	// atime alone: DFS keeps none; nothing to do but report
	n.mu.Lock()
	unlinked := n.unlinked
	n.mu.Unlock()
	var st dfs.Stat
	var err error
	if !unlinked {
		st, err = n.obj.SetAttr(ctx, sa)
	}
	if unlinked || errno(err) == syscall.ENOENT && n.obj.Array() != nil {
		// no entry to write to (unlinked here, or removed by another
		// client) but the file is still open: set its size, keep the
		// rest for fstat
		if st, err = n.setDetached(ctx, sa); err != nil {
			return errno(err)
		}
	}
	if err != nil {
		return errno(err)
	}
	n.mu.Lock()
	n.last = st // a chmod g+s or chgrp of a directory counts at once (see owner)
	n.mu.Unlock()
	fill(&out.Attr, &st)
	return 0
}

// setDetached applies sa to a file that has no entry: the size to its
// data, the rest to the attributes remembered for it.
func (n *node) setDetached(ctx context.Context, sa dfs.SetAttr) (dfs.Stat, error) {
	if sa.Size != nil {
		if err := n.obj.Array().SetSize(ctx, *sa.Size); err != nil {
			return dfs.Stat{}, err
		}
	}
	size, err := n.obj.Size(ctx)
	if err != nil {
		return dfs.Stat{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	st := &n.last
	if sa.Mode != nil {
		st.Mode = st.Mode&dfs.S_IFMT | *sa.Mode&0o7777
	}
	if sa.UID != nil {
		st.UID = *sa.UID
	}
	if sa.GID != nil {
		st.GID = *sa.GID
	}
	if sa.Mtime != nil {
		st.Mtime = *sa.Mtime
	}
	st.Ctime = time.Now()
	st.Size, st.Blocks = size, (size+511)/512
	return *st, nil
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	// Exclusively first: a file this call makes has attributes known
	// without asking (its size is 0), which spares the size query of every
	// shard of a new SX file; one another client made meanwhile is opened
	// and asked, unless the caller wanted O_EXCL.
	o := n.owner(ctx)
	var obj *dfs.Obj
	var st dfs.Stat
	var err error
	// bounded: another client may create and remove the name in turn
	for attempt := 0; attempt < 8; attempt++ {
		obj, err = n.m.fs.Open(ctx, n.obj, name, int(flags)|syscall.O_CREAT|syscall.O_EXCL, mode, o)
		if err == nil {
			now := time.Now()
			st = dfs.Stat{Mode: obj.Mode(), OID: obj.OID(), ChunkSize: obj.ChunkSize(), Mtime: now, Ctime: now}
			if o.UID != nil {
				st.UID, st.GID = *o.UID, *o.GID
			}
			break
		}
		if errno(err) != syscall.EEXIST || flags&syscall.O_EXCL != 0 {
			return nil, nil, 0, errno(err)
		}
		if obj, err = n.m.fs.Open(ctx, n.obj, name, int(flags)&^syscall.O_CREAT, mode, o); err == nil {
			if st, err = obj.Stat(ctx); err == nil {
				break
			}
			obj.Close(ctx)
		}
		if errno(err) != syscall.ENOENT {
			return nil, nil, 0, errno(err)
		}
		// removed between the two: create it again
	}
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	in := n.child(ctx, obj, &st, out)
	c := in.Operations().(*node)
	fh, fuseFlags, e := c.newHandle(flags)
	if e != 0 {
		return nil, nil, 0, e
	}
	return in, fh, fuseFlags, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if n.obj.IsDir() {
		return nil, 0, syscall.EISDIR
	}
	if flags&syscall.O_TRUNC != 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		size := uint64(0)
		if _, err := n.obj.SetAttr(ctx, dfs.SetAttr{Size: &size}); err != nil {
			return nil, 0, errno(err)
		}
	}
	fh, fuseFlags, e := n.newHandle(flags)
	if e != 0 {
		return nil, 0, e
	}
	return fh, fuseFlags, 0
}

// newHandle opens the file: ENOENT once it was removed and its data
// punched (an open racing an unlink then fails rather than read zeros).
func (n *node) newHandle(flags uint32) (*handle, uint32, syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gone {
		return nil, 0, syscall.ENOENT
	}
	n.opens++
	var fuseFlags uint32
	switch n.m.opts.DataCache {
	case "on":
		fuseFlags = fuse.FOPEN_KEEP_CACHE
	case "off":
		fuseFlags = fuse.FOPEN_DIRECT_IO
	}
	return &handle{n: n, flags: flags}, fuseFlags, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ctx = uninterruptible(ctx)
	n.mu.Lock()
	if n.last.Mode&syscall.S_ISGID != 0 {
		mode |= syscall.S_ISGID
	}
	n.mu.Unlock()
	if err := n.m.fs.Mkdir(ctx, n.obj, name, mode, n.owner(ctx)); err != nil {
		return nil, errno(err)
	}
	return n.Lookup(ctx, name, out)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ctx = uninterruptible(ctx)
	obj, err := n.m.fs.Symlink(ctx, n.obj, name, target, n.owner(ctx))
	if err != nil {
		return nil, errno(err)
	}
	st, err := obj.Stat(ctx)
	if err != nil {
		obj.Close(ctx)
		return nil, errno(err)
	}
	return n.child(ctx, obj, &st, out), 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if t := n.obj.Target(); t != "" {
		return []byte(t), 0
	}
	return nil, syscall.EINVAL
}

// Link: DFS keeps an inode in its entry, so an object has one name.
func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ctx = uninterruptible(ctx)
	return nil, syscall.ENOTSUP
}

// Mknod: DFS holds directories, regular files and symlinks.
func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if mode&syscall.S_IFMT == syscall.S_IFREG {
		in, fh, _, e := n.Create(ctx, name, syscall.O_EXCL|syscall.O_WRONLY, mode, out)
		if fh != nil {
			fh.(*handle).Release(ctx)
		}
		return in, e
	}
	return nil, syscall.ENOTSUP
}

// removed settles the data of a file whose entry this mount removed (the
// removal kept it): punched now, unless this mount has the file open; then
// at its last close, so that an unlinked open file stays readable. The
// removed entry's object decides, not the name the kernel had cached:
// another client may have renamed and replaced it meanwhile.
func (m *mount) removed(ctx context.Context, st dfs.Stat) error {
	if st.Mode&dfs.S_IFMT != dfs.S_IFREG {
		return nil
	}
	if c := m.nodeOf(ino(st.OID)); c != nil {
		c.mu.Lock()
		if c.opens > 0 {
			c.unlinked = true
			c.mu.Unlock()
			return nil
		}
		c.gone = true // an open from now on fails: the data goes
		c.mu.Unlock()
	}
	return m.fs.Punch(ctx, st.OID, st.Mode)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	ctx = uninterruptible(ctx)
	st, err := n.m.fs.Remove(ctx, n.obj, name, dfs.RemoveOptions{KeepData: true, NotDir: true})
	if err != nil {
		return errno(err)
	}
	return errno(n.m.removed(ctx, st))
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	ctx = uninterruptible(ctx)
	_, err := n.m.fs.Remove(ctx, n.obj, name, dfs.RemoveOptions{Dir: true})
	return errno(err)
}

const (
	renameNoReplace = 1 // RENAME_NOREPLACE
	renameExchange  = 2 // RENAME_EXCHANGE
)

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	ctx = uninterruptible(ctx)
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	if flags&renameExchange != 0 {
		return syscall.ENOTSUP
	}
	replaced, err := n.m.fs.Rename(ctx, n.obj, name, np.obj, newName, dfs.RenameOptions{NoReplace: flags&renameNoReplace != 0, KeepData: true})
	if err != nil {
		return errno(err)
	}
	if replaced.OID.IsZero() {
		return 0
	}
	return errno(n.m.removed(ctx, replaced))
}

// fallocate modes (linux/falloc.h)
const (
	fallocKeepSize  = 1
	fallocPunchHole = 2
)

// Allocate: DAOS allocates on write, so reserving space only moves the
// size on (posix_fallocate); punching a hole punches the range.
func (n *node) Allocate(ctx context.Context, fh fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	ctx = uninterruptible(ctx)
	switch mode {
	case 0:
		// Extend only: a zero byte at the new end, if no data is there yet.
		// Setting the size would drop what another client wrote past the
		// size read here meanwhile; a write never drops anything.
		if size == 0 {
			return 0
		}
		end := int64(off + size)
		b := make([]byte, 1)
		got, err := n.obj.Read(ctx, b, end-1)
		if err != nil || got == 1 {
			return errno(err) // the file reaches the end already
		}
		return errno(n.obj.Write(ctx, b[:1], end-1))
	case fallocKeepSize:
		return 0
	case fallocPunchHole | fallocKeepSize:
		return errno(n.obj.PunchRange(ctx, off, size))
	}
	return syscall.EOPNOTSUPP
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	s, err := n.m.fs.Statfs(ctx)
	if err != nil {
		return errno(err)
	}
	out.Bsize, out.Frsize = uint32(s.Bsize), uint32(s.Bsize)
	out.Blocks, out.Bfree, out.Bavail = s.Blocks, s.Bfree, s.Bfree
	out.Files, out.Ffree = s.Files, s.Ffree
	out.NameLen = uint32(s.NameLen)
	return 0
}

// capabilityXattr is what the kernel asks a file for before every write
// (to drop file capabilities a write must clear): known absent, it is
// answered here rather than by a fetch each time. A set or remove through
// this mount forgets that; another client's takes the attribute timeout.
const capabilityXattr = "security.capability"

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if attr == capabilityXattr && n.noCapability.Load() {
		return 0, syscall.ENODATA
	}
	v, err := n.obj.GetXattr(ctx, attr)
	if attr == capabilityXattr && errno(err) == syscall.ENODATA {
		n.noCapability.Store(true)
	}
	if err != nil {
		return 0, errno(err)
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	ctx = uninterruptible(ctx)
	if attr == capabilityXattr {
		n.noCapability.Store(false)
	}
	return errno(n.obj.SetXattr(ctx, attr, data, dfs.XattrFlags(flags)))
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	ctx = uninterruptible(ctx)
	if attr == capabilityXattr {
		n.noCapability.Store(false)
	}
	return errno(n.obj.RemoveXattr(ctx, attr))
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	names, err := n.obj.ListXattr(ctx)
	if err != nil {
		return 0, errno(err)
	}
	var b []byte
	for _, nm := range names {
		b = append(append(b, nm...), 0)
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}
