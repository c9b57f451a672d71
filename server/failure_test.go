package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

// failure names the failed ranks in order and the first one's error; it
// claims nothing about the other ranks unless its caller says what happened.
func TestFailure(t *testing.T) {
	failed := map[uint32]error{
		7: daoserr.New(daoserr.Unreach, "rank 7 down"),
		2: daoserr.New(daoserr.NoSpace, "rank 2 full"),
		5: errors.New("no code"),
	}
	for _, tc := range []struct {
		name    string
		err     error
		outcome string
	}{
		{"plain", failure("aggregate", failed), ""},
		{"with outcome", failureThen("aggregate", failed, "aggregation runs again at the next interval"), "; aggregation runs again at the next interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var de *daoserr.Error
			if !errors.As(tc.err, &de) || de.Code != daoserr.NoSpace {
				t.Fatalf("%v: want rank 2's DER_NOSPACE", tc.err)
			}
			if want := "aggregate failed on rank(s) 2,5,7: DER_NOSPACE: rank 2 full"; de.Msg != want {
				t.Errorf("message %q, want %q", de.Msg, want)
			}
			if !strings.HasSuffix(de.Resolution, "engine logs"+tc.outcome) || strings.Contains(de.Resolution, "rolled back") {
				t.Errorf("resolution %q, want the logs hint then %q", de.Resolution, tc.outcome)
			}
		})
	}
}
