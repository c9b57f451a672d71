// Command dmg administers a GoDAOS system, as DAOS's dmg does:
//
//	dmg -l host:port system query
//	dmg pool create --size 10G tank
//	dmg -j pool query tank
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/godaos/godaos/dmg"
	"github.com/godaos/godaos/internal/cli"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/props"
	"github.com/godaos/godaos/internal/security/certs"
	"github.com/godaos/godaos/internal/units"
	"github.com/godaos/godaos/server/config"
)

type poolCreateCmd struct {
	Size     units.ByteSize `short:"z" placeholder:"SIZE" help:"Total size, split between the tiers (6% SCM, 94% NVMe), e.g. 10G."`
	ScmSize  units.ByteSize `short:"s" name:"scm-size" placeholder:"SIZE" help:"SCM tier size (with --nvme-size instead of --size)."`
	NvmeSize units.ByteSize `short:"n" name:"nvme-size" placeholder:"SIZE" help:"NVMe tier size."`
	Ranks    cli.Ranks      `short:"r" placeholder:"RANKS" help:"Ranks to use (default: all joined), e.g. 0,1,2 or 0-3."`
	User     string         `short:"u" placeholder:"USER" help:"Owner (default: you)."`
	Group    string         `short:"g" placeholder:"GROUP" help:"Owning group (default: your group)."`
	ACLFile  string         `short:"a" name:"acl-file" placeholder:"FILE" help:"ACL file: one ACE per line (default: A::OWNER@:rw and A:G:GROUP@:rw)."`
	Props    string         `short:"P" name:"properties" placeholder:"NAME:VALUE,..." help:"Pool properties, e.g. reclaim:lazy,scrub:timed."`
	Label    string         `arg:"" help:"Pool label."`
}

type getPropCmd struct {
	Pool  string   `arg:"" help:"Pool label or UUID."`
	Names []string `arg:"" optional:"" help:"Properties to show (default: all)."`
}

type setPropCmd struct {
	Pool  string `arg:"" help:"Pool label or UUID."`
	Props string `arg:"" help:"NAME:VALUE[,NAME:VALUE], e.g. reclaim:disabled."`
}

type aclFileCmd struct {
	Pool    string `arg:"" help:"Pool label or UUID."`
	ACLFile string `short:"a" name:"acl-file" placeholder:"FILE" help:"ACL file: one ACE per line."`
	Entry   string `short:"e" placeholder:"ACE" help:"One ACE, e.g. A::bob@:r (update-acl only)."`
}

type deleteACLCmd struct {
	Pool      string `arg:"" help:"Pool label or UUID."`
	Principal string `short:"p" required:"" placeholder:"PRINCIPAL" help:"OWNER@, GROUP@, EVERYONE@, u:user@ or g:group@."`
}

type poolIDCmd struct {
	Pool string `arg:"" help:"Pool label or UUID."`
}

type ranksCmd struct {
	Ranks cli.Ranks `short:"r" placeholder:"RANKS" help:"Ranks to act on, e.g. 0,1 or 0-3 (default: all)."`
}

type poolTargetsCmd struct {
	Pool    string    `arg:"" help:"Pool label or UUID."`
	Rank    uint32    `required:"" placeholder:"RANK" help:"The rank whose targets change."`
	Targets cli.Ranks `name:"target-idx" placeholder:"IDX" help:"Target indexes, e.g. 0,1 (default: all of the rank's)."`
}

type poolExtendCmd struct {
	Pool  string    `arg:"" help:"Pool label or UUID."`
	Ranks cli.Ranks `required:"" placeholder:"RANKS" help:"Joined ranks to add, e.g. 4,5 or 4-5."`
}

type excludeCmd struct {
	Ranks cli.Ranks `required:"" placeholder:"RANKS" help:"Ranks, e.g. 2 or 2-3."`
}

type contSetOwnerCmd struct {
	Pool  string `short:"p" required:"" placeholder:"POOL" help:"Pool label or UUID."`
	Cont  string `short:"c" required:"" placeholder:"CONT" help:"Container label or UUID."`
	User  string `short:"u" placeholder:"USER" help:"New owning user (name or name@)."`
	Group string `short:"g" placeholder:"GROUP" help:"New owning group (name or name@)."`
}

type configGenerateCmd struct {
	AccessPoints []string `short:"a" name:"access-points" sep:"," placeholder:"HOST:PORT" help:"Management service replicas (1, 3 or 5; default this host)."`
	Engines      int      `default:"1" help:"Engines (ranks) per server."`
	Targets      int      `default:"4" help:"Targets per engine."`
	DataDir      string   `name:"data-dir" placeholder:"DIR" help:"Directory for storage and metadata (default: $DAOS_DATA or ~/.local/share/godaos)."`
}

type certGenerateCmd struct {
	Dir   string `short:"d" default:"/etc/daos/certs" placeholder:"DIR" help:"Directory for the CA and the certificates."`
	Days  int    `default:"1825" help:"Validity in days."`
	Force bool   `help:"Replace existing files."`
}

type cmdLine struct {
	HostList   []string `short:"l" name:"host-list" sep:"," placeholder:"HOST[:PORT]" help:"Servers to talk to (default: the control config's hostlist, or localhost:10001)."`
	ConfigPath string   `short:"o" name:"config-path" placeholder:"FILE" help:"daos_control.yml (default /etc/daos/daos_control.yml if present)."`
	JSON       bool     `short:"j" help:"Print JSON: {response, error, status}."`

	System struct {
		Query        struct{}   `cmd:"" help:"Show the ranks of the system."`
		LeaderQuery  struct{}   `cmd:"" name:"leader-query" help:"Show the management service leader and replicas."`
		Stop         ranksCmd   `cmd:"" help:"Stop the engines of ranks (all by default); the servers keep answering dmg."`
		Start        ranksCmd   `cmd:"" help:"Start stopped ranks again (all stopped ones by default)."`
		Exclude      excludeCmd `cmd:"" help:"Mark ranks excluded: their targets leave every pool map (DOWN), and rebuild starts."`
		ClearExclude excludeCmd `cmd:"" name:"clear-exclude" help:"Let excluded ranks take part again; reintegrate their pool targets with 'dmg pool reintegrate'."`
	} `cmd:"" help:"Query and control the system."`
	Storage struct {
		Scan   struct{} `cmd:"" help:"Show each server's storage: SCM and bdev tiers, sizes, free space, pools."`
		Format struct {
			Force bool `help:"Reformat storage that is already formatted: its pools are lost (stop its ranks first)."`
		} `cmd:"" help:"Format each server's storage and start its engines."`
		Query struct {
			Usage struct{} `cmd:"" help:"Show each engine's SCM and NVMe space: total, free, used by pools."`
		} `cmd:"" help:"Query storage."`
	} `cmd:"" help:"Format and query storage."`
	Cont struct {
		SetOwner contSetOwnerCmd `cmd:"" name:"set-owner" help:"Change a container's owning user and/or group."`
	} `cmd:"" aliases:"container" help:"Administer containers."`
	Config struct {
		Generate configGenerateCmd `cmd:"" help:"Print a server configuration (server.yml) for this system."`
	} `cmd:"" help:"Configuration tools."`
	Cert struct {
		Generate certGenerateCmd `cmd:"" help:"Create a CA and the server, agent and admin certificates (clients/agent.crt for client_cert_dir)."`
	} `cmd:"" help:"Certificates for the control plane."`
	Pool struct {
		Create poolCreateCmd `cmd:"" help:"Create a pool."`
		List   struct{}      `cmd:"" help:"List pools."`
		Query  struct {
			poolIDCmd
			Watch bool `short:"w" help:"Show the rebuild's progress every second until it is done."`
		} `cmd:"" help:"Show a pool's state, space and rebuild."`
		Destroy struct {
			poolIDCmd
			Recursive bool `help:"Destroy the pool's containers with it (without, a pool holding containers is refused)."`
		} `cmd:"" help:"Destroy a pool and its data."`

		GetProp      getPropCmd   `cmd:"" name:"get-prop" help:"Show a pool's properties."`
		SetProp      setPropCmd   `cmd:"" name:"set-prop" help:"Set pool properties."`
		GetACL       poolIDCmd    `cmd:"" name:"get-acl" help:"Show a pool's ACL."`
		OverwriteACL aclFileCmd   `cmd:"" name:"overwrite-acl" help:"Replace a pool's ACL with an ACL file."`
		UpdateACL    aclFileCmd   `cmd:"" name:"update-acl" help:"Add or replace ACL entries (--acl-file or --entry)."`
		DeleteACL    deleteACLCmd `cmd:"" name:"delete-acl" help:"Remove a principal's ACL entry."`

		Exclude     poolTargetsCmd `cmd:"" help:"Exclude a rank's targets from the pool (DOWN): their shards are served by the others."`
		Drain       poolTargetsCmd `cmd:"" help:"Drain a rank's targets: their data moves to the others, then they are out (DRAIN)."`
		Reintegrate poolTargetsCmd `cmd:"" help:"Bring excluded targets back into the pool (UP, then UPIN once resynced)."`
		Extend      poolExtendCmd  `cmd:"" help:"Add joined ranks to the pool; only the data placement moves to them moves."`
		Rebuild     struct {
			Start poolIDCmd `cmd:"" help:"Start the pool's rebuild: again after stop, or one self_heal:delay_rebuild holds back."`
			Stop  poolIDCmd `cmd:"" help:"Stop the pool's rebuild: shards stay rebuilding (served by their replicas) until start."`
		} `cmd:"" help:"Stop and start a pool's rebuild."`
	} `cmd:"" help:"Manage pools."`
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(argv []string, stdout, stderr io.Writer) int {
	var c cmdLine
	kctx, rc, ok := cli.Parse("dmg", "Administer a GoDAOS system.", &c, argv, stdout, stderr)
	if !ok {
		return rc
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch kctx.Command() { // local commands: no server needed
	case "config generate":
		return c.Config.Generate.run(stdout, stderr)
	case "cert generate":
		return c.Cert.Generate.run(stdout, stderr)
	}

	hosts, port := c.HostList, 0
	var tlsConf *tls.Config // no control config: insecure, as the embedded default server
	var err error
	cfgPath := c.ConfigPath
	if cfgPath == "" && len(hosts) == 0 {
		if _, err := os.Stat("/etc/daos/daos_control.yml"); err == nil {
			cfgPath = "/etc/daos/daos_control.yml"
		}
	}
	if cfgPath != "" {
		var cc *dmg.ControlConfig
		cc, err = dmg.LoadControlConfig(cfgPath)
		if err != nil {
			fmt.Fprintln(stderr, "dmg:", err)
			return 1
		}
		port = cc.Port
		if len(hosts) == 0 {
			hosts = cc.HostList
		}
		if tc := cc.TransportConfig; !tc.AllowInsecure {
			if tlsConf, err = certs.ClientTLS(tc.CACert, tc.Cert, tc.Key); err != nil {
				fmt.Fprintln(stderr, "dmg:", daoserr.Context(err, "%s transport_config", cfgPath))
				return 1
			}
		}
	}
	if len(hosts) == 0 {
		hosts = []string{"localhost"}
	}
	cl, err := dmg.Connect(ctx, dmg.Hosts(hosts, port), tlsConf)
	if err != nil {
		fmt.Fprintln(stderr, "dmg:", err)
		return 1
	}
	defer cl.Close()
	cl.JSON, cl.Out = c.JSON, stdout

	switch kctx.Command() {
	case "system query":
		err = cl.SystemQuery(ctx)
	case "storage scan":
		err = cl.StorageScan(ctx, dmg.Hosts(hosts, port))
	case "system stop":
		err = cl.SystemStop(ctx, c.System.Stop.Ranks)
	case "system start":
		err = cl.SystemStart(ctx, c.System.Start.Ranks)
	case "storage format":
		err = cl.StorageFormat(ctx, dmg.Hosts(hosts, port), c.Storage.Format.Force)
	case "storage query usage":
		err = cl.StorageQueryUsage(ctx, dmg.Hosts(hosts, port))
	case "cont set-owner":
		o := c.Cont.SetOwner
		err = cl.ContSetOwner(ctx, o.Pool, o.Cont, o.User, o.Group)
	case "system leader-query":
		err = cl.LeaderQuery(ctx)
	case "pool create <label>":
		p := c.Pool.Create
		o := dmg.PoolCreateOptions{Label: p.Label, Size: uint64(p.Size), ScmSize: uint64(p.ScmSize),
			NvmeSize: uint64(p.NvmeSize), Ranks: p.Ranks, User: p.User, Group: p.Group}
		if p.ACLFile != "" {
			o.ACL, err = dmg.ReadACLFile(p.ACLFile)
		}
		if err == nil && p.Props != "" {
			o.Props, err = props.Parse(p.Props)
		}
		if err == nil {
			err = cl.PoolCreate(ctx, o)
		}
	case "pool get-prop <pool>", "pool get-prop <pool> <names>":
		err = cl.PoolProp(ctx, c.Pool.GetProp.Pool, nil, c.Pool.GetProp.Names)
	case "pool set-prop <pool> <props>":
		var set map[string]string
		if set, err = props.Parse(c.Pool.SetProp.Props); err == nil {
			err = cl.PoolProp(ctx, c.Pool.SetProp.Pool, set, nil)
		}
	case "pool get-acl <pool>":
		err = cl.PoolACL(ctx, c.Pool.GetACL.Pool, dmg.ACLChange{})
	case "pool overwrite-acl <pool>":
		var acl []string
		if acl, err = dmg.ReadACLFile(c.Pool.OverwriteACL.ACLFile); err == nil {
			err = cl.PoolACL(ctx, c.Pool.OverwriteACL.Pool, dmg.ACLChange{Overwrite: acl})
		}
	case "pool update-acl <pool>":
		u := c.Pool.UpdateACL
		var acl []string
		switch {
		case u.Entry != "":
			acl = []string{u.Entry}
		case u.ACLFile != "":
			acl, err = dmg.ReadACLFile(u.ACLFile)
		default:
			err = fmt.Errorf("give --acl-file or --entry")
		}
		if err == nil {
			err = cl.PoolACL(ctx, u.Pool, dmg.ACLChange{Update: acl})
		}
	case "pool delete-acl <pool>":
		err = cl.PoolACL(ctx, c.Pool.DeleteACL.Pool, dmg.ACLChange{Delete: c.Pool.DeleteACL.Principal})
	case "pool list":
		err = cl.PoolList(ctx)
	case "pool query <pool>":
		if c.Pool.Query.Watch {
			err = cl.PoolQueryWatch(ctx, c.Pool.Query.Pool, time.Second)
		} else {
			err = cl.PoolQuery(ctx, c.Pool.Query.Pool)
		}
	case "pool exclude <pool>", "pool drain <pool>", "pool reintegrate <pool>":
		op := strings.Fields(kctx.Command())[1]
		t := map[string]poolTargetsCmd{"exclude": c.Pool.Exclude, "drain": c.Pool.Drain, "reintegrate": c.Pool.Reintegrate}[op]
		err = cl.PoolTargets(ctx, op, t.Pool, t.Rank, t.Targets)
	case "pool rebuild start <pool>":
		err = cl.PoolRebuild(ctx, c.Pool.Rebuild.Start.Pool, false)
	case "pool rebuild stop <pool>":
		err = cl.PoolRebuild(ctx, c.Pool.Rebuild.Stop.Pool, true)
	case "pool extend <pool>":
		err = cl.PoolExtend(ctx, c.Pool.Extend.Pool, c.Pool.Extend.Ranks)
	case "system exclude":
		err = cl.SystemExclude(ctx, c.System.Exclude.Ranks, false)
	case "system clear-exclude":
		err = cl.SystemExclude(ctx, c.System.ClearExclude.Ranks, true)
	case "pool destroy <pool>":
		err = cl.PoolDestroy(ctx, c.Pool.Destroy.Pool, c.Pool.Destroy.Recursive)
	default:
		err = fmt.Errorf("command %q is not implemented yet", kctx.Command())
	}
	if err != nil {
		if !c.JSON {
			fmt.Fprintln(stderr, "dmg:", err)
		}
		return 1
	}
	return 0
}

func (g *configGenerateCmd) run(stdout, stderr io.Writer) int {
	dir := g.DataDir
	if dir == "" {
		var err error
		if dir, err = config.DataDir(); err != nil {
			fmt.Fprintln(stderr, "dmg:", err)
			return 1
		}
	}
	b, err := config.Generate(config.GenerateOptions{DataDir: dir, Engines: g.Engines, Targets: g.Targets, Replicas: g.AccessPoints})
	if err != nil {
		fmt.Fprintln(stderr, "dmg:", err)
		return 1
	}
	stdout.Write(b)
	return 0
}

func (g *certGenerateCmd) run(stdout, stderr io.Writer) int {
	files, err := certs.Generate(g.Dir, certs.GenerateOptions{Days: g.Days, Force: g.Force})
	if err != nil {
		fmt.Fprintln(stderr, "dmg:", err)
		return 1
	}
	fmt.Fprintf(stdout, "Wrote %d files to %s:\n", len(files), g.Dir)
	for _, f := range files {
		fmt.Fprintln(stdout, "  "+f)
	}
	fmt.Fprintln(stdout, "Servers: ca_cert daosCA.crt, cert server.crt, key server.key, client_cert_dir clients/")
	fmt.Fprintln(stdout, "Agents:  ca_cert daosCA.crt, cert agent.crt, key agent.key")
	fmt.Fprintln(stdout, "dmg:     ca_cert daosCA.crt, cert admin.crt, key admin.key (daos_control.yml)")
	fmt.Fprintln(stdout, "Keep daosCA.key offline; copy only what each node needs.")
	return 0
}
