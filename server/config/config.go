// Package config reads and checks daos_server's YAML configuration, with DAOS's
// keys (server.yml): a DAOS administrator's file should work as it is, as far as
// GoDAOS implements what it says.
//
// Decoding is strict: an unknown or misspelled key, a value of the wrong kind, a
// bad size, a port used twice or a directory that is not there each stop the
// start with one line naming the key, the value and the fix.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/units"
)

// Defaults, as DAOS's.
const (
	DefaultSystemName    = "daos_server"
	DefaultControlPort   = 10001
	DefaultTelemetryPort = 9191
	DefaultFabricPort    = 31416 // engine i listens on DefaultFabricPort + 100*i unless set
	DefaultTargets       = 4
)

// Server is server.yml.
type Server struct {
	Name            string          `yaml:"name,omitempty"`
	MgmtSvcReplicas []string        `yaml:"mgmt_svc_replicas,omitempty"`
	Port            int             `yaml:"port,omitempty"`
	TransportConfig TransportConfig `yaml:"transport_config"`
	Provider        string          `yaml:"provider,omitempty"`
	ControlMetadata ControlMetadata `yaml:"control_metadata,omitempty"`
	TelemetryPort   int             `yaml:"telemetry_port,omitempty"`
	ControlLogMask  string          `yaml:"control_log_mask,omitempty"`
	ControlLogFile  string          `yaml:"control_log_file,omitempty"`
	FaultPath       string          `yaml:"fault_path,omitempty"`
	Engines         []Engine        `yaml:"engines"`

	// Accepted for compatibility with DAOS files, and ignored: GoDAOS uses no
	// hugepages, SPDK, VFIO or VMD.
	NrHugepages       int    `yaml:"nr_hugepages,omitempty"`
	DisableHugepages  bool   `yaml:"disable_hugepages,omitempty"`
	SystemRAMReserved int    `yaml:"system_ram_reserved,omitempty"`
	DisableVFIO       bool   `yaml:"disable_vfio,omitempty"`
	DisableVMD        bool   `yaml:"disable_vmd,omitempty"`
	EnableHotplug     bool   `yaml:"enable_hotplug,omitempty"`
	CoreDumpFilter    uint8  `yaml:"core_dump_filter,omitempty"`
	HelperLogFile     string `yaml:"helper_log_file,omitempty"`
}

// TransportConfig secures the control plane.
type TransportConfig struct {
	AllowInsecure bool   `yaml:"allow_insecure"`
	ClientCertDir string `yaml:"client_cert_dir,omitempty"`
	CACert        string `yaml:"ca_cert,omitempty"`
	Cert          string `yaml:"cert,omitempty"`
	Key           string `yaml:"key,omitempty"`
}

// ControlMetadata is where the management service keeps its database.
type ControlMetadata struct {
	Path   string `yaml:"path,omitempty"`
	Device string `yaml:"device,omitempty"`
}

// Engine is one engines[] entry: one rank.
type Engine struct {
	Targets         int      `yaml:"targets"`
	NrXsHelpers     int      `yaml:"nr_xs_helpers,omitempty"`
	FirstCore       int      `yaml:"first_core,omitempty"`
	PinnedNumaNode  *int     `yaml:"pinned_numa_node,omitempty"`
	FabricIface     string   `yaml:"fabric_iface,omitempty"`
	FabricIfacePort int      `yaml:"fabric_iface_port,omitempty"`
	LogFile         string   `yaml:"log_file,omitempty"`
	LogMask         string   `yaml:"log_mask,omitempty"`
	EnvVars         []string `yaml:"env_vars,omitempty"`
	CrtTimeout      int      `yaml:"crt_timeout,omitempty"`
	Storage         []Tier   `yaml:"storage"`
}

// Tier is one engines[].storage[] entry. The first is the SCM tier (class ram
// or dcpm), the others bdev tiers (class file, nvme or kdev).
type Tier struct {
	Class     string   `yaml:"class"`
	ScmMount  string   `yaml:"scm_mount,omitempty"`
	ScmSize   Size     `yaml:"scm_size,omitempty"`
	ScmList   []string `yaml:"scm_list,omitempty"`
	BdevList  []string `yaml:"bdev_list,omitempty"`
	BdevSize  Size     `yaml:"bdev_size,omitempty"`
	BdevRoles []string `yaml:"bdev_roles,omitempty"`
}

// Size is scm_size or bdev_size: a bare number is GiB, as in DAOS's files
// (scm_size: 16), or a size with a unit (512M, 2T).
type Size uint64

// UnmarshalYAML reads a Size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a size such as 16 (GiB) or 512M")
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalYAML writes whole GiB as a bare number, like DAOS's files.
func (s Size) MarshalYAML() (any, error) {
	if s%(1<<30) == 0 {
		return uint64(s >> 30), nil
	}
	return units.ByteSize(s).String(), nil
}

// ParseSize parses a Size.
func ParseSize(v string) (Size, error) {
	if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
		if n > 1<<34 {
			return 0, fmt.Errorf("%s GiB is too large", v)
		}
		return Size(n << 30), nil
	}
	b, err := units.ParseByteSize(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: use a number of GiB (16) or a size with a unit (512M, 4G)", v)
	}
	return Size(b), nil
}

func (s Size) String() string { return units.ByteSize(s).String() }

// Storage classes.
const (
	ClassRAM  = "ram"
	ClassDCPM = "dcpm"
	ClassFile = "file"
	ClassNVMe = "nvme"
	ClassKdev = "kdev"
)

// Error is a configuration error: where (the key path, and the line when
// known), what is wrong, and what to do.
type Error struct {
	Key        string // e.g. engines[0].storage[1].bdev_size
	Line       int
	Msg        string
	Resolution string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Msg)
	if e.Resolution != "" {
		b.WriteString(" (" + e.Resolution + ")")
	}
	return strings.ReplaceAll(b.String(), "\n", `\n`) // one line, whatever a value held
}

// Is lets errors.Is(err, daoserr.Inval) match: a bad configuration is invalid input.
func (e *Error) Is(target error) bool { return target == daoserr.Inval }

func errf(key, resolution, format string, args ...any) *Error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, args...), Resolution: resolution}
}

// Load reads and checks a configuration file (see Parse and Validate).
func Load(path string) (*Server, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("cannot read %s: %v", path, errors.Unwrap(err)), Resolution: "give the path of a server.yml with -o, or none for the built-in default"}
	}
	cfg, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

var (
	reUnknown  = regexp.MustCompile(`line (\d+): field (\S+) not found in type (\S+)`)
	reLine     = regexp.MustCompile(`^line (\d+): (.*)$`)
	reUnmarsh  = regexp.MustCompile("(?s)cannot unmarshal !!(\\w+) `(.*)` into (\\S+)")
	knownByTyp = map[string][]string{}
)

// Parse decodes YAML strictly and fills in defaults. It does not look at the
// filesystem or the network: Validate does.
func Parse(b []byte) (*Server, error) {
	var cfg Server
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // empty file: the defaults
		return nil, yamlError(err)
	}
	cfg.setDefaults()
	return &cfg, nil
}

// yamlError turns the YAML decoder's messages into ones a user can act on.
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := reLine.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			return &Error{Line: line, Msg: m[2], Resolution: "fix the YAML syntax (indent with spaces, 'key: value')"}
		}
		return &Error{Msg: msg, Resolution: "fix the YAML syntax"}
	}
	// one line: the first problem (the others are usually consequences)
	first := te.Errors[0]
	if m := reUnknown.FindStringSubmatch(first); m != nil {
		line, _ := strconv.Atoi(m[1])
		e := &Error{Line: line, Msg: fmt.Sprintf("unknown key %q", m[2])}
		if s := suggest(m[2], keysOf(m[3])); s != "" {
			e.Resolution = fmt.Sprintf("did you mean %q?", s)
		} else {
			e.Resolution = "remove it; 'daos_server config generate' prints every key GoDAOS knows"
		}
		return e
	}
	if m := reLine.FindStringSubmatch(first); m != nil {
		line, _ := strconv.Atoi(m[1])
		msg := m[2]
		if u := reUnmarsh.FindStringSubmatch(msg); u != nil {
			msg = fmt.Sprintf("%q is %s, want %s", u[2], yamlKindName(u[1]), kindName(u[3]))
		}
		return &Error{Line: line, Msg: msg}
	}
	return &Error{Msg: first}
}

func yamlKindName(tag string) string {
	switch tag {
	case "str":
		return "a string"
	case "int", "float":
		return "a number"
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	case "bool":
		return "true or false"
	}
	return "a " + tag
}

func kindName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case goType == "int" || goType == "uint8" || strings.HasSuffix(goType, "int"):
		return "a number"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "config."):
		return "a mapping of keys (" + strings.TrimPrefix(goType, "config.") + ")"
	}
	return goType
}

// keysOf lists the YAML keys of one of this package's types, by its Go name.
func keysOf(typeName string) []string {
	if k, ok := knownByTyp[typeName]; ok {
		return k
	}
	return nil
}

func init() {
	for name, v := range map[string]any{"config.Server": Server{}, "config.Engine": Engine{}, "config.Tier": Tier{},
		"config.TransportConfig": TransportConfig{}, "config.ControlMetadata": ControlMetadata{}} {
		knownByTyp[name] = yamlKeys(v)
	}
}

// suggest returns the known key closest to k, if it is close enough to be a typo.
func suggest(k string, known []string) string {
	best, bestD := "", 3
	for _, c := range known {
		if d := editDistance(k, c); d < bestD || (d == bestD && best == "") {
			if d <= 2 || strings.Contains(c, k) || strings.Contains(k, c) {
				best, bestD = c, d
			}
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (s *Server) setDefaults() {
	if s.Name == "" {
		s.Name = DefaultSystemName
	}
	if s.Port == 0 {
		s.Port = DefaultControlPort
	}
	if s.TelemetryPort == 0 {
		s.TelemetryPort = DefaultTelemetryPort
	}
	if s.Provider == "" {
		s.Provider = "ofi+tcp"
	}
	for i := range s.Engines {
		e := &s.Engines[i]
		if e.FabricIface == "" {
			e.FabricIface = "lo"
		}
		if e.FabricIfacePort == 0 {
			e.FabricIfacePort = DefaultFabricPort + 100*i
		}
	}
}

// Validate checks what Parse cannot: values, ranges, clashes and, when checkFS
// is set, that the directories and devices named exist. It returns the first
// problem.
func (s *Server) Validate(checkFS bool) error {
	if len(s.Engines) == 0 {
		return errf("engines", "add an engines: list with at least one engine (see 'daos_server config generate')", "no engines configured")
	}
	if !s.TransportConfig.AllowInsecure && (s.TransportConfig.Cert == "" || s.TransportConfig.Key == "" || s.TransportConfig.CACert == "") {
		return errf("transport_config", "set allow_insecure: true for development, or give ca_cert, cert and key", "certificates are required unless allow_insecure is true")
	}
	if p := strings.TrimPrefix(s.Provider, "ofi+"); p != "tcp" && p != "tcp;ofi_rxm" && p != "sockets" {
		return errf("provider", "use ofi+tcp (GoDAOS's data plane is TCP)", "provider %q is not supported", s.Provider)
	}
	switch len(s.MgmtSvcReplicas) {
	case 0, 1, 3, 5:
	default:
		return errf("mgmt_svc_replicas", "list 1, 3 or 5 servers: Raft needs a majority", "%d replicas", len(s.MgmtSvcReplicas))
	}
	seenRep := map[string]bool{}
	for i, r := range s.MgmtSvcReplicas {
		key := fmt.Sprintf("mgmt_svc_replicas[%d]", i)
		host, port, err := splitHostPort(r, s.Port)
		if err != nil {
			return errf(key, "write host or host:port", "%q: %v", r, err)
		}
		hp := net.JoinHostPort(host, strconv.Itoa(port))
		if seenRep[hp] {
			return errf(key, "list each replica once", "%s is listed twice", hp)
		}
		seenRep[hp] = true
	}
	ports := map[int]string{}
	usePort := func(key string, p int) error {
		if p <= 0 || p > 65535 {
			return errf(key, "use a port between 1 and 65535", "port %d is out of range", p)
		}
		if other, ok := ports[p]; ok {
			if other == "port" {
				other = "port (the control plane)"
			}
			return errf(key, "give each listener its own port", "port %d is already used by %s", p, other)
		}
		ports[p] = key
		return nil
	}
	if err := usePort("port", s.Port); err != nil {
		return err
	}
	if err := usePort("telemetry_port", s.TelemetryPort); err != nil {
		return err
	}
	if s.FaultPath != "" && (!strings.HasPrefix(s.FaultPath, "/") || strings.HasSuffix(s.FaultPath, "/") || strings.Contains(s.FaultPath, "//")) {
		return errf("fault_path", "write it like /rack0/node1", "%q is not a fault domain path", s.FaultPath)
	}
	dirs := map[string]string{}
	for i := range s.Engines {
		if err := s.Engines[i].validate(i, usePort, dirs, checkFS); err != nil {
			return err
		}
	}
	if checkFS && s.ControlMetadata.Path != "" {
		if err := parentExists("control_metadata.path", s.ControlMetadata.Path); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) validate(i int, usePort func(string, int) error, dirs map[string]string, checkFS bool) error {
	key := fmt.Sprintf("engines[%d]", i)
	if e.Targets < 1 || e.Targets > 64 {
		return errf(key+".targets", "use 1 to 64 targets per engine (DAOS: one per core)", "%d targets", e.Targets)
	}
	if e.NrXsHelpers < 0 {
		return errf(key+".nr_xs_helpers", "use 0 or more", "%d helpers", e.NrXsHelpers)
	}
	if err := usePort(key+".fabric_iface_port", e.FabricIfacePort); err != nil {
		return err
	}
	if _, err := InterfaceAddr(e.FabricIface); err != nil {
		return errf(key+".fabric_iface", "name a network interface of this host (ip link), e.g. lo or eth0", "%v", err)
	}
	if len(e.Storage) == 0 {
		return errf(key+".storage", "add an SCM tier (class: ram) and a bdev tier (class: file or nvme)", "no storage tiers")
	}
	for t := range e.Storage {
		tk := fmt.Sprintf("%s.storage[%d]", key, t)
		tier := &e.Storage[t]
		if t == 0 {
			if err := tier.validateSCM(tk, dirs, checkFS); err != nil {
				return err
			}
			continue
		}
		if err := tier.validateBdev(tk, dirs, checkFS); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tier) validateSCM(key string, dirs map[string]string, checkFS bool) error {
	switch t.Class {
	case ClassRAM:
	case ClassDCPM:
		return errf(key+".class", "use class: ram (GoDAOS keeps the SCM tier in a directory; put it on tmpfs or a fast disk)", "dcpm (Optane persistent memory) is not supported")
	case "":
		return errf(key+".class", "the first tier is the SCM tier: class: ram", "missing class")
	default:
		return errf(key+".class", "the first tier is the SCM tier: class: ram", "class %q cannot be the first (SCM) tier", t.Class)
	}
	if len(t.BdevList) > 0 || t.BdevSize != 0 {
		return errf(key, "move bdev_list/bdev_size to a tier of class file or nvme", "an SCM tier has no bdevs")
	}
	if t.ScmMount == "" {
		return errf(key+".scm_mount", "give a directory, e.g. /mnt/daos0", "missing scm_mount")
	}
	if !filepath.IsAbs(t.ScmMount) {
		return errf(key+".scm_mount", "use an absolute path", "%q is relative", t.ScmMount)
	}
	if t.ScmSize == 0 {
		return errf(key+".scm_size", "give its size in GiB, e.g. scm_size: 16", "missing scm_size")
	}
	if other, ok := dirs[t.ScmMount]; ok {
		return errf(key+".scm_mount", "give each engine its own directory", "%s is also %s", t.ScmMount, other)
	}
	dirs[t.ScmMount] = key + ".scm_mount"
	if checkFS {
		return parentExists(key+".scm_mount", t.ScmMount)
	}
	return nil
}

func (t *Tier) validateBdev(key string, dirs map[string]string, checkFS bool) error {
	switch t.Class {
	case ClassFile, ClassKdev, ClassNVMe:
	case ClassRAM, ClassDCPM:
		return errf(key+".class", "only the first tier is an SCM tier; use class: file or nvme here", "class %q after the first tier", t.Class)
	case "":
		return errf(key+".class", "use class: file (files in a directory) or nvme", "missing class")
	default:
		return errf(key+".class", "use ram (first tier), file, nvme or kdev", "unknown class %q", t.Class)
	}
	if t.ScmMount != "" || t.ScmSize != 0 {
		return errf(key, "scm_mount and scm_size belong to the first tier", "a bdev tier has no scm_mount")
	}
	if len(t.BdevList) == 0 {
		return errf(key+".bdev_list", "list the files (class file) or devices to use", "empty bdev_list")
	}
	for _, r := range t.BdevRoles {
		if r != "wal" && r != "meta" && r != "data" {
			return errf(key+".bdev_roles", "roles are wal, meta and data", "unknown role %q", r)
		}
	}
	if t.Class == ClassFile && t.BdevSize == 0 {
		return errf(key+".bdev_size", "give the size of each file in GiB, e.g. bdev_size: 16", "missing bdev_size for class file")
	}
	for j, b := range t.BdevList {
		bk := fmt.Sprintf("%s.bdev_list[%d]", key, j)
		if t.Class == ClassNVMe && !strings.HasPrefix(b, "/") {
			return errf(bk, "GoDAOS does not drive NVMe through SPDK: give the block device path (/dev/nvme0n1) with class kdev, or use class file", "%q is a PCI address", b)
		}
		if !filepath.IsAbs(b) {
			return errf(bk, "use an absolute path", "%q is relative", b)
		}
		if other, ok := dirs[b]; ok {
			return errf(bk, "give each tier its own files", "%s is also %s", b, other)
		}
		dirs[b] = bk
		if !checkFS {
			continue
		}
		if t.Class == ClassFile {
			if err := parentExists(bk, b); err != nil {
				return err
			}
		} else if _, err := os.Stat(b); err != nil {
			return errf(bk, "check the device name (lsblk)", "%s does not exist", b)
		}
	}
	return nil
}

func parentExists(key, path string) error {
	parent := filepath.Dir(path)
	st, err := os.Stat(parent)
	if err != nil {
		return errf(key, fmt.Sprintf("create %s first, or choose another path", parent), "directory %s does not exist", parent)
	}
	if !st.IsDir() {
		return errf(key, "choose a path inside a directory", "%s is not a directory", parent)
	}
	return nil
}

// splitHostPort splits host[:port], with def as the port when none is given.
func splitHostPort(s string, def int) (string, int, error) {
	if !strings.Contains(s, ":") || (strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]")) {
		return strings.Trim(s, "[]"), def, nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	if h == "" {
		return "", 0, fmt.Errorf("missing host")
	}
	return h, n, nil
}

// SplitHostPort splits a mgmt_svc_replicas entry (host or host:port; the
// server's control port when none is given).
func SplitHostPort(s string, def int) (string, int, error) { return splitHostPort(s, def) }

// InterfaceAddr returns the first IPv4 address of a network interface.
func InterfaceAddr(name string) (net.IP, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		names := []string{}
		if all, e := net.Interfaces(); e == nil {
			for _, i := range all {
				names = append(names, i.Name)
			}
		}
		return nil, fmt.Errorf("no interface %q on this host (it has %s)", name, strings.Join(names, ", "))
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP, nil
		}
	}
	return nil, fmt.Errorf("interface %q has no IPv4 address", name)
}

// yamlKeys lists the yaml keys of a struct's fields.
func yamlKeys(v any) []string {
	var keys []string
	t := reflect.TypeOf(v)
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	slices.Sort(keys)
	return keys
}
