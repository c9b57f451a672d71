package posixload

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MPIIOMode selects how ROMIO moves non-contiguous data.
type MPIIOMode int

const (
	// CollectiveBuffering: romio_cb_write/romio_cb_read=enable, every rank
	// an aggregator (cb_config_list "*:*"): aggregators write contiguous file
	// domains, no locks needed.
	CollectiveBuffering MPIIOMode = iota
	// DataSieving: romio_ds_write/romio_ds_read=enable and
	// romio_cb_write/romio_cb_read=disable: each rank writes its strided view
	// itself, read-modify-write of extents overlapping other ranks' data under
	// fcntl F_SETLKW locks. Correct only where byte-range locks are.
	DataSieving
)

func (m MPIIOMode) String() string {
	if m == DataSieving {
		return "sieve"
	}
	return "cb"
}

// MPIIOOptions tune MPIIO; the zero value is collective buffering, 1 MiB per
// rank and region, 4 ranks, a 2 min bound.
type MPIIOOptions struct {
	Mode MPIIOMode
	// SizePerRank is what each rank writes in each of the three regions
	// (independent, vector view, subarray view): the file is 3*Ranks*SizePerRank
	// bytes. A multiple of 1 KiB; 0 means 1 MiB.
	SizePerRank int64
	Ranks       int           // 0 means 4
	Timeout     time.Duration // bound on mpirun; 0 means 2 min
	File        string        // name of the file in dir; "" means mpiio-<mode>.dat
	// SecondDir, when set, is dir as another client sees it (a second
	// mount of the same container): odd ranks open the file through it,
	// so that data sieving's read-modify-write needs locks and caches that
	// are coherent between the two.
	SecondDir string
}

// MPIIOResult is what a run measured: per phase, the bytes all ranks moved
// and the slowest rank's time (MPI_Wtime around barriers).
type MPIIOResult struct {
	Path   string
	Size   int64
	Phases []MPIIOPhase
	Wall   time.Duration // mpirun, start to exit
}

// MPIIOPhase is one phase of the MPI-IO program.
type MPIIOPhase struct {
	Name    string // write_independent, write_collective_vector, ...
	Bytes   int64
	Seconds float64
}

// MiBps is the phase's rate.
func (p MPIIOPhase) MiBps() float64 {
	if p.Seconds <= 0 {
		return 0
	}
	return float64(p.Bytes) / (1 << 20) / p.Seconds
}

// Region geometry shared with csrc/mpiio.c.
const (
	mpiioVecBlock = 1024
	mpiioSubCols  = 256
)

// MPIIO compiles csrc/mpiio.c with MPICH's mpicc (once per process) and runs
// it with mpirun -np Ranks on a file in dir: independent writes
// (MPI_File_write_at), collective writes through strided views
// (MPI_Type_vector and MPI_Type_create_subarray with MPI_File_set_view and
// MPI_File_write_at_all), reads back (MPI_File_read_at and
// MPI_File_read_at_all of another rank's part) checked byte for byte in the
// program, then the file is checked again here with os.ReadFile. The test
// fails on any mismatch, naming the first bad offset. The file is left in dir.
// With opts.SecondDir, odd ranks reach the file through the second path.
func MPIIO(tb testing.TB, dir string, opts MPIIOOptions) MPIIOResult {
	tb.Helper()
	if opts.SizePerRank == 0 {
		opts.SizePerRank = 1 << 20
	}
	if opts.Ranks == 0 {
		opts.Ranks = 4
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.File == "" {
		opts.File = "mpiio-" + opts.Mode.String() + ".dat"
	}
	if opts.SizePerRank < 0 || opts.SizePerRank%mpiioVecBlock != 0 || opts.SizePerRank > 1<<30 {
		tb.Fatalf("posixload.MPIIO: SizePerRank %d must be a positive multiple of %d up to 1 GiB",
			opts.SizePerRank, mpiioVecBlock)
	}
	mpicc, mpirun := mpi(tb)
	bin := build(tb, "mpiio.c", mpicc)
	path := filepath.Join(dir, opts.File)
	// MPI_MODE_CREATE keeps an old file's tail: start from nothing.
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		tb.Fatalf("posixload.MPIIO: removing the previous %s: %v", path, err)
	}
	args := []string{path, fmt.Sprint(opts.SizePerRank), opts.Mode.String()}
	if opts.SecondDir != "" {
		args = append(args, filepath.Join(opts.SecondDir, opts.File))
	}
	r := run(dir, nil, opts.Timeout, mpirun, mpirunArgs(opts.Ranks, bin, args...)...)
	if r.err != nil {
		tb.Fatalf("posixload.MPIIO (%s, %d ranks x %d bytes, %s): %s", opts.Mode, opts.Ranks, opts.SizePerRank, path,
			r.describe("mpirun", opts.Timeout))
	}
	res := MPIIOResult{Path: path, Size: 3 * int64(opts.Ranks) * opts.SizePerRank, Wall: r.elapsed}
	res.Phases = parsePhases(r.stdout)
	if len(res.Phases) != 6 || !strings.Contains(r.stdout, "ok "+opts.Mode.String()) {
		tb.Fatalf("posixload.MPIIO: the program exited 0 without reporting its 6 phases and ok:\n%s\n%s",
			r.stdout, r.stderr)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("posixload.MPIIO: reading %s back: %v", path, err)
	}
	if err := checkMPIIOFile(data, opts.Ranks, opts.SizePerRank); err != nil {
		tb.Fatalf("posixload.MPIIO (%s): %s: %v", opts.Mode, path, err)
	}
	return res
}

func parsePhases(out string) []MPIIOPhase {
	var ps []MPIIOPhase
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "phase" {
			continue
		}
		b, err1 := strconv.ParseInt(f[2], 10, 64)
		s, err2 := strconv.ParseFloat(f[3], 64)
		if err1 == nil && err2 == nil {
			ps = append(ps, MPIIOPhase{Name: f[1], Bytes: b, Seconds: s})
		}
	}
	return ps
}

// pattern is the byte the owner rank writes at file offset off (as in
// csrc/mpiio.c, in 32-bit arithmetic).
func pattern(owner int, off int64) byte {
	v := uint32(off)*2654435761 + uint32(owner+1)*0x9E3779B9
	v ^= v >> 15
	v ^= v >> 8
	return byte(v)
}

// mpiioOwner is the rank that wrote file offset off, or -1 past the end.
func mpiioOwner(off int64, ranks int, size int64) int {
	region := int64(ranks) * size
	switch {
	case off < region:
		return int(off / size)
	case off < 2*region:
		return int(((off - region) / mpiioVecBlock) % int64(ranks))
	case off < 3*region:
		return int(((off - 2*region) % (int64(ranks) * mpiioSubCols)) / mpiioSubCols)
	}
	return -1
}

// checkMPIIOFile checks a whole file independently of the MPI program.
func checkMPIIOFile(data []byte, ranks int, size int64) error {
	want := 3 * int64(ranks) * size
	if int64(len(data)) != want {
		return fmt.Errorf("file is %d bytes, want %d", len(data), want)
	}
	regions := []string{"independent writes", "vector view", "subarray view"}
	for off, b := range data {
		o := mpiioOwner(int64(off), ranks, size)
		if w := pattern(o, int64(off)); b != w {
			return fmt.Errorf("byte at offset %d (region %s, written by rank %d) is 0x%02x, want 0x%02x",
				off, regions[int64(off)/(int64(ranks)*size)], o, b, w)
		}
	}
	return nil
}
