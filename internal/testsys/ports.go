// Package testsys helps tests that start servers: free ports on 127.0.0.1 now,
// whole systems as they grow (DESIGN.md: a test that needs a whole system
// starts one with a helper here).
package testsys

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreePortPair returns a port p with p+1 also free: a server's control port and
// its management service's Raft port.
func FreePortPair(tb testing.TB) int {
	tb.Helper()
	for range 50 {
		p := FreePort(tb)
		if free(p + 1) {
			return p
		}
	}
	tb.Fatal("no free pair of ports")
	return 0
}

// FreeBase returns a base port b such that b+10*i+k is free for every server i
// < n and k < 4 (launcher local's layout).
func FreeBase(tb testing.TB, n int) int {
	tb.Helper()
	for range 100 {
		base := 20000 + 10*rand.IntN(2000)
		ok := true
		for i := 0; i < n && ok; i++ {
			for k := range 4 {
				if !free(base + 10*i + k) {
					ok = false
					break
				}
			}
		}
		if ok {
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
