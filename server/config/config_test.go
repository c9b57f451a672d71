package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

// A file in the style of DAOS's own server.yml examples (with a file-backed bdev
// tier and the loopback interface, which this host has) works as it is.
const daosStyle = `
name: daos_server
mgmt_svc_replicas: ['server-1', 'server-2:10001', 'server-3']
port: 10001
transport_config:
  allow_insecure: false
  client_cert_dir: /etc/daos/certs/clients
  ca_cert: /etc/daos/certs/daosCA.crt
  cert: /etc/daos/certs/server.crt
  key: /etc/daos/certs/server.key
provider: ofi+tcp
control_log_mask: INFO
control_log_file: /tmp/daos_server.log
telemetry_port: 9191
nr_hugepages: 4096
disable_vfio: false
engines:
  -
    targets: 16
    nr_xs_helpers: 4
    first_core: 0
    fabric_iface: lo
    fabric_iface_port: 31316
    log_file: /tmp/daos_engine.0.log
    log_mask: INFO
    env_vars:
      - FI_SOCKETS_MAX_CONN_RETRY=1
    storage:
      -
        class: ram
        scm_mount: /mnt/daos0
        scm_size: 16
      -
        class: file
        bdev_list: [/tmp/daos-bdev0, /tmp/daos-bdev1]
        bdev_size: 32
        bdev_roles: [data]
`

func TestDAOSStyleFile(t *testing.T) {
	cfg, err := Parse([]byte(daosStyle))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(false); err != nil {
		t.Fatal(err)
	}
	e := cfg.Engines[0]
	if len(cfg.MgmtSvcReplicas) != 3 || e.Targets != 16 || e.FabricIfacePort != 31316 ||
		e.Storage[0].ScmSize != 16<<30 || e.Storage[1].BdevSize != 32<<30 || len(e.Storage[1].BdevList) != 2 {
		t.Errorf("decoded %+v", cfg)
	}
	if cfg.TransportConfig.AllowInsecure || cfg.TransportConfig.CACert != "/etc/daos/certs/daosCA.crt" {
		t.Errorf("transport %+v", cfg.TransportConfig)
	}
}

// The generated example and the embedded default are valid on this host, with
// their directories in place.
func TestGeneratedAndDefault(t *testing.T) {
	dir := t.TempDir()
	b, err := Generate(GenerateOptions{DataDir: dir, Engines: 2, Targets: 8})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(b)
	if err != nil {
		t.Fatalf("generated config does not parse: %v\n%s", err, b)
	}
	if err := cfg.Validate(true); err != nil {
		t.Fatalf("generated config is not valid: %v\n%s", err, b)
	}
	if len(cfg.Engines) != 2 || cfg.Engines[1].Targets != 8 || cfg.Engines[1].FabricIfacePort != DefaultFabricPort+100 ||
		cfg.Engines[1].Storage[1].BdevList[0] != filepath.Join(dir, "bdev1") {
		t.Errorf("generated %+v", cfg.Engines)
	}
	if !strings.Contains(string(b), "# The SCM tier") {
		t.Error("generated config has no comments")
	}
	if err := Default(dir).Validate(true); err != nil {
		t.Errorf("embedded default: %v", err)
	}
	empty, err := Parse(nil)
	if err != nil || empty.Port != DefaultControlPort {
		t.Errorf("empty file: %+v, %v", empty, err)
	}
}

func TestDataDir(t *testing.T) {
	t.Setenv("DAOS_DATA", "/srv/godaos")
	if d, _ := DataDir(); d != "/srv/godaos" {
		t.Errorf("DAOS_DATA: %s", d)
	}
	t.Setenv("DAOS_DATA", "")
	t.Setenv("HOME", "/home/u")
	if d, _ := DataDir(); d != "/home/u/.local/share/godaos" {
		t.Errorf("default: %s", d)
	}
}

// Every bad input stops the start with one line naming what and where, and
// what to do.
func TestBadConfigs(t *testing.T) {
	dir := t.TempDir()
	good, _ := Generate(GenerateOptions{DataDir: dir})
	edit := func(old, new string) string {
		s := strings.Replace(string(good), old, new, 1)
		if s == string(good) {
			t.Fatalf("edit %q not applied", old)
		}
		return s
	}
	tests := []struct {
		name string
		yaml string
		want []string // all in the error's one line
	}{
		{"misspelled top-level key", edit("mgmt_svc_replicas:", "mgmt_svc_replica:"),
			[]string{"line 9", `unknown key "mgmt_svc_replica"`, `did you mean "mgmt_svc_replicas"?`}},
		{"misspelled engine key", edit("targets: 4", "target: 4"), []string{`unknown key "target"`, `did you mean "targets"?`}},
		{"misspelled storage key", edit("scm_size: 1", "scm_sise: 1"), []string{`unknown key "scm_sise"`, `"scm_size"`}},
		{"unknown key", edit("provider: ofi+tcp", "provider: ofi+tcp\nflux_capacitor: on"), []string{`unknown key "flux_capacitor"`, "config generate"}},
		{"bad size", edit("bdev_size: 4", "bdev_size: 4X"), []string{`"4X" is not a size`, "512M"}},
		{"number expected", edit("targets: 4", "targets: many"), []string{`"many"`, "want a number"}},
		{"bad YAML", edit("port: 10001", "port: 10001\n\tname: x"), []string{"line", "YAML"}},
		{"control and fabric port clash", edit("fabric_iface_port: 31416", "fabric_iface_port: 10001"),
			[]string{"engines[0].fabric_iface_port", "port 10001 is already used by port"}},
		{"telemetry port clash", edit("telemetry_port: 9191", "telemetry_port: 10001"), []string{"telemetry_port", "already used by port"}},
		{"missing directory", edit("scm_mount: "+dir+"/scm0", "scm_mount: /nonexistent/dir/scm0"),
			[]string{"engines[0].storage[0].scm_mount", "directory /nonexistent/dir does not exist", "create /nonexistent/dir first"}},
		{"relative path", edit("scm_mount: "+dir+"/scm0", "scm_mount: scm0"), []string{"scm_mount", "relative"}},
		{"no targets", edit("targets: 4", "targets: 0"), []string{"engines[0].targets", "0 targets"}},
		{"dcpm", edit("class: ram", "class: dcpm"), []string{"storage[0].class", "dcpm", "class: ram"}},
		{"nvme by PCI address", edit("class: file\n        bdev_list: ["+dir+"/bdev0]", "class: nvme\n        bdev_list: [\"0000:81:00.0\"]"),
			[]string{"bdev_list[0]", "PCI address", "kdev"}},
		{"bdev tier first", edit("- class: ram", "- class: file"), []string{"storage[0].class", "first (SCM) tier"}},
		{"no certificates", edit("  allow_insecure: true", "  allow_insecure: false"), []string{"transport_config", "allow_insecure"}},
		{"two replicas", edit("  - 127.0.0.1:10001", "  - 127.0.0.1:10001\n  - 127.0.0.2:10001"), []string{"mgmt_svc_replicas", "1, 3 or 5"}},
		{"bad fault path", edit("# fault_path: /rack0/node1", "fault_path: rack0/"), []string{"fault_path", "/rack0/node1"}},
		{"no such interface", edit("fabric_iface: lo", "fabric_iface: ib9"), []string{"fabric_iface", `no interface "ib9"`}},
		{"no engines", "transport_config: {allow_insecure: true}\n", []string{"engines", "no engines"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml))
			if err == nil {
				err = cfg.Validate(true)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *Error
			if !errors.As(err, &ce) || !daoserr.Is(err, daoserr.Inval) && !errors.Is(err, daoserr.Inval) {
				t.Errorf("not a config error: %T %v", err, err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("more than one line: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yml") || !strings.Contains(err.Error(), "-o") {
		t.Errorf("got %v", err)
	}
	p := filepath.Join(t.TempDir(), "s.yml")
	os.WriteFile(p, []byte("engines: 3\n"), 0o644)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("got %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(daosStyle))
	g, _ := Generate(GenerateOptions{DataDir: "/tmp/x"})
	f.Add(g)
	f.Add([]byte("engines: [{targets: 1, storage: [{class: ram, scm_size: 1T}]}]"))
	f.Add([]byte("port: [1, 2]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Parse(b)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error: %q", err)
			}
			return
		}
		cfg.Validate(false)
	})
}

func TestMarshalRoundTrip(t *testing.T) {
	dir := t.TempDir()
	in := Default(dir)
	in.Engines[0].Storage[0].ScmSize = 512 << 20 // not whole GiB: written with a unit
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Parse(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if err := out.Validate(true); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if fmt.Sprintf("%+v", *out) != fmt.Sprintf("%+v", *in) || fmt.Sprint(out.Engines) != fmt.Sprint(in.Engines) {
		t.Errorf("round trip differs:\n%+v\n%+v\n%s", in, out, b)
	}
}
