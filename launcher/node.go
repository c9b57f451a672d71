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

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/config"
)

// NodeOptions are `launcher node`'s, run on each node by srun (or by pdsh
// over a remote shell): run this node's server of the system in Dir.
type NodeOptions struct {
	Dir  string // where DIR/<node>.yml are
	Node string // this node's name; default: see nodeName
	Bin  string // daos_server
}

// RunNode finds this node's configuration, creates the directories it names,
// records the process in DIR/<node>.run.json and replaces this process with
// daos_server (so srun and pdsh signal the server itself and see its exit
// status). The server formats its storage if it is new, as launcher local's
// do: a launch ends with every rank joined. It returns only on error.
func RunNode(o NodeOptions) error {
	name, err := nodeName(o)
	if err != nil {
		return err
	}
	if id := os.Getenv("SLURM_LOCALID"); id != "" && id != "0" {
		return daoserr.Newf(daoserr.Inval, "launcher node: task %s of node %s: one server per node", os.Getenv("SLURM_PROCID"), name).
			WithResolution("run srun with --ntasks-per-node=1 (launcher srun does)")
	}
	path := filepath.Join(o.Dir, name+".yml")
	cfg, err := config.Load(path)
	if err != nil {
		return daoserr.Wrap(daoserr.Inval, err, "launcher node %s", name)
	}
	if err := makeDirs(cfg); err != nil {
		return err
	}
	bin, err := exec.LookPath(o.Bin)
	if err != nil {
		return daoserr.Wrap(daoserr.Nonexist, err, "launcher node %s: daos_server", name).
			WithResolution("install daos_server at the same path on every node, or give --bin")
	}
	host, _ := os.Hostname()
	r := nodeRun{Node: name, Host: host, PID: os.Getpid(), Job: os.Getenv("SLURM_JOB_ID"), Step: os.Getenv("SLURM_STEP_ID"), ProcID: os.Getenv("SLURM_PROCID")}
	b, _ := json.Marshal(r)
	if err := os.WriteFile(filepath.Join(o.Dir, name+runSuffix), b, 0o644); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "launcher node %s", name)
	}
	err = syscall.Exec(bin, []string{bin, "start", "--auto-format", "-o", path}, os.Environ())
	return daoserr.Wrap(daoserr.IO, err, "launcher node %s: exec %s", name, bin)
}

// StopNode stops this node's server (pdsh over a remote shell runs it on
// every node): SIGTERM, then SIGKILL after stopTimeout.
func StopNode(o NodeOptions) error {
	name, err := nodeName(o)
	if err != nil {
		return err
	}
	r, err := readRun(o.Dir, name)
	if err != nil {
		return daoserr.Wrap(daoserr.Nonexist, err, "launcher node %s: no server started here", name)
	}
	if h, _ := os.Hostname(); r.Host != h {
		return daoserr.Newf(daoserr.Inval, "launcher node %s: its server runs on %s, not on %s", name, r.Host, h).
			WithResolution("run launcher node --stop on %s", r.Host)
	}
	// the PID must still be this node's server (not a later process that
	// reuses the number, nor another system's daos_server)
	cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", r.PID))
	if !ours(r.PID) || !strings.Contains(string(cmd), filepath.Join(o.Dir, name+".yml")) {
		return nil
	}
	stopLocalPIDs([]int{r.PID})
	return nil
}

// nodeName is this node's name: --node; else Slurm's (SLURMD_NODENAME, or
// the SLURM_NODEID-th node of the step); else this host's name, full or
// short, when DIR/<name>.yml exists; else the one node in DIR whose name
// resolves to an address of this host.
func nodeName(o NodeOptions) (string, error) {
	if o.Node != "" {
		return o.Node, nil
	}
	if n := os.Getenv("SLURMD_NODENAME"); n != "" {
		return n, nil
	}
	if id, err := strconv.Atoi(os.Getenv("SLURM_NODEID")); err == nil {
		if nodes, err := ExpandHostlist(os.Getenv("SLURM_STEP_NODELIST")); err == nil && id >= 0 && id < len(nodes) {
			return nodes[id], nil
		}
	}
	host, _ := os.Hostname()
	short, _, _ := strings.Cut(host, ".")
	for _, n := range []string{host, short} {
		if n != "" && fileExists(filepath.Join(o.Dir, n+".yml")) {
			return n, nil
		}
	}
	ymls, _ := filepath.Glob(filepath.Join(o.Dir, "*.yml"))
	var mine []string
	for _, y := range ymls {
		n := strings.TrimSuffix(filepath.Base(y), ".yml")
		if resolvesHere(n) {
			mine = append(mine, n)
		}
	}
	if len(mine) == 1 {
		return mine[0], nil
	}
	return "", daoserr.Newf(daoserr.Nonexist, "launcher node: which of the %d configurations in %s is this host's (%s)? %d name it", len(ymls), o.Dir, host, len(mine)).
		WithResolution("give --node NAME (the name DIR/NAME.yml was written for)")
}

// resolvesHere reports whether name resolves to a non-loopback address of
// this host (a loopback address would match every name of an exec launch).
func resolvesHere(name string) bool {
	ips, err := net.LookupIP(name)
	if err != nil {
		return false
	}
	addrs, _ := net.InterfaceAddrs()
	for _, ip := range ips {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !ip.IsLoopback() && n.IP.Equal(ip) {
				return true
			}
		}
	}
	return false
}

// makeDirs creates the directories a configuration's files go in, on this
// node: with storage on node-local disks the launching host cannot.
func makeDirs(cfg *config.Server) error {
	paths := []string{cfg.ControlMetadata.Path, cfg.ControlLogFile}
	for _, e := range cfg.Engines {
		paths = append(paths, e.LogFile)
		for _, t := range e.Storage {
			paths = append(paths, t.ScmMount)
			if t.Class == config.ClassFile {
				paths = append(paths, t.BdevList...)
			}
		}
	}
	var dirs []string
	for _, p := range paths {
		if p != "" && !slices.Contains(dirs, filepath.Dir(p)) {
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return daoserr.Wrap(daoserr.IO, err, "launcher node: create %s", d).WithResolution("choose directories the server may write in the template")
		}
	}
	return nil
}
