// Package daoscmd is the `daos` user tool: what a user of a pool does from the
// shell, through daos_agent, with DAOS's command names and --json output.
// This first part connects to pools and manages containers; objects,
// snapshots and attributes follow with the rest of the client API.
package daoscmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/uns"
	"github.com/godaos/godaos/internal/cli"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/props"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/security"
	"github.com/godaos/godaos/internal/units"
)

type poolArg struct {
	Pool string `arg:"" help:"Pool label or UUID."`
}

type contArgs struct {
	Pool string `arg:"" help:"Pool label or UUID."`
	Cont string `arg:"" help:"Container label or UUID."`
}

type contCreateCmd struct {
	Pool    string `arg:"" help:"Pool label or UUID."`
	Label   string `arg:"" optional:"" help:"Container label (default: one is made up)."`
	Type    string `short:"t" default:"unknown" help:"Layout type: POSIX, HDF5, PYTHON, SPARK, DATABASE, ROOT, SEISMIC, METEO, unknown."`
	Props   string `short:"P" name:"properties" placeholder:"NAME:VALUE,..." help:"Container properties, e.g. rd_fac:1,ec_cell_sz:131072."`
	ACLFile string `short:"A" name:"acl-file" placeholder:"FILE" help:"ACL file: one ACE per line (default: A::OWNER@:rwdtTaAo, A:G:GROUP@:rwtT)."`
	posixCreateFlags
}

// contPathArgs name a container by pool and label, or by a UNS path.
type contPathArgs struct {
	Pool string `arg:"" optional:"" help:"Pool label or UUID."`
	Cont string `arg:"" optional:"" help:"Container label or UUID."`
	Path string `name:"path" placeholder:"DIR" help:"A UNS directory naming the pool and container (instead of POOL CONT)."`
}

type contACLCmd struct {
	Pool    string `arg:"" help:"Pool label or UUID."`
	Cont    string `arg:"" help:"Container label or UUID."`
	ACLFile string `short:"a" name:"acl-file" placeholder:"FILE" help:"ACL file: one ACE per line."`
	Entry   string `short:"e" placeholder:"ACE" help:"One ACE, e.g. A::bob@:r (update-acl)."`
}

type contDeleteACLCmd struct {
	Pool      string `arg:"" help:"Pool label or UUID."`
	Cont      string `arg:"" help:"Container label or UUID."`
	Principal string `short:"p" required:"" placeholder:"PRINCIPAL" help:"OWNER@, GROUP@, EVERYONE@, u:user@ or g:group@."`
}

type contSetPropCmd struct {
	Pool  string `arg:"" help:"Pool label or UUID."`
	Cont  string `arg:"" help:"Container label or UUID."`
	Props string `arg:"" help:"NAME:VALUE[,NAME:VALUE], e.g. label:results2."`
}

type attrCmd struct {
	Pool string `arg:"" help:"Pool label or UUID."`
	Cont string `arg:"" help:"Container label or UUID."`
	Name string `arg:"" help:"Attribute name."`
}

type setAttrCmd struct {
	Pool  string `arg:"" help:"Pool label or UUID."`
	Cont  string `arg:"" help:"Container label or UUID."`
	Name  string `arg:"" help:"Attribute name."`
	Value string `arg:"" help:"Attribute value."`
}

type cmdLine struct {
	JSON bool `short:"j" help:"Print JSON: {response, error, status}."`

	Pool struct {
		Query          poolArg     `cmd:"" help:"Connect to a pool and show it and your permissions."`
		ListContainers poolArg     `cmd:"" name:"list-containers" aliases:"list-cont" help:"List a pool's containers."`
		Autotest       autotestCmd `cmd:"" help:"Check that the pool works: create a container, write, read back, list and punch objects, destroy it."`
	} `cmd:"" help:"Pools."`
	Cont struct {
		Create  contCreateCmd `cmd:"" help:"Create a container that you own."`
		List    poolArg       `cmd:"" help:"List a pool's containers."`
		Query   contPathArgs  `cmd:"" help:"Open a container and show it and your permissions."`
		Destroy contPathArgs  `cmd:"" help:"Destroy a container and its data (and its UNS directory, with --path)."`

		GetACL       contArgs         `cmd:"" name:"get-acl" help:"Show a container's ACL (needs a)."`
		OverwriteACL contACLCmd       `cmd:"" name:"overwrite-acl" help:"Replace a container's ACL with an ACL file (needs A)."`
		UpdateACL    contACLCmd       `cmd:"" name:"update-acl" help:"Add or replace ACL entries (--acl-file or --entry; needs A)."`
		DeleteACL    contDeleteACLCmd `cmd:"" name:"delete-acl" help:"Remove a principal's ACL entry (needs A)."`
		GetProp      contArgs         `cmd:"" name:"get-prop" help:"Show a container's properties (needs t)."`
		SetProp      contSetPropCmd   `cmd:"" name:"set-prop" help:"Set container properties (needs T)."`
		SetAttr      setAttrCmd       `cmd:"" name:"set-attr" help:"Set a user attribute (needs w)."`
		GetAttr      attrCmd          `cmd:"" name:"get-attr" help:"Show a user attribute (needs r)."`
		DelAttr      attrCmd          `cmd:"" name:"del-attr" aliases:"delete-attr" help:"Delete a user attribute (needs w)."`
		ListAttrs    contArgs         `cmd:"" name:"list-attrs" aliases:"list-attr" help:"List the user attributes (needs r)."`
		ListObjects  contArgs         `cmd:"" name:"list-objects" aliases:"list-obj" help:"List the IDs of the objects that hold data in a container (needs r)."`
		CreateSnap   snapCreateCmd    `cmd:"" name:"create-snap" aliases:"create-snapshot" help:"Snapshot a container: its state now stays readable (needs w)."`
		ListSnaps    contArgs         `cmd:"" name:"list-snaps" aliases:"list-snapshots" help:"List a container's snapshots (needs r)."`
		DestroySnap  snapNameCmd      `cmd:"" name:"destroy-snap" aliases:"destroy-snapshot" help:"Destroy a snapshot (--snap NAME or --epc EPOCH; needs w)."`
		Rollback     snapNameCmd      `cmd:"" help:"Roll a container back to a snapshot, discarding what was written since (needs w)."`
		Clone        contCloneCmd     `cmd:"" help:"Copy a container of any type, object by object, into a new container (--src daos://POOL/CONT --dst daos://POOL[/NEWCONT])."`
	} `cmd:"" aliases:"container" help:"Containers."`
	Object struct {
		Query    objArgs        `cmd:"" help:"Show an object's class, type and layout: each redundancy group's shards and their rank and target."`
		ListKeys objListKeysCmd `cmd:"" name:"list-keys" help:"List an object's dkeys, or with --dkey that dkey's akeys (needs r)."`
		Dump     objDumpCmd     `cmd:"" help:"Show every dkey, akey and value of an object: single values, array extents (needs r)."`
	} `cmd:"" aliases:"obj" help:"Objects."`
	Fs struct {
		Copy fsCopyCmd `cmd:"" help:"Copy files between POSIX paths and POSIX containers, or between containers (--src A --dst B)."`
	} `cmd:"" aliases:"filesystem" help:"POSIX containers."`
}

// Run runs the daos command line and returns the exit status.
func Run(args []string, stdout, stderr io.Writer) int {
	var c cmdLine
	kctx, rc, ok := cli.Parse("daos", "Use GoDAOS pools and containers (through daos_agent).", &c, args, stdout, stderr)
	if !ok {
		return rc
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t := &tool{json: c.JSON, out: stdout}
	err := t.run(ctx, kctx.Command(), &c)
	if err != nil {
		if t.json {
			if !t.printed {
				cli.Envelope(stdout, nil, err)
			}
		} else {
			fmt.Fprintln(stderr, "daos:", err)
		}
		return 1
	}
	return 0
}

type tool struct {
	json    bool
	out     io.Writer
	printed bool
	client  *daos.Client
}

func (t *tool) run(ctx context.Context, cmd string, c *cmdLine) error {
	cl, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		return err
	}
	defer cl.Fini()
	t.client = cl
	switch cmd {
	case "pool query <pool>":
		return t.poolQuery(ctx, c.Pool.Query.Pool)
	case "pool list-containers <pool>":
		return t.contList(ctx, c.Pool.ListContainers.Pool)
	case "cont list <pool>":
		return t.contList(ctx, c.Cont.List.Pool)
	case "cont create <pool>", "cont create <pool> <label>":
		return t.contCreate(ctx, c.Cont.Create)
	case "cont query", "cont query <pool>", "cont query <pool> <cont>":
		pool, cont, err := c.Cont.Query.resolve()
		if err != nil {
			return err
		}
		return t.contQuery(ctx, pool, cont)
	case "cont destroy", "cont destroy <pool>", "cont destroy <pool> <cont>":
		pool, cont, err := c.Cont.Destroy.resolve()
		if err != nil {
			return err
		}
		if err := t.contDestroy(ctx, pool, cont); err != nil {
			return err
		}
		if c.Cont.Destroy.Path != "" {
			return uns.Destroy(c.Cont.Destroy.Path)
		}
		return nil
	case "cont get-acl <pool> <cont>":
		return t.contACL(ctx, c.Cont.GetACL.Pool, c.Cont.GetACL.Cont, daos.ACLChange{})
	case "cont overwrite-acl <pool> <cont>":
		o := c.Cont.OverwriteACL
		acl, err := readACLFile(o.ACLFile)
		if err != nil {
			return err
		}
		return t.contACL(ctx, o.Pool, o.Cont, daos.ACLChange{Overwrite: acl})
	case "cont update-acl <pool> <cont>":
		o := c.Cont.UpdateACL
		acl := []string{o.Entry}
		if o.Entry == "" {
			var err error
			if acl, err = readACLFile(o.ACLFile); err != nil {
				return err
			}
		}
		return t.contACL(ctx, o.Pool, o.Cont, daos.ACLChange{Update: acl})
	case "cont delete-acl <pool> <cont>":
		o := c.Cont.DeleteACL
		return t.contACL(ctx, o.Pool, o.Cont, daos.ACLChange{Delete: o.Principal})
	case "cont set-attr <pool> <cont> <name> <value>":
		o := c.Cont.SetAttr
		return t.contAttrs(ctx, o.Pool, o.Cont, daos.AttrChange{Set: map[string][]byte{o.Name: []byte(o.Value)}}, "Attribute "+o.Name+" set")
	case "cont get-attr <pool> <cont> <name>":
		o := c.Cont.GetAttr
		return t.contAttrs(ctx, o.Pool, o.Cont, daos.AttrChange{Get: []string{o.Name}}, "")
	case "cont del-attr <pool> <cont> <name>":
		o := c.Cont.DelAttr
		return t.contAttrs(ctx, o.Pool, o.Cont, daos.AttrChange{Del: []string{o.Name}}, "Attribute "+o.Name+" deleted")
	case "cont list-attrs <pool> <cont>":
		o := c.Cont.ListAttrs
		return t.contAttrs(ctx, o.Pool, o.Cont, daos.AttrChange{List: true}, "")
	case "cont get-prop <pool> <cont>":
		return t.contProps(ctx, c.Cont.GetProp.Pool, c.Cont.GetProp.Cont, "")
	case "cont set-prop <pool> <cont> <props>":
		o := c.Cont.SetProp
		return t.contProps(ctx, o.Pool, o.Cont, o.Props)
	case "pool autotest <pool>":
		return t.poolAutotest(ctx, c.Pool.Autotest)
	case "object query <pool> <cont> <oid>":
		return t.objQuery(ctx, c.Object.Query)
	case "object list-keys <pool> <cont> <oid>":
		return t.objListKeys(ctx, c.Object.ListKeys)
	case "object dump <pool> <cont> <oid>":
		return t.objDump(ctx, c.Object.Dump)
	case "cont list-objects <pool> <cont>":
		return t.contListObjects(ctx, c.Cont.ListObjects.Pool, c.Cont.ListObjects.Cont)
	case "cont create-snap <pool> <cont>":
		return t.snapCreate(ctx, c.Cont.CreateSnap)
	case "cont list-snaps <pool> <cont>":
		return t.snapList(ctx, c.Cont.ListSnaps)
	case "cont destroy-snap <pool> <cont>":
		return t.snapDestroy(ctx, c.Cont.DestroySnap)
	case "cont rollback <pool> <cont>":
		return t.snapRollback(ctx, c.Cont.Rollback)
	case "fs copy":
		return t.fsCopy(ctx, c.Fs.Copy)
	case "cont clone":
		return t.contClone(ctx, c.Cont.Clone)
	}
	return daoserr.Newf(daoserr.NoSys, "daos %s is not available yet", cmd)
}

// show prints resp as JSON, or calls text.
func (t *tool) show(resp any, text func(w io.Writer)) error {
	if t.json {
		cli.Envelope(t.out, resp, nil)
		t.printed = true
		return nil
	}
	text(t.out)
	return nil
}

func (t *tool) connect(ctx context.Context, pool string, mode ctlpb.AccessFlags) (*daos.Pool, error) {
	return t.client.PoolConnect(ctx, pool, mode)
}

func (t *tool) poolQuery(ctx context.Context, pool string) error {
	p, err := t.connect(ctx, pool, daos.RO)
	if err != nil {
		return err
	}
	in := p.Info
	sp, err := p.Query(ctx)
	if err != nil {
		return err
	}
	resp := map[string]any{"uuid": in.Uuid, "label": in.Label, "total_targets": in.Targets, "ranks": in.Ranks,
		"owner": in.Owner, "group": in.Group, "map_version": p.MapVersion, "permissions": p.Perms,
		"tiers": []map[string]uint64{{"total": sp.ScmTotal, "free": sp.ScmTotal - min(sp.ScmTotal, sp.ScmUsed)},
			{"total": sp.NvmeTotal, "free": sp.NvmeTotal - min(sp.NvmeTotal, sp.NvmeUsed)}}}
	return t.show(resp, func(w io.Writer) {
		fmt.Fprintf(w, "Pool %s, ntarget=%d, version=%d\n", in.Uuid, in.Targets, p.MapVersion)
		fmt.Fprintf(w, "  Label       : %s\n  Ranks       : %s\n  Owner       : %s, group %s\n", in.Label, cli.RankList(in.Ranks), in.Owner, in.Group)
		fmt.Fprintf(w, "  SCM         : %s total, %s free\n", units.Human(sp.ScmTotal), units.Human(sp.ScmTotal-min(sp.ScmTotal, sp.ScmUsed)))
		fmt.Fprintf(w, "  NVMe        : %s total, %s free\n", units.Human(sp.NvmeTotal), units.Human(sp.NvmeTotal-min(sp.NvmeTotal, sp.NvmeUsed)))
		fmt.Fprintf(w, "  Your access : %s (%s)\n", p.Perms, permWords(p.Perms))
	})
}

func (t *tool) contList(ctx context.Context, pool string) error {
	p, err := t.connect(ctx, pool, daos.RO)
	if err != nil {
		return err
	}
	conts, err := p.ContList(ctx)
	if err != nil {
		return err
	}
	var out []map[string]any
	var rows [][]string
	for _, c := range conts {
		out = append(out, map[string]any{"uuid": c.Uuid, "label": c.Label})
		rows = append(rows, []string{c.Uuid, c.Label})
	}
	return t.show(out, func(w io.Writer) {
		if len(rows) == 0 {
			fmt.Fprintf(w, "Pool %s has no containers.\n", p.Info.Label)
			return
		}
		cli.Table(w, "UUID\tLabel", rows)
	})
}

func (t *tool) contCreate(ctx context.Context, o contCreateCmd) error {
	p, err := t.connect(ctx, o.Pool, daos.RW)
	if err != nil {
		return err
	}
	opts := daos.ContCreateOptions{Label: o.Label, Type: o.Type}
	if o.Props != "" {
		if opts.Props, err = props.ParseList(o.Props); err != nil {
			return err
		}
	}
	if o.ACLFile != "" {
		if opts.ACL, err = readACLFile(o.ACLFile); err != nil {
			return err
		}
	}
	posix, err := o.posixCreateFlags.check(&opts)
	if err != nil {
		return err
	}
	ct, err := p.ContCreate(ctx, opts)
	if err != nil {
		return err
	}
	if err := t.finishPOSIX(ctx, p, ct, o.posixCreateFlags, posix); err != nil {
		return err
	}
	return t.show(map[string]any{"uuid": ct.Uuid, "label": ct.Label, "type": ct.Type, "owner": ct.Owner}, func(w io.Writer) {
		fmt.Fprintf(w, "Successfully created container %s\n  Container UUID : %s\n  Container Label: %s\n  Container Type : %s\n", ct.Label, ct.Uuid, ct.Label, ct.Type)
	})
}

func (t *tool) contQuery(ctx context.Context, pool, cont string) error {
	p, err := t.connect(ctx, pool, daos.RO)
	if err != nil {
		return err
	}
	h, err := p.ContOpen(ctx, cont, daos.RO)
	if err != nil {
		return err
	}
	ct := h.Info
	keys := make([]string, 0, len(ct.Props))
	for k := range ct.Props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return t.show(map[string]any{"pool_uuid": p.Info.Uuid, "uuid": ct.Uuid, "label": ct.Label, "type": ct.Type, "owner": ct.Owner,
		"group": ct.Group, "acl": ct.Acl, "properties": ct.Props, "permissions": h.Perms}, func(w io.Writer) {
		fmt.Fprintf(w, "  Container UUID : %s\n  Container Label: %s\n  Container Type : %s\n  Pool UUID      : %s\n", ct.Uuid, ct.Label, ct.Type, p.Info.Uuid)
		fmt.Fprintf(w, "  Owner          : %s, group %s\n  ACL            : %s\n", ct.Owner, ct.Group, strings.Join(ct.Acl, " "))
		for _, k := range keys {
			fmt.Fprintf(w, "  %-15s: %s\n", k, ct.Props[k])
		}
		fmt.Fprintf(w, "  Your access    : %s (%s)\n", h.Perms, permWords(h.Perms))
	})
}

func (t *tool) contDestroy(ctx context.Context, pool, cont string) error {
	p, err := t.connect(ctx, pool, daos.RW)
	if err != nil {
		return err
	}
	if err := p.ContDestroy(ctx, cont); err != nil {
		return err
	}
	return t.show(map[string]any{"pool": p.Info.Label, "cont": cont}, func(w io.Writer) {
		fmt.Fprintf(w, "Successfully destroyed container %s\n", cont)
	})
}

// readACLFile reads ACEs, one per line ("#" comments allowed).
func readACLFile(path string) ([]string, error) {
	if path == "" {
		return nil, daoserr.New(daoserr.Inval, "no ACL given").WithResolution("give --acl-file FILE (one ACE per line) or --entry ACE")
	}
	return security.ReadACLFile(path)
}

func (t *tool) contACL(ctx context.Context, pool, cont string, ch daos.ACLChange) error {
	p, err := t.connect(ctx, pool, daos.RO)
	if err != nil {
		return err
	}
	acl, owner, group, err := p.ContACL(ctx, cont, ch)
	if err != nil {
		return err
	}
	return t.show(map[string]any{"entries": acl, "owner_user": owner, "owner_group": group}, func(w io.Writer) {
		fmt.Fprintf(w, "# Entries:\n")
		for _, e := range acl {
			fmt.Fprintln(w, e)
		}
		fmt.Fprintf(w, "# Owner: %s\n# Owner-Group: %s\n", owner, group)
	})
}

func (t *tool) contProps(ctx context.Context, pool, cont, set string) error {
	p, err := t.connect(ctx, pool, daos.RO)
	if err != nil {
		return err
	}
	var m map[string]string
	if set != "" {
		if m, err = props.ParseList(set); err != nil {
			return err
		}
	}
	all, err := p.ContProps(ctx, cont, m)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	sort.Strings(names)
	return t.show(all, func(w io.Writer) {
		if set != "" {
			fmt.Fprintf(w, "Properties were successfully set\n")
		}
		var rows [][]string
		for _, k := range names {
			rows = append(rows, []string{k, all[k]})
		}
		if len(rows) > 0 {
			cli.Table(w, "Name\tValue", rows)
		}
	})
}

func (t *tool) contAttrs(ctx context.Context, pool, cont string, ch daos.AttrChange, done string) error {
	p, err := t.connect(ctx, pool, daos.RO)
	if err != nil {
		return err
	}
	values, names, err := p.ContAttrs(ctx, cont, ch)
	if err != nil {
		return err
	}
	out := map[string]any{}
	for k, v := range values {
		out[k] = string(v)
	}
	var resp any = out
	if ch.List {
		resp = names
	}
	return t.show(resp, func(w io.Writer) {
		switch {
		case done != "":
			fmt.Fprintln(w, done)
		case ch.List && len(names) == 0:
			fmt.Fprintf(w, "Container %s has no attributes.\n", cont)
		case ch.List:
			for _, n := range names {
				fmt.Fprintln(w, n)
			}
		default:
			var rows [][]string
			for _, n := range ch.Get {
				rows = append(rows, []string{n, string(values[n])})
			}
			cli.Table(w, "Attribute\tValue", rows)
		}
	})
}

// permWords spells permission letters out.
func permWords(perms string) string {
	names := map[rune]string{'r': "read", 'w': "write", 'c': "create-cont", 'd': "delete", 't': "get-prop", 'T': "set-prop",
		'a': "get-acl", 'A': "set-acl", 'o': "set-owner"}
	var out []string
	for _, c := range perms {
		out = append(out, names[c])
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}
