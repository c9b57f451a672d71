package dfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/internal/daoserr"
)

// checkName refuses names no directory may hold.
func checkName(op, name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return errf(op, name, syscall.EINVAL, "%q is not a name an entry can have", name)
	case strings.IndexByte(name, '/') >= 0 || strings.IndexByte(name, 0) >= 0:
		return errf(op, name, syscall.EINVAL, "an entry's name holds no '/' or NUL")
	case len(name) > maxNameLen:
		return errf(op, name[:32]+"...", syscall.ENAMETOOLONG, "a name of %d bytes (at most %d)", len(name), maxNameLen)
	}
	return nil
}

func (d *Obj) checkDir(op string) error {
	if d.dir == nil {
		return errf(op, d.Name(), syscall.ENOTDIR, "not a directory")
	}
	return nil
}

// A removed directory's object keeps the dkey removedDkey (no entry name
// holds a NUL), written in the transaction that removes its entry, so that
// a handle of it that outlives the removal (another client's, a process's
// cwd) cannot create entries there: no path reaches them, their writers
// would lose them. The object is not punched: the mark must stay.
var (
	removedDkey = []byte("\x00removed")
	removedAkey = []byte("r")
)

func markRemoved(ctx context.Context, tx *daos.Tx, d *daos.Obj) error {
	return tx.Update(ctx, d, removedDkey, []daos.IOD{{Akey: removedAkey, Type: daos.Single, Size: 1}}, [][]byte{{1}})
}

// removedErr is ENOENT if directory object d was removed (see markRemoved).
func removedErr(ctx context.Context, op, name string, d *daos.Obj) error {
	buf := make([]byte, 1)
	res, err := d.Fetch(ctx, removedDkey, []daos.IOD{{Akey: removedAkey, Type: daos.Single, Size: 1}}, [][]byte{buf})
	switch {
	case err != nil:
		return pathErr(op, name, err)
	case res[0].Size > 0:
		return errf(op, name, syscall.ENOENT, "the directory was removed")
	}
	return nil
}

// removedCheckWindow bounds how often a mount checks that a directory it
// creates entries in was not removed (see insertChild): a burst of creates
// in one directory checks once per window, not once per entry, which would
// double the requests a create costs.
const removedCheckWindow = 10 * time.Millisecond

// insertChild is insertEntry in directory dir, which it checks meanwhile
// was not removed (ENOENT then, and the new entry goes again), unless this
// mount found it present within removedCheckWindow. The check runs
// alongside the insert, costing no latency. Another client's removal less
// than a window old, or racing with the insert, can still slip through,
// as in DAOS (which never checks).
func (f *FS) insertChild(ctx context.Context, op string, dir *Obj, name string, e *entry) error {
	now := time.Now().UnixNano()
	if dir.keep || now-dir.n.present.Load() < int64(removedCheckWindow) {
		return insertEntry(ctx, dir.dir, name, e) // the root is never removed
	}
	removed := make(chan error, 1)
	go func() { removed <- removedErr(ctx, op, name, dir.dir) }()
	err := insertEntry(ctx, dir.dir, name, e)
	if rerr := <-removed; rerr != nil {
		if err == nil {
			dir.dir.PunchDkeys(ctx, [][]byte{[]byte(name)})
		}
		return rerr
	}
	dir.n.present.Store(now)
	return err
}

// forget tells this mount's handles of directory oid that it was removed.
func (f *FS) forget(oid daos.OID) {
	f.mu.Lock()
	n := f.nodes[oid]
	f.mu.Unlock()
	if n != nil {
		n.present.Store(0)
	}
}

// Lookup opens the entry name of directory dir (dfs_lookup_rel), without
// following it if it is a symlink.
func (f *FS) Lookup(ctx context.Context, dir *Obj, name string) (*Obj, error) {
	o, _, err := f.lookup(ctx, dir, name, os.O_RDWR)
	return o, err
}

// LookupStat is Lookup that also returns the attributes, as a FUSE lookup
// needs them.
func (f *FS) LookupStat(ctx context.Context, dir *Obj, name string) (*Obj, Stat, error) {
	o, e, err := f.lookup(ctx, dir, name, os.O_RDWR)
	if err != nil {
		return nil, Stat{}, err
	}
	st, err := o.statOf(ctx, &e)
	if err != nil {
		o.Close(ctx)
		return nil, Stat{}, err
	}
	return o, st, nil
}

func (f *FS) lookup(ctx context.Context, dir *Obj, name string, flags int) (*Obj, entry, error) {
	if err := dir.checkDir("lookup"); err != nil {
		return nil, entry{}, err
	}
	if err := checkName("lookup", name); err != nil {
		return nil, entry{}, err
	}
	seen := f.renames.Load()
	e, err := fetchEntry(ctx, dir.dir, name)
	if err != nil {
		return nil, entry{}, pathErr("lookup", name, err)
	}
	e.seen = seen
	o, err := f.openEntry(dir.oid, name, &e, flags)
	if err != nil {
		return nil, entry{}, pathErr("lookup", name, err)
	}
	return o, e, nil
}

// OpenOptions are a new file's or directory's layout.
type OpenOptions struct {
	Class     daos.ClassID // 0: the namespace's file (or directory) class
	ChunkSize uint64       // 0: the namespace's chunk size
	UID, GID  *uint32      // owner (default: the caller's)
}

// Open opens the regular file name in dir (dfs_open), creating it with the
// permission bits of mode under O_CREAT (EEXIST with O_EXCL if it exists),
// emptying it under O_TRUNC. flags are os.O_* (O_APPEND is recorded for the
// caller; DFS writes at the offsets it is given).
func (f *FS) Open(ctx context.Context, dir *Obj, name string, flags int, mode uint32, opts OpenOptions) (*Obj, error) {
	if err := dir.checkDir("open"); err != nil {
		return nil, err
	}
	if err := checkName("open", name); err != nil {
		return nil, err
	}
	writing := flags&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC) != 0
	if writing {
		if err := f.writable("open", name); err != nil {
			return nil, err
		}
	}
	var o *Obj
	var err error
	if flags&os.O_CREATE != 0 {
		var e entry
		if e, err = f.newEntry(ctx, S_IFREG|mode&permMask, f.attr.FileClass, daos.OTArrayByte, opts); err != nil {
			return nil, pathErr("create", name, err)
		}
		// A name that another client removes between our insert (EEXIST)
		// and our lookup (ENOENT) is free again: insert again (a few
		// times) rather than fail an O_CREAT open with ENOENT, which POSIX
		// never does. Without this, 5% of such opens failed while another
		// mount unlinked the name in a loop.
		for attempt := 0; ; attempt++ {
			err = f.insertChild(ctx, "create", dir, name, &e)
			switch {
			case err == nil:
				f.touchDir(ctx, dir)
				return f.openEntry(dir.oid, name, &e, flags)
			case daoserr.Is(err, daoserr.Exist) && flags&os.O_EXCL == 0:
				// someone has it: open theirs
			default:
				return nil, pathErr("create", name, err)
			}
			if o, _, err = f.lookup(ctx, dir, name, flags); Errno(err) != syscall.ENOENT || attempt == 10 {
				break
			}
		}
	} else {
		o, _, err = f.lookup(ctx, dir, name, flags)
	}
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	switch {
	case o.file == nil && o.dir != nil:
		if writing {
			o.Close(ctx)
			return nil, errf("open", name, syscall.EISDIR, "a directory is opened for reading only")
		}
		return o, nil
	case o.file == nil:
		o.Close(ctx)
		return nil, errf("open", name, syscall.ELOOP, "a symlink (Open does not follow it; Lookup it)")
	}
	if flags&os.O_TRUNC != 0 && flags&(os.O_WRONLY|os.O_RDWR) != 0 {
		if err := o.file.SetSize(ctx, 0); err != nil {
			o.Close(ctx)
			return nil, pathErr("truncate", name, err)
		}
		o.n.lastWrite.Store(time.Now().UnixNano())
	}
	return o, nil
}

// newEntry makes the inode of a new object, with a fresh OID.
func (f *FS) newEntry(ctx context.Context, mode uint32, defClass daos.ClassID, t daos.OType, opts OpenOptions) (entry, error) {
	class := opts.Class
	if class == 0 {
		class = defClass
	}
	oid, err := f.cont.GenerateOID(ctx, class, t)
	if err != nil {
		return entry{}, err
	}
	now := time.Now()
	e := entry{mode: mode, oid: oid, mtime: now, ctime: now, chunk: opts.ChunkSize, class: uint32(oid.Class()),
		uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}
	if opts.UID != nil {
		e.uid = *opts.UID
	}
	if opts.GID != nil {
		e.gid = *opts.GID
	}
	return e, nil
}

// Mkdir creates the directory name in dir with the permission bits of mode
// (dfs_mkdir).
func (f *FS) Mkdir(ctx context.Context, dir *Obj, name string, mode uint32, opts OpenOptions) error {
	if err := dir.checkDir("mkdir"); err != nil {
		return err
	}
	if err := checkName("mkdir", name); err != nil {
		return err
	}
	if err := f.writable("mkdir", name); err != nil {
		return err
	}
	e, err := f.newEntry(ctx, S_IFDIR|mode&permMask, f.attr.DirClass, daos.OTMultiHashed, opts)
	if err != nil {
		return pathErr("mkdir", name, err)
	}
	if err := f.insertChild(ctx, "mkdir", dir, name, &e); err != nil {
		return pathErr("mkdir", name, err)
	}
	f.touchDir(ctx, dir)
	return nil
}

// Symlink creates the symlink name in dir pointing at target (dfs_open
// with S_IFLNK) and opens it.
func (f *FS) Symlink(ctx context.Context, dir *Obj, name, target string, opts OpenOptions) (*Obj, error) {
	if err := dir.checkDir("symlink"); err != nil {
		return nil, err
	}
	if err := checkName("symlink", name); err != nil {
		return nil, err
	}
	if err := f.writable("symlink", name); err != nil {
		return nil, err
	}
	if target == "" || len(target) > maxSymlink {
		return nil, errf("symlink", name, syscall.ENAMETOOLONG, "a symlink's target is 1 to %d bytes, this one %d", maxSymlink, len(target))
	}
	now := time.Now()
	e := entry{mode: S_IFLNK | 0o777, mtime: now, ctime: now, size: uint64(len(target)), target: target,
		uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}
	if opts.UID != nil {
		e.uid = *opts.UID
	}
	if opts.GID != nil {
		e.gid = *opts.GID
	}
	// A symlink is no object: it gets an OID all the same, so that a FUSE
	// inode can stand for it.
	oid, err := f.cont.GenerateOID(ctx, f.attr.DirClass, daos.OTMultiHashed)
	if err != nil {
		return nil, pathErr("symlink", name, err)
	}
	e.oid = oid
	if err := f.insertChild(ctx, "symlink", dir, name, &e); err != nil {
		return nil, pathErr("symlink", name, err)
	}
	f.touchDir(ctx, dir)
	return f.openEntry(dir.oid, name, &e, 0)
}

// RemoveOptions change what Remove does.
type RemoveOptions struct {
	// Recursive removes a directory's entries first (dfs_remove's force).
	Recursive bool
	// KeepData leaves a removed file's data in place, for a caller that
	// still has it open and punches it with Punch once it closes it (as
	// POSIX keeps an unlinked open file readable).
	KeepData bool
	// Dir (rmdir) and NotDir (unlink) check the entry's type in the
	// removal itself: ENOTDIR, EISDIR. A caller whose idea of the name is
	// stale (a kernel's cached entry, which another client replaced) then
	// never removes something of another type.
	Dir, NotDir bool
}

// Remove removes the entry name from dir (unlink, rmdir: dfs_remove) and
// punches its object. A directory must be empty (ENOTEMPTY) unless
// Recursive. It returns the removed entry's attributes (without a size).
func (f *FS) Remove(ctx context.Context, dir *Obj, name string, opts RemoveOptions) (Stat, error) {
	if err := dir.checkDir("remove"); err != nil {
		return Stat{}, err
	}
	if err := checkName("remove", name); err != nil {
		return Stat{}, err
	}
	if err := f.writable("remove", name); err != nil {
		return Stat{}, err
	}
	if opts.Recursive {
		// empty the directory first: the transaction below reads it at
		// an epoch after that
		e, err := fetchEntry(ctx, dir.dir, name)
		if err != nil {
			return Stat{}, pathErr("remove", name, err)
		}
		if e.mode&S_IFMT == S_IFDIR {
			sub, err := f.cont.Obj(e.oid)
			if err == nil {
				err = f.removeAll(ctx, sub)
			}
			if err != nil {
				return Stat{}, pathErr("remove", name, err)
			}
		}
	}
	var e entry
	err := f.inTx(ctx, func(tx *daos.Tx) error {
		var err error
		if e, err = txFetchEntry(ctx, tx, dir.dir, name); err != nil {
			return err
		}
		switch isDir := e.mode&S_IFMT == S_IFDIR; {
		case opts.Dir && !isDir:
			return errf("rmdir", name, syscall.ENOTDIR, "not a directory")
		case opts.NotDir && isDir:
			return errf("unlink", name, syscall.EISDIR, "a directory (remove it with rmdir)")
		}
		if e.mode&S_IFMT == S_IFDIR {
			sub, err := f.cont.Obj(e.oid)
			if err != nil {
				return err
			}
			var a daos.Anchor
			keys, err := tx.ListDkeys(ctx, sub, &a, 1)
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				return errf("rmdir", name, syscall.ENOTEMPTY, "the directory holds %q (and maybe more)", keys[0])
			}
			if err := markRemoved(ctx, tx, sub); err != nil {
				return err
			}
		}
		return tx.PunchDkeys(ctx, dir.dir, [][]byte{[]byte(name)})
	})
	if err != nil {
		return Stat{}, pathErr("remove", name, err)
	}
	f.touchDir(ctx, dir)
	if e.mode&S_IFMT == S_IFDIR {
		f.forget(e.oid)
	}
	if !opts.KeepData && e.mode&S_IFMT == S_IFREG { // a directory keeps its mark (markRemoved); a symlink has no object
		if err := f.Punch(ctx, e.oid, e.mode); err != nil {
			return Stat{}, pathErr("remove", name, err)
		}
	}
	return Stat{Mode: e.mode, UID: e.uid, GID: e.gid, Mtime: e.mtime, Ctime: e.ctime, OID: e.oid}, nil
}

// removeAll removes every entry of directory object d.
func (f *FS) removeAll(ctx context.Context, d *daos.Obj) error {
	dir := &Obj{fs: f, oid: d.OID, mode: S_IFDIR, dir: d, n: &node{parent: d.OID}}
	for {
		var a daos.Anchor
		keys, err := d.ListDkeys(ctx, &a, 256)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return nil
		}
		for _, k := range keys {
			if _, err := f.Remove(ctx, dir, string(k), RemoveOptions{Recursive: true}); err != nil && Errno(err) != syscall.ENOENT {
				return err
			}
		}
	}
}

// Punch destroys the object of a removed entry: a file's data, a
// directory's (empty) object. Symlinks have none.
func (f *FS) Punch(ctx context.Context, oid daos.OID, mode uint32) error {
	if mode&S_IFMT == S_IFLNK {
		return nil
	}
	o, err := f.cont.Obj(oid)
	if err == nil {
		// conditional: a shard holding nothing of the object (most of an
		// SX file's, for a small file; all, for one never written) answers
		// without writing a punch record
		err = o.PunchCond(ctx, daos.CondPunch)
		if daoserr.Is(err, daoserr.Nonexist) {
			err = nil
		}
	}
	return pathErr("punch", oid.String(), err)
}

// inTx runs fn in a transaction until it commits, restarting it on
// conflicts (bounded).
func (f *FS) inTx(ctx context.Context, fn func(tx *daos.Tx) error) error {
	tx, err := f.cont.TxOpen(ctx)
	if err != nil {
		return err
	}
	defer tx.Close()
	for attempt := 0; ; attempt++ {
		err := fn(tx)
		if err == nil {
			err = tx.Commit(ctx)
		}
		if !daoserr.Is(err, daoserr.TxRestart) || attempt == 50 {
			if err != nil {
				tx.Abort(ctx)
			}
			return err
		}
		// Wait a random while, longer after each attempt (up to 5 ms),
		// before the next: transactions that collided and restarted at
		// once would collide again, and a write still in progress on the
		// entry (the engine refuses a commit meanwhile) needs a moment to
		// land. Without it, workers renaming and removing among a few
		// names exhausted the attempts within a millisecond (EAGAIN).
		select {
		case <-ctx.Done():
			tx.Abort(ctx)
			return ctx.Err()
		case <-time.After(rand.N(time.Duration(attempt+1) * 100 * time.Microsecond)):
		}
		if err := tx.Restart(ctx); err != nil {
			return err
		}
	}
}

func txFetchEntry(ctx context.Context, tx *daos.Tx, d *daos.Obj, name string) (entry, error) {
	buf := make([]byte, inodeSize)
	iod := []daos.IOD{{Akey: []byte(inodeAkey), Type: daos.Array, Size: 1, Recxs: []daos.Recx{{Idx: 0, Nr: inodeSize}}}}
	res, err := tx.Fetch(ctx, d, []byte(name), iod, [][]byte{buf})
	if err != nil {
		return entry{}, err
	}
	if covered(res[0].Extents) < inodeSize {
		return entry{}, errf("lookup", name, syscall.ENOENT, "no such entry")
	}
	e, err := decodeEntry(buf)
	if err != nil {
		return entry{}, daoserr.Newf(daoserr.IO, "entry %q is corrupt: %v", name, err)
	}
	return e, nil
}

// RenameOptions change what Rename does.
type RenameOptions struct {
	NoReplace bool // RENAME_NOREPLACE: EEXIST if the new name is taken
	KeepData  bool // as RemoveOptions.KeepData, for an entry the rename replaces
}

// Rename moves the entry name of dir to newName in newDir (dfs_move),
// atomically: one transaction removes the old entry and writes the new one
// with its xattrs and symlink target, replacing what newName was as
// rename(2) does (a file or symlink by anything but a directory, an empty
// directory by a directory). It returns the replaced entry's attributes
// (zero OID if none) and punches its object unless KeepData.
//
// As in DAOS, moving a directory under itself is not detected here: FUSE
// mounts have the kernel refuse it.
func (f *FS) Rename(ctx context.Context, dir *Obj, name string, newDir *Obj, newName string, opts RenameOptions) (Stat, error) {
	for _, d := range []*Obj{dir, newDir} {
		if err := d.checkDir("rename"); err != nil {
			return Stat{}, err
		}
	}
	for _, n := range []string{name, newName} {
		if err := checkName("rename", n); err != nil {
			return Stat{}, err
		}
	}
	if err := f.writable("rename", name); err != nil {
		return Stat{}, err
	}
	if dir.oid == newDir.oid && name == newName {
		// rename(2) does nothing then, but still fails with ENOENT when
		// there is no such entry
		if _, err := fetchEntry(ctx, dir.dir, name); err != nil {
			return Stat{}, pathErr("rename", name, err)
		}
		return Stat{}, nil
	}
	var src, dst entry
	var replaced bool
	err := f.inTx(ctx, func(tx *daos.Tx) error {
		var err error
		replaced = false
		if src, err = txFetchEntry(ctx, tx, dir.dir, name); err != nil {
			return err
		}
		if !newDir.keep && newDir.oid != dir.oid {
			// not into a removed directory (see markRemoved); the source's
			// holds no entries then, so src told
			buf := make([]byte, 1)
			res, err := tx.Fetch(ctx, newDir.dir, removedDkey, []daos.IOD{{Akey: removedAkey, Type: daos.Single, Size: 1}}, [][]byte{buf})
			if err != nil {
				return err
			}
			if res[0].Size > 0 {
				return errf("rename", newName, syscall.ENOENT, "the directory was removed")
			}
		}
		dst, err = txFetchEntry(ctx, tx, newDir.dir, newName)
		switch {
		case err == nil:
			if opts.NoReplace {
				return errf("rename", newName, syscall.EEXIST, "the new name is taken")
			}
			if err := replaceable(ctx, f, tx, &src, &dst, newName); err != nil {
				return err
			}
			replaced = true
		case Errno(err) != syscall.ENOENT:
			return err
		}
		// the entry's every akey (inode, symlink target, xattrs) moves
		akeys, vals, err := txEntryValues(ctx, tx, dir.dir, name)
		if err != nil {
			return err
		}
		if replaced {
			old, _, err := txEntryValues(ctx, tx, newDir.dir, newName)
			if err != nil {
				return err
			}
			if stale := minus(old, akeys); len(stale) > 0 {
				if err := tx.PunchAkeys(ctx, newDir.dir, []byte(newName), stale); err != nil {
					return err
				}
			}
		}
		src.ctime = time.Now()
		iods := make([]daos.IOD, 0, len(akeys))
		sgls := make([][]byte, 0, len(akeys))
		for i, k := range akeys {
			if string(k) == inodeAkey {
				ctime := src.encode()
				iods = append(iods, daos.IOD{Akey: k, Type: daos.Array, Size: 1, Recxs: []daos.Recx{{Idx: 0, Nr: inodeSize}}})
				sgls = append(sgls, ctime)
				continue
			}
			iods = append(iods, daos.IOD{Akey: k, Type: daos.Single, Size: uint64(len(vals[i]))})
			sgls = append(sgls, vals[i])
		}
		if err := tx.Update(ctx, newDir.dir, []byte(newName), iods, sgls); err != nil {
			return err
		}
		return tx.PunchDkeys(ctx, dir.dir, [][]byte{[]byte(name)})
	})
	if err != nil {
		return Stat{}, pathErr("rename", name, err)
	}
	f.moved(src.oid, newDir.oid, newName)
	f.touchDir(ctx, dir)
	if newDir.oid != dir.oid {
		f.touchDir(ctx, newDir)
	}
	if !replaced {
		return Stat{}, nil
	}
	if dst.mode&S_IFMT == S_IFDIR {
		f.forget(dst.oid)
	}
	if !opts.KeepData && dst.mode&S_IFMT == S_IFREG { // as in Remove
		if err := f.Punch(ctx, dst.oid, dst.mode); err != nil {
			return Stat{}, pathErr("rename", newName, err)
		}
	}
	return Stat{Mode: dst.mode, UID: dst.uid, GID: dst.gid, OID: dst.oid}, nil
}

// replaceable checks that src may replace dst, as rename(2) says.
func replaceable(ctx context.Context, f *FS, tx *daos.Tx, src, dst *entry, newName string) error {
	srcDir, dstDir := src.mode&S_IFMT == S_IFDIR, dst.mode&S_IFMT == S_IFDIR
	switch {
	case src.oid == dst.oid:
		return nil
	case srcDir && !dstDir:
		return errf("rename", newName, syscall.ENOTDIR, "a directory cannot replace a non-directory")
	case !srcDir && dstDir:
		return errf("rename", newName, syscall.EISDIR, "only a directory can replace a directory")
	case dstDir:
		d, err := f.cont.Obj(dst.oid)
		if err != nil {
			return err
		}
		var a daos.Anchor
		keys, err := tx.ListDkeys(ctx, d, &a, 1)
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			return errf("rename", newName, syscall.ENOTEMPTY, "the directory it would replace holds %q", keys[0])
		}
		return markRemoved(ctx, tx, d) // replaced: removed (see markRemoved)
	}
	return nil
}

// txEntryValues reads every akey of an entry in tx, with the values of
// those that are single values (all but the inode).
func txEntryValues(ctx context.Context, tx *daos.Tx, d *daos.Obj, name string) ([][]byte, [][]byte, error) {
	var akeys [][]byte
	for a := (daos.Anchor{}); !a.EOF; {
		ks, err := tx.ListAkeys(ctx, d, []byte(name), &a, 256)
		if err != nil {
			return nil, nil, err
		}
		akeys = append(akeys, ks...)
	}
	vals := make([][]byte, len(akeys))
	var iods []daos.IOD
	var idx []int
	for i, k := range akeys {
		if string(k) != inodeAkey {
			// the largest value is an xattr of maxXattrSize bytes after
			// SetXattr's marker byte
			iods = append(iods, daos.IOD{Akey: k, Type: daos.Single, Size: maxXattrSize + 1})
			vals[i] = make([]byte, maxXattrSize+1)
			idx = append(idx, i)
		}
	}
	if len(iods) == 0 {
		return akeys, vals, nil
	}
	sgls := make([][]byte, len(iods))
	for j, i := range idx {
		sgls[j] = vals[i]
	}
	res, err := tx.Fetch(ctx, d, []byte(name), iods, sgls)
	if err != nil {
		return nil, nil, err
	}
	for j, i := range idx {
		vals[i] = vals[i][:res[j].Size]
	}
	return akeys, vals, nil
}

func minus(a, b [][]byte) [][]byte {
	in := make(map[string]bool, len(b))
	for _, k := range b {
		in[string(k)] = true
	}
	var out [][]byte
	for _, k := range a {
		if !in[string(k)] {
			out = append(out, k)
		}
	}
	return out
}

// Readdir returns up to max entry names of dir after anchor, and moves
// anchor on (dfs_readdir); anchor.EOF says when all have been read. Entries
// added or removed while a reader iterates may or may not be seen; the
// others are seen once each.
func (f *FS) Readdir(ctx context.Context, dir *Obj, anchor *daos.Anchor, max int) ([]string, error) {
	if err := dir.checkDir("readdir"); err != nil {
		return nil, err
	}
	keys, err := dir.dir.ListDkeys(ctx, anchor, max)
	if err != nil {
		return nil, pathErr("readdir", dir.Name(), err)
	}
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		if bytes.IndexByte(k, 0) < 0 { // not a removed directory's mark
			names = append(names, string(k))
		}
	}
	return names, nil
}

// DirEntry is a name and what its inode says (no file size: Stat it).
type DirEntry struct {
	Name string
	Mode uint32
	OID  daos.OID
}

// ReaddirPlus is Readdir with each entry's type and OID (dfs_readdirplus
// without sizes), fetched readdirParallel at a time. Entries removed
// between the listing and the fetch are left out.
func (f *FS) ReaddirPlus(ctx context.Context, dir *Obj, anchor *daos.Anchor, max int) ([]DirEntry, error) {
	names, err := f.Readdir(ctx, dir, anchor, max)
	if err != nil {
		return nil, err
	}
	out := make([]DirEntry, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, readdirParallel)
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			e, err := fetchEntry(ctx, dir.dir, n)
			out[i], errs[i] = DirEntry{Name: n, Mode: e.mode, OID: e.oid}, err
		}()
	}
	wg.Wait()
	kept := out[:0]
	for i, e := range out {
		switch {
		case errs[i] == nil:
			kept = append(kept, e)
		case Errno(errs[i]) != syscall.ENOENT:
			return nil, pathErr("readdir", names[i], errs[i])
		}
	}
	return kept, nil
}

// LookupPath opens the object at an absolute path in the namespace
// (dfs_lookup), following symlinks in the directories on the way, and the
// last component's too when follow is set. A symlink's absolute target is
// taken from the namespace's root.
func (f *FS) LookupPath(ctx context.Context, p string, follow bool) (*Obj, error) {
	return f.lookupPath(ctx, p, follow, 0)
}

func (f *FS) lookupPath(ctx context.Context, p string, follow bool, hops int) (*Obj, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, errf("lookup", p, syscall.EINVAL, "a DFS path starts at the root, with '/'")
	}
	var parts []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
		default:
			parts = append(parts, c)
		}
	}
	cur := f.root
	for i, c := range parts {
		next, err := f.Lookup(ctx, cur, c)
		if cur != f.root {
			cur.Close(ctx)
		}
		if err != nil {
			return nil, pathErr("lookup", p, err)
		}
		last := i == len(parts)-1
		if next.mode&S_IFMT == S_IFLNK && (!last || follow) {
			if hops >= maxSymlinkHops {
				next.Close(ctx)
				return nil, errf("lookup", p, syscall.ELOOP, "more than %d symlinks", maxSymlinkHops)
			}
			t := next.target
			next.Close(ctx)
			if !strings.HasPrefix(t, "/") {
				t = "/" + path.Join(append(parts[:i:i], t)...)
			}
			return f.lookupPath(ctx, path.Join(append([]string{t}, parts[i+1:]...)...), follow, hops+1)
		}
		if !last && next.dir == nil {
			next.Close(ctx)
			return nil, errf("lookup", p, syscall.ENOTDIR, "%q is not a directory", c)
		}
		cur = next
	}
	return cur, nil
}

// Xattrs. Names are user-visible strings such as "user.comment"; each is
// kept as the akey "x:NAME" of the object's entry.

// XattrFlags are setxattr's flags.
type XattrFlags int

const (
	XattrCreate  XattrFlags = 1 // XATTR_CREATE: EEXIST if it exists
	XattrReplace XattrFlags = 2 // XATTR_REPLACE: ENODATA if it does not
)

func checkXattr(op, name string, size int) error {
	switch {
	case name == "":
		return errf(op, name, syscall.EINVAL, "an xattr needs a name")
	case len(name) > maxXattrName:
		return errf(op, name[:32]+"...", syscall.ERANGE, "an xattr name of %d bytes (at most %d)", len(name), maxXattrName)
	case size > maxXattrSize:
		return errf(op, name, syscall.E2BIG, "an xattr value of %d bytes (at most %d)", size, maxXattrSize)
	}
	return nil
}

// SetXattr sets the xattr name to value (dfs_setxattr).
func (o *Obj) SetXattr(ctx context.Context, name string, value []byte, flags XattrFlags) error {
	if err := checkXattr("setxattr", name, len(value)); err != nil {
		return err
	}
	if err := o.fs.writable("setxattr", name); err != nil {
		return err
	}
	d, ename, err := o.current(ctx, "setxattr")
	if err != nil {
		return err
	}
	cond := daos.CondDkeyUpdate // never bring back a removed entry
	switch flags {
	case XattrCreate:
		cond |= daos.CondAkeyInsert
	case XattrReplace:
		cond |= daos.CondAkeyUpdate
	}
	// The value is kept after a marker byte, which GetXattr strips: an
	// empty single value would be a punch, and xattrs may be empty.
	iod := []daos.IOD{{Akey: []byte(xattrPrefix + name), Type: daos.Single, Size: uint64(len(value)) + 1}}
	_, err = d.UpdateCond(ctx, cond, []byte(ename), iod, [][]byte{append([]byte{0}, value...)})
	switch {
	case daoserr.Is(err, daoserr.Nonexist) && flags == XattrReplace:
		return errf("setxattr", name, syscall.ENODATA, "no such xattr to replace")
	case daoserr.Is(err, daoserr.Exist):
		return errf("setxattr", name, syscall.EEXIST, "the xattr exists")
	}
	return pathErr("setxattr", name, err)
}

// GetXattr returns the xattr name's value: ENODATA if there is none.
func (o *Obj) GetXattr(ctx context.Context, name string) ([]byte, error) {
	if err := checkXattr("getxattr", name, 0); err != nil {
		return nil, err
	}
	d, ename, err := o.entryObj()
	if err != nil {
		return nil, pathErr("getxattr", name, err)
	}
	buf := make([]byte, maxXattrSize+1)
	// the entry's OID with the value, in the same fetch: a handle whose
	// entry another object took over (a remove or a rename through
	// another client) must not read that object's xattrs (as current
	// checks, without its round trip)
	oidBuf := make([]byte, 16)
	iod := []daos.IOD{{Akey: []byte(xattrPrefix + name), Type: daos.Single, Size: uint64(len(buf))},
		{Akey: []byte(inodeAkey), Type: daos.Array, Size: 1, Recxs: []daos.Recx{{Idx: oidIdx, Nr: 16}}}}
	res, err := d.Fetch(ctx, []byte(ename), iod, [][]byte{buf, oidBuf})
	if err != nil {
		return nil, pathErr("getxattr", name, err)
	}
	if oid := (daos.OID{Lo: binary.LittleEndian.Uint64(oidBuf), Hi: binary.LittleEndian.Uint64(oidBuf[8:])}); covered(res[1].Extents) < 16 || oid != o.oid {
		return nil, errf("getxattr", name, syscall.ENOENT, "the entry was removed, or now names another object")
	}
	if res[0].Size == 0 {
		return nil, errf("getxattr", name, syscall.ENODATA, "no such xattr")
	}
	return buf[1:res[0].Size], nil
}

// ListXattr returns the names of the object's xattrs.
func (o *Obj) ListXattr(ctx context.Context) (names []string, rerr error) {
	d, ename, err := o.entryObj()
	if err != nil {
		return nil, pathErr("listxattr", ename, err)
	}
	// that the entry still names this object (see current), checked
	// alongside the listing, which costs no latency
	checked := make(chan error, 1)
	go func() { _, _, err := o.current(ctx, "listxattr"); checked <- err }()
	defer func() {
		if err := <-checked; err != nil && rerr == nil {
			names, rerr = nil, err
		}
	}()
	for a := (daos.Anchor{}); !a.EOF; {
		ks, err := d.ListAkeys(ctx, []byte(ename), &a, 256)
		if err != nil {
			return nil, pathErr("listxattr", ename, err)
		}
		for _, k := range ks {
			if n, ok := strings.CutPrefix(string(k), xattrPrefix); ok {
				names = append(names, n)
			}
		}
	}
	return names, nil
}

// RemoveXattr removes the xattr name: ENODATA if there is none.
func (o *Obj) RemoveXattr(ctx context.Context, name string) error {
	if err := checkXattr("removexattr", name, 0); err != nil {
		return err
	}
	if err := o.fs.writable("removexattr", name); err != nil {
		return err
	}
	d, ename, err := o.current(ctx, "removexattr")
	if err != nil {
		return err
	}
	err = d.PunchAkeysCond(ctx, daos.CondPunch, []byte(ename), [][]byte{[]byte(xattrPrefix + name)})
	if daoserr.Is(err, daoserr.Nonexist) {
		return errf("removexattr", name, syscall.ENODATA, "no such xattr")
	}
	return pathErr("removexattr", name, err)
}
