package daos

import "github.com/godaos/godaos/internal/placement"

// Object IDs, classes and types, as DAOS names them; the definitions live in
// internal/placement, which clients and servers share.
type (
	// OID is an object ID: 128 bits, the top 32 holding type, redundancy and groups.
	OID = placement.OID
	// ClassID is an object class: S1, SX, RP_3GX, EC_4P2GX, ...
	ClassID = placement.ClassID
	// OType is an object type (DAOS's daos_otype_t).
	OType = placement.OType
)

// Object classes (any other by name with ParseClass).
var (
	S1, S2, S4, S8, SX = placement.S1, placement.S2, placement.S4, placement.S8, placement.SX
	RP2G1, RP2GX       = placement.RP2G1, placement.RP2GX
	RP3G1, RP3GX       = placement.RP3G1, placement.RP3GX
	EC2P1G1, EC2P1GX   = placement.EC2P1G1, placement.EC2P1GX
	EC4P2G1, EC4P2GX   = placement.EC4P2G1, placement.EC4P2GX
)

// Object types.
const (
	OTMultiHashed = placement.OTMultiHashed // the default: multi-level KV, hashed keys
	OTDkeyUint64  = placement.OTDkeyUint64
	OTKVHashed    = placement.OTKVHashed // flat KV
	OTArray       = placement.OTArray
	OTArrayByte   = placement.OTArrayByte // byte arrays (DFS files)
)

// ParseClass reads a class name: "S1", "SX", "RP_3GX", "EC_4P2G8", ...
func ParseClass(name string) (ClassID, error) { return placement.ParseClass(name) }
