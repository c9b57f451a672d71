package ctlclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/ctlpb"
)

func TestErrorRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
		code daoserr.Code
	}{
		{"coded with resolution", daoserr.Newf(daoserr.NoPerm, "pool tank").WithResolution("ask the owner"), "DER_NO_PERM: pool tank (ask the owner)", daoserr.NoPerm},
		{"coded with a cause", daoserr.Wrap(daoserr.IO, errors.New("disk gone"), "write"), "DER_IO: write: disk gone", daoserr.IO},
		{"plain", fmt.Errorf("something"), "DER_MISC: something", daoserr.Misc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ToError(FromError(tc.err))
			if got.Error() != tc.want || !daoserr.Is(got, tc.code) {
				t.Fatalf("%v, want %q", got, tc.want)
			}
		})
	}
	if ToError(nil) != nil || FromError(nil) != nil || ToError(&ctlpb.Error{}) != nil {
		t.Fatal("nil errors are not nil")
	}
}

func TestErr(t *testing.T) {
	if e := Err(status.Error(codes.PermissionDenied, "use admin.crt"), nil, "pool create"); !daoserr.Is(e, daoserr.NoPerm) || !strings.Contains(e.Error(), "admin.crt") {
		t.Errorf("permission denied: %v", e)
	}
	if e := Err(status.Error(codes.Unavailable, "down"), nil, "pool create"); !daoserr.Is(e, daoserr.Unreach) {
		t.Errorf("unavailable: %v", e)
	}
	if e := Err(nil, &ctlpb.Error{Code: int32(daoserr.Nonexist), Msg: "no pool"}, "pool query x"); e.Error() != "DER_NONEXIST: pool query x: no pool" {
		t.Errorf("reply error: %v", e)
	}
}

// TestRetry: NOTLEADER answers are retried until another answer or RetryFor.
func TestRetry(t *testing.T) {
	old := RetryFor
	defer func() { RetryFor = old }()
	calls := 0
	notLeaderTwice := func(context.Context) (*ctlpb.PoolResp, error) {
		calls++
		if calls <= 2 {
			return &ctlpb.PoolResp{Error: &ctlpb.Error{Code: int32(daoserr.NotLeader)}}, nil
		}
		return &ctlpb.PoolResp{}, nil
	}
	if r, err := Retry(context.Background(), notLeaderTwice); err != nil || r.Error != nil || calls != 3 {
		t.Fatalf("%v %v after %d calls", r, err, calls)
	}
	RetryFor, calls = 0, 0
	if r, _ := Retry(context.Background(), notLeaderTwice); r.Error == nil || calls != 1 {
		t.Fatalf("RetryFor 0: %d calls", calls)
	}
}
