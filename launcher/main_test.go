package launcher

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The binaries the tests run, built once into one directory (so a launcher
// finds daos_server next to itself) that TestMain removes.
var bins struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

func buildBins(t *testing.T) string {
	t.Helper()
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "godaos-launcher-test")
		if bins.err != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", bins.dir+"/",
			"github.com/godaos/godaos/cmd/daos_server", "github.com/godaos/godaos/cmd/launcher").CombinedOutput()
		if err != nil {
			bins.err = fmt.Errorf("go build daos_server launcher: %v\n%s", err, out)
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.dir
}

// daosServer is cmd/daos_server, built for the tests of this package.
func daosServer(t *testing.T) string { return filepath.Join(buildBins(t), "daos_server") }

// launcherBin is cmd/launcher, built for the tests of this package.
func launcherBin(t *testing.T) string { return filepath.Join(buildBins(t), "launcher") }
