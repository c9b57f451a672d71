package dfs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
)

// secondMount mounts f's namespace again through another client: its own
// connections, pool and container handles, as another node would.
func secondMount(t testing.TB, f *dfs.FS) *dfs.FS {
	t.Helper()
	ctx := context.Background()
	c, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.PoolConnect(ctx, "tank", daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p.ContOpen(ctx, f.Cont().Info.GetLabel(), daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	g, err := dfs.Mount(ctx, h, false)
	if err != nil {
		t.Fatal(err)
	}
	// registered after newFS's cleanup, so run before it destroys the
	// container
	t.Cleanup(func() {
		g.Umount()
		h.Close(ctx)
		c.Fini()
	})
	return g
}

func lookupPath(t testing.TB, f *dfs.FS, p string) *dfs.Obj {
	t.Helper()
	o, err := f.LookupPath(context.Background(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// listAll reads a whole directory through ReaddirPlus in small pages:
// name -> OID, failing on a name seen twice.
func listAll(t testing.TB, f *dfs.FS, p string) map[string]daos.OID {
	t.Helper()
	ctx := context.Background()
	d := lookupPath(t, f, p)
	defer d.Close(ctx)
	out := map[string]daos.OID{}
	var a daos.Anchor
	for i := 0; !a.EOF; i++ {
		if i > 10000 {
			t.Fatalf("readdir %s: no end", p)
		}
		es, err := f.ReaddirPlus(ctx, d, &a, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if _, dup := out[e.Name]; dup {
				t.Fatalf("readdir %s: %q twice", p, e.Name)
			}
			out[e.Name] = e.OID
		}
	}
	return out
}

// TestConcurrentNamespace: workers on two mounts (two clients) create
// (O_EXCL), remove and rename entries among a few names in two
// directories at once, while a reader pages through one of them. Every
// create returns the new OID, every remove and every replacing rename the
// OID it removed, so the entries left must be exactly the OIDs created and
// not removed: none lost, none duplicated (a name twice, or an OID under
// two names), none removed twice; and both mounts must list the same.
func TestConcurrentNamespace(t *testing.T) {
	ctx := context.Background()
	// directories over both targets: the reader's anchors cross shards
	fa := newFS(t, dfs.Attr{ChunkSize: 4096, DirClass: daos.SX})
	fb := secondMount(t, fa)
	mounts := []*dfs.FS{fa, fb}
	dirs := []string{"/d1", "/d2"}
	for _, d := range dirs {
		if err := fa.Mkdir(ctx, fa.Root(), d[1:], 0o755, dfs.OpenOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"a", "b", "c", "d", "e", "f"}
	const workers, ops = 8, 150
	created := make([][]daos.OID, workers)
	removed := make([][]daos.OID, workers)
	counts := make([]map[string]int, workers)

	done := make(chan struct{})
	var readerWG sync.WaitGroup
	readerWG.Add(1)
	go func() {
		// a reader paging through d1 meanwhile never sees a name twice
		// in one pass
		defer readerWG.Done()
		d := lookupPath(t, fb, "/d1")
		defer d.Close(ctx)
		for pass := 0; pass < 1000; pass++ {
			select {
			case <-done:
				return
			default:
			}
			seen := map[string]bool{}
			for a := (daos.Anchor{}); !a.EOF; {
				ns, err := fb.Readdir(ctx, d, &a, 2)
				if err != nil {
					t.Errorf("readdir while modifying: %v", err)
					return
				}
				for _, n := range ns {
					if seen[n] {
						t.Errorf("readdir pass %d saw %q twice", pass, n)
						return
					}
					seen[n] = true
				}
			}
		}
	}()

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := mounts[w%2]
			hs := []*dfs.Obj{lookupPath(t, f, dirs[0]), lookupPath(t, f, dirs[1])}
			defer hs[0].Close(ctx)
			defer hs[1].Close(ctx)
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			counts[w] = map[string]int{}
			unexpected := func(op string, err error, ok ...syscall.Errno) bool {
				e := dfs.Errno(err)
				if e == 0 {
					counts[w][op]++
					return false
				}
				if !slices.Contains(ok, e) {
					t.Errorf("worker %d: %s: %v", w, op, err)
				}
				counts[w][op+" "+e.Error()]++
				return true
			}
			for range ops {
				d, name := hs[rng.IntN(2)], names[rng.IntN(len(names))]
				switch rng.IntN(3) {
				case 0:
					o, err := f.Open(ctx, d, name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644, dfs.OpenOptions{})
					if !unexpected("create", err, syscall.EEXIST) {
						created[w] = append(created[w], o.OID())
						o.Close(ctx)
					}
				case 1:
					st, err := f.Remove(ctx, d, name, dfs.RemoveOptions{})
					if !unexpected("remove", err, syscall.ENOENT) {
						removed[w] = append(removed[w], st.OID)
					}
				case 2:
					nd, nn := hs[rng.IntN(2)], names[rng.IntN(len(names))]
					st, err := f.Rename(ctx, d, name, nd, nn, dfs.RenameOptions{NoReplace: rng.IntN(2) == 0})
					if !unexpected("rename", err, syscall.ENOENT, syscall.EEXIST) && st.OID != (daos.OID{}) {
						removed[w] = append(removed[w], st.OID)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readerWG.Wait()
	if t.Failed() {
		t.FailNow()
	}

	total := map[string]int{}
	for _, c := range counts {
		for k, v := range c {
			total[k] += v
		}
	}
	t.Logf("outcomes: %v", total)
	live := map[daos.OID]bool{}
	for _, os := range created {
		for _, o := range os {
			if live[o] {
				t.Fatalf("OID %s created twice", o)
			}
			live[o] = true
		}
	}
	for _, os := range removed {
		for _, o := range os {
			if !live[o] {
				t.Fatalf("OID %s removed twice, or never created", o)
			}
			delete(live, o)
		}
	}
	for _, f := range mounts {
		got := map[daos.OID]string{}
		for _, d := range dirs {
			for n, o := range listAll(t, f, d) {
				if other, dup := got[o]; dup {
					t.Fatalf("OID %s is both %s and %s/%s", o, other, d, n)
				}
				got[o] = d + "/" + n
			}
		}
		for o, p := range got {
			if !live[o] {
				t.Errorf("%s (OID %s) is listed, but was removed or never created", p, o)
			}
		}
		for o := range live {
			if _, ok := got[o]; !ok {
				t.Errorf("OID %s was created and not removed, but is not listed", o)
			}
		}
	}
}

// TestConcurrentExclusive: workers on two mounts race to create the same
// name (O_EXCL), make the same directory, and rename the same entry to
// names of their own: in each round exactly one wins.
func TestConcurrentExclusive(t *testing.T) {
	ctx := context.Background()
	fa := newFS(t, dfs.Attr{})
	fb := secondMount(t, fa)
	mounts := []*dfs.FS{fa, fb}
	const workers, rounds = 8, 15
	for _, op := range []string{"create", "mkdir", "rename"} {
		t.Run(op, func(t *testing.T) {
			for r := range rounds {
				name := fmt.Sprintf("%s%d", op, r)
				if op == "rename" {
					o, err := fa.Open(ctx, fa.Root(), name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644, dfs.OpenOptions{})
					if err != nil {
						t.Fatal(err)
					}
					o.Close(ctx)
				}
				var wins atomic.Int32
				var winner atomic.Int32
				start := make(chan struct{})
				var wg sync.WaitGroup
				for w := range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						f := mounts[w%2]
						<-start
						var err error
						lost := syscall.EEXIST
						switch op {
						case "create":
							var o *dfs.Obj
							if o, err = f.Open(ctx, f.Root(), name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644, dfs.OpenOptions{}); err == nil {
								o.Close(ctx)
							}
						case "mkdir":
							err = f.Mkdir(ctx, f.Root(), name, 0o755, dfs.OpenOptions{})
						case "rename":
							_, err = f.Rename(ctx, f.Root(), name, f.Root(), fmt.Sprintf("%s-%d", name, w), dfs.RenameOptions{})
							lost = syscall.ENOENT
						}
						switch dfs.Errno(err) {
						case 0:
							wins.Add(1)
							winner.Store(int32(w))
						case lost:
						default:
							t.Errorf("round %d, worker %d: %v", r, w, err)
						}
					}()
				}
				close(start)
				wg.Wait()
				if n := wins.Load(); n != 1 {
					t.Fatalf("round %d: %d winners", r, n)
				}
				if op == "rename" {
					all := listAll(t, mounts[r%2], "/")
					if _, ok := all[name]; ok {
						t.Fatalf("round %d: %s is still there", r, name)
					}
					for w := range workers {
						_, ok := all[fmt.Sprintf("%s-%d", name, w)]
						if ok != (w == int(winner.Load())) {
							t.Fatalf("round %d: %s-%d listed: %v (winner %d)", r, name, w, ok, winner.Load())
						}
					}
				}
			}
		})
	}
}

// TestAtomicReplace: a writer makes a new file and renames it over
// "target" again and again (how programs replace a file safely); a reader
// on another mount looking "target" up meanwhile always finds a file, one
// of the writer's, and never the temporary name's absence as a gap.
func TestAtomicReplace(t *testing.T) {
	ctx := context.Background()
	fa := newFS(t, dfs.Attr{})
	fb := secondMount(t, fa)
	o := must(fa.Open(ctx, fa.Root(), "target", os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644, dfs.OpenOptions{}))
	made := map[daos.OID]bool{o.OID(): true}
	var mu sync.Mutex
	o.Close(ctx)
	done := make(chan struct{})
	var lookups atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 100000; i++ {
			select {
			case <-done:
				return
			default:
			}
			r, err := fb.Lookup(ctx, fb.Root(), "target")
			if err != nil {
				t.Errorf("lookup %d of the target during replacements: %v", i, err)
				return
			}
			mu.Lock()
			ok := made[r.OID()]
			mu.Unlock()
			r.Close(ctx)
			if !ok {
				t.Errorf("lookup %d found %s, which the writer did not make", i, r.OID())
				return
			}
			lookups.Add(1)
		}
	}()
	for i := 0; i < 200 && !t.Failed(); i++ {
		n := must(fa.Open(ctx, fa.Root(), "tmp", os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644, dfs.OpenOptions{}))
		mu.Lock()
		made[n.OID()] = true
		mu.Unlock()
		n.Close(ctx)
		must(fa.Rename(ctx, fa.Root(), "tmp", fa.Root(), "target", dfs.RenameOptions{}))
	}
	close(done)
	wg.Wait()
	t.Logf("%d lookups during 200 replacements", lookups.Load())
}

// TestCreateWhileRemoving: open(O_CREAT) without O_EXCL never fails with
// ENOENT, however another mount removes the name meanwhile: it opens the
// file someone made, or makes one.
func TestCreateWhileRemoving(t *testing.T) {
	ctx := context.Background()
	fa := newFS(t, dfs.Attr{})
	fb := secondMount(t, fa)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 100000; i++ {
			select {
			case <-done:
				return
			default:
			}
			if _, err := fb.Remove(ctx, fb.Root(), "f", dfs.RemoveOptions{}); err != nil && dfs.Errno(err) != syscall.ENOENT {
				t.Errorf("remove: %v", err)
				return
			}
		}
	}()
	enoent := 0
	for range 500 {
		o, err := fa.Open(ctx, fa.Root(), "f", os.O_CREATE|os.O_RDWR, 0o644, dfs.OpenOptions{})
		if err != nil {
			if dfs.Errno(err) != syscall.ENOENT {
				t.Fatal(err)
			}
			enoent++
			continue
		}
		o.Close(ctx)
	}
	close(done)
	wg.Wait()
	if enoent > 0 {
		t.Fatalf("%d of 500 opens with O_CREAT failed with ENOENT", enoent)
	}
}

// TestChmodDuringRenames: a rename rewrites the whole inode under its new
// name; a chmod through another mount meanwhile must not be lost by it
// (the rename restarts, or the chmod fails): the last chmod that succeeded
// is the mode the file ends with.
func TestChmodDuringRenames(t *testing.T) {
	ctx := context.Background()
	fa := newFS(t, dfs.Attr{})
	fb := secondMount(t, fa)
	must(fa.Open(ctx, fa.Root(), "a", os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600, dfs.OpenOptions{})).Close(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		names := []string{"a", "b"}
		for i := 0; i < 400; i++ {
			select {
			case <-done:
				return
			default:
			}
			if _, err := fa.Rename(ctx, fa.Root(), names[i%2], fa.Root(), names[(i+1)%2], dfs.RenameOptions{}); err != nil {
				t.Errorf("rename %d: %v", i, err)
				return
			}
		}
	}()
	last, ok := uint32(0o600), 0
	for i := 0; i < 300 && !t.Failed(); i++ {
		mode := uint32(0o400 + i%0o400)
		for _, n := range []string{"a", "b"} {
			o, err := fb.Lookup(ctx, fb.Root(), n)
			if err != nil {
				continue // renamed meanwhile
			}
			_, err = o.SetAttr(ctx, dfs.SetAttr{Mode: &mode})
			o.Close(ctx)
			if err == nil {
				last = mode
				ok++
				// whichever name holds it now has this mode: renames
				// meanwhile carried it along
				for _, n := range []string{"a", "b"} {
					if o, err := fb.Lookup(ctx, fb.Root(), n); err == nil {
						st, err := o.Stat(ctx)
						o.Close(ctx)
						if err == nil && st.Mode != dfs.S_IFREG|last {
							t.Fatalf("chmod %d: %s has mode %#o after a chmod to %#o", i, n, st.Mode, last)
						}
					}
				}
				break
			}
			if dfs.Errno(err) != syscall.ENOENT {
				t.Fatalf("chmod: %v", err)
			}
		}
	}
	close(done)
	wg.Wait()
	var st dfs.Stat
	for _, n := range []string{"a", "b"} {
		if o, err := fa.Lookup(ctx, fa.Root(), n); err == nil {
			st = must(o.Stat(ctx))
			o.Close(ctx)
		}
	}
	if st.Mode != dfs.S_IFREG|last {
		t.Fatalf("mode %#o, the last chmod that succeeded (of %d) set %#o", st.Mode, ok, last)
	}
	t.Logf("%d chmods succeeded during the renames", ok)
}
