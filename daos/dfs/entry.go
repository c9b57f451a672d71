package dfs

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/godaos/godaos/daos"
)

// A directory entry's inode, as DAOS's DFS keeps it: the akey "DFS_INODE"
// under the entry's dkey (its name) in the parent directory's object, an
// array of 1-byte records at these offsets (dfs_internal.h), so that a
// chmod or a utimes rewrites only its own bytes and two of them never race.
const (
	modeIdx      = 0                 // mode_t: file type and permission bits
	oidIdx       = modeIdx + 4       // daos_obj_id_t: lo, then hi
	mtimeIdx     = oidIdx + 16       // seconds
	ctimeIdx     = mtimeIdx + 8      // seconds
	chunkIdx     = ctimeIdx + 8      // the file's chunk size (0: the container's)
	oclassIdx    = chunkIdx + 8      // the object class it was created with
	mtimeNsecIdx = oclassIdx + 4     // nanoseconds
	ctimeNsecIdx = mtimeNsecIdx + 8  // nanoseconds
	uidIdx       = ctimeNsecIdx + 8  // uid_t
	gidIdx       = uidIdx + 4        // gid_t
	sizeIdx      = gidIdx + 4        // a symlink's target length
	hlcIdx       = sizeIdx + 8       // the object's HLC in DAOS (we keep it, and write 0 for new entries)
	inodeSize    = hlcIdx + 8        // 88 bytes
	inodeAkey    = "DFS_INODE"       //
	slinkAkey    = "DFS_SLINK"       // a symlink's target, a single value
	xattrPrefix  = "x:"              // xattr NAME is the akey "x:NAME", a single value
	maxNameLen   = 255               // NAME_MAX
	maxSymlink   = 4095              // PATH_MAX - 1
	maxXattrName = 255               // XATTR_NAME_MAX
	maxXattrSize = 64 << 10          // XATTR_SIZE_MAX
	rootName     = "/"               // the root's entry, in the superblock object
	sbDkey       = "DFS_SB_METADATA" // the superblock's dkey
)

// entry is a decoded inode.
type entry struct {
	mode   uint32
	oid    daos.OID
	mtime  time.Time
	ctime  time.Time
	chunk  uint64
	class  uint32
	uid    uint32
	gid    uint32
	size   uint64 // symlink target length
	hlc    uint64 // DAOS's object HLC: kept as read, so that a rename (which rewrites the whole inode) does not lose what libdfs stored
	target string // symlink target, fetched separately
	seen   uint64 // not stored: the mount's rename count before the entry was read (see FS.acquire)
}

func putTime(b []byte, secIdx, nsecIdx int, t time.Time) {
	binary.LittleEndian.PutUint64(b[secIdx:], uint64(t.Unix()))
	binary.LittleEndian.PutUint64(b[nsecIdx:], uint64(t.Nanosecond()))
}

func getTime(b []byte, secIdx, nsecIdx int) time.Time {
	return time.Unix(int64(binary.LittleEndian.Uint64(b[secIdx:])), int64(binary.LittleEndian.Uint64(b[nsecIdx:])%1e9))
}

// encode lays the inode out as DFS does.
func (e *entry) encode() []byte {
	b := make([]byte, inodeSize)
	binary.LittleEndian.PutUint32(b[modeIdx:], e.mode)
	binary.LittleEndian.PutUint64(b[oidIdx:], e.oid.Lo)
	binary.LittleEndian.PutUint64(b[oidIdx+8:], e.oid.Hi)
	putTime(b, mtimeIdx, mtimeNsecIdx, e.mtime)
	putTime(b, ctimeIdx, ctimeNsecIdx, e.ctime)
	binary.LittleEndian.PutUint64(b[chunkIdx:], e.chunk)
	binary.LittleEndian.PutUint32(b[oclassIdx:], e.class)
	binary.LittleEndian.PutUint32(b[uidIdx:], e.uid)
	binary.LittleEndian.PutUint32(b[gidIdx:], e.gid)
	binary.LittleEndian.PutUint64(b[sizeIdx:], e.size)
	binary.LittleEndian.PutUint64(b[hlcIdx:], e.hlc)
	return b
}

// decodeEntry reads an inode; it refuses what cannot be one (a short value,
// or a mode of no file type we know), since it comes off the wire.
func decodeEntry(b []byte) (entry, error) {
	if len(b) != inodeSize {
		return entry{}, fmt.Errorf("an inode is %d bytes, this one %d", inodeSize, len(b))
	}
	e := entry{
		mode:  binary.LittleEndian.Uint32(b[modeIdx:]),
		oid:   daos.OID{Lo: binary.LittleEndian.Uint64(b[oidIdx:]), Hi: binary.LittleEndian.Uint64(b[oidIdx+8:])},
		mtime: getTime(b, mtimeIdx, mtimeNsecIdx),
		ctime: getTime(b, ctimeIdx, ctimeNsecIdx),
		chunk: binary.LittleEndian.Uint64(b[chunkIdx:]),
		class: binary.LittleEndian.Uint32(b[oclassIdx:]),
		uid:   binary.LittleEndian.Uint32(b[uidIdx:]),
		gid:   binary.LittleEndian.Uint32(b[gidIdx:]),
		size:  binary.LittleEndian.Uint64(b[sizeIdx:]),
		hlc:   binary.LittleEndian.Uint64(b[hlcIdx:]),
	}
	switch e.mode & S_IFMT {
	case S_IFDIR, S_IFREG, S_IFLNK:
	default:
		return entry{}, fmt.Errorf("inode mode %#o is not a directory, a regular file or a symlink", e.mode)
	}
	if e.mode&S_IFMT == S_IFLNK && e.size > maxSymlink {
		return entry{}, fmt.Errorf("symlink target of %d bytes (at most %d)", e.size, maxSymlink)
	}
	return e, nil
}

// File types and permission bits, as in <sys/stat.h>.
const (
	S_IFMT   = 0o170000
	S_IFDIR  = 0o040000
	S_IFREG  = 0o100000
	S_IFLNK  = 0o120000
	permMask = 0o7777
)
