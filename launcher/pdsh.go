package launcher

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
)

// PdshOptions describe a launch with pdsh: one daos_server per host of Hosts.
type PdshOptions struct {
	ClusterOptions
	Hosts string // pdsh -w: a host list such as node[1-4,7] (see ExpandHostlist)
	Rcmd  string // pdsh -R: ssh (default) or another remote shell; exec runs every "host" on this machine
}

// StartPdsh renders DIR/<host>.yml for every host, starts
//
//	pdsh -R exec -w HOSTS daos_server start --auto-format -o DIR/%h.yml
//
// (pdsh's exec module puts each host's name for %h), or with a remote shell
// such as ssh, where pdsh substitutes nothing,
//
//	pdsh -R ssh -w HOSTS launcher node --dir DIR --bin daos_server
//
// (each node finds its file by its host name), and waits until every rank
// has joined. pdsh keeps running, and with it the servers, after this
// program ends; StopDir stops them.
//
// With -R exec every host is this machine under another name (pdsh runs the
// commands here): the nodes are reached at 127.0.0.1 and a template must give
// each its own ports, as the built-in one does with .Port.
func StartPdsh(ctx context.Context, o PdshOptions) (*Cluster, error) {
	names, err := ExpandHostlist(o.Hosts)
	if err != nil {
		return nil, daoserr.Context(err, "launcher pdsh -w")
	}
	if err := o.defaults(len(names)); err != nil {
		return nil, err
	}
	if o.Rcmd == "" {
		o.Rcmd = "ssh"
	}
	nodes := make([]Node, len(names))
	for i, n := range names {
		nodes[i] = Node{Name: n, Addr: n}
		if o.Rcmd == "exec" {
			nodes[i].Addr = "127.0.0.1"
		}
	}
	if err := refuseRunning(o.Dir); err != nil {
		return nil, err
	}
	cfgs, err := writeNodeConfigs(&o.ClusterOptions, nodes)
	if err != nil {
		return nil, err
	}
	c := newCluster("pdsh", o.ClusterOptions, cfgs)
	c.Rcmd = o.Rcmd
	if err := c.start("pdsh", pdshArgs(o, names)); err != nil {
		return nil, err
	}
	exited := func() error {
		if err := c.launchExited(); err != nil {
			return err
		}
		return pdshNodeExited(c.Log)
	}
	if err := waitJoined(ctx, c.HostList, len(cfgs), o.Timeout, exited, "see "+c.Log); err != nil {
		c.Stop()
		return nil, err
	}
	if o.Rcmd == "exec" {
		// the servers are pdsh's children here: StopDir signals them itself
		// (pdsh would leave them behind on SIGTERM, and on a double SIGINT it
		// stops reading their output while they log their shutdown)
		c.PIDs = children(c.LaunchPID)
	}
	if err := c.writeState(); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// pdshArgs is pdsh's command line. -f: pdsh runs at most fanout (default 32)
// commands at once and starts the next only when one ends, which a server
// never does by itself. -S: pdsh's status is the largest of the servers'.
func pdshArgs(o PdshOptions, hosts []string) []string {
	args := []string{"-R", o.Rcmd, "-f", strconv.Itoa(len(hosts)), "-S", "-w", strings.Join(hosts, ",")}
	if o.Rcmd == "exec" {
		return append(args, o.Bin, "start", "--auto-format", "-o", filepath.Join(o.Dir, "%h.yml"))
	}
	return append(args, o.Launcher, "node", "--dir", o.Dir, "--bin", o.Bin)
}

func newCluster(mode string, o ClusterOptions, cfgs []NodeConfig) *Cluster {
	c := &Cluster{Dir: o.Dir, Configs: cfgs, Log: filepath.Join(o.Dir, mode+".log")}
	c.Mode, c.Launcher = mode, o.Launcher
	for _, nc := range cfgs {
		c.Nodes = append(c.Nodes, nc.Host)
		c.HostList = append(c.HostList, nc.Ctl)
		c.Dirs = append(c.Dirs, nc.Dir)
	}
	return c
}

// rePdshExit is pdsh's report of a command that ended: "pdsh@HOST: NODE: CMD
// exited with exit code N" or "... killed by signal N".
var rePdshExit = regexp.MustCompile(`(?m)^pdsh@[^:]*: ([^:\s]+): (.*(?:exited with exit code|killed by signal) \d+)$`)

// pdshNodeExited reports a server that ended while the others start (pdsh
// keeps running for the rest), with that node's last line of output.
func pdshNodeExited(log string) error {
	text := readFile(log)
	m := rePdshExit.FindStringSubmatch(text)
	if m == nil {
		return nil
	}
	last := ""
	for _, l := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(l, m[1]+": "); ok {
			last = rest
		}
	}
	return daoserr.Newf(daoserr.Unreach, "launcher: the server of %s ended while starting (%s): %s", m[1], m[2], last).
		WithResolution("see %s", log)
}

// stopPdsh stops the servers of a pdsh launch. With -R exec they are pdsh's
// children on this host: SIGTERM (they drain and exit 0), then SIGKILL after
// stopTimeout; pdsh ends with the last of them. With a remote shell, pdsh runs
// 'launcher node --stop' on every node, which signals that node's server.
func stopPdsh(dir string, st State, launchDone func() bool) error {
	if st.Rcmd == "exec" {
		pids := st.PIDs
		if st.LaunchPID != 0 && launchAlive(st) {
			pids = append(pids, children(st.LaunchPID)...)
		}
		stopLocalPIDs(pids)
		return nil
	}
	args := []string{"-R", st.Rcmd, "-f", strconv.Itoa(len(st.Nodes)), "-S", "-w", strings.Join(st.Nodes, ","),
		st.Launcher, "node", "--stop", "--dir", dir}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "pdsh", args...).CombinedOutput()
	if err != nil {
		return daoserr.Wrap(daoserr.Unreach, err, "launcher: pdsh %s: %s", strings.Join(args, " "), lastLine(string(out))).
			WithResolution("stop the servers of %s by hand (kill -TERM the daos_server on each)", strings.Join(st.Nodes, ","))
	}
	if !waitUntil(launchDone, 10*time.Second) && st.LaunchPID != 0 {
		// the servers are gone; the ssh sessions to them should be too
		syscall.Kill(st.LaunchPID, syscall.SIGTERM)
	}
	return nil
}
