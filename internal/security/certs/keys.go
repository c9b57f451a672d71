package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
)

// LoadVerifiers reads every *.crt in dir (a server's client_cert_dir), checks
// that each chains to caCert (unless caCert is "") and is valid now, and returns
// their public keys by Fingerprint, for verifying the credentials agents sign.
// The agent sends its key's fingerprint with a credential, so the server finds
// the one key to try instead of trying all of them.
//
// A directory with no certificates is an error, not an empty map: every
// credential would then fail to verify, far from the cause.
func LoadVerifiers(dir, caCert string) (map[string]crypto.PublicKey, error) {
	var pool *x509.CertPool
	if caCert != "" {
		var err error
		if pool, err = loadCAPool(caCert); err != nil {
			return nil, err
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, daoserr.Newf(daoserr.Nonexist, "client certificate directory %s does not exist", dir).
				WithResolution("create it and copy the agent certificate into it (cp agent.crt %s/), "+
					"or fix client_cert_dir in daos_server.yml", dir)
		}
		return nil, daoserr.Wrap(daoserr.IO, err, "read client certificate directory %s", dir).
			WithResolution("check that the server may read %s", dir)
	}
	keys := make(map[string]crypto.PublicKey)
	now := time.Now()
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".crt") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := readCertFile(path, "client certificate")
		if err != nil {
			return nil, err
		}
		chain, err := parseCerts(path, "client certificate", data)
		if err != nil {
			return nil, err
		}
		leaf := chain[0]
		if pool != nil {
			inter := x509.NewCertPool()
			for _, c := range chain[1:] {
				inter.AddCert(c)
			}
			// Any usage: this checks who issued the certificate, not which
			// role it plays in a TLS handshake.
			_, err := leaf.Verify(x509.VerifyOptions{
				Roots:         pool,
				Intermediates: inter,
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
				CurrentTime:   now,
			})
			if err != nil {
				return nil, verifyError(path, leaf, err)
			}
		} else if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
			return nil, daoserr.Newf(daoserr.NoPerm, "client certificate %s (%q) is not valid now: valid from %s until %s",
				path, leaf.Subject.CommonName, leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339)).
				WithResolution("copy a current agent certificate into %s, or check this host's clock", dir)
		}
		fp, err := Fingerprint(leaf.PublicKey)
		if err != nil {
			return nil, daoserr.Context(err, "client certificate %s", path)
		}
		keys[fp] = leaf.PublicKey
	}
	if len(keys) == 0 {
		return nil, daoserr.Newf(daoserr.Nonexist, "client certificate directory %s holds no *.crt file", dir).
			WithResolution("copy the agent certificate into it (cp agent.crt %s/); 'dmg cert generate' writes one to clients/agent.crt", dir)
	}
	return keys, nil
}

// Fingerprint is the lower-case hex SHA-256 of pub's DER SubjectPublicKeyInfo.
// Hashing the key rather than the certificate means a re-issued certificate for
// the same key keeps its fingerprint; it is the same value as
// `openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum`.
func Fingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", daoserr.Wrap(daoserr.Inval, err, "fingerprint public key of type %T", pub).
			WithResolution("use an ECDSA, Ed25519 or RSA key")
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// LoadSigner reads a PEM private key file (as Generate writes it: PKCS #8; the
// SEC 1 "EC PRIVATE KEY" and PKCS #1 "RSA PRIVATE KEY" forms older OpenSSL and
// DAOS's gen_certificates.sh write are read too) for signing credentials: the
// agent's agent.key. Like the TLS loaders it refuses a key that group or others
// may access.
func LoadSigner(keyFile string) (crypto.Signer, error) {
	data, err := readKeyFile(keyFile)
	if err != nil {
		return nil, err
	}
	return parseKey(keyFile, data)
}

// parseKey decodes the first private key block of a PEM key file.
func parseKey(path string, data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, daoserr.Newf(daoserr.Inval, "key %s holds no PEM private key", path).
				WithResolution("point the configuration at a PEM private key (BEGIN PRIVATE KEY), not a certificate or DER file")
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		if _, encrypted := b.Headers["Proc-Type"]; encrypted || b.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, daoserr.Newf(daoserr.Inval, "key %s is encrypted", path).
				WithResolution("daemons cannot prompt for a passphrase: decrypt it (openssl pkey -in %s -out <new file>) and protect it with mode 0600 instead", path)
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			err = fmt.Errorf("unsupported PEM type %q", b.Type)
		}
		if err != nil {
			return nil, daoserr.Wrap(daoserr.Inval, err, "parse key %s", path).
				WithResolution("the file is damaged or not a key; %s", generateHint(path))
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, daoserr.Newf(daoserr.Inval, "key %s of type %T cannot sign", path, key).
				WithResolution("use an ECDSA, Ed25519 or RSA key")
		}
		return s, nil
	}
}

// Sign signs msg with s the way Verify checks it, so the agent and the servers
// agree on hashing and padding without each choosing: ECDSA over SHA-256
// (ASN.1 signature), Ed25519 over msg itself, RSA-PSS over SHA-256.
func Sign(s crypto.Signer, msg []byte) ([]byte, error) {
	var sig []byte
	var err error
	switch s.Public().(type) {
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		sig, err = s.Sign(rand.Reader, d[:], crypto.SHA256)
	case ed25519.PublicKey:
		sig, err = s.Sign(rand.Reader, msg, crypto.Hash(0))
	case *rsa.PublicKey:
		d := sha256.Sum256(msg)
		sig, err = s.Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	default:
		return nil, daoserr.Newf(daoserr.Inval, "cannot sign with a key of type %T", s.Public()).
			WithResolution("use an ECDSA, Ed25519 or RSA key")
	}
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Misc, err, "sign")
	}
	return sig, nil
}

// Verify checks a signature Sign made over msg with pub's private key.
func Verify(pub crypto.PublicKey, msg, sig []byte) error {
	ok := false
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		ok = ecdsa.VerifyASN1(k, d[:], sig)
	case ed25519.PublicKey:
		ok = ed25519.Verify(k, msg, sig)
	case *rsa.PublicKey:
		d := sha256.Sum256(msg)
		ok = rsa.VerifyPSS(k, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	default:
		return daoserr.Newf(daoserr.Inval, "cannot verify with a key of type %T", pub).
			WithResolution("use an ECDSA, Ed25519 or RSA key")
	}
	if !ok {
		return daoserr.New(daoserr.NoPerm, "signature does not verify").
			WithResolution("the credential was not signed by the key of the certificate it names, or was altered; " +
				"check that the agent's agent.crt is in the servers' client_cert_dir")
	}
	return nil
}
