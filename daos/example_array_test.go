package daos_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/godaos/godaos/daos"
)

// derName is the DER_* name an error of the API starts with.
func derName(err error) string {
	if err == nil {
		return "<nil>"
	}
	name, _, _ := strings.Cut(err.Error(), ":")
	return name
}

// openCont connects to the pool "tank" and creates and opens a container
// label; done destroys it.
func openCont(ctx context.Context, label string) (cont *daos.Cont, done func(), err error) {
	c, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		return nil, nil, err
	}
	pool, err := c.PoolConnect(ctx, "tank", daos.RW)
	if err == nil {
		_, err = pool.ContCreate(ctx, daos.ContCreateOptions{Label: label})
	}
	if err == nil {
		cont, err = pool.ContOpen(ctx, label, daos.RW)
	}
	if err != nil {
		c.Fini()
		return nil, nil, err
	}
	return cont, func() { pool.ContDestroy(ctx, label); c.Fini() }, nil
}

// An array of 8-byte cells stored 1024 cells to a dkey: write two ranges
// from one buffer, read across a hole, then truncate it.
func ExampleArrayObj() {
	ctx := context.Background()
	cont, done, err := openCont(ctx, "arrays")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer done()

	oid, err := cont.GenerateOID(ctx, daos.SX, daos.OTArray) // chunks spread over every target
	if err != nil {
		fmt.Println(err)
		return
	}
	arr, err := cont.ArrayCreate(ctx, oid, 8, 1024)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer arr.Close()

	// cells 0-1 and 2046-2047 (the last two of the second chunk), from one buffer
	data := []byte("cell0...cell1...cell2046cell2047")
	ranges := []daos.ArrayRange{{Idx: 0, Len: 2}, {Idx: 2046, Len: 2}}
	if err := arr.Write(ctx, ranges, [][]byte{data}); err != nil {
		fmt.Println(err)
		return
	}
	size, err := arr.GetSize(ctx)
	fmt.Println("size:", size, err)

	// cells never written read as zeros
	buf := make([]byte, 3*8)
	err = arr.Read(ctx, []daos.ArrayRange{{Idx: 1, Len: 3}}, [][]byte{buf})
	fmt.Printf("cells 1-3: %q %v\n", buf, err)

	// the same array opened elsewhere: its metadata says how it is cut
	again, err := cont.ArrayOpen(ctx, oid)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("cell size:", again.CellSize(), "chunk size:", again.ChunkSize())

	fmt.Println("truncate:", again.SetSize(ctx, 1))
	size, err = arr.GetSize(ctx)
	fmt.Println("size:", size, err)
	// Output:
	// size: 2048 <nil>
	// cells 1-3: "cell1...\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" <nil>
	// cell size: 8 chunk size: 1024
	// truncate: <nil>
	// size: 1 <nil>
}

// A flat key-value store: put, get (with a size query first), list, remove.
func ExampleKV() {
	ctx := context.Background()
	cont, done, err := openCont(ctx, "kvs")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer done()

	oid, err := cont.GenerateOID(ctx, daos.SX, daos.OTKVHashed)
	if err != nil {
		fmt.Println(err)
		return
	}
	kv, err := cont.KVOpen(oid)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer kv.Close()

	for k, v := range map[string]string{"alpha": "first", "beta": "second", "gamma": "third"} {
		if err := kv.Put(ctx, k, []byte(v)); err != nil {
			fmt.Println(err)
			return
		}
	}
	n, err := kv.Get(ctx, "beta", nil) // how big is it?
	if err != nil {
		fmt.Println(err)
		return
	}
	buf := make([]byte, n)
	n, err = kv.Get(ctx, "beta", buf)
	fmt.Println("beta:", string(buf[:n]), err)

	err = kv.PutCond(ctx, daos.CondDkeyInsert, "beta", []byte("again")) // only if absent
	fmt.Println("insert beta:", derName(err))

	count := 0
	var anchor daos.Anchor
	for !anchor.EOF {
		keys, err := kv.List(ctx, &anchor, 2) // keys come shard by shard, in no set order
		if err != nil {
			fmt.Println(err)
			return
		}
		count += len(keys)
	}
	fmt.Println("keys:", count)

	fmt.Println("remove:", kv.Remove(ctx, "alpha"))
	_, err = kv.Get(ctx, "alpha", buf)
	fmt.Println("get alpha:", derName(err))
	_, err = kv.Get(ctx, "gamma", buf[:2])
	fmt.Println("get gamma into 2 bytes:", derName(err))
	// Output:
	// beta: second <nil>
	// insert beta: DER_EXIST
	// keys: 3
	// remove: <nil>
	// get alpha: DER_NONEXIST
	// get gamma into 2 bytes: DER_REC2BIG
}
