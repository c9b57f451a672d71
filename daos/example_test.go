package daos_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/internal/testsys/inproc"
)

// TestMain gives the examples what a user has: a running system with a pool
// "tank" owned by the user, and a daos_agent found through
// DAOS_AGENT_DRPC_DIR.
func TestMain(m *testing.M) {
	s, stop, err := inproc.StartMain(false, "tank")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("DAOS_AGENT_DRPC_DIR", filepath.Dir(s.Agent.Socket()))
	code := m.Run()
	stop()
	testsys.RemoveBinaries() // the binaries cluster.Start built for this package's 3-server tests
	os.Exit(code)
}

// Connect to a pool through the agent, create a container, reserve an object
// ID and keep a note in a user attribute.
func Example() {
	ctx := context.Background()
	c, err := daos.Init(ctx, daos.Options{}) // through daos_agent, at $DAOS_AGENT_DRPC_DIR
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Fini()

	pool, err := c.PoolConnect(ctx, "tank", daos.RW)
	if err != nil {
		fmt.Println(err) // e.g. DER_NO_PERM naming the missing permission
		return
	}
	fmt.Println("access:", pool.Perms)

	cont, err := pool.ContCreate(ctx, daos.ContCreateOptions{Label: "results", Type: "POSIX"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("created:", cont.Label, cont.Type)

	h, err := pool.ContOpen(ctx, "results", daos.RW)
	if err != nil {
		fmt.Println(err)
		return
	}
	oid, err := h.NextOID(ctx) // leased from the container, never handed out twice
	fmt.Println("first object ID:", oid, err)

	set := daos.AttrChange{Set: map[string][]byte{"code": []byte("lammps 2Aug2023")}}
	if _, _, err := pool.ContAttrs(ctx, "results", set); err != nil {
		fmt.Println(err)
		return
	}
	vals, _, err := pool.ContAttrs(ctx, "results", daos.AttrChange{Get: []string{"code"}})
	fmt.Println("code:", string(vals["code"]), err)

	fmt.Println("destroyed:", pool.ContDestroy(ctx, "results") == nil)
	// Output:
	// access: rw
	// created: results POSIX
	// first object ID: 1024 <nil>
	// code: lammps 2Aug2023 <nil>
	// destroyed: true
}

// A container's ACL: read it, let everyone read the data, and see the change.
func ExamplePool_ContACL() {
	ctx := context.Background()
	c, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Fini()
	pool, err := c.PoolConnect(ctx, "tank", daos.RW)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := pool.ContCreate(ctx, daos.ContCreateOptions{Label: "shared"}); err != nil {
		fmt.Println(err)
		return
	}
	defer pool.ContDestroy(ctx, "shared")

	acl, _, _, err := pool.ContACL(ctx, "shared", daos.ACLChange{Update: []string{"A::EVERYONE@:r"}})
	for _, e := range acl {
		fmt.Println(e)
	}
	fmt.Println(err)
	// Output:
	// A::OWNER@:rwdtTaAo
	// A:G:GROUP@:rwtT
	// A::EVERYONE@:r
	// <nil>
}

// Write a value and an array to an object and read them back.
func ExampleObj() {
	ctx := context.Background()
	c, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Fini()
	pool, err := c.PoolConnect(ctx, "tank", daos.RW)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := pool.ContCreate(ctx, daos.ContCreateOptions{Label: "sim"}); err != nil {
		fmt.Println(err)
		return
	}
	defer pool.ContDestroy(ctx, "sim")
	cont, err := pool.ContOpen(ctx, "sim", daos.RW)
	if err != nil {
		fmt.Println(err)
		return
	}
	oid, err := cont.GenerateOID(ctx, daos.SX, daos.OTMultiHashed) // sharded over every target
	if err != nil {
		fmt.Println(err)
		return
	}
	obj, err := cont.Obj(oid)
	if err != nil {
		fmt.Println(err)
		return
	}
	iods := []daos.IOD{
		{Akey: []byte("name"), Type: daos.Single, Size: 5},
		{Akey: []byte("temps"), Type: daos.Array, Size: 1, Recxs: []daos.Recx{{Idx: 0, Nr: 4}}},
	}
	if _, err := obj.Update(ctx, []byte("step-1"), iods, [][]byte{[]byte("hello"), {20, 21, 23, 22}}); err != nil {
		fmt.Println(err)
		return
	}
	got := [][]byte{make([]byte, 5), make([]byte, 4)}
	res, err := obj.Fetch(ctx, []byte("step-1"), iods, got)
	fmt.Println(string(got[0]), got[1], res[0].Size, err)
	// Output:
	// hello [20 21 23 22] 5 <nil>
}
