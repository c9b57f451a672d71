package security

import (
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

func TestParseACE(t *testing.T) {
	good := []struct {
		in   string
		want ACE
	}{
		{"A::OWNER@:rw", ACE{Principal: Owner, Perms: PermRead | PermWrite}},
		{"A:G:GROUP@:r", ACE{Group: true, Principal: OwnerGroup, Perms: PermRead}},
		{"A::alice@:rwcdtTaAo", ACE{Principal: "alice@", Perms: PermAll}},
		{"A:G:devs@example.com:tT", ACE{Group: true, Principal: "devs@example.com", Perms: PermGetProp | PermSetProp}},
		{"A::EVERYONE@:", ACE{Principal: Everyone}},
		{" A::bob@:wr ", ACE{Principal: "bob@", Perms: PermRead | PermWrite}},
	}
	for _, tc := range good {
		a, err := ParseACE(tc.in)
		if err != nil || a != tc.want {
			t.Errorf("ParseACE(%q) = %+v, %v; want %+v", tc.in, a, err, tc.want)
		}
	}
	bad := []struct{ in, want string }{
		{"A::OWNER@", "3 fields"},
		{"X::OWNER@:rw", `unknown type "X"`},
		{"U::OWNER@:rw", "audit/alarm"},
		{"A:Q:OWNER@:rw", `unknown flags "Q"`},
		{"A::GROUP@:rw", "give the G flag"},
		{"A:G:OWNER@:rw", "not a group"},
		{"A::alice:rw", "lacks '@'"},
		{"A::@:rw", "name empty"},
		{"A::al ice@:rw", "not allowed"},
		{"A::alice@:rwx", `unknown permission 'x'`},
	}
	for _, tc := range bad {
		_, err := ParseACE(tc.in)
		if !daoserr.Is(err, daoserr.Inval) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "A::OWNER@:rw") {
			t.Errorf("ParseACE(%q) = %v; want DER_INVAL containing %q and an example", tc.in, err, tc.want)
		}
	}
}

func TestParseACL(t *testing.T) {
	acl, err := ParseACL("# pool ACL\nA::OWNER@:rw\n\nA:G:GROUP@:r\nA::alice@:r\n")
	if err != nil || len(acl) != 3 || acl.String() != "A::OWNER@:rw\nA:G:GROUP@:r\nA::alice@:r\n" {
		t.Fatalf("%v %q", err, acl)
	}
	if _, err := ParseACL("A::OWNER@:rw\nA::OWNER@:r\n"); err == nil || !strings.Contains(err.Error(), "line 2: a second entry for OWNER@") {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := ParseACL("A::OWNER@:rw\nA::bob:r\n"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v", err)
	}
	if _, err := ParseACL(strings.Repeat("#", MaxACLSize+1)); err == nil {
		t.Error("oversized ACL accepted")
	}
	// a user and a group of the same name are two principals
	if acl, err := ParseACL("A::devs@:r\nA:G:devs@:w\n"); err != nil || len(acl) != 2 {
		t.Errorf("user and group devs@: %v %v", acl, err)
	}
	up := acl.Update(ACE{Principal: "alice@", Perms: PermAll}, ACE{Principal: "bob@", Perms: PermRead})
	if up.String() != "A::OWNER@:rw\nA:G:GROUP@:r\nA::alice@:rwcdtTaAo\nA::bob@:r\n" || len(acl) != 3 {
		t.Errorf("update: %q (original %q)", up, acl)
	}
	del, err := up.Delete("alice@", false)
	if err != nil || strings.Contains(del.String(), "alice") {
		t.Errorf("delete: %q %v", del, err)
	}
	if _, err := del.Delete("carol@", false); !daoserr.Is(err, daoserr.Nonexist) {
		t.Errorf("delete missing: %v", err)
	}
	if d, err := del.Delete(OwnerGroup, false); err != nil || strings.Contains(d.String(), "GROUP@") {
		t.Errorf("delete GROUP@: %q %v", d, err)
	}
}

// DAOS's enforcement order: owner, then the user's entry, then the union of
// the groups, then everyone, else nothing.
func TestPerms(t *testing.T) {
	acl, err := ParseACL(`A::OWNER@:rwo
A:G:GROUP@:r
A::alice@:w
A:G:devs@:tT
A:G:ops@:a
A::EVERYONE@:t`)
	if err != nil {
		t.Fatal(err)
	}
	owner := Identity{Owner: "root@", OwnerGroup: "staff@"}
	with := func(user string, groups ...string) Identity {
		id := owner
		id.User, id.Groups = user, groups
		return id
	}
	tests := []struct {
		name string
		id   Identity
		want string
	}{
		{"owner", with("root@", "staff@"), "rwo"},
		{"named user beats groups", with("alice@", "devs@"), "w"},
		{"owning group", with("bob@", "staff@"), "r"},
		{"union of groups", with("bob@", "staff@", "devs@", "ops@"), "rtTa"},
		{"one named group", with("bob@", "ops@"), "a"},
		{"everyone", with("eve@", "nobody@"), "t"},
	}
	for _, tc := range tests {
		if got := acl.Perms(tc.id).String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if p := DefaultPoolACL().Perms(with("eve@")); p != 0 {
		t.Errorf("default pool ACL gives a stranger %s", p)
	}
	if p := DefaultContACL().Perms(with("root@")); p.String() != "rwdtTaAo" {
		t.Errorf("default container ACL gives the owner %s", p)
	}
	// an owner with no OWNER@ entry falls through to the other rules
	noOwner, _ := ParseACL("A::EVERYONE@:r")
	if p := noOwner.Perms(with("root@")); p != PermRead {
		t.Errorf("owner without OWNER@: %s", p)
	}
}

func FuzzParseACE(f *testing.F) {
	for _, s := range []string{"A::OWNER@:rw", "A:G:GROUP@:r", "A::alice@x.y:rwcdtTaAo", "A::EVERYONE@:", "U:G:a@:", ":::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseACE(s)
		if err != nil {
			return
		}
		b, err := ParseACE(a.String())
		if err != nil || b != a {
			t.Fatalf("%q parsed as %+v, which prints as %q and parses as %+v, %v", s, a, a.String(), b, err)
		}
	})
}
