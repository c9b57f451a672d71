package mover

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/internal/daoserr"
)

// Copy copies the tree (or file) at src to dst, as `daos fs copy`: one of
// them may be a local path, the other a container, or both containers (in
// the same pool or not). A source directory is copied into the destination
// under its own name unless src.Contents (a path ending in "/", or a
// container's root), in which case its entries are. Missing destination
// directories are made. The destination container must exist.
//
// It returns what it did even when it fails: an interrupted copy leaves
// complete files and others that the next run copies again.
func Copy(ctx context.Context, src, dst Endpoint, opts Options) (Stats, error) {
	opts = opts.withDefaults()
	start := time.Now()
	if !src.IsDAOS() && !dst.IsDAOS() {
		return Stats{}, daoserr.Newf(daoserr.Inval, "both %s and %s are POSIX paths", src, dst).
			WithResolution("one side must be a container (daos://POOL/CONT[/PATH] or a UNS path); use cp -a or rsync between POSIX paths")
	}
	for _, e := range []Endpoint{src, dst} {
		if e.IsDAOS() && e.Cont == "" {
			return Stats{}, daoserr.Newf(daoserr.Inval, "%s names a pool but no container", e).WithResolution("write daos://POOL/CONT[/PATH]")
		}
	}
	if !src.IsDAOS() && dst.UNS != "" && within(filepath.Clean(dst.UNS), filepath.Clean(src.Path)) {
		return Stats{}, daoserr.Newf(daoserr.Inval, "the destination's UNS directory %s is inside the source %s", dst.UNS, src.Path).
			WithResolution("copy to a container whose UNS directory is outside the source tree (or name it daos://POOL/CONT)")
	}
	var cl *daos.Client
	if src.IsDAOS() || dst.IsDAOS() {
		c, closeC, err := opts.client(ctx)
		if err != nil {
			return Stats{}, err
		}
		defer closeC()
		cl = c
	}

	c := &copier{opts: opts, root: os.Geteuid() == 0}
	var srcFS, dstFS *dfs.FS
	var err error
	if src.IsDAOS() {
		var release func()
		if srcFS, release, err = mount(ctx, cl, src, false); err != nil {
			return Stats{}, err
		}
		defer release()
		c.src = newDFSTree(srcFS, src.Dir, src.String())
	} else {
		c.src = &posixTree{root: src.Path}
	}
	defer func() { c.src.close(context.WithoutCancel(ctx)) }() // the tree c.src is at the end
	si, err := c.src.lstat(ctx, "")
	if err != nil {
		if isNotExist(err) {
			return Stats{}, daoserr.Wrap(daoserr.Nonexist, err, "source %s does not exist", src).WithResolution("check the source path")
		}
		return Stats{}, wrap(err, "source %s", src)
	}
	if !isDir(si.mode) && !isReg(si.mode) {
		return Stats{}, daoserr.Newf(daoserr.Inval, "source %s is neither a directory nor a regular file (mode %#o)", src, si.mode).
			WithResolution("give a directory or a regular file")
	}
	if dst.IsDAOS() {
		var release func()
		if dstFS, release, err = mount(ctx, cl, dst, true); err != nil {
			return Stats{}, err
		}
		defer release()
	}

	// Where the source lands: under its own name, unless its contents are
	// copied; a file lands in a destination directory, or at the path.
	dstRoot := dst.Path
	if dst.IsDAOS() {
		dstRoot = dst.Dir
	}
	srcName := filepath.Base(src.Path)
	if src.IsDAOS() {
		srcName = path.Base(src.Dir)
	}
	var dstTree tree
	newDst := func(root string) tree {
		if dst.IsDAOS() {
			e := dst
			e.Dir = root
			return newDFSTree(dstFS, root, e.String())
		}
		return &posixTree{root: root}
	}
	joinDst := func(a, b string) string {
		if dst.IsDAOS() {
			return path.Join(a, b)
		}
		return filepath.Join(a, b)
	}
	fileName := "" // a file copy: the name the file gets in dstTree
	if isDir(si.mode) {
		if !src.Contents {
			dstRoot = joinDst(dstRoot, srcName)
		}
		dstTree = newDst(dstRoot)
	} else {
		c.src.close(ctx)
		if src.IsDAOS() {
			c.src = newDFSTree(srcFS, path.Dir(src.Dir), src.String())
		} else {
			c.src = &posixTree{root: filepath.Dir(src.Path)}
		}
		t := newDst(dstRoot)
		di, err := t.lstat(ctx, "")
		t.close(ctx)
		if err == nil && isDir(di.mode) || dst.Contents && isNotExist(err) { // into a directory ("DIR/": made)
			fileName = srcName
		} else {
			fileName = pathBase(dst, dstRoot)
			dstRoot = pathDir(dst, dstRoot)
		}
		dstTree = newDst(dstRoot)
	}
	c.dst = dstTree
	defer c.dst.close(context.WithoutCancel(ctx))
	defer c.closeAll(context.WithoutCancel(ctx)) // first: files, then the trees and the containers
	c.stats.Src, c.stats.Dst, c.stats.DstType = src.String(), c.dst.String(), "POSIX"
	if dst.IsDAOS() {
		c.stats.DstType = "DAOS"
	}
	if fileName != "" {
		c.stats.Dst = join2(c.dst, fileName)
	}
	if srcFS != nil && dstFS != nil && sameCont(srcFS.Cont(), dstFS.Cont()) {
		switch {
		case fileName != "" && path.Join(dstRoot, fileName) == path.Clean(src.Dir):
			return Stats{}, daoserr.Newf(daoserr.Inval, "the source and the destination are the same file, %s", c.stats.Src).
				WithResolution("give another destination")
		case fileName == "" && within(path.Clean(dstRoot), path.Clean(src.Dir)):
			return Stats{}, daoserr.Newf(daoserr.Inval, "the destination %s is inside the source %s (the same container)", c.stats.Dst, c.stats.Src).
				WithResolution("copy to a path outside the source tree, or to another container")
		}
	}
	if err := c.makeRoot(ctx, fileName != ""); err != nil {
		return c.result(start), err
	}

	stopProgress := c.progress(start)
	s := newSched(ctx)
	if fileName != "" {
		s.push(prioFile, func(ctx context.Context) error { return c.copyFile(ctx, s, srcName, fileName, true, false) })
	} else {
		c.addDir("", "")
		s.push(prioDir, func(ctx context.Context) error { return c.copyDir(ctx, s, "", "", false) })
	}
	err = s.run(opts.Workers)
	if err == nil && fileName == "" {
		err = c.finishDirs(ctx)
	}
	stopProgress()
	if err != nil {
		return c.result(start), wrapRun(err, ctx, "copy %s to %s", c.stats.Src, c.stats.Dst)
	}
	if opts.Verify {
		if err := c.verify(ctx, srcName, fileName); err != nil {
			return c.result(start), err
		}
	}
	return c.result(start), nil
}

// wrapRun is a run's error: an interruption says so and what to do.
func wrapRun(err error, ctx context.Context, format string, args ...any) error {
	if ctx.Err() != nil {
		return daoserr.Wrap(daoserr.Canceled, err, format, args...).
			WithResolution("run the same copy again: files already complete are skipped, the others are copied")
	}
	return wrap(err, format, args...)
}

// mount opens an endpoint's container and mounts its namespace; release
// unmounts it, closes the container and disconnects from the pool.
func mount(ctx context.Context, cl *daos.Client, e Endpoint, write bool) (f *dfs.FS, release func(), err error) {
	p, h, err := openCont(ctx, cl, e, write)
	if err != nil {
		return nil, nil, err
	}
	release = func() {
		ctx := context.WithoutCancel(ctx)
		if f != nil {
			f.Umount()
		}
		h.Close(ctx)
		p.Disconnect(ctx)
	}
	f, err = dfs.Mount(ctx, h, !write)
	if err != nil {
		release()
		return nil, nil, wrap(err, "mount the POSIX namespace of %s", e)
	}
	return f, release, nil
}

func sameCont(a, b *daos.Cont) bool {
	return a.Pool.Info.Uuid == b.Pool.Info.Uuid && a.Info.Uuid == b.Info.Uuid
}

// within tells whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

func pathBase(e Endpoint, p string) string {
	if e.IsDAOS() {
		return path.Base(p)
	}
	return filepath.Base(p)
}

func pathDir(e Endpoint, p string) string {
	if e.IsDAOS() {
		return path.Dir(p)
	}
	return filepath.Dir(p)
}

// copier is one Copy's state.
type copier struct {
	opts     Options
	src, dst tree
	root     bool // running as root: ownership is kept

	files, dirs, links, skipped, bytes, verified atomic.Int64

	mu       sync.Mutex
	stats    Stats
	madeDirs []dirJob          // directories whose metadata is set at the end
	open     map[*fileJob]bool // files being copied, closed if the copy stops
	vopen    map[*pair]bool    // files being verified, likewise
	pool     sync.Pool         // piece buffers
	vmu      sync.Mutex        // guards mism
	mism     []string          // files that differ (Verify)
}

type dirJob struct{ s, d string }

func (c *copier) own(i info) *owner {
	if !c.root {
		return nil
	}
	return &owner{uid: i.uid, gid: i.gid}
}

func (c *copier) result(start time.Time) Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.Dirs, st.Files, st.Links, st.Skipped, st.Bytes, st.Verified = c.dirs.Load(), c.files.Load(), c.links.Load(), c.skipped.Load(), c.bytes.Load(), c.verified.Load()
	c.vmu.Lock()
	st.Mismatches = slices.Clone(c.mism)
	c.vmu.Unlock()
	st.Elapsed = time.Since(start)
	return st
}

func (c *copier) warn(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Warnings = append(c.stats.Warnings, fmt.Sprintf(format, args...))
}

func (c *copier) addDir(s, d string) {
	c.mu.Lock()
	c.madeDirs = append(c.madeDirs, dirJob{s, d})
	c.mu.Unlock()
}

// makeRoot makes the destination's root directory and its parents (for a
// file copy, the directory the file goes in).
func (c *copier) makeRoot(ctx context.Context, fileCopy bool) error {
	var err error
	switch t := c.dst.(type) {
	case *posixTree:
		err = os.MkdirAll(t.root, 0o755) // as mkdir -p; a directory copied gets its mode at the end
	case *dfsTree:
		err = t.mkdir(ctx, "", 0o755, nil)
	}
	// something in the way is reported below
	if err != nil && !isExist(err) && dfs.Errno(err) != syscall.ENOTDIR {
		return wrap(err, "make the destination directory %s", c.dst)
	}
	di, err := c.dst.lstat(ctx, "")
	if err == nil && !isDir(di.mode) || dfs.Errno(err) == syscall.ENOTDIR {
		return daoserr.Newf(daoserr.Exist, "the destination %s exists and is not a directory", c.dst).
			WithResolution("remove it, or choose another destination")
	}
	if err != nil {
		return wrap(err, "destination %s", c.dst)
	}
	if pt, ok := c.dst.(*posixTree); ok && !fileCopy && di.mode&0o700 != 0o700 {
		// writable while its entries are copied, as mkdir does (its mode
		// is set back at the end)
		if err := os.Chmod(pt.root, fs.FileMode(di.mode&0o777|0o700)); err != nil {
			return wrap(err, "make %s writable", pt.root)
		}
	}
	if !fileCopy {
		c.dirs.Add(1)
	}
	return nil
}

// copyDir copies directory s's entries into directory d, which exists;
// fresh says this copy made it, so that nothing is in it yet.
func (c *copier) copyDir(ctx context.Context, s *sched, sp, dp string, fresh bool) error {
	ents, err := c.src.readDir(ctx, sp)
	if err != nil {
		return wrap(err, "list %s", join2(c.src, sp))
	}
	for _, e := range ents {
		sc, dc := join(sp, e.name), join(dp, e.name)
		switch {
		case e.mode == 0: // type unknown: the entry's own task finds it
			s.push(prioFile, func(ctx context.Context) error { return c.copyEntry(ctx, s, sc, dc, fresh) })
		case isDir(e.mode):
			if err := c.copySubdir(ctx, s, sc, dc, fresh); err != nil {
				return err
			}
		case isReg(e.mode):
			s.push(prioFile, func(ctx context.Context) error { return c.copyFile(ctx, s, sc, dc, false, fresh) })
		case isLink(e.mode):
			if err := c.copyLink(ctx, sc, dc); err != nil {
				return err
			}
		default:
			c.warn("%s: a %s (DFS has no such files)", join2(c.src, sc), typeName(e.mode))
		}
	}
	return nil
}

// copySubdir makes directory dp and has its entries copied.
func (c *copier) copySubdir(ctx context.Context, s *sched, sp, dp string, parentFresh bool) error {
	made, err := c.mkdir(ctx, sp, dp, parentFresh)
	if err != nil {
		return err
	}
	c.addDir(sp, dp)
	c.dirs.Add(1)
	s.push(prioDir, func(ctx context.Context) error { return c.copyDir(ctx, s, sp, dp, made) })
	return nil
}

// copyEntry copies an entry whose type the listing did not tell, with the
// one lookup that tells it.
func (c *copier) copyEntry(ctx context.Context, s *sched, sp, dp string, fresh bool) error {
	r, si, target, err := c.src.(entryOpener).openEntry(ctx, sp)
	switch {
	case isNotExist(err):
		return nil // removed since the listing
	case err != nil:
		return wrap(err, "look up %s", join2(c.src, sp))
	case isDir(si.mode):
		return c.copySubdir(ctx, s, sp, dp, fresh)
	case isReg(si.mode):
		return c.copyOpened(ctx, s, sp, dp, r, si, fresh)
	case isLink(si.mode):
		return c.makeLink(ctx, sp, dp, target, si)
	}
	c.warn("%s: a %s (not copied)", join2(c.src, sp), typeName(si.mode))
	return nil
}

func typeName(mode uint32) string {
	switch mode & sIFMT {
	case 0o010000:
		return "FIFO"
	case 0o140000:
		return "socket"
	case 0o020000:
		return "character device"
	case 0o060000:
		return "block device"
	}
	return fmt.Sprintf("file of type %#o", mode&sIFMT)
}

// join2 names path p of tree t for messages.
func join2(t tree, p string) string {
	if p == "" {
		return t.String()
	}
	return strings.TrimSuffix(t.String(), "/") + "/" + p
}

// mkdir makes destination directory dp (owner-writable until its metadata
// is set at the end), or finds it there; made says which. In a fresh
// parent there is nothing to find.
func (c *copier) mkdir(ctx context.Context, sp, dp string, parentFresh bool) (made bool, err error) {
	err = c.dst.mkdir(ctx, dp, 0o700, nil)
	if err == nil || !isExist(err) || parentFresh {
		return err == nil, wrap(err, "make directory %s", join2(c.dst, dp))
	}
	di, err := c.dst.lstat(ctx, dp)
	if err != nil {
		return false, wrap(err, "destination %s", join2(c.dst, dp))
	}
	if !isDir(di.mode) {
		return false, daoserr.Newf(daoserr.Exist, "%s exists and is not a directory, but %s is", join2(c.dst, dp), join2(c.src, sp)).
			WithResolution("remove it, or copy to another destination")
	}
	if pt, ok := c.dst.(*posixTree); ok && di.mode&0o700 != 0o700 {
		// a read-only directory an earlier run finished: writable until
		// its metadata is set again at the end
		if err := os.Chmod(pt.full(dp), fs.FileMode(di.mode&0o777|0o700)); err != nil {
			return false, wrap(err, "make %s writable", join2(c.dst, dp))
		}
	}
	return false, nil
}

// copyLink makes symlink dp as sp, or finds it there with the same target.
func (c *copier) copyLink(ctx context.Context, sp, dp string) error {
	target, err := c.src.readlink(ctx, sp)
	if err != nil {
		return wrap(err, "read symlink %s", join2(c.src, sp))
	}
	si, err := c.src.lstat(ctx, sp)
	if err != nil {
		return wrap(err, "source %s", join2(c.src, sp))
	}
	return c.makeLink(ctx, sp, dp, target, si)
}

// makeLink makes symlink dp to target, with the owner and mtime of si.
func (c *copier) makeLink(ctx context.Context, sp, dp, target string, si info) error {
	err := c.dst.symlink(ctx, target, dp, c.own(si))
	if err != nil && isExist(err) {
		di, err2 := c.dst.lstat(ctx, dp)
		if err2 != nil {
			return wrap(err2, "destination %s", join2(c.dst, dp))
		}
		switch {
		case isDir(di.mode):
			return daoserr.Newf(daoserr.Exist, "%s is a directory, but %s is a symlink", join2(c.dst, dp), join2(c.src, sp)).
				WithResolution("remove it, or copy to another destination")
		case isLink(di.mode):
			if t, err := c.dst.readlink(ctx, dp); err == nil && t == target {
				if di.mtime.Equal(si.mtime) {
					c.links.Add(1)
					return nil
				}
				err = nil
				goto meta
			}
		}
		if err := c.dst.remove(ctx, dp); err != nil {
			return wrap(err, "replace %s", join2(c.dst, dp))
		}
		err = c.dst.symlink(ctx, target, dp, c.own(si))
	}
	if err != nil {
		return wrap(err, "make symlink %s", join2(c.dst, dp))
	}
meta:
	if err := c.dst.setMeta(ctx, dp, si.meta(), c.own(si)); err != nil {
		return wrap(err, "set the times of symlink %s", join2(c.dst, dp))
	}
	c.links.Add(1)
	return nil
}

// fileJob is a file being copied by pieces.
type fileJob struct {
	sp, dp string
	r      reader
	w      writer
	si     info
	left   atomic.Int64 // pieces not yet copied
}

// copyFile copies regular file sp to dp, unless dp is up to date: the
// data regions are cut into pieces that workers copy; the last one to
// finish sets the metadata.
// In a fresh directory there is nothing to compare with.
func (c *copier) copyFile(ctx context.Context, s *sched, sp, dp string, single, fresh bool) error {
	r, si, err := c.src.openRead(ctx, sp)
	if err != nil {
		if isNotExist(err) && !single {
			return nil // removed since the listing
		}
		return wrap(err, "open %s", join2(c.src, sp))
	}
	return c.copyOpened(ctx, s, sp, dp, r, si, fresh)
}

// copyOpened copies regular file sp, open as r, to dp.
func (c *copier) copyOpened(ctx context.Context, s *sched, sp, dp string, r reader, si info, fresh bool) error {
	di, err := info{}, error(&os.PathError{Op: "lstat", Path: dp, Err: syscall.ENOENT})
	if !fresh {
		di, err = c.dst.lstat(ctx, dp)
	}
	switch {
	case err == nil && isReg(di.mode) && !c.opts.Force && di.size == si.size && di.mtime.Equal(si.mtime):
		r.close(ctx)
		c.skipped.Add(1)
		return nil
	case err == nil && isDir(di.mode):
		r.close(ctx)
		return daoserr.Newf(daoserr.Exist, "%s is a directory, but %s is a file", join2(c.dst, dp), join2(c.src, sp)).
			WithResolution("remove it, or copy to another destination")
	case err == nil && !isReg(di.mode):
		if err := c.dst.remove(ctx, dp); err != nil {
			r.close(ctx)
			return wrap(err, "replace %s", join2(c.dst, dp))
		}
	case err != nil && !isNotExist(err):
		r.close(ctx)
		return wrap(err, "destination %s", join2(c.dst, dp))
	}
	w, err := c.dst.create(ctx, dp, si.mode&0o7777, c.own(si))
	if err != nil {
		r.close(ctx)
		return wrap(err, "create %s", join2(c.dst, dp))
	}
	j := &fileJob{sp: sp, dp: dp, r: r, w: w, si: si}
	c.track(j, true)
	regs, err := r.regions(ctx, si.size)
	if err != nil {
		return wrap(err, "find the data of %s", join2(c.src, sp))
	}
	var pieces []region
	ps := c.opts.PieceSize
	for _, g := range regs {
		for off, end := g.off, g.off+g.n; off < end; {
			next := min(end, (off/ps+1)*ps) // pieces aligned on the piece size, so on chunks
			pieces = append(pieces, region{off, next - off})
			off = next
		}
	}
	if len(pieces) == 0 {
		return c.finishFile(ctx, j)
	}
	j.left.Store(int64(len(pieces)))
	for _, p := range pieces {
		s.push(prioPiece, func(ctx context.Context) error { return c.copyPiece(ctx, j, p) })
	}
	return nil
}

func (c *copier) track(j *fileJob, add bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open == nil {
		c.open = map[*fileJob]bool{}
	}
	if add {
		c.open[j] = true
	} else {
		delete(c.open, j)
	}
}

// closeAll closes the files a stopped copy left open.
func (c *copier) closeAll(ctx context.Context) {
	c.mu.Lock()
	open, vopen := c.open, c.vopen
	c.open, c.vopen = nil, nil
	c.mu.Unlock()
	for j := range open {
		j.r.close(ctx)
		j.w.abort(ctx)
	}
	for p := range vopen {
		p.r1.close(ctx)
		p.r2.close(ctx)
	}
}

func (c *copier) buf() []byte {
	if b, ok := c.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, c.opts.PieceSize)
}

func (c *copier) putBuf(b []byte) { c.pool.Put(&b) }

// pieceHook, when set (by tests), runs after each piece is copied.
var pieceHook func()

// copyPiece copies one piece of a file: the non-zero blocks of what it
// reads are written, the rest stays a hole.
func (c *copier) copyPiece(ctx context.Context, j *fileJob, p region) error {
	buf := c.buf()
	defer c.putBuf(buf)
	b := buf[:p.n]
	n, err := j.r.readAt(ctx, b, p.off)
	if err != nil {
		return wrap(err, "read %s", join2(c.src, j.sp))
	}
	if int64(n) < p.n {
		return daoserr.Newf(daoserr.Busy, "%s shrank while it was being copied", join2(c.src, j.sp)).
			WithResolution("copy it again once nothing writes it")
	}
	for _, run := range dataRuns(b, p.off) {
		if err := j.w.writeAt(ctx, b[run.off:run.off+run.n], p.off+run.off); err != nil {
			return wrap(err, "write %s", join2(c.dst, j.dp))
		}
	}
	c.bytes.Add(p.n)
	if pieceHook != nil {
		pieceHook()
	}
	if j.left.Add(-1) == 0 {
		return c.finishFile(ctx, j)
	}
	return nil
}

// finishFile sets the copy's xattrs, size, owner, mode and mtime (last:
// the mark of a complete file).
func (c *copier) finishFile(ctx context.Context, j *fileJob) error {
	c.track(j, false)
	defer j.r.close(ctx)
	x, err := j.r.xattrs(ctx)
	if err != nil {
		j.w.abort(ctx)
		return wrap(err, "read the xattrs of %s", join2(c.src, j.sp))
	}
	if err := j.w.setXattrs(ctx, x); err != nil {
		j.w.abort(ctx)
		return wrap(err, "set the xattrs of %s", join2(c.dst, j.dp))
	}
	if err := j.w.finish(ctx, j.si.size, j.si.meta(), c.own(j.si)); err != nil {
		return wrap(err, "finish %s", join2(c.dst, j.dp))
	}
	c.files.Add(1)
	return nil
}

// finishDirs sets the directories' xattrs, owners, modes and mtimes once
// their entries are all made (making an entry moves a directory's mtime),
// the deepest first, each level in parallel.
func (c *copier) finishDirs(ctx context.Context) error {
	byDepth := map[int][]dirJob{}
	maxDepth := 0
	for _, d := range c.madeDirs {
		n := strings.Count(d.d, "/")
		if d.d != "" {
			n++
		}
		byDepth[n] = append(byDepth[n], d)
		maxDepth = max(maxDepth, n)
	}
	for depth := maxDepth; depth >= 0; depth-- {
		s := newSched(ctx)
		for _, d := range byDepth[depth] {
			s.push(prioDir, func(ctx context.Context) error { return c.finishDir(ctx, d) })
		}
		if err := s.run(c.opts.Workers); err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) finishDir(ctx context.Context, d dirJob) error {
	si, err := c.src.lstat(ctx, d.s)
	if err != nil {
		return wrap(err, "source %s", join2(c.src, d.s))
	}
	x, err := c.src.xattrs(ctx, d.s)
	if err != nil {
		return wrap(err, "read the xattrs of %s", join2(c.src, d.s))
	}
	if err := c.dst.setXattrs(ctx, d.d, x); err != nil {
		return wrap(err, "set the xattrs of %s", join2(c.dst, d.d))
	}
	if err := c.dst.setMeta(ctx, d.d, si.meta(), c.own(si)); err != nil {
		return wrap(err, "set the mode and times of %s", join2(c.dst, d.d))
	}
	return nil
}
