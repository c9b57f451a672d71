package daos

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/testsys/inproc"
	"google.golang.org/protobuf/proto"
)

// TestObjectIO: S-class objects through placement to the engines' targets:
// single values and arrays written and read back byte for byte, overwrites
// seen, missing keys empty, epochs increasing.
func TestObjectIO(t *testing.T) {
	s := inproc.Start(t, false)
	s.CreatePool(t, "io", me(t))
	ctx := context.Background()
	c := client(t, s)
	p, err := c.PoolConnect(ctx, "io", RW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ContCreate(ctx, ContCreateOptions{Label: "data"}); err != nil {
		t.Fatal(err)
	}
	h, err := p.ContOpen(ctx, "data", RW)
	if err != nil {
		t.Fatal(err)
	}
	for _, class := range []placement.ClassID{placement.S1, placement.SX} {
		t.Run(class.String(), func(t *testing.T) {
			oid, err := h.GenerateOID(ctx, class, placement.OTMultiHashed)
			if err != nil {
				t.Fatal(err)
			}
			o, err := h.Obj(oid)
			if err != nil {
				t.Fatal(err)
			}
			var last uint64
			for i := range 40 {
				dkey := []byte(fmt.Sprintf("step-%d", i))
				val := bytes.Repeat([]byte{byte(i)}, 100+i*97)
				recs := []byte(strings.Repeat(fmt.Sprintf("%04d", i), 8)) // 8 records of 4 bytes
				iods := []IOD{{Akey: []byte("meta"), Type: Single, Size: uint64(len(val))},
					{Akey: []byte("grid"), Type: Array, Size: 4, Recxs: []Recx{{Idx: 10, Nr: 8}}}}
				epoch, err := o.Update(ctx, dkey, iods, [][]byte{val, recs})
				if err != nil {
					t.Fatal(err)
				}
				if epoch <= last && class == placement.S1 { // one target: one clock
					t.Fatalf("epoch %d after %d", epoch, last)
				}
				last = epoch
				got := [][]byte{make([]byte, len(val)), make([]byte, len(recs))}
				res, err := o.Fetch(ctx, dkey, iods, got)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got[0], val) || !bytes.Equal(got[1], recs) || res[0].Size != uint64(len(val)) || len(res[1].Extents) != 1 {
					t.Fatalf("dkey %s: read back differs: %+v", dkey, res)
				}
			}
			// an overwrite is what a later fetch sees
			iod := []IOD{{Akey: []byte("meta"), Type: Single, Size: 3}}
			if _, err := o.Update(ctx, []byte("step-0"), iod, [][]byte{[]byte("new")}); err != nil {
				t.Fatal(err)
			}
			got := [][]byte{make([]byte, 3)}
			if _, err := o.Fetch(ctx, []byte("step-0"), iod, got); err != nil || string(got[0]) != "new" {
				t.Fatalf("after overwrite: %q %v", got[0], err)
			}
			// nothing there: size 0
			res, err := o.Fetch(ctx, []byte("never-written"), iod, [][]byte{make([]byte, 3)})
			if err != nil || res[0].Size != 0 {
				t.Fatalf("missing dkey: %+v %v", res, err)
			}
			if _, err := o.Update(ctx, nil, iod, [][]byte{[]byte("abc")}); !daoserr.Is(err, daoserr.Inval) {
				t.Fatalf("empty dkey: %v", err)
			}
			if _, err := o.Update(ctx, []byte("k"), iod, nil); !daoserr.Is(err, daoserr.Inval) {
				t.Fatalf("no buffers: %v", err)
			}
		})
	}
	t.Run("list and punch", func(t *testing.T) {
		oid, err := h.GenerateOID(ctx, placement.SX, placement.OTMultiHashed)
		if err != nil {
			t.Fatal(err)
		}
		o, err := h.Obj(oid)
		if err != nil {
			t.Fatal(err)
		}
		iods := []IOD{{Akey: []byte("a1"), Type: Single, Size: 2}, {Akey: []byte("a2"), Type: Single, Size: 2}}
		for i := range 50 {
			if _, err := o.Update(ctx, []byte(fmt.Sprintf("d%02d", i)), iods, [][]byte{[]byte("v1"), []byte("v2")}); err != nil {
				t.Fatal(err)
			}
		}
		listAll := func() map[string]bool {
			t.Helper()
			got := map[string]bool{}
			var a Anchor
			for pages := 0; !a.EOF; pages++ {
				keys, err := o.ListDkeys(ctx, &a, 7)
				if err != nil || len(keys) > 7 || pages > 100 {
					t.Fatalf("list page %d: %d keys, %v", pages, len(keys), err)
				}
				for _, k := range keys {
					if got[string(k)] {
						t.Fatalf("dkey %s listed twice", k)
					}
					got[string(k)] = true
				}
			}
			return got
		}
		if n := len(listAll()); n != 50 {
			t.Fatalf("%d dkeys listed, want 50", n)
		}
		var a Anchor
		if akeys, err := o.ListAkeys(ctx, []byte("d07"), &a, 10); err != nil || len(akeys) != 2 || !a.EOF {
			t.Fatalf("akeys %q %v", akeys, err)
		}
		if err := o.PunchAkeys(ctx, []byte("d07"), [][]byte{[]byte("a1")}); err != nil {
			t.Fatal(err)
		}
		res, err := o.Fetch(ctx, []byte("d07"), iods, [][]byte{make([]byte, 2), make([]byte, 2)})
		if err != nil || res[0].Size != 0 || res[1].Size != 2 {
			t.Fatalf("after punching a1: %+v %v", res, err)
		}
		var dk [][]byte
		for i := range 10 {
			dk = append(dk, []byte(fmt.Sprintf("d%02d", i)))
		}
		if err := o.PunchDkeys(ctx, dk); err != nil {
			t.Fatal(err)
		}
		if got := listAll(); len(got) != 40 || got["d03"] {
			t.Fatalf("after punching 10 dkeys: %d listed", len(got))
		}
		if err := o.Punch(ctx); err != nil {
			t.Fatal(err)
		}
		if got := listAll(); len(got) != 0 {
			t.Fatalf("after punching the object: %d dkeys", len(got))
		}
	})
	t.Run("RP_2G1 writes reach every replica", func(t *testing.T) {
		oid := placement.MakeOID(7, 0, placement.RP2G1, placement.OTMultiHashed)
		o, err := h.Obj(oid)
		if err != nil {
			t.Fatal(err)
		}
		l, err := o.currentLayout()
		if err != nil || len(l.Shards) != 2 || l.Shards[0] == l.Shards[1] {
			t.Fatalf("layout %+v: %v", l, err)
		}
		iods := []IOD{{Akey: []byte("a"), Type: Single, Size: 5}}
		for i := range 10 {
			dkey := []byte(fmt.Sprintf("d%d", i))
			if _, err := o.Update(ctx, dkey, iods, [][]byte{[]byte(fmt.Sprintf("val-%d", i))}); err != nil {
				t.Fatal(err)
			}
			// each replica holds it: read it from each shard in turn
			for _, s := range l.Shards {
				m, _ := o.ioReq(dkey, iods, 0)
				got := make([]byte, 5)
				if _, err := o.rpc(ctx, dest{s, l.Version}, enginepb.OpObjFetch, m, nil, [][]byte{got}); err != nil {
					t.Fatal(err)
				}
				if string(got) != fmt.Sprintf("val-%d", i) {
					t.Fatalf("dkey %s on rank %d target %d: %q", dkey, s.Rank, s.Target, got)
				}
			}
		}
		// a write without a map version would reach one replica: refused
		{
			m, _ := o.ioReq([]byte("d0"), iods, 0)
			if _, err := o.rpc(ctx, dest{Shard: l.Shards[0]}, enginepb.OpObjUpdate, m, [][]byte{[]byte("xxxxx")}, nil); !daoserr.Is(err, daoserr.Inval) {
				t.Fatalf("an unplaced write of a replicated object: %v", err)
			}
		}
		// a conditional insert of an existing dkey fails and writes nothing
		if _, err := o.UpdateCond(ctx, CondDkeyInsert, []byte("d1"), iods, [][]byte{[]byte("xxxxx")}); !daoserr.Is(err, daoserr.Exist) {
			t.Fatalf("insert over an existing dkey: %v", err)
		}
		for _, s := range l.Shards {
			m, _ := o.ioReq([]byte("d1"), iods, 0)
			got := make([]byte, 5)
			if _, err := o.rpc(ctx, dest{s, l.Version}, enginepb.OpObjFetch, m, nil, [][]byte{got}); err != nil || string(got) != "val-1" {
				t.Fatalf("after a failed insert, rank %d target %d holds %q (%v)", s.Rank, s.Target, got, err)
			}
		}
		if err := o.PunchDkeys(ctx, [][]byte{[]byte("d2")}); err != nil {
			t.Fatal(err)
		}
		for _, s := range l.Shards {
			m, _ := o.ioReq([]byte("d2"), iods, 0)
			got := make([]byte, 5)
			rep, err := o.rpc(ctx, dest{s, l.Version}, enginepb.OpObjFetch, m, nil, [][]byte{got})
			var r enginepb.ObjFetchRep
			if err == nil {
				proto.Unmarshal(rep.Header, &r)
			}
			if err != nil || r.Results[0].Size != 0 {
				t.Fatalf("punched dkey on rank %d target %d: size %d (%v)", s.Rank, s.Target, r.Results[0].Size, err)
			}
		}
	})
	t.Run("an EC class wider than the pool is refused", func(t *testing.T) {
		// 3 shards, 2 targets: two cells would share one VOS object (ec_test.go has EC I/O)
		oid := placement.MakeOID(8, 0, placement.EC2P1G1, placement.OTMultiHashed)
		if _, err := h.Obj(oid); !daoserr.Is(err, daoserr.Inval) {
			t.Fatalf("EC_2P1G1: %v", err)
		}
	})
}
