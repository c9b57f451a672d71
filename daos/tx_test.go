package daos

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
)

// txSetup opens an SX object (its dkeys spread over both targets) in a
// container of a fresh system.
func txSetup(t *testing.T) (*Cont, *Obj) {
	t.Helper()
	h := testCont(t)
	return h, testObj(t, h, placement.SX, placement.OTMultiHashed)
}

var valIOD = []IOD{{Akey: []byte("v"), Type: Single, Size: 8}}

func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func put(t *testing.T, o *Obj, dkey string, v uint64) {
	t.Helper()
	if _, err := o.Update(context.Background(), []byte(dkey), valIOD, [][]byte{le64(v)}); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, o *Obj, dkey string) uint64 {
	t.Helper()
	b := make([]byte, 8)
	if _, err := o.Fetch(context.Background(), []byte(dkey), valIOD, [][]byte{b}); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint64(b)
}

func txGet(ctx context.Context, tx *Tx, o *Obj, dkey string) (uint64, error) {
	b := make([]byte, 8)
	_, err := tx.Fetch(ctx, o, []byte(dkey), valIOD, [][]byte{b})
	return binary.LittleEndian.Uint64(b), err
}

// twoShards returns two dkeys that live on different targets.
func twoShards(t *testing.T, o *Obj) (string, string) {
	a := "acct-0"
	for i := 1; i < 100; i++ {
		b := fmt.Sprintf("acct-%d", i)
		if o.shard([]byte(b)) != o.shard([]byte(a)) {
			return a, b
		}
	}
	t.Fatal("no two dkeys on different targets")
	return "", ""
}

func TestSnapshots(t *testing.T) {
	h, o := txSetup(t)
	ctx := context.Background()
	put(t, o, "k", 1)
	s1, err := h.CreateSnap(ctx, "first")
	if err != nil {
		t.Fatal(err)
	}
	put(t, o, "k", 2)
	put(t, o, "new", 9)
	s2, err := h.CreateSnap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	put(t, o, "k", 3)
	if s2 <= s1 {
		t.Fatalf("snapshot epochs %d then %d", s1, s2)
	}
	snap, err := h.TxOpenSnap(s1)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := txGet(ctx, snap, o, "k"); err != nil || v != 1 {
		t.Fatalf("at snapshot 1: %d, %v; want 1", v, err)
	}
	keys, err := snap.ListDkeys(ctx, o, &Anchor{}, 100)
	if err != nil || len(keys) != 1 {
		t.Fatalf("dkeys at snapshot 1: %q, %v", keys, err)
	}
	if err := snap.Update(ctx, o, []byte("k"), valIOD, [][]byte{le64(5)}); !daoserr.Is(err, daoserr.NoPerm) {
		t.Fatalf("write through a snapshot: %v, want DER_NO_PERM", err)
	}
	if get(t, o, "k") != 3 {
		t.Fatal("latest value lost")
	}
	snaps, err := h.ListSnaps(ctx)
	if err != nil || len(snaps) != 2 || snaps[0].Epoch != s1 || snaps[0].Name != "first" || snaps[1].Epoch != s2 {
		t.Fatalf("list: %+v, %v", snaps, err)
	}
	if _, err := h.CreateSnap(ctx, "first"); !daoserr.Is(err, daoserr.Exist) {
		t.Fatalf("duplicate snapshot name: %v, want DER_EXIST", err)
	}
	// roll back to the second: k=2 and "new" exist; the first snapshot stays
	if _, err := h.Rollback(ctx, s2, ""); err != nil {
		t.Fatal(err)
	}
	if v := get(t, o, "k"); v != 2 {
		t.Fatalf("after rollback to snapshot 2: k=%d, want 2", v)
	}
	// to the first by name: "new" is gone, and so is snapshot 2
	if _, err := h.Rollback(ctx, 0, "first"); err != nil {
		t.Fatal(err)
	}
	if v := get(t, o, "k"); v != 1 {
		t.Fatalf("after rollback to snapshot 1: k=%d, want 1", v)
	}
	if keys, err := o.ListDkeys(ctx, &Anchor{}, 100); err != nil || len(keys) != 1 {
		t.Fatalf("dkeys after rollback: %q, %v", keys, err)
	}
	if snaps, _ := h.ListSnaps(ctx); len(snaps) != 1 {
		t.Fatalf("snapshots after rollback: %+v", snaps)
	}
	if err := h.DestroySnap(ctx, s1, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.DestroySnap(ctx, s1, ""); !daoserr.Is(err, daoserr.Nonexist) {
		t.Fatalf("destroy twice: %v, want DER_NONEXIST", err)
	}
	if _, err := h.Rollback(ctx, 12345, ""); !daoserr.Is(err, daoserr.Nonexist) {
		t.Fatalf("rollback to no snapshot: %v, want DER_NONEXIST", err)
	}
	// writes after a rollback are newer than everything discarded
	put(t, o, "k", 4)
	if v := get(t, o, "k"); v != 4 {
		t.Fatalf("write after rollback: %d", v)
	}
}

func TestTxCommitAndConflict(t *testing.T) {
	h, o := txSetup(t)
	ctx := context.Background()
	a, b := twoShards(t, o)
	put(t, o, a, 100)
	put(t, o, b, 0)

	t.Run("two targets commit together", func(t *testing.T) {
		tx, err := h.TxOpen(ctx)
		if err != nil {
			t.Fatal(err)
		}
		va, _ := txGet(ctx, tx, o, a)
		vb, _ := txGet(ctx, tx, o, b)
		tx.Update(ctx, o, []byte(a), valIOD, [][]byte{le64(va - 10)})
		tx.Update(ctx, o, []byte(b), valIOD, [][]byte{le64(vb + 10)})
		if get(t, o, a) != 100 {
			t.Fatal("a buffered write is visible before commit")
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if get(t, o, a) != 90 || get(t, o, b) != 10 {
			t.Fatalf("after commit: %d %d", get(t, o, a), get(t, o, b))
		}
		if err := tx.Commit(ctx); !daoserr.Is(err, daoserr.NoHdl) {
			t.Fatalf("second commit: %v", err)
		}
	})
	t.Run("a read overtaken by a write restarts", func(t *testing.T) {
		tx, err := h.TxOpen(ctx)
		if err != nil {
			t.Fatal(err)
		}
		va, _ := txGet(ctx, tx, o, a)
		put(t, o, a, 500) // someone else, after the transaction read a
		tx.Update(ctx, o, []byte(b), valIOD, [][]byte{le64(va)})
		if err := tx.Commit(ctx); !daoserr.Is(err, daoserr.TxRestart) {
			t.Fatalf("commit over a changed read: %v, want DER_TX_RESTART", err)
		}
		if get(t, o, b) != 10 {
			t.Fatal("a refused transaction wrote")
		}
		if err := tx.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		va, _ = txGet(ctx, tx, o, a)
		tx.Update(ctx, o, []byte(b), valIOD, [][]byte{le64(va)})
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if get(t, o, b) != 500 {
			t.Fatalf("b=%d after the restarted transaction", get(t, o, b))
		}
	})
	t.Run("abort writes nothing", func(t *testing.T) {
		tx, _ := h.TxOpen(ctx)
		tx.Update(ctx, o, []byte(a), valIOD, [][]byte{le64(1)})
		tx.PunchDkeys(ctx, o, [][]byte{[]byte(b)})
		if err := tx.Abort(ctx); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); !daoserr.Is(err, daoserr.NoHdl) {
			t.Fatalf("commit after abort: %v", err)
		}
		if get(t, o, a) != 500 || get(t, o, b) != 500 {
			t.Fatal("an aborted transaction wrote")
		}
	})
	t.Run("punch in a transaction", func(t *testing.T) {
		tx, _ := h.TxOpen(ctx)
		tx.PunchDkeys(ctx, o, [][]byte{[]byte(b)})
		tx.Update(ctx, o, []byte(a), valIOD, [][]byte{le64(1000)})
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if get(t, o, a) != 1000 || get(t, o, b) != 0 {
			t.Fatalf("after punch+update: %d %d", get(t, o, a), get(t, o, b))
		}
	})
	t.Run("wrong sizes", func(t *testing.T) {
		tx, _ := h.TxOpen(ctx)
		if err := tx.Update(ctx, o, []byte(a), valIOD, [][]byte{le64(1)[:3]}); !daoserr.Is(err, daoserr.IOInval) {
			t.Fatalf("short buffer: %v", err)
		}
		if err := tx.Update(ctx, o, nil, valIOD, [][]byte{le64(1)}); !daoserr.Is(err, daoserr.Inval) {
			t.Fatalf("empty dkey: %v", err)
		}
	})
}

// Concurrent transfers between accounts on two targets, with restarts:
// the total never changes, in the end or in any transaction's reads.
func TestTxTransfersKeepTheTotal(t *testing.T) {
	h, o := txSetup(t)
	ctx := context.Background()
	a, b := twoShards(t, o)
	put(t, o, a, 1000)
	put(t, o, b, 1000)
	const workers, transfers = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*2)
	for w := range workers {
		wg.Go(func() {
			tx, err := h.TxOpen(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer tx.Close()
			for i := 0; i < transfers; {
				va, err1 := txGet(ctx, tx, o, a)
				vb, err2 := txGet(ctx, tx, o, b)
				if err1 != nil || err2 != nil {
					errs <- fmt.Errorf("worker %d: %v %v", w, err1, err2)
					return
				}
				if va+vb != 2000 {
					errs <- fmt.Errorf("worker %d read a total of %d (%d+%d): half a transaction", w, va+vb, va, vb)
					return
				}
				amount := uint64(w + 1)
				tx.Update(ctx, o, []byte(a), valIOD, [][]byte{le64(va - amount)})
				tx.Update(ctx, o, []byte(b), valIOD, [][]byte{le64(vb + amount)})
				err := tx.Commit(ctx)
				switch {
				case err == nil:
					i++
				case !daoserr.Is(err, daoserr.TxRestart):
					errs <- fmt.Errorf("worker %d: %v", w, err)
					return
				}
				if err := tx.Restart(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := uint64(0)
	for w := range workers {
		want += uint64(w+1) * transfers
	}
	if va, vb := get(t, o, a), get(t, o, b); va+vb != 2000 || va != 1000-want {
		t.Fatalf("end: a=%d b=%d, want a=%d and a total of 2000", va, vb, 1000-want)
	}
}

// Callers outside the module test codes through the API's own names.
func TestPublicErrorCodes(t *testing.T) {
	err := daoserr.Newf(daoserr.TxRestart, "x")
	if !errors.Is(err, ErrTxRestart) || ErrorCode(err) != ErrTxRestart || ErrorCode(err).Name() != "DER_TX_RESTART" || ErrorCode(nil) != 0 {
		t.Fatalf("codes: %v %v", err, ErrorCode(err))
	}
}

// shard is the leader shard of dkey's group under the current map .
func (o *Obj) shard(dkey []byte) placement.Shard {
	l, err := o.currentLayout()
	if err != nil {
		return placement.Shard{}
	}
	return o.writeShard(l, dkey).Shard
}
