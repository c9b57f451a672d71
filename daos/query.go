package daos

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/placement"
	"github.com/godaos/godaos/internal/proto/enginepb"
)

// CondFlags are DAOS's conditional-operation flags (DAOS_COND_*), given to
// UpdateCond, FetchCond and the Punch*Cond calls. A condition is checked on
// the target that holds the dkey, atomically with the operation there.
type CondFlags uint32

// DAOS's DAOS_COND_* values.
const (
	CondPunch      CondFlags = 1 << 0 // punch only what exists, else DER_NONEXIST
	CondDkeyInsert CondFlags = 1 << 1 // update only if the dkey does not exist, else DER_EXIST
	CondDkeyUpdate CondFlags = 1 << 2 // update only if the dkey exists, else DER_NONEXIST
	CondDkeyFetch  CondFlags = 1 << 3 // fetch fails with DER_NONEXIST if the dkey does not exist
	CondAkeyInsert CondFlags = 1 << 4 // update only if the IODs' akeys do not exist, else DER_EXIST
	CondAkeyUpdate CondFlags = 1 << 5 // update only if the IODs' akeys exist, else DER_NONEXIST
	CondAkeyFetch  CondFlags = 1 << 6 // fetch fails with DER_NONEXIST if an IOD's akey does not exist
	CondPerAkey    CondFlags = 1 << 7 // the akey conditions come from each IOD's Flags instead
)

const (
	condUpdate = CondDkeyInsert | CondDkeyUpdate | CondAkeyInsert | CondAkeyUpdate | CondPerAkey
	condFetch  = CondDkeyFetch | CondAkeyFetch | CondPerAkey
)

// checkCond refuses flags that do not apply to an operation (op names it),
// and insert together with update, which no key can satisfy.
func checkCond(oid OID, op string, flags, allowed CondFlags) error {
	if bad := flags &^ allowed; bad != 0 {
		return daoserr.Newf(daoserr.Inval, "%s object %s: condition flags %#x do not apply", op, oid, uint32(bad)).
			WithResolution("an update takes CondDkey/AkeyInsert|Update and CondPerAkey, a fetch CondDkey/AkeyFetch and CondPerAkey, a punch CondPunch")
	}
	if flags&CondDkeyInsert != 0 && flags&CondDkeyUpdate != 0 || flags&CondAkeyInsert != 0 && flags&CondAkeyUpdate != 0 {
		return daoserr.Newf(daoserr.Inval, "%s object %s: insert and update conditions together", op, oid).
			WithResolution("give one of them: insert requires the key to be absent, update to be present")
	}
	return nil
}

// MaxKeySize is the largest dkey or akey, as the engines' VOS allows; longer
// keys are refused with DER_KEY2BIG before anything is sent.
const MaxKeySize = 64 << 10

func checkKey(oid OID, what string, k []byte) error {
	if len(k) == 0 {
		return daoserr.Newf(daoserr.Inval, "object %s: empty %s", oid, what)
	}
	if len(k) > MaxKeySize {
		return daoserr.Newf(daoserr.Key2Big, "object %s: %s of %d bytes, limit %d", oid, what, len(k), MaxKeySize).
			WithResolution("use a shorter key")
	}
	return nil
}

// QueryFlags select what QueryKey returns (DAOS_GET_*).
type QueryFlags uint32

// DAOS's DAOS_GET_* values.
const (
	GetDkey QueryFlags = 1 << 0
	GetAkey QueryFlags = 1 << 1
	GetRecx QueryFlags = 1 << 2
	GetMax  QueryFlags = 1 << 3
	GetMin  QueryFlags = 1 << 4
)

// QueryResult is what QueryKey found: the dkey, the akey and the extent, as
// far as the query asked (a level not asked for echoes the key given).
type QueryResult struct {
	Dkey, Akey []byte
	Recx       Recx
}

// QueryKey returns the greatest (GetMax) or least (GetMin) dkey (GetDkey),
// akey (GetAkey) and/or data extent (GetRecx) of the object that exists now,
// as daos_obj_query_key does. Levels not asked for are named: dkey when
// GetDkey is not set, akey when GetRecx is set without GetAkey. A dkey query
// asks every shard of the object and keeps the greatest (least) answer; the
// deeper levels are those of the dkey found, and a dkey without the akey or
// extent asked for is passed over. Integer dkeys (DKEY_UINT64 and array
// objects) order by value; other keys order bytewise (DAOS answers dkey and
// akey queries only for integer keys). DER_NONEXIST when nothing matches.
func (o *Obj) QueryKey(ctx context.Context, flags QueryFlags, dkey, akey []byte) (QueryResult, error) {
	if err := o.checkQuery(flags, dkey, akey); err != nil {
		return QueryResult{}, err
	}
	res, err := o.queryKey(ctx, flags, dkey, akey)
	if err == nil && o.isEC() && flags&GetRecx != 0 && res.Recx.Nr > 0 {
		// found on the first parity shard, in its index space: the extent
		// comes from the data shards
		return o.ecQueryRecx(ctx, flags, res, dkey, akey)
	}
	return res, err
}

func (o *Obj) queryKey(ctx context.Context, flags QueryFlags, dkey, akey []byte) (QueryResult, error) {
	req := &enginepb.ObjQueryReq{Pool: o.pool, Cont: o.contID, Oid: o.oid, Flags: uint32(flags), Dkey: dkey, Akey: akey}
	if flags&GetDkey == 0 {
		var rep enginepb.ObjQueryRep
		if err := o.readDkey(ctx, dkey, enginepb.OpObjQuery, req, &rep); err != nil {
			return QueryResult{}, err
		}
		return queryResult(&rep), nil
	}
	reps := make([]*enginepb.ObjQueryRep, o.groups())
	err := forEach(ctx, o.groups(), func(ctx context.Context, g int) error {
		var rep enginepb.ObjQueryRep
		err := o.readGroup(ctx, g, 0, enginepb.OpObjQuery, req, &rep)
		if daoserr.Is(err, daoserr.Nonexist) {
			return nil // nothing on this shard
		}
		reps[g] = &rep
		return err
	})
	if err != nil {
		return QueryResult{}, err
	}
	var best *enginepb.ObjQueryRep
	for _, r := range reps {
		if r == nil {
			continue
		}
		c := 0
		if best != nil {
			c = compareDkeys(o.OID.Type(), r.Dkey, best.Dkey)
		}
		if best == nil || flags&GetMax != 0 && c > 0 || flags&GetMin != 0 && c < 0 {
			best = r
		}
	}
	if best == nil {
		return QueryResult{}, daoserr.Newf(daoserr.Nonexist, "query object %s: none of its %d shards holds what was asked", o.OID, o.groups())
	}
	return queryResult(best), nil
}

func (o *Obj) checkQuery(flags QueryFlags, dkey, akey []byte) error {
	const all = GetDkey | GetAkey | GetRecx | GetMax | GetMin
	switch {
	case flags&^all != 0:
		return daoserr.Newf(daoserr.Inval, "query object %s: unknown flags %#x", o.OID, uint32(flags&^all))
	case flags&(GetMax|GetMin) == 0 || flags&GetMax != 0 && flags&GetMin != 0:
		return daoserr.Newf(daoserr.Inval, "query object %s: give exactly one of GetMax and GetMin", o.OID)
	case flags&(GetDkey|GetAkey|GetRecx) == 0:
		return daoserr.Newf(daoserr.Inval, "query object %s: ask for a dkey, an akey and/or an extent (GetDkey, GetAkey, GetRecx)", o.OID)
	}
	if flags&GetDkey == 0 {
		if err := checkKey(o.OID, "dkey", dkey); err != nil {
			return daoserr.Context(err, "query without GetDkey names the dkey")
		}
	}
	if flags&GetRecx != 0 && flags&GetAkey == 0 {
		if err := checkKey(o.OID, "akey", akey); err != nil {
			return daoserr.Context(err, "query of extents without GetAkey names the akey")
		}
	}
	return nil
}

func queryResult(r *enginepb.ObjQueryRep) QueryResult {
	return QueryResult{Dkey: r.Dkey, Akey: r.Akey, Recx: Recx{Idx: r.Recx.GetIdx(), Nr: r.Recx.GetNr()}}
}

// compareDkeys orders dkeys as the engines do: integer dkeys (8 bytes,
// little-endian) by value and before keys of other lengths; other keys
// bytewise.
func compareDkeys(t OType, a, b []byte) int {
	if t.DkeyUint64() {
		ai, bi := len(a) == 8, len(b) == 8
		switch {
		case ai && bi:
			x, y := binary.LittleEndian.Uint64(a), binary.LittleEndian.Uint64(b)
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		case ai:
			return -1
		case bi:
			return 1
		}
	}
	return bytes.Compare(a, b)
}

// RecxEpoch is a data extent with the epoch it was written at (an entry of
// daos_obj_list_recx's recxs and eprs).
type RecxEpoch struct {
	Recx
	Epoch uint64
}

// ListRecx returns up to max visible data extents of the array akey under
// dkey, in index order after anchor, with the akey's record size (0 when it
// holds no array), and moves anchor on. Holes and punched ranges are left
// out; adjacent extents written at the same epoch come back as one.
func (o *Obj) ListRecx(ctx context.Context, dkey, akey []byte, anchor *Anchor, max int) ([]RecxEpoch, uint64, error) {
	if err := o.checkList(anchor, max); err != nil {
		return nil, 0, err
	}
	if err := checkKey(o.OID, "dkey", dkey); err != nil {
		return nil, 0, err
	}
	if err := checkKey(o.OID, "akey", akey); err != nil {
		return nil, 0, err
	}
	var out []RecxEpoch
	var rsize uint64
	for !anchor.EOF && len(out) < max {
		req := &enginepb.ObjListRecxReq{Pool: o.pool, Cont: o.contID, Oid: o.oid, Dkey: dkey, Akey: akey, Anchor: anchor.key, Max: uint32(max - len(out))}
		var rep enginepb.ObjListRecxRep
		if err := o.readDkey(ctx, dkey, enginepb.OpObjListRecx, req, &rep); err != nil {
			return out, rsize, err
		}
		for _, x := range rep.Recxs {
			out = append(out, RecxEpoch{Recx: Recx{Idx: x.Idx, Nr: x.Nr}, Epoch: x.Epoch})
		}
		if rep.RecSize != 0 {
			rsize = rep.RecSize
		}
		if len(rep.Anchor) > 0 {
			anchor.key = rep.Anchor
		}
		anchor.EOF = rep.Eof
	}
	return out, rsize, nil
}

func (o *Obj) checkList(anchor *Anchor, max int) error {
	if anchor == nil || max < 1 {
		return daoserr.Newf(daoserr.Inval, "list in object %s: anchor %v, max %d", o.OID, anchor, max).
			WithResolution("pass a zero Anchor to start and a max of at least 1")
	}
	return nil
}

// ListObjects returns up to max IDs of objects that hold data in the
// container, in OID order after anchor, and moves anchor on (as `daos
// container list-objects`). Every serving target of the pool is asked for
// its objects after the anchor; an object with shards on several targets is
// reported once. Objects whose shards are all on targets that are down are
// not listed until rebuild has moved them.
//
// The anchor is the last OID returned, so listing needs no state between
// calls: each call merges the targets' lists up to the least last OID among
// the targets that have more.
func (c *Cont) ListObjects(ctx context.Context, anchor *Anchor, max int) ([]OID, error) {
	if anchor == nil || max < 1 {
		return nil, daoserr.Newf(daoserr.Inval, "list objects of container %s: anchor %v, max %d", c.Info.GetLabel(), anchor, max).
			WithResolution("pass a zero Anchor to start and a max of at least 1")
	}
	if anchor.EOF {
		return nil, nil
	}
	pm, err := c.Pool.poolMap()
	if err != nil {
		return nil, err
	}
	var tgts []placement.Target
	for _, t := range pm.Targets() {
		if t.State.Placed() {
			tgts = append(tgts, t)
		}
	}
	page := min(max, listObjsMax)
	reps := make([]*enginepb.ObjListObjsRep, len(tgts))
	pool, cont := uuidBytes(c.Pool.Info.Uuid), uuidBytes(c.Info.Uuid)
	err = forEach(ctx, len(tgts), func(ctx context.Context, i int) error {
		req := &enginepb.ObjListObjsReq{Pool: pool, Cont: cont, Anchor: anchor.key, Max: uint32(page)}
		var rep enginepb.ObjListObjsRep
		if err := c.send(ctx, dest{placement.Shard{Rank: tgts[i].Rank, Target: tgts[i].Index}, pm.Version()}, enginepb.OpObjListObjs, req, &rep); err != nil {
			return daoserr.Context(err, "list objects of container %s", c.Info.GetLabel())
		}
		if !rep.Eof && len(rep.Oids) == 0 {
			return daoserr.Newf(daoserr.Proto, "list objects of container %s: rank %d target %d has more but returned none", c.Info.GetLabel(), tgts[i].Rank, tgts[i].Index)
		}
		reps[i] = &rep
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Everything up to bound is known: every target that has more has
	// returned all its objects up to its last one.
	var bound *OID
	var all []OID
	for _, r := range reps {
		for _, x := range r.Oids {
			all = append(all, OID{Hi: x.Hi, Lo: x.Lo})
		}
		if !r.Eof {
			last := all[len(all)-1]
			if bound == nil || oidLess(last, *bound) {
				bound = &last
			}
		}
	}
	slices.SortFunc(all, func(a, b OID) int {
		switch {
		case oidLess(a, b):
			return -1
		case oidLess(b, a):
			return 1
		}
		return 0
	})
	all = slices.Compact(all)
	n := len(all)
	if bound != nil {
		n, _ = slices.BinarySearchFunc(all, *bound, func(a, b OID) int {
			if oidLess(a, b) {
				return -1
			}
			if a == b {
				return 0
			}
			return 1
		})
		n++ // bound itself is in the list
	}
	out := all[:min(n, max)]
	anchor.EOF = bound == nil && len(out) == len(all)
	if len(out) > 0 {
		last := out[len(out)-1]
		anchor.key = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, last.Hi), last.Lo)
	}
	return out, nil
}

// listObjsMax is the page asked of each target by ListObjects (the engines
// return at most 1024 entries a reply).
const listObjsMax = 1024

func oidLess(a, b OID) bool { return a.Hi < b.Hi || a.Hi == b.Hi && a.Lo < b.Lo }

// maxInFlight bounds the requests one call has in flight at once.
const maxInFlight = 16

// forEach runs fn(0..n-1) concurrently, at most maxInFlight at a time, and
// returns the first error; once one fails the others' context is canceled
// and no more are started.
func forEach(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	if n == 1 {
		return fn(ctx, 0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		once    sync.Once
		first   error
		started int
	)
	sem := make(chan struct{}, maxInFlight)
	for ; started < n; started++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}(started)
	}
	wg.Wait()
	if first == nil && started < n { // the caller's context ended before all started
		code := daoserr.Canceled
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			code = daoserr.TimedOut
		}
		first = daoserr.Wrap(code, ctx.Err(), "%d of %d requests not sent", n-started, n)
	}
	return first
}
