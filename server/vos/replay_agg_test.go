package vos

import "testing"

// A rebuild copy written below the aggregated epoch (WriteBelowAggregated)
// is in the log after the aggregation that passed its epoch: replay must
// apply it too, not refuse to open the target (a server killed after a
// rebuild could not start again).
func TestReplayWriteBelowAggregated(t *testing.T) {
	p := newTestPool(t)
	putSV(t, p, 50, "d", "a", "newer")
	if err := p.Aggregate(tCont, 0, 100, nil); err != nil {
		t.Fatal(err)
	}
	iod := []IOD{{Akey: []byte("a"), Type: IODSingle, Size: 4}}
	if err := p.Update(tCont, tOID, 1, WriteBelowAggregated, []byte("e"), iod, []SGL{{[]byte("copy")}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	q, err := Open(p.Dir(), Options{})
	if err != nil {
		t.Fatalf("reopen after a copy below the aggregated epoch: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	if got := getSV(t, q, EpochMax, "e", "a"); got != "copy" {
		t.Fatalf("after replay: %q, want the copy", got)
	}
	if got := getSV(t, q, EpochMax, "d", "a"); got != "newer" {
		t.Fatalf("after replay: %q, want the newer version", got)
	}
}
