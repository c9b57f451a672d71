package mover

import (
	"context"
	"encoding/binary"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
)

// dfsTree is a directory of a mounted DFS namespace. It keeps the
// directories it has looked up open, so that an entry costs one lookup in
// its parent, not one per component of its path.
type dfsTree struct {
	fs   *dfs.FS
	base string // the root's path in the namespace
	name string // for messages: daos://pool/cont/base

	mu   sync.Mutex
	dirs map[string]*dfs.Obj // by relative path
}

func newDFSTree(f *dfs.FS, base, name string) *dfsTree {
	return &dfsTree{fs: f, base: path.Clean("/" + base), name: name, dirs: map[string]*dfs.Obj{}}
}

func (t *dfsTree) String() string { return t.name }

// dir is directory p, opened once.
func (t *dfsTree) dir(ctx context.Context, p string) (*dfs.Obj, error) {
	t.mu.Lock()
	d := t.dirs[p]
	t.mu.Unlock()
	if d != nil {
		return d, nil
	}
	var err error
	if p == "" {
		d, err = t.fs.LookupPath(ctx, t.base, true)
	} else {
		var parent *dfs.Obj
		var name string
		if parent, name, err = t.parent(ctx, p); err != nil {
			return nil, err
		}
		d, err = t.fs.Lookup(ctx, parent, name)
	}
	if err != nil {
		return nil, err
	}
	if !d.IsDir() {
		d.Close(ctx)
		return nil, &os.PathError{Op: "lookup", Path: t.full(p), Err: syscall.ENOTDIR}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.dirs[p]; old != nil { // another worker was quicker
		d.Close(ctx)
		return old, nil
	}
	t.dirs[p] = d
	return d, nil
}

// parent is p's directory and p's name in it.
func (t *dfsTree) parent(ctx context.Context, p string) (*dfs.Obj, string, error) {
	dir := path.Dir(p)
	if dir == "." {
		dir = ""
	}
	d, err := t.dir(ctx, dir)
	return d, path.Base(p), err
}

func (t *dfsTree) full(p string) string { return path.Join(t.base, p) }

func dfsInfo(st dfs.Stat) info {
	return info{mode: st.Mode, uid: st.UID, gid: st.GID, size: int64(st.Size), mtime: st.Mtime, blocks: int64(st.Blocks)}
}

func (t *dfsTree) lstat(ctx context.Context, p string) (info, error) {
	if p == "" { // the root is followed, as the posix tree's
		o, err := t.fs.LookupPath(ctx, t.base, true)
		if err != nil {
			return info{}, err
		}
		defer o.Close(ctx)
		st, err := o.Stat(ctx)
		return dfsInfo(st), err
	}
	d, name, err := t.parent(ctx, p)
	if err != nil {
		return info{}, err
	}
	o, st, err := t.fs.LookupStat(ctx, d, name)
	if err != nil {
		return info{}, err
	}
	o.Close(ctx)
	return dfsInfo(st), nil
}

// readDir lists names only: the entries' types are found by openEntry,
// whose lookup the copy needs anyway.
func (t *dfsTree) readDir(ctx context.Context, p string) ([]dirent, error) {
	d, err := t.dir(ctx, p)
	if err != nil {
		return nil, err
	}
	var out []dirent
	for a := (daos.Anchor{}); !a.EOF; {
		names, err := t.fs.Readdir(ctx, d, &a, 1024)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			out = append(out, dirent{name: n})
		}
	}
	return out, nil
}

func (t *dfsTree) openEntry(ctx context.Context, p string) (reader, info, string, error) {
	d, name, err := t.parent(ctx, p)
	if err != nil {
		return nil, info{}, "", err
	}
	o, st, err := t.fs.LookupStat(ctx, d, name)
	if err != nil {
		return nil, info{}, "", err
	}
	if st.IsRegular() {
		return &dfsFile{t: t, o: o}, dfsInfo(st), "", nil
	}
	target := o.Target()
	o.Close(ctx)
	return nil, dfsInfo(st), target, nil
}

func openOpts(own *owner) dfs.OpenOptions {
	if own == nil {
		return dfs.OpenOptions{}
	}
	return dfs.OpenOptions{UID: &own.uid, GID: &own.gid}
}

func (t *dfsTree) mkdir(ctx context.Context, p string, perm uint32, own *owner) error {
	if p == "" {
		// the root of the tree: make it and its parents, as mkdir -p
		return t.mkdirAll(ctx, perm, own)
	}
	d, name, err := t.parent(ctx, p)
	if err != nil {
		return err
	}
	return t.fs.Mkdir(ctx, d, name, perm, openOpts(own))
}

// mkdirAll makes the tree's root and its missing parents; EEXIST if it was
// there already.
func (t *dfsTree) mkdirAll(ctx context.Context, perm uint32, own *owner) error {
	cur := t.fs.Root()
	made := false
	for _, c := range strings.Split(strings.Trim(t.base, "/"), "/") {
		if c == "" {
			continue
		}
		err := t.fs.Mkdir(ctx, cur, c, perm, openOpts(own))
		if err != nil && !isExist(err) {
			return err
		}
		made = err == nil
		next, err := t.fs.Lookup(ctx, cur, c)
		if cur != t.fs.Root() {
			cur.Close(ctx)
		}
		if err != nil {
			return err
		}
		if !next.IsDir() {
			next.Close(ctx)
			return &os.PathError{Op: "mkdir", Path: t.base, Err: syscall.ENOTDIR}
		}
		cur = next
	}
	if cur != t.fs.Root() {
		cur.Close(ctx)
	}
	if !made {
		return &os.PathError{Op: "mkdir", Path: t.base, Err: syscall.EEXIST}
	}
	return nil
}

func (t *dfsTree) symlink(ctx context.Context, target, p string, own *owner) error {
	d, name, err := t.parent(ctx, p)
	if err != nil {
		return err
	}
	o, err := t.fs.Symlink(ctx, d, name, target, openOpts(own))
	if err != nil {
		return err
	}
	return o.Close(ctx)
}

func (t *dfsTree) readlink(ctx context.Context, p string) (string, error) {
	d, name, err := t.parent(ctx, p)
	if err != nil {
		return "", err
	}
	o, err := t.fs.Lookup(ctx, d, name)
	if err != nil {
		return "", err
	}
	defer o.Close(ctx)
	return o.Target(), nil
}

func (t *dfsTree) remove(ctx context.Context, p string) error {
	d, name, err := t.parent(ctx, p)
	if err != nil {
		return err
	}
	_, err = t.fs.Remove(ctx, d, name, dfs.RemoveOptions{})
	return err
}

// lookup opens entry p (the root when p is "").
func (t *dfsTree) lookup(ctx context.Context, p string) (*dfs.Obj, error) {
	if p == "" {
		return t.fs.LookupPath(ctx, t.base, false)
	}
	d, name, err := t.parent(ctx, p)
	if err != nil {
		return nil, err
	}
	return t.fs.Lookup(ctx, d, name)
}

func (t *dfsTree) openRead(ctx context.Context, p string) (reader, info, error) {
	d, name, err := t.parent(ctx, p)
	if err != nil {
		return nil, info{}, err
	}
	o, st, err := t.fs.LookupStat(ctx, d, name)
	if err != nil {
		return nil, info{}, err
	}
	if !st.IsRegular() {
		o.Close(ctx)
		return nil, info{}, &os.PathError{Op: "open", Path: t.full(p), Err: syscall.EINVAL}
	}
	return &dfsFile{t: t, o: o}, dfsInfo(st), nil
}

func (t *dfsTree) create(ctx context.Context, p string, perm uint32, own *owner) (writer, error) {
	d, name, err := t.parent(ctx, p)
	if err != nil {
		return nil, err
	}
	o, err := t.fs.Open(ctx, d, name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm, openOpts(own))
	if err != nil {
		return nil, err
	}
	return &dfsFile{t: t, o: o}, nil
}

func (t *dfsTree) setMeta(ctx context.Context, p string, m meta, own *owner) error {
	o, err := t.lookup(ctx, p)
	if err != nil {
		return err
	}
	defer o.Close(ctx)
	return setDFSMeta(ctx, o, nil, m, own)
}

// setDFSMeta sets the size (if given), owner, mode and mtime of o in one
// inode update.
func setDFSMeta(ctx context.Context, o *dfs.Obj, size *uint64, m meta, own *owner) error {
	sa := dfs.SetAttr{Size: size, Mtime: &m.mtime}
	if o.Mode()&sIFMT != sIFLNK {
		sa.Mode = &m.mode
	}
	if own != nil {
		sa.UID, sa.GID = &own.uid, &own.gid
	}
	_, err := o.SetAttr(ctx, sa)
	return err
}

func (t *dfsTree) xattrs(ctx context.Context, p string) (map[string][]byte, error) {
	o, err := t.lookup(ctx, p)
	if err != nil {
		return nil, err
	}
	defer o.Close(ctx)
	return dfsXattrs(ctx, o)
}

func (t *dfsTree) setXattrs(ctx context.Context, p string, x map[string][]byte) error {
	if len(x) == 0 {
		return nil
	}
	o, err := t.lookup(ctx, p)
	if err != nil {
		return err
	}
	defer o.Close(ctx)
	return dfsSetXattrs(ctx, o, x)
}

func (t *dfsTree) close(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range t.dirs {
		d.Close(ctx)
	}
	t.dirs = map[string]*dfs.Obj{}
}

// dfsXattrs reads an entry's user xattrs (DFS keeps any name; a POSIX
// destination takes only user.*).
func dfsXattrs(ctx context.Context, o *dfs.Obj) (map[string][]byte, error) {
	names, err := o.ListXattr(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, n := range names {
		if !strings.HasPrefix(n, "user.") {
			continue
		}
		v, err := o.GetXattr(ctx, n)
		if dfs.Errno(err) == syscall.ENODATA {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[n] = v
	}
	return out, nil
}

func dfsSetXattrs(ctx context.Context, o *dfs.Obj, x map[string][]byte) error {
	for n, v := range x {
		if err := o.SetXattr(ctx, n, v, 0); err != nil {
			return err
		}
	}
	return nil
}

// dfsFile is an open DFS file, shared by the workers copying its pieces.
type dfsFile struct {
	t   *dfsTree
	o   *dfs.Obj
	end atomic.Int64 // one past the last byte written: the array's size when it was empty
}

func (f *dfsFile) readAt(ctx context.Context, buf []byte, off int64) (int, error) {
	return f.o.Read(ctx, buf, off)
}

// regions are the file's chunks that exist: its byte array's dkeys (a
// chunk never written has none). Holes inside a chunk are found by the
// copy, which skips all-zero blocks.
func (f *dfsFile) regions(ctx context.Context, size int64) ([]region, error) {
	chunk := int64(f.o.ChunkSize())
	if size <= chunk {
		// one chunk: listing it costs more than reading it
		if size == 0 {
			return nil, nil
		}
		return []region{{0, size}}, nil
	}
	obj, err := f.t.fs.Cont().Obj(f.o.OID())
	if err != nil {
		return nil, err
	}
	var chunks []int64
	for a := (daos.Anchor{}); !a.EOF; {
		keys, err := obj.ListDkeys(ctx, &a, 1024)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if len(k) != 8 {
				continue
			}
			if n := binary.LittleEndian.Uint64(k); n > 0 { // dkey 0 is the array's metadata
				chunks = append(chunks, int64(n-1))
			}
		}
	}
	slices.Sort(chunks)
	var out []region
	for _, c := range chunks {
		off := c * chunk
		if off >= size {
			break
		}
		n := min(chunk, size-off)
		if k := len(out); k > 0 && out[k-1].off+out[k-1].n == off {
			out[k-1].n += n
		} else {
			out = append(out, region{off, n})
		}
	}
	return out, nil
}

func (f *dfsFile) xattrs(ctx context.Context) (map[string][]byte, error) { return dfsXattrs(ctx, f.o) }

func (f *dfsFile) close(ctx context.Context) error { return f.o.Close(ctx) }

func (f *dfsFile) writeAt(ctx context.Context, buf []byte, off int64) error {
	if err := f.o.Write(ctx, buf, off); err != nil {
		return err
	}
	for e := off + int64(len(buf)); ; {
		old := f.end.Load()
		if old >= e || f.end.CompareAndSwap(old, e) {
			return nil
		}
	}
}

func (f *dfsFile) setXattrs(ctx context.Context, x map[string][]byte) error {
	return dfsSetXattrs(ctx, f.o, x)
}

// finish sets the size only when the file ends in a hole: create emptied
// it, so the data written ends where the array does (setting a size costs
// a listing of the array's chunks).
func (f *dfsFile) finish(ctx context.Context, size int64, m meta, own *owner) error {
	var sz *uint64
	if size > f.end.Load() {
		sz = new(uint64)
		*sz = uint64(size)
	}
	if err := setDFSMeta(ctx, f.o, sz, m, own); err != nil {
		f.o.Close(ctx)
		return err
	}
	return f.o.Close(ctx)
}

func (f *dfsFile) abort(ctx context.Context) { f.o.Close(ctx) }
