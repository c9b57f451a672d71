package launcher

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/config"
)

// ClusterOptions are what pdsh and srun launches share: one server per node,
// each with DIR/<node>.yml rendered from one template.
type ClusterOptions struct {
	Template    string        // daos_server YAML template file (see NodeData); "" for the built-in one
	Dir         string        // DIR/<node>.yml, DIR/<node>/ (the built-in template's storage), logs, state: a directory every node sees
	BasePort    int           // node i's .Port is BasePort+10*i (default 10001)
	Targets     int           // per engine (default 4)
	Replicas    int           // management service replicas (default 3 with 3 or more nodes, else 1)
	FabricIface string        // .FabricIface (default lo)
	Bin         string        // daos_server, at the same path on every node (default: next to this program, else in PATH)
	Launcher    string        // this program, at the same path on every node (default: os.Executable)
	Timeout     time.Duration // for every rank to join (default 60 s; srun may queue first)
}

// Node is a node of a launch: its name and the address to reach it at.
type Node struct{ Name, Addr string }

// NodeConfig is a node's rendered configuration.
type NodeConfig struct {
	NodeData
	Path string // DIR/<node>.yml
	Ctl  string // control address: Addr and the rendered file's port
}

func (o *ClusterOptions) defaults(n int) error {
	if n < 1 {
		return daoserr.New(daoserr.Inval, "launcher: no nodes").WithResolution("name at least one node")
	}
	if o.BasePort == 0 {
		o.BasePort = config.DefaultControlPort
	}
	if o.Targets == 0 {
		o.Targets = config.DefaultTargets
	}
	if o.Replicas == 0 {
		o.Replicas = 1
		if n >= 3 {
			o.Replicas = 3
		}
	}
	if o.Replicas > n {
		return daoserr.Newf(daoserr.Inval, "launcher: %d replicas for %d nodes", o.Replicas, n).WithResolution("give --replicas 1, 3 or 5, at most the number of nodes")
	}
	if o.FabricIface == "" {
		o.FabricIface = "lo"
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	var err error
	if o.Bin, err = findServerBin(o.Bin); err != nil {
		return err
	}
	if o.Launcher == "" {
		if o.Launcher, err = os.Executable(); err != nil {
			return daoserr.Wrap(daoserr.Nonexist, err, "launcher: find this program").WithResolution("give the launcher's path")
		}
	}
	if o.Dir == "" {
		o.Dir = "godaos"
	}
	o.Dir, err = filepath.Abs(o.Dir)
	return err
}

// writeNodeConfigs renders the template for every node, then writes
// DIR/<node>.yml and creates DIR/<node>/: nothing is written unless every
// node's file is valid.
func writeNodeConfigs(o *ClusterOptions, nodes []Node) ([]NodeConfig, error) {
	tmpl, err := LoadTemplate(o.Template)
	if err != nil {
		return nil, err
	}
	if o.Replicas > len(nodes) {
		return nil, daoserr.Newf(daoserr.Inval, "launcher: %d replicas for %d nodes", o.Replicas, len(nodes))
	}
	var replicas []string
	for i := range o.Replicas {
		replicas = append(replicas, net.JoinHostPort(nodes[i].Addr, strconv.Itoa(o.BasePort+10*i)))
	}
	seen := map[string]bool{}
	var out []NodeConfig
	var texts [][]byte
	for i, nd := range nodes {
		if !validNodeName(nd.Name) {
			return nil, daoserr.Newf(daoserr.Inval, "launcher: %q is not a node name", nd.Name).
				WithResolution("name nodes by host name: they name files and directories in %s", o.Dir)
		}
		if seen[nd.Name] {
			return nil, daoserr.Newf(daoserr.Inval, "launcher: node %s is listed twice", nd.Name).WithResolution("list each node once")
		}
		seen[nd.Name] = true
		port := o.BasePort + 10*i
		d := NodeData{Host: nd.Name, Addr: nd.Addr, Index: i, N: len(nodes), Port: port, TelemetryPort: port + 2, FabricPort: port + 3,
			FabricIface: o.FabricIface, Dir: filepath.Join(o.Dir, nd.Name), Replicas: replicas, Targets: o.Targets}
		b, cfg, err := tmpl.Render(d)
		if err != nil {
			return nil, err
		}
		out = append(out, NodeConfig{NodeData: d, Path: filepath.Join(o.Dir, nd.Name+".yml"), Ctl: net.JoinHostPort(nd.Addr, strconv.Itoa(cfg.Port))})
		texts = append(texts, b)
	}
	for i, nc := range out {
		if err := os.MkdirAll(nc.Dir, 0o750); err != nil {
			return nil, daoserr.Wrap(daoserr.IO, err, "launcher: create %s", nc.Dir).WithResolution("give --dir a directory you may write, shared by the nodes")
		}
		if err := os.WriteFile(nc.Path, texts[i], 0o644); err != nil {
			return nil, daoserr.Wrap(daoserr.IO, err, "launcher: write %s", nc.Path)
		}
		// a previous run's record: what is read (the step) and signaled (the
		// PID) must be this run's
		os.Remove(filepath.Join(o.Dir, nc.Host+runSuffix))
	}
	return out, nil
}

// validNodeName: a node's name becomes DIR/<name>.yml and DIR/<name>/, and a
// command-line argument; "..", "a/b" or "-x" must not.
func validNodeName(n string) bool {
	return n != "" && !strings.HasPrefix(n, ".") && !strings.HasPrefix(n, "-") && !strings.ContainsAny(n, "/ \t\n%")
}

// Cluster is a system started with pdsh or srun, seen from the launching host.
type Cluster struct {
	State
	Dir     string
	Configs []NodeConfig
	Log     string // the output of pdsh or srun, with the servers'
	cmd     *exec.Cmd
	done    chan struct{}
}

// start starts the launch command (pdsh or srun) in its own process group,
// its output and the servers' in c.Log, and writes the state file.
func (c *Cluster) start(name string, args []string) error {
	// a new log for every launch (the previous one kept as .old): a failed
	// start is read from it
	os.Rename(c.Log, c.Log+".old")
	logf, err := os.OpenFile(c.Log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return daoserr.Wrap(daoserr.IO, err, "launcher: %s log", name)
	}
	defer logf.Close()
	// Stdin stays /dev/null: the servers read nothing, and pdsh or srun must
	// not hold this launcher's terminal.
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // outlives this launcher and its terminal's signals
	fmt.Fprintf(logf, "launcher: %s\n", strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		return daoserr.Wrap(daoserr.Nonexist, err, "launcher: start %s", name).WithResolution("install %s (scripts/deps.sh installs pdsh and slurm-wlm)", name)
	}
	c.cmd, c.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(c.done) }()
	c.LaunchPID = cmd.Process.Pid
	if err := c.writeState(); err != nil {
		c.Stop()
		return err
	}
	return nil
}

func (c *Cluster) writeState() error {
	b, _ := json.MarshalIndent(c.State, "", "  ")
	if err := os.WriteFile(filepath.Join(c.Dir, stateFile), b, 0o644); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "launcher: state file")
	}
	return nil
}

// launchExited reports the end of the launch command while servers start.
func (c *Cluster) launchExited() error {
	select {
	case <-c.done:
		return daoserr.Newf(daoserr.Unreach, "launcher: %s exited while the servers were starting (%s): %s",
			filepath.Base(c.cmd.Path), c.cmd.ProcessState, lastLine(readFile(c.Log))).WithResolution("see %s", c.Log)
	default:
		return nil
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// Stop stops every server and the launch command, and removes the state file.
func (c *Cluster) Stop() error {
	err := stopCluster(c.Dir, c.State, c.done)
	os.Remove(filepath.Join(c.Dir, stateFile))
	return err
}

// Exited reports whether the launch command has ended, and its status.
func (c *Cluster) Exited() (bool, *os.ProcessState) {
	select {
	case <-c.done:
		return true, c.cmd.ProcessState
	default:
		return false, nil
	}
}

// stopCluster stops a pdsh or srun launch. done, when this process started
// it, closes when the launch command has ended; else its PID is watched.
func stopCluster(dir string, st State, done <-chan struct{}) error {
	launchDone := func() bool {
		if done != nil {
			select {
			case <-done:
				return true
			default:
				return false
			}
		}
		return !launchAlive(st)
	}
	var err error
	switch st.Mode {
	case "pdsh":
		err = stopPdsh(dir, st, launchDone)
	case "srun":
		err = stopSrun(dir, st, launchDone)
	default:
		return daoserr.Newf(daoserr.Inval, "launcher: unknown launch mode %q in the state file", st.Mode)
	}
	if !waitUntil(launchDone, stopTimeout) && st.LaunchPID != 0 && launchAlive(st) {
		syscall.Kill(st.LaunchPID, syscall.SIGKILL)
		waitUntil(launchDone, 5*time.Second)
	}
	return err
}

// waitUntil polls cond until it holds or d has passed.
func waitUntil(cond func() bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// launchAlive reports whether the state's pdsh or srun process still runs on
// this host (a PID in an old state file may belong to another program by now).
func launchAlive(st State) bool {
	switch st.Mode {
	case "pdsh":
		return isProgram(st.LaunchPID, "pdsh", "pdsh.bin")
	case "srun":
		return isProgram(st.LaunchPID, "srun")
	}
	return false
}

// isProgram reports whether pid is a live process (not a zombie) whose
// argv[0] is one of names.
func isProgram(pid int, names ...string) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(cmd) == 0 { // a zombie has no command line
		return false
	}
	arg0, _, _ := strings.Cut(string(cmd), "\x00")
	return slices.Contains(names, filepath.Base(arg0))
}

// children lists the live child processes of pid.
func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid(p) == pid {
			out = append(out, p)
		}
	}
	return out
}

// ppid is the parent of pid, from /proc/PID/stat ("pid (comm) state ppid ...";
// comm may hold spaces and parentheses, so parse after the last ')').
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}
