package dfuse_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/internal/testsys/dfusetest"
	"github.com/godaos/godaos/internal/testsys/inproc"
	"github.com/godaos/godaos/internal/testsys/posixload"
)

// TestMain starts a one-server system with a pool "tank" owned by the user;
// the tests mount its containers with the dfuse command.
func TestMain(m *testing.M) {
	s, stop, err := inproc.StartMain(false, "tank")
	sys = s
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("DAOS_AGENT_DRPC_DIR", filepath.Dir(s.Agent.Socket()))
	code := m.Run()
	stop()
	testsys.RemoveBinaries()
	posixload.Cleanup()
	os.Exit(code)
}

// sys is the system TestMain started, for tests that need a pool of their own.
var sys *inproc.System

// newCont creates a POSIX container with a DFS namespace in pool tank and
// returns its label; the container is destroyed when the test ends (after
// its mounts, which are stopped first).
func newCont(t testing.TB, attr dfs.Attr) string {
	t.Helper()
	return newContIn(t, "tank", attr)
}

func newContIn(t testing.TB, pool string, attr dfs.Attr) string {
	t.Helper()
	return dfusetest.NewPOSIXCont(t, pool, attr)
}

// dfuseProc is a running dfuse command, mounted on dir.
type dfuseProc struct {
	*dfusetest.Proc
	dir string
}

// mount runs `dfuse -f` on a new directory for cont and waits (bounded)
// until the mount is there; it is unmounted when the test ends.
func mount(t testing.TB, cont string, extra ...string) *dfuseProc {
	t.Helper()
	return mountPool(t, "tank", cont, extra...)
}

func mountPool(t testing.TB, pool, cont string, extra ...string) *dfuseProc {
	t.Helper()
	return mountWith(t, nil, pool, cont, extra...)
}

// mountWith is mount with env added to dfuse's environment (e.g. another
// system's DAOS_AGENT_DRPC_DIR).
func mountWith(t testing.TB, env []string, pool, cont string, extra ...string) *dfuseProc {
	t.Helper()
	p := dfusetest.Mount(t, pool, cont, env, extra...)
	return &dfuseProc{Proc: p, dir: p.Dir}
}
