package dfs_test

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
)

// Behaviour pinned by review (these failed before the fixes that name
// them): a handle's xattrs are its object's, a punch keeps another
// client's write past the end, Format refuses a class the pool cannot take.

// TestReviewXattrAfterRemoteRename: a handle's xattrs are its object's.
// Another client renames the file away and creates a new one under its old
// name: the handle must not read (or list) the new file's xattrs. SetXattr
// checks the entry still names the handle's object (current); GetXattr and
// ListXattr do not.
func TestReviewXattrAfterRemoteRename(t *testing.T) {
	ctx := context.Background()
	f1 := newFS(t, dfs.Attr{})
	f2, err := dfs.Mount(ctx, f1.Cont(), false) // a second client of the namespace
	if err != nil {
		t.Fatal(err)
	}
	o1, err := f1.Open(ctx, f1.Root(), "a", os.O_CREATE|os.O_RDWR, 0o644, dfs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o1.Close(ctx)
	if _, err := f2.Rename(ctx, f2.Root(), "a", f2.Root(), "b", dfs.RenameOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := f2.Open(ctx, f2.Root(), "a", os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644, dfs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.SetXattr(ctx, "user.who", []byte("new a"), 0); err != nil {
		t.Fatal(err)
	}
	n.Close(ctx)
	if v, err := o1.GetXattr(ctx, "user.who"); err == nil {
		t.Errorf("GetXattr of the renamed file's handle: %q, the xattr of the new file that took its old name", v)
	}
	if names, err := o1.ListXattr(ctx); err == nil && len(names) > 0 {
		t.Errorf("ListXattr of the renamed file's handle: %v, the new file's", names)
	}
	// what SetXattr does (the behaviour the two above should match)
	if err := o1.SetXattr(ctx, "user.x", []byte("v"), 0); dfs.Errno(err) != syscall.ENOENT {
		t.Logf("SetXattr: %v", err)
	}
}

// TestReviewPunchRangeKeepsConcurrentWrite: punching a file's last bytes
// (fallocate PUNCH_HOLE|KEEP_SIZE) keeps the size by setting it again; a
// write another client makes past the end meanwhile must survive.
func TestReviewPunchRangeKeepsConcurrentWrite(t *testing.T) {
	ctx := context.Background()
	f1 := newFS(t, dfs.Attr{})
	f2, err := dfs.Mount(ctx, f1.Cont(), false)
	if err != nil {
		t.Fatal(err)
	}
	const far = 8 << 20
	block := []byte("acknowledged")
	for i := 0; i < 100; i++ { // bounded
		name := fmt.Sprintf("p%d", i)
		a, err := f1.Open(ctx, f1.Root(), name, os.O_CREATE|os.O_RDWR, 0o644, dfs.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Write(ctx, make([]byte, 1<<20), 0); err != nil {
			t.Fatal(err)
		}
		b, err := f2.Open(ctx, f2.Root(), name, os.O_RDWR, 0, dfs.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- b.Write(ctx, block, far) }()
		perr := a.PunchRange(ctx, 1<<19, 1<<19)
		if err := <-done; err != nil || perr != nil {
			t.Fatalf("write %v, punch %v", err, perr)
		}
		got := make([]byte, len(block))
		m, err := a.Read(ctx, got, far)
		a.Close(ctx)
		b.Close(ctx)
		if err != nil || string(got[:m]) != string(block) {
			t.Fatalf("iteration %d: a write at %d acknowledged during a punch of [512 KiB, 1 MiB) reads back %q (%v)", i, far, got[:m], err)
		}
	}
}

// TestReviewFormatChecksClasses: a file or directory class the container
// cannot hold (too weak for its rd_fac, or wider than the pool) is refused
// when the namespace is created (as dfs_cont_create checks it), not by
// every later create with EINVAL.
func TestReviewFormatChecksClasses(t *testing.T) {
	ctx := context.Background()
	f := newFS(t, dfs.Attr{}) // for its pool, one server
	p := f.Cont().Pool
	for _, tc := range []struct {
		name  string
		props map[string]string
		attr  func(daos.ClassID) dfs.Attr
		class string
	}{
		{"file class wider than the pool", nil, func(c daos.ClassID) dfs.Attr { return dfs.Attr{FileClass: c} }, "RP_2G1"},
		{"directory class wider than the pool", nil, func(c daos.ClassID) dfs.Attr { return dfs.Attr{DirClass: c} }, "RP_2G1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cls, err := daos.ParseClass(tc.class)
			if err != nil {
				t.Fatal(err)
			}
			label := fmt.Sprintf("review%d", contSeq.Add(1))
			if _, err := p.ContCreate(ctx, daos.ContCreateOptions{Label: label, Type: "POSIX", Props: tc.props}); err != nil {
				t.Fatal(err)
			}
			defer p.ContDestroy(ctx, label)
			h, err := p.ContOpen(ctx, label, daos.RW)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close(ctx)
			ferr := dfs.Format(ctx, h, tc.attr(cls))
			if ferr == nil {
				m, err := dfs.Mount(ctx, h, false)
				if err != nil {
					t.Fatal(err)
				}
				_, cerr := m.Open(ctx, m.Root(), "f", os.O_CREATE|os.O_RDWR, 0o644, dfs.OpenOptions{})
				t.Errorf("Format accepted %s (%v); then every create fails: %v", tc.class, tc.props, cerr)
			}
		})
	}
}
