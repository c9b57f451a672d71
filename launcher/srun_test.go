package launcher

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/testsys"
)

// startSlurm starts a Slurm cluster of nodes n1..nN on this machine with
// scripts/slurm-test-cluster.sh (munged, slurmctld, one slurmd per node, all
// under a temporary directory, free ports), points the Slurm commands at it
// and stops it when the test ends. The test's own environment must not look
// like a job of another cluster.
func startSlurm(t *testing.T, nodes int) {
	t.Helper()
	needTools(t, "munged", "munge", "slurmctld", "slurmd", "srun", "sinfo", "squeue", "scancel", "salloc")
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SLURM_") {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
	dir := filepath.Join(t.TempDir(), "slurm")
	script, _ := filepath.Abs(filepath.Join("..", "scripts", "slurm-test-cluster.sh"))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, script, "start", dir, strconv.Itoa(nodes)).CombinedOutput()
	t.Cleanup(func() {
		if out, err := exec.Command(script, "stop", dir).CombinedOutput(); err != nil {
			t.Errorf("%s stop: %v\n%s", script, err, out)
		}
	})
	if err != nil {
		t.Fatalf("%s start: %v\n%s", script, err, out)
	}
	t.Setenv("SLURM_CONF", filepath.Join(dir, "slurm.conf"))
}

func srunOptions(t *testing.T, dir string, n int) SrunOptions {
	return SrunOptions{N: n, ClusterOptions: ClusterOptions{Dir: dir, BasePort: testsys.FreeBase(t, n), Targets: 1,
		Bin: daosServer(t), Launcher: launcherBin(t), Timeout: 60 * time.Second}}
}

// squeueSteps lists the job steps Slurm runs.
func squeueSteps(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("squeue", "-h", "-s", "-o", "%i").Output()
	if err != nil {
		t.Fatalf("squeue: %v", err)
	}
	return strings.Fields(string(out))
}

// The srun test, on a two-node Slurm cluster started on this machine
// for the subtests.
func TestSrun(t *testing.T) {
	startSlurm(t, 2)
	t.Run("TwoNodes", testSrunTwoNodes)
	t.Run("ServerFailsWhileStarting", testSrunServerFails)
	t.Run("InsideAllocation", testSrunInsideAllocation)
}

// `launcher srun -N 2` (outside an allocation: a job of its own on idle
// nodes) starts one daos_server per node in a job step, every rank joins,
// and `launcher stop` ends the step with SIGTERM: the servers exit 0.
func testSrunTwoNodes(t *testing.T) {
	dir := t.TempDir()
	c, err := StartSrun(context.Background(), srunOptions(t, dir, 2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })

	checkJoined(t, c)
	if !slices.Equal(c.Nodes, []string{"n1", "n2"}) || !slices.Contains(squeueSteps(t), c.Step) {
		t.Fatalf("nodes %v, step %q; squeue -s: %v", c.Nodes, c.Step, squeueSteps(t))
	}
	for _, n := range c.Nodes {
		r, err := readRun(dir, n)
		if err != nil || r.Node != n || r.Job+"."+r.Step != c.Step || !ours(r.PID) {
			t.Errorf("%s%s: %+v %v", n, runSuffix, r, err)
		}
	}

	if err := StopDir(dir); err != nil {
		t.Fatal(err)
	}
	checkStopped(t, c, dir)
	if steps := squeueSteps(t); slices.Contains(steps, c.Step) {
		t.Errorf("step %s still listed: %v", c.Step, steps)
	}
}

// A server that cannot start (n2's control port is taken) fails the launch
// with its node's name and its last words; the step ends.
func testSrunServerFails(t *testing.T) {
	dir := t.TempDir()
	o := srunOptions(t, dir, 2)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(o.BasePort+10))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := StartSrun(context.Background(), o)
	if err == nil {
		c.Stop()
		t.Fatal("started with n2's port taken")
	}
	for _, w := range []string{"the server of n2 ended while starting", "exit code 1", "control port", filepath.Join(dir, "srun.log")} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if l := leftovers(dir); len(l) > 0 {
		t.Errorf("still running after a failed launch:\n%s", strings.Join(l, "\n"))
	}
	// srun ends its step as it exits; Slurm may list it a moment longer
	if !waitUntil(func() bool { return len(squeueSteps(t)) == 0 }, 20*time.Second) {
		t.Errorf("steps still listed 20 s after a failed launch: %v", squeueSteps(t))
	}
}

// Inside an allocation (salloc), launcher srun runs a step of that job on
// its nodes (SLURM_JOB_NODELIST), here one of two; the job outlives the stop.
func testSrunInsideAllocation(t *testing.T) {
	out, err := exec.Command("salloc", "-N", "2", "--no-shell", "--immediate=30").CombinedOutput()
	if err != nil {
		t.Fatalf("salloc: %v\n%s", err, out)
	}
	job := ""
	if f := strings.Fields(string(out)); len(f) > 0 {
		job = f[len(f)-1] // "salloc: Granted job allocation 7"
	}
	t.Cleanup(func() { exec.Command("scancel", job).Run() })
	t.Setenv("SLURM_JOB_ID", job)
	t.Setenv("SLURM_JOB_NODELIST", "n[1-2]")

	dir := t.TempDir()
	c, err := StartSrun(context.Background(), srunOptions(t, dir, 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	checkJoined(t, c)
	if !strings.HasPrefix(c.Step, job+".") || !slices.Equal(c.Nodes, []string{"n1"}) {
		t.Errorf("step %s on %v, want a step of job %s on n1", c.Step, c.Nodes, job)
	}
	if err := StopDir(dir); err != nil {
		t.Fatal(err)
	}
	checkStopped(t, c, dir)
	if out, err := exec.Command("squeue", "-h", "-j", job, "-o", "%T").Output(); err != nil || strings.TrimSpace(string(out)) != "RUNNING" {
		t.Errorf("job %s after the stop: %q %v", job, out, err)
	}
}

// Which nodes: the given list, else the allocation's, else idle ones; the
// first N.
func TestSrunNodes(t *testing.T) {
	ctx := context.Background()
	t.Setenv("SLURM_JOB_NODELIST", "n[1-4]")
	if got, err := srunNodes(ctx, SrunOptions{N: 2}); err != nil || !slices.Equal(got, []string{"n1", "n2"}) {
		t.Errorf("allocation n[1-4], -N 2: %v %v", got, err)
	}
	if got, err := srunNodes(ctx, SrunOptions{}); err != nil || len(got) != 4 {
		t.Errorf("allocation n[1-4]: %v %v", got, err)
	}
	if got, err := srunNodes(ctx, SrunOptions{Nodelist: "a,b[7-8]"}); err != nil || !slices.Equal(got, []string{"a", "b7", "b8"}) {
		t.Errorf("--nodelist a,b[7-8]: %v %v", got, err)
	}
	if _, err := srunNodes(ctx, SrunOptions{N: 5}); err == nil || !strings.Contains(err.Error(), "5 nodes wanted, 4 in the allocation") {
		t.Errorf("5 of 4: %v", err)
	}
	os.Unsetenv("SLURM_JOB_NODELIST")
	if _, err := srunNodes(ctx, SrunOptions{}); err == nil || !strings.Contains(err.Error(), "outside an allocation") {
		t.Errorf("no -N outside an allocation: %v", err)
	}
}

func TestSrunArgs(t *testing.T) {
	o := SrunOptions{Partition: "debug", SrunArgs: []string{"--time=10"}, ClusterOptions: ClusterOptions{Dir: "/d", Bin: "/b/daos_server", Launcher: "/b/launcher"}}
	want := "-N 2 -w n1,n2 --ntasks-per-node=1 --overlap --kill-on-bad-exit=0 --job-name=daos_server --label -p debug --time=10 /b/launcher node --dir /d --bin /b/daos_server"
	if got := strings.Join(srunArgs(o, []string{"n1", "n2"}), " "); got != want {
		t.Errorf("srun %s\nwant %s", got, want)
	}
}
