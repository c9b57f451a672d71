package daos

import (
	"context"
	"fmt"
	"testing"

	"github.com/godaos/godaos/internal/testsys/cluster"
)

// BenchmarkMetadata measures the latency of the client's metadata calls on a
// 3-server system (the issue asks for OID allocation, container open and
// snapshot create), one call at a time: ns/op is the latency. Run with
//
//	go test -run XX -bench Metadata -benchtime 200x ./daos
func BenchmarkMetadata(b *testing.B) {
	sys := cluster.Start(b, cluster.Options{Servers: 3, Targets: 2})
	ctx := context.Background()
	c, err := Init(ctx, Options{AgentSocket: sys.AgentSocket, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Fini()
	p, err := c.PoolConnect(ctx, sys.Pool, RW)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.ContCreate(ctx, ContCreateOptions{Label: "meta"}); err != nil {
		b.Fatal(err)
	}
	h, err := p.ContOpen(ctx, "meta", RW)
	if err != nil {
		b.Fatal(err)
	}
	oid, _ := h.GenerateOID(ctx, SX, OTMultiHashed)
	o, _ := h.Obj(oid)
	a, bk := twoShardsOf(o)
	val := []byte("12345678")
	for _, k := range [][]byte{a, bk} {
		if _, err := o.Update(ctx, k, valIOD, [][]byte{val}); err != nil {
			b.Fatal(err)
		}
	}
	run := func(name string, op func() error) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := op(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	run("PoolConnect", func() error { _, err := c.PoolConnect(ctx, sys.Pool, RW); return err })
	run("ContOpen", func() error { _, err := p.ContOpen(ctx, "meta", RW); return err })
	run("AllocOIDs", func() error { _, err := h.AllocOIDs(ctx, 1); return err })
	run("NextOID", func() error { _, err := h.NextOID(ctx); return err }) // leased: one AllocOIDs per 4096
	run("CreateSnap", func() error { _, err := h.CreateSnap(ctx, ""); return err })
	run("Update8B", func() error { _, err := o.Update(ctx, a, valIOD, [][]byte{val}); return err })
	tx := func(keys ...[]byte) func() error {
		return func() error {
			t, err := h.TxOpen(ctx)
			if err != nil {
				return err
			}
			defer t.Close()
			for _, k := range keys {
				if err := t.Update(ctx, o, k, valIOD, [][]byte{val}); err != nil {
					return err
				}
			}
			return t.Commit(ctx)
		}
	}
	run("TxCommit1Target", tx(a))
	run("TxCommit2Targets", tx(a, bk))
}

// twoShardsOf returns two dkeys of o on different targets.
func twoShardsOf(o *Obj) ([]byte, []byte) {
	a := []byte("k-0")
	for i := 1; ; i++ {
		k := []byte(fmt.Sprintf("k-%d", i))
		if o.shard(k) != o.shard(a) {
			return a, k
		}
	}
}
