package ddb

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/vos"
)

// Paths name a node of a target's tree, DAOS ddb style:
//
//	/                          the target: its containers
//	/CONT_UUID                 a container: its objects
//	/CONT_UUID/OID             an object (hi.lo in hex): its dkeys
//	/CONT_UUID/OID/DKEY        a dkey: its akeys
//	/CONT_UUID/OID/DKEY/AKEY   an akey: its stored records
//
// Keys are written as text, as 0x-prefixed hex (any bytes), or as u64:N (an
// 8-byte little-endian integer key, as DAOS stores uint64 keys).

// depth is how far down the tree a path reaches.
type depth int

const (
	depthTarget depth = iota
	depthCont
	depthObj
	depthDkey
	depthAkey
)

func (d depth) String() string {
	return [...]string{"target", "container", "object", "dkey", "akey"}[d]
}

// vosPath is a parsed path. Fields below depth are unset.
type vosPath struct {
	depth depth
	cont  vos.UUID
	oid   vos.OID
	dkey  []byte
	akey  []byte
}

const pathHelp = "want /CONT_UUID/OID/DKEY/AKEY or a prefix of it, e.g. /12345678-1234-1234-1234-123456789abc/100000000.1/dkey/akey"

// parsePath parses a path; the leading slash is optional and a trailing one is
// ignored, so paths copied from ls output or typed by hand both work.
func parsePath(s string) (vosPath, error) {
	var p vosPath
	trimmed := strings.Trim(s, "/")
	if trimmed == "" {
		return p, nil
	}
	parts := strings.Split(trimmed, "/")
	if len(parts) > int(depthAkey) {
		return p, daoserr.Newf(daoserr.BadPath, "path %q has %d components, at most 4 (container/object/dkey/akey); %s", s, len(parts), pathHelp)
	}
	for i, part := range parts {
		if part == "" {
			return p, daoserr.Newf(daoserr.BadPath, "path %q: empty component %d; %s", s, i+1, pathHelp)
		}
	}
	var err error
	if p.cont, err = vos.ParseUUID(parts[0]); err != nil {
		return p, daoserr.Newf(daoserr.BadPath, "path %q: container: %v", s, err)
	}
	p.depth = depthCont
	if len(parts) > 1 {
		if p.oid, err = vos.ParseOID(parts[1]); err != nil {
			return p, daoserr.Newf(daoserr.BadPath, "path %q: %v", s, err)
		}
		p.depth = depthObj
	}
	if len(parts) > 2 {
		if p.dkey, err = parseKey(parts[2]); err != nil {
			return p, daoserr.Newf(daoserr.BadPath, "path %q: dkey: %v", s, err)
		}
		p.depth = depthDkey
	}
	if len(parts) > 3 {
		if p.akey, err = parseKey(parts[3]); err != nil {
			return p, daoserr.Newf(daoserr.BadPath, "path %q: akey: %v", s, err)
		}
		p.depth = depthAkey
	}
	return p, nil
}

// String prints the path in the form parsePath reads back.
func (p vosPath) String() string {
	if p.depth == depthTarget {
		return "/"
	}
	var b strings.Builder
	b.WriteString("/" + p.cont.String())
	if p.depth >= depthObj {
		b.WriteString("/" + p.oid.String())
	}
	if p.depth >= depthDkey {
		b.WriteString("/" + formatKey(p.dkey, dkeyIsInt(p.oid)))
	}
	if p.depth >= depthAkey {
		b.WriteString("/" + formatKey(p.akey, akeyIsInt(p.oid)))
	}
	return b.String()
}

// Constructors of child paths, used when walking the tree.

func (p vosPath) withCont(u vos.UUID) vosPath {
	return vosPath{depth: depthCont, cont: u}
}

func (p vosPath) withObj(oid vos.OID) vosPath {
	return vosPath{depth: depthObj, cont: p.cont, oid: oid}
}

func (p vosPath) withDkey(k []byte) vosPath {
	return vosPath{depth: depthDkey, cont: p.cont, oid: p.oid, dkey: k}
}

func (p vosPath) withAkey(k []byte) vosPath {
	return vosPath{depth: depthAkey, cont: p.cont, oid: p.oid, dkey: p.dkey, akey: k}
}

// name is the last component of the path as printed.
func (p vosPath) name() string {
	switch p.depth {
	case depthCont:
		return p.cont.String()
	case depthObj:
		return p.oid.String()
	case depthDkey:
		return formatKey(p.dkey, dkeyIsInt(p.oid))
	case depthAkey:
		return formatKey(p.akey, akeyIsInt(p.oid))
	}
	return "/"
}

// parseKey reads a key as printed by formatKey: 0x-prefixed hex, u64:N, or text.
func parseKey(s string) ([]byte, error) {
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		b, err := hex.DecodeString(s[2:])
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("%q is not valid hex: want 0x followed by an even number of hex digits, e.g. 0x00ff", s)
		}
		return b, nil
	case strings.HasPrefix(s, "u64:"):
		// Base 0 also accepts 0x... so integer keys can be typed either way.
		n, err := strconv.ParseUint(s[4:], 0, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an unsigned 64-bit integer key: want u64:N, e.g. u64:42", s)
		}
		return binary.LittleEndian.AppendUint64(nil, n), nil
	}
	if len(s) > vos.MaxKeySize {
		return nil, fmt.Errorf("key is %d bytes, limit is %d", len(s), vos.MaxKeySize)
	}
	return []byte(s), nil
}

// formatKey prints a key so that parseKey reads back the same bytes: 8-byte keys
// of integer-keyed objects as u64:N, printable text as itself, anything else
// (control bytes, '/', or text that would be mistaken for the other forms) as hex.
func formatKey(k []byte, integer bool) string {
	if integer && len(k) == 8 {
		return "u64:" + strconv.FormatUint(binary.LittleEndian.Uint64(k), 10)
	}
	if isPlainText(k) {
		return string(k)
	}
	return "0x" + hex.EncodeToString(k)
}

func isPlainText(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	s := string(k)
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") || strings.HasPrefix(s, "u64:") {
		return false
	}
	for _, c := range k {
		if c < 0x20 || c > 0x7e || c == '/' {
			return false
		}
	}
	return true
}

// dkeyIsInt and akeyIsInt say whether an object's keys are 8-byte integers.
func dkeyIsInt(oid vos.OID) bool { return oid.Type().DkeyUint64() }

func akeyIsInt(oid vos.OID) bool { return oid.Type().AkeyUint64() }
