package dfs_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
)

// The model-based test: random sequences of namespace operations on a real
// system (mkdir, open with O_CREAT/O_EXCL/O_TRUNC, writes and reads over
// several 4 KiB chunks, truncate, punch, chmod, chown, utimes, remove,
// rename, symlinks and path lookups, xattrs, paged readdir and readdirplus,
// stat, and handles kept open across renames and removals), each through
// one of two mounts (two clients) of the namespace, and each checked
// against an in-memory POSIX tree: the errno of every call, and every
// result. Longer runs: -rapid.checks=500 -rapid.steps=100 (about 30 s).

// mnode is a file, directory or symlink of the model.
type mnode struct {
	kind    uint32 // dfs.S_IFDIR, S_IFREG or S_IFLNK
	perm    uint32
	oid     daos.OID // learnt when created
	parent  *mnode
	name    string
	removed bool // its entry is gone (it, or a directory above it)
	kids    map[string]*mnode
	data    []byte
	target  string
	xattrs  map[string][]byte
	mtime   *time.Time // set by utimes, and not written since
	uid     uint32
	gid     uint32
}

func (n *mnode) path() string {
	if n.parent == nil {
		return "/"
	}
	if p := n.parent.path(); p != "/" {
		return p + "/" + n.name
	}
	return "/" + n.name
}

// linked tells whether the node is still in the tree.
func (n *mnode) linked() bool {
	for ; n != nil; n = n.parent {
		if n.removed {
			return false
		}
	}
	return true
}

// inside tells whether n is d or below it.
func (n *mnode) inside(d *mnode) bool {
	for ; n != nil; n = n.parent {
		if n == d {
			return true
		}
	}
	return false
}

func (n *mnode) size() uint64 {
	switch n.kind {
	case dfs.S_IFREG:
		return uint64(len(n.data))
	case dfs.S_IFLNK:
		return uint64(len(n.target))
	}
	return 0
}

func (n *mnode) add(name string, k *mnode) {
	k.parent, k.name = n, name
	n.kids[name] = k
}

func newMnode(kind, perm uint32, oid daos.OID) *mnode {
	n := &mnode{kind: kind, perm: perm, oid: oid, xattrs: map[string][]byte{}, uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}
	if kind == dfs.S_IFDIR {
		n.kids = map[string]*mnode{}
	}
	return n
}

// walk calls fn for every node under n (n included), in name order.
func (n *mnode) walk(fn func(*mnode)) {
	fn(n)
	for _, k := range slices.Sorted(maps.Keys(n.kids)) {
		n.kids[k].walk(fn)
	}
}

// resolve is POSIX path resolution from directory cur: symlinks are
// followed (all but the last component's unless follow), 40 at most.
func resolve(root, cur *mnode, p string, follow bool, hops *int) (*mnode, syscall.Errno) {
	if strings.HasPrefix(p, "/") {
		cur = root
	}
	comps := strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
	for i, c := range comps {
		if cur.kind != dfs.S_IFDIR {
			return nil, syscall.ENOTDIR
		}
		switch c {
		case ".":
			continue
		case "..":
			if cur.parent != nil {
				cur = cur.parent
			}
			continue
		}
		next := cur.kids[c]
		if next == nil {
			return nil, syscall.ENOENT
		}
		if next.kind == dfs.S_IFLNK && (i < len(comps)-1 || follow) {
			if *hops++; *hops > 40 {
				return nil, syscall.ELOOP
			}
			var e syscall.Errno
			if next, e = resolve(root, cur, next.target, true, hops); e != 0 {
				return nil, e
			}
		}
		cur = next
	}
	return cur, 0
}

var (
	modelNames  = []string{"a", "b", "c", "d"}
	modelXattrs = []string{"user.a", "user.b", "user.c"}
	modelPerms  = []uint32{0o755, 0o700, 0o644, 0o600, 0o4711}
)

const modelChunk = 4096

// heldObj is a handle the test keeps open across other operations.
type heldObj struct {
	o *dfs.Obj
	n *mnode
	f *dfs.FS // its mount
	// where its mount last saw the entry: renames through the mount move
	// its handles, renames through the other mount do not (DAOS's libdfs
	// has no cross-client invalidation either)
	parent *mnode
	name   string
}

// expect is the errno an operation through h should get, given what it got:
// ENOENT if its entry is gone; if the entry was renamed through the other
// mount, ENOENT, unless a lookup through h's mount found it at its new
// place since (then h follows it: got is nil, and h learns the place).
func (h *heldObj) expect(got error) syscall.Errno {
	switch {
	case !h.n.linked():
		return syscall.ENOENT
	case h.n.parent == h.parent && h.n.name == h.name:
		return 0
	case dfs.Errno(got) == syscall.ENOENT:
		return syscall.ENOENT
	}
	h.parent, h.name = h.n.parent, h.n.name
	return 0
}

func TestModel(t *testing.T) {
	ctx := context.Background()
	c, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Fini()
	p, err := c.PoolConnect(ctx, "tank", daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	// a second client, for a second mount of each namespace
	c2, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Fini()
	p2, err := c2.PoolConnect(ctx, "tank", daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	rapid.Check(t, func(rt *rapid.T) {
		cases++
		if testing.Short() && cases > 25 {
			return // the race pass: fewer sequences
		}
		label := fmt.Sprintf("model%d", cases)
		if _, err := p.ContCreate(ctx, daos.ContCreateOptions{Label: label, Type: "POSIX"}); err != nil {
			rt.Fatal(err)
		}
		defer p.ContDestroy(ctx, label)
		h, err := p.ContOpen(ctx, label, daos.RW)
		if err != nil {
			rt.Fatal(err)
		}
		defer h.Close(ctx)
		// one-shard or all-shard (both targets) directories and files:
		// readdir anchors walk every shard, chunks spread over them
		attr := dfs.Attr{ChunkSize: modelChunk,
			DirClass:  rapid.SampledFrom([]daos.ClassID{0, daos.SX}).Draw(rt, "dir class"),
			FileClass: rapid.SampledFrom([]daos.ClassID{0, daos.SX}).Draw(rt, "file class")}
		if err := dfs.Format(ctx, h, attr); err != nil {
			rt.Fatal(err)
		}
		f, err := dfs.Mount(ctx, h, false)
		if err != nil {
			rt.Fatal(err)
		}
		defer f.Umount()
		h2, err := p2.ContOpen(ctx, label, daos.RW)
		if err != nil {
			rt.Fatal(err)
		}
		defer h2.Close(ctx)
		f2, err := dfs.Mount(ctx, h2, false)
		if err != nil {
			rt.Fatal(err)
		}
		defer f2.Umount()
		m := &fsModelRun{rt: rt, ctx: ctx, mounts: []*dfs.FS{f, f2}, f: f, root: newMnode(dfs.S_IFDIR, 0o755, f.Root().OID())}
		defer m.releaseAll()
		// longer sequences than one Repeat's (30 actions on average by
		// default), with a full comparison after each part
		for range 3 {
			rt.Repeat(m.actions())
			m.fsck(rt)
		}
	})
}

// fsModelRun is one sequence: the namespace and its model.
type fsModelRun struct {
	rt     *rapid.T
	ctx    context.Context
	mounts []*dfs.FS // the namespace mounted by two clients
	f      *dfs.FS   // the mount the current action uses
	root   *mnode
	held   []heldObj
}

func (m *fsModelRun) releaseAll() {
	for _, h := range m.held {
		h.o.Close(m.ctx)
	}
	m.held = nil
}

// nodes lists the linked nodes of kind (0: any), by path.
func (m *fsModelRun) nodes(kind uint32, withRoot bool) []string {
	var out []string
	m.root.walk(func(n *mnode) {
		if (kind == 0 || n.kind == kind) && (withRoot || n != m.root) {
			out = append(out, n.path())
		}
	})
	return out
}

// node is the model node at a path made of real entries (no symlinks).
func (m *fsModelRun) node(p string) *mnode {
	hops := 0
	n, e := resolve(m.root, m.root, p, false, &hops)
	if e != 0 {
		m.rt.Fatalf("model: %s: %v", p, e)
	}
	return n
}

// drawNode draws the path of a linked node of kind; it skips the action
// if there is none.
func (m *fsModelRun) drawNode(rt *rapid.T, kind uint32, withRoot bool, label string) (string, *mnode) {
	ps := m.nodes(kind, withRoot)
	if len(ps) == 0 {
		rt.Skip("none")
	}
	p := rapid.SampledFrom(ps).Draw(rt, label)
	return p, m.node(p)
}

// open opens a path that exists (no symlinks on the way).
func (m *fsModelRun) open(p string) *dfs.Obj {
	o, err := m.f.LookupPath(m.ctx, p, false)
	if err != nil {
		m.rt.Fatalf("lookup %s: %v", p, err)
	}
	return o
}

// errno checks err against the errno the model expects and tells whether
// the call succeeded.
func (m *fsModelRun) errno(what string, err error, want syscall.Errno) bool {
	if got := dfs.Errno(err); got != want {
		m.rt.Fatalf("%s: errno %d (%v), the model says %d (%v)", what, got, err, want, want)
	}
	return want == 0
}

func (m *fsModelRun) checkStat(what string, st dfs.Stat, n *mnode) {
	rt := m.rt
	if st.Mode != n.kind|n.perm {
		rt.Fatalf("%s: mode %#o, model %#o", what, st.Mode, n.kind|n.perm)
	}
	if st.OID != n.oid {
		rt.Fatalf("%s: OID %s, model %s", what, st.OID, n.oid)
	}
	if st.UID != n.uid || st.GID != n.gid {
		rt.Fatalf("%s: owner %d:%d, model %d:%d", what, st.UID, st.GID, n.uid, n.gid)
	}
	if st.Size != n.size() {
		rt.Fatalf("%s: size %d, model %d", what, st.Size, n.size())
	}
	if n.mtime != nil && !st.Mtime.Equal(*n.mtime) {
		rt.Fatalf("%s: mtime %v, set to %v", what, st.Mtime, *n.mtime)
	}
	if n.kind == dfs.S_IFREG && st.ChunkSize != modelChunk {
		rt.Fatalf("%s: chunk size %d", what, st.ChunkSize)
	}
}

// readdir lists directory d in pages of page names.
func (m *fsModelRun) readdir(d *dfs.Obj, page int) []string {
	var names []string
	var a daos.Anchor
	for i := 0; !a.EOF; i++ {
		if i > 1000 {
			m.rt.Fatalf("readdir of %s: no EOF after 1000 pages of %d", d.Name(), page)
		}
		ns, err := m.f.Readdir(m.ctx, d, &a, page)
		if err != nil {
			m.rt.Fatalf("readdir: %v", err)
		}
		if len(ns) > page {
			m.rt.Fatalf("readdir: %d names in a page of %d", len(ns), page)
		}
		names = append(names, ns...)
	}
	return names
}

func (m *fsModelRun) checkDir(what string, d *dfs.Obj, n *mnode, page int) {
	got := m.readdir(d, page)
	slices.Sort(got)
	want := slices.Sorted(maps.Keys(n.kids))
	if !slices.Equal(got, want) {
		m.rt.Fatalf("%s: readdir (pages of %d) %q, model %q", what, page, got, want)
	}
	// ReaddirPlus: the same names, each with its type and OID
	var a daos.Anchor
	seen := 0
	for i := 0; !a.EOF; i++ {
		if i > 1000 {
			m.rt.Fatalf("%s: ReaddirPlus: no EOF", what)
		}
		es, err := m.f.ReaddirPlus(m.ctx, d, &a, page)
		if err != nil {
			m.rt.Fatalf("%s: ReaddirPlus: %v", what, err)
		}
		for _, e := range es {
			k := n.kids[e.Name]
			if k == nil || e.OID != k.oid || e.Mode != k.kind|k.perm {
				m.rt.Fatalf("%s: ReaddirPlus: %+v, model %+v", what, e, k)
			}
		}
		seen += len(es)
	}
	if seen != len(want) {
		m.rt.Fatalf("%s: ReaddirPlus: %d entries, model %d", what, seen, len(want))
	}
}

func (m *fsModelRun) checkXattrs(what string, o *dfs.Obj, n *mnode) {
	got, err := o.ListXattr(m.ctx)
	if err != nil {
		m.rt.Fatalf("%s: listxattr: %v", what, err)
	}
	slices.Sort(got)
	if want := slices.Sorted(maps.Keys(n.xattrs)); !slices.Equal(got, want) {
		m.rt.Fatalf("%s: xattrs %q, model %q", what, got, want)
	}
	for k, v := range n.xattrs {
		got, err := o.GetXattr(m.ctx, k)
		if err != nil || !bytes.Equal(got, v) {
			m.rt.Fatalf("%s: xattr %s: %d bytes (%v), model %d bytes", what, k, len(got), err, len(v))
		}
	}
}

func (m *fsModelRun) checkData(what string, o *dfs.Obj, n *mnode) {
	buf := make([]byte, len(n.data)+100)
	k, err := o.Read(m.ctx, buf, 0)
	if err != nil {
		m.rt.Fatalf("%s: read: %v", what, err)
	}
	if k != len(n.data) || !bytes.Equal(buf[:k], n.data) {
		m.rt.Fatalf("%s: read %d bytes, model %d (%s)", what, k, len(n.data), firstDiff(buf[:k], n.data))
	}
}

func firstDiff(a, b []byte) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at byte %d: %#x, model %#x", i, a[i], b[i])
		}
	}
	return "same prefix"
}

// fsck compares the whole tree.
func (m *fsModelRun) fsck(rt *rapid.T) {
	m.root.walk(func(n *mnode) {
		p := n.path()
		o := m.open(p)
		defer o.Close(m.ctx)
		st, err := o.Stat(m.ctx)
		if err != nil {
			rt.Fatalf("fsck: stat %s: %v", p, err)
		}
		m.checkStat("fsck "+p, st, n)
		m.checkXattrs("fsck "+p, o, n)
		switch n.kind {
		case dfs.S_IFDIR:
			m.checkDir("fsck "+p, o, n, 3)
		case dfs.S_IFREG:
			m.checkData("fsck "+p, o, n)
		case dfs.S_IFLNK:
			if o.Target() != n.target {
				rt.Fatalf("fsck %s: target %q, model %q", p, o.Target(), n.target)
			}
		}
	})
}

func drawData(rt *rapid.T, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(rapid.Int64().Draw(rt, "seed"))).Read(b)
	return b
}

// drawOffset draws an offset: anywhere in the first chunks, or at a chunk
// boundary give or take a byte.
func drawOffset(rt *rapid.T, label string, hi int) int {
	if rapid.Bool().Draw(rt, label+" near a boundary") {
		return max(0, rapid.IntRange(0, hi/modelChunk).Draw(rt, label+" chunk")*modelChunk+rapid.IntRange(-1, 1).Draw(rt, label+" delta"))
	}
	return rapid.IntRange(0, hi).Draw(rt, label)
}

func grow(b []byte, n int) []byte {
	if n > len(b) {
		b = append(b, make([]byte, n-len(b))...)
	}
	return b
}

// written marks a file written, or a directory's entries changed: its
// mtime is now about the change's (a directory's is written at most every
// few milliseconds per mount: see touchDir), which the model does not
// check.
func written(n *mnode) { n.mtime = nil }

func (m *fsModelRun) actions() map[string]func(*rapid.T) {
	ctx := m.ctx
	name := rapid.SampledFrom(modelNames)
	actions := map[string]func(*rapid.T){
		"mkdir": func(rt *rapid.T) {
			dp, dn := m.drawNode(rt, dfs.S_IFDIR, true, "dir")
			nm := name.Draw(rt, "name")
			perm := rapid.SampledFrom(modelPerms).Draw(rt, "perm")
			d := m.open(dp)
			defer d.Close(ctx)
			want := syscall.Errno(0)
			if dn.kids[nm] != nil {
				want = syscall.EEXIST
			}
			if m.errno("mkdir", m.f.Mkdir(ctx, d, nm, perm, dfs.OpenOptions{}), want) {
				o := must(m.f.Lookup(ctx, d, nm))
				dn.add(nm, newMnode(dfs.S_IFDIR, perm, o.OID()))
				written(dn)
				o.Close(ctx)
			}
		},
		"open": func(rt *rapid.T) {
			dp, dn := m.drawNode(rt, dfs.S_IFDIR, true, "dir")
			nm := name.Draw(rt, "name")
			flags := rapid.SampledFrom([]int{
				os.O_RDONLY, os.O_RDWR, os.O_RDWR | os.O_CREATE, os.O_RDWR | os.O_CREATE | os.O_EXCL,
				os.O_RDWR | os.O_TRUNC, os.O_WRONLY | os.O_CREATE | os.O_TRUNC, os.O_RDONLY | os.O_TRUNC,
			}).Draw(rt, "flags")
			perm := rapid.SampledFrom(modelPerms).Draw(rt, "perm")
			d := m.open(dp)
			defer d.Close(ctx)
			e := dn.kids[nm]
			writing := flags&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC) != 0
			want := syscall.Errno(0)
			switch {
			case e == nil && flags&os.O_CREATE == 0:
				want = syscall.ENOENT
			case e == nil:
			case flags&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
				want = syscall.EEXIST
			case e.kind == dfs.S_IFDIR && writing:
				want = syscall.EISDIR
			case e.kind == dfs.S_IFLNK:
				want = syscall.ELOOP
			}
			o, err := m.f.Open(ctx, d, nm, flags, perm, dfs.OpenOptions{})
			if !m.errno(fmt.Sprintf("open %s %#o", path.Join(dp, nm), flags), err, want) {
				return
			}
			defer o.Close(ctx)
			if e == nil {
				dn.add(nm, newMnode(dfs.S_IFREG, perm, o.OID()))
				written(dn)
				return
			}
			if o.OID() != e.oid {
				rt.Fatalf("open: OID %s, model %s", o.OID(), e.oid)
			}
			if e.kind == dfs.S_IFREG && flags&os.O_TRUNC != 0 && flags&(os.O_WRONLY|os.O_RDWR) != 0 {
				e.data = nil
				written(e)
			}
		},
		"write": func(rt *rapid.T) {
			fp, fn := m.drawNode(rt, dfs.S_IFREG, false, "file")
			off := drawOffset(rt, "offset", 4*modelChunk)
			data := drawData(rt, rapid.IntRange(1, 2*modelChunk+100).Draw(rt, "len"))
			d := m.open(fn.parent.path())
			defer d.Close(ctx)
			o, err := m.f.Open(ctx, d, fn.name, os.O_RDWR, 0, dfs.OpenOptions{})
			if err != nil {
				rt.Fatalf("open %s: %v", fp, err)
			}
			defer o.Close(ctx)
			if err := o.Write(ctx, data, int64(off)); err != nil {
				rt.Fatalf("write %s: %v", fp, err)
			}
			fn.data = grow(fn.data, off+len(data))
			copy(fn.data[off:], data)
			written(fn)
		},
		"read": func(rt *rapid.T) {
			fp, fn := m.drawNode(rt, dfs.S_IFREG, false, "file")
			off := drawOffset(rt, "offset", len(fn.data)+2*modelChunk)
			buf := make([]byte, rapid.IntRange(0, 3*modelChunk).Draw(rt, "len"))
			o := m.open(fp)
			defer o.Close(ctx)
			k, err := o.Read(ctx, buf, int64(off))
			if err != nil {
				rt.Fatalf("read %s: %v", fp, err)
			}
			want := min(len(buf), max(0, len(fn.data)-off))
			if k != want || !bytes.Equal(buf[:k], fn.data[min(off, len(fn.data)):][:want]) {
				rt.Fatalf("read %s [%d, +%d): %d bytes, model %d (%s)", fp, off, len(buf), k, want, firstDiff(buf[:k], fn.data[min(off, len(fn.data)):]))
			}
		},
		"truncate": func(rt *rapid.T) {
			fp, fn := m.drawNode(rt, dfs.S_IFREG, false, "file")
			size := uint64(drawOffset(rt, "size", 5*modelChunk))
			o := m.open(fp)
			defer o.Close(ctx)
			st, err := o.SetAttr(ctx, dfs.SetAttr{Size: &size})
			if err != nil {
				rt.Fatalf("truncate %s: %v", fp, err)
			}
			fn.data = grow(fn.data, int(size))[:size]
			written(fn)
			m.checkStat("truncate "+fp, st, fn)
		},
		"punch": func(rt *rapid.T) {
			fp, fn := m.drawNode(rt, dfs.S_IFREG, false, "file")
			off := drawOffset(rt, "offset", len(fn.data)+100)
			n := rapid.IntRange(0, 3*modelChunk).Draw(rt, "len")
			o := m.open(fp)
			defer o.Close(ctx)
			if err := o.PunchRange(ctx, uint64(off), uint64(n)); err != nil {
				rt.Fatalf("punch %s: %v", fp, err)
			}
			if off < len(fn.data) && n > 0 {
				clear(fn.data[off:min(off+n, len(fn.data))])
				written(fn)
			}
		},
		"chmod": func(rt *rapid.T) {
			p, n := m.drawNode(rt, 0, true, "path")
			perm := rapid.SampledFrom(modelPerms).Draw(rt, "perm")
			o := m.open(p)
			defer o.Close(ctx)
			st, err := o.SetAttr(ctx, dfs.SetAttr{Mode: &perm})
			if err != nil {
				rt.Fatalf("chmod %s: %v", p, err)
			}
			n.perm = perm
			m.checkStat("chmod "+p, st, n)
		},
		"chown": func(rt *rapid.T) {
			p, n := m.drawNode(rt, 0, true, "path")
			var sa dfs.SetAttr
			uid, gid := rapid.Uint32Range(0, 70000).Draw(rt, "uid"), rapid.Uint32Range(0, 70000).Draw(rt, "gid")
			if rapid.Bool().Draw(rt, "set uid") {
				sa.UID = &uid
			}
			if rapid.Bool().Draw(rt, "set gid") {
				sa.GID = &gid
			}
			o := m.open(p)
			defer o.Close(ctx)
			st, err := o.SetAttr(ctx, sa)
			if err != nil {
				rt.Fatalf("chown %s: %v", p, err)
			}
			if sa.UID != nil {
				n.uid = uid
			}
			if sa.GID != nil {
				n.gid = gid
			}
			m.checkStat("chown "+p, st, n)
		},
		"utimes": func(rt *rapid.T) {
			p, n := m.drawNode(rt, 0, true, "path")
			mt := time.Unix(rapid.Int64Range(0, 4e9).Draw(rt, "sec"), rapid.Int64Range(0, 1e9-1).Draw(rt, "nsec"))
			o := m.open(p)
			defer o.Close(ctx)
			st, err := o.SetAttr(ctx, dfs.SetAttr{Mtime: &mt})
			if err != nil {
				rt.Fatalf("utimes %s: %v", p, err)
			}
			n.mtime = &mt
			m.checkStat("utimes "+p, st, n)
		},
		"remove": func(rt *rapid.T) {
			dp, dn := m.drawNode(rt, dfs.S_IFDIR, true, "dir")
			nm := name.Draw(rt, "name")
			recursive := rapid.Bool().Draw(rt, "recursive")
			d := m.open(dp)
			defer d.Close(ctx)
			e := dn.kids[nm]
			want := syscall.Errno(0)
			switch {
			case e == nil:
				want = syscall.ENOENT
			case e.kind == dfs.S_IFDIR && len(e.kids) > 0 && !recursive:
				want = syscall.ENOTEMPTY
			}
			st, err := m.f.Remove(ctx, d, nm, dfs.RemoveOptions{Recursive: recursive})
			if m.errno(fmt.Sprintf("remove %s", path.Join(dp, nm)), err, want) {
				if st.OID != e.oid {
					rt.Fatalf("remove: removed %s, model %s", st.OID, e.oid)
				}
				delete(dn.kids, nm)
				e.removed = true
				written(dn)
			}
		},
		"rename": func(rt *rapid.T) {
			sp, sdn := m.drawNode(rt, dfs.S_IFDIR, true, "from dir")
			snm := name.Draw(rt, "from name")
			dp, ddn := m.drawNode(rt, dfs.S_IFDIR, true, "to dir")
			dnm := name.Draw(rt, "to name")
			noReplace := rapid.Bool().Draw(rt, "noreplace")
			src, dst := sdn.kids[snm], ddn.kids[dnm]
			if src != nil && src.kind == dfs.S_IFDIR && ddn.inside(src) {
				rt.Skip("moving a directory under itself") // undefined in DFS (see Rename)
			}
			want := syscall.Errno(0)
			switch {
			case src == nil:
				want = syscall.ENOENT
			case dst == nil || dst == src:
			case noReplace:
				want = syscall.EEXIST
			case src.kind == dfs.S_IFDIR && dst.kind != dfs.S_IFDIR:
				want = syscall.ENOTDIR
			case src.kind != dfs.S_IFDIR && dst.kind == dfs.S_IFDIR:
				want = syscall.EISDIR
			case dst.kind == dfs.S_IFDIR && len(dst.kids) > 0:
				want = syscall.ENOTEMPTY
			}
			sd, dd := m.open(sp), m.open(dp)
			defer sd.Close(ctx)
			defer dd.Close(ctx)
			st, err := m.f.Rename(ctx, sd, snm, dd, dnm, dfs.RenameOptions{NoReplace: noReplace})
			if !m.errno(fmt.Sprintf("rename %s -> %s", path.Join(sp, snm), path.Join(dp, dnm)), err, want) || dst == src {
				return
			}
			if dst != nil {
				if st.OID != dst.oid {
					rt.Fatalf("rename replaced %s, model %s", st.OID, dst.oid)
				}
				dst.removed = true
			} else if st.OID != (daos.OID{}) {
				rt.Fatalf("rename replaced %s, model nothing", st.OID)
			}
			delete(sdn.kids, snm)
			ddn.add(dnm, src)
			for i := range m.held {
				if h := &m.held[i]; h.n == src && h.f == m.f {
					h.parent, h.name = ddn, dnm // moved with it
				}
			}
			written(sdn)
			written(ddn)
		},
		"symlink": func(rt *rapid.T) {
			dp, dn := m.drawNode(rt, dfs.S_IFDIR, true, "dir")
			nm := name.Draw(rt, "name")
			target := rapid.OneOf(
				rapid.SampledFrom(m.nodes(0, true)),
				name,
				rapid.Map(name, func(s string) string { return "../" + s }),
				rapid.Map(name, func(s string) string { return s + "/" + s }),
				rapid.Just("/nowhere/x"),
				rapid.SampledFrom([]string{".", "..", "/", "./a", "../.."}),
			).Draw(rt, "target")
			d := m.open(dp)
			defer d.Close(ctx)
			want := syscall.Errno(0)
			if dn.kids[nm] != nil {
				want = syscall.EEXIST
			}
			o, err := m.f.Symlink(ctx, d, nm, target, dfs.OpenOptions{})
			if m.errno("symlink", err, want) {
				l := newMnode(dfs.S_IFLNK, 0o777, o.OID())
				l.target = target
				dn.add(nm, l)
				written(dn)
				o.Close(ctx)
			}
		},
		"lookup": func(rt *rapid.T) {
			p := rapid.SampledFrom(m.nodes(0, true)).Draw(rt, "path")
			for range rapid.IntRange(0, 2).Draw(rt, "more") {
				p = strings.TrimSuffix(p, "/") + "/" + name.Draw(rt, "name")
			}
			follow := rapid.Bool().Draw(rt, "follow")
			hops := 0
			n, want := resolve(m.root, m.root, p, follow, &hops)
			o, err := m.f.LookupPath(ctx, p, follow)
			if m.errno(fmt.Sprintf("lookup %s (follow %v)", p, follow), err, want) {
				defer o.Close(ctx)
				if o.OID() != n.oid {
					rt.Fatalf("lookup %s: OID %s, model %s (%s)", p, o.OID(), n.oid, n.path())
				}
				st, err := o.Stat(ctx)
				if err != nil {
					rt.Fatalf("stat %s: %v", p, err)
				}
				m.checkStat("lookup "+p, st, n)
			}
		},
		"stat": func(rt *rapid.T) {
			p, n := m.drawNode(rt, 0, true, "path")
			o := m.open(p)
			defer o.Close(ctx)
			st, err := o.Stat(ctx)
			if err != nil {
				rt.Fatalf("stat %s: %v", p, err)
			}
			m.checkStat("stat "+p, st, n)
		},
		"readdir": func(rt *rapid.T) {
			p, n := m.drawNode(rt, dfs.S_IFDIR, true, "dir")
			d := m.open(p)
			defer d.Close(ctx)
			m.checkDir("readdir "+p, d, n, rapid.IntRange(1, 4).Draw(rt, "page"))
		},
		"setxattr": func(rt *rapid.T) {
			p, n := m.drawNode(rt, 0, true, "path")
			x := rapid.SampledFrom(modelXattrs).Draw(rt, "xattr")
			var v []byte
			switch rapid.IntRange(0, 9).Draw(rt, "value kind") {
			case 0:
				v = drawData(rt, 64<<10) // the largest
			case 1:
				v = make([]byte, 64<<10+1)
			default:
				v = drawData(rt, rapid.IntRange(0, 20).Draw(rt, "len"))
			}
			flags := rapid.SampledFrom([]dfs.XattrFlags{0, dfs.XattrCreate, dfs.XattrReplace}).Draw(rt, "flags")
			_, has := n.xattrs[x]
			want := syscall.Errno(0)
			switch {
			case len(v) > 64<<10:
				want = syscall.E2BIG
			case flags == dfs.XattrCreate && has:
				want = syscall.EEXIST
			case flags == dfs.XattrReplace && !has:
				want = syscall.ENODATA
			}
			o := m.open(p)
			defer o.Close(ctx)
			if m.errno(fmt.Sprintf("setxattr %s %s (%d bytes, flags %d)", p, x, len(v), flags), o.SetXattr(ctx, x, v, flags), want) {
				n.xattrs[x] = v
			}
		},
		"getxattr": func(rt *rapid.T) {
			p, n := m.drawNode(rt, 0, true, "path")
			x := rapid.SampledFrom(modelXattrs).Draw(rt, "xattr")
			o := m.open(p)
			defer o.Close(ctx)
			v, has := n.xattrs[x]
			want := syscall.Errno(0)
			if !has {
				want = syscall.ENODATA
			}
			got, err := o.GetXattr(ctx, x)
			if m.errno("getxattr "+p+" "+x, err, want) && !bytes.Equal(got, v) {
				rt.Fatalf("getxattr %s %s: %d bytes, model %d", p, x, len(got), len(v))
			}
		},
		"listxattr": func(rt *rapid.T) {
			p, n := m.drawNode(rt, 0, true, "path")
			o := m.open(p)
			defer o.Close(ctx)
			m.checkXattrs("listxattr "+p, o, n)
		},
		"removexattr": func(rt *rapid.T) {
			p, n := m.drawNode(rt, 0, true, "path")
			x := rapid.SampledFrom(modelXattrs).Draw(rt, "xattr")
			o := m.open(p)
			defer o.Close(ctx)
			want := syscall.Errno(0)
			if _, has := n.xattrs[x]; !has {
				want = syscall.ENODATA
			}
			if m.errno("removexattr "+p+" "+x, o.RemoveXattr(ctx, x), want) {
				delete(n.xattrs, x)
			}
		},
		"hold": func(rt *rapid.T) {
			if len(m.held) >= 4 {
				rt.Skip("enough held")
			}
			p, n := m.drawNode(rt, 0, false, "path")
			m.held = append(m.held, heldObj{o: m.open(p), n: n, f: m.f, parent: n.parent, name: n.name})
		},
		"release": func(rt *rapid.T) {
			if len(m.held) == 0 {
				rt.Skip("none held")
			}
			i := rapid.IntRange(0, len(m.held)-1).Draw(rt, "held")
			if err := m.held[i].o.Close(ctx); err != nil {
				rt.Fatalf("close: %v", err)
			}
			m.held = slices.Delete(m.held, i, i+1)
		},
		// A handle kept open follows its entry through renames, and
		// fails with ENOENT once the entry is removed, even if another
		// object took its name.
		"held stat": func(rt *rapid.T) {
			if len(m.held) == 0 {
				rt.Skip("none held")
			}
			h := &m.held[rapid.IntRange(0, len(m.held)-1).Draw(rt, "held")]
			st, err := h.o.Stat(ctx)
			if !m.errno("stat of a held handle", err, h.expect(err)) {
				return
			}
			m.checkStat("held "+h.n.path(), st, h.n)
			if h.o.Name() != h.n.name {
				rt.Fatalf("held handle named %q, model %q", h.o.Name(), h.n.name)
			}
		},
		"held chmod": func(rt *rapid.T) {
			if len(m.held) == 0 {
				rt.Skip("none held")
			}
			h := &m.held[rapid.IntRange(0, len(m.held)-1).Draw(rt, "held")]
			perm := rapid.SampledFrom(modelPerms).Draw(rt, "perm")
			_, err := h.o.SetAttr(ctx, dfs.SetAttr{Mode: &perm})
			if m.errno("chmod of a held handle", err, h.expect(err)) {
				h.n.perm = perm
			}
		},
		"held setxattr": func(rt *rapid.T) {
			if len(m.held) == 0 {
				rt.Skip("none held")
			}
			h := &m.held[rapid.IntRange(0, len(m.held)-1).Draw(rt, "held")]
			x := rapid.SampledFrom(modelXattrs).Draw(rt, "xattr")
			v := drawData(rt, rapid.IntRange(0, 8).Draw(rt, "len"))
			err := h.o.SetXattr(ctx, x, v, 0)
			if m.errno("setxattr of a held handle", err, h.expect(err)) {
				h.n.xattrs[x] = v
			}
		},
		"held getxattr": func(rt *rapid.T) {
			if len(m.held) == 0 {
				rt.Skip("none held")
			}
			h := &m.held[rapid.IntRange(0, len(m.held)-1).Draw(rt, "held")]
			x := rapid.SampledFrom(modelXattrs).Draw(rt, "xattr")
			v, err := h.o.GetXattr(ctx, x)
			if dfs.Errno(err) == syscall.ENODATA && h.n.linked() {
				if _, has := h.n.xattrs[x]; has {
					rt.Fatalf("getxattr of a held handle: ENODATA, the model has %s", x)
				}
				err = nil // no such xattr, as the model says
				v = nil
			}
			if m.errno("getxattr of a held handle", err, h.expect(err)) {
				if want := h.n.xattrs[x]; !bytes.Equal(v, want) {
					rt.Fatalf("getxattr of a held handle: %d bytes, model %d", len(v), len(want))
				}
			}
		},
		"fsck": m.fsck,
	}
	// each action goes through one of the two mounts: nothing one
	// client does may hide from the other
	for k, fn := range actions {
		actions[k] = func(rt *rapid.T) {
			m.f = m.mounts[rapid.IntRange(0, len(m.mounts)-1).Draw(rt, "mount")]
			fn(rt)
		}
	}
	return actions
}
