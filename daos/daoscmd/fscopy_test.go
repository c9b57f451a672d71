package daoscmd

import (
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/testsys/inproc"
)

// TestFsCopy runs daos fs copy and daos cont clone as a user does: into a
// container, again (nothing to do), back out with --verify, through a UNS
// directory, clone, and mistakes.
func TestFsCopy(t *testing.T) {
	s := inproc.Start(t, false)
	t.Setenv("DAOS_AGENT_DRPC_DIR", filepath.Dir(s.Agent.Socket()))
	u, _ := user.Current()
	s.CreatePool(t, "tank", u.Username)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "data")
	os.MkdirAll(filepath.Join(src, "sub", "deeper"), 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha\n"), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "b.bin"), make([]byte, 3<<20), 0o600)
	os.WriteFile(filepath.Join(src, "sub", "deeper", "c"), []byte("gamma"), 0o640)
	os.Symlink("sub/b.bin", filepath.Join(src, "link"))
	out, out2, out3 := filepath.Join(tmp, "out"), filepath.Join(tmp, "out2"), filepath.Join(tmp, "out3")
	unsDir := filepath.Join(tmp, "uns")

	steps := []struct {
		args []string
		rc   int
		want []string // in stdout (rc 0) or stderr
	}{
		{[]string{"cont", "create", "tank", "fs", "--type", "POSIX"}, 0, []string{"Successfully created container fs"}},
		{[]string{"fs", "copy", "--src", src + "/", "--dst", "daos://tank/fs"}, 0, []string{"Successfully copied to DAOS: daos://tank/fs",
			"Directories: 3", "Files:       3", "Links:       1", "Data:        3.0 MiB"}},
		{[]string{"filesystem", "copy", "--src", src + "/", "--dst", "daos://tank/fs"}, 0, []string{"Files:       0", "Skipped:     3 (already up to date)", "Data:        0 B"}},
		{[]string{"fs", "copy", "--src", src, "--dst", "daos://tank/fs/into"}, 0, []string{"Successfully copied to DAOS: daos://tank/fs/into/data", "Files:       3"}},
		{[]string{"fs", "copy", "--src", "daos://tank/fs", "--dst", out, "--verify"}, 0, []string{"Successfully copied to POSIX: " + out,
			"Files:       6", "Verified:    6 files (crc32c)"}},
		{[]string{"fs", "copy", "--src", "daos://tank/fs/into/data/sub/deeper/c", "--dst", out2}, 0, []string{"Successfully copied to POSIX: " + out2 + "\n", "Files:       1"}}, // a file: out2 is its copy
		{[]string{"fs", "copy", "--src", src + "/", "--dst", "daos://tank/fs", "--force", "--workers", "2"}, 0, []string{"Files:       3", "Links:       1"}},
		// UNS
		{[]string{"cont", "create", "tank", "fsu", "--type", "POSIX", "--path", unsDir}, 0, []string{"Successfully created container fsu"}},
		{[]string{"fs", "copy", "--src", src, "--dst", unsDir}, 0, []string{"Successfully copied to DAOS: " + unsDir + "/data", "Files:       3"}},
		{[]string{"fs", "copy", "--src", unsDir + "/data/sub", "--dst", out3}, 0, []string{"Successfully copied to POSIX: " + out3 + "/sub", "Files:       2"}},
		// clone
		{[]string{"cont", "clone", "--src", "daos://tank/fs", "--dst", "daos://tank/fs2"}, 0, []string{"Successfully created container fs2",
			"Container Type : POSIX", "Successfully copied to destination container tank/fs2"}},
		{[]string{"cont", "clone", "--src", "daos://tank/fs", "--dst", "daos://tank/fs2"}, 1, []string{"DER_EXIST", "already exists"}},
		{[]string{"fs", "copy", "--src", "daos://tank/fs2/into/", "--dst", filepath.Join(tmp, "fromclone"), "--verify"}, 0, []string{"Files:       3", "Verified:    3 files"}},
		// mistakes
		{[]string{"fs", "copy", "--src", "daos://tank/nosuch", "--dst", out}, 1, []string{"DER_NONEXIST", "container nosuch does not exist in pool tank"}},
		{[]string{"fs", "copy", "--src", src, "--dst", "daos://tank/nosuch"}, 1, []string{"DER_NONEXIST", "daos cont create tank nosuch --type POSIX"}},
		{[]string{"fs", "copy", "--src", filepath.Join(tmp, "nosuch"), "--dst", "daos://tank/fs"}, 1, []string{"DER_NONEXIST", "does not exist"}},
		{[]string{"fs", "copy", "--src", "daos://tank/fs/into", "--dst", "daos://tank/fs/into/data/again"}, 1, []string{"DER_INVAL", "inside the source"}},
		{[]string{"fs", "copy", "--src", src, "--dst", out}, 1, []string{"DER_INVAL", "POSIX paths"}},
		{[]string{"fs", "copy", "--src", src}, 2, []string{"missing flags: --dst"}},
		{[]string{"cont", "destroy", "tank", "fsu"}, 0, []string{"Successfully destroyed container fsu"}},
		{[]string{"fs", "copy", "--src", unsDir, "--dst", out}, 1, []string{"DER_NONEXIST", "UNS directory " + unsDir + " points at container", "rmdir " + unsDir}},
	}
	for _, st := range steps {
		t.Run(strings.Join(st.args, " "), func(t *testing.T) {
			stdout, stderr, rc := run(t, st.args...)
			if rc != st.rc {
				t.Fatalf("rc %d, want %d\nstdout: %s\nstderr: %s", rc, st.rc, stdout, stderr)
			}
			got := stdout
			if rc != 0 {
				got = stderr
			}
			for _, w := range st.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
		})
	}
	for _, p := range []string{"a.txt", "sub/b.bin", "sub/deeper/c", "into/data/a.txt"} {
		a, _ := os.ReadFile(filepath.Join(src, strings.TrimPrefix(p, "into/data/")))
		b, err := os.ReadFile(filepath.Join(out, p))
		if err != nil || string(a) != string(b) {
			t.Errorf("%s: copied wrong (%v)", p, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(out, "link")); err != nil || l != "sub/b.bin" {
		t.Errorf("link: %q %v", l, err)
	}

	stdout, _, rc := run(t, "-j", "fs", "copy", "--src", src+"/", "--dst", "daos://tank/fs")
	var env struct {
		Response struct {
			Dst     string `json:"dst"`
			DstType string `json:"dst_type"`
			Files   int    `json:"files"`
			Skipped int    `json:"skipped"`
		} `json:"response"`
		Status int `json:"status"`
	}
	if err := json.Unmarshal([]byte(stdout), &env); err != nil || rc != 0 || env.Response.Skipped != 3 || env.Response.DstType != "DAOS" || env.Response.Dst != "daos://tank/fs" {
		t.Fatalf("json: rc %d %v %s", rc, err, stdout)
	}
	stdout, _, rc = run(t, "-j", "cont", "clone", "--src", "daos://tank/fs", "--dst", "daos://tank")
	var cenv struct {
		Response struct {
			Cont    string `json:"container"`
			Objects int    `json:"objects"`
		} `json:"response"`
	}
	if err := json.Unmarshal([]byte(stdout), &cenv); err != nil || rc != 0 || cenv.Response.Objects < 10 || cenv.Response.Cont == "" {
		t.Fatalf("json clone: rc %d %v %s", rc, err, stdout)
	}
}
