package placement

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/godaos/godaos/internal/daoserr"
)

// OType is an object type, DAOS's enum daos_otype_t. It sits in the top 8 bits of
// OID.Hi and says how dkeys and akeys are typed (hashed, uint64, lexical) and whether
// the object is a flat KV or an array.
type OType uint8

// Object types with DAOS's values (daos_obj.h).
const (
	OTMultiHashed  OType = 0 // default: multi-level KV, hashed keys
	OTOIT          OType = 1 // object ID table (snapshot)
	OTDkeyUint64   OType = 2
	OTAkeyUint64   OType = 3
	OTMultiUint64  OType = 4
	OTDkeyLexical  OType = 5
	OTAkeyLexical  OType = 6
	OTMultiLexical OType = 7
	OTKVHashed     OType = 8 // flat KV (no akey), hashed dkey
	OTKVUint64     OType = 9
	OTKVLexical    OType = 10
	OTArray        OType = 11 // array, attributes stored in the object
	OTArrayAttr    OType = 12 // array, attributes kept by the user
	OTArrayByte    OType = 13 // byte array without metadata (DFS files)
	OTOITV2        OType = 14
	OTMax                = OTOITV2
)

var otypeNames = [...]string{
	"MULTI_HASHED", "OIT", "DKEY_UINT64", "AKEY_UINT64", "MULTI_UINT64", "DKEY_LEXICAL",
	"AKEY_LEXICAL", "MULTI_LEXICAL", "KV_HASHED", "KV_UINT64", "KV_LEXICAL", "ARRAY",
	"ARRAY_ATTR", "ARRAY_BYTE", "OIT_V2",
}

func (t OType) String() string {
	if t <= OTMax {
		return otypeNames[t]
	}
	return fmt.Sprintf("OTYPE(%d)", uint8(t))
}

// Valid reports whether t is a DAOS object type.
func (t OType) Valid() bool { return t <= OTMax }

// IsArray reports whether t is one of the array types (daos_is_array_type).
func (t OType) IsArray() bool { return t == OTArray || t == OTArrayAttr || t == OTArrayByte }

// IsKV reports whether t is a flat KV (daos_is_kv_type).
func (t OType) IsKV() bool { return t == OTKVHashed || t == OTKVUint64 || t == OTKVLexical }

// DkeyUint64 reports whether dkeys are 64-bit integers (daos_is_dkey_uint64_type). Such
// dkeys are placed by their value rather than by a hash of their bytes.
func (t OType) DkeyUint64() bool {
	switch t {
	case OTMultiUint64, OTDkeyUint64, OTKVUint64, OTArray, OTArrayAttr, OTArrayByte:
		return true
	}
	return false
}

// DkeyLexical reports whether dkeys are ordered lexically (daos_is_dkey_lexical_type).
func (t OType) DkeyLexical() bool {
	return t == OTDkeyLexical || t == OTMultiLexical || t == OTKVLexical
}

// OID is a 128-bit object id. The top 32 bits of Hi belong to DAOS — 8 bits object
// type, 8 bits redundancy method, 16 bits group count (daos_obj_set_oid) — and the other
// 96 bits to the user, who keeps them unique within the container.
type OID struct{ Hi, Lo uint64 }

const (
	oidTypeShift  = 56
	oidRedunShift = 48
	oidMetaShift  = 32
	// OIDUserHiMask is the part of Hi the user owns.
	OIDUserHiMask = 1<<oidMetaShift - 1
)

// MakeOID encodes an OID as daos_obj_set_oid does, with the group count already resolved
// (no MaxGroups). Use GenerateOID to resolve GX/SX and check the class against the pool.
func MakeOID(lo uint64, hiUser uint32, class ClassID, t OType) OID {
	hi := uint64(t)<<oidTypeShift | uint64(class.Redun())<<oidRedunShift |
		uint64(class.Groups())<<oidMetaShift | uint64(hiUser)
	return OID{Hi: hi, Lo: lo}
}

// Type is the object type.
func (o OID) Type() OType { return OType(o.Hi >> oidTypeShift) }

// Redun is the redundancy method.
func (o OID) Redun() Redun { return Redun(o.Hi >> oidRedunShift) }

// Groups is the number of redundancy groups frozen into the OID.
func (o OID) Groups() int { return int(o.Hi>>oidMetaShift) & MaxGroups }

// Class is the class id as daos_obj_id2class computes it: redundancy and the real group
// count (so an OID generated as RP_3GX reports e.g. RP_3G170).
func (o OID) Class() ClassID { return MakeClass(o.Redun(), o.Groups()) }

// GroupSize is the number of shards per redundancy group.
func (o OID) GroupSize() int { return o.Redun().GroupSize() }

// Shards is Groups × GroupSize, the length of the object's layout.
func (o OID) Shards() int { return o.Groups() * o.GroupSize() }

// UserHi is the user's 32 bits of Hi.
func (o OID) UserHi() uint32 { return uint32(o.Hi & OIDUserHiMask) }

// IsZero reports whether o is DAOS_OBJ_NIL.
func (o OID) IsZero() bool { return o.Hi == 0 && o.Lo == 0 }

// String is DAOS's DF_OID form, "hi.lo" in decimal.
func (o OID) String() string {
	return strconv.FormatUint(o.Hi, 10) + "." + strconv.FormatUint(o.Lo, 10)
}

// ParseOID parses the "hi.lo" form String prints (what `daos obj query` takes).
func ParseOID(s string) (OID, error) {
	h, l, ok := strings.Cut(strings.TrimSpace(s), ".")
	hi, err1 := strconv.ParseUint(h, 10, 64)
	lo, err2 := strconv.ParseUint(l, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return OID{}, daoserr.Newf(daoserr.Inval, "bad object id %q", s).WithResolution("write it as <hi>.<lo> in decimal, e.g. 1152921504606846976.0")
	}
	return OID{Hi: hi, Lo: lo}, nil
}

// PoolShape is what OID generation needs to know about the pool and the container.
type PoolShape struct {
	Targets int // targets in the pool that are not excluded
	Domains int // fault domains (nodes) holding such targets
	RdFac   int // the container's rd_fac (redundancy factor, 0-4)
}

// reserveGroups is DAOS's reserve_grp_by_rf: a GX object leaves min(rd_fac, 30% of the
// targets / group size) groups' worth of targets unused, so that after rd_fac failures
// rebuild still finds replacement targets that keep the group's shards in distinct
// domains.
func reserveGroups(targets, grpSize, rdFac int) int {
	return min(targets*3/10/grpSize, rdFac)
}

// maxGroups is the group count a GX class gets (DAOS: target_nr / grp_size minus the
// reserve, at least 1).
func maxGroups(targets, grpSize, rdFac int) int {
	n := targets / grpSize
	if r := reserveGroups(targets, grpSize, rdFac); n > r {
		n -= r
	}
	return max(1, n)
}

// GenerateOID encodes the DAOS bits of an object id, as daos_obj_generate_oid does: the
// user's lo and hiUser are kept, the type and class are written, and GX/SX is replaced
// by the number of groups the pool can hold (see PoolShape). Class 0 (ClassUnknown) asks
// for DAOS's default class (AutoClass) for the container's rd_fac and the object type.
//
// Like DAOS (daos_oclass_fit_max) it refuses a class whose group needs more fault domains
// than the pool has, or whose groups need more targets than it has; and it refuses a class
// weaker than the container's rd_fac (CheckRdFac).
func GenerateOID(lo uint64, hiUser uint32, class ClassID, t OType, pool PoolShape) (OID, error) {
	if !t.Valid() {
		return OID{}, daoserr.Newf(daoserr.Inval, "object type %d is not a DAOS object type", uint8(t)).
			WithResolution("use 0 (MULTI_HASHED) to %d (%s)", OTMax, OTMax)
	}
	if pool.Targets < 1 || pool.Domains < 1 {
		return OID{}, daoserr.Newf(daoserr.Inval, "cannot place objects in a pool with %d targets in %d fault domains", pool.Targets, pool.Domains)
	}
	if class == ClassUnknown {
		c, err := AutoClass(pool.RdFac, t, 0, pool)
		if err != nil {
			return OID{}, err
		}
		class = c
	}
	if !class.Valid() {
		return OID{}, daoserr.Newf(daoserr.Inval, "object class %#x is not a DAOS class", uint32(class)).WithResolution("%s", classSyntax)
	}
	if err := CheckRdFac(class, pool.RdFac); err != nil {
		return OID{}, err
	}
	gs := class.GroupSize()
	if gs > pool.Domains {
		return OID{}, daoserr.Newf(daoserr.Inval, "object class %s puts %d shards of a group in distinct fault domains, the pool has %d", class, gs, pool.Domains).
			WithResolution("use a class with a smaller group (fewer replicas, or a narrower EC code), or add servers")
	}
	groups := class.Groups()
	if class.IsMax() {
		groups = maxGroups(pool.Targets, gs, pool.RdFac)
	} else if groups*gs > pool.Targets {
		return OID{}, daoserr.Newf(daoserr.Inval, "object class %s needs %d targets (%d groups of %d), the pool has %d", class, groups*gs, groups, gs, pool.Targets).
			WithResolution("use fewer groups, or GX to take as many as the pool allows")
	}
	return MakeOID(lo, hiUser, MakeClass(class.Redun(), groups), t), nil
}
