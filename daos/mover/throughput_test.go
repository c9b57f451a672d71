package mover

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
	"time"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/proto/ctlpb"
)

// TestThroughput copies a 1 GiB file POSIX -> container -> POSIX and cp's
// it on the local disk, in the same run, and logs the rates (it checks the
// bytes, never the times). It needs ~3 GiB of disk: run it with
// GODAOS_MOVER_BENCH=1 go test -run TestThroughput -v ./daos/mover.
func TestThroughput(t *testing.T) {
	if os.Getenv("GODAOS_MOVER_BENCH") == "" {
		t.Skip("set GODAOS_MOVER_BENCH=1 to copy 1 GiB and log the rates")
	}
	ctx := context.Background()
	u, _ := user.Current()
	r, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolCreateResp, error) {
		return sys.Admin.PoolCreate(ctx, &ctlpb.PoolCreateReq{Label: "big", ScmSize: 256 << 20, NvmeSize: 2 << 30, User: u.Username, Group: u.Username})
	})
	if err := ctlclient.Err(err, r.GetError(), "pool create big"); err != nil {
		t.Fatal(err)
	}
	c := client(t)
	pool, err := c.PoolConnect(ctx, "big", daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	dir := tempDir(t)
	src := filepath.Join(dir, "src")
	const size = 1 << 30
	f, err := os.Create(filepath.Join(src))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8<<20)
	for off := 0; off < size; off += len(buf) {
		rand.Read(buf)
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	f.Sync()
	f.Close()
	rate := func(d time.Duration) float64 { return float64(size) / (1 << 20) / d.Seconds() }

	// each round beside a cp of the same file, as the machine's load varies
	for _, workers := range []int{16, 4, 16, 4} {
		start := time.Now()
		if out, err := exec.Command("cp", src, filepath.Join(dir, "cp")).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		cpTime := time.Since(start)
		if out, err := exec.Command("sync", filepath.Join(dir, "cp")).CombinedOutput(); err != nil {
			t.Fatalf("sync: %v %s", err, out)
		}
		cpSync := time.Since(start)

		os.Remove(filepath.Join(dir, "cp"))
		label, _ := newPOSIXCont(t, c, "big", dfs.Attr{}) // a new one: the pool holds one copy
		opts := Options{Client: c, Workers: workers}
		start = time.Now()
		st, err := Copy(ctx, ep(t, src), ep(t, "daos://big/"+label), opts)
		if err != nil || st.Bytes != size {
			t.Fatalf("to DAOS: %v %+v", err, st)
		}
		in := time.Since(start)
		back := filepath.Join(dir, "back")
		start = time.Now()
		st, err = Copy(ctx, ep(t, "daos://big/"+label+"/src"), ep(t, back), opts)
		if err != nil || st.Bytes != size {
			t.Fatalf("to POSIX: %v %+v", err, st)
		}
		out := time.Since(start)
		if out, err := exec.Command("sync", back).CombinedOutput(); err != nil {
			t.Fatalf("sync: %v %s", err, out)
		}
		outSync := time.Since(start)
		if out, err := exec.Command("cmp", src, back).CombinedOutput(); err != nil {
			t.Fatalf("cmp: %v %s", err, out)
		}
		os.Remove(back)
		if err := pool.ContDestroy(ctx, label); err != nil {
			t.Fatal(err)
		}
		t.Logf("1 GiB, %2d workers: POSIX->container %4.0f MiB/s, container->POSIX %4.0f MiB/s (%4.0f with its sync); cp on the local disk %4.0f MiB/s (%4.0f with its sync)",
			workers, rate(in), rate(out), rate(outSync), rate(cpTime), rate(cpSync))
	}
}

// TestSmallFiles copies 2000 files of 4 KiB in 20 directories POSIX ->
// container -> POSIX beside cp -a of the same tree, and logs the rates.
func TestSmallFiles(t *testing.T) {
	if os.Getenv("GODAOS_MOVER_BENCH") == "" {
		t.Skip("set GODAOS_MOVER_BENCH=1 to copy 2000 small files and log the rates")
	}
	ctx := context.Background()
	c := client(t)
	dir := tempDir(t)
	src := filepath.Join(dir, "small")
	buf := make([]byte, 4096)
	const dirs, per = 20, 100
	for d := range dirs {
		sub := filepath.Join(src, fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range per {
			rand.Read(buf)
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", i)), buf, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, workers := range []int{16, 64} {
		start := time.Now()
		if out, err := exec.Command("cp", "-a", src, filepath.Join(dir, "cp")).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		cpTime := time.Since(start)
		os.RemoveAll(filepath.Join(dir, "cp"))
		label, _ := newPOSIXCont(t, c, "tank", dfs.Attr{})
		opts := Options{Client: c, Workers: workers}
		start = time.Now()
		if st, err := Copy(ctx, ep(t, src), ep(t, "daos://tank/"+label), opts); err != nil || st.Files != dirs*per {
			t.Fatalf("to DAOS: %v %+v", err, st)
		}
		in := time.Since(start)
		back := filepath.Join(dir, "back")
		start = time.Now()
		if st, err := Copy(ctx, ep(t, "daos://tank/"+label+"/small/"), ep(t, back), opts); err != nil || st.Files != dirs*per {
			t.Fatalf("to POSIX: %v %+v", err, st)
		}
		out := time.Since(start)
		sameTree(t, src, back)
		os.RemoveAll(back)
		rate := func(d time.Duration) float64 { return dirs * per / d.Seconds() }
		t.Logf("%d files of 4 KiB, %2d workers: POSIX->container %5.0f files/s, container->POSIX %5.0f files/s; cp -a on the local disk %5.0f files/s",
			dirs*per, workers, rate(in), rate(out), rate(cpTime))
	}
}
