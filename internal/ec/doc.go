// Package ec is the erasure-code arithmetic of EC object classes (EC_kPp), shared by
// the client (encoding full stripes, degraded reads) and the servers (EC aggregation,
// rebuild). It does no I/O: it says which records go to which shard under which index,
// and computes and rebuilds cells.
//
// # What follows DAOS, and where it was checked
//
// The DAOS sources read for this package: src/object/obj_ec.h, src/object/cli_ec.c
// (obj_ec_recx_scan, ec_data_recx_add, ec_parity_recx_add, obj_ec_stripe_encode,
// obj_ec_recov_tgt_recx_nrs), src/object/cli_obj.c (obj_init_oca, obj_recx_valid),
// src/object/srv_obj.c (obj_ioc_init_oca), src/object/obj_layout.c
// (obj_ec_grp_start), src/object/srv_obj_migrate.c, src/include/daos/object.h
// (DAOS_EC_CELL_MIN/DEF/MAX, daos_ec_cs_valid).
//
//   - Classes: k+p in 2P1, 2P2, 4P1, 4P2, 4P3, 8P1, 8P2, 8P3, 16P1, 16P2, 16P3 (the
//     OR_RS_* redundancies that internal/placement knows). Callers pass k and p as
//     ints (placement.ClassID.DataCells and ParityCells).
//   - Cell size: the container property ec_cell_sz, 4 KiB..1 MiB and a multiple of 32
//     (daos_ec_cs_valid; 32 is ISA-L's alignment), default 128 KiB (DAOS_EC_CELL_DEF at
//     DAOS HEAD; older releases say 64 KiB). Not necessarily a power of two.
//   - A cell is ec_cell_sz RECORDS, not bytes. DAOS copies ec_cell_sz into
//     oca->u.ec.e_len (obj_init_oca, obj_ioc_init_oca); obj_ec_cell_rec_nr is e_len and
//     obj_ec_cell_bytes is e_len × iod_size. So a cell always holds whole records, the
//     record size never "fails to divide" the cell, and a record larger than
//     ec_cell_sz bytes is fine: its cells are just larger. For byte arrays (record
//     size 1, DFS's case) ec_cell_sz is the cell size in bytes. Geometry.CellRecs is
//     therefore the property value itself. The one bound added here is MaxCellBytes
//     (1 GiB per cell; DAOS would fail the allocation instead), reported as
//     DER_REC_SIZE. A record size of 0 is DER_INVAL.
//   - Stripe s covers logical records [s·k·cell, (s+1)·k·cell); data cell j of it is on
//     the group's cell position j, parity cells on positions k..k+p-1. Positions map
//     to the group's shards through a rotation: Shard(pos, start) = (start+pos) mod
//     (k+p), with start = GroupStart(layoutVersion, dkeyHash, k+p) = 0 for layout
//     version 0 and dkeyHash mod (k+p) from version 1 on (obj_ec_grp_start,
//     obj_ec_shard_idx). The rotation is a parameter; the plans are by position.
//   - A data shard does NOT store its records at their logical index: it packs its
//     cells densely, cell of stripe s at [s·cell, (s+1)·cell) (obj_ec_idx_daos2vos;
//     Geometry.ShardIndex, inverse Geometry.LogicalIndex = obj_ec_idx_vos2daos). A
//     contiguous logical extent is thus one contiguous extent on each data shard.
//   - Parity of stripe s is stored on every parity shard at index s·cell with the top
//     bit set, PARITY_INDICATOR = 1<<63 (ec_parity_recx_add); a run of n full stripes
//     is one extent of n cells (Geometry.ParityRecx). User indexes are limited to the
//     lower 63 bits: an extent touching the parity bit, or reaching past 2^63, is
//     rejected (DER_INVAL / DER_OVERFLOW), as are empty extents and overlapping ones
//     (obj_recx_valid).
//   - Writes (Geometry.SplitWrite): every record goes to its data shard; stripes that
//     the I/O writes whole get parity from the client; the records of partially
//     written stripes are also replicated, at their unmapped logical index, to every
//     parity shard (ec_data_recx_add with add_parity), so they survive p failures until
//     the servers' EC aggregation folds them into parity and drops the replicas.
//     Difference: DAOS looks for full stripes inside each extent alone; SplitWrite
//     first joins extents given one after the other that continue each other, so a
//     stripe written by two such extents gets parity too. What is stored for a record
//     is the same either way.
//   - Degraded reads (Geometry.SplitRead): records on live data shards are read from
//     them; a stripe with records on a lost data shard is rebuilt from k live cells,
//     the live data cells first, then parity (DAOS picks the first k live shards in
//     shard order, which is the same set). More than p lost shards is DER_DATA_LOSS
//     (obj_ec_recov_tgt_recx_nrs). Parity only covers what aggregation has folded in:
//     a degraded read must first take the wanted records from the replicas on a parity
//     shard and rebuild only the rest (DAOS asks the parity shard which extents it
//     holds); the servers' side of that is not in this package.
//   - The code: Reed-Solomon over GF(2^8), polynomial 0x11d, generator = identity over
//     ISA-L's gf_gen_cauchy1_matrix (parity row i, column j: 1/((k+i) xor j)), which is
//     what DAOS builds (obj_class.c) and what klauspost/reedsolomon builds with
//     WithCauchyMatrix. A test checks the parity bytes against a bit-by-bit GF(2^8)
//     implementation of that definition, so parity computed here equals DAOS's (not
//     tested against ISA-L itself).
//
// # Decisions of this package
//
//   - Cells are [][]byte used in place. WritePlan.Encode reads full stripes straight
//     from the caller's buffer (a full stripe is always contiguous there) and writes
//     parity into one buffer per parity shard, which the plan's FromParity segments
//     point into. Codec.Encode reuses parity cells with enough capacity; Reconstruct
//     reuses empty cells with enough capacity.
//   - Padding: the codec wants equal cells. Geometry.StripeCells gives the cells of a
//     stripe from a buffer: slices of it where a cell is wholly inside, zero-filled
//     copies where a cell is partly or not at all inside. Zero is what an unwritten
//     record reads as, so a padded stripe encodes to the parity of what a reader sees
//     (what aggregation needs at the end of an object). ScatterCells copies rebuilt
//     cells back, skipping cells that are the buffer itself.
//   - Plans speak in cell positions (0..k-1 data, k..k+p-1 parity) and per shard give
//     an iod (extents in the shard's index space, merged where adjacent, never across
//     the parity bit) and an sgl (segments of the caller's buffer or of the parity
//     buffers, merged where contiguous) whose bytes line up with the extents.
//   - Codecs are cached per (k, p) (CodecFor) and safe for concurrent use.
//
// Single values (DAOS spreads large ones evenly over the data cells,
// obj_ec_singv_*) are not handled here yet.
package ec
