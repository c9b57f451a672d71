package launcher

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/config"
)

// NodeData is what a per-node configuration template sees: one server per
// node, several of which may share one machine's loopback (hence ports that
// differ by index).
type NodeData struct {
	Host          string   // node name, as in the host list or as Slurm names it
	Addr          string   // address the launcher and the other servers reach this node at
	Index         int      // 0-based position in the node list
	N             int      // number of nodes
	Port          int      // control port: the base port + 10*Index (Raft uses Port+1)
	TelemetryPort int      // Port+2
	FabricPort    int      // Port+3: the engine's data plane
	FabricIface   string   // network interface of the data plane (lo on one machine)
	Dir           string   // this node's directory: DIR/<Host>
	Replicas      []string // mgmt_svc_replicas: Addr:Port of the first nodes
	Targets       int      // per engine
}

// Template renders a daos_server YAML file per node.
type Template struct {
	name string // the file, or "built-in", for errors
	t    *template.Template
}

// Sentinels in config.Default's YAML that become template actions (see
// builtinText): the built-in template is config.Default's, so a change of the
// default layout reaches launches through templates too.
const (
	dirSentinel     = "/GODAOS@DIR"
	hostSentinel    = "GODAOS@HOST"
	replicaSentinel = "GODAOS@REPLICA"
	ifaceSentinel   = "GODAOS@IFACE"
)

var numSentinels = []struct {
	n      int
	action string
}{{1000000001, "{{.Port}}"}, {1000000002, "{{.TelemetryPort}}"}, {1000000003, "{{.FabricPort}}"}, {1000000004, "{{.Targets}}"}}

const builtinHeader = `# GoDAOS per-node server configuration: a Go text/template rendered once per
# node by 'launcher pdsh' and 'launcher srun' into DIR/<node>.yml.
# Fields: .Host .Addr .Index .N .Port .TelemetryPort .FabricPort .FabricIface
# .Dir .Replicas .Targets (see 'go doc github.com/godaos/godaos/launcher.NodeData').
`

// builtinText is config.Default with the per-node values replaced by template
// actions.
func builtinText() string {
	c := config.Default(dirSentinel)
	c.Port, c.TelemetryPort = numSentinels[0].n, numSentinels[1].n
	c.MgmtSvcReplicas = []string{replicaSentinel}
	c.FaultPath = "/" + hostSentinel
	c.Engines[0].FabricIfacePort, c.Engines[0].Targets = numSentinels[2].n, numSentinels[3].n
	c.Engines[0].FabricIface = ifaceSentinel
	b, err := config.Marshal(c)
	if err != nil {
		panic(err) // a fixed value: a failure is a bug found by the first test
	}
	var out strings.Builder
	out.WriteString(builtinHeader)
	for line := range strings.SplitAfterSeq(string(b), "\n") {
		if indent, ok := strings.CutSuffix(line, "- "+replicaSentinel+"\n"); ok {
			fmt.Fprintf(&out, "{{- range .Replicas}}\n%s- {{.}}\n{{- end}}\n", indent)
			continue
		}
		out.WriteString(line)
	}
	s := out.String()
	for _, ns := range numSentinels {
		s = strings.ReplaceAll(s, strconv.Itoa(ns.n), ns.action)
	}
	s = strings.ReplaceAll(s, ifaceSentinel, "{{.FabricIface}}")
	s = strings.ReplaceAll(s, hostSentinel, "{{.Host}}")
	return strings.ReplaceAll(s, dirSentinel, "{{.Dir}}")
}

// BuiltinTemplate is the template used when none is given ('launcher template'
// prints it as a starting point).
func BuiltinTemplate() string { return builtinText() }

// LoadTemplate reads a template file; path "" is the built-in template.
func LoadTemplate(path string) (*Template, error) {
	if path == "" {
		return parseTemplate("built-in template", builtinText())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Nonexist, err, "launcher: read template").
			WithResolution("give a daos_server YAML template with --template, or none for the built-in one")
	}
	return parseTemplate(path, string(b))
}

func parseTemplate(name, text string) (*Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, templateError(name, err)
	}
	return &Template{name: name, t: t}, nil
}

// reTmplErr splits text/template's "template: NAME:LINE[:COL]: MSG".
var reTmplErr = regexp.MustCompile(`^(\d+)(?::\d+)?: (?:executing "[^"]*" at )?(.*)$`)

// templateError names the template and the line of a parse or execution
// error, on one line.
func templateError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "template: "+name+":")
	line := ""
	if m := reTmplErr.FindStringSubmatch(msg); m != nil {
		line, msg = " line "+m[1], m[2]
	}
	return daoserr.Newf(daoserr.Inval, "launcher: template %s%s: %s", name, line, oneLine(msg)).
		WithResolution("fix the template (fields: .Host .Addr .Index .N .Port .TelemetryPort .FabricPort .FabricIface .Dir .Replicas .Targets; 'launcher template' prints the built-in one)")
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", `\n`) }

// Render renders the configuration of one node and checks it as daos_server
// will (config.Parse and Validate, without looking at the filesystem: the
// directories may be on the node only).
func (t *Template) Render(d NodeData) ([]byte, *config.Server, error) {
	var b bytes.Buffer
	if err := t.t.Execute(&b, d); err != nil {
		return nil, nil, templateError(t.name, err)
	}
	cfg, err := config.Parse(b.Bytes())
	if err == nil {
		err = validateForNode(cfg)
	}
	if err != nil {
		where := ""
		var ce *config.Error
		if errors.As(err, &ce) && ce.Line > 0 {
			where = fmt.Sprintf(" (output line %d: %q)", ce.Line, renderedLine(b.Bytes(), ce.Line))
		}
		return nil, nil, daoserr.Newf(daoserr.Inval, "launcher: template %s gives node %s a bad configuration%s: %s", t.name, d.Host, where, oneLine(err.Error())).
			WithResolution("fix the template; the rendered file must be a valid daos_server YAML")
	}
	return b.Bytes(), cfg, nil
}

// validateForNode is Validate for a file that runs on another node: the
// fabric interface is looked up on the node by daos_server itself, as it may
// not exist on the launching host.
func validateForNode(cfg *config.Server) error {
	c := *cfg
	c.Engines = append([]config.Engine(nil), cfg.Engines...)
	for i := range c.Engines {
		if _, err := config.InterfaceAddr(c.Engines[i].FabricIface); err != nil {
			c.Engines[i].FabricIface = "lo"
		}
	}
	return c.Validate(false)
}

func renderedLine(b []byte, n int) string {
	lines := strings.Split(string(b), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return strings.TrimSpace(lines[n-1])
}
