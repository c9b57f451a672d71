package daos

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/testsys/inproc"
	"github.com/godaos/godaos/server"
)

// The leader's background aggregation reclaims overwritten values' space
// and keeps what snapshots read.
func TestAggregationReclaimsAndKeepsSnapshots(t *testing.T) {
	h := testContOn(t, inproc.StartWith(t, false, server.Options{AggregationInterval: 100 * time.Millisecond, AggregationLag: 50 * time.Millisecond}))
	p, ctx := h.Pool, context.Background()
	o := testObj(t, h, placement.S1, placement.OTMultiHashed)
	const size = 256 << 10 // on the NVMe tier
	iod := []IOD{{Akey: []byte("a"), Type: Single, Size: size}}
	write := func(b byte) {
		if _, err := o.Update(ctx, []byte("d"), iod, [][]byte{bytes.Repeat([]byte{b}, size)}); err != nil {
			t.Fatal(err)
		}
	}
	write(1)
	snap, err := h.CreateSnap(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		write(byte(10 + i))
	}
	// 21 values were written; a bounded wait for aggregation to leave the
	// two that are read (the latest, and the snapshot's)
	var used uint64
	for range 100 {
		sp, err := p.Query(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if used = sp.NvmeUsed; used <= 4*size {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if used > 4*size {
		t.Fatalf("NVMe used %d bytes after waiting: aggregation left more than 4 of the 21 values of %d bytes", used, size)
	}
	check := func(tx *Tx, want byte) {
		t.Helper()
		buf := make([]byte, size)
		var err error
		if tx != nil {
			_, err = tx.Fetch(ctx, o, []byte("d"), iod, [][]byte{buf})
		} else {
			_, err = o.Fetch(ctx, []byte("d"), iod, [][]byte{buf})
		}
		if err != nil || !bytes.Equal(buf, bytes.Repeat([]byte{want}, size)) {
			t.Fatalf("value %d expected (err %v), got %d...", want, err, buf[0])
		}
	}
	check(nil, 29)
	st, _ := h.TxOpenSnap(snap)
	check(st, 1)
}
