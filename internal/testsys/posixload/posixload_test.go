package posixload

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Every workload on a local directory (ext4 or overlay here): what the
// dfuse tests will run on a mount.

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

func TestMPIIO(t *testing.T) {
	for _, mode := range []MPIIOMode{CollectiveBuffering, DataSieving} {
		t.Run(mode.String(), func(t *testing.T) {
			res := MPIIO(t, t.TempDir(), MPIIOOptions{Mode: mode})
			t.Logf("%d bytes in %v", res.Size, res.Wall.Round(time.Millisecond))
			for _, p := range res.Phases {
				t.Logf("  %-26s %8.1f MiB/s", p.Name, p.MiBps())
			}
		})
	}
}

// Odd ranks through another path to the same directory (a symlink here; a
// second mount of the container on dfuse).
func TestMPIIOSecondDir(t *testing.T) {
	dir := t.TempDir()
	second := filepath.Join(t.TempDir(), "second")
	if err := os.Symlink(dir, second); err != nil {
		t.Fatal(err)
	}
	MPIIO(t, dir, MPIIOOptions{Mode: DataSieving, SecondDir: second, SizePerRank: 256 << 10})
}

func TestHDF5(t *testing.T) {
	res := HDF5(t, t.TempDir())
	t.Logf("mpirun (3 files) took %v", res.Write.Round(time.Millisecond))
}

func TestFio(t *testing.T) {
	dir := t.TempDir()
	res := Fio(t, dir)
	for _, g := range res.Groups {
		t.Logf("%s: %d jobs, %d MiB written at %.0f MiB/s, verified at %.0f MiB/s", g.Name, g.Jobs, g.WriteBytes>>20, g.WriteMiBps, g.VerifyMiBps)
	}
	if len(res.Groups) != 2 || res.Groups[0].Jobs != 4 || res.Groups[1].Jobs != 4 {
		t.Errorf("groups %+v, want seq and rand with 4 jobs each", res.Groups)
	}

	// The verification can fail: flip one byte of what fio wrote and run
	// the job's verification alone.
	p := filepath.Join(dir, "seq.2.0")
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, 5_000_000)
	f.WriteAt([]byte{^b[0]}, 5_000_000)
	f.Close()
	if _, err := runFio(t, tool(t, "fio", "fio"), dir, true); err == nil {
		t.Errorf("fio --verify_only did not notice a flipped byte in %s", p)
	} else if !strings.Contains(err.Error(), "error") {
		t.Errorf("fio failed, but not as a verify error: %v", err)
	}
}

func TestSemantics(t *testing.T) {
	Semantics(t, t.TempDir(), SemanticsOptions{})
}

func TestLocks(t *testing.T) {
	dir := t.TempDir()
	Locks(t, dir, dir)
}

// The checks behind the workloads fail when they should.

func TestCheckMPIIOFile(t *testing.T) {
	const ranks, size = 4, 2048
	data := make([]byte, 3*ranks*size)
	for off := range data {
		data[off] = pattern(mpiioOwner(int64(off), ranks, size), int64(off))
	}
	if err := checkMPIIOFile(data, ranks, size); err != nil {
		t.Fatalf("a good file: %v", err)
	}
	for _, c := range []struct {
		name  string
		off   int
		owner int
	}{
		{"independent", 3*size + 7, 3},
		{"vector", ranks*size + 1024 + 5, 1},
		{"subarray", 2*ranks*size + 256*4 + 256*2, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			if o := mpiioOwner(int64(c.off), ranks, size); o != c.owner {
				t.Fatalf("offset %d owned by %d, want %d", c.off, o, c.owner)
			}
			bad := append([]byte(nil), data...)
			bad[c.off] ^= 1
			err := checkMPIIOFile(bad, ranks, size)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("offset %d", c.off)) {
				t.Errorf("flipped byte at %d: %v", c.off, err)
			}
			// A byte written by the wrong rank is caught as well.
			bad[c.off] = pattern((c.owner+1)%ranks, int64(c.off))
			if checkMPIIOFile(bad, ranks, size) == nil && bad[c.off] != data[c.off] {
				t.Errorf("a byte of rank %d at %d passed", (c.owner+1)%ranks, c.off)
			}
		})
	}
	if err := checkMPIIOFile(data[:len(data)-1], ranks, size); err == nil {
		t.Errorf("a short file passed")
	}
}

func TestParseFio(t *testing.T) {
	job := func(name string, errno int, w, r int64) string {
		return fmt.Sprintf(`{"jobname":%q,"error":%d,"read":{"io_bytes":%d,"runtime":10},"write":{"io_bytes":%d,"runtime":20}}`, name, errno, r, w)
	}
	report := func(jobs ...string) string {
		return "fio: a warning first\n{\n\"fio version\":\"fio-3.33\",\"jobs\":[" + strings.Join(jobs, ",") + "]}\ntrailing"
	}
	for _, c := range []struct {
		name, out string
		ok        bool
	}{
		{"good", report(job("seq", 0, 1<<20, 1<<20), job("seq", 0, 1<<20, 1<<20), job("rand", 0, 1<<20, 1<<20)), true},
		{"job-error", report(job("seq", 0, 1<<20, 1<<20), job("seq", 84, 1<<20, 1<<19)), false},
		{"unverified", report(job("seq", 0, 1<<20, 0)), false},
		{"nothing-written", report(job("seq", 0, 0, 0)), false},
		{"no-jobs", report(), false},
		{"no-json", "fio: something broke\n", false},
		{"bad-json", "{\n\"jobs\": [", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := parseFio(c.out, true)
			if (err == nil) != c.ok {
				t.Fatalf("parseFio: %v, want ok=%v", err, c.ok)
			}
			if c.name == "good" {
				if len(res.Groups) != 2 || res.Groups[0].Name != "seq" || res.Groups[0].Jobs != 2 ||
					res.Groups[0].WriteMiBps != 100 || res.Groups[0].VerifyMiBps != 200 {
					t.Errorf("groups %+v", res.Groups)
				}
			}
		})
	}
}

func TestCheckH5(t *testing.T) {
	good := `/                        Group
/grid                    Group
/grid/index              Dataset {256, 100}
/grid/pressure           Dataset {256, 100}
/grid/temperature        Dataset {256, 100}
`
	if err := checkH5ls(good); err != nil {
		t.Fatalf("good listing: %v", err)
	}
	for name, bad := range map[string]string{
		"missing": strings.Replace(good, "/grid/pressure           Dataset {256, 100}\n", "", 1),
		"shape":   strings.Replace(good, "{256, 100}", "{255, 100}", 1),
		"extra":   good + "/grid/other Dataset {1}\n",
		"twice":   good + "/grid/index Dataset {256, 100}\n",
	} {
		if checkH5ls(bad) == nil {
			t.Errorf("h5ls listing %s passed", name)
		}
	}
	idx := hdf5Datasets[0].value
	dump := `   SUBSET {
      DATA {
      (63,38): 6338, 6339, 6340, 6341,
      (64,38): 6438, 6439, 6440, 6441
      }
   }`
	if err := checkH5DumpText(dump, 63, 38, 2, 4, idx); err != nil {
		t.Fatalf("good dump: %v", err)
	}
	for name, bad := range map[string]string{
		"value": strings.Replace(dump, "6440", "6441", 1),
		"short": strings.Replace(dump, ", 6441\n", "\n", 1),
		"empty": "nothing",
	} {
		if checkH5DumpText(bad, 63, 38, 2, 4, idx) == nil {
			t.Errorf("h5dump text %s passed", name)
		}
	}
	d := hdf5Datasets[0]
	raw := make([]byte, 4*10*hdf5Cols)
	for i := 0; i < 10; i++ {
		for j := 0; j < hdf5Cols; j++ {
			binary.LittleEndian.PutUint32(raw[4*(i*hdf5Cols+j):], uint32(d.value(i, j)))
		}
	}
	if err := checkH5Values(d, raw, 10); err != nil {
		t.Fatalf("good values: %v", err)
	}
	raw[4*517]++
	if checkH5Values(d, raw, 10) == nil {
		t.Errorf("a changed value passed")
	}
}

func TestParseDirents(t *testing.T) {
	rec := func(name string, typ byte) []byte {
		n := (19 + len(name) + 1 + 7) &^ 7
		b := make([]byte, n)
		binary.NativeEndian.PutUint16(b[16:], uint16(n))
		b[18] = typ
		copy(b[19:], name)
		return b
	}
	var buf []byte
	for _, r := range [][]byte{rec(".", 4), rec("..", 4), rec("a", 8), rec(strings.Repeat("x", 255), 10)} {
		buf = append(buf, r...)
	}
	ents, err := parseDirents(buf)
	if err != nil || len(ents) != 2 || ents[0] != (dirent{"a", 8}) || ents[1].name != strings.Repeat("x", 255) || ents[1].typ != 10 {
		t.Fatalf("parseDirents: %v, %v", ents, err)
	}
	if _, err := parseDirents(buf[:len(buf)-3]); err == nil {
		t.Errorf("a truncated buffer parsed")
	}
}

func FuzzParseDirents(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 24))
	b := make([]byte, 24)
	binary.NativeEndian.PutUint16(b[16:], 24)
	copy(b[19:], "abc")
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		ents, err := parseDirents(b)
		if err == nil {
			for _, e := range ents {
				if strings.IndexByte(e.name, 0) >= 0 || e.name == "." || e.name == ".." {
					t.Fatalf("entry %q", e.name)
				}
			}
		}
	})
}

func FuzzParseFio(f *testing.F) {
	f.Add(`{"jobs":[{"jobname":"seq","error":0,"read":{"io_bytes":1,"runtime":1},"write":{"io_bytes":1,"runtime":1}}]}`)
	f.Add("warning\n{\"jobs\":[]}")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		res, err := parseFio(s, true)
		if err == nil && len(res.Groups) == 0 {
			t.Fatalf("no error and no groups")
		}
	})
}

func FuzzParseOutputs(f *testing.F) {
	f.Add("phase write 10 0.5\nok\n", "DATA {\n(0,0): 1, 2\n}")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, phases, dump string) {
		for _, p := range parsePhases(phases) {
			_ = p.MiBps()
		}
		_ = checkH5DumpText(dump, 0, 0, 1, 2, func(i, j int) float64 { return float64(j + 1) })
		_ = checkH5ls(dump)
	})
}

// negativeEnv makes TestSemanticsDetectsFailures's child run the suite with
// options the local filesystem contradicts.
const negativeEnv = "GODAOS_POSIXLOAD_NEGATIVE"

// TestSemanticsDetectsFailures runs Semantics expecting no hard links on a
// filesystem that has them, in a child test process: exactly the HardLink
// subtest must fail there.
func TestSemanticsDetectsFailures(t *testing.T) {
	if os.Getenv(negativeEnv) == "1" {
		Semantics(t, t.TempDir(), SemanticsOptions{NoHardLinks: true, LargeDir: 10})
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^TestSemanticsDetectsFailures$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), negativeEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("Semantics with NoHardLinks passed on a filesystem with hard links:\n%s", out)
	}
	var failed []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "---" && f[1] == "FAIL:" && strings.Count(f[2], "/") == 1 {
			failed = append(failed, f[2])
		}
	}
	if len(failed) != 1 || failed[0] != "TestSemanticsDetectsFailures/HardLink" {
		t.Errorf("failed subtests %q, want only HardLink:\n%s", failed, out)
	}
}
