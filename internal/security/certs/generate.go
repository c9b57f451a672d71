// Package certs gives GoDAOS's control plane DAOS-style mutual TLS: a private CA,
// one certificate per component, TLS configurations for the control service and
// its clients, per-method authorization by the caller's component, and the key
// material agents sign credentials with.
//
// It stays compatible with DAOS's layout and conventions so a site's existing
// /etc/daos/certs (made by DAOS's gen_certificates.sh) keeps working, and
// certificates made here work with DAOS's tools:
//
//	daosCA.crt, daosCA.key     the CA (keep daosCA.key off the servers)
//	server.crt, server.key     daos_server: serves the control API, calls other servers
//	agent.crt,  agent.key      daos_agent: calls agent-facing methods, signs credentials
//	admin.crt,  admin.key      dmg: calls administrative methods
//	clients/agent.crt          copy for the servers' client_cert_dir
//
// A certificate's Common Name is its component ("server", "agent", "admin"); that
// is what the control service authorizes on. Clients verify the server as
// "server" (tls.Config.ServerName), so server certificates carry the DNS name
// "server" rather than host names: one server certificate serves every host and
// moving a server to another host needs no new certificate.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
)

// Component names: the Common Name of each component's certificate.
const (
	Server = "server"
	Agent  = "agent"
	Admin  = "admin"
)

// File names in a certificate directory, as DAOS's gen_certificates.sh writes them.
const (
	CACertFile = "daosCA.crt"
	CAKeyFile  = "daosCA.key"
	// ClientCertDir is the sub-directory holding the certificates servers verify
	// agent signatures with (DAOS: /etc/daos/certs/clients).
	ClientCertDir = "clients"
)

// DefaultDays is how long generated certificates are valid unless told otherwise:
// five years, so a development or test cluster does not need re-keying, while a
// compromised key still expires eventually.
const DefaultDays = 365 * 5

// Modes of written files. Keys are for their owner only: DAOS refuses keys that
// group or others can read, and so does LoadSigner here.
const (
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
	dirMode  fs.FileMode = 0o755
)

// GenerateOptions tunes Generate.
type GenerateOptions struct {
	Days  int  // validity in days; 0 means DefaultDays
	Force bool // replace existing files (certificates signed by the old CA stop working)
}

// caCommonName is the CA's subject, as DAOS names its CA.
const caCommonName = "DAOS CA"

// Generate writes a new CA and the server, agent and admin key pairs and
// certificates into dir, plus dir/clients/agent.crt (a copy of agent.crt for the
// servers' client_cert_dir). It creates dir if needed. Keys are written mode 0600
// and certificates 0644 regardless of the umask. Unless opts.Force it refuses,
// before writing anything, if any of the files exists, because replacing a CA
// silently would lock every holder of the old certificates out.
//
// It returns the paths written; on error, the ones written before it.
//
// Keys are ECDSA P-256 rather than Ed25519 (both work with Go's TLS 1.3):
// P-256 is FIPS 140 approved in every validated crypto module sites run, is
// understood by every OpenSSL a site might inspect or re-issue certificates with
// and by HSMs and PKI tooling that still lack Ed25519 certificates, and signs fast
// enough for the agent to sign a credential per connection.
func Generate(dir string, opts GenerateOptions) ([]string, error) {
	days := opts.Days
	if days == 0 {
		days = DefaultDays
	}
	if days < 0 {
		return nil, daoserr.Newf(daoserr.Inval, "certificate validity of %d days", opts.Days).
			WithResolution("give a positive number of days, or 0 for the default of %d", DefaultDays)
	}
	if dir == "" {
		return nil, daoserr.New(daoserr.Inval, "no directory to write certificates to").
			WithResolution("give a directory, e.g. --dir /etc/daos/certs")
	}

	type file struct {
		name string
		data []byte
		mode fs.FileMode
	}
	var files []file

	// Back-date the start by an hour so a host whose clock is a little behind the
	// one that generated the certificates does not see them as not yet valid.
	notBefore := time.Now().Add(-time.Hour).UTC()
	notAfter := notBefore.Add(time.Duration(days)*24*time.Hour + time.Hour)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Misc, err, "generate CA key")
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: caCommonName, Organization: []string{"DAOS"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs only leaf certificates; refusing intermediates means a
		// stolen component key cannot mint further certificates.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	caDER, caCert, err := sign(caTmpl, caKey, nil, nil)
	if err != nil {
		return nil, err
	}
	caKeyPEM, err := encodeKey(caKey)
	if err != nil {
		return nil, err
	}
	files = append(files,
		file{CACertFile, encodeCert(caDER), certMode},
		file{CAKeyFile, caKeyPEM, keyMode})

	var agentCert []byte
	for _, comp := range []string{Server, Agent, Admin} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, daoserr.Wrap(daoserr.Misc, err, "generate %s key", comp)
		}
		tmpl := &x509.Certificate{
			Subject:   pkix.Name{CommonName: comp, Organization: []string{"DAOS"}},
			NotBefore: notBefore,
			NotAfter:  notAfter,
			// DigitalSignature covers the TLS handshake signature and, for the
			// agent, the credentials it signs.
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if comp == Server {
			// Servers serve the control API and also call each other as clients.
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
			tmpl.DNSNames = []string{Server}
		}
		der, _, err := sign(tmpl, key, caCert, caKey)
		if err != nil {
			return nil, err
		}
		keyPEM, err := encodeKey(key)
		if err != nil {
			return nil, err
		}
		certPEM := encodeCert(der)
		files = append(files,
			file{comp + ".crt", certPEM, certMode},
			file{comp + ".key", keyPEM, keyMode})
		if comp == Agent {
			agentCert = certPEM
		}
	}
	files = append(files, file{filepath.Join(ClientCertDir, Agent+".crt"), agentCert, certMode})

	if !opts.Force {
		var exist []string
		for _, f := range files {
			p := filepath.Join(dir, f.name)
			if _, err := os.Lstat(p); err == nil {
				exist = append(exist, p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, daoserr.Wrap(daoserr.IO, err, "check %s", p).
					WithResolution("check that the directory %s is accessible", dir)
			}
		}
		if len(exist) > 0 {
			return nil, daoserr.Newf(daoserr.Exist, "certificate files already exist: %s", strings.Join(exist, ", ")).
				WithResolution("keep them, choose another directory, or regenerate with --force; " +
					"everything holding certificates from the old CA must then get the new ones")
		}
	}

	for _, d := range []string{dir, filepath.Join(dir, ClientCertDir)} {
		if err := os.MkdirAll(d, dirMode); err != nil {
			return nil, daoserr.Wrap(daoserr.IO, err, "create certificate directory %s", d).
				WithResolution("check that you may create %s (certificate directories are usually root's)", d)
		}
	}

	var written []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := writeFile(p, f.data, f.mode, opts.Force); err != nil {
			return written, err
		}
		written = append(written, p)
	}
	return written, nil
}

// sign issues tmpl for key's public half, signed by parent/parentKey, or
// self-signed when parent is nil.
func sign(tmpl *x509.Certificate, key *ecdsa.PrivateKey, parent *x509.Certificate, parentKey crypto.Signer) ([]byte, *x509.Certificate, error) {
	// RFC 5280 serials: positive, at most 20 octets; 128 random bits make
	// collisions between separately generated CAs' certificates negligible.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, daoserr.Wrap(daoserr.Misc, err, "generate certificate serial number")
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, daoserr.Wrap(daoserr.Misc, err, "create certificate %q", tmpl.Subject.CommonName)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, daoserr.Wrap(daoserr.Misc, err, "parse new certificate %q", tmpl.Subject.CommonName)
	}
	return der, cert, nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// encodeKey writes PKCS #8 ("PRIVATE KEY"), the form OpenSSL 3 writes too, so
// both DAOS's and OpenSSL's tooling read the keys.
func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Misc, err, "encode private key")
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeFile writes data to path with exactly mode.
//
// Without replace it creates the file exclusively, so a file that appeared since
// Generate checked is not clobbered. With replace it writes a temporary file in
// the same directory and renames it over path: the old file stays intact if
// writing fails, and a key never sits in a file whose old mode let others read it.
// Either way the file starts at 0600 (the umask can only narrow that) and is
// widened to mode only after its content is written.
func writeFile(path string, data []byte, mode fs.FileMode, replace bool) error {
	fail := func(err error) error {
		return daoserr.Wrap(daoserr.IO, err, "write %s", path).
			WithResolution("check that you may write to %s and that it has space", filepath.Dir(path))
	}
	var f *os.File
	var err error
	if replace {
		f, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	} else {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return daoserr.Newf(daoserr.Exist, "%s appeared while certificates were being written", path).
				WithResolution("make sure only one 'dmg cert generate' runs on %s, then retry", filepath.Dir(path))
		}
	}
	if err != nil {
		return fail(err)
	}
	name := f.Name()
	cleanup := func(err error) error {
		f.Close()
		os.Remove(name)
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return cleanup(err)
	}
	if err := f.Chmod(mode); err != nil {
		return cleanup(err)
	}
	// Sync so a crash right after Generate does not leave empty key files that
	// look like they exist.
	if err := f.Sync(); err != nil {
		return cleanup(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return fail(err)
	}
	if replace {
		if err := os.Rename(name, path); err != nil {
			os.Remove(name)
			return fail(err)
		}
	}
	return nil
}
