package launcher

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

func TestExpandHostlist(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"node1", []string{"node1"}},
		{"a,b", []string{"a", "b"}},
		{"a b\tc", []string{"a", "b", "c"}},
		{"a,,b,", []string{"a", "b"}},
		{"node[1-4,7]", []string{"node1", "node2", "node3", "node4", "node7"}},
		{"node[1-3]", []string{"node1", "node2", "node3"}},
		{"node[01-03,7]", []string{"node01", "node02", "node03", "node7"}},
		{"node[098-101]", []string{"node098", "node099", "node100", "node101"}},
		{"node[8-10]", []string{"node8", "node9", "node10"}},
		{"n[1-2],m,x[5]", []string{"n1", "n2", "m", "x5"}},
		{"r[1-2]n[1-2]", []string{"r1n1", "r1n2", "r2n1", "r2n2"}},
		{"n[1-2]-ib", []string{"n1-ib", "n2-ib"}},
		{"[1-2]", []string{"1", "2"}},
		{"n[1,1]", []string{"n1", "n1"}}, // kept, as scontrol show hostnames keeps them
		{"host-1.example.com", []string{"host-1.example.com"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ExpandHostlist(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestExpandHostlistErrors(t *testing.T) {
	for _, tc := range []struct{ in, msg string }{
		{"", "names no host"},
		{" , ", "names no host"},
		{"n[3-1]", "runs backwards"},
		{"n[1-2", "'[' without ']'"},
		{"n1-2]", "']' without '['"},
		{"n[[1]]", "'[' without ']'"},
		{"x[a-b]", `"a-b" is not N or N-M`},
		{"n[]", `"" is not N or N-M`},
		{"n[1-]", `"1-" is not N or N-M`},
		{"n[1-2-3]", `is not N or N-M`},
		{"n[0-99999999]", "more than 65536 hosts"},
		{"a[1-300]b[1-300]", "more than 65536 hosts"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ExpandHostlist(tc.in)
			if err == nil {
				t.Fatalf("expanded to %d hosts, want an error", len(got))
			}
			if !errors.Is(err, daoserr.Inval) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q, want DER_INVAL with %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}
