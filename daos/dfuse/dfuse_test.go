package dfuse_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/daos/uns"
	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/internal/testsys/dfusetest"
)

func TestMountBasics(t *testing.T) {
	d := mount(t, newCont(t, dfs.Attr{}))
	p := func(s string) string { return filepath.Join(d.dir, s) }
	if os.Getuid() == 0 { // dfuse raises the mount's read-ahead to a chunk (sysfs: root only)
		var st syscall.Stat_t
		if err := syscall.Stat(d.dir, &st); err != nil {
			t.Fatal(err)
		}
		ra, err := os.ReadFile(fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev)))
		if err != nil || strings.TrimSpace(string(ra)) != "1024" {
			t.Errorf("read_ahead_kb %q (%v), want 1024", ra, err)
		}
	}

	if err := os.MkdirAll(p("a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB: several chunks
	if err := os.WriteFile(p("a/b/f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p("a/b/f"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	st, err := os.Stat(p("a/b/f"))
	if err != nil || st.Size() != int64(len(data)) || st.Mode().Perm() != 0o644 {
		t.Fatalf("stat %v %v", st, err)
	}
	if err := os.Symlink("b/f", p("a/l")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(p("a/l")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("through symlink: %v", err)
	}
	if err := os.Rename(p("a/b/f"), p("g")); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"a", "g"}) && !slices.Equal(names, []string{"g", "a"}) {
		t.Fatalf("readdir %v", names)
	}
	if err := os.Link(p("g"), p("h")); !errors.Is(err, syscall.ENOTSUP) {
		t.Fatalf("hard link: %v", err)
	}
	if err := os.Remove(p("a")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("rmdir non-empty: %v", err)
	}
	if err := os.RemoveAll(p("a")); err != nil {
		t.Fatal(err)
	}
}

// TestUNSAndDetach: dfuse --path follows a UNS directory, detaches once
// mounted (no --foreground), and exits when unmounted; a UNS directory whose
// container is gone is refused with the reason.
func TestUNSAndDetach(t *testing.T) {
	cont := newCont(t, dfs.Attr{})
	link := filepath.Join(t.TempDir(), "link")
	if err := uns.Create(link, uns.Link{Type: "POSIX", Pool: "tank", Cont: cont}); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(testsys.Binaries(t, testsys.Cmd("dfuse")), "dfuse")
	mnt := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command(bin, "-m", mnt, "--path", link).CombinedOutput(); err != nil {
		t.Fatalf("dfuse --path: %v\n%s", err, out)
	}
	defer exec.Command("fusermount3", "-u", "-z", mnt).Run()
	if !dfusetest.Mounted(mnt) {
		t.Fatal("dfuse returned but nothing is mounted")
	}
	if err := os.WriteFile(filepath.Join(mnt, "x"), []byte("via uns"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err != nil {
		t.Fatalf("fusermount3 -u: %v %s", err, out)
	}

	gone := filepath.Join(t.TempDir(), "gone")
	if err := uns.Create(gone, uns.Link{Type: "POSIX", Pool: "tank", Cont: "no-such-cont"}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-m", mnt, "--path", gone).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "DER_NONEXIST") {
		t.Fatalf("dfuse --path to a destroyed container: %v\n%s", err, out)
	}
}

// TestMultiUser: with --multi-user every user of the node uses the mount,
// what they create is theirs, and the kernel enforces the modes and owners
// DFS stores.
func TestMultiUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: a --multi-user mount and commands run as another user")
	}
	d := mount(t, newCont(t, dfs.Attr{}), "--multi-user")
	// the test's directories are the test user's alone: let nobody reach the mount
	for p := filepath.Dir(d.dir); p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	shared := filepath.Join(d.dir, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(shared, 0o1777); err != nil { // os.Chmod takes os.ModeSticky, not 01000
		t.Fatal(err)
	}
	rootOnly := filepath.Join(shared, "root-only")
	if err := os.WriteFile(rootOnly, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	as := func(script string) (string, error) {
		cmd := exec.Command("sh", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := as("echo mine > " + shared + "/theirs"); err != nil {
		t.Fatalf("nobody creating in a 1777 directory: %v %s", err, out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(shared, "theirs"), &st); err != nil || st.Uid != nobody || st.Gid != nobody {
		t.Fatalf("nobody's file: uid %d gid %d, %v", st.Uid, st.Gid, err)
	}
	if out, err := as("cat " + rootOnly); err == nil || !strings.Contains(out, "Permission denied") {
		t.Fatalf("nobody reading root's 0600 file: %v %s", err, out)
	}
	if out, err := as("rm -f " + rootOnly); err == nil {
		t.Fatalf("nobody removing root's file from a sticky directory: %s", out)
	}
	if err := os.Chown(rootOnly, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if out, err := as("cat " + rootOnly); err != nil || out != "secret" {
		t.Fatalf("nobody reading the file it now owns: %v %q", err, out)
	}
}
