package ec

import (
	"fmt"
	"math"

	"github.com/godaos/godaos/internal/daoserr"
)

// Cell size limits, DAOS's DAOS_EC_CELL_MIN/DEF/MAX (daos/object.h) and the
// alignment daos_ec_cs_valid demands.
const (
	CellMin     = 4 << 10   // DAOS_EC_CELL_MIN
	CellDefault = 128 << 10 // DAOS_EC_CELL_DEF at DAOS HEAD (older releases: 64 KiB)
	CellMax     = 1 << 20   // DAOS_EC_CELL_MAX
	CellAlign   = 32        // ISA-L wants 32-byte multiples; DAOS keeps the rule
)

// ParityIndicator is the top bit of a record index. Parity cells are stored on parity
// shards under indexes with this bit set (DAOS's PARITY_INDICATOR, obj_ec.h), so user
// indexes are limited to the lower 63 bits.
const ParityIndicator uint64 = 1 << 63

// MaxCellBytes bounds the size of one cell in bytes (ec_cell_sz records × record
// size). DAOS has no explicit bound (it fails the allocation instead); a cell is one
// []byte here, and 1 GiB keeps a stripe of 16 cells addressable and allocatable.
const MaxCellBytes = 1 << 30

// Recx is an extent of records: records [Idx, Idx+Nr). It has the layout of
// daos.Recx and vos.Recx, so those convert to it for free.
type Recx struct{ Idx, Nr uint64 }

// End is the index just past the extent.
func (r Recx) End() uint64 { return r.Idx + r.Nr }

// IsParity reports whether the extent is in the parity index space.
func (r Recx) IsParity() bool { return r.Idx&ParityIndicator != 0 }

func (r Recx) String() string {
	if r.IsParity() {
		return fmt.Sprintf("[P%d, +%d)", r.Idx&^ParityIndicator, r.Nr)
	}
	return fmt.Sprintf("[%d, +%d)", r.Idx, r.Nr)
}

// classes are the EC codes DAOS defines (enum daos_obj_redun: OR_RS_kPp). k+p shards.
var classes = map[[2]int]bool{
	{2, 1}: true, {2, 2}: true, {4, 1}: true, {4, 2}: true, {8, 1}: true, {8, 2}: true,
	{16, 1}: true, {16, 2}: true, {4, 3}: true, {8, 3}: true, {16, 3}: true,
}

// ValidateClass checks that k data + p parity cells is one of DAOS's EC classes.
func ValidateClass(k, p int) error {
	if !classes[[2]int{k, p}] {
		return daoserr.Newf(daoserr.Inval, "erasure code %dP%d is not supported", k, p).
			WithResolution("use one of EC_2P1, EC_2P2, EC_4P1, EC_4P2, EC_4P3, EC_8P1, EC_8P2, EC_8P3, EC_16P1, EC_16P2, EC_16P3")
	}
	return nil
}

// ValidateCellSize checks a container's ec_cell_sz the way DAOS's daos_ec_cs_valid
// does: 4 KiB <= size <= 1 MiB and a multiple of 32 (ISA-L's alignment). The size need
// not be a power of two.
func ValidateCellSize(size uint64) error {
	if size < CellMin || size > CellMax {
		return daoserr.Newf(daoserr.Inval, "EC cell size %d is out of range", size).
			WithResolution("ec_cell_sz must be between 4KiB and 1MiB")
	}
	if size%CellAlign != 0 {
		return daoserr.Newf(daoserr.Inval, "EC cell size %d is not a multiple of %d bytes", size, CellAlign).
			WithResolution("choose an ec_cell_sz that is a multiple of 32, e.g. 128KiB")
	}
	return nil
}

// Geometry is the stripe layout of one array akey of an EC object.
//
// As in DAOS, a cell is CellRecs records (the container's ec_cell_sz, DAOS's
// oca->u.ec.e_len, used as a record count by obj_ec_cell_rec_nr), so a cell holds
// CellRecs*RecSize bytes and never splits a record. For byte arrays (RecSize 1, what
// DFS uses) ec_cell_sz is the cell size in bytes.
type Geometry struct {
	K, P     int    // data and parity cells per stripe
	CellRecs uint64 // records per cell: the container's ec_cell_sz
	RecSize  uint64 // bytes per record: the akey's iod_size
}

// NewGeometry returns the validated geometry of EC_kPp with ec_cell_sz cellSize for an
// akey with records of recSize bytes.
func NewGeometry(k, p int, cellSize, recSize uint64) (Geometry, error) {
	g := Geometry{K: k, P: p, CellRecs: cellSize, RecSize: recSize}
	return g, g.Validate()
}

// Validate checks the class, the cell size and the record size.
func (g Geometry) Validate() error {
	if err := ValidateClass(g.K, g.P); err != nil {
		return err
	}
	if err := ValidateCellSize(g.CellRecs); err != nil {
		return err
	}
	if g.RecSize == 0 {
		return daoserr.New(daoserr.Inval, "EC record size is 0").
			WithResolution("an array akey needs a record size of at least 1 byte")
	}
	if g.RecSize > MaxCellBytes/g.CellRecs {
		return daoserr.Newf(daoserr.RecSize, "record size %d × ec_cell_sz %d exceeds the %d-byte cell limit",
			g.RecSize, g.CellRecs, MaxCellBytes).
			WithResolution("use a smaller record size or a smaller ec_cell_sz")
	}
	return nil
}

// Shards is the number of shards in the redundancy group: k+p.
func (g Geometry) Shards() int { return g.K + g.P }

// CellBytes is the size of one cell in bytes (DAOS obj_ec_cell_bytes).
func (g Geometry) CellBytes() uint64 { return g.CellRecs * g.RecSize }

// StripeRecs is the number of records in one stripe's data cells (DAOS
// obj_ec_stripe_rec_nr).
func (g Geometry) StripeRecs() uint64 { return uint64(g.K) * g.CellRecs }

// StripeBytes is the number of data bytes in one stripe.
func (g Geometry) StripeBytes() uint64 { return g.StripeRecs() * g.RecSize }

// StripeOf is the stripe holding record idx.
func (g Geometry) StripeOf(idx uint64) uint64 { return idx / g.StripeRecs() }

// StripeRecx is the logical extent of stripe s's data cells.
func (g Geometry) StripeRecx(s uint64) Recx {
	return Recx{Idx: s * g.StripeRecs(), Nr: g.StripeRecs()}
}

// CellOf is the data cell (0..k-1) that holds record idx: the data shard position
// (DAOS obj_ec_tgt_of_recx_idx).
func (g Geometry) CellOf(idx uint64) int {
	return int(idx % g.StripeRecs() / g.CellRecs)
}

// CellRecx is the logical extent of data cell `cell` of stripe s.
func (g Geometry) CellRecx(s uint64, cell int) Recx {
	return Recx{Idx: s*g.StripeRecs() + uint64(cell)*g.CellRecs, Nr: g.CellRecs}
}

// ShardIndex maps a logical record index to the index under which its data shard
// stores it (DAOS obj_ec_idx_daos2vos): a data shard packs its cells densely, cell of
// stripe s at [s*CellRecs, (s+1)*CellRecs).
func (g Geometry) ShardIndex(idx uint64) uint64 {
	return idx/g.StripeRecs()*g.CellRecs + idx%g.CellRecs
}

// LogicalIndex is the inverse of ShardIndex for data shard `cell` (DAOS
// obj_ec_idx_vos2daos). ok is false when the result would not be a user index (the
// parity bit is set in shardIdx, or the logical index is past 2^63).
func (g Geometry) LogicalIndex(cell int, shardIdx uint64) (idx uint64, ok bool) {
	if shardIdx&ParityIndicator != 0 || cell < 0 || cell >= g.K {
		return 0, false
	}
	s := shardIdx / g.CellRecs
	if s > (ParityIndicator-1)/g.StripeRecs() {
		return 0, false
	}
	idx = s*g.StripeRecs() + uint64(cell)*g.CellRecs + shardIdx%g.CellRecs
	return idx, idx < ParityIndicator
}

// ParityRecx is the extent under which every parity shard stores the parity of
// stripes [first, first+n): index first*CellRecs with the parity bit set, n cells long
// (DAOS ec_parity_recx_add).
func (g Geometry) ParityRecx(first, n uint64) Recx {
	return Recx{Idx: first*g.CellRecs | ParityIndicator, Nr: n * g.CellRecs}
}

// ParityStripe is the stripe whose parity a parity shard stores at index shardIdx
// (DAOS obj_ec_idx_parity2daos). ok is false when shardIdx lacks the parity bit.
func (g Geometry) ParityStripe(shardIdx uint64) (stripe uint64, ok bool) {
	if shardIdx&ParityIndicator == 0 {
		return 0, false
	}
	return (shardIdx &^ ParityIndicator) / g.CellRecs, true
}

// GroupStart is the rotation of the cells over a group's shards for a dkey (DAOS
// obj_ec_grp_start, obj_layout.c): 0 for layout version 0, dkeyHash mod (k+p) from
// layout version 1 on. It spreads parity, and so the aggregation work, over all
// targets.
func GroupStart(layoutVersion uint32, dkeyHash uint64, groupSize int) int {
	if layoutVersion == 0 || groupSize <= 0 {
		return 0
	}
	return int(dkeyHash % uint64(groupSize))
}

// Shard is the group-relative shard that holds cell position pos (0..k-1 data,
// k..k+p-1 parity) when the group is rotated by start (DAOS obj_ec_shard_idx:
// (start + pos) mod (k+p)).
func (g Geometry) Shard(pos, start int) int {
	n := g.Shards()
	return ((start+pos)%n + n) % n
}

// Position is the inverse of Shard: the cell position held by group-relative shard.
func (g Geometry) Position(shard, start int) int {
	n := g.Shards()
	return ((shard-start)%n + n) % n
}

// IsParity reports whether cell position pos is a parity cell.
func (g Geometry) IsParity(pos int) bool { return pos >= g.K }

// CheckRecxs validates user extents: none empty, none reaching into the parity index
// space (idx or idx+nr past 2^63, which also rules out uint64 overflow), and no two
// overlapping (DAOS obj_recx_valid rejects overlaps). It returns the total number of
// records.
func (g Geometry) CheckRecxs(recxs []Recx) (total uint64, err error) {
	if len(recxs) == 0 {
		return 0, daoserr.New(daoserr.Inval, "no extents given")
	}
	for i, r := range recxs {
		if r.Nr == 0 {
			return 0, daoserr.Newf(daoserr.Inval, "extent %d %v is empty", i, r).
				WithResolution("every extent needs at least one record")
		}
		if r.Idx&ParityIndicator != 0 {
			return 0, daoserr.Newf(daoserr.Inval, "extent %d starts at index %#x, which has the parity bit (1<<63) set", i, r.Idx).
				WithResolution("array indexes are limited to the lower 63 bits")
		}
		if r.Nr > ParityIndicator-r.Idx {
			return 0, daoserr.Newf(daoserr.Overflow, "extent %d at index %d with %d records ends past 2^63", i, r.Idx, r.Nr).
				WithResolution("array indexes are limited to the lower 63 bits")
		}
		if total > math.MaxUint64-r.Nr {
			return 0, daoserr.Newf(daoserr.Overflow, "the extents hold more than 2^64 records")
		}
		total += r.Nr
	}
	if total > math.MaxInt64/g.RecSize {
		return 0, daoserr.Newf(daoserr.Overflow, "%d records of %d bytes do not fit one I/O", total, g.RecSize)
	}
	if overlap, a, b := findOverlap(recxs); overlap {
		return 0, daoserr.Newf(daoserr.Inval, "extents %d %v and %d %v overlap", a, recxs[a], b, recxs[b]).
			WithResolution("an I/O may name each record once")
	}
	return total, nil
}

// CellAkey is the akey under which every shard of an EC object's dkey keeps
// the container's ec_cell_sz (a single value, 8 bytes little-endian), written
// with each update: the servers rebuild a lost shard's cells without knowing
// the container's properties. Clients leave it out of akey listings.
const CellAkey = "\x00ec_cell_sz"
