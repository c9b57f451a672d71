package dfuse_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/godaos/godaos/daos/dfs"
)

func TestMountBasics(t *testing.T) {
	d := mount(t, newCont(t, dfs.Attr{}))
	p := func(s string) string { return filepath.Join(d.dir, s) }

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
