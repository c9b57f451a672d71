// Package testsys helps tests that start servers: free ports on 127.0.0.1 now,
// whole systems as they grow (DESIGN.md: a test that needs a whole system
// starts one with a helper here).
package testsys

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// Tests take ports from [portLow, portHigh): below Linux's ephemeral range
// (32768-60999), so that no outgoing connection of a server started earlier
// can take a port between the moment a test picks it and the moment a server
// binds it. Each port is handed out once per test process.
const (
	portLow  = 20000
	portHigh = 32700
)

var (
	portsMu sync.Mutex
	given   = map[int]bool{}
)

// take reserves ports (all or none) if they are free now and were not handed
// out before.
func take(ports ...int) bool {
	portsMu.Lock()
	defer portsMu.Unlock()
	for _, p := range ports {
		if p >= portHigh || given[p] || !free(p) {
			return false
		}
	}
	for _, p := range ports {
		given[p] = true
	}
	return true
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	for range 1000 {
		if p := portLow + rand.IntN(portHigh-portLow); take(p) {
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
		if p := portLow + rand.IntN(portHigh-portLow-1); take(p, p+1) {
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
	for range 1000 {
		base := portLow + 10*rand.IntN((portHigh-portLow)/10)
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
