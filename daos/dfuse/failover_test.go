package dfuse_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/testsys/cluster"
)

// TestFailoverRP3: programs writing through a dfuse mount of an rd_fac 2
// container whose directories are RP_3G1 and files RP_3GX keep going when a
// server is killed with SIGKILL, and every write they saw succeed reads back.
func TestFailoverRP3(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process fault test (minutes): run in the full pass")
	}
	sys := cluster.Start(t, cluster.Options{Servers: 4, Targets: 2})
	ctx := context.Background()
	c, err := daos.Init(ctx, daos.Options{AgentSocket: sys.AgentSocket})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Fini()
	p, err := c.PoolConnect(ctx, sys.Pool, daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ContCreate(ctx, daos.ContCreateOptions{Label: "rp3", Type: "POSIX", Props: map[string]string{"rd_fac": "2"}}); err != nil {
		t.Fatal(err)
	}
	h, err := p.ContOpen(ctx, "rp3", daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	if err := dfs.Format(ctx, h, dfs.Attr{DirClass: placement.RP3G1, FileClass: placement.RP3GX, ChunkSize: 256 << 10}); err != nil {
		t.Fatal(err)
	}
	h.Close(ctx)
	d := mountWith(t, []string{"DAOS_AGENT_DRPC_DIR=" + filepath.Dir(sys.AgentSocket)}, sys.Pool, "rp3")

	// 3 writers, each a directory of files of 16 blocks of 64 KiB
	const block, perFile, writers = 64 << 10, 16, 3
	var acked [writers]atomic.Int64 // blocks written and acknowledged, in order
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	stamp := func(w, b int) []byte {
		buf := bytes.Repeat([]byte{byte(w*31 + b)}, block)
		binary.LittleEndian.PutUint64(buf, uint64(b))
		return buf
	}
	fileOf := func(w, b int) string {
		return filepath.Join(d.dir, fmt.Sprintf("w%d", w), fmt.Sprintf("f%d", b/perFile))
	}
	for w := range writers {
		if err := os.Mkdir(filepath.Join(d.dir, fmt.Sprintf("w%d", w)), 0o755); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var f *os.File
			for b := 0; b < 4000 && !stop.Load(); b++ { // bounded
				if b%perFile == 0 {
					if f != nil {
						if err := f.Close(); err != nil {
							errs <- err
							return
						}
					}
					var err error
					if f, err = os.Create(fileOf(w, b)); err != nil {
						errs <- err
						return
					}
				}
				if _, err := f.Write(stamp(w, b)); err != nil {
					errs <- fmt.Errorf("writer %d block %d: %w", w, b, err)
					return
				}
				acked[w].Store(int64(b + 1))
			}
			if f != nil {
				f.Close()
			}
		}()
	}
	waitBlocks := func(n int64) {
		for i := 0; i < 6000; i++ { // bounded: 10 minutes at most
			total := int64(0)
			for w := range writers {
				total += acked[w].Load()
			}
			select {
			case err := <-errs:
				t.Fatalf("a writer failed: %v", err)
			default:
			}
			if total >= n {
				return
			}
			sleepShort()
		}
		t.Fatalf("the writers did not reach %d blocks", n)
	}
	waitBlocks(150)
	t.Logf("kill -9 server 3 after %d blocks", acked[0].Load()+acked[1].Load()+acked[2].Load())
	if err := sys.KillServer(3); err != nil {
		t.Fatal(err)
	}
	base := acked[0].Load() + acked[1].Load() + acked[2].Load()
	waitBlocks(base + 300) // the writers go on, degraded
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a writer failed: %v", err)
	}
	for w := range writers {
		n := int(acked[w].Load())
		for b := 0; b < n; b++ {
			f, err := os.Open(fileOf(w, b))
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, block)
			_, err = f.ReadAt(got, int64(b%perFile)*block)
			f.Close()
			if err != nil || !bytes.Equal(got, stamp(w, b)) {
				t.Fatalf("writer %d block %d: acknowledged but reads back wrong (%v)", w, b, err)
			}
		}
	}
	t.Logf("%d blocks acknowledged and verified", acked[0].Load()+acked[1].Load()+acked[2].Load())
}

// sleepShort paces polling loops.
func sleepShort() { time.Sleep(100 * time.Millisecond) }
