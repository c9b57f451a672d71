package dfs

import (
	"context"
	"encoding/binary"
	"syscall"
	"time"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/internal/daoserr"
)

// Obj is an open directory, file or symlink (dfs_obj_t). It is safe for
// concurrent use.
type Obj struct {
	fs     *FS
	oid    daos.OID
	mode   uint32 // as opened; Stat reads the entry again
	chunk  uint64
	class  daos.ClassID
	n      *node
	dir    *daos.Obj      // directories
	file   *daos.ArrayObj // regular files
	target string         // symlinks
	flags  int            // the open flags (O_ACCMODE, O_APPEND ...)
	keep   bool           // the root: Close keeps it
}

// Stat is an object's attributes (struct stat, as dfs_ostat fills it).
type Stat struct {
	Mode      uint32 // S_IF* and permission bits
	UID, GID  uint32
	Size      uint64 // a file's bytes, a symlink's target length, 0 for a directory
	Blocks    uint64 // 512-byte blocks: the size rounded up (sparse regions are counted)
	Mtime     time.Time
	Ctime     time.Time
	OID       daos.OID
	ChunkSize uint64
	Class     daos.ClassID
}

// IsDir, IsRegular and IsSymlink tell the type.
func (s Stat) IsDir() bool     { return s.Mode&S_IFMT == S_IFDIR }
func (s Stat) IsRegular() bool { return s.Mode&S_IFMT == S_IFREG }
func (s Stat) IsSymlink() bool { return s.Mode&S_IFMT == S_IFLNK }

// OID is the object's ID.
func (o *Obj) OID() daos.OID { return o.oid }

// Mode is the type and permission bits it was opened with.
func (o *Obj) Mode() uint32 { return o.mode }

// IsDir tells whether it is a directory.
func (o *Obj) IsDir() bool { return o.mode&S_IFMT == S_IFDIR }

// Name is the object's entry name, as this mount last saw it.
func (o *Obj) Name() string { _, n := o.n.where(); return n }

// Target is a symlink's target.
func (o *Obj) Target() string { return o.target }

// ChunkSize is a file's chunk size in bytes.
func (o *Obj) ChunkSize() uint64 { return o.chunk }

// Array is a regular file's byte array, for callers that do their own I/O
// (the interception library, MPI-IO drivers); nil for others.
func (o *Obj) Array() *daos.ArrayObj { return o.file }

// openEntry makes a handle of the object an entry names.
func (f *FS) openEntry(parent daos.OID, name string, e *entry, flags int) (*Obj, error) {
	o := &Obj{fs: f, oid: e.oid, mode: e.mode, chunk: e.chunk, class: daos.ClassID(e.class), flags: flags, target: e.target}
	var err error
	switch e.mode & S_IFMT {
	case S_IFDIR:
		o.dir, err = f.cont.Obj(e.oid)
	case S_IFREG:
		if o.chunk == 0 {
			o.chunk = f.attr.ChunkSize
		}
		o.file, err = f.cont.ArrayOpenWithAttr(e.oid, 1, o.chunk)
	}
	if err != nil {
		return nil, err
	}
	o.n = f.acquire(e.oid, parent, name, e.seen)
	return o, nil
}

// Close releases the handle, storing the mtime of its writes first (see
// Write). The root is never closed.
func (o *Obj) Close(ctx context.Context) error {
	if o.keep {
		return nil
	}
	err := o.Sync(ctx)
	if o.file != nil {
		o.file.Close()
	}
	o.fs.release(o.oid)
	return err
}

// entryObj is the directory object holding o's entry, and the name.
func (o *Obj) entryObj() (*daos.Obj, string, error) {
	parent, name := o.n.where()
	if parent == o.fs.sb.OID {
		return o.fs.sb, name, nil
	}
	d, err := o.fs.cont.Obj(parent)
	return d, name, err
}

// Stat reads the object's attributes: its entry, and a file's size.
func (o *Obj) Stat(ctx context.Context) (Stat, error) {
	d, name, err := o.entryObj()
	if err != nil {
		return Stat{}, pathErr("stat", name, err)
	}
	e, err := fetchEntry(ctx, d, name)
	if err != nil {
		return Stat{}, pathErr("stat", name, err)
	}
	if e.oid != o.oid {
		// the name now stands for another object: ours was removed (or
		// replaced by a rename) by another client
		return Stat{}, errf("stat", name, syscall.ENOENT, "the entry now names object %s, not %s: it was removed or replaced", e.oid, o.oid)
	}
	return o.statOf(ctx, &e)
}

func (o *Obj) statOf(ctx context.Context, e *entry) (Stat, error) {
	st := Stat{Mode: e.mode, UID: e.uid, GID: e.gid, Mtime: e.mtime, Ctime: e.ctime, OID: e.oid, ChunkSize: e.chunk, Class: daos.ClassID(e.class)}
	switch e.mode & S_IFMT {
	case S_IFREG:
		if st.ChunkSize == 0 {
			st.ChunkSize = o.fs.attr.ChunkSize
		}
		size, err := o.file.GetSize(ctx)
		if err != nil {
			return Stat{}, pathErr("stat", o.Name(), err)
		}
		st.Size = size
		if w := o.n.lastWrite.Load(); w != 0 {
			// written through this mount since the entry's mtime was stored
			st.Mtime = time.Unix(0, w)
			st.Ctime = st.Mtime
		}
	case S_IFLNK:
		st.Size = e.size
	}
	st.Blocks = (st.Size + 511) / 512
	return st, nil
}

// SetAttr says which attributes a SetAttr call changes.
type SetAttr struct {
	Mode         *uint32 // permission bits (the type is kept)
	UID, GID     *uint32
	Mtime, Ctime *time.Time
	Size         *uint64 // truncate or extend a file
}

// SetAttr changes attributes (dfs_osetattr) and returns the new ones. ctime
// becomes now unless given; each attribute is written on its own bytes of
// the inode, so concurrent changes of different attributes never undo each
// other.
func (o *Obj) SetAttr(ctx context.Context, sa SetAttr) (Stat, error) {
	_, name, _ := o.entryObj()
	if err := o.fs.writable("setattr", name); err != nil {
		return Stat{}, err
	}
	if sa.Size != nil {
		if o.file == nil {
			return Stat{}, errf("truncate", name, syscall.EISDIR, "only regular files have a size to set")
		}
		if err := o.file.SetSize(ctx, *sa.Size); err != nil {
			return Stat{}, pathErr("truncate", name, err)
		}
		if sa.Mtime == nil {
			o.n.lastWrite.Store(time.Now().UnixNano())
		}
	}
	var e entry
	var recxs []daos.Recx
	if sa.Mode != nil {
		e.mode = o.mode&S_IFMT | *sa.Mode&permMask
		recxs = append(recxs, daos.Recx{Idx: modeIdx, Nr: 4})
	}
	if sa.UID != nil {
		e.uid = *sa.UID
		recxs = append(recxs, daos.Recx{Idx: uidIdx, Nr: 4})
	}
	if sa.GID != nil {
		e.gid = *sa.GID
		recxs = append(recxs, daos.Recx{Idx: gidIdx, Nr: 4})
	}
	if sa.Mtime != nil {
		e.mtime = *sa.Mtime
		recxs = append(recxs, daos.Recx{Idx: mtimeIdx, Nr: 8}, daos.Recx{Idx: mtimeNsecIdx, Nr: 8})
		o.n.lastWrite.Store(0) // an explicit mtime wins over the writes before it
		o.n.touched.Store(0)   // and the next change of a directory's entries moves it on
	}
	e.ctime = time.Now()
	if sa.Ctime != nil {
		e.ctime = *sa.Ctime
	}
	recxs = append(recxs, daos.Recx{Idx: ctimeIdx, Nr: 8}, daos.Recx{Idx: ctimeNsecIdx, Nr: 8})
	if err := o.updateInode(ctx, &e, recxs); err != nil {
		return Stat{}, err
	}
	if sa.Mode != nil {
		o.mode = e.mode
	}
	return o.Stat(ctx)
}

// current is entryObj once it has checked that the entry still names this
// object: a handle whose entry was removed, or replaced by a rename, must
// not change the object that took its name (ENOENT, as dfs_osetattr
// checks). A removal between the check and the caller's update can still
// slip through, as in DAOS.
func (o *Obj) current(ctx context.Context, op string) (*daos.Obj, string, error) {
	d, name, err := o.entryObj()
	if err != nil {
		return nil, name, pathErr(op, name, err)
	}
	buf := make([]byte, 16)
	iod := []daos.IOD{{Akey: []byte(inodeAkey), Type: daos.Array, Size: 1, Recxs: []daos.Recx{{Idx: oidIdx, Nr: 16}}}}
	res, err := d.Fetch(ctx, []byte(name), iod, [][]byte{buf})
	if err != nil {
		return nil, name, pathErr(op, name, err)
	}
	oid := daos.OID{Lo: binary.LittleEndian.Uint64(buf), Hi: binary.LittleEndian.Uint64(buf[8:])}
	if covered(res[0].Extents) < 16 || oid != o.oid {
		return nil, name, errf(op, name, syscall.ENOENT, "the entry was removed, or now names another object")
	}
	return d, name, nil
}

// updateInode writes the inode bytes of e that recxs name, if the entry
// still names this object.
func (o *Obj) updateInode(ctx context.Context, e *entry, recxs []daos.Recx) error {
	d, name, err := o.current(ctx, "setattr")
	if err != nil {
		return err
	}
	b := e.encode()
	var val []byte // the extents' bytes, in order: one buffer for the one IOD
	for _, r := range recxs {
		val = append(val, b[r.Idx:r.Idx+r.Nr]...)
	}
	iod := []daos.IOD{{Akey: []byte(inodeAkey), Type: daos.Array, Size: 1, Recxs: recxs}}
	// CondDkeyUpdate: never bring back an entry someone removed.
	if _, err := d.UpdateCond(ctx, daos.CondDkeyUpdate, []byte(name), iod, [][]byte{val}); err != nil {
		return pathErr("setattr", name, err)
	}
	return nil
}

// Sync stores the mtime of this mount's writes in the entry (POSIX wants a
// write to update mtime; DFS stores it at fsync and close rather than on
// every write, which would double a small write's round trips). Other
// mounts see a file's new mtime once its writer syncs or closes it, as NFS
// gives close-to-open consistency.
func (o *Obj) Sync(ctx context.Context) error {
	w := o.n.lastWrite.Load()
	if w == 0 || o.fs.ro {
		return nil
	}
	t := time.Unix(0, w)
	e := entry{mtime: t, ctime: t}
	err := o.updateInode(ctx, &e, []daos.Recx{{Idx: mtimeIdx, Nr: 16}, {Idx: mtimeNsecIdx, Nr: 16}})
	if err != nil && Errno(err) != syscall.ENOENT { // removed: nothing to store it in
		return err
	}
	o.n.lastWrite.CompareAndSwap(w, 0)
	return nil
}

// fetchEntry reads an entry's inode (and a symlink's target): ENOENT if the
// directory holds no such name.
func fetchEntry(ctx context.Context, d *daos.Obj, name string) (entry, error) {
	buf := make([]byte, inodeSize)
	iod := []daos.IOD{{Akey: []byte(inodeAkey), Type: daos.Array, Size: 1, Recxs: []daos.Recx{{Idx: 0, Nr: inodeSize}}}}
	res, err := d.FetchCond(ctx, daos.CondDkeyFetch, []byte(name), iod, [][]byte{buf})
	if err != nil {
		return entry{}, err
	}
	if covered(res[0].Extents) < inodeSize {
		return entry{}, daoserr.Newf(daoserr.Nonexist, "no entry %q", name) // a removed entry's remains
	}
	e, err := decodeEntry(buf)
	if err != nil {
		return entry{}, daoserr.Newf(daoserr.IO, "entry %q is corrupt: %v", name, err)
	}
	if e.mode&S_IFMT == S_IFLNK {
		t := make([]byte, e.size)
		iod := []daos.IOD{{Akey: []byte(slinkAkey), Type: daos.Single, Size: e.size}}
		if _, err := d.Fetch(ctx, []byte(name), iod, [][]byte{t}); err != nil {
			return entry{}, err
		}
		e.target = string(t)
	}
	return e, nil
}

func covered(xs []daos.Recx) uint64 {
	var n uint64
	for _, x := range xs {
		n += x.Nr
	}
	return n
}

// insertEntry writes a new entry: EEXIST if the name is taken.
func insertEntry(ctx context.Context, d *daos.Obj, name string, e *entry) error {
	iods := []daos.IOD{{Akey: []byte(inodeAkey), Type: daos.Array, Size: 1, Recxs: []daos.Recx{{Idx: 0, Nr: inodeSize}}}}
	sgls := [][]byte{e.encode()}
	if e.mode&S_IFMT == S_IFLNK {
		iods = append(iods, daos.IOD{Akey: []byte(slinkAkey), Type: daos.Single, Size: uint64(len(e.target))})
		sgls = append(sgls, []byte(e.target))
	}
	_, err := d.UpdateCond(ctx, daos.CondDkeyInsert, []byte(name), iods, sgls)
	return err
}
