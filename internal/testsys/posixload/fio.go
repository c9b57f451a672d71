package posixload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

const fioTimeout = 3 * time.Minute

// fioJob is the job file: 64 MiB in all. Group "seq": 4 jobs writing their
// own file sequentially; group "rand" (after seq, stonewall): 4 jobs writing
// disjoint 8 MiB ranges of one shared file in random order, verifying every
// 16 blocks while writing (verify_backlog) so that reads follow writes
// closely. Both mix 4 KiB, 64 KiB and 1 MiB blocks (bssplit) and verify
// every block with crc32c at the end; verify_fatal stops at the first bad
// block. psync: libaio needs O_DIRECT to be asynchronous, which FUSE mounts
// may not offer.
const fioJob = `[global]
ioengine=psync
directory=%s
verify=crc32c
verify_fatal=1
do_verify=1
verify_state_save=0
bssplit=4k/30:64k/40:1m/30
end_fsync=1

[seq]
rw=write
size=8m
numjobs=4

[rand]
stonewall
rw=randwrite
verify_backlog=16
filename=fio-rand-shared.dat
size=8m
offset_increment=8m
numjobs=4
`

// FioResult holds fio's figures per group of jobs (seq, rand).
type FioResult struct {
	Groups []FioGroup
	Wall   time.Duration
}

// FioGroup sums one group's jobs (which ran at the same time).
type FioGroup struct {
	Name        string
	Jobs        int
	WriteBytes  int64
	VerifyBytes int64   // read back to verify
	WriteMiBps  float64 // all jobs' bytes over the slowest job's write time
	VerifyMiBps float64
}

// fio's JSON, the parts used.
type fioOutput struct {
	Jobs []struct {
		Name  string      `json:"jobname"`
		Error int         `json:"error"`
		Read  fioJobStats `json:"read"`
		Write fioJobStats `json:"write"`
	} `json:"jobs"`
}

type fioJobStats struct {
	IOBytes int64 `json:"io_bytes"`
	Runtime int64 `json:"runtime"` // ms
}

// Fio runs Debian's fio in dir with the job file above (--verify=crc32c,
// numjobs 4, sequential and random writes with mixed block sizes, 64 MiB in
// all) and fails if fio fails, any job reports an error, or any job did not
// read back everything it wrote. It returns the groups' rates.
func Fio(tb testing.TB, dir string) FioResult {
	tb.Helper()
	fio := tool(tb, "fio", "fio")
	res, err := runFio(tb, fio, dir, false)
	if err != nil {
		tb.Fatalf("posixload.Fio in %s: %v", dir, err)
	}
	return res
}

// runFio runs the job (or, with verifyOnly, only its verification of what a
// previous run wrote) and checks its report.
func runFio(tb testing.TB, fio, dir string, verifyOnly bool) (FioResult, error) {
	job := filepath.Join(tb.TempDir(), "posixload.fio")
	// fio reads ':' in directory= as a separator of several directories.
	jobText := fmt.Sprintf(fioJob, strings.ReplaceAll(dir, ":", `\:`))
	if err := os.WriteFile(job, []byte(jobText), 0o644); err != nil {
		return FioResult{}, err
	}
	args := []string{"--output-format=json", job}
	if verifyOnly {
		args = append(args, "--verify_only")
	}
	r := run(dir, nil, fioTimeout, fio, args...)
	res, perr := parseFio(r.stdout, !verifyOnly)
	res.Wall = r.elapsed
	if r.err != nil {
		msg := r.describe("fio", fioTimeout)
		if perr != nil {
			msg += "\n" + perr.Error()
		}
		return res, errors.New(msg)
	}
	if perr != nil {
		return res, fmt.Errorf("%v\nstderr:\n%s", perr, tail(r.stderr))
	}
	return res, nil
}

// parseFio reads fio's JSON report (after any warnings fio printed first),
// fails on any job's error and on a job that did not verify all it wrote, and
// sums the groups.
func parseFio(out string, wrote bool) (FioResult, error) {
	i := strings.Index(out, "\n{")
	if strings.HasPrefix(out, "{") {
		i = -1
	} else if i < 0 {
		return FioResult{}, fmt.Errorf("no JSON report in fio's output:\n%s", tail(out))
	}
	var o fioOutput
	if err := json.NewDecoder(bytes.NewReader([]byte(out[i+1:]))).Decode(&o); err != nil {
		return FioResult{}, fmt.Errorf("fio's JSON report: %v\n%s", err, tail(out))
	}
	if len(o.Jobs) == 0 {
		return FioResult{}, errors.New("fio's report lists no jobs")
	}
	groups := map[string]*FioGroup{}
	maxW, maxR := map[string]int64{}, map[string]int64{}
	var errs []string
	for _, j := range o.Jobs {
		if j.Error != 0 {
			errs = append(errs, fmt.Sprintf("job %s: error %d", j.Name, j.Error))
		}
		if j.Read.IOBytes != j.Write.IOBytes || j.Write.IOBytes == 0 {
			errs = append(errs, fmt.Sprintf("job %s: wrote %d bytes, verified %d", j.Name, j.Write.IOBytes, j.Read.IOBytes))
		}
		g := groups[j.Name]
		if g == nil {
			g = &FioGroup{Name: j.Name}
			groups[j.Name] = g
		}
		g.Jobs++
		g.WriteBytes += j.Write.IOBytes
		g.VerifyBytes += j.Read.IOBytes
		maxW[j.Name] = max(maxW[j.Name], j.Write.Runtime)
		maxR[j.Name] = max(maxR[j.Name], j.Read.Runtime)
	}
	var res FioResult
	for name, g := range groups {
		if wrote && maxW[name] > 0 {
			g.WriteMiBps = float64(g.WriteBytes) / (1 << 20) / (float64(maxW[name]) / 1000)
		}
		if maxR[name] > 0 {
			g.VerifyMiBps = float64(g.VerifyBytes) / (1 << 20) / (float64(maxR[name]) / 1000)
		}
		res.Groups = append(res.Groups, *g)
	}
	sort.Slice(res.Groups, func(a, b int) bool { return res.Groups[a].Name > res.Groups[b].Name }) // seq, rand
	if len(errs) > 0 {
		return res, fmt.Errorf("fio reports: %s", strings.Join(errs, "; "))
	}
	return res, nil
}
