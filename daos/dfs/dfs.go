// Package dfs is the DAOS File System: a POSIX namespace in one container,
// laid out as DAOS's libdfs lays it out (src/client/dfs/README.md), so that
// dfuse, the interception library, the data mover and MPI-IO share it:
//
//   - a superblock object (OID 0.0) whose dkey "DFS_SB_METADATA" holds the
//     magic, the layout version and the container's defaults (chunk size,
//     object classes);
//   - the root directory's entry, under dkey "/" of the superblock object;
//   - a directory is an object; each of its entries is a dkey (the name)
//     whose akey "DFS_INODE" holds the inode (mode, OID, times, owner, chunk
//     size, class), "DFS_SLINK" a symlink's target, and "x:NAME" the xattr
//     NAME. The inode lives in the entry, so there are no hard links;
//   - a regular file is a byte array (ARRAY_BYTE, 1-byte cells) chunked over
//     dkeys, 1 MiB a chunk by default.
//
// Every operation takes a context and returns *fs.PathError whose error
// matches a POSIX errno (see Errno).
package dfs

import (
	"context"
	"encoding/binary"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/godaos/godaos/daos"
)

// Superblock akeys (DAOS's names) and values.
const (
	sbMagic         = 0xda05df50da05df50
	sbVersion       = 2
	layoutVersion   = 3
	akeyMagic       = "DFS_MAGIC"
	akeySBVersion   = "DFS_SB_VERSION"
	akeyLayoutVer   = "DFS_LAYOUT_VERSION"
	akeyChunkSize   = "DFS_CHUNK_SIZE"
	akeyObjClass    = "DFS_OBJ_CLASS"
	akeyDirClass    = "DFS_DIR_OBJ_CLASS"
	akeyFileClass   = "DFS_FILE_OBJ_CLASS"
	akeyMode        = "DFS_MODE"
	akeyHints       = "DFS_HINTS"
	maxHints        = 128
	DefaultChunk    = 1 << 20 // DFS_DEFAULT_CHUNK_SIZE
	rootHi          = 1       // the root directory is OID lo 0, user hi 1; the superblock lo 0, hi 0
	maxSymlinkHops  = 40      // as Linux's MAXSYMLINKS
	readdirParallel = 16      // entries ReaddirPlus fetches at once
)

// Attr is a namespace's configuration, kept in its superblock
// (dfs_attr_t). Zero values take the defaults.
type Attr struct {
	ChunkSize uint64       // a file's chunk, in bytes (default 1 MiB)
	ObjClass  daos.ClassID // the default class of directories and files (0: chosen from the container's rd_fac, as DAOS does)
	DirClass  daos.ClassID // directories' class (0: ObjClass)
	FileClass daos.ClassID // files' class (0: ObjClass)
	Hints     string       // DAOS's hints string, kept as given
	UID, GID  uint32       // the root directory's owner (default: the caller's)
	Mode      uint32       // the root directory's permission bits (default 0755)
}

// FS is a mounted namespace (dfs_t). It is safe for concurrent use.
type FS struct {
	cont *daos.Cont
	attr Attr
	sb   *daos.Obj
	root *Obj
	ro   bool

	mu    sync.Mutex
	nodes map[daos.OID]*node // what open objects of this mount know of their entries
	// renames counts the renames through this mount (moved), so that a
	// lookup that read an entry before one of them does not move handles
	// back to where the rename took them from (see acquire).
	renames atomic.Uint64
}

// node is where an open object's entry lives, shared by every handle of the
// object in this mount, so that a rename moves them all, and a write marks
// them all.
type node struct {
	refs   int // handles; guarded by FS.mu
	mu     sync.Mutex
	parent daos.OID // the directory holding the entry
	name   string
	// lastWrite is when this mount last wrote the file (unix ns), 0 once
	// the entry's mtime says so: Sync and Close store it (see Obj.Write).
	lastWrite atomic.Int64
	// touched is when this mount last wrote a directory's mtime (see
	// touchDir), 0 after an explicit one.
	touched atomic.Int64
	// present is when this mount last found a directory not removed (see
	// insertChild), 0 once it removed it.
	present atomic.Int64
}

func (n *node) where() (daos.OID, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.parent, n.name
}

// Format creates the namespace in an empty container (dfs_cont_create's
// second half): the superblock and the root directory. EEXIST if the
// container already holds one.
func Format(ctx context.Context, cont *daos.Cont, a Attr) error {
	a = a.withDefaults()
	if err := a.validate(); err != nil {
		return pathErr("format", cont.Info.GetLabel(), err)
	}
	sb, err := sbObj(cont)
	if err != nil {
		return pathErr("format", cont.Info.GetLabel(), err)
	}
	u64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	u16 := func(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
	vals := []struct {
		akey string
		v    []byte
	}{
		{akeyMagic, u64(sbMagic)}, {akeySBVersion, u16(sbVersion)}, {akeyLayoutVer, u16(layoutVersion)},
		{akeyChunkSize, u64(a.ChunkSize)}, {akeyObjClass, u32(uint32(a.ObjClass))},
		{akeyDirClass, u32(uint32(a.DirClass))}, {akeyFileClass, u32(uint32(a.FileClass))},
		{akeyMode, u32(0)}, {akeyHints, []byte(a.Hints)},
	}
	iods := make([]daos.IOD, len(vals))
	sgls := make([][]byte, len(vals))
	for i, v := range vals {
		iods[i] = daos.IOD{Akey: []byte(v.akey), Type: daos.Single, Size: uint64(len(v.v))}
		sgls[i] = v.v
	}
	if a.Hints == "" {
		iods, sgls = iods[:len(iods)-1], sgls[:len(sgls)-1] // an empty single value would punch
	}
	rootOID, err := cont.EncodeOID(0, rootHi, a.DirClass, daos.OTMultiHashed)
	if err != nil {
		return pathErr("format", cont.Info.GetLabel(), err)
	}
	// The files' class too (the directories' was just checked): one the
	// pool or the container's rd_fac cannot take is refused now, as
	// dfs_cont_create does, rather than by every create later.
	if _, err := cont.EncodeOID(0, 0, a.FileClass, daos.OTArrayByte); err != nil {
		return pathErr("format", cont.Info.GetLabel(), err)
	}
	now := time.Now()
	root := entry{mode: S_IFDIR | a.Mode, oid: rootOID, mtime: now, ctime: now, uid: a.UID, gid: a.GID, class: uint32(a.DirClass)}
	// The root's entry first: a superblock is only written over a root, so
	// a mount never finds one without the other.
	if err := insertEntry(ctx, sb, rootName, &root); err != nil {
		return pathErr("format", cont.Info.GetLabel(), err)
	}
	if _, err := sb.UpdateCond(ctx, daos.CondDkeyInsert, []byte(sbDkey), iods, sgls); err != nil {
		return pathErr("format", cont.Info.GetLabel(), err)
	}
	return nil
}

func (a Attr) withDefaults() Attr {
	if a.ChunkSize == 0 {
		a.ChunkSize = DefaultChunk
	}
	if a.DirClass == 0 {
		a.DirClass = a.ObjClass
	}
	if a.FileClass == 0 {
		a.FileClass = a.ObjClass
	}
	if a.UID == 0 && a.GID == 0 {
		a.UID, a.GID = uint32(os.Getuid()), uint32(os.Getgid())
	}
	if a.Mode == 0 {
		a.Mode = 0o755
	}
	a.Mode &= permMask
	return a
}

func (a Attr) validate() error {
	if a.ChunkSize > 1<<40 {
		return errf("format", "", syscall.EINVAL, "chunk size %d is more than 1 TiB", a.ChunkSize)
	}
	if len(a.Hints) > maxHints {
		return errf("format", "", syscall.EINVAL, "hints of %d bytes (at most %d)", len(a.Hints), maxHints)
	}
	return nil
}

func sbObj(cont *daos.Cont) (*daos.Obj, error) {
	oid, err := cont.EncodeOID(0, 0, 0, daos.OTMultiHashed)
	if err != nil {
		return nil, err
	}
	return cont.Obj(oid)
}

// Mount opens the namespace of a container formatted by Format (or by
// DAOS's dfs_cont_create), read-write or, with readOnly, refusing every
// change with EROFS (dfs_mount).
func Mount(ctx context.Context, cont *daos.Cont, readOnly bool) (*FS, error) {
	label := cont.Info.GetLabel()
	sb, err := sbObj(cont)
	if err != nil {
		return nil, pathErr("mount", label, err)
	}
	akeys := []string{akeyMagic, akeySBVersion, akeyLayoutVer, akeyChunkSize, akeyObjClass, akeyDirClass, akeyFileClass, akeyHints}
	sizes := []int{8, 2, 2, 8, 4, 4, 4, maxHints}
	iods := make([]daos.IOD, len(akeys))
	sgls := make([][]byte, len(akeys))
	for i, k := range akeys {
		iods[i] = daos.IOD{Akey: []byte(k), Type: daos.Single, Size: uint64(sizes[i])}
		sgls[i] = make([]byte, sizes[i])
	}
	res, err := sb.FetchCond(ctx, daos.CondDkeyFetch, []byte(sbDkey), iods, sgls)
	if err != nil {
		if Errno(err) == syscall.ENOENT {
			return nil, errf("mount", label, syscall.ENOENT, "container %s holds no POSIX namespace (no DFS superblock); create it with `daos cont create --type POSIX`", label)
		}
		return nil, pathErr("mount", label, err)
	}
	for i := range akeys[:7] {
		if res[i].Size != uint64(sizes[i]) {
			return nil, errf("mount", label, syscall.EINVAL, "the DFS superblock's %s is %d bytes, not %d", akeys[i], res[i].Size, sizes[i])
		}
	}
	if m := binary.LittleEndian.Uint64(sgls[0]); m != sbMagic {
		return nil, errf("mount", label, syscall.EINVAL, "the DFS superblock's magic is %#x, not %#x", m, uint64(sbMagic))
	}
	if v := binary.LittleEndian.Uint16(sgls[2]); v > layoutVersion {
		return nil, errf("mount", label, syscall.EPROTO, "the namespace has DFS layout version %d; this GoDAOS reads up to %d", v, layoutVersion)
	}
	f := &FS{cont: cont, sb: sb, ro: readOnly, nodes: map[daos.OID]*node{}, attr: Attr{
		ChunkSize: binary.LittleEndian.Uint64(sgls[3]),
		ObjClass:  daos.ClassID(binary.LittleEndian.Uint32(sgls[4])),
		DirClass:  daos.ClassID(binary.LittleEndian.Uint32(sgls[5])),
		FileClass: daos.ClassID(binary.LittleEndian.Uint32(sgls[6])),
		Hints:     string(sgls[7][:min(res[7].Size, maxHints)]),
	}}
	if f.attr.ChunkSize == 0 {
		f.attr.ChunkSize = DefaultChunk
	}
	e, err := fetchEntry(ctx, sb, rootName)
	if err != nil {
		return nil, pathErr("mount", label, err)
	}
	if e.mode&S_IFMT != S_IFDIR {
		return nil, errf("mount", label, syscall.ENOTDIR, "the root entry has mode %#o", e.mode)
	}
	f.root, err = f.openEntry(sb.OID, rootName, &e, 0)
	if err != nil {
		return nil, pathErr("mount", label, err)
	}
	f.root.keep = true
	return f, nil
}

// Umount releases the mount (dfs_umount). Open objects keep working until
// they are closed; nothing is cached that Umount would have to write.
func (f *FS) Umount() error { return nil }

// Attr is the namespace's configuration, as its superblock holds it.
func (f *FS) Attr() Attr { return f.attr }

// Cont is the container the namespace lives in.
func (f *FS) Cont() *daos.Cont { return f.cont }

// Root is the root directory. Closing it does nothing.
func (f *FS) Root() *Obj { return f.root }

// Statfs is the pool's space, as statfs(2) reports it in blocks of bsize
// bytes (dfs_statfs).
type Statfs struct {
	Bsize, Blocks, Bfree uint64
	Files, Ffree         uint64 // objects: DAOS has no limit, so both are large
	NameLen              uint64
}

// Statfs reports the pool's space.
func (f *FS) Statfs(ctx context.Context) (Statfs, error) {
	sp, err := f.cont.Pool.Query(ctx)
	if err != nil {
		return Statfs{}, pathErr("statfs", "/", err)
	}
	const bsize = 4096
	total, used := sp.ScmTotal+sp.NvmeTotal, sp.ScmUsed+sp.NvmeUsed
	return Statfs{Bsize: bsize, Blocks: total / bsize, Bfree: (total - min(used, total)) / bsize,
		Files: 1 << 40, Ffree: 1 << 40, NameLen: maxNameLen}, nil
}

func (f *FS) writable(op, name string) error {
	if f.ro {
		return errf(op, name, syscall.EROFS, "the namespace is mounted read-only")
	}
	return nil
}

// acquire registers a handle of oid, whose entry is name in parent, as read
// when f.renames was seen.
func (f *FS) acquire(oid, parent daos.OID, name string, seen uint64) *node {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nodes[oid]
	if n == nil {
		n = &node{parent: parent, name: name}
		f.nodes[oid] = n
	} else if seen == f.renames.Load() {
		// The caller just found (or made) the entry there: that is where
		// it is now, even if the handles already open still say where it
		// was before another client renamed it. Without this, a new
		// handle would take their stale name (and fail with ENOENT).
		// Unless this mount renamed something since the caller read the
		// entry: then the handles may know better (moved).
		n.mu.Lock()
		n.parent, n.name = parent, name
		n.mu.Unlock()
	}
	n.refs++
	return n
}

func (f *FS) release(oid daos.OID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.nodes[oid]; n != nil {
		if n.refs--; n.refs <= 0 {
			delete(f.nodes, oid)
		}
	}
}

// moved tells open handles of oid that their entry is now name in parent.
func (f *FS) moved(oid, parent daos.OID, name string) {
	f.mu.Lock()
	f.renames.Add(1) // under f.mu: acquire checks it under f.mu
	n := f.nodes[oid]
	f.mu.Unlock()
	if n != nil {
		n.mu.Lock()
		n.parent, n.name = parent, name
		n.mu.Unlock()
	}
}
