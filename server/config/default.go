package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"text/template"

	"go.yaml.in/yaml/v3"
)

// DataDir is where the embedded default keeps its storage and metadata:
// $DAOS_DATA, or ~/.local/share/godaos.
func DataDir() (string, error) {
	if d := os.Getenv("DAOS_DATA"); d != "" {
		return filepath.Abs(d)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", &Error{Msg: "cannot find a home directory for the default storage: " + err.Error(), Resolution: "set DAOS_DATA to a directory"}
	}
	return filepath.Join(home, ".local", "share", "godaos"), nil
}

// Default is the configuration 'daos_server start' runs without -o: one engine
// with 4 targets, file-backed storage under dataDir, insecure transport, and its
// own management service on the local control port.
func Default(dataDir string) *Server {
	s := &Server{
		Name:            DefaultSystemName,
		MgmtSvcReplicas: []string{fmt.Sprintf("127.0.0.1:%d", DefaultControlPort)},
		TransportConfig: TransportConfig{AllowInsecure: true},
		ControlMetadata: ControlMetadata{Path: filepath.Join(dataDir, "control_meta")},
		Engines: []Engine{{
			Targets: DefaultTargets,
			LogFile: filepath.Join(dataDir, "daos_engine.0.log"),
			Storage: []Tier{
				{Class: ClassRAM, ScmMount: filepath.Join(dataDir, "scm0"), ScmSize: 1 << 30},
				{Class: ClassFile, BdevList: []string{filepath.Join(dataDir, "bdev0")}, BdevSize: 4 << 30},
			},
		}},
	}
	s.setDefaults()
	return s
}

// GenerateOptions shape a generated configuration.
type GenerateOptions struct {
	DataDir  string // storage and metadata directories go under it
	Engines  int    // default 1
	Targets  int    // per engine, default 4
	Replicas []string
}

// Generate writes a commented server.yml: the keys GoDAOS reads, what each
// means, and values that work on this host.
func Generate(o GenerateOptions) ([]byte, error) {
	if o.Engines <= 0 {
		o.Engines = 1
	}
	if o.Targets <= 0 {
		o.Targets = DefaultTargets
	}
	if len(o.Replicas) == 0 {
		o.Replicas = []string{fmt.Sprintf("127.0.0.1:%d", DefaultControlPort)}
	}
	type engine struct {
		Index, Targets, Port int
		Dir                  string
	}
	data := struct {
		Name, Dir      string
		Replicas       []string
		Port, TelePort int
		Engines        []engine
	}{Name: DefaultSystemName, Dir: o.DataDir, Replicas: o.Replicas, Port: DefaultControlPort, TelePort: DefaultTelemetryPort}
	for i := range o.Engines {
		data.Engines = append(data.Engines, engine{Index: i, Targets: o.Targets, Port: DefaultFabricPort + 100*i, Dir: o.DataDir})
	}
	var b bytes.Buffer
	if err := generated.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var generated = template.Must(template.New("server.yml").Parse(`# GoDAOS server configuration (DAOS's server.yml keys).
# Start with: daos_server start -o THIS_FILE

# Name of the system; every server of one system uses the same name.
name: {{.Name}}

# Servers that run the management service (Raft): 1, 3 or 5, as host[:port].
# Other servers join the system through them.
mgmt_svc_replicas:
{{- range .Replicas}}
  - {{.}}
{{- end}}

# Control-plane port (dmg, daos_agent and other servers connect here).
port: {{.Port}}

# Control-plane security. allow_insecure: true is for development only; with it
# false, give a CA certificate and this server's certificate and key
# ('dmg' can generate them).
transport_config:
  allow_insecure: true
  # client_cert_dir: /etc/daos/certs/clients
  # ca_cert: /etc/daos/certs/daosCA.crt
  # cert: /etc/daos/certs/server.crt
  # key: /etc/daos/certs/server.key

# Data plane: GoDAOS speaks TCP.
provider: ofi+tcp

# Where the management service keeps its database (Raft log and snapshots).
control_metadata:
  path: {{.Dir}}/control_meta

# Prometheus metrics at http://HOST:telemetry_port/metrics
telemetry_port: {{.TelePort}}

# control_log_mask: INFO
# control_log_file: {{.Dir}}/daos_server.log

# This server's place in the fault-domain tree (placement puts replicas in
# different domains); default: /HOSTNAME.
# fault_path: /rack0/node1

# One entry per engine; each engine is one rank.
engines:
{{- range .Engines}}
  - # engine {{.Index}}
    # Targets: the unit of storage and of concurrency (DAOS: one per core).
    targets: {{.Targets}}
    # Network interface and port of the data plane.
    fabric_iface: lo
    fabric_iface_port: {{.Port}}
    log_file: {{.Dir}}/daos_engine.{{.Index}}.log
    storage:
      # The SCM tier: index, log and small values, in this directory.
      # scm_size is GiB (or a size with a unit: 512M).
      - class: ram
        scm_mount: {{.Dir}}/scm{{.Index}}
        scm_size: 1
      # The bdev tier: large values. class file: files of bdev_size GiB each,
      # created by 'dmg storage format'; class kdev: block devices.
      - class: file
        bdev_list: [{{.Dir}}/bdev{{.Index}}]
        bdev_size: 4
{{- end}}
`))

// Marshal writes a configuration as YAML with DAOS's keys (no comments; see
// Generate for a commented example).
func Marshal(s *Server) ([]byte, error) {
	b, err := yaml.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return b, nil
}
