package vos

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

// Updates and punches stamped at commit get epochs in log order, so epoch
// order and durable order agree, whatever order concurrent callers built
// them in; conditional inserts of one dkey by many callers let exactly one
// through.
func TestStampedInLogOrder(t *testing.T) {
	dir := t.TempDir()
	if err := Format(dir, FormatOptions{ScmSize: 64 << 20, NvmeSize: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	var clock atomic.Uint64
	clock.Store(1000)
	p, err := Open(dir, Options{Stamp: func() Epoch { return clock.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.CreateContainer(tCont, ContOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var inserted atomic.Int32
	epochs := make([]Epoch, 64)
	for i := range 64 {
		wg.Go(func() {
			// overlapping extents of one akey, and a conditional insert
			iod := IOD{Akey: []byte("a"), Type: IODArray, Size: 1, Recxs: []Recx{{Idx: uint64(i % 8), Nr: 8}}}
			e, err := p.UpdateNow(tCont, tOID, 0, []byte("d"), []IOD{iod}, []SGL{{[]byte(fmt.Sprintf("%08d", i))}})
			if err != nil {
				t.Error(err)
				return
			}
			epochs[i] = e
			sv := IOD{Akey: []byte("v"), Type: IODSingle, Size: 1}
			_, err = p.UpdateNow(tCont, tOID, CondDkeyInsert, []byte(fmt.Sprintf("once-%d", i%4)), []IOD{sv}, []SGL{{[]byte{1}}})
			switch {
			case err == nil:
				inserted.Add(1)
			case !daoserr.Is(err, daoserr.Exist):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := inserted.Load(); n != 4 {
		t.Fatalf("%d conditional inserts of 4 dkeys succeeded", n)
	}
	recs, _, err := p.AkeyRecords(tCont, tOID, []byte("d"), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(recs, func(a, b RecordInfo) int { return cmp.Compare(a.Seq, b.Seq) })
	for i := 1; i < len(recs); i++ {
		if recs[i].Epoch <= recs[i-1].Epoch {
			t.Fatalf("seq %d has epoch %d after seq %d's %d: epochs do not follow the log", recs[i].Seq, recs[i].Epoch, recs[i-1].Seq, recs[i-1].Epoch)
		}
	}
	if len(recs) != 64 {
		t.Fatalf("%d extents, want 64", len(recs))
	}
	if _, err := p.UpdateNow(tCont, tOID, 0, []byte("d"), nil, nil); err == nil {
		t.Fatal("an update with no IODs")
	}
	// a pool without a clock cannot stamp
	q := newTestPool(t)
	if _, err := q.PunchObjectNow(tCont, tOID, 0); !daoserr.Is(err, daoserr.Inval) {
		t.Fatalf("stamp without a clock: %v", err)
	}
	p.WaitDurable(EpochMax) // nothing pending: returns
}
