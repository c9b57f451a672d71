package cli

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

func TestRankList(t *testing.T) {
	for in, want := range map[string]string{"": "[]", "0": "[0]", "0,1,2": "[0-2]", "5,0,1,2,7,8": "[0-2,5,7-8]"} {
		var r []uint32
		for _, f := range strings.Split(in, ",") {
			if f != "" {
				var n uint32
				fmt.Sscan(f, &n)
				r = append(r, n)
			}
		}
		if got := RankList(r); got != want {
			t.Errorf("RankList(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestEnvelope(t *testing.T) {
	var b bytes.Buffer
	Envelope(&b, map[string]int{"n": 1}, nil)
	if !strings.Contains(b.String(), `"status": 0`) || !strings.Contains(b.String(), `"n": 1`) {
		t.Errorf("success: %s", b.String())
	}
	b.Reset()
	Envelope(&b, nil, daoserr.Wrap(daoserr.NoPerm, errors.New("x"), "pool tank"))
	if !strings.Contains(b.String(), `"status": -1001`) || !strings.Contains(b.String(), "DER_NO_PERM: pool tank") {
		t.Errorf("failure: %s", b.String())
	}
}
