package dfsperf

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestReviewSmallTransfer: a transfer size under 8 bytes is accepted by
// check (it divides the file size); a rank must then run or refuse it, not
// panic (stamp writes 8 bytes into each transfer).
func TestReviewSmallTransfer(t *testing.T) {
	for _, xfer := range []int{1, 4} {
		cfg := Config{Mode: "io", API: "posix", Dir: t.TempDir(), Ranks: 1, FileSize: 64, Xfer: xfer, Verify: true}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("xfer %d: a rank panics: %v", xfer, r)
				}
			}()
			err := RunRank(context.Background(), cfg, 0, "top", strings.NewReader("go\ngo\ngo\n"), io.Discard)
			t.Logf("xfer %d: %v", xfer, err)
		}()
	}
}
