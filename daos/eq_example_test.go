package daos_test

import (
	"context"
	"fmt"

	"github.com/godaos/godaos/daos"
)

// Keep 16 updates in flight from one goroutine on an event queue, then poll
// them back; the events are then ready to be launched again.
func ExampleEQ() {
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
	if _, err := pool.ContCreate(ctx, daos.ContCreateOptions{Label: "async"}); err != nil {
		fmt.Println(err)
		return
	}
	defer pool.ContDestroy(ctx, "async")
	cont, err := pool.ContOpen(ctx, "async", daos.RW)
	if err != nil {
		fmt.Println(err)
		return
	}
	oid, err := cont.GenerateOID(ctx, daos.SX, daos.OTMultiHashed)
	if err != nil {
		fmt.Println(err)
		return
	}
	obj, err := cont.Obj(oid)
	if err != nil {
		fmt.Println(err)
		return
	}

	eq := daos.NewEQ()
	defer eq.Close() // refused (DER_BUSY) while events are in flight
	iod := []daos.IOD{{Akey: []byte("v"), Type: daos.Single, Size: 4}}
	for i := range 16 {
		ev, err := daos.NewEvent(eq, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		dkey := []byte(fmt.Sprintf("rec-%02d", i))
		ev.Launch(ctx, func(ctx context.Context) error { // returns at once
			_, err := obj.Update(ctx, dkey, iod, [][]byte{[]byte("data")})
			return err
		})
	}
	inFlight, completed := eq.Len()
	fmt.Println("launched:", inFlight+completed)

	done := 0
	for done < 16 {
		evs, err := eq.Poll(ctx, 1, 16, -1) // at least one, at most 16
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, ev := range evs {
			if ev.Err() != nil {
				fmt.Println(ev.Err())
			}
			done++
		}
	}
	fmt.Println("completed:", done)
	// Output:
	// launched: 16
	// completed: 16
}
