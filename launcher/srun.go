package launcher

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
)

// SrunOptions describe a launch in a Slurm job step: one daos_server per node.
type SrunOptions struct {
	ClusterOptions
	N         int      // nodes (srun -N); default: every node of Nodelist or of the allocation
	Nodelist  string   // the nodes (a host list); default: the allocation's, else idle ones (sinfo)
	Partition string   // srun -p
	SrunArgs  []string // more srun options: --account, --time, ...
}

// StartSrun renders DIR/<node>.yml for every node, starts
//
//	srun -N n -w NODES --ntasks-per-node=1 launcher node --dir DIR --bin daos_server
//
// inside the current allocation (SLURM_JOB_NODELIST) or, outside one, as a
// job of its own on idle nodes, and waits until every rank has joined. Each
// node's task finds its file by SLURMD_NODENAME and becomes its daos_server.
// srun keeps running, and with it the servers, after this program ends;
// StopDir stops the step (scancel --signal=TERM).
func StartSrun(ctx context.Context, o SrunOptions) (*Cluster, error) {
	names, err := srunNodes(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := o.defaults(len(names)); err != nil {
		return nil, err
	}
	if err := refuseRunning(o.Dir); err != nil {
		return nil, err
	}
	cfgs, err := writeNodeConfigs(&o.ClusterOptions, slurmAddrs(ctx, names))
	if err != nil {
		return nil, err
	}
	c := newCluster("srun", o.ClusterOptions, cfgs)
	if err := c.start("srun", srunArgs(o, names)); err != nil {
		return nil, err
	}
	exited := func() error {
		if err := c.launchExited(); err != nil {
			return err
		}
		return srunTaskExited(c.Log)
	}
	if err := waitJoined(ctx, c.HostList, len(cfgs), o.Timeout, exited, "see "+c.Log); err != nil {
		c.Stop()
		return nil, err
	}
	r, err := readRun(o.Dir, names[0])
	if err != nil || r.Job == "" || r.Step == "" {
		c.Stop()
		return nil, daoserr.Newf(daoserr.Nonexist, "launcher: the servers run but %s names no job step (%v)", filepath.Join(o.Dir, names[0]+runSuffix), err).
			WithResolution("give --dir a directory that every node shares with this host")
	}
	c.Step = r.Job + "." + r.Step
	if err := c.writeState(); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// srunArgs is srun's command line. --overlap: later steps of the allocation
// (the clients) may share the servers' CPUs. --kill-on-bad-exit=0: a server
// that fails does not take the others with it (a storage system outlives a
// node). --label: each line of the log says which task (node) wrote it.
func srunArgs(o SrunOptions, nodes []string) []string {
	args := []string{"-N", strconv.Itoa(len(nodes)), "-w", strings.Join(nodes, ","), "--ntasks-per-node=1",
		"--overlap", "--kill-on-bad-exit=0", "--job-name=daos_server", "--label"}
	if o.Partition != "" {
		args = append(args, "-p", o.Partition)
	}
	args = append(args, o.SrunArgs...)
	return append(args, o.Launcher, "node", "--dir", o.Dir, "--bin", o.Bin)
}

// srunNodes picks the nodes: the given list, else the allocation's, else
// (outside one) idle nodes; the first N of them when N is given.
func srunNodes(ctx context.Context, o SrunOptions) ([]string, error) {
	var names []string
	var from string
	var err error
	switch {
	case o.Nodelist != "":
		names, err = ExpandHostlist(o.Nodelist)
		from = "in --nodelist"
	case os.Getenv("SLURM_JOB_NODELIST") != "":
		names, err = ExpandHostlist(os.Getenv("SLURM_JOB_NODELIST"))
		from = "in the allocation (SLURM_JOB_NODELIST)"
	default:
		if o.N < 1 {
			return nil, daoserr.New(daoserr.Inval, "launcher srun: outside an allocation, how many nodes?").
				WithResolution("give -N n or --nodelist, or run inside salloc or sbatch")
		}
		names, err = idleNodes(ctx, o.Partition)
		from = "idle (sinfo)"
	}
	if err != nil {
		return nil, err
	}
	if o.N > len(names) {
		return nil, daoserr.Newf(daoserr.Inval, "launcher srun: %d nodes wanted, %d %s: %s", o.N, len(names), from, strings.Join(names, ",")).
			WithResolution("ask for fewer nodes, or wait until more are idle")
	}
	if o.N > 0 {
		names = names[:o.N]
	}
	return names, nil
}

// idleNodes asks Slurm for idle nodes, in its order.
func idleNodes(ctx context.Context, partition string) ([]string, error) {
	args := []string{"-h", "-t", "idle", "-o", "%N"}
	if partition != "" {
		args = append(args, "-p", partition)
	}
	out, err := slurmCmd(ctx, "sinfo", args...)
	if err != nil {
		return nil, err
	}
	var names []string
	for l := range strings.FieldsSeq(out) { // one host list per partition
		hs, err := ExpandHostlist(l)
		if err != nil {
			return nil, daoserr.Context(err, "sinfo")
		}
		for _, h := range hs {
			if !slices.Contains(names, h) {
				names = append(names, h)
			}
		}
	}
	return names, nil
}

// slurmAddrs gives each node the address Slurm reaches it at (NodeAddr:
// several nodes may be one machine), or its name when Slurm does not say.
func slurmAddrs(ctx context.Context, names []string) []Node {
	addr := map[string]string{}
	if out, err := slurmCmd(ctx, "sinfo", "-h", "-N", "-n", strings.Join(names, ","), "-o", "%N %o"); err == nil {
		for l := range strings.Lines(out) {
			if f := strings.Fields(l); len(f) == 2 {
				addr[f[0]] = f[1]
			}
		}
	}
	nodes := make([]Node, len(names))
	for i, n := range names {
		nodes[i] = Node{Name: n, Addr: n}
		if a := addr[n]; a != "" {
			nodes[i].Addr = a
		}
	}
	return nodes
}

// slurmCmd runs a Slurm client command and returns its output.
func slurmCmd(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", daoserr.Wrap(daoserr.Unreach, err, "launcher: %s %s: %s", name, strings.Join(args, " "), lastLine(stderr.String())).
			WithResolution("check that Slurm answers (sinfo), and that %s is installed", name)
	}
	return string(out), nil
}

// reSrunTask is srun's report of a task that ended: "srun: error: NODE: task
// 1: Exited with exit code 1".
var reSrunTask = regexp.MustCompile(`(?m)^srun: error: ([^:\s]+): tasks? ([0-9,\-]+): (.*)$`)

// srunTaskExited reports a server that ended while the others start (srun
// keeps running for the rest), with its last line of output.
func srunTaskExited(log string) error {
	text := readFile(log)
	m := reSrunTask.FindStringSubmatch(text)
	if m == nil {
		return nil
	}
	last := ""
	for l := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(strings.TrimLeft(l, " "), m[2]+": "); ok {
			last = strings.TrimSpace(rest)
		}
	}
	return daoserr.Newf(daoserr.Unreach, "launcher: the server of %s ended while starting (%s): %s", m[1], m[3], last).
		WithResolution("see %s", log)
}

// stopSrun stops the step: SIGTERM to its tasks, the servers (they drain and
// exit 0, and srun with them); after stopTimeout, scancel ends it the hard way.
func stopSrun(dir string, st State, launchDone func() bool) error {
	ctx := context.Background()
	if st.Step == "" && len(st.Nodes) > 0 {
		// a launch stopped while starting: the nodes that started say which step
		if r, err := readRun(dir, st.Nodes[0]); err == nil && r.Job != "" && r.Step != "" {
			st.Step = r.Job + "." + r.Step
		}
	}
	if st.Step == "" {
		// no server has started: srun cancels its step itself
		if st.LaunchPID != 0 && launchAlive(st) {
			syscall.Kill(st.LaunchPID, syscall.SIGTERM)
		}
		return nil
	}
	gone := func() bool { return launchDone() && !stepListed(ctx, st.Step) }
	// Judge by the step's end, not by scancel's status: Slurm 22.05's scancel
	// signals a step of an 'salloc --no-shell' job and still fails with
	// "Invalid job id specified".
	_, sigErr := slurmCmd(ctx, "scancel", "--signal=TERM", st.Step)
	if waitUntil(gone, stopTimeout) {
		return nil
	}
	_, killErr := slurmCmd(ctx, "scancel", st.Step)
	if waitUntil(gone, stopTimeout) {
		return nil
	}
	return daoserr.Newf(daoserr.TimedOut, "launcher: job step %s still runs after scancel (%v; %v)", st.Step, sigErr, killErr).
		WithResolution("see squeue -s; scancel %s", st.Step)
}

// stepListed reports whether squeue still lists the job step.
func stepListed(ctx context.Context, step string) bool {
	job, _, _ := strings.Cut(step, ".")
	out, err := slurmCmd(ctx, "squeue", "-h", "-s", "-j", job, "-o", "%i")
	if err != nil {
		return !strings.Contains(err.Error(), "Invalid job id") // an ended job is no longer known
	}
	return slices.Contains(strings.Fields(out), step)
}

// runSuffix names the file where `launcher node` says which process runs a
// node's server, and in which job step: DIR/<node>.run.json.
const runSuffix = ".run.json"

// nodeRun is DIR/<node>.run.json.
type nodeRun struct {
	Node   string `json:"node"`
	Host   string `json:"host"` // the machine's name (several nodes may share one)
	PID    int    `json:"pid"`  // daos_server's: `launcher node` becomes it
	Job    string `json:"job,omitempty"`
	Step   string `json:"step,omitempty"`
	ProcID string `json:"procid,omitempty"`
}

func readRun(dir, node string) (nodeRun, error) {
	var r nodeRun
	b, err := os.ReadFile(filepath.Join(dir, node+runSuffix))
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}
