package placement

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/godaos/godaos/internal/daoserr"
)

// Redun is a data redundancy method, DAOS's enum daos_obj_redun. It occupies bits 24..31
// of a ClassID and bits 48..55 of OID.Hi, so the values must be DAOS's exactly: an OID
// written by one implementation is read by the other.
type Redun uint8

// Redundancy methods and their DAOS values (daos_obj_class.h).
const (
	RP1   Redun = 1 // OR_RP_1: no protection ("S" classes)
	RP2   Redun = 8 // OR_RP_2
	RP3   Redun = 9
	RP4   Redun = 10
	RP5   Redun = 11
	RP6   Redun = 12
	RP8   Redun = 13
	RP12  Redun = 14
	RP16  Redun = 15
	RP24  Redun = 16
	RP32  Redun = 17
	RP48  Redun = 18
	RP64  Redun = 19
	RP128 Redun = 20 // OR_RP_128

	RS2P1  Redun = 32 // OR_RS_2P1
	RS2P2  Redun = 33
	RS4P1  Redun = 34
	RS4P2  Redun = 35
	RS8P1  Redun = 36
	RS8P2  Redun = 37
	RS16P1 Redun = 38
	RS16P2 Redun = 39 // OR_RS_16P2
	// The three-parity codes were appended to the enum after OR_RS_16P2 in later DAOS
	// releases, in the order 4P3, 8P3, 16P3 (the source revisions we could check end at
	// 16P2, so these three values are inferred from that order, not read).
	RS4P3  Redun = 40
	RS8P3  Redun = 41
	RS16P3 Redun = 42
)

// redunAttr describes one redundancy method: replicas (rp > 0) or k data + p parity cells.
type redunAttr struct {
	rp   int
	k, p int
}

var redunAttrs = map[Redun]redunAttr{
	RP1: {rp: 1}, RP2: {rp: 2}, RP3: {rp: 3}, RP4: {rp: 4}, RP5: {rp: 5}, RP6: {rp: 6},
	RP8: {rp: 8}, RP12: {rp: 12}, RP16: {rp: 16}, RP24: {rp: 24}, RP32: {rp: 32},
	RP48: {rp: 48}, RP64: {rp: 64}, RP128: {rp: 128},
	RS2P1: {k: 2, p: 1}, RS2P2: {k: 2, p: 2}, RS4P1: {k: 4, p: 1}, RS4P2: {k: 4, p: 2},
	RS8P1: {k: 8, p: 1}, RS8P2: {k: 8, p: 2}, RS16P1: {k: 16, p: 1}, RS16P2: {k: 16, p: 2},
	RS4P3: {k: 4, p: 3}, RS8P3: {k: 8, p: 3}, RS16P3: {k: 16, p: 3},
}

// Valid reports whether r is one of DAOS's redundancy methods.
func (r Redun) Valid() bool { _, ok := redunAttrs[r]; return ok }

// GroupSize is the number of shards in one redundancy group: n replicas or k+p cells.
func (r Redun) GroupSize() int {
	a := redunAttrs[r]
	if a.rp > 0 {
		return a.rp
	}
	return a.k + a.p
}

// IsEC reports whether r is an erasure code.
func (r Redun) IsEC() bool { return redunAttrs[r].k > 0 }

// FaultTolerance is how many shards of a group may be lost without losing data: the
// container rd_fac the method satisfies.
func (r Redun) FaultTolerance() int {
	a := redunAttrs[r]
	if a.rp > 0 {
		return a.rp - 1
	}
	return a.p
}

// prefix is the class name without the group part: "S", "RP_3", "EC_4P2".
func (r Redun) prefix() string {
	a, ok := redunAttrs[r]
	switch {
	case !ok:
		return fmt.Sprintf("REDUN(%d)", uint8(r))
	case r == RP1:
		return "S"
	case a.rp > 0:
		return "RP_" + strconv.Itoa(a.rp)
	default:
		return fmt.Sprintf("EC_%dP%d", a.k, a.p)
	}
}

func (r Redun) String() string { return r.prefix() }

// ClassID is an object class id, DAOS's daos_oclass_id_t: (redundancy << 24) | groups.
type ClassID uint32

// MaxGroups is the group count meaning "as many groups as the pool allows" (the X in
// SX, RP_3GX). It is resolved to a real count when an OID is generated, and that count is
// what the OID stores.
const MaxGroups = 1<<16 - 1

const redunShift = 24

// ClassUnknown is OC_UNKNOWN: let DAOS choose (see AutoClass).
const ClassUnknown ClassID = 0

// MakeClass builds the class id for a redundancy method and group count.
func MakeClass(r Redun, groups int) ClassID {
	return ClassID(uint32(r)<<redunShift | uint32(groups)&MaxGroups)
}

// Commonly named classes.
var (
	S1       = MakeClass(RP1, 1)
	S2       = MakeClass(RP1, 2)
	S4       = MakeClass(RP1, 4)
	S8       = MakeClass(RP1, 8)
	SX       = MakeClass(RP1, MaxGroups)
	RP2G1    = MakeClass(RP2, 1)
	RP2GX    = MakeClass(RP2, MaxGroups)
	RP3G1    = MakeClass(RP3, 1)
	RP3GX    = MakeClass(RP3, MaxGroups)
	EC2P1G1  = MakeClass(RS2P1, 1)
	EC2P1GX  = MakeClass(RS2P1, MaxGroups)
	EC4P2G1  = MakeClass(RS4P2, 1)
	EC4P2GX  = MakeClass(RS4P2, MaxGroups)
	EC8P2GX  = MakeClass(RS8P2, MaxGroups)
	EC16P2GX = MakeClass(RS16P2, MaxGroups)
)

// Redun is the class's redundancy method.
func (c ClassID) Redun() Redun { return Redun(c >> redunShift) }

// Groups is the class's group count; MaxGroups for the X classes.
func (c ClassID) Groups() int { return int(c & MaxGroups) }

// IsMax reports whether the class spreads over as many groups as the pool allows (GX, SX).
func (c ClassID) IsMax() bool { return c.Groups() == MaxGroups }

// Valid reports whether c names a known redundancy method with at least one group, and
// nothing in the bits DAOS leaves unused.
func (c ClassID) Valid() bool {
	return c.Redun().Valid() && c.Groups() > 0 && c&0x00ff0000 == 0
}

// GroupSize is the number of shards per redundancy group (RP_n: n, EC_kPp: k+p, S: 1).
func (c ClassID) GroupSize() int { return c.Redun().GroupSize() }

// IsEC reports whether the class is erasure coded.
func (c ClassID) IsEC() bool { return c.Redun().IsEC() }

// DataCells is the number of data shards per group: k for EC_kPp, 1 for replication
// (every replica holds all the data).
func (c ClassID) DataCells() int {
	if a := redunAttrs[c.Redun()]; a.k > 0 {
		return a.k
	}
	return 1
}

// ParityCells is p for EC_kPp; for RP_n it is n-1 (the extra copies), 0 for S.
func (c ClassID) ParityCells() int {
	if a := redunAttrs[c.Redun()]; a.k > 0 {
		return a.p
	}
	return c.GroupSize() - 1
}

// FaultTolerance is the largest container rd_fac the class satisfies: RP_n → n-1,
// EC_kPp → p, S → 0.
func (c ClassID) FaultTolerance() int { return c.Redun().FaultTolerance() }

// String is DAOS's class name: S1, SX, RP_3G2, RP_3GX, EC_4P2G1, EC_4P2GX.
func (c ClassID) String() string {
	if c == ClassUnknown {
		return "UNKNOWN"
	}
	if !c.Valid() {
		return fmt.Sprintf("CLASS(%#x)", uint32(c))
	}
	g := "X"
	if !c.IsMax() {
		g = strconv.Itoa(c.Groups())
	}
	if c.Redun() == RP1 {
		return "S" + g
	}
	return c.Redun().prefix() + "G" + g
}

// namedGroups are the group counts DAOS predefines names for (OC_*G1 .. G32, GX).
var namedGroups = []int{1, 2, 4, 6, 8, 12, 16, 32, MaxGroups}

// Classes lists DAOS's predefined explicit classes (OC_S1 .. OC_EC_16P3GX) in id order.
// RP_8 and up are only predefined with one group, as in DAOS.
func Classes() []ClassID {
	var out []ClassID
	for r := Redun(0); ; r++ {
		if r.Valid() {
			for _, g := range namedGroups {
				if redunAttrs[r].rp >= 8 && g != 1 {
					continue
				}
				out = append(out, MakeClass(r, g))
			}
		}
		if r == 255 {
			return out
		}
	}
}

const classSyntax = "use S<g>, RP_<n>G<g> or EC_<k>P<p>G<g>, where n is 2-6, 8, 12, 16, 24, 32, 48, 64 or 128; " +
	"k P p is 2P1, 2P2, 4P1, 4P2, 4P3, 8P1, 8P2, 8P3, 16P1, 16P2 or 16P3; g is a group count " +
	"(DAOS names 1, 2, 4, 6, 8, 12, 16, 32) or X for as many groups as the pool allows; e.g. S1, SX, RP_3GX, EC_4P2G1"

// ParseClass parses a class name as DAOS's daos_oclass_name2id does: "S1", "SX",
// "RP_3G1", "RP_3GX", "EC_4P2GX". Case does not matter and an "OC_" prefix is accepted
// (people paste the C constant). Unlike DAOS, any group count from 1 to 65534 is accepted,
// so the class String() prints for a generated OID (e.g. RP_3G170) parses back.
func ParseClass(name string) (ClassID, error) {
	c, ok := parseClass(strings.ToUpper(strings.TrimSpace(name)))
	if !ok {
		return 0, daoserr.Newf(daoserr.Inval, "unknown object class %q", name).WithResolution("%s", classSyntax)
	}
	return c, nil
}

func parseClass(s string) (ClassID, bool) {
	s = strings.TrimPrefix(s, "OC_")
	var r Redun
	var groups string
	switch {
	case strings.HasPrefix(s, "S"):
		r, groups = RP1, s[1:]
	case strings.HasPrefix(s, "RP_"):
		n, g, ok := strings.Cut(s[3:], "G")
		if !ok {
			return 0, false
		}
		if r, ok = findRedun(redunAttr{rp: atoi(n)}); !ok || r == RP1 {
			return 0, false
		}
		groups = g
	case strings.HasPrefix(s, "EC_"):
		kp, g, ok := strings.Cut(s[3:], "G")
		if !ok {
			return 0, false
		}
		k, p, ok := strings.Cut(kp, "P")
		if !ok {
			return 0, false
		}
		if r, ok = findRedun(redunAttr{k: atoi(k), p: atoi(p)}); !ok {
			return 0, false
		}
		groups = g
	default:
		return 0, false
	}
	if groups == "X" {
		return MakeClass(r, MaxGroups), true
	}
	g := atoi(groups)
	if g < 1 || g >= MaxGroups {
		return 0, false
	}
	return MakeClass(r, g), true
}

// atoi parses a plain decimal number; anything else (signs, spaces, "") gives -1.
func atoi(s string) int {
	if s == "" || len(s) > 6 {
		return -1
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func findRedun(a redunAttr) (Redun, bool) {
	for r, ra := range redunAttrs {
		if ra == a {
			return r, true
		}
	}
	return 0, false
}
