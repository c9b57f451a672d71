package posixload

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// HDF5 geometry (csrc/hdf5.c takes rows per rank and columns; the chunk
// shape is compiled in).
const (
	hdf5RowsPerRank = 64
	hdf5Cols        = 100
	hdf5Ranks       = 4
	hdf5Chunk       = "CHUNKED ( 24, 40 )"
	hdf5Timeout     = 3 * time.Minute
	hdf5ToolTimeout = time.Minute
)

// HDF5Result names the files HDF5 wrote and what it took.
type HDF5Result struct {
	Files []string // a, b (the same content) and c (one value changed)
	Write time.Duration
}

// hdf5Dataset describes one dataset of csrc/hdf5.c: its type as h5dump prints
// it, its element size and the value at (i, j).
type hdf5Dataset struct {
	name  string
	dtype string
	size  int
	value func(i, j int) float64
}

var hdf5Datasets = []hdf5Dataset{
	{"/grid/index", "H5T_STD_I32LE", 4, func(i, j int) float64 { return float64(i*hdf5Cols + j) }},
	{"/grid/temperature", "H5T_IEEE_F64LE", 8, func(i, j int) float64 { return float64(i)*1000 + float64(j) + 0.25 }},
	{"/grid/pressure", "H5T_IEEE_F32LE", 4, func(i, j int) float64 { return float64(i+j) * 0.5 }},
}

// HDF5 compiles csrc/hdf5.c with h5pcc.mpich (Debian's libhdf5-mpich-dev,
// HDF5 1.10 over MPICH; once per process) and runs it with mpirun -np 4 in
// dir: it writes three files with chunked 2-D datasets, each rank a
// hyperslab, collectively (H5FD_MPIO_COLLECTIVE), and reads another rank's
// part back collectively. Then Debian's tools read the files: h5ls -r (the
// tree and shapes), h5dump (layout, types, some values as text, every value
// as binary, the attribute), h5diff a b (no difference) and h5diff a c (the
// one value the program changed in c: proves h5diff would notice). Debian
// ships the tools only serial (hdf5-tools); they read files written in
// parallel like any other.
func HDF5(tb testing.TB, dir string) HDF5Result {
	tb.Helper()
	_, mpirun := mpi(tb)
	tool(tb, "libmpich-dev", "mpicc.mpich") // h5pcc.mpich calls it
	h5pcc := tool(tb, "libhdf5-mpich-dev", "h5pcc.mpich")
	h5ls := tool(tb, "hdf5-tools", "h5ls")
	h5dump := tool(tb, "hdf5-tools", "h5dump")
	h5diff := tool(tb, "hdf5-tools", "h5diff")
	bin := build(tb, "hdf5.c", h5pcc)

	res := HDF5Result{}
	for _, n := range []string{"hdf5-a.h5", "hdf5-b.h5", "hdf5-c.h5"} {
		res.Files = append(res.Files, filepath.Join(dir, n))
	}
	r := run(dir, nil, hdf5Timeout, mpirun, mpirunArgs(hdf5Ranks, bin,
		append([]string{fmt.Sprint(hdf5RowsPerRank), fmt.Sprint(hdf5Cols)}, res.Files...)...)...)
	if r.err != nil {
		tb.Fatalf("posixload.HDF5: %s", r.describe("mpirun hdf5", hdf5Timeout))
	}
	res.Write = r.elapsed
	a, b, c := res.Files[0], res.Files[1], res.Files[2]

	// h5ls -r: the tree, the shapes.
	out := mustRun(tb, h5ls, "-r", a)
	if err := checkH5ls(out); err != nil {
		tb.Fatalf("posixload.HDF5: h5ls -r %s: %v\n%s", a, err, out)
	}

	nrows := hdf5RowsPerRank * hdf5Ranks
	for _, d := range hdf5Datasets {
		// Header: type, shape, chunked layout.
		out := mustRun(tb, h5dump, "-H", "-p", "-d", d.name, a)
		for _, want := range []string{"DATATYPE  " + d.dtype,
			fmt.Sprintf("SIMPLE { ( %d, %d ) / ( %d, %d ) }", nrows, hdf5Cols, nrows, hdf5Cols), hdf5Chunk} {
			if !strings.Contains(out, want) {
				tb.Fatalf("posixload.HDF5: h5dump -H -p -d %s %s: no %q in\n%s", d.name, a, want, out)
			}
		}
		// Every value, through h5dump's binary output.
		bin := filepath.Join(tb.TempDir(), "dump.bin")
		mustRun(tb, h5dump, "-d", d.name, "-b", "LE", "-o", bin, a)
		raw, err := os.ReadFile(bin)
		if err != nil {
			tb.Fatalf("posixload.HDF5: h5dump -b output: %v", err)
		}
		if err := checkH5Values(d, raw, nrows); err != nil {
			tb.Fatalf("posixload.HDF5: h5dump -d %s -b LE %s: %v", d.name, a, err)
		}
	}

	// Some values as text, across the boundary of ranks 0 and 1 (rows 63, 64).
	out = mustRun(tb, h5dump, "-d", "/grid/index", "-s", "63,38", "-c", "2,4", a)
	if err := checkH5DumpText(out, 63, 38, 2, 4, hdf5Datasets[0].value); err != nil {
		tb.Fatalf("posixload.HDF5: h5dump -d /grid/index -s 63,38 -c 2,4 %s: %v\n%s", a, err, out)
	}
	out = mustRun(tb, h5dump, "-a", "/grid/nprocs", a)
	if !regexp.MustCompile(`\(0\): 4\b`).MatchString(out) {
		tb.Fatalf("posixload.HDF5: h5dump -a /grid/nprocs %s: want (0): 4 in\n%s", a, out)
	}

	// h5diff: a and b are the same; c differs in one value.
	if r := run("", nil, hdf5ToolTimeout, h5diff, a, b); r.err != nil || strings.Contains(r.stdout, "differences found") {
		tb.Fatalf("posixload.HDF5: h5diff of two files written the same way: %s", r.describe("h5diff "+a+" "+b, hdf5ToolTimeout))
	}
	r = run("", nil, hdf5ToolTimeout, h5diff, a, c)
	var ee *exec.ExitError
	if !errors.As(r.err, &ee) || ee.ExitCode() != 1 || !strings.Contains(r.stdout, "1 differences found") {
		tb.Fatalf("posixload.HDF5: h5diff should report exactly 1 difference (exit 1) between %s and the perturbed %s: %s",
			a, c, r.describe("h5diff", hdf5ToolTimeout))
	}
	return res
}

// mustRun runs a tool that must succeed and returns its output.
func mustRun(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	r := run("", nil, hdf5ToolTimeout, name, args...)
	if r.err != nil {
		tb.Fatalf("posixload: %s", r.describe(name+" "+strings.Join(args, " "), hdf5ToolTimeout))
	}
	return r.stdout
}

// checkH5ls checks h5ls -r's listing of csrc/hdf5.c's tree, line by line.
func checkH5ls(out string) error {
	want := map[string]string{"/": "Group", "/grid": "Group"}
	for _, d := range hdf5Datasets {
		want[d.name] = fmt.Sprintf("Dataset {%d, %d}", hdf5RowsPerRank*hdf5Ranks, hdf5Cols)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, kind, ok := strings.Cut(strings.TrimSpace(line), " ")
		kind = strings.TrimSpace(kind)
		if !ok || want[name] == "" {
			return fmt.Errorf("unexpected line %q", line)
		}
		if kind != want[name] {
			return fmt.Errorf("%s is %q, want %q", name, kind, want[name])
		}
		if seen[name] {
			return fmt.Errorf("%s listed twice", name)
		}
		seen[name] = true
	}
	for name := range want {
		if !seen[name] {
			return fmt.Errorf("%s missing", name)
		}
	}
	return nil
}

// checkH5Values checks a dataset's little-endian binary dump, every element.
func checkH5Values(d hdf5Dataset, raw []byte, nrows int) error {
	if len(raw) != nrows*hdf5Cols*d.size {
		return fmt.Errorf("%d bytes, want %d", len(raw), nrows*hdf5Cols*d.size)
	}
	for i := 0; i < nrows; i++ {
		for j := 0; j < hdf5Cols; j++ {
			p := raw[(i*hdf5Cols+j)*d.size:]
			var got float64
			switch d.dtype {
			case "H5T_STD_I32LE":
				got = float64(int32(binary.LittleEndian.Uint32(p)))
			case "H5T_IEEE_F64LE":
				got = math.Float64frombits(binary.LittleEndian.Uint64(p))
			default:
				got = float64(math.Float32frombits(binary.LittleEndian.Uint32(p)))
			}
			if want := d.value(i, j); got != want {
				return fmt.Errorf("element (%d,%d) is %v, want %v", i, j, got, want)
			}
		}
	}
	return nil
}

// checkH5DumpText checks the DATA lines of an h5dump subset ("(63,38): 6338,
// 6339, ..." with a row per line, possibly wrapped) of count values from
// (i0, j0).
func checkH5DumpText(out string, i0, j0, ni, nj int, value func(i, j int) float64) error {
	_, data, ok := strings.Cut(out, "DATA {")
	if !ok {
		return errors.New("no DATA section")
	}
	data, _, _ = strings.Cut(data, "}")
	var vals []float64
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if _, rest, ok := strings.Cut(line, "):"); ok && strings.HasPrefix(line, "(") {
			line = rest
		}
		for _, f := range strings.Split(line, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return fmt.Errorf("value %q: %v", f, err)
			}
			vals = append(vals, v)
		}
	}
	if len(vals) != ni*nj {
		return fmt.Errorf("%d values, want %d", len(vals), ni*nj)
	}
	for k, v := range vals {
		i, j := i0+k/nj, j0+k%nj
		if want := value(i, j); v != want {
			return fmt.Errorf("(%d,%d) is %v, want %v", i, j, v, want)
		}
	}
	return nil
}
