package dmg

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/testsys"
	"github.com/godaos/godaos/server"
	"github.com/godaos/godaos/server/config"
)

// startSystem runs a one-server system in this process and returns a dmg client
// of it, once its rank has joined.
func startSystem(t *testing.T) (*Client, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default(dir)
	cfg.Port, cfg.TelemetryPort = testsys.FreePortPair(t), testsys.FreePort(t)
	cfg.MgmtSvcReplicas = []string{fmt.Sprintf("127.0.0.1:%d", cfg.Port)}
	cfg.Engines[0].FabricIfacePort = testsys.FreePort(t)
	cfg.Engines[0].Targets = 2
	s, err := server.Start(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AutoFormat: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	c, err := Connect(context.Background(), Hosts([]string{"127.0.0.1"}, cfg.Port), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	out := &bytes.Buffer{}
	c.Out = out
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "Joined") {
		if time.Now().After(deadline) {
			t.Fatalf("rank never joined:\n%s", out)
		}
		out.Reset()
		c.SystemQuery(context.Background())
		time.Sleep(50 * time.Millisecond)
	}
	out.Reset()
	return c, out
}

func TestCommands(t *testing.T) {
	c, out := startSystem(t)
	ctx := context.Background()
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"system query", func() error { return c.SystemQuery(ctx) }, []string{"Rank", "Fault Domain", "Joined"}},
		{"leader query", func() error { return c.LeaderQuery(ctx) }, []string{"Current Leader: 127.0.0.1:", "Replica Set"}},
		{"pool create", func() error { return c.PoolCreate(ctx, PoolCreateOptions{Label: "tank", Size: 1 << 30}) },
			[]string{"UUID", "Storage Ranks        : [0]", "Storage tier 0 (SCM) : 64.4 MB", "6.00%,94.00%"}},
		{"pool list", func() error { return c.PoolList(ctx) }, []string{"tank", "Ready", "[0]"}},
		{"pool query", func() error { return c.PoolQuery(ctx, "tank") }, []string{"ntarget=2", "Storage tier 1 (NVMe)", "Total size: 1.0 GB"}},
		{"pool destroy", func() error { return c.PoolDestroy(ctx, "tank", false) }, []string{"Pool-destroy command succeeded"}},
		{"empty list", func() error { return c.PoolList(ctx) }, []string{"No pools in system"}},
	}
	for _, s := range steps {
		out.Reset()
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for _, w := range s.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", s.name, w, out)
			}
		}
	}
}

func TestJSONAndErrors(t *testing.T) {
	c, out := startSystem(t)
	ctx := context.Background()
	c.JSON = true
	if err := c.PoolCreate(ctx, PoolCreateOptions{Label: "j", ScmSize: 64 << 20, NvmeSize: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	var env struct {
		Response map[string]any `json:"response"`
		Error    *string        `json:"error"`
		Status   int            `json:"status"`
	}
	if err := json.Unmarshal(out.Bytes(), &env); err != nil || env.Status != 0 || env.Error != nil || env.Response["label"] != "j" {
		t.Fatalf("json: %v %+v\n%s", err, env, out)
	}
	out.Reset()
	err := c.PoolQuery(ctx, "missing")
	if !daoserr.Is(err, daoserr.Nonexist) {
		t.Errorf("query of a missing pool: %v", err)
	}
	env.Error = nil
	if json.Unmarshal(out.Bytes(), &env) != nil || env.Status != -1005 || env.Error == nil || !strings.Contains(*env.Error, `"missing"`) {
		t.Errorf("json error envelope: %s", out)
	}
	c.JSON = false
	tests := []struct {
		name string
		o    PoolCreateOptions
		code daoserr.Code
		want string
	}{
		{"no size", PoolCreateOptions{Label: "x"}, daoserr.Inval, "no size"},
		{"both sizes", PoolCreateOptions{Label: "x", Size: 1 << 30, ScmSize: 1 << 20}, daoserr.Inval, "together"},
		{"duplicate label", PoolCreateOptions{Label: "j", Size: 1 << 30}, daoserr.Exist, `"j" already exists`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.PoolCreate(ctx, tc.o); !daoserr.Is(err, tc.code) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %s containing %q", err, tc.code, tc.want)
			}
		})
	}
}

func TestHelpers(t *testing.T) {
	if got := Hosts([]string{"a,b:1", " c "}, 0); strings.Join(got, " ") != "a:10001 b:1 c:10001" {
		t.Errorf("Hosts: %v", got)
	}
	p := filepath.Join(t.TempDir(), "daos_control.yml")
	os.WriteFile(p, []byte("name: daos_server\nport: 10005\nhostlist: ['h1', 'h2:9']\ntransport_config:\n  allow_insecure: true\n"), 0o644)
	cc, err := LoadControlConfig(p)
	if err != nil || cc.Port != 10005 || strings.Join(Hosts(cc.HostList, cc.Port), " ") != "h1:10005 h2:9" {
		t.Errorf("control config: %+v %v", cc, err)
	}
	os.WriteFile(p, []byte("hostlst: [h1]\n"), 0o644)
	if _, err := LoadControlConfig(p); err == nil || !strings.Contains(err.Error(), "hostlst") {
		t.Errorf("misspelled key: %v", err)
	}
	if _, err := Connect(context.Background(), []string{fmt.Sprintf("127.0.0.1:%d", testsys.FreePort(t))}, nil); !daoserr.Is(err, daoserr.Unreach) {
		t.Errorf("no server: %v", err)
	}
}

func TestPoolACL(t *testing.T) {
	c, out := startSystem(t)
	ctx := context.Background()
	if err := c.PoolCreate(ctx, PoolCreateOptions{Label: "acl", Size: 1 << 30, User: "alice", Group: "devs"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "acl.txt")
	os.WriteFile(file, []byte("# new ACL\nA::OWNER@:rwo\nA:G:ops@:r\n"), 0o644)
	fromFile, err := ReadACLFile(file)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		ch   ACLChange
		want string
	}{
		{"default", ACLChange{}, "# Owner: alice@\n# Owner Group: devs@\n# Entries:\nA::OWNER@:rw\nA:G:GROUP@:rw\n"},
		{"update", ACLChange{Update: []string{"A::bob@:r", "A::OWNER@:rwtT"}}, "A::OWNER@:rwtT\nA:G:GROUP@:rw\nA::bob@:r\n"},
		{"delete a user", ACLChange{Delete: "u:bob@"}, "A::OWNER@:rwtT\nA:G:GROUP@:rw\n"},
		{"delete GROUP@", ACLChange{Delete: "GROUP@"}, "# Entries:\nA::OWNER@:rwtT\n"},
		{"overwrite", ACLChange{Overwrite: fromFile}, "# Entries:\nA::OWNER@:rwo\nA:G:ops@:r\n"},
		{"delete a group", ACLChange{Delete: "g:ops@"}, "# Entries:\nA::OWNER@:rwo\n"},
	}
	for _, s := range steps {
		out.Reset()
		if err := c.PoolACL(ctx, "acl", s.ch); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if !strings.HasSuffix(out.String(), s.want) {
			t.Errorf("%s:\n%s\nwant it to end with\n%s", s.name, out, s.want)
		}
	}
	bad := []struct {
		name string
		ch   ACLChange
		code daoserr.Code
		want string
	}{
		{"bad entry", ACLChange{Update: []string{"A::bob:r"}}, daoserr.Inval, "lacks '@'"},
		{"missing principal", ACLChange{Delete: "u:carol@"}, daoserr.Nonexist, "no entry for carol@"},
		{"unqualified principal", ACLChange{Delete: "carol@"}, daoserr.Inval, "u:user@ or g:group@"},
	}
	for _, tc := range bad {
		if err := c.PoolACL(ctx, "acl", tc.ch); !daoserr.Is(err, tc.code) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %s containing %q", tc.name, err, tc.code, tc.want)
		}
	}
	os.WriteFile(file, []byte("A::OWNER@:rw\nA::OWNER@:r\n"), 0o644)
	if _, err := ReadACLFile(file); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("duplicate in a file: %v", err)
	}
	// a pool created with an ACL file has it
	os.WriteFile(file, []byte("A::OWNER@:rwcdtTaAo\n"), 0o644)
	acl, _ := ReadACLFile(file)
	if err := c.PoolCreate(ctx, PoolCreateOptions{Label: "acl2", Size: 1 << 30, ACL: acl}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	c.PoolACL(ctx, "acl2", ACLChange{})
	if !strings.HasSuffix(out.String(), "# Entries:\nA::OWNER@:rwcdtTaAo\n") {
		t.Errorf("created with an ACL file:\n%s", out)
	}
}

func TestPoolProps(t *testing.T) {
	c, out := startSystem(t)
	ctx := context.Background()
	if err := c.PoolCreate(ctx, PoolCreateOptions{Label: "pp", Size: 1 << 30, Props: map[string]string{"reclaim": "disabled"}}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := c.PoolProp(ctx, "pp", nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Pool pp properties:", "Reclaim strategy", "disabled", "Self-healing policy", "exclude;rebuild", "Pool label"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("get-prop lacks %q:\n%s", w, out)
		}
	}
	out.Reset()
	if err := c.PoolProp(ctx, "pp", map[string]string{"scrub": "timed", "ec_cell_sz": "1M"}, nil); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	c.JSON = true
	if err := c.PoolProp(ctx, "pp", nil, []string{"scrub", "ec_cell_sz", "reclaim"}); err != nil {
		t.Fatal(err)
	}
	var env struct {
		Response []map[string]string `json:"response"`
	}
	if err := json.Unmarshal(out.Bytes(), &env); err != nil || len(env.Response) != 3 ||
		env.Response[0]["value"] != "timed" || env.Response[1]["value"] != "1MiB" || env.Response[2]["value"] != "disabled" {
		t.Errorf("after set-prop: %v %s", err, out)
	}
	c.JSON = false
	if err := c.PoolProp(ctx, "pp", map[string]string{"reclaim": "never"}, nil); !daoserr.Is(err, daoserr.Inval) || !strings.Contains(err.Error(), "not one of") {
		t.Errorf("bad value: %v", err)
	}
	if err := c.PoolCreate(ctx, PoolCreateOptions{Label: "pq", Size: 1 << 30, Props: map[string]string{"colour": "red"}}); !daoserr.Is(err, daoserr.Inval) {
		t.Errorf("unknown property at create: %v", err)
	}
}

// flakyCtl answers NOTLEADER a number of times before the real answer.
type flakyCtl struct {
	ctlpb.CtlClient
	notLeader int
	calls     int
}

func (f *flakyCtl) PoolList(ctx context.Context, in *ctlpb.PoolListReq, opts ...grpc.CallOption) (*ctlpb.PoolListResp, error) {
	f.calls++
	if f.calls <= f.notLeader {
		return &ctlpb.PoolListResp{Error: &ctlpb.Error{Code: int32(daoserr.NotLeader), Msg: "election under way"}}, nil
	}
	return &ctlpb.PoolListResp{Pools: []*ctlpb.Pool{{Label: "tank", Uuid: "u", State: "ready"}}}, nil
}

// dmg calls ride out a leader election; a system without a leader for longer
// than ctlclient.RetryFor gets the error.
func TestRetryOnNotLeader(t *testing.T) {
	var out bytes.Buffer
	f := &flakyCtl{notLeader: 3}
	c := &Client{ctl: f, Out: &out}
	if err := c.PoolList(context.Background()); err != nil || f.calls != 4 || !strings.Contains(out.String(), "tank") {
		t.Errorf("after 3 NOTLEADER answers: %v, %d calls:\n%s", err, f.calls, out.String())
	}
	old := ctlclient.RetryFor
	ctlclient.RetryFor = 200 * time.Millisecond
	defer func() { ctlclient.RetryFor = old }()
	f = &flakyCtl{notLeader: 1 << 30}
	c.ctl = f
	if err := c.PoolList(context.Background()); !daoserr.Is(err, daoserr.NotLeader) || f.calls < 2 {
		t.Errorf("no leader at all: %v after %d calls", err, f.calls)
	}
}

func TestStorageScan(t *testing.T) {
	c, out := startSystem(t)
	if err := c.PoolCreate(context.Background(), PoolCreateOptions{Label: "s", Size: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := c.StorageScan(context.Background(), []string{c.host}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"SCM FS Free", "ram ", "/scm0", "file ", "/bdev0", "1.1 GB", "4.3 GB"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("storage scan lacks %q:\n%s", w, out)
		}
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 3 || !strings.HasSuffix(strings.TrimSpace(lines[2]), "1") {
		t.Errorf("want one engine with one pool:\n%s", out)
	}
	if err := c.StorageScan(context.Background(), []string{fmt.Sprintf("127.0.0.1:%d", testsys.FreePort(t))}); !daoserr.Is(err, daoserr.Unreach) {
		t.Errorf("scan of a host with no server: %v", err)
	}
}
