package agent

import (
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/godaos/godaos/internal/agentsock"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/security/auth"
)

// SocketName is the socket's file name in the runtime directory.
const SocketName = agentsock.Name

// Config is daos_agent.yml (DAOS's keys).
type Config struct {
	Name            string          `yaml:"name"`
	AccessPoints    []string        `yaml:"access_points"`
	Port            int             `yaml:"port"`
	RuntimeDir      string          `yaml:"runtime_dir"`
	LogFile         string          `yaml:"log_file"`
	TransportConfig TransportConfig `yaml:"transport_config"`
	// CacheExpiration is how long attach info is served from the cache, in
	// minutes (0: the default, 5; DisableCaching turns the cache off).
	CacheExpiration int  `yaml:"cache_expiration"`
	DisableCaching  bool `yaml:"disable_caching"`
	// CredentialTTL is how long the credentials it signs are good for, in
	// seconds (GoDAOS's key; default 300).
	CredentialTTL int `yaml:"credential_ttl"`
}

// TransportConfig is the agent's certificate (it signs credentials with its
// key and talks to the servers with it) or allow_insecure.
type TransportConfig struct {
	AllowInsecure bool   `yaml:"allow_insecure"`
	CACert        string `yaml:"ca_cert"`
	Cert          string `yaml:"cert"`
	Key           string `yaml:"key"`
}

// LoadConfig reads daos_agent.yml strictly: an unknown key is an error.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Inval, err, "read agent config").WithResolution("give the path of a daos_agent.yml with -o")
	}
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, daoserr.Wrap(daoserr.Inval, err, "%s", path).
			WithResolution("keys are name, access_points, port, runtime_dir, log_file, transport_config, cache_expiration, disable_caching, credential_ttl")
	}
	return &c, c.normalize()
}

func (c *Config) normalize() error {
	if c.Name == "" {
		c.Name = "daos_server"
	}
	if c.Port == 0 {
		c.Port = 10001
	}
	if c.RuntimeDir == "" {
		c.RuntimeDir = agentsock.Dir()
	}
	if len(c.AccessPoints) == 0 {
		c.AccessPoints = []string{"localhost"}
	}
	if c.CacheExpiration < 0 || c.CredentialTTL < 0 {
		return daoserr.New(daoserr.Inval, "cache_expiration and credential_ttl must not be negative")
	}
	if time.Duration(c.CredentialTTL)*time.Second > auth.MaxTTL {
		return daoserr.Newf(daoserr.Inval, "credential_ttl %d s: servers refuse credentials good for more than %v", c.CredentialTTL, auth.MaxTTL).
			WithResolution("give %d seconds or less (default 300)", int(auth.MaxTTL/time.Second))
	}
	if !c.TransportConfig.AllowInsecure && (c.TransportConfig.Cert == "" || c.TransportConfig.Key == "" || c.TransportConfig.CACert == "") {
		return daoserr.New(daoserr.Inval, "transport_config: certificates are required unless allow_insecure is true").
			WithResolution("give ca_cert, cert (agent.crt) and key (agent.key) from 'dmg cert generate', or set allow_insecure: true for development")
	}
	return nil
}

func (c *Config) cacheFor() time.Duration {
	if c.DisableCaching {
		return 0
	}
	if c.CacheExpiration == 0 {
		return 5 * time.Minute
	}
	return time.Duration(c.CacheExpiration) * time.Minute
}

func (c *Config) credentialTTL() time.Duration {
	if c.CredentialTTL == 0 {
		return 5 * time.Minute
	}
	return time.Duration(c.CredentialTTL) * time.Second
}
