package dfs_test

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/godaos/godaos/daos/dfs"
)

// Review tests of the namespace.

// TestReviewCreateInRemovedDirectory: a client holds a directory open (a
// cwd, a FUSE inode) that another client removes. Creating in it must fail
// (ENOENT, as Linux answers for a removed cwd), not succeed in an object no
// path reaches (the file's data lost to its writer). The same holds, racily,
// for an rmdir concurrent with a create inside.
func TestReviewCreateInRemovedDirectory(t *testing.T) {
	ctx := context.Background()
	fa := newFS(t, dfs.Attr{})
	fb, err := dfs.Mount(ctx, fa.Cont(), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := fa.Mkdir(ctx, fa.Root(), "d", 0o755, dfs.OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	d, err := fb.Lookup(ctx, fb.Root(), "d")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	if _, err := fa.Remove(ctx, fa.Root(), "d", dfs.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"create", "mkdir"} {
		var err error
		switch op {
		case "create":
			var o *dfs.Obj
			if o, err = fb.Open(ctx, d, "f", os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644, dfs.OpenOptions{}); err == nil {
				o.Close(ctx)
			}
		case "mkdir":
			err = fb.Mkdir(ctx, d, "sub", 0o755, dfs.OpenOptions{})
		}
		if dfs.Errno(err) != syscall.ENOENT {
			t.Errorf("%s in a directory another client removed: %v, want ENOENT (the new entry is unreachable)", op, err)
		}
	}
}
