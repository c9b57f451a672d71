// Package placement decides where object data lives, the same way on clients and
// servers and without any communication between them: object classes, object ids, the
// pool map and the jump placement algorithm. It is pure computation — no networking, no
// storage — so that daos/ (the client) and server/ (engines, rebuild) share one
// implementation and cannot disagree.
//
// # Model
//
// An object class (ClassID, DAOS's daos_oclass_id_t) is a redundancy method and a group
// count: (redundancy << 24) | groups. The methods are DAOS's enum daos_obj_redun with its
// numeric values — RP_1 (the S classes), RP_2..6, 8, 12, 16, 24, 32, 48, 64, 128 and
// EC_2P1 ... EC_16P3 — and the names are DAOS's: S1, SX, RP_3G2, RP_3GX, EC_4P2GX.
// A group holds GroupSize shards (n replicas or k+p cells); an object has Groups groups;
// X (MaxGroups) means "as many as the pool allows".
//
// An OID is 128 bits. The top 32 bits of Hi hold the object type (enum daos_otype_t),
// the redundancy method and the real group count, as daos_obj_set_oid encodes them;
// GenerateOID resolves GX/SX there once and for all, so an object keeps its layout width
// when the pool grows. The other 96 bits are the user's.
//
// The pool map (PoolMap) is a versioned tree: root → fault domains (the components of
// the servers' fault_path, e.g. /rack0/node1; one or more levels) → ranks → targets, each
// target up, down or out.
//
// Layout walks that tree once per shard, choosing a child at each level by Lamping–Veach
// jump consistent hashing (Jump) of a 64-bit key derived from the OID, the shard number
// and the level. The walk keeps a group's shards in distinct fault domains while the group
// has unused ones, and then spreads them as evenly as the domains allow; it keeps an
// object's shards on distinct targets while there are unused ones. A dkey goes to group
// DkeyGroup(DkeyHash(type, dkey), groups).
//
// # DAOS behaviours followed
//
//   - class ids, names, enum values and the OID bit layout (daos_obj_class.h, daos_obj.h);
//     the values of EC 4P3, 8P3 and 16P3 (40-42) are inferred from their order in the
//     enum, as the DAOS sources we checked stop at 16P2 (39)
//   - GX resolution and its checks (daos_oclass_fit_max): targets / group size, less
//     min(rd_fac, 30% of targets / group size) groups kept in reserve for rebuild, at
//     least 1; a group larger than the number of fault domains, or explicit groups needing
//     more targets than the pool has, are DER_INVAL
//   - the default class for class 0 and the DAOS_OCH_* hints (dc_set_oclass); for rd_fac
//     4 its code picks RP_5, which we follow, although DAOS's object README says RP_6
//   - the jump map (src/placement/jump_map.c): per-level jump hashing keyed by the OID,
//     distinct fault domains per group with a reset when they run out, distinct targets
//     per object, children chosen by plain jump hashing, not weighted by their size
//     (servers are assumed alike), and a failed target's shards remapped one by one to a working target while
//     every other shard stays where it was, so failures move only what they must
//   - extension: ranks added later (RankSpec.Added) sort after the existing ones, so
//     jump hashing moves only the objects that land on the new ranks (≈ 1/(N+1) of them)
//   - dkey hashing: murmur64 (MurmurHash64A, d_hash_murmur64) with seed 5731, or the raw
//     value for integer-dkey types, then jump hash into the groups (obj_dkey2grpidx)
//
// # Deviations from DAOS
//
//   - Layouts are not bit-identical with DAOS's: the per-shard and per-level keys come
//     from a murmur3/splitmix finaliser rather than DAOS's CRC-based re-keying, and when
//     the first jump lands on a full or already-used child the choice is a jump over the
//     best remaining children instead of repeated re-keyed tries. Balance and movement
//     are the same in kind (see the tests); a GoDAOS engine never shares a pool with a
//     DAOS engine, so only self-consistency matters.
//   - "Already used by the group" is counted, not a bitmap: a child is preferred when the
//     fault domain below it with the fewest shards of the group has fewer than elsewhere.
//     This keeps groups in distinct leaf domains even with multi-level, uneven fault paths
//     (racks of different sizes), where resetting per level would not.
//   - Target states are only up, down and out (DAOS: NEW, UP, UPIN, DOWN, DOWNOUT,
//     DRAIN). Down and out are placed alike (remapped); DRAIN and NEW-until-rebalanced are
//     the caller's business: keep using the older map version until data has moved.
//   - Failed shards are remapped in shard order, not in failure-sequence (fseq) order:
//     with two failed targets in one object, the replacement of the first can change when
//     the second fails.
//   - The redundancy level (rd_lvl node/rank) is not a parameter: the fault domain is the
//     last component of the fault path; give every rank its own path for rank-level
//     redundancy.
//   - Pool-wide target ids are numbered in (rank, index) order.
//   - ParseClass accepts any group count 1-65534 (RP_3G170), not only DAOS's named ones,
//     so the class of a generated OID prints and parses back; it also ignores case and an
//     OC_ prefix.
//   - EC cell rotation within a group (layout version ≥ 1) belongs to the object layer
//     and is not here.
package placement
