// Package testsys helps tests that start servers: free ports on 127.0.0.1 now,
// whole systems as they grow (DESIGN.md: a test that needs a whole system
// starts one with a helper here).
package testsys

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Tests take ports from [portLow, portHigh): below Linux's ephemeral range
// (32768-60999), so that no outgoing connection of a server started earlier
// can take a port between the moment a test picks it and the moment a server
// binds it. Each port is handed out once per test process, and from slabs of
// slabSize ports that the process holds a lock on: the test processes that
// `go test ./...` runs side by side never hand out the same port, so a
// server killed and restarted by one finds its ports still free.
const (
	portLow  = 20000
	portHigh = 32700
	slabSize = 100
)

var (
	portsMu   sync.Mutex
	given     = map[int]bool{}
	slabs     = map[int]bool{} // slabs this process holds
	slabFiles []*os.File       // their lock files, open for the process's life
)

// candidate is a port p, 10-aligned when aligned, with [p, p+span) in one
// slab: mostly in a slab this process holds already, so that it takes new
// slabs only as it needs them.
func candidate(span int, aligned bool) int {
	portsMu.Lock()
	var held []int
	for n := range slabs {
		held = append(held, n)
	}
	portsMu.Unlock()
	n := rand.IntN((portHigh - portLow) / slabSize)
	if len(held) > 0 && rand.IntN(8) > 0 {
		n = held[rand.IntN(len(held))]
	}
	off := rand.IntN(slabSize - span + 1)
	if aligned {
		off = 10 * rand.IntN((slabSize-span)/10+1)
	}
	return portLow + n*slabSize + off
}

// take reserves ports (all or none) if they are free now, were not handed
// out before, and are in slabs this process holds or can take.
func take(ports ...int) bool {
	portsMu.Lock()
	defer portsMu.Unlock()
	for _, p := range ports {
		if p < portLow || p >= portHigh || given[p] || !holdSlab((p-portLow)/slabSize) || !free(p) {
			return false
		}
	}
	for _, p := range ports {
		given[p] = true
	}
	return true
}

// holdSlab takes slab n for this process if no other test process holds it
// (an flock on a file under the temporary directory, released when the
// process exits, however it exits).
func holdSlab(n int) bool {
	if slabs[n] {
		return true
	}
	dir := filepath.Join(os.TempDir(), "godaos-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true // no locks to be had: the per-process check alone
	}
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("slab-%d", n)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return false // another test process holds it
	}
	slabs[n] = true
	slabFiles = append(slabFiles, f) // kept open (and from the collector): the lock lasts as long as the process
	return true
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	for range 1000 {
		if p := candidate(1, false); take(p) {
			return p
		}
	}
	tb.Fatal("no free port")
	return 0
}

// FreePortPair returns a port p with p+1 also free: a server's control port and
// its management service's Raft port.
func FreePortPair(tb testing.TB) int {
	tb.Helper()
	for range 1000 {
		if p := candidate(2, false); take(p, p+1) {
			return p
		}
	}
	tb.Fatal("no free pair of ports")
	return 0
}

// FreeBase returns a base port b such that b+10*i+k is free for every server i
// < n and k < 5 (launcher local's layout: control, -, telemetry, fabric, and
// the fabric port + 1 that SWIM takes).
func FreeBase(tb testing.TB, n int) int {
	tb.Helper()
	if 10*n > slabSize {
		tb.Fatalf("FreeBase(%d): at most %d servers fit in one slab of ports", n, slabSize/10)
	}
	for range 1000 {
		base := candidate(10*n, true)
		var ports []int
		for i := range n {
			for k := range 5 {
				ports = append(ports, base+10*i+k)
			}
		}
		if take(ports...) {
			return base
		}
	}
	tb.Fatal("no free range of ports")
	return 0
}

func free(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
