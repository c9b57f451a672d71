package launcher

import (
	"context"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/testsys"
)

// needTools fails (not skips) a test when a program it runs is missing:
// scripts/deps.sh installs them, so a missing one is a broken machine.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found: install the Debian packages pdsh, slurm-wlm and munge (scripts/deps.sh does)", n)
		}
	}
}

// leftovers lists the live processes whose command line mentions dir (the
// servers' configuration files, pdsh's, srun's): after a stop, none.
func leftovers(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmd), dir) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	return out
}

// checkJoined checks, through the control plane as dmg system query does,
// that the system has one joined rank per node, in the node's fault domain.
func checkJoined(t *testing.T, c *Cluster) {
	t.Helper()
	resp, err := testsys.CtlClient(t, c.HostList[len(c.HostList)-1]).SystemQuery(context.Background(), &ctlpb.SystemQueryReq{})
	if err != nil {
		t.Fatal(err)
	}
	var domains []string
	for _, m := range resp.Members {
		if m.State != "joined" || !slices.Contains(c.HostList, m.ControlAddr) {
			t.Errorf("member %+v, want joined at one of %v", m, c.HostList)
		}
		domains = append(domains, m.FaultDomain)
	}
	slices.Sort(domains)
	var want []string
	for _, n := range c.Nodes {
		want = append(want, "/"+n)
	}
	if !slices.Equal(domains, want) {
		t.Errorf("fault domains %v, want one rank on each of %v", domains, want)
	}
}

// checkStopped checks that the launch command ended with status 0 (pdsh -S
// and srun report the servers' largest), every server logged its clean stop,
// and nothing of the system runs any more.
func checkStopped(t *testing.T, c *Cluster, dir string) {
	t.Helper()
	if !waitUntil(func() bool { done, _ := c.Exited(); return done }, 10*time.Second) {
		t.Fatalf("%s still runs after stop", c.Mode)
	}
	if _, st := c.Exited(); st.ExitCode() != 0 {
		t.Errorf("%s exited with %v:\n%s", c.Mode, st, readFile(c.Log))
	}
	log := readFile(c.Log)
	if n := strings.Count(log, `msg="daos_server stopped"`); n != len(c.Nodes) {
		t.Errorf("%d of %d servers logged a clean stop:\n%s", n, len(c.Nodes), log)
	}
	if rePdshExit.MatchString(log) || reSrunTask.MatchString(log) {
		t.Errorf("a server did not exit 0:\n%s", log)
	}
	if l := leftovers(dir); len(l) > 0 {
		t.Errorf("still running after stop:\n%s", strings.Join(l, "\n"))
	}
	if _, err := ReadState(dir); err == nil {
		t.Error("state file left after stop")
	}
}

// The pdsh test: `launcher pdsh -R exec -w 'node[1-3]'` starts three
// real daos_servers under pdsh on this machine's loopback, every rank joins,
// and `launcher stop` (StopDir, as from another process) ends them cleanly.
func TestPdshExec(t *testing.T) {
	needTools(t, "pdsh")
	dir := t.TempDir()
	o := PdshOptions{Hosts: "node[1-3]", Rcmd: "exec",
		ClusterOptions: ClusterOptions{Dir: dir, BasePort: testsys.FreeBase(t, 3), Targets: 1, Bin: daosServer(t), Launcher: launcherBin(t)}}
	c, err := StartPdsh(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })

	checkJoined(t, c)
	st, err := ReadState(dir)
	if err != nil || st.Mode != "pdsh" || st.LaunchPID != c.LaunchPID || len(st.PIDs) != 3 || !slices.Equal(st.Nodes, []string{"node1", "node2", "node3"}) {
		t.Fatalf("state %+v %v", st, err)
	}
	for _, p := range st.PIDs {
		if !ours(p) || ppid(p) != st.LaunchPID {
			t.Errorf("pid %d is not a daos_server under pdsh", p)
		}
	}
	for i, n := range st.Nodes {
		if b, err := os.ReadFile(filepath.Join(dir, n+".yml")); err != nil || !strings.Contains(string(b), "port: "+strconv.Itoa(o.BasePort+10*i)+"\n") {
			t.Errorf("%s.yml: %v\n%s", n, err, b)
		}
	}
	if _, err := StartPdsh(context.Background(), o); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Errorf("a second launch in the same directory: %v", err)
	}

	ranks := memberRanks(t, c)
	if err := StopDir(dir); err != nil {
		t.Fatal(err)
	}
	checkStopped(t, c, dir)

	// again in the same directory: the same ranks come back
	c2, err := StartPdsh(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c2.Stop() })
	if again := memberRanks(t, c2); !maps.Equal(again, ranks) {
		t.Errorf("ranks after a restart %v, before %v", again, ranks)
	}
	if err := c2.Stop(); err != nil {
		t.Fatal(err)
	}
	checkStopped(t, c2, dir)
}

// memberRanks maps each member's UUID to its rank.
func memberRanks(t *testing.T, c *Cluster) map[string]uint32 {
	t.Helper()
	resp, err := testsys.CtlClient(t, c.HostList[0]).SystemQuery(context.Background(), &ctlpb.SystemQueryReq{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]uint32{}
	for _, mb := range resp.Members {
		m[mb.Uuid] = mb.Rank
	}
	return m
}

// A server that cannot start (its control port is taken) fails the launch
// with its node's name and its last words, and the others are stopped.
func TestPdshServerFailsWhileStarting(t *testing.T) {
	needTools(t, "pdsh")
	dir := t.TempDir()
	base := testsys.FreeBase(t, 3)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+10)) // node2's control port
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	o := PdshOptions{Hosts: "node[1-3]", Rcmd: "exec",
		ClusterOptions: ClusterOptions{Dir: dir, BasePort: base, Targets: 1, Bin: daosServer(t), Launcher: launcherBin(t)}}
	c, err := StartPdsh(context.Background(), o)
	if err == nil {
		c.Stop()
		t.Fatal("started with node2's port taken")
	}
	for _, w := range []string{"the server of node2 ended while starting", "exit code 1", "control port", filepath.Join(dir, "pdsh.log")} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if l := leftovers(dir); len(l) > 0 {
		t.Errorf("still running after a failed launch:\n%s", strings.Join(l, "\n"))
	}
}

func TestPdshArgs(t *testing.T) {
	o := PdshOptions{Rcmd: "exec", ClusterOptions: ClusterOptions{Dir: "/d", Bin: "/b/daos_server", Launcher: "/b/launcher"}}
	hosts := []string{"n1", "n2"}
	if got := strings.Join(pdshArgs(o, hosts), " "); got != "-R exec -f 2 -S -w n1,n2 /b/daos_server start --auto-format -o /d/%h.yml" {
		t.Errorf("exec: %s", got)
	}
	o.Rcmd = "ssh" // no %h: each node finds its file itself
	if got := strings.Join(pdshArgs(o, hosts), " "); got != "-R ssh -f 2 -S -w n1,n2 /b/launcher node --dir /d --bin /b/daos_server" {
		t.Errorf("ssh: %s", got)
	}
}
