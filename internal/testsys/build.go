package testsys

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Tests that run real processes build the commands once per test process.
var builds struct {
	mu   sync.Mutex
	dirs map[string]string // by the package list
	all  []string
}

// Binaries builds the commands named by import path (or "." for the test's
// own package) into a directory of their own, once per test process, and
// returns it. The directory is readable by every user, so a test can run the
// binaries as another one. A TestMain removes it with RemoveBinaries.
func Binaries(tb testing.TB, pkgs ...string) string {
	tb.Helper()
	key := strings.Join(pkgs, " ")
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if dir, ok := builds.dirs[key]; ok {
		return dir
	}
	dir, err := os.MkdirTemp("", "godaos-test-bin")
	if err != nil {
		tb.Fatal(err)
	}
	builds.all = append(builds.all, dir)
	os.Chmod(dir, 0o755)
	out, err := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("go build %s: %v\n%s", key, err, out)
	}
	if builds.dirs == nil {
		builds.dirs = map[string]string{}
	}
	builds.dirs[key] = dir
	return dir
}

// RemoveBinaries removes what Binaries built (call it from TestMain after
// m.Run).
func RemoveBinaries() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	for _, d := range builds.all {
		os.RemoveAll(d)
	}
	builds.all, builds.dirs = nil, nil
}

// Cmd is the import path of one of GoDAOS's commands, for Binaries.
func Cmd(name string) string { return fmt.Sprintf("github.com/godaos/godaos/cmd/%s", name) }
