// Command dmg administers a GoDAOS system, as DAOS's dmg does:
//
//	dmg -l host:port system query
//	dmg pool create --size 10G tank
//	dmg -j pool query tank
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/godaos/godaos/dmg"
	"github.com/godaos/godaos/internal/cli"
	"github.com/godaos/godaos/internal/props"
	"github.com/godaos/godaos/internal/units"
)

type poolCreateCmd struct {
	Size     units.ByteSize `short:"z" placeholder:"SIZE" help:"Total size, split between the tiers (6% SCM, 94% NVMe), e.g. 10G."`
	ScmSize  units.ByteSize `short:"s" name:"scm-size" placeholder:"SIZE" help:"SCM tier size (with --nvme-size instead of --size)."`
	NvmeSize units.ByteSize `short:"n" name:"nvme-size" placeholder:"SIZE" help:"NVMe tier size."`
	Ranks    []uint32       `short:"r" sep:"," placeholder:"RANKS" help:"Ranks to use (default: all joined), e.g. 0,1,2."`
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

type cmdLine struct {
	HostList   []string `short:"l" name:"host-list" sep:"," placeholder:"HOST[:PORT]" help:"Servers to talk to (default: the control config's hostlist, or localhost:10001)."`
	ConfigPath string   `short:"o" name:"config-path" placeholder:"FILE" help:"daos_control.yml (default /etc/daos/daos_control.yml if present)."`
	JSON       bool     `short:"j" help:"Print JSON: {response, error, status}."`

	System struct {
		Query       struct{} `cmd:"" help:"Show the ranks of the system."`
		LeaderQuery struct{} `cmd:"" name:"leader-query" help:"Show the management service leader and replicas."`
	} `cmd:"" help:"Query the system."`
	Storage struct {
		Scan struct{} `cmd:"" help:"Show each server's storage: SCM and bdev tiers, sizes, free space, pools."`
	} `cmd:"" help:"Query storage."`
	Pool struct {
		Create  poolCreateCmd `cmd:"" help:"Create a pool."`
		List    struct{}      `cmd:"" help:"List pools."`
		Query   poolIDCmd     `cmd:"" help:"Show a pool's state and space."`
		Destroy poolIDCmd     `cmd:"" help:"Destroy a pool and its data."`

		GetProp      getPropCmd   `cmd:"" name:"get-prop" help:"Show a pool's properties."`
		SetProp      setPropCmd   `cmd:"" name:"set-prop" help:"Set pool properties."`
		GetACL       poolIDCmd    `cmd:"" name:"get-acl" help:"Show a pool's ACL."`
		OverwriteACL aclFileCmd   `cmd:"" name:"overwrite-acl" help:"Replace a pool's ACL with an ACL file."`
		UpdateACL    aclFileCmd   `cmd:"" name:"update-acl" help:"Add or replace ACL entries (--acl-file or --entry)."`
		DeleteACL    deleteACLCmd `cmd:"" name:"delete-acl" help:"Remove a principal's ACL entry."`
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

	hosts, port := c.HostList, 0
	cfgPath := c.ConfigPath
	if cfgPath == "" && len(hosts) == 0 {
		if _, err := os.Stat("/etc/daos/daos_control.yml"); err == nil {
			cfgPath = "/etc/daos/daos_control.yml"
		}
	}
	if cfgPath != "" {
		cc, err := dmg.LoadControlConfig(cfgPath)
		if err != nil {
			fmt.Fprintln(stderr, "dmg:", err)
			return 1
		}
		port = cc.Port
		if len(hosts) == 0 {
			hosts = cc.HostList
		}
	}
	if len(hosts) == 0 {
		hosts = []string{"localhost"}
	}
	cl, err := dmg.Connect(ctx, dmg.Hosts(hosts, port), nil)
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
		err = cl.PoolQuery(ctx, c.Pool.Query.Pool)
	case "pool destroy <pool>":
		err = cl.PoolDestroy(ctx, c.Pool.Destroy.Pool)
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
