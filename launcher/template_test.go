package launcher

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/config"
)

func testNodeData(dir string) NodeData {
	return NodeData{Host: "n2", Addr: "127.0.0.1", Index: 1, N: 3, Port: 20011, TelemetryPort: 20013, FabricPort: 20014, FabricIface: "lo",
		Dir: filepath.Join(dir, "n2"), Replicas: []string{"127.0.0.1:20001", "127.0.0.1:20011", "127.0.0.1:20021"}, Targets: 2}
}

// The built-in template is config.Default with the node's values, as launcher
// local's ServerConfig is.
func TestBuiltinTemplateIsDefault(t *testing.T) {
	tmpl, err := LoadTemplate("")
	if err != nil {
		t.Fatal(err)
	}
	d := testNodeData("/srv/godaos")
	_, got, err := tmpl.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default(d.Dir)
	want.Port, want.TelemetryPort, want.MgmtSvcReplicas, want.FaultPath = d.Port, d.TelemetryPort, d.Replicas, "/n2"
	want.Engines[0].Targets, want.Engines[0].FabricIfacePort, want.Engines[0].FabricIface = d.Targets, d.FabricPort, d.FabricIface
	g, _ := config.Marshal(got)
	w, _ := config.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("built-in template renders\n%s\nwant config.Default's\n%s", g, w)
	}
	if !strings.HasPrefix(BuiltinTemplate(), "# GoDAOS per-node") {
		t.Errorf("the built-in template does not say what it is:\n%s", BuiltinTemplate())
	}
}

// A template is rendered as written: comments and layout stay.
func TestTemplateRendersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.yml.tmpl")
	text := `# rack of {{.Host}}
name: tank
mgmt_svc_replicas: [{{range $i, $r := .Replicas}}{{if $i}}, {{end}}{{$r}}{{end}}]
port: {{.Port}}
telemetry_port: {{.TelemetryPort}}
transport_config: {allow_insecure: true}
fault_path: /rack{{.Index}}/{{.Host}}
engines:
  - targets: {{.Targets}}
    fabric_iface: {{.FabricIface}}
    fabric_iface_port: {{.FabricPort}}
    storage:
      - {class: ram, scm_mount: {{.Dir}}/scm, scm_size: 2}
      - {class: file, bdev_list: [{{.Dir}}/bdev], bdev_size: 8}
`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl, err := LoadTemplate(path)
	if err != nil {
		t.Fatal(err)
	}
	d := testNodeData("/srv")
	b, cfg, err := tmpl.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "# rack of n2\nname: tank\nmgmt_svc_replicas: [127.0.0.1:20001, 127.0.0.1:20011, 127.0.0.1:20021]\n") {
		t.Errorf("rendered:\n%s", b)
	}
	if cfg.Name != "tank" || cfg.Port != 20011 || cfg.FaultPath != "/rack1/n2" || cfg.Engines[0].Storage[0].ScmMount != "/srv/n2/scm" || len(cfg.MgmtSvcReplicas) != 3 {
		t.Errorf("parsed: %+v", cfg)
	}
}

func TestTemplateErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string // in the one-line error, beside the template's path
	}{
		{"parse", "name: x\nport: {{.Port}\n", []string{"line 2:", `bad character U+007D '}'`}},
		{"unknown field", "name: x\nport: 1\nname2: {{.Hostname}}\n", []string{"line 3:", "<.Hostname>", "can't evaluate field Hostname"}},
		{"unknown function", "{{bogus .Host}}\n", []string{"line 1:", `function "bogus" not defined`}},
		{"unclosed action", "engines:\n{{range .Replicas}}\n", []string{"line 3:", "unexpected EOF"}},
		{"yaml key", "name: x\nprot: {{.Port}}\n", []string{"gives node n2 a bad configuration", `output line 2: "prot: 20011"`, `unknown key "prot"`, `did you mean "port"?`}},
		{"yaml syntax", "name: x\n  port: {{.Port}}\n", []string{"gives node n2 a bad configuration", "output line 2"}},
		{"invalid", "port: {{.Port}}\ntransport_config: {allow_insecure: true}\nengines:\n  - targets: 0\n    storage: [{class: ram, scm_mount: /a, scm_size: 1}, {class: file, bdev_list: [/b], bdev_size: 1}]\n",
			[]string{"gives node n2 a bad configuration", "engines[0].targets", "0 targets"}},
		{"no engines", "port: {{.Port}}\n", []string{"gives node n2 a bad configuration", "no engines configured"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.tmpl")
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			tmpl, err := LoadTemplate(path)
			if err == nil {
				_, _, err = tmpl.Render(testNodeData("/srv"))
			}
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !errors.Is(err, daoserr.Inval) || !strings.Contains(msg, "template "+path) || strings.Contains(msg, "\n") {
				t.Errorf("want a one-line DER_INVAL naming %s, got %q", path, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
		})
	}
	if _, err := LoadTemplate(filepath.Join(t.TempDir(), "nope.yml")); !errors.Is(err, daoserr.Nonexist) {
		t.Errorf("missing template: %v", err)
	}
}

// Every node gets DIR/<node>.yml (valid for daos_server as it is, directories
// included) with its own ports and the same replicas; a template that fails
// for one node writes nothing.
func TestWriteNodeConfigs(t *testing.T) {
	dir := t.TempDir()
	o := ClusterOptions{Dir: dir, BasePort: 30001, Bin: "/bin/true", Launcher: "/bin/true"}
	nodes := []Node{{"n1", "127.0.0.1"}, {"n2", "127.0.0.1"}, {"n3", "127.0.0.1"}}
	if err := o.defaults(len(nodes)); err != nil {
		t.Fatal(err)
	}
	cfgs, err := writeNodeConfigs(&o, nodes)
	if err != nil {
		t.Fatal(err)
	}
	for i, nc := range cfgs {
		if nc.Path != filepath.Join(dir, nodes[i].Name+".yml") || nc.Ctl != "127.0.0.1:"+[]string{"30001", "30011", "30021"}[i] {
			t.Errorf("node %d: %+v", i, nc)
		}
		cfg, err := config.Load(nc.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(true); err != nil {
			t.Errorf("%s: %v", nc.Path, err)
		}
		if strings.Join(cfg.MgmtSvcReplicas, ",") != "127.0.0.1:30001,127.0.0.1:30011,127.0.0.1:30021" || cfg.FaultPath != "/"+nodes[i].Name {
			t.Errorf("%s: replicas %v, fault path %s", nc.Path, cfg.MgmtSvcReplicas, cfg.FaultPath)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.tmpl")
	os.WriteFile(bad, []byte("{{if eq .Index 1}}{{.Nope}}{{end}}\n"), 0o644)
	o2 := o
	o2.Dir, o2.Template = t.TempDir(), bad
	if _, err := writeNodeConfigs(&o2, nodes); err == nil {
		t.Fatal("a template failing for n2 was accepted")
	}
	if ents, _ := os.ReadDir(o2.Dir); len(ents) != 0 {
		t.Errorf("a failed render left %d files", len(ents))
	}
	o2.Template, o2.Replicas = "", 1
	if _, err := writeNodeConfigs(&o2, []Node{{"n1", "a"}, {"n1", "a"}}); err == nil || !strings.Contains(err.Error(), "node n1 is listed twice") {
		t.Errorf("a node listed twice: %v", err)
	}
	for _, bad := range []string{"..", "a/b", "-x", ""} {
		if _, err := writeNodeConfigs(&o2, []Node{{bad, "a"}}); err == nil || !strings.Contains(err.Error(), "is not a node name") {
			t.Errorf("node %q: %v", bad, err)
		}
	}
}
