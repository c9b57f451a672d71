// Package auth makes and checks credentials: daos_agent fills a token with what
// the kernel says about its caller (SO_PEERCRED) and signs it; engines verify
// the signature against the agent certificates they trust (client_cert_dir),
// refuse expired tokens, and turn the token into the identity an ACL is
// evaluated against.
//
// The signature covers the token's marshalled bytes exactly as the agent sent
// them, so nothing is re-encoded before it is verified.
package auth

import (
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/authpb"
	"github.com/godaos/godaos/internal/security"
	"github.com/godaos/godaos/internal/security/certs"
)

// DefaultTTL is how long a credential is good for. The agent hands out a fresh
// one per request, so this bounds replay of a stolen token rather than the
// length of a job.
const DefaultTTL = 5 * time.Minute

// MaxTTL is the longest lifetime a server accepts in a credential: an agent
// configured with a long credential_ttl does not make tokens that can be
// replayed for days.
const MaxTTL = 24 * time.Hour

// MaxSkew is how far a token's issue time may lie in the future: clocks of
// client and server nodes are never quite equal.
const MaxSkew = 30 * time.Second

// Sign marshals tok and signs it with key, naming the key by verifier (its
// public key's fingerprint). A nil key makes an unsigned credential, which
// only servers running with allow_insecure accept.
func Sign(tok *authpb.Token, key crypto.Signer, verifier string) (*authpb.Credential, error) {
	b, err := proto.Marshal(tok)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Proto, err, "marshal credential token")
	}
	cred := &authpb.Credential{Token: b}
	if key == nil {
		return cred, nil
	}
	sig, err := certs.Sign(key, b)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Misc, err, "sign credential")
	}
	cred.Signature, cred.Verifier = sig, verifier
	return cred, nil
}

// Verifier checks credentials on the server side.
type Verifier struct {
	// Keys are the trusted agents' public keys by fingerprint (client_cert_dir).
	Keys map[string]crypto.PublicKey
	// AllowInsecure accepts unsigned credentials (transport_config.allow_insecure).
	// Signed ones are still checked when their key is known.
	AllowInsecure bool
	// Now is the clock (tests set it); nil means time.Now.
	Now func() time.Time

	// verified remembers signatures already checked, so a credential a client
	// reuses (and the second check on the leader) costs a hash, not an ECDSA
	// verification. Expiry is still checked on every use.
	mu       sync.Mutex
	verified map[[sha256.Size]byte]*authpb.Token
}

// verifiedMax bounds the memory of verified signatures; when full it is
// emptied (it refills with the credentials in use).
const verifiedMax = 4096

func noPerm(format string, args ...any) *daoserr.Error {
	return daoserr.Newf(daoserr.NoPerm, format, args...)
}

// Verify checks cred and returns its token. Every refusal is DER_NO_PERM
// saying what is wrong with the credential and what to do about it.
func (v *Verifier) Verify(cred *authpb.Credential) (*authpb.Token, error) {
	if cred == nil || len(cred.Token) == 0 {
		return nil, noPerm("request carries no credential").
			WithResolution("connect through daos_agent (is it running, and is DAOS_AGENT_DRPC_DIR set to its socket directory?)")
	}
	switch {
	case len(cred.Signature) == 0 && !v.AllowInsecure:
		return nil, noPerm("credential is not signed, and this system requires signed credentials").
			WithResolution("run daos_agent with transport_config cert and key (agent.crt, agent.key), not allow_insecure")
	case len(cred.Signature) > 0:
		if tok := v.lookup(cred); tok != nil {
			return v.checkTimes(tok)
		}
		pub, ok := v.Keys[cred.Verifier]
		if !ok {
			if v.AllowInsecure && len(v.Keys) == 0 {
				break // insecure servers with no keys to check against take the token as it is
			}
			return nil, noPerm("credential is signed by an agent key this server does not trust (fingerprint %.16s)", cred.Verifier).
				WithResolution("copy the agent's certificate (agent.crt) into every server's client_cert_dir and restart the servers")
		}
		if certs.Verify(pub, cred.Token, cred.Signature) != nil {
			return nil, noPerm("credential signature does not verify: the token was altered or forged").
				WithResolution("get a fresh credential from daos_agent; if this repeats, the agent's key and certificate do not match")
		}
	}
	tok := &authpb.Token{}
	if err := proto.Unmarshal(cred.Token, tok); err != nil {
		return nil, noPerm("credential token is malformed: %v", err)
	}
	if tok.User == "" {
		return nil, noPerm("credential names no user")
	}
	if len(cred.Signature) > 0 && v.Keys[cred.Verifier] != nil {
		v.remember(cred, tok)
	}
	return v.checkTimes(tok)
}

func verifiedKey(cred *authpb.Credential) [sha256.Size]byte {
	h := sha256.New()
	for _, b := range [][]byte{[]byte(cred.Verifier), cred.Token, cred.Signature} {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

func (v *Verifier) lookup(cred *authpb.Credential) *authpb.Token {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.verified[verifiedKey(cred)]
}

func (v *Verifier) remember(cred *authpb.Credential, tok *authpb.Token) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.verified == nil || len(v.verified) >= verifiedMax {
		v.verified = map[[sha256.Size]byte]*authpb.Token{}
	}
	v.verified[verifiedKey(cred)] = tok
}

// checkTimes refuses a token that expired or is issued in the future.
func (v *Verifier) checkTimes(tok *authpb.Token) (*authpb.Token, error) {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	if tok.Expires == 0 || now.Unix() > tok.Expires {
		return nil, noPerm("credential of %s@%s expired at %s (server time %s)", tok.User, tok.Host,
			time.Unix(tok.Expires, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)).
			WithResolution("get a fresh credential from daos_agent; if fresh ones fail too, synchronize the clocks of client and server nodes")
	}
	if tok.Expires-tok.Issued > int64(MaxTTL/time.Second) {
		return nil, noPerm("credential of %s@%s is good for %v, longer than servers accept (%v)", tok.User, tok.Host,
			time.Duration(tok.Expires-tok.Issued)*time.Second, MaxTTL).
			WithResolution("lower credential_ttl in daos_agent.yml")
	}
	if time.Unix(tok.Issued, 0).After(now.Add(MaxSkew)) {
		return nil, noPerm("credential of %s@%s is issued in the future (%s, server time %s)", tok.User, tok.Host,
			time.Unix(tok.Issued, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)).
			WithResolution("synchronize the clocks of client and server nodes (chrony or ntpd)")
	}
	return tok, nil
}

// Identity is the ACL identity of tok's caller asking about an object owned
// by owner and group (names as ACLs write them, with the trailing @).
func Identity(tok *authpb.Token, owner, group string) security.Identity {
	id := security.Identity{User: Principal(tok.User), Owner: Principal(owner), OwnerGroup: Principal(group)}
	for _, g := range tok.Groups {
		id.Groups = append(id.Groups, Principal(g))
	}
	if tok.Group != "" && len(tok.Groups) == 0 {
		id.Groups = append(id.Groups, Principal(tok.Group))
	}
	return id
}

// Principal writes a user or group name as an ACE principal: "alice" is
// "alice@"; a name that already has an @ ("alice@", or "alice@EXAMPLE.COM"
// as SSSD names domain users) is kept as it is.
func Principal(name string) string {
	if name == "" || strings.Contains(name, "@") {
		return name
	}
	return name + "@"
}

// Who names the caller of tok for messages: "alice@node1 (uid 1000)".
func Who(tok *authpb.Token) string {
	return fmt.Sprintf("%s@%s (uid %d)", tok.User, tok.Host, tok.Uid)
}

// TokenFor names uid and its groups from the node's user database, as ACLs
// name principals.
func TokenFor(uid, gid uint32) (*authpb.Token, error) {
	u, err := user.LookupId(strconv.Itoa(int(uid)))
	if err != nil {
		return nil, daoserr.Wrap(daoserr.NoPerm, err, "uid %d has no user name on this node", uid).
			WithResolution("ACLs name users: add the user to the node's user database (passwd, LDAP)")
	}
	tok := &authpb.Token{Uid: uid, User: u.Username}
	if g, err := user.LookupGroupId(strconv.Itoa(int(gid))); err == nil {
		tok.Group = g.Name
	}
	gids, _ := u.GroupIds()
	seen := map[string]bool{}
	for _, id := range append([]string{strconv.Itoa(int(gid))}, gids...) {
		if seen[id] {
			continue
		}
		seen[id] = true
		n, err := strconv.Atoi(id)
		if err != nil {
			continue
		}
		tok.Gids = append(tok.Gids, uint32(n))
		if g, err := user.LookupGroupId(id); err == nil {
			tok.Groups = append(tok.Groups, g.Name)
		}
	}
	return tok, nil
}
