package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
)

// ServerTLS is the control service's tls.Config: it presents cert/key, requires
// every client to present a certificate signed by caCert, and speaks TLS 1.3 only
// (no downgrade to older protocol versions and their weaker suites).
//
// It checks the files up front, so a misconfigured server fails at start with a
// message naming the file instead of every client failing its handshake: the
// key must be mode 0600 or stricter, and the certificate must chain to caCert,
// be valid now, and be a server certificate (DNS name "server").
func ServerTLS(caCert, cert, key string) (*tls.Config, error) {
	pool, err := loadCAPool(caCert)
	if err != nil {
		return nil, err
	}
	kp, err := loadKeyPair(cert, key, pool, x509.ExtKeyUsageServerAuth, Server)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{kp},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}, nil
}

// ClientTLS is the tls.Config of a control-plane client (dmg, daos_agent, or a
// server calling another server): it verifies the server as "server" against
// caCert and presents cert/key, whose Common Name the server authorizes on.
//
// Like ServerTLS it checks the files up front: the key must be mode 0600 or
// stricter and the certificate must chain to caCert and be valid now.
func ClientTLS(caCert, cert, key string) (*tls.Config, error) {
	pool, err := loadCAPool(caCert)
	if err != nil {
		return nil, err
	}
	kp, err := loadKeyPair(cert, key, pool, x509.ExtKeyUsageClientAuth, "")
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Server certificates name the role, not the host (see the package
		// comment), so every server is verified as "server".
		ServerName:   Server,
		RootCAs:      pool,
		Certificates: []tls.Certificate{kp},
	}, nil
}

// generateHint tells the user how to get certificate files they lack.
func generateHint(file string) string {
	return "run 'dmg cert generate --dir " + filepath.Dir(file) + "' on a trusted host, " +
		"or copy the file there from where the certificates were generated, " +
		"and check the path in the transport_config section of the configuration"
}

// statFile checks that path exists and is a regular file, naming the file in the
// error.
func statFile(path, what string) (fs.FileInfo, error) {
	if path == "" {
		return nil, daoserr.Newf(daoserr.Inval, "no %s file configured", what).
			WithResolution("set it in the transport_config section of the configuration, " +
				"or set allow_insecure: true (development only)")
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, daoserr.Newf(daoserr.Nonexist, "%s %s does not exist", what, path).
			WithResolution("%s", generateHint(path))
	case errors.Is(err, fs.ErrPermission):
		return nil, daoserr.Wrap(daoserr.NoPerm, err, "%s %s", what, path).
			WithResolution("run as the user that owns the certificates, or fix the ownership of %s", path)
	case err != nil:
		return nil, daoserr.Wrap(daoserr.IO, err, "%s %s", what, path)
	case !fi.Mode().IsRegular():
		return nil, daoserr.Newf(daoserr.Inval, "%s %s is not a regular file", what, path).
			WithResolution("point the configuration at the %s file itself", what)
	}
	return fi, nil
}

// readKeyFile reads a private key file, refusing one that group or others may
// read or write: as DAOS does, because a key anyone on the host can read lets
// them impersonate the component (an admin key grants full control of the system).
func readKeyFile(path string) ([]byte, error) {
	fi, err := statFile(path, "key")
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, daoserr.Newf(daoserr.NoPerm, "key %s has insecure mode %04o: group or others may access it", path, perm).
			WithResolution("check the file permissions: keys must be mode 0600 or stricter: chmod 0600 %s", path)
	}
	return readFile(path, "key")
}

// readCertFile reads a certificate file, refusing one that anyone may write: a
// world-writable CA certificate lets any local user make the component trust a
// CA of their own.
func readCertFile(path, what string) ([]byte, error) {
	fi, err := statFile(path, what)
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o002 != 0 {
		return nil, daoserr.Newf(daoserr.NoPerm, "%s %s has insecure mode %04o: anyone may modify it", what, path, perm).
			WithResolution("check the file permissions: certificates must not be writable by others: chmod 0644 %s", path)
	}
	return readFile(path, what)
}

func readFile(path, what string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, daoserr.Wrap(daoserr.NoPerm, err, "read %s %s", what, path).
				WithResolution("run as the user that owns the certificates, or fix the ownership of %s", path)
		}
		return nil, daoserr.Wrap(daoserr.IO, err, "read %s %s", what, path)
	}
	return b, nil
}

// parseCerts returns every CERTIFICATE block of a PEM file.
func parseCerts(path, what string, data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, daoserr.Wrap(daoserr.Inval, err, "parse %s %s", what, path).
				WithResolution("the file is damaged; %s", generateHint(path))
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, daoserr.Newf(daoserr.Inval, "%s %s holds no PEM certificate", what, path).
			WithResolution("point the configuration at a PEM certificate (BEGIN CERTIFICATE), not a key or DER file")
	}
	return out, nil
}

// loadCAPool reads the CA certificate(s) of caCert.
func loadCAPool(caCert string) (*x509.CertPool, error) {
	data, err := readCertFile(caCert, "CA certificate")
	if err != nil {
		return nil, err
	}
	cs, err := parseCerts(caCert, "CA certificate", data)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range cs {
		// A component certificate configured as ca_cert would make verification
		// fail later with a puzzling "unknown authority"; say so now.
		if !c.IsCA {
			return nil, daoserr.Newf(daoserr.Inval, "CA certificate %s holds %q, which is not a CA certificate", caCert, c.Subject.CommonName).
				WithResolution("set ca_cert to the CA certificate (%s), not a component's certificate", CACertFile)
		}
		pool.AddCert(c)
	}
	return pool, nil
}

// loadKeyPair reads cert and key and checks that they match, that the
// certificate chains to pool for usage, is valid now and, if dnsName is set,
// names it.
func loadKeyPair(cert, key string, pool *x509.CertPool, usage x509.ExtKeyUsage, dnsName string) (tls.Certificate, error) {
	certPEM, err := readCertFile(cert, "certificate")
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := readKeyFile(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	chain, err := parseCerts(cert, "certificate", certPEM)
	if err != nil {
		return tls.Certificate{}, err
	}
	if _, err := parseKey(key, keyPEM); err != nil {
		return tls.Certificate{}, err
	}
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, daoserr.Wrap(daoserr.Inval, err, "certificate %s and key %s", cert, key).
			WithResolution("use the key that belongs to the certificate (both from the same 'dmg cert generate' run)")
	}
	leaf := chain[0]
	kp.Leaf = leaf
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		DNSName:       dnsName,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		return tls.Certificate{}, verifyError(cert, leaf, err)
	}
	return kp, nil
}

// verifyError turns an x509 verification failure of the certificate in path into
// an error saying what is wrong with it and what to do.
func verifyError(path string, c *x509.Certificate, err error) error {
	cn := c.Subject.CommonName
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	switch {
	case errors.As(err, &unknown):
		return daoserr.Wrap(daoserr.NoPerm, err, "certificate %s (%q) is not signed by the configured CA", path, cn).
			WithResolution("use certificates generated together with the CA certificate (same 'dmg cert generate' run), or set ca_cert to the CA that signed %s", path)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return daoserr.Wrap(daoserr.NoPerm, err, "certificate %s (%q) is not valid now: valid from %s until %s",
			path, cn, c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339)).
			WithResolution("generate new certificates ('dmg cert generate --force'), or check this host's clock")
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return daoserr.Wrap(daoserr.NoPerm, err, "certificate %s (%q) may not be used for this role", path, cn).
			WithResolution("servers need the server certificate (server.crt); dmg the admin certificate (admin.crt); the agent the agent certificate (agent.crt)")
	case errors.As(err, &host):
		return daoserr.Wrap(daoserr.NoPerm, err, "certificate %s (%q) does not name %q, which clients verify servers as", path, cn, Server).
			WithResolution("use the server certificate (server.crt) from 'dmg cert generate', which carries the DNS name %q", Server)
	}
	return daoserr.Wrap(daoserr.NoPerm, err, "verify certificate %s (%q)", path, cn).
		WithResolution("use certificates generated together with the CA certificate ('dmg cert generate')")
}
