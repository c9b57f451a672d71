package engine

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/internal/security/capability"
)

// cluster is n in-process engines, as a collective's peers.
type cluster struct {
	engines []*Engine
	peers   []*enginepb.Peer
	dial    Dialer
	seal    Sealer // as the servers seal their requests
}

// startCluster starts n engines of an insecure system (unsigned requests).
func startCluster(tb testing.TB, n, targets int, pace func() func()) *cluster {
	return startClusterKey(tb, n, targets, pace, nil)
}

// startClusterKey starts n engines of a system whose servers' key is key
// (nil: insecure).
func startClusterKey(tb testing.TB, n, targets int, pace func() func(), key crypto.Signer) *cluster {
	tb.Helper()
	c := &cluster{seal: func(op uint16, msg []byte) ([]byte, error) { return capability.Seal(key, op, msg) }}
	var caps capability.Verifier
	if key != nil {
		caps.Key = key.Public()
	}
	dir := tb.TempDir()
	for i := range n {
		opts := Options{Rank: uint32(i), Targets: targets, ScmDir: filepath.Join(dir, fmt.Sprint(i), "scm"), BdevDir: filepath.Join(dir, fmt.Sprint(i), "bdev"),
			WorkersPerTarget: 2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Caps: caps, Seal: c.seal}
		if pace != nil {
			opts.collectivePace = pace()
		}
		e, err := Open(opts)
		if err != nil {
			tb.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		go e.Serve(l)
		c.engines = append(c.engines, e)
		c.peers = append(c.peers, &enginepb.Peer{Rank: uint32(i), Addr: l.Addr().String(), Targets: uint32(targets)})
	}
	cache := rpc.NewClientCache(rpc.ClientOptions{})
	c.dial = cache.Get
	tb.Cleanup(func() {
		cache.Close()
		for _, e := range c.engines {
			if e != nil {
				e.Shutdown(context.Background())
			}
		}
	})
	return c
}

func TestSplit(t *testing.T) {
	peers := make([]*enginepb.Peer, 10)
	for i := range peers {
		peers[i] = &enginepb.Peer{Rank: uint32(i)}
	}
	for _, tc := range []struct {
		n, groups int
		want      string
	}{{10, 4, "3,3,2,2"}, {10, 1, "10"}, {10, 20, "1,1,1,1,1,1,1,1,1,1"}, {3, 4, "1,1,1"}, {0, 4, ""}} {
		var sizes []string
		total := 0
		for _, g := range split(peers[:tc.n], tc.groups) {
			sizes = append(sizes, fmt.Sprint(len(g)))
			for _, p := range g {
				if p.Rank != uint32(total) {
					t.Errorf("split(%d, %d): rank %d out of order", tc.n, tc.groups, p.Rank)
				}
				total++
			}
		}
		if got := strings.Join(sizes, ","); got != tc.want || total != tc.n {
			t.Errorf("split(%d, %d) = %s, want %s", tc.n, tc.groups, got, tc.want)
		}
	}
}

// A pool created over a tree of 10 engines exists on every target of every
// engine; destroying it the same way removes it everywhere.
func TestCollectiveCreateDestroy(t *testing.T) {
	c := startCluster(t, 10, 2, nil)
	hdr := sealedMsg(enginepb.OpTargetCreate, &enginepb.TargetCreateReq{Pool: tPool[:], ScmSize: 16 << 20, NvmeSize: 16 << 20})
	if failed := Broadcast(context.Background(), c.dial, c.seal, enginepb.OpTargetCreate, hdr, c.peers, 3, nil); len(failed) != 0 {
		t.Fatalf("create: %v", failed)
	}
	for i, e := range c.engines {
		for _, tg := range e.targets {
			tg.mu.RLock()
			p := tg.pools[tPool]
			tg.mu.RUnlock()
			if p == nil {
				t.Errorf("engine %d target %d lacks the pool", i, tg.idx)
			}
		}
	}
	hdr = sealedMsg(enginepb.OpTargetDestroy, &enginepb.TargetDestroyReq{Pool: tPool[:]})
	if failed := Broadcast(context.Background(), c.dial, c.seal, enginepb.OpTargetDestroy, hdr, c.peers, 3, nil); len(failed) != 0 {
		t.Fatalf("destroy: %v", failed)
	}
	for i, e := range c.engines {
		if len(e.Pools()) != 0 {
			t.Errorf("engine %d still has %v", i, e.Pools())
		}
	}
}

// Failures come back naming their ranks: an operation failing on some ranks
// fails only there; a dead rank fails with its subtree.
func TestCollectiveFailures(t *testing.T) {
	c := startCluster(t, 9, 1, nil)
	ctx := context.Background()
	// the pool exists on ranks 0-5 only: creating a container fails on 6-8
	hdr := sealedMsg(enginepb.OpTargetCreate, &enginepb.TargetCreateReq{Pool: tPool[:], ScmSize: 16 << 20, NvmeSize: 16 << 20})
	if failed := Broadcast(ctx, c.dial, c.seal, enginepb.OpTargetCreate, hdr, c.peers[:6], 2, nil); len(failed) != 0 {
		t.Fatal(failed)
	}
	hdr = sealedMsg(enginepb.OpContCreate, &enginepb.ContCreateReq{Pool: tPool[:], Cont: tCont[:]})
	failed := Broadcast(ctx, c.dial, c.seal, enginepb.OpContCreate, hdr, c.peers, 2, nil)
	if len(failed) != 3 {
		t.Fatalf("failed on %v, want ranks 6-8", failed)
	}
	for r := uint32(6); r <= 8; r++ {
		if !daoserr.Is(failed[r], daoserr.Nonexist) || !strings.Contains(failed[r].Error(), "has no storage") {
			t.Errorf("rank %d: %v", r, failed[r])
		}
	}
	// stop the head of the second group: it fails, and so does its subtree
	groups := split(c.peers, 2)
	head := groups[1][0].Rank
	c.engines[head].Shutdown(ctx)
	c.engines[head] = nil
	failed = Broadcast(ctx, c.dial, c.seal, enginepb.OpPing, nil, c.peers, 2, nil)
	if len(failed) != len(groups[1]) {
		t.Fatalf("with rank %d dead: failed %v, want its group %v", head, failed, groups[1])
	}
	if !daoserr.Is(failed[head], daoserr.Unreach) {
		t.Errorf("dead rank: %v", failed[head])
	}
	for _, p := range groups[1][1:] {
		if !strings.Contains(failed[p.Rank].Error(), fmt.Sprintf("rank %d, its parent", head)) {
			t.Errorf("rank %d below the dead one: %v", p.Rank, failed[p.Rank])
		}
	}
}

// A collective's peer list may not make the tree loop or grow out of bounds.
// (A list longer than maxCollectivePeers does not fit in a frame's header
// today: checkPeers is tested directly.)
func TestCheckPeers(t *testing.T) {
	peers := func(ranks ...uint32) []*enginepb.Peer {
		var out []*enginepb.Peer
		for _, r := range ranks {
			out = append(out, &enginepb.Peer{Rank: r})
		}
		return out
	}
	many := make([]uint32, maxCollectivePeers+1)
	for i := range many {
		many[i] = uint32(i + 1)
	}
	for _, tc := range []struct {
		name     string
		peers    []*enginepb.Peer
		contains string // "" for none
	}{
		{"none", nil, ""},
		{"others", peers(1, 2, 5), ""},
		{"the receiver", peers(1, 0, 2), "receiver's own rank 0"},
		{"a rank twice", peers(1, 2, 1), "rank 1 twice"},
		{"as many as allowed", peers(many[:maxCollectivePeers]...), ""},
		{"too many", peers(many...), "65537 peers, at most 65536"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPeers(&enginepb.CollectiveReq{Op: uint32(enginepb.OpPing), Rank: 0, Peers: tc.peers})
			if tc.contains == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !daoserr.Is(err, daoserr.Inval) || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("got %v, want DER_INVAL containing %q", err, tc.contains)
			}
		})
	}
}

// On a secure system a collective's request is sealed by the server that
// starts it and re-sealed by each engine that forwards it; its inner request
// reaches every target of every engine once. Neither can be used again: not
// the collective sent a second time, not its inner request sent directly.
func TestCollectiveSecure(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := startClusterKey(t, 7, 2, nil, key)
	ctx := context.Background()
	inner, err := capability.Seal(key, enginepb.OpTargetCreate, mustMarshal(&enginepb.TargetCreateReq{Pool: tPool[:], ScmSize: 16 << 20, NvmeSize: 16 << 20}))
	if err != nil {
		t.Fatal(err)
	}
	if failed := Broadcast(ctx, c.dial, c.seal, enginepb.OpTargetCreate, inner, c.peers, 2, nil); len(failed) != 0 {
		t.Fatalf("create over a tree of degree 2: %v", failed)
	}
	for i, e := range c.engines {
		if n := len(e.Pools()); n != 1 {
			t.Errorf("engine %d has %d pools, want 1", i, n)
		}
	}

	// the same inner request again, in a new collective: a replay on every rank
	failed := Broadcast(ctx, c.dial, c.seal, enginepb.OpTargetCreate, inner, c.peers, 2, nil)
	if len(failed) != len(c.peers) {
		t.Fatalf("replayed inner request: failed on %d ranks, want all %d: %v", len(failed), len(c.peers), failed)
	}
	for r, err := range failed {
		if !daoserr.Is(err, daoserr.NoPerm) || !strings.Contains(err.Error(), "replayed") {
			t.Errorf("rank %d: %v, want DER_NO_PERM replayed", r, err)
		}
	}

	// the inner request of a collective, taken out and sent directly
	rollback, _ := capability.Seal(key, enginepb.OpContRollback, mustMarshal(&enginepb.ContEpochReq{Pool: tPool[:], Cont: tCont[:], Epoch: 1}))
	Broadcast(ctx, c.dial, c.seal, enginepb.OpContRollback, rollback, c.peers[:1], 2, nil) // no container: fails, but was admitted
	cl, err := c.dial(ctx, c.peers[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Call(ctx, rpc.Message{Opcode: enginepb.OpContRollback, Header: rollback}, nil); !daoserr.Is(err, daoserr.NoPerm) || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("a collective's inner request sent again directly: %v, want DER_NO_PERM replayed", err)
	}

	// a collective request sent twice
	coll, _ := c.seal(enginepb.OpCollective, mustMarshal(&enginepb.CollectiveReq{Op: uint32(enginepb.OpPing), Rank: c.peers[0].Rank}))
	if _, err := cl.Call(ctx, rpc.Message{Opcode: enginepb.OpCollective, Header: coll}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Call(ctx, rpc.Message{Opcode: enginepb.OpCollective, Header: coll}, nil); !daoserr.Is(err, daoserr.NoPerm) || !strings.Contains(err.Error(), "replayed") {
		t.Fatalf("a collective sent twice: %v, want DER_NO_PERM replayed", err)
	}

	// a sender without the key reaches no rank: its collectives are unsigned
	ping := Broadcast(ctx, c.dial, nil, enginepb.OpPing, nil, c.peers, 2, nil)
	if len(ping) != len(c.peers) {
		t.Fatalf("unsigned collectives: failed on %v, want every rank", ping)
	}
}

// pacedSender models a node that sends one message at a time, each costing
// `cost` (serialisation and progress on a real NIC): what makes a flat fan-out
// from one sender grow with N.
func pacedSender(cost time.Duration) func() func() {
	return func() func() {
		var mu sync.Mutex
		return func() {
			mu.Lock()
			time.Sleep(cost)
			mu.Unlock()
		}
	}
}

// BenchmarkCollective reaches N in-process engines with a collective ping, over
// a tree (degree 4) and flat (the sender contacts every rank), with each sender
// paying 200 µs per message sent. Reported: ms per collective.
//
//	go test -run '^$' -bench Collective ./server/engine
func BenchmarkCollective(b *testing.B) {
	const cost = 200 * time.Microsecond
	for _, n := range []int{8, 32, 128, 256} {
		c := startCluster(b, n, 1, pacedSender(cost))
		root := pacedSender(cost)()
		for _, shape := range []struct {
			name   string
			degree int
		}{{"tree4", 4}, {"flat", n}} {
			b.Run(fmt.Sprintf("N=%d/%s", n, shape.name), func(b *testing.B) {
				for b.Loop() {
					if failed := Broadcast(context.Background(), c.dial, c.seal, enginepb.OpPing, nil, c.peers, shape.degree, root); len(failed) != 0 {
						b.Fatal(failed)
					}
				}
			})
		}
	}
}

// sealedMsg is m as an insecure system's server sends op (unsigned).
func sealedMsg(op uint16, m proto.Message) []byte {
	b, err := capability.Seal(nil, op, mustMarshal(m))
	if err != nil {
		panic(err)
	}
	return b
}
