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

func TestRanks(t *testing.T) {
	for in, want := range map[string]string{"0,1,2": "[0 1 2]", "0-3,7": "[0 1 2 3 7]", "[2-3]": "[2 3]", "": "[]"} {
		var r Ranks
		if err := r.UnmarshalText([]byte(in)); err != nil || fmt.Sprint([]uint32(r)) != want {
			t.Errorf("%q: %v %v, want %s", in, r, err, want)
		}
	}
	for _, bad := range []string{"a", "3-1", "1-", "-1", "0-99999999"} {
		var r Ranks
		if err := r.UnmarshalText([]byte(bad)); !daoserr.Is(err, daoserr.Inval) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
