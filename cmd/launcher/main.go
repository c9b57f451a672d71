// Command launcher starts and stops GoDAOS systems.
//
//	launcher local -n 3 [--targets 4] [--dir DIR]   # 3 daos_server processes on this host
//	launcher pdsh -w 'node[1-4]' [-R ssh|exec] [--template FILE] [--dir DIR]
//	                                                # one daos_server per host, started by pdsh
//	launcher srun [-N 4] [-w 'node[1-4]'] [--template FILE] [--dir DIR]
//	                                                # one daos_server per node, in a Slurm job step
//	launcher template                               # print the built-in per-node template
//	launcher stop [--dir DIR]
//
// pdsh and srun render DIR/<node>.yml for every node from one daos_server YAML
// template (a Go text/template: .Host .Addr .Index .Port .Dir .Replicas ...),
// so DIR must be a directory every node sees. Every start returns once every
// rank has joined and prints the dmg command line to use; the servers keep
// running until `launcher stop --dir DIR`. `launcher node`, run on each node
// by srun (or pdsh over ssh), is internal.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/godaos/godaos/launcher"
)

type localCmd struct {
	N        int    `short:"n" default:"3" help:"Servers to start (one engine each)."`
	Targets  int    `default:"4" help:"Targets per engine."`
	Dir      string `default:"${default_dir}" help:"Directory for the servers' storage, configs and logs."`
	Port     int    `default:"10001" help:"Control port of server 0; server i uses port+10*i (and the next three ports)."`
	Replicas int    `help:"Management service replicas (default: 3 with 3 or more servers, else 1)."`
	Bin      string `placeholder:"PATH" help:"daos_server binary (default: next to launcher, else in PATH)."`
}

// clusterFlags are the flags pdsh and srun share.
type clusterFlags struct {
	Template    string        `placeholder:"FILE" help:"daos_server YAML template, rendered per node (default: the built-in one, see 'launcher template')."`
	Dir         string        `default:"godaos" help:"Directory every node sees: DIR/<node>.yml, the built-in template's storage DIR/<node>/, the log, the state."`
	Port        int           `default:"10001" help:"Base control port: node i's .Port is port+10*i (its server also uses the next three ports)."`
	Targets     int           `default:"4" help:"Targets per engine (.Targets)."`
	Replicas    int           `help:"Management service replicas, the first nodes (default: 3 with 3 or more nodes, else 1)."`
	FabricIface string        `name:"fabric-iface" default:"lo" help:"Data-plane network interface (.FabricIface); lo only when every node is this machine."`
	Bin         string        `placeholder:"PATH" help:"daos_server, at the same path on every node (default: next to launcher, else in PATH)."`
	Timeout     time.Duration `default:"60s" help:"How long to wait for every rank to join (srun: queueing included)."`
}

func (f clusterFlags) options() launcher.ClusterOptions {
	return launcher.ClusterOptions{Template: f.Template, Dir: f.Dir, BasePort: f.Port, Targets: f.Targets, Replicas: f.Replicas,
		FabricIface: f.FabricIface, Bin: f.Bin, Timeout: f.Timeout}
}

type pdshCmd struct {
	Hosts string `short:"w" required:"" placeholder:"HOSTLIST" help:"Hosts, as pdsh and Slurm write them: node[1-4,7],other."`
	Rcmd  string `short:"R" default:"ssh" enum:"ssh,rsh,exec" help:"pdsh remote command module: ssh, rsh, or exec (every host is this machine, reached at 127.0.0.1)."`
	clusterFlags
}

type srunCmd struct {
	N         int      `short:"N" help:"Nodes (default: every node of --nodelist or of the allocation)."`
	Nodelist  string   `short:"w" placeholder:"HOSTLIST" help:"Nodes to use (default: the allocation's, else idle nodes)."`
	Partition string   `short:"p" help:"Partition, outside an allocation."`
	SrunArg   []string `name:"srun-arg" placeholder:"ARG" help:"More srun options (repeat): --srun-arg=--time=1:00:00."`
	clusterFlags
}

type nodeCmd struct {
	Dir  string `required:"" help:"Directory of the per-node configurations."`
	Node string `help:"This node's name (default: SLURMD_NODENAME, else the host name)."`
	Bin  string `default:"daos_server" help:"daos_server."`
	Stop bool   `help:"Stop this node's server instead."`
}

type stopCmd struct {
	Dir string `default:"${default_dir}" help:"Directory the system was started in."`
}

type killCmd struct {
	Dir    string `default:"${default_dir}" help:"Directory the local system was started in."`
	Server int    `required:"" help:"Server index (0 is the first)."`
	Signal string `default:"KILL" enum:"KILL,STOP,CONT,TERM" help:"KILL (a crash), STOP and CONT (a pause), TERM (a clean stop)."`
}

type restartCmd struct {
	Dir    string `default:"${default_dir}" help:"Directory the local system was started in."`
	Server int    `required:"" help:"Server index (0 is the first)."`
	Bin    string `placeholder:"PATH" help:"daos_server binary (default: next to launcher, else in PATH)."`
}

type cli struct {
	Local    localCmd   `cmd:"" help:"Start a system of daos_server processes on this host and wait until every rank has joined."`
	Pdsh     pdshCmd    `cmd:"" help:"Start one daos_server per host with pdsh and wait until every rank has joined."`
	Srun     srunCmd    `cmd:"" help:"Start one daos_server per node in a Slurm job step and wait until every rank has joined."`
	Template struct{}   `cmd:"" help:"Print the built-in per-node daos_server template."`
	Node     nodeCmd    `cmd:"" hidden:"" help:"Run this node's server (srun and pdsh run it on every node)."`
	Stop     stopCmd    `cmd:"" help:"Stop a system started with 'launcher local', 'pdsh' or 'srun'."`
	Kill     killCmd    `cmd:"" help:"Signal one server of a local system: kill -9 it (a crash), pause or resume it."`
	Restart  restartCmd `cmd:"" help:"Start a killed server of a local system again and wait until it has joined."`
}

func main() {
	var c cli
	dir := filepath.Join(os.TempDir(), "godaos-local")
	kctx := kong.Parse(&c, kong.Name("launcher"), kong.Description("Start and stop GoDAOS systems."),
		kong.Vars{"default_dir": dir}, kong.UsageOnError())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "launcher:", err)
		os.Exit(1)
	}
	switch kctx.Command() {
	case "local":
		o := c.Local
		s, err := launcher.StartLocal(ctx, launcher.LocalOptions{N: o.N, Targets: o.Targets, Dir: o.Dir, BasePort: o.Port, Replicas: o.Replicas, Bin: o.Bin})
		if err != nil {
			fail(err)
		}
		fmt.Printf("%d servers up, every rank joined (logs and data in %s).\n", o.N, s.Dir)
		printUse(s.HostList, s.Dir)
	case "pdsh":
		s, err := launcher.StartPdsh(ctx, launcher.PdshOptions{ClusterOptions: c.Pdsh.options(), Hosts: c.Pdsh.Hosts, Rcmd: c.Pdsh.Rcmd})
		if err != nil {
			fail(err)
		}
		fmt.Printf("%d servers up on %s (pdsh -R %s), every rank joined; log %s.\n", len(s.Nodes), strings.Join(s.Nodes, ","), c.Pdsh.Rcmd, s.Log)
		printUse(s.HostList, s.Dir)
	case "srun":
		o := c.Srun
		s, err := launcher.StartSrun(ctx, launcher.SrunOptions{ClusterOptions: o.options(), N: o.N, Nodelist: o.Nodelist, Partition: o.Partition, SrunArgs: o.SrunArg})
		if err != nil {
			fail(err)
		}
		fmt.Printf("%d servers up on %s (job step %s), every rank joined; log %s.\n", len(s.Nodes), strings.Join(s.Nodes, ","), s.Step, s.Log)
		printUse(s.HostList, s.Dir)
	case "template":
		fmt.Print(launcher.BuiltinTemplate())
	case "node":
		o := launcher.NodeOptions{Dir: c.Node.Dir, Node: c.Node.Node, Bin: c.Node.Bin}
		if c.Node.Stop {
			if err := launcher.StopNode(o); err != nil {
				fail(err)
			}
			return
		}
		fail(launcher.RunNode(o)) // returns only on error: it becomes daos_server
	case "stop":
		if err := launcher.StopDir(c.Stop.Dir); err != nil {
			fail(err)
		}
		fmt.Println("stopped")
	case "kill":
		sig := map[string]syscall.Signal{"KILL": syscall.SIGKILL, "STOP": syscall.SIGSTOP, "CONT": syscall.SIGCONT, "TERM": syscall.SIGTERM}[c.Kill.Signal]
		if err := launcher.KillServerDir(c.Kill.Dir, c.Kill.Server, sig); err != nil {
			fail(err)
		}
		fmt.Printf("server %d: SIG%s sent\n", c.Kill.Server, c.Kill.Signal)
	case "restart":
		if err := launcher.RestartServerDir(ctx, c.Restart.Dir, c.Restart.Server, c.Restart.Bin, 90*time.Second); err != nil {
			fail(err)
		}
		fmt.Printf("server %d restarted; its engines have joined\n", c.Restart.Server)
	}
}

func printUse(hosts []string, dir string) {
	fmt.Printf("Use: dmg -l %s system query\n", strings.Join(hosts, ","))
	fmt.Printf("Stop: launcher stop --dir %s\n", dir)
}
