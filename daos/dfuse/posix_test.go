package dfuse_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/internal/testsys/posixload"
)

// The workloads of internal/testsys/posixload, each proven on a local
// directory there, run here on real dfuse mounts.

func TestSemantics(t *testing.T) {
	d := mount(t, newCont(t, dfs.Attr{}))
	posixload.Semantics(t, d.dir, posixload.SemanticsOptions{NoHardLinks: true})
}

func TestFio(t *testing.T) {
	d := mount(t, newCont(t, dfs.Attr{}))
	res := posixload.Fio(t, d.dir)
	t.Logf("fio on dfuse: %+v", res)
}

// TestMPIIO runs the MPI-IO program (4 ranks, independent and collective
// writes and reads, strided views) through the mount in both modes, and
// logs each phase's rate beside the same program's on the local file
// system in the same run (docs/performance.md).
func TestMPIIO(t *testing.T) {
	d := mount(t, newCont(t, dfs.Attr{}))
	for _, mode := range []posixload.MPIIOMode{posixload.CollectiveBuffering, posixload.DataSieving} {
		t.Run(mode.String(), func(t *testing.T) {
			res := posixload.MPIIO(t, d.dir, posixload.MPIIOOptions{Mode: mode})
			local := posixload.MPIIO(t, t.TempDir(), posixload.MPIIOOptions{Mode: mode})
			for i, p := range res.Phases {
				t.Logf("  %-26s %8.1f MiB/s through dfuse, %8.1f MiB/s on the local file system", p.Name, p.MiBps(), local.Phases[i].MiBps())
			}
		})
	}
}

// TestMPIIOTwoMounts: data sieving (read-modify-write under fcntl locks)
// with the odd ranks writing through a second mount: two clients whose
// locks and caches must agree for the file to come out right.
func TestMPIIOTwoMounts(t *testing.T) {
	cont := newCont(t, dfs.Attr{})
	a, b := mount(t, cont), mount(t, cont)
	posixload.MPIIO(t, a.dir, posixload.MPIIOOptions{Mode: posixload.DataSieving, SecondDir: b.dir})
}

func TestHDF5(t *testing.T) {
	d := mount(t, newCont(t, dfs.Attr{}))
	posixload.HDF5(t, d.dir)
}

// TestLocksTwoMounts: fcntl locks taken through one mount hold against a
// process using the same file through another mount of the container (two
// clients).
func TestLocksTwoMounts(t *testing.T) {
	cont := newCont(t, dfs.Attr{})
	a, b := mount(t, cont), mount(t, cont)
	posixload.Locks(t, a.dir, b.dir)
}

// TestStopWithIOInFlight: dfuse stopped (SIGTERM) or killed (SIGKILL) while
// a program writes loses no write the program saw succeed.
func TestStopWithIOInFlight(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			cont := newCont(t, dfs.Attr{})
			d := mount(t, cont)
			f, err := os.Create(filepath.Join(d.dir, "log"))
			if err != nil {
				t.Fatal(err)
			}
			const rec = 64 << 10
			acked := make(chan int, 1)
			go func() {
				buf := make([]byte, rec)
				n := 0
				for ; n < 2000; n++ { // bounded: 125 MiB at most
					for i := 0; i < rec; i += 8 {
						binary.LittleEndian.PutUint64(buf[i:], uint64(n))
					}
					if _, err := f.Write(buf); err != nil {
						break
					}
				}
				f.Close()
				acked <- n
			}()
			time.Sleep(300 * time.Millisecond) // let some writes through: any amount will do
			d.Signal(sig)
			n := <-acked
			if sig == syscall.SIGKILL {
				d.Wait()
				exec.Command("fusermount3", "-u", "-z", d.dir).Run()
			} else if err := d.Wait(); err != nil {
				t.Fatalf("dfuse after SIGTERM: %v\n%s", err, d.Log())
			}
			t.Logf("%d records of 64 KiB acknowledged before dfuse stopped", n)

			d2 := mount(t, cont)
			got, err := os.ReadFile(filepath.Join(d2.dir, "log"))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) < n*rec {
				t.Fatalf("%d bytes survive, %d were acknowledged", len(got), n*rec)
			}
			want := make([]byte, rec)
			for r := 0; r < n; r++ {
				for i := 0; i < rec; i += 8 {
					binary.LittleEndian.PutUint64(want[i:], uint64(r))
				}
				if !bytes.Equal(got[r*rec:(r+1)*rec], want) {
					t.Fatalf("record %d differs", r)
				}
			}
		})
	}
}

// TestBadInput: what a POSIX program sees for names too long and for a
// full pool (ENOSPC, as from a full disk, not EIO).
func TestBadInput(t *testing.T) {
	d := mount(t, newCont(t, dfs.Attr{}))
	long := string(bytes.Repeat([]byte("n"), 256))
	if err := os.WriteFile(filepath.Join(d.dir, long), nil, 0o644); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Fatalf("256-byte name: %v", err)
	}
	if err := os.Mkdir(filepath.Join(d.dir, long), 0o755); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Fatalf("256-byte directory name: %v", err)
	}

	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	sys.CreatePool(t, "small", u.Username) // 256 MiB for data
	full := mountPool(t, "small", newContIn(t, "small", dfs.Attr{}))
	f, err := os.Create(filepath.Join(full.dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var werr error
	for i := 0; i < 1024 && werr == nil; i++ { // bounded: 4 times the pool
		_, werr = f.Write(buf)
	}
	if !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("writing past the pool's space: %v, want ENOSPC", werr)
	}
	// what was written before stays readable
	if _, err := f.ReadAt(buf[:4096], 0); err != nil {
		t.Fatalf("read after ENOSPC: %v", err)
	}
}
