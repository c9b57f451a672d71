package daos

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/testsys/inproc"
)

// The model-based test: random sequences of updates, punches, fetches,
// snapshots (and reads at them), rollbacks and transactions on a real
// system, each checked against a reference model of what the container
// holds. Values are single values under a few dkeys and akeys of one SX
// object, so dkeys land on both targets.

// modelState is the container's content: dkey -> akey -> value.
type modelState map[string]map[string][]byte

func (m modelState) clone() modelState {
	out := modelState{}
	for d, as := range m {
		out[d] = maps.Clone(as)
	}
	return out
}

func (m modelState) set(d, a string, v []byte) {
	if m[d] == nil {
		m[d] = map[string][]byte{}
	}
	m[d][a] = v
}

func (m modelState) punchDkey(d string) { delete(m, d) }

func (m modelState) punchAkey(d, a string) {
	delete(m[d], a)
	if len(m[d]) == 0 {
		delete(m, d)
	}
}

var (
	modelDkeys = []string{"d0", "d1", "d2", "d3", "d4"}
	modelAkeys = []string{"a0", "a1", "a2"}
)

type modelSnap struct {
	epoch uint64
	state modelState
}

func TestModel(t *testing.T) {
	s := inproc.Start(t, false)
	s.CreatePool(t, "model", me(t))
	ctx := context.Background()
	p, err := client(t, s).PoolConnect(ctx, "model", RW)
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	rapid.Check(t, func(rt *rapid.T) {
		cases++
		if testing.Short() && cases > 25 {
			return // the race pass: fewer sequences
		}
		label := fmt.Sprintf("m%d", cases)
		if _, err := p.ContCreate(ctx, ContCreateOptions{Label: label}); err != nil {
			rt.Fatal(err)
		}
		defer p.ContDestroy(ctx, label)
		h, err := p.ContOpen(ctx, label, RW)
		if err != nil {
			rt.Fatal(err)
		}
		oid, err := h.GenerateOID(ctx, placement.SX, placement.OTMultiHashed)
		if err != nil {
			rt.Fatal(err)
		}
		o, err := h.Obj(oid)
		if err != nil {
			rt.Fatal(err)
		}
		model := modelState{}
		var snaps []modelSnap
		dkey := rapid.SampledFrom(modelDkeys)
		akey := rapid.SampledFrom(modelAkeys)
		value := rapid.SliceOfN(rapid.Byte(), 1, 64)

		// check compares what the system holds (at a snapshot's epoch, or
		// the latest) with a model state.
		check := func(rt *rapid.T, snap *modelSnap) {
			want := model
			var tx *Tx
			if snap != nil {
				want = snap.state
				if tx, err = h.TxOpenSnap(snap.epoch); err != nil {
					rt.Fatal(err)
				}
			}
			for _, d := range modelDkeys {
				for _, a := range modelAkeys {
					iod := []IOD{{Akey: []byte(a), Type: Single, Size: 64}}
					buf := make([]byte, 64)
					var res []FetchResult
					if tx != nil {
						res, err = tx.Fetch(ctx, o, []byte(d), iod, [][]byte{buf})
					} else {
						res, err = o.Fetch(ctx, []byte(d), iod, [][]byte{buf})
					}
					if err != nil {
						rt.Fatalf("fetch %s/%s: %v", d, a, err)
					}
					w, ok := want[d][a]
					got := buf[:res[0].Size]
					if ok != (res[0].Size > 0) || !bytes.Equal(got, w) {
						rt.Fatalf("%s/%s (snapshot %v): got %q (size %d), want %q (present %v)", d, a, snap != nil, got, res[0].Size, w, ok)
					}
				}
			}
			var keys [][]byte
			if tx != nil {
				keys, err = tx.ListDkeys(ctx, o, &Anchor{}, 100)
			} else {
				keys, err = o.ListDkeys(ctx, &Anchor{}, 100)
			}
			if err != nil {
				rt.Fatal(err)
			}
			var gotKeys []string
			for _, k := range keys {
				gotKeys = append(gotKeys, string(k))
			}
			slices.Sort(gotKeys)
			wantKeys := slices.Sorted(maps.Keys(want))
			if !slices.Equal(gotKeys, wantKeys) {
				rt.Fatalf("dkeys: got %q, want %q", gotKeys, wantKeys)
			}
		}

		rt.Repeat(map[string]func(*rapid.T){
			"update": func(rt *rapid.T) {
				d, a, v := dkey.Draw(rt, "dkey"), akey.Draw(rt, "akey"), value.Draw(rt, "value")
				if _, err := o.Update(ctx, []byte(d), []IOD{{Akey: []byte(a), Type: Single, Size: uint64(len(v))}}, [][]byte{v}); err != nil {
					rt.Fatal(err)
				}
				model.set(d, a, v)
			},
			"punch dkey": func(rt *rapid.T) {
				d := dkey.Draw(rt, "dkey")
				if err := o.PunchDkeys(ctx, [][]byte{[]byte(d)}); err != nil {
					rt.Fatal(err)
				}
				model.punchDkey(d)
			},
			"punch akey": func(rt *rapid.T) {
				d, a := dkey.Draw(rt, "dkey"), akey.Draw(rt, "akey")
				if err := o.PunchAkeys(ctx, []byte(d), [][]byte{[]byte(a)}); err != nil {
					rt.Fatal(err)
				}
				model.punchAkey(d, a)
			},
			"snapshot": func(rt *rapid.T) {
				e, err := h.CreateSnap(ctx, "")
				if err != nil {
					rt.Fatal(err)
				}
				snaps = append(snaps, modelSnap{e, model.clone()})
			},
			"read a snapshot": func(rt *rapid.T) {
				if len(snaps) == 0 {
					rt.Skip("no snapshot")
				}
				sn := rapid.SampledFrom(snaps).Draw(rt, "snapshot")
				check(rt, &sn)
			},
			"rollback": func(rt *rapid.T) {
				if len(snaps) == 0 {
					rt.Skip("no snapshot")
				}
				i := rapid.IntRange(0, len(snaps)-1).Draw(rt, "snapshot")
				if _, err := h.Rollback(ctx, snaps[i].epoch, ""); err != nil {
					rt.Fatal(err)
				}
				model = snaps[i].state.clone()
				snaps = snaps[:i+1]
			},
			"destroy a snapshot": func(rt *rapid.T) {
				if len(snaps) == 0 {
					rt.Skip("no snapshot")
				}
				i := rapid.IntRange(0, len(snaps)-1).Draw(rt, "snapshot")
				if err := h.DestroySnap(ctx, snaps[i].epoch, ""); err != nil {
					rt.Fatal(err)
				}
				snaps = slices.Delete(snaps, i, i+1)
			},
			"transaction": func(rt *rapid.T) {
				tx, err := h.TxOpen(ctx)
				if err != nil {
					rt.Fatal(err)
				}
				defer tx.Close()
				next := model.clone()
				n := rapid.IntRange(1, 4).Draw(rt, "writes")
				for range n {
					d, a := dkey.Draw(rt, "dkey"), akey.Draw(rt, "akey")
					if rapid.Bool().Draw(rt, "punch") {
						if err := tx.PunchAkeys(ctx, o, []byte(d), [][]byte{[]byte(a)}); err != nil {
							rt.Fatal(err)
						}
						next.punchAkey(d, a)
						continue
					}
					v := value.Draw(rt, "value")
					if err := tx.Update(ctx, o, []byte(d), []IOD{{Akey: []byte(a), Type: Single, Size: uint64(len(v))}}, [][]byte{v}); err != nil {
						rt.Fatal(err)
					}
					next.set(d, a, v)
				}
				if rapid.Bool().Draw(rt, "abort") {
					if err := tx.Abort(ctx); err != nil {
						rt.Fatal(err)
					}
					return
				}
				if err := tx.Commit(ctx); err != nil {
					rt.Fatal(err) // nobody else writes: no conflict is possible
				}
				model = next
			},
			"stale transaction": func(rt *rapid.T) {
				// a transaction that read a dkey someone then wrote must restart
				d := dkey.Draw(rt, "dkey")
				tx, err := h.TxOpen(ctx)
				if err != nil {
					rt.Fatal(err)
				}
				defer tx.Close()
				buf := make([]byte, 64)
				if _, err := tx.Fetch(ctx, o, []byte(d), []IOD{{Akey: []byte("a0"), Type: Single, Size: 64}}, [][]byte{buf}); err != nil {
					rt.Fatal(err)
				}
				v := value.Draw(rt, "value")
				if _, err := o.Update(ctx, []byte(d), []IOD{{Akey: []byte("a0"), Type: Single, Size: uint64(len(v))}}, [][]byte{v}); err != nil {
					rt.Fatal(err)
				}
				model.set(d, "a0", v)
				if err := tx.Update(ctx, o, []byte(dkey.Draw(rt, "other")), []IOD{{Akey: []byte("a1"), Type: Single, Size: 1}}, [][]byte{{1}}); err != nil {
					rt.Fatal(err)
				}
				if err := tx.Commit(ctx); !daoserr.Is(err, daoserr.TxRestart) {
					rt.Fatalf("commit after a read was overwritten: %v, want DER_TX_RESTART", err)
				}
			},
			"": func(rt *rapid.T) { check(rt, nil) },
		})
	})
}
