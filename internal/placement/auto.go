package placement

import (
	"github.com/godaos/godaos/internal/daoserr"
)

// Hints are DAOS's object class hints (DAOS_OCH_*): a redundancy preference and a
// sharding preference, used only when no class is given.
type Hints uint16

// Hint bits, with DAOS's values (daos_obj.h).
const (
	HintRddDef  Hints = 1 << 0 // redundancy from the container's rd_fac
	HintRddNo   Hints = 1 << 1 // no redundancy
	HintRddRP   Hints = 1 << 2 // prefer replication
	HintRddEC   Hints = 1 << 3 // prefer erasure code
	HintShdDef  Hints = 1 << 4 // as many groups as possible for arrays and flat KVs, 1 for others
	HintShdTiny Hints = 1 << 5 // 1 group
	HintShdReg  Hints = 1 << 6 // max(128, 25% of targets) groups
	HintShdHi   Hints = 1 << 7 // max(256, 50%)
	HintShdExt  Hints = 1 << 8 // max(1024, 80%)
	HintShdMax  Hints = 1 << 9 // as many as possible

	hintRddMask Hints = 0xf
	hintShdMask Hints = 0x3f << 4
)

// AutoClass is DAOS's default class choice for daos_obj_generate_oid with class 0
// (dc_set_oclass in src/object/obj_class.c):
//
//	rd_fac 0: S (RP_2 with the RP hint and 2+ domains; EC_nP1 with the EC hint)
//	rd_fac 1: arrays (or the EC hint) with 3+ domains: EC_16P1 (18+ domains), EC_8P1 (10+),
//	          EC_4P1 (6+), EC_2P1; everything else RP_2
//	rd_fac 2: arrays (or EC hint) with 4+ domains: EC_16P2 (20+), EC_8P2 (12+), EC_4P2 (8+),
//	          EC_2P2; everything else RP_3
//	rd_fac 3: RP_4            rd_fac 4: RP_5
//
// then the group count: GX for arrays and flat KVs, G1 for other types, unless a sharding
// hint says otherwise. DAOS's object README gives RP_6 for rd_fac 4; its code, which we
// follow, uses RP_5 (5 replicas survive 4 failures). HintRddNo is, as in DAOS, not
// special-cased: the container's rd_fac wins.
//
// The result may have MaxGroups; GenerateOID resolves it for the pool.
func AutoClass(rdFac int, t OType, hints Hints, pool PoolShape) (ClassID, error) {
	rdd, shd := hints&hintRddMask, hints&hintShdMask
	useEC := rdd == HintRddEC || (rdd == 0 && t.IsArray())
	d := pool.Domains
	var r Redun
	switch rdFac {
	case 0:
		switch {
		case rdd == HintRddRP && d >= 2:
			r = RP2
		case rdd == HintRddEC:
			r = pickEC(d, []int{18, 10, 6}, []Redun{RS16P1, RS8P1, RS4P1}, RS2P1)
		default:
			r = RP1
		}
	case 1:
		if useEC && d >= 3 {
			r = pickEC(d, []int{18, 10, 6}, []Redun{RS16P1, RS8P1, RS4P1}, RS2P1)
		} else {
			r = RP2
		}
	case 2:
		if useEC && d >= 4 {
			r = pickEC(d, []int{20, 12, 8}, []Redun{RS16P2, RS8P2, RS4P2}, RS2P2)
		} else {
			r = RP3
		}
	case 3:
		r = RP4
	case 4:
		r = RP5
	default:
		return 0, daoserr.Newf(daoserr.Inval, "rd_fac %d is out of range", rdFac).WithResolution("rd_fac is 0 to 4")
	}
	if gs := r.GroupSize(); gs > d {
		return 0, daoserr.Newf(daoserr.Inval, "rd_fac %d needs %s objects, whose %d shards need distinct fault domains; the pool has %d", rdFac, r, gs, d).
			WithResolution("add servers, or use a container with a lower rd_fac")
	}
	gs := r.GroupSize()
	var groups int
	switch shd {
	case 0, HintShdDef:
		groups = 1
		if t.IsArray() || t.IsKV() {
			groups = MaxGroups
		}
	case HintShdMax:
		groups = MaxGroups
	case HintShdTiny:
		groups = 1
	case HintShdReg:
		groups = max(128, pool.Targets*25/100)
	case HintShdHi:
		groups = max(256, pool.Targets*50/100)
	case HintShdExt:
		groups = max(1024, pool.Targets*80/100)
	default:
		return 0, daoserr.Newf(daoserr.Inval, "bad sharding hint %#x", uint16(shd)).WithResolution("give at most one of the DAOS_OCH_SHD_* hints")
	}
	if groups*gs > pool.Targets {
		groups = MaxGroups
	}
	return MakeClass(r, groups), nil
}

func pickEC(domains int, atLeast []int, codes []Redun, fallback Redun) Redun {
	for i, n := range atLeast {
		if domains >= n {
			return codes[i]
		}
	}
	return fallback
}

// CheckRdFac refuses a class that tolerates fewer failures than the container's rd_fac
// promises: with rd_fac 2, RP_2G1 (one failure) would lose data that the container says
// survives two failures.
func CheckRdFac(class ClassID, rdFac int) error {
	if ft := class.FaultTolerance(); ft < rdFac {
		return daoserr.Newf(daoserr.Inval, "object class %s tolerates %d failure(s), fewer than the container's rd_fac %d", class, ft, rdFac).
			WithResolution("use a class with at least %d replicas or %d parity cells (e.g. %s), or let DAOS choose the class", rdFac+1, rdFac, suggestClass(rdFac))
	}
	return nil
}

// suggest names a replicated single-group class that satisfies rdFac, for messages.
func suggestClass(rdFac int) ClassID {
	for _, r := range []Redun{RP1, RP2, RP3, RP4, RP5} {
		if r.FaultTolerance() >= rdFac {
			return MakeClass(r, 1)
		}
	}
	return MakeClass(RP6, 1)
}
