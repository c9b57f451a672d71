package dfs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/internal/testsys/dfusetest"
	"github.com/godaos/godaos/internal/testsys/inproc"
)

// TestMain starts a one-server system with a pool "tank" owned by the user.
func TestMain(m *testing.M) {
	s, stop, err := inproc.StartMain(false, "tank")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("DAOS_AGENT_DRPC_DIR", filepath.Dir(s.Agent.Socket()))
	code := m.Run()
	stop()
	testsys.RemoveBinaries()
	os.Exit(code)
}

// contSeq names the containers tests make themselves.
var contSeq atomic.Int64

// newFS creates a POSIX container with a namespace formatted with attr,
// and mounts it; everything goes when the test ends.
func newFS(t testing.TB, attr dfs.Attr) *dfs.FS {
	t.Helper()
	label := dfusetest.NewPOSIXCont(t, "tank", attr)
	ctx := context.Background()
	c, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Fini() })
	p, err := c.PoolConnect(ctx, "tank", daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p.ContOpen(ctx, label, daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	f, err := dfs.Mount(ctx, h, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Umount()
		h.Close(ctx)
	})
	return f
}
