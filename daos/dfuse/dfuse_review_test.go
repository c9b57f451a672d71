package dfuse_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/godaos/godaos/daos/dfs"
)

// Review tests: POSIX behaviour of a dfuse mount that a local file system
// gives and programs rely on.

// TestReviewUnlinkedOpenSetattr: ftruncate and fchmod of a file that is
// open but unlinked succeed on a local file system (mkstemp, unlink, then
// ftruncate is a common temporary-file pattern).
func TestReviewUnlinkedOpenSetattr(t *testing.T) {
	d := mount(t, newCont(t, dfs.Attr{}))
	p := filepath.Join(d.dir, "tmp")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	t.Run("ftruncate", func(t *testing.T) {
		if err := f.Truncate(4); err != nil {
			t.Errorf("ftruncate of an unlinked open file: %v", err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Size != 4 {
			t.Errorf("fstat after ftruncate: size %d, %v; want 4", st.Size, err)
		}
	})
	t.Run("fchmod", func(t *testing.T) {
		if err := f.Chmod(0o600); err != nil {
			t.Errorf("fchmod of an unlinked open file: %v", err)
		}
	})
}

// TestReviewOpenWhileUnlinking: a program that opens a file while another
// unlinks it either fails to open it (ENOENT) or reads all of it, as on a
// local file system; it never gets an open file whose data is gone.
func TestReviewOpenWhileUnlinking(t *testing.T) {
	d := mount(t, newCont(t, dfs.Attr{}))
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	bad := 0
	opened := 0
	for i := 0; i < 500 && bad == 0; i++ { // bounded
		p := filepath.Join(d.dir, "f")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		// make sure the kernel has the dentry, so that the open below
		// finds it while the unlink is in flight
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var got []byte
		var openErr, readErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			f, err := os.Open(p)
			if err != nil {
				openErr = err
				return
			}
			defer f.Close()
			got = make([]byte, len(data)+1)
			var n int
			n, readErr = f.ReadAt(got, 0)
			got = got[:n]
		}()
		go func() {
			defer wg.Done()
			if err := os.Remove(p); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		if openErr != nil {
			continue
		}
		opened++
		if !bytes.Equal(got, data) {
			bad++
			t.Errorf("iteration %d: opened while being unlinked, read %d bytes (%d of them zeros; %v), want the %d written", i, len(got), bytes.Count(got, []byte{0}), readErr, len(data))
		}
	}
	t.Logf("%d opens succeeded", opened)
}

// TestReviewFallocateKeepsConcurrentWrite: posix_fallocate only ever
// extends a file: a write another client makes past its range at the same
// time must survive it. (On one mount the kernel serializes the two under
// the inode lock; two mounts are two clients.)
func TestReviewFallocateKeepsConcurrentWrite(t *testing.T) {
	cont := newCont(t, dfs.Attr{})
	d, e := mount(t, cont), mount(t, cont)
	const far = 8 << 20 // chunk 8, past fallocate's range
	block := bytes.Repeat([]byte{0xab}, 4096)
	lost := 0
	for i := 0; i < 100 && lost == 0; i++ { // bounded
		name := fmt.Sprintf("g%d", i)
		f, err := os.OpenFile(filepath.Join(d.dir, name), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		g, err := os.OpenFile(filepath.Join(e.dir, name), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var werr, ferr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, werr = g.WriteAt(block, far)
		}()
		go func() {
			defer wg.Done()
			ferr = unix.Fallocate(int(f.Fd()), 0, 0, 1<<20)
		}()
		wg.Wait()
		if werr != nil || ferr != nil {
			t.Fatalf("write %v, fallocate %v", werr, ferr)
		}
		got := make([]byte, len(block))
		n, _ := g.ReadAt(got, far)
		f.Close()
		g.Close()
		if n != len(block) || !bytes.Equal(got, block) {
			lost++
			// what the servers hold, read through DFS, not a kernel cache
			size, direct := readDirect(t, cont, "/"+name, far, len(block))
			t.Errorf("iteration %d: an acknowledged write at %d reads back %d bytes through the mount after a concurrent posix_fallocate(0, 1 MiB); through DFS the file has %d bytes and holds the block: %v",
				i, far, n, size, bytes.Equal(direct, block))
		}
	}
}

// TestReviewCloseToOpen: DataCache "otoc" (the default) promises that a
// program opening a file after another client closed it sees that
// client's data. A file that grew on the other client must read whole.
//
// Close-to-open of the data is the default ("otoc"); of the size too with
// --attr-timeout 0 (docs/user.md, "Caching"): the kernel keeps the size it
// cached for the attribute timeout.
func TestReviewCloseToOpen(t *testing.T) {
	cont := newCont(t, dfs.Attr{})
	a, b := mount(t, cont, "--attr-timeout", "0"), mount(t, cont)
	p := filepath.Join(a.dir, "log")
	if err := os.WriteFile(p, []byte("first;"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil { // a's kernel knows the size now
		t.Fatal(err)
	}
	g, err := os.OpenFile(filepath.Join(b.dir, "log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p) // opened after the other client's close
	if string(got) != "first;second" {
		t.Errorf("open after the other client's close reads %q (%v), want %q (within the 1 s attribute timeout the kernel keeps the old size)", got, err, "first;second")
	}
}

// TestReviewFstatAfterRemoteRename: fstat of an open file works whatever
// its name became on another client (log rotation renames files that
// programs on other nodes hold open). With --disable-caching every fstat
// asks dfuse; with the default it does once the 1 s attribute cache ends.
func TestReviewFstatAfterRemoteRename(t *testing.T) {
	cont := newCont(t, dfs.Attr{})
	a, b := mount(t, cont, "--disable-caching"), mount(t, cont)
	f, err := os.Create(filepath.Join(a.dir, "app.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("line\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(b.dir, "app.log"), filepath.Join(b.dir, "app.log.1")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("more\n")); err != nil {
		t.Errorf("write after the other client's rename: %v", err)
	}
	if st, err := f.Stat(); err != nil || st.Size() != 10 {
		t.Errorf("fstat after the other client's rename: %v, %v; want size 10", st, err)
	}
	if err := f.Sync(); err != nil {
		t.Errorf("fsync after the other client's rename: %v", err)
	}
}

// TestReviewFlockAndFcntlIndependent: on Linux flock(2) and fcntl(2) locks
// do not interact: a process holding flock(LOCK_EX) on a file can still
// take an fcntl write lock on it (and another process's fcntl lock does
// not block its flock).
func TestReviewFlockAndFcntlIndependent(t *testing.T) {
	d := mount(t, newCont(t, dfs.Attr{}))
	f, err := os.Create(filepath.Join(d.dir, "l"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		t.Errorf("fcntl F_WRLCK while the same process holds flock(LOCK_EX): %v (Linux: granted)", err)
	}
}

// TestReviewRmdirOfReplacedName: rmdir removes directories only. Another
// client replaced the directory d with a file d that this mount's kernel
// does not know of yet (its entry for d is still valid): rmdir d must fail
// (ENOTDIR), not remove the other client's file.
func TestReviewRmdirOfReplacedName(t *testing.T) {
	cont := newCont(t, dfs.Attr{})
	a, b := mount(t, cont, "--entry-timeout", "1h", "--attr-timeout", "1h"), mount(t, cont)
	if err := os.Mkdir(filepath.Join(a.dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(b.dir, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "d"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := unix.Rmdir(filepath.Join(a.dir, "d")) // a's kernel has d as a directory
	got, rerr := os.ReadFile(filepath.Join(b.dir, "d"))
	if string(got) != "precious" {
		t.Errorf("rmdir d on one mount (%v) removed the other client's file d: read %q, %v", err, got, rerr)
	}
}

// TestReviewUnlinkOfRenamedOpenFile: this mount has file x open; another
// client renames x to y and creates a new x. Unlinking x here (the kernel
// does not look x up again for an unlink while its entry is valid) removes
// the new x; it must not mark the open file, now y, unlinked and punch its
// data at the last close. (Found: dfuse's Unlink takes the node the kernel
// knows by that name for the object removed.)
func TestReviewUnlinkOfRenamedOpenFile(t *testing.T) {
	got, direct := replaceRenamedOpenFile(t, func(dir, x string) error { return os.Remove(x) })
	if got != "precious" || direct != "precious" {
		t.Errorf("after unlink of x on one mount, y (the open file the other client renamed) reads %q through the other mount, %q through DFS; want \"precious\"", got, direct)
	}
}

// TestReviewSetgidDirectory: in a set-group-ID directory (the usual
// project directory of a shared file system) new files take the
// directory's group, and new directories also the set-group-ID bit
// (POSIX, Linux's inode_init_owner; a FUSE file system does it itself).
func TestReviewSetgidDirectory(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give the directory another group")
	}
	const group = 65534
	d := mount(t, newCont(t, dfs.Attr{}))
	proj := filepath.Join(d.dir, "proj")
	if err := os.Mkdir(proj, 0o775); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(proj, 0, group); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(proj, 0o2775); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proj, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(proj, "sub"), 0o775); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(proj, "f"), &st); err != nil || st.Gid != group {
		t.Errorf("a file created in a set-group-ID directory of group %d has group %d (%v)", group, st.Gid, err)
	}
	if err := unix.Stat(filepath.Join(proj, "sub"), &st); err != nil || st.Gid != group || st.Mode&unix.S_ISGID == 0 {
		t.Errorf("a directory created in a set-group-ID directory of group %d: group %d, mode %o (%v); want the group and the set-group-ID bit", group, st.Gid, st.Mode, err)
	}
}

// TestReviewCreateWhileOthersCreateAndRemove: open(O_CREAT) without O_EXCL
// never fails with ENOENT, whatever other clients do with the name (the DFS
// layer retries for exactly this: TestCreateWhileRemoving; dfuse's Create
// must not undo it by opening without O_CREAT after EEXIST).
func TestReviewCreateWhileOthersCreateAndRemove(t *testing.T) {
	cont := newCont(t, dfs.Attr{})
	a, b := mount(t, cont, "--disable-caching"), mount(t, cont, "--disable-caching")
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the other client: create and remove the name, bounded
		defer wg.Done()
		p := filepath.Join(b.dir, "f")
		for i := 0; i < 100000 && !stop.Load(); i++ {
			if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				f.Close()
			}
			os.Remove(p)
		}
	}()
	enoent, estale := 0, 0
	p := filepath.Join(a.dir, "f")
	for i := 0; i < 3000; i++ { // bounded
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			switch {
			case errors.Is(err, syscall.ENOENT):
				enoent++
				continue
			case errors.Is(err, syscall.ESTALE):
				// the kernel walked the path again and lost the race a
				// second time, as over NFS: the caller may retry
				estale++
				continue
			}
			t.Fatal(err)
		}
		f.Close()
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d of 3000 open(O_CREAT) failed with ESTALE", estale)
	if enoent > 0 {
		t.Errorf("%d of 3000 open(O_CREAT) failed with ENOENT", enoent)
	}
}
