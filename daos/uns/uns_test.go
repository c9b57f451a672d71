package uns

import (
	"path/filepath"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Link
		ok   bool
	}{
		{"DAOS.POSIX://tank/results", Link{"POSIX", "tank", "results"}, true},
		{"DAOS.HDF5://0b7e2e9c-1111-2222-3333-444455556666/c", Link{"HDF5", "0b7e2e9c-1111-2222-3333-444455556666", "c"}, true},
		{"DAOS.POSIX://tank", Link{}, false},
		{"DAOS.POSIX://tank/a/b", Link{}, false},
		{"POSIX://tank/a", Link{}, false},
		{"DAOS.://tank/a", Link{}, false},
		{"", Link{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("Parse(%q) = %v, %v", tc.in, got, err)
			}
			if tc.ok && got.String() != tc.in {
				t.Fatalf("String() = %q", got.String())
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("DAOS.POSIX://tank/results")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := Parse(s)
		if err == nil {
			if back, err := Parse(l.String()); err != nil || back != l {
				t.Fatalf("%q: round trip %v %v", s, back, err)
			}
		}
	})
}

func TestCreateResolve(t *testing.T) {
	p := filepath.Join(t.TempDir(), "link")
	l := Link{"POSIX", "tank", "c1"}
	if err := Create(p, l); err != nil {
		t.Fatalf("Create: %v (the test directory must support user xattrs)", err)
	}
	if got, err := Resolve(p); err != nil || got != l {
		t.Fatalf("Resolve = %v, %v", got, err)
	}
	if err := Create(p, l); !daoserr.Is(err, daoserr.Exist) {
		t.Fatalf("second Create: %v", err)
	}
	if _, err := Resolve(t.TempDir()); !daoserr.Is(err, daoserr.Nonexist) {
		t.Fatalf("plain dir: %v", err)
	}
	if err := Destroy(p); err != nil {
		t.Fatal(err)
	}
}
