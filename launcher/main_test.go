package launcher

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/godaos/godaos/internal/testsys"
)

// The binaries the tests run, built once into one directory (so a launcher
// finds daos_server next to itself) that TestMain removes.
func TestMain(m *testing.M) {
	code := m.Run()
	testsys.RemoveBinaries()
	os.Exit(code)
}

func buildBins(t *testing.T) string {
	t.Helper()
	return testsys.Binaries(t, testsys.Cmd("daos_server"), testsys.Cmd("launcher"))
}

// daosServer is cmd/daos_server, built for the tests of this package.
func daosServer(t *testing.T) string { return filepath.Join(buildBins(t), "daos_server") }

// launcherBin is cmd/launcher, built for the tests of this package.
func launcherBin(t *testing.T) string { return filepath.Join(buildBins(t), "launcher") }
