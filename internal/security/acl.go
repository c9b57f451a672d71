// Package security holds access control as DAOS defines it: ACE strings, ACLs,
// their defaults and how a user's permissions follow from them. It is the one
// place that parses ACL text; dmg, daos, the management service and the engines
// all use it.
//
// An ACE is TYPE:FLAGS:PRINCIPAL:PERMISSIONS, e.g.
//
//	A::OWNER@:rw        the owner may read and write
//	A:G:GROUP@:r        the owning group may read
//	A::alice@:rwcdtT    user alice
//	A:G:devs@:rw        group devs
//	A::EVERYONE@:       everyone else: nothing (an explicit deny)
package security

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/godaos/godaos/internal/daoserr"
)

// Perm is a set of permissions.
type Perm uint16

// Permissions and their letters, as DAOS's.
const (
	PermRead     Perm = 1 << iota // r
	PermWrite                     // w
	PermCreate                    // c: create containers (pool)
	PermDelete                    // d: delete containers (pool) / the container
	PermGetProp                   // t
	PermSetProp                   // T
	PermGetACL                    // a
	PermSetACL                    // A
	PermSetOwner                  // o
)

const permLetters = "rwcdtTaAo"

// PermAll is every permission.
const PermAll Perm = 1<<len(permLetters) - 1

// ParsePerms parses permission letters ("rw", "rwcdtTaAo"; "" is none).
func ParsePerms(s string) (Perm, error) {
	var p Perm
	for _, c := range s {
		i := strings.IndexRune(permLetters, c)
		if i < 0 {
			return 0, fmt.Errorf("unknown permission %q: use letters of %s (r read, w write, c create, d delete, t get-prop, T set-prop, a get-acl, A set-acl, o set-owner)", c, permLetters)
		}
		p |= 1 << i
	}
	return p, nil
}

func (p Perm) String() string {
	var b strings.Builder
	for i, c := range permLetters {
		if p&(1<<i) != 0 {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// Special principals.
const (
	Owner      = "OWNER@"
	OwnerGroup = "GROUP@"
	Everyone   = "EVERYONE@"
)

// MaxACLSize is the largest ACL, in bytes of its text form (DAOS: 64 KiB).
const MaxACLSize = 64 << 10

// ACE is one access control entry.
type ACE struct {
	Group     bool   // flag G: the principal is a group
	Principal string // OWNER@, GROUP@, EVERYONE@, user@[domain] or group@[domain]
	Perms     Perm
}

func (a ACE) String() string {
	flags := ""
	if a.Group {
		flags = "G"
	}
	return "A:" + flags + ":" + a.Principal + ":" + a.Perms.String()
}

func aceErr(s, format string, args ...any) error {
	return daoserr.Newf(daoserr.Inval, "ACE %q: %s", s, fmt.Sprintf(format, args...)).
		WithResolution("write TYPE:FLAGS:PRINCIPAL:PERMS, e.g. A::OWNER@:rw, A:G:GROUP@:r, A::alice@:rw, A:G:devs@:r")
}

// ParseACE parses one ACE string.
func ParseACE(s string) (ACE, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) != 4 {
		return ACE{}, aceErr(s, "%d fields separated by ':', want 4", len(parts))
	}
	typ, flags, principal, perms := parts[0], parts[1], parts[2], parts[3]
	switch typ {
	case "A":
	case "U", "L":
		return ACE{}, aceErr(s, "type %s (audit/alarm) is not supported; only A (allow)", typ)
	default:
		return ACE{}, aceErr(s, "unknown type %q; only A (allow)", typ)
	}
	var a ACE
	switch flags {
	case "":
	case "G":
		a.Group = true
	default:
		return ACE{}, aceErr(s, "unknown flags %q; the only flag is G (group principal)", flags)
	}
	if err := checkPrincipal(principal); err != nil {
		return ACE{}, aceErr(s, "%v", err)
	}
	a.Principal = principal
	switch {
	case principal == OwnerGroup && !a.Group:
		return ACE{}, aceErr(s, "GROUP@ is a group: give the G flag (A:G:GROUP@:...)")
	case (principal == Owner || principal == Everyone) && a.Group:
		return ACE{}, aceErr(s, "%s is not a group: no G flag", principal)
	}
	p, err := ParsePerms(perms)
	if err != nil {
		return ACE{}, aceErr(s, "%v", err)
	}
	a.Perms = p
	return a, nil
}

// checkPrincipal accepts OWNER@, GROUP@, EVERYONE@ and name@ or name@domain.
func checkPrincipal(p string) error {
	switch p {
	case Owner, OwnerGroup, Everyone:
		return nil
	}
	name, domain, ok := strings.Cut(p, "@")
	if !ok {
		return fmt.Errorf("principal %q lacks '@': write user@ or group@ (or OWNER@, GROUP@, EVERYONE@)", p)
	}
	if name == "" || len(p) > 255 {
		return fmt.Errorf("principal %q: name empty or too long", p)
	}
	for _, part := range []string{name, domain} {
		for _, c := range part {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-$", c)) {
				return fmt.Errorf("principal %q: character %q is not allowed", p, c)
			}
		}
	}
	return nil
}

// ACL is an ordered list of ACEs, at most one per principal.
type ACL []ACE

// ParseACL parses ACL text: one ACE per line; blank lines and lines starting
// with '#' are ignored (the format of dmg's --acl-file).
func ParseACL(text string) (ACL, error) {
	if len(text) > MaxACLSize {
		return nil, daoserr.Newf(daoserr.Inval, "ACL of %d bytes, limit %d", len(text), MaxACLSize)
	}
	var acl ACL
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		a, err := ParseACE(line)
		if err != nil {
			return nil, daoserr.Context(err, "line %d", n+1)
		}
		if acl.index(a) >= 0 {
			return nil, daoserr.Newf(daoserr.Inval, "line %d: a second entry for %s", n+1, a.who()).WithResolution("keep one entry per principal")
		}
		acl = append(acl, a)
	}
	return acl, nil
}

func (a ACE) who() string {
	if a.Group && a.Principal != OwnerGroup {
		return "group " + a.Principal
	}
	return a.Principal
}

func (acl ACL) index(a ACE) int {
	return slices.IndexFunc(acl, func(b ACE) bool { return b.Principal == a.Principal && b.Group == a.Group })
}

func (acl ACL) String() string {
	var b strings.Builder
	for _, a := range acl {
		b.WriteString(a.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Update replaces the entries of the same principals and appends the others.
func (acl ACL) Update(aces ...ACE) ACL {
	out := slices.Clone(acl)
	for _, a := range aces {
		if i := out.index(a); i >= 0 {
			out[i] = a
		} else {
			out = append(out, a)
		}
	}
	return out
}

// Delete removes the entry of a principal ("alice@", "GROUP@"; a named group as
// "G:devs@" or with group set).
func (acl ACL) Delete(principal string, group bool) (ACL, error) {
	if principal == OwnerGroup {
		group = true
	}
	i := acl.index(ACE{Principal: principal, Group: group})
	if i < 0 {
		return nil, daoserr.Newf(daoserr.Nonexist, "the ACL has no entry for %s", principal)
	}
	return slices.Delete(slices.Clone(acl), i, i+1), nil
}

// DefaultPoolACL is a new pool's ACL (DAOS's).
func DefaultPoolACL() ACL {
	return ACL{{Principal: Owner, Perms: PermRead | PermWrite}, {Group: true, Principal: OwnerGroup, Perms: PermRead | PermWrite}}
}

// DefaultContACL is a new container's ACL (DAOS's: everything but c, which
// means something only for pools).
func DefaultContACL() ACL {
	return ACL{{Principal: Owner, Perms: PermAll &^ PermCreate}, {Group: true, Principal: OwnerGroup, Perms: PermRead | PermWrite | PermGetProp | PermSetProp}}
}

// Identity is who asks: the user and groups of a credential, and the owner of
// the pool or container asked about.
type Identity struct {
	User       string   // e.g. "alice@"
	Groups     []string // e.g. ["devs@", "users@"]
	Owner      string
	OwnerGroup string
}

// Perms computes what id may do under acl, as DAOS enforces it: the owner's
// entry if the user is the owner; else the user's own entry; else the union of
// the entries of every group the user is in (the owning group's as GROUP@);
// else EVERYONE@; else nothing.
func (acl ACL) Perms(id Identity) Perm {
	find := func(principal string, group bool) (Perm, bool) {
		if i := acl.index(ACE{Principal: principal, Group: group}); i >= 0 {
			return acl[i].Perms, true
		}
		return 0, false
	}
	if id.User == id.Owner {
		if p, ok := find(Owner, false); ok {
			return p
		}
	}
	if p, ok := find(id.User, false); ok {
		return p
	}
	var union Perm
	matched := false
	for _, g := range id.Groups {
		if g == id.OwnerGroup {
			if p, ok := find(OwnerGroup, true); ok {
				union, matched = union|p, true
			}
		}
		if p, ok := find(g, true); ok {
			union, matched = union|p, true
		}
	}
	if matched {
		return union
	}
	p, _ := find(Everyone, false)
	return p
}

// ReadACLFile reads an ACL file (one ACE per line, '#' comments) and checks
// it; it returns the entries in their canonical form.
func ReadACLFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Inval, err, "read ACL file").WithResolution("give a file with one ACE per line, e.g. A::OWNER@:rw")
	}
	acl, err := ParseACL(string(b))
	if err != nil {
		return nil, daoserr.Context(err, "ACL file %s", path)
	}
	var out []string
	for _, a := range acl {
		out = append(out, a.String())
	}
	return out, nil
}
