// Package dmg is the administrator's tool: it talks to the servers' control
// service and prints what it gets back as DAOS's dmg does, as readable tables or,
// with --json, as {"response": ..., "error": ..., "status": ...}.
//
// cmd/dmg is the command-line front end; tests call the commands directly.
package dmg

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"

	"github.com/godaos/godaos/internal/cli"
	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/props"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/security"
	"github.com/godaos/godaos/internal/units"
)

// DefaultPort is the servers' control port when a host is given without one.
const DefaultPort = ctlclient.DefaultPort

// ControlConfig is daos_control.yml: which servers dmg talks to.
type ControlConfig struct {
	Name            string   `yaml:"name"`
	Port            int      `yaml:"port"`
	HostList        []string `yaml:"hostlist"`
	TransportConfig struct {
		AllowInsecure bool   `yaml:"allow_insecure"`
		CACert        string `yaml:"ca_cert"`
		Cert          string `yaml:"cert"`
		Key           string `yaml:"key"`
	} `yaml:"transport_config"`
}

// LoadControlConfig reads daos_control.yml strictly.
func LoadControlConfig(path string) (*ControlConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Inval, err, "read %s", path).WithResolution("give the path of a daos_control.yml, or the servers with -l host:port")
	}
	var c ControlConfig
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, daoserr.Wrap(daoserr.Inval, err, "%s", path).WithResolution("keys are name, port, hostlist and transport_config")
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	return &c, nil
}

// Hosts normalises a host list: host or host:port, with port the default.
func Hosts(list []string, port int) []string { return ctlclient.Hosts(list, port) }

// Client is a connection to the first answering server of a host list.
type Client struct {
	ctl  ctlpb.CtlClient
	conn *ctlclient.Conn
	tls  *tls.Config
	host string
	JSON bool
	Out  io.Writer
}

// Connect connects to the first server of hosts that answers; tlsConf nil
// means an insecure connection (allow_insecure).
func Connect(ctx context.Context, hosts []string, tlsConf *tls.Config) (*Client, error) {
	c, err := ctlclient.Dial(ctx, hosts, tlsConf)
	if err != nil {
		return nil, err
	}
	return &Client{ctl: c, conn: c, tls: tlsConf, host: c.Host, Out: os.Stdout}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// print writes resp as JSON (with err) or calls text.
func (c *Client) print(resp any, err error, text func(w io.Writer)) error {
	if c.JSON {
		cli.Envelope(c.Out, resp, err)
		return err
	}
	if err != nil {
		return err
	}
	text(c.Out)
	return nil
}

func table(w io.Writer, header string, rows [][]string) { cli.Table(w, header, rows) }

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// ---- system ----

// SystemQuery prints the system map.
func (c *Client) SystemQuery(ctx context.Context) error {
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.SystemQueryResp, error) {
		return c.ctl.SystemQuery(ctx, &ctlpb.SystemQueryReq{})
	})
	if err = ctlclient.Err(err, resp.GetError(), "system query"); err != nil {
		return c.print(nil, err, nil)
	}
	type member struct {
		Rank        uint32 `json:"rank"`
		UUID        string `json:"uuid"`
		Addr        string `json:"addr"`
		FabricURI   string `json:"fabric_uri"`
		FaultDomain string `json:"fault_domain"`
		State       string `json:"state"`
		Incarnation uint64 `json:"incarnation"`
		Targets     uint32 `json:"targets"`
	}
	var ms []member
	for _, m := range resp.Members {
		ms = append(ms, member{m.Rank, m.Uuid, m.ControlAddr, "tcp://" + m.FabricAddr, m.FaultDomain, m.State, m.Incarnation, m.Targets})
	}
	out := map[string]any{"members": ms, "map_version": resp.MapVersion, "leader": resp.Leader}
	return c.print(out, nil, func(w io.Writer) {
		var rows [][]string
		for _, m := range ms {
			rows = append(rows, []string{strconv.Itoa(int(m.Rank)), m.UUID, m.Addr, m.FaultDomain, titleCase(m.State)})
		}
		table(w, "Rank\tUUID\tControl Address\tFault Domain\tState", rows)
	})
}

// LeaderQuery prints the management service's leader and replicas.
func (c *Client) LeaderQuery(ctx context.Context) error {
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.LeaderQueryResp, error) {
		return c.ctl.LeaderQuery(ctx, &ctlpb.LeaderQueryReq{})
	})
	if err = ctlclient.Err(err, resp.GetError(), "leader query"); err != nil {
		return c.print(nil, err, nil)
	}
	out := map[string]any{"current_leader": resp.Leader, "replicas": resp.Replicas}
	return c.print(out, nil, func(w io.Writer) {
		fmt.Fprintf(w, "Current Leader: %s\n   Replica Set: %s\n", resp.Leader, strings.Join(resp.Replicas, ", "))
	})
}

// ---- pools ----

// PoolCreateOptions are dmg pool create's flags.
type PoolCreateOptions struct {
	Label    string
	Size     uint64 // total, split by the tier ratio
	ScmSize  uint64
	NvmeSize uint64
	Ranks    []uint32
	User     string
	Group    string
	ACL      []string          // ACE strings (see ReadACLFile); default: DAOS's default pool ACL
	Props    map[string]string // see props.Parse
}

// PoolCreate creates a pool and prints its summary.
func (c *Client) PoolCreate(ctx context.Context, o PoolCreateOptions) error {
	if o.Size == 0 && o.ScmSize == 0 {
		return c.print(nil, daoserr.New(daoserr.Inval, "pool create: no size").WithResolution("give --size (e.g. 10G) or --scm-size and --nvme-size"), nil)
	}
	if o.Size != 0 && (o.ScmSize != 0 || o.NvmeSize != 0) {
		return c.print(nil, daoserr.New(daoserr.Inval, "pool create: --size and --scm-size/--nvme-size together").WithResolution("give one or the other"), nil)
	}
	if o.User == "" || o.Group == "" {
		u, g := currentUser()
		o.User, o.Group = cmp.Or(o.User, u), cmp.Or(o.Group, g)
	}
	req := &ctlpb.PoolCreateReq{Label: o.Label, TotalSize: o.Size, ScmSize: o.ScmSize, NvmeSize: o.NvmeSize, Ranks: o.Ranks,
		User: o.User, Group: o.Group, Acl: o.ACL, Props: o.Props}
	if !c.JSON && o.Size > 0 {
		fmt.Fprintf(c.Out, "Creating DAOS pool with automatic storage allocation: %s total, 6,94 tier ratio\n", units.Human(o.Size))
	}
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolCreateResp, error) { return c.ctl.PoolCreate(ctx, req) })
	if err = ctlclient.Err(err, resp.GetError(), "pool create "+o.Label); err != nil {
		return c.print(nil, err, nil)
	}
	p := resp.Pool
	out := poolJSON(p)
	return c.print(out, nil, func(w io.Writer) {
		n := uint64(p.Targets)
		perRank := func(v uint64) uint64 { return v * n / uint64(max(1, len(p.Ranks))) }
		fmt.Fprintln(w, "Pool created with 6.00%,94.00% storage tier ratio")
		fmt.Fprintln(w, "-------------------------------------------------")
		fmt.Fprintf(w, "  UUID                 : %s\n", p.Uuid)
		fmt.Fprintf(w, "  Label                : %s\n", p.Label)
		fmt.Fprintf(w, "  Storage Ranks        : %s\n", cli.RankList(p.Ranks))
		fmt.Fprintf(w, "  Total Size           : %s\n", units.Human((p.TgtScm+p.TgtNvme)*n))
		fmt.Fprintf(w, "  Storage tier 0 (SCM) : %s (%s / rank)\n", units.Human(p.TgtScm*n), units.Human(perRank(p.TgtScm)))
		fmt.Fprintf(w, "  Storage tier 1 (NVMe): %s (%s / rank)\n", units.Human(p.TgtNvme*n), units.Human(perRank(p.TgtNvme)))
	})
}

func poolJSON(p *ctlpb.Pool) map[string]any {
	n := uint64(p.Targets)
	return map[string]any{"uuid": p.Uuid, "label": p.Label, "state": p.State, "svc_reps": p.Ranks, "tgt_ranks": p.Ranks,
		"tier_bytes": []uint64{p.TgtScm * n, p.TgtNvme * n}, "total_targets": p.Targets,
		"disabled_targets": len(p.DisabledTargets), "map_version": p.MapVersion, "rebuild": p.Rebuild}
}

// PoolList prints every pool.
func (c *Client) PoolList(ctx context.Context) error {
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolListResp, error) {
		return c.ctl.PoolList(ctx, &ctlpb.PoolListReq{})
	})
	if err = ctlclient.Err(err, resp.GetError(), "pool list"); err != nil {
		return c.print(nil, err, nil)
	}
	var pools []map[string]any
	for _, p := range resp.Pools {
		pools = append(pools, map[string]any{"uuid": p.Uuid, "label": p.Label, "state": p.State, "svc_reps": p.Ranks})
	}
	return c.print(map[string]any{"pools": pools}, nil, func(w io.Writer) {
		if len(resp.Pools) == 0 {
			fmt.Fprintln(w, "No pools in system")
			return
		}
		var rows [][]string
		for _, p := range resp.Pools {
			rows = append(rows, []string{p.Label, p.Uuid, titleCase(p.State), cli.RankList(p.Ranks)})
		}
		table(w, "Pool\tUUID\tState\tRanks", rows)
	})
}

// PoolQuery prints a pool's state and space.
func (c *Client) PoolQuery(ctx context.Context, id string) error {
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolResp, error) {
		return c.ctl.PoolQuery(ctx, &ctlpb.PoolReq{Id: id})
	})
	if err = ctlclient.Err(err, resp.GetError(), "pool query "+id); err != nil {
		return c.print(nil, err, nil)
	}
	p := resp.Pool
	n := uint64(p.Targets)
	scmTotal, nvmeTotal := p.TgtScm*n, p.TgtNvme*n
	out := poolJSON(p)
	out["tier_stats"] = []map[string]any{
		{"media_type": "scm", "total": scmTotal, "free": scmTotal - min(scmTotal, resp.ScmUsed)},
		{"media_type": "nvme", "total": nvmeTotal, "free": nvmeTotal - min(nvmeTotal, resp.NvmeUsed)},
	}
	return c.print(out, nil, func(w io.Writer) {
		fmt.Fprintf(w, "Pool %s, ntarget=%d, disabled=%d, state=%s, map version=%d\n", p.Uuid, p.Targets, len(p.DisabledTargets), titleCase(p.State), p.MapVersion)
		if len(p.DisabledTargets) > 0 {
			printDisabled(w, p)
		}
		fmt.Fprintln(w, "Pool space info:")
		fmt.Fprintf(w, "- Target count:%d\n", p.Targets)
		for i, t := range []struct {
			name        string
			total, used uint64
		}{{"SCM", scmTotal, resp.ScmUsed}, {"NVMe", nvmeTotal, resp.NvmeUsed}} {
			fmt.Fprintf(w, "- Storage tier %d (%s):\n  Total size: %s\n  Free: %s, used %s\n", i, t.name, units.Human(t.total), units.Human(t.total-min(t.total, t.used)), units.Human(t.used))
		}
		fmt.Fprintln(w, rebuildLine(p.Rebuild))
	})
}

// rebuildLine is DAOS's "Rebuild <state>, N objs, M recs", with more when
// there is more to say.
func rebuildLine(r *ctlpb.RebuildStatus) string {
	if r == nil {
		return "Rebuild idle, 0 objs, 0 recs"
	}
	line := fmt.Sprintf("Rebuild %s, %d objs, %d recs", r.State, r.Objects, r.Records)
	switch r.State {
	case "busy":
		line += fmt.Sprintf(" %s %d/%d ranks done, %s copied (map version %d)", progressBar(int(r.RanksDone), int(r.Ranks), 20), r.RanksDone, r.Ranks, units.Human(r.Bytes), r.Version)
	case "done":
		line += fmt.Sprintf(", %s copied (map version %d)", units.Human(r.Bytes), r.Version)
	case "waiting":
		line += " (self_heal does not start it: dmg pool set-prop <pool> self_heal:exclude;rebuild)"
	}
	if r.Lost > 0 {
		line += fmt.Sprintf("; %d groups beyond their redundancy were not rebuilt (DER_DATA_LOSS)", r.Lost)
	}
	if r.Error != "" {
		line += "; error: " + r.Error
	}
	return line
}

// pendingTargets reports whether p has targets whose rebuild is still to
// come or running (DOWN, DRAIN, UP): a watch goes on until they are settled.
func pendingTargets(p *ctlpb.Pool) bool {
	for _, d := range p.GetDisabledTargets() {
		if strings.HasSuffix(d, " DOWN") || strings.HasSuffix(d, " DRAIN") || strings.HasSuffix(d, " UP") {
			return true
		}
	}
	return false
}

// progressBar draws done of total as [####......].
func progressBar(done, total, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat(".", width) + "]"
	}
	n := min(width, done*width/total)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// PoolQueryWatch prints the pool's rebuild line every interval while a
// rebuild is busy (and once when there is none), like watching dmg pool
// query; it returns when the rebuild is not busy.
func (c *Client) PoolQueryWatch(ctx context.Context, id string, interval time.Duration) error {
	for {
		resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolResp, error) {
			return c.ctl.PoolQuery(ctx, &ctlpb.PoolReq{Id: id})
		})
		if err = ctlclient.Err(err, resp.GetError(), "pool query "+id); err != nil {
			return c.print(nil, err, nil)
		}
		r := resp.Pool.GetRebuild()
		if c.JSON {
			if err := c.print(map[string]any{"rebuild": r, "map_version": resp.Pool.MapVersion, "disabled_targets": resp.Pool.DisabledTargets}, nil, nil); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(c.Out, "%s  %s\n", time.Now().Format("15:04:05"), rebuildLine(r))
		}
		if r.GetState() == "waiting" || r.GetState() != "busy" && !pendingTargets(resp.Pool) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// PoolDestroy destroys a pool.
func (c *Client) PoolDestroy(ctx context.Context, id string, recursive bool) error {
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolResp, error) {
		return c.ctl.PoolDestroy(ctx, &ctlpb.PoolReq{Id: id, Recursive: recursive})
	})
	if err = ctlclient.Err(err, resp.GetError(), "pool destroy "+id); err != nil {
		return c.print(nil, err, nil)
	}
	return c.print(map[string]any{"uuid": resp.Pool.GetUuid(), "label": resp.Pool.GetLabel()}, nil, func(w io.Writer) {
		fmt.Fprintln(w, "Pool-destroy command succeeded")
	})
}

// currentUser is the user and primary group running dmg, as ACL principals.
func currentUser() (string, string) {
	u, err := user.Current()
	if err != nil {
		return "", ""
	}
	name, group := u.Username+"@", ""
	if g, err := user.LookupGroupId(u.Gid); err == nil {
		group = g.Name + "@"
	}
	return name, group
}

// ReadACLFile reads an ACL file (one ACE per line, '#' comments) and checks it.
func ReadACLFile(path string) ([]string, error) { return security.ReadACLFile(path) }

// ACLChange says how PoolACL changes a pool's ACL.
type ACLChange = ctlclient.ACLChange

// PoolACL prints a pool's ACL, after changing it as asked.
func (c *Client) PoolACL(ctx context.Context, id string, ch ACLChange) error {
	req := ch.Req(id)
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolACLResp, error) { return c.ctl.PoolACL(ctx, req) })
	if err = ctlclient.Err(err, resp.GetError(), "pool ACL "+id); err != nil {
		return c.print(nil, err, nil)
	}
	out := map[string]any{"owner_user": resp.Owner, "owner_group": resp.Group, "entries": resp.Entries}
	return c.print(out, nil, func(w io.Writer) {
		fmt.Fprintf(w, "# Owner: %s\n# Owner Group: %s\n# Entries:\n", resp.Owner, resp.Group)
		for _, e := range resp.Entries {
			fmt.Fprintln(w, e)
		}
	})
}

// PoolProp sets the properties in set (if any), then prints the pool's
// properties (all, or those named in show).
func (c *Client) PoolProp(ctx context.Context, id string, set map[string]string, show []string) error {
	resp, err := ctlclient.Retry(ctx, func(ctx context.Context) (*ctlpb.PoolPropResp, error) {
		return c.ctl.PoolProp(ctx, &ctlpb.PoolPropReq{Id: id, Set: set})
	})
	if err = ctlclient.Err(err, resp.GetError(), "pool properties "+id); err != nil {
		return c.print(nil, err, nil)
	}
	names := append([]string{"label"}, props.Sorted(resp.Props)...)
	if len(show) > 0 {
		for _, n := range show {
			if _, ok := resp.Props[n]; !ok {
				return c.print(nil, daoserr.Newf(daoserr.Inval, "unknown pool property %q", n), nil)
			}
		}
		names = show
	}
	var list []map[string]string
	var rows [][]string
	for _, n := range slices.Compact(names) {
		desc := "Pool label"
		if d, ok := props.Find(n); ok {
			desc = d.Desc
		}
		list = append(list, map[string]string{"name": n, "value": resp.Props[n], "description": desc})
		rows = append(rows, []string{desc, resp.Props[n]})
	}
	return c.print(list, nil, func(w io.Writer) {
		if len(set) > 0 {
			fmt.Fprintln(w, "pool set-prop succeeded")
		}
		fmt.Fprintf(w, "Pool %s properties:\n", resp.Label)
		table(w, "Name\tValue", rows)
	})
}

// eachHost calls fn with a connection to each server of hosts in turn (calls
// that a server answers about itself, never forwarded), stopping at the first
// error.
func (c *Client) eachHost(ctx context.Context, hosts []string, what string, fn func(context.Context, string, ctlpb.CtlClient) error) error {
	for _, h := range hosts {
		cc, err := grpc.NewClient(h, ctlclient.Transport(c.tls))
		if err != nil {
			return daoserr.Wrap(daoserr.Unreach, err, "%s %s", what, h)
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err = fn(cctx, h, ctlpb.NewCtlClient(cc))
		cancel()
		cc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// StorageScan asks each server of hosts (not the management service) what
// storage its engines use and prints it.
func (c *Client) StorageScan(ctx context.Context, hosts []string) error {
	type engineStorage struct {
		Host       string `json:"host"`
		Engine     uint32 `json:"engine"`
		ScmClass   string `json:"scm_class"`
		ScmMount   string `json:"scm_mount"`
		ScmSize    uint64 `json:"scm_size"`
		ScmFsFree  uint64 `json:"scm_fs_free"`
		BdevClass  string `json:"bdev_class"`
		BdevPath   string `json:"bdev_path"`
		BdevSize   uint64 `json:"bdev_size"`
		BdevFsFree uint64 `json:"bdev_fs_free"`
		Pools      uint32 `json:"pools"`
	}
	var all []engineStorage
	err := c.eachHost(ctx, hosts, "storage scan", func(ctx context.Context, h string, ctl ctlpb.CtlClient) error {
		resp, err := ctl.ServerQuery(ctx, &ctlpb.ServerQueryReq{})
		if err = ctlclient.Err(err, resp.GetError(), "storage scan "+h); err != nil {
			return err
		}
		for _, e := range resp.Storage {
			all = append(all, engineStorage{h, e.Engine, e.ScmClass, e.ScmMount, e.ScmSize, e.ScmFsFree, e.BdevClass, e.BdevPath, e.BdevSize, e.BdevFsFree, e.Pools})
		}
		return nil
	})
	if err != nil {
		return c.print(nil, err, nil)
	}
	return c.print(all, nil, func(w io.Writer) {
		var rows [][]string
		for _, e := range all {
			rows = append(rows, []string{e.Host, strconv.Itoa(int(e.Engine)),
				fmt.Sprintf("%s %s", e.ScmClass, e.ScmMount), units.Human(e.ScmSize), units.Human(e.ScmFsFree),
				fmt.Sprintf("%s %s", e.BdevClass, e.BdevPath), units.Human(e.BdevSize), units.Human(e.BdevFsFree), strconv.Itoa(int(e.Pools))})
		}
		table(w, "Host\tEngine\tSCM\tSCM Size\tSCM FS Free\tBdev\tBdev Size\tBdev FS Free\tPools", rows)
	})
}

// ParseSize parses --size and friends (binary units: 10G, 512M).
func ParseSize(s string) (uint64, error) {
	v, err := units.ParseByteSize(s)
	return uint64(v), err
}
