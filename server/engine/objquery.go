package engine

import (
	"context"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/rpc"
	"github.com/godaos/godaos/server/vos"
)

// Queries and listings beyond keys, each answered by one target: the greatest
// or least key or extent of an object's shard (daos_obj_query_key), an akey's
// extents (daos_obj_list_recx), and the objects with data on the target (the
// client merges every target's list).

// listMax bounds the entries of one listing reply, so that the reply's
// message header stays well inside the frame's header limit (64 KiB).
const listMax = 1024

// readEpoch is the epoch a read request asks for: 0 means the latest.
func readEpoch(e uint64) vos.Epoch {
	if e == 0 {
		return vos.EpochMax
	}
	return e
}

func (e *Engine) objQuery(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.ObjQueryReq
	p, c, release, err := e.contReq(req, &m, enginepb.CapRead)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	oid, flags := vos.OID{Hi: m.Oid.GetHi(), Lo: m.Oid.GetLo()}, vos.QueryFlags(m.Flags)
	if err := checkQuery(oid, flags, m.Dkey, m.Akey); err != nil {
		return rpc.Response{}, err
	}
	var under []byte // a dkey query reads the object's dkeys: it waits as a listing does
	if flags&vos.GetDkey == 0 {
		under = m.Dkey
	}
	tt := &e.targets[req.Target].txs
	gen, err := e.readAt(p, tt, m.Epoch, c, oid, under)
	if err != nil {
		return rpc.Response{}, err
	}
	res, err := queryKey(p, c, oid, readEpoch(m.Epoch), flags, m.Dkey, m.Akey)
	if err == nil || daoserr.Is(err, daoserr.Nonexist) {
		if rerr := readDone(tt, gen, m.Epoch, oid, under); rerr != nil {
			err = rerr
		}
	}
	if err != nil {
		return rpc.Response{}, err
	}
	hdr, err := proto.Marshal(&enginepb.ObjQueryRep{Dkey: res.Dkey, Akey: res.Akey, Recx: &enginepb.Recx{Idx: res.Recx.Idx, Nr: res.Recx.Nr}})
	return rpc.Response{Header: hdr}, err
}

const queryFlags = vos.GetDkey | vos.GetAkey | vos.GetRecx | vos.GetMax | vos.GetMin

// checkQuery refuses malformed queries before any data is looked at, so that
// the only DER_INVAL vos.QueryKey can still return is "extents asked of a
// single value" (see queryKey).
func checkQuery(oid vos.OID, f vos.QueryFlags, dkey, akey []byte) error {
	switch {
	case f&^queryFlags != 0:
		return daoserr.Newf(daoserr.Inval, "query obj %s: unknown flags %#x", oid, uint32(f&^queryFlags))
	case f&(vos.GetMax|vos.GetMin) == 0 || f&vos.GetMax != 0 && f&vos.GetMin != 0:
		return daoserr.Newf(daoserr.Inval, "query obj %s: give exactly one of max or min", oid)
	case f&(vos.GetDkey|vos.GetAkey|vos.GetRecx) == 0:
		return daoserr.Newf(daoserr.Inval, "query obj %s: ask for a dkey, an akey and/or an extent", oid)
	}
	if f&vos.GetDkey == 0 {
		if err := checkKey("dkey", dkey); err != nil {
			return daoserr.Context(err, "query obj %s", oid)
		}
	}
	if f&vos.GetRecx != 0 && f&vos.GetAkey == 0 {
		if err := checkKey("akey", akey); err != nil {
			return daoserr.Context(err, "query obj %s", oid)
		}
	}
	return nil
}

func checkKey(what string, k []byte) error {
	if len(k) == 0 {
		return daoserr.Newf(daoserr.Inval, "empty %s", what)
	}
	if len(k) > vos.MaxKeySize {
		return daoserr.Newf(daoserr.Key2Big, "%s of %d bytes, limit %d", what, len(k), vos.MaxKeySize)
	}
	return nil
}

// queryKey is vos.QueryKey with DAOS's descent (vos_obj_query_key): when the
// greatest (least) dkey holds nothing the query asks for below it — not the
// akey, or no extent in it — the next dkey down (up) is tried, and likewise
// akeys within a dkey. An akey holding a single value has no extents: a query
// for extents passes over it (DAOS arrays keep their metadata as a single
// value under dkey 0, below every chunk).
//
// The first attempt is vos.QueryKey's own, in O(log n); only when it finds
// nothing are the keys listed and tried in order, which costs O(n) in the
// rare case of trailing keys without data (e.g. an array's punched tail).
func queryKey(p *vos.Pool, c vos.UUID, oid vos.OID, epoch vos.Epoch, f vos.QueryFlags, dkey, akey []byte) (vos.QueryResult, error) {
	res, err := p.QueryKey(c, oid, epoch, f, dkey, akey)
	if err == nil || !daoserr.Is(err, daoserr.Nonexist) && !daoserr.Is(err, daoserr.Inval) {
		return res, err
	}
	var keys [][]byte
	var level vos.QueryFlags
	var lerr error
	switch {
	case f&vos.GetDkey != 0 && f&(vos.GetAkey|vos.GetRecx) != 0:
		level = vos.GetDkey
		keys, lerr = listAll(func(a *vos.Anchor) ([][]byte, error) { return p.ListDkeys(c, oid, epoch, a, 0) })
	case f&vos.GetAkey != 0 && f&vos.GetRecx != 0:
		level = vos.GetAkey
		keys, lerr = listAll(func(a *vos.Anchor) ([][]byte, error) { return p.ListAkeys(c, oid, epoch, dkey, a, 0) })
	default:
		return res, err // nothing below to descend to
	}
	if lerr != nil {
		return res, lerr
	}
	for i := range keys {
		k := keys[i]
		if f&vos.GetMax != 0 {
			k = keys[len(keys)-1-i]
		}
		d, a := dkey, akey
		if level == vos.GetDkey {
			d = k
		} else {
			a = k
		}
		r, err := queryKey(p, c, oid, epoch, f&^level, d, a)
		switch {
		case err == nil:
			return r, nil
		case !daoserr.Is(err, daoserr.Nonexist) && !daoserr.Is(err, daoserr.Inval):
			return r, err
		}
	}
	return res, daoserr.Newf(daoserr.Nonexist, "query obj %s at epoch %d: nothing of what was asked exists", oid, epoch)
}

// listAll lists every key with list, page by page.
func listAll(list func(*vos.Anchor) ([][]byte, error)) ([][]byte, error) {
	var out [][]byte
	var a vos.Anchor
	for !a.EOF {
		keys, err := list(&a)
		if err != nil {
			return nil, err
		}
		out = append(out, keys...)
	}
	return out, nil
}

func (e *Engine) objListRecx(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.ObjListRecxReq
	p, c, release, err := e.contReq(req, &m, enginepb.CapRead)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	oid := vos.OID{Hi: m.Oid.GetHi(), Lo: m.Oid.GetLo()}
	for _, k := range []struct {
		what string
		key  []byte
	}{{"dkey", m.Dkey}, {"akey", m.Akey}} {
		if err := checkKey(k.what, k.key); err != nil {
			return rpc.Response{}, daoserr.Context(err, "list extents of obj %s", oid)
		}
	}
	tt := &e.targets[req.Target].txs
	gen, err := e.readAt(p, tt, m.Epoch, c, oid, m.Dkey)
	if err != nil {
		return rpc.Response{}, err
	}
	anchor := &vos.Anchor{Key: m.Anchor}
	ents, rsize, err := p.ListRecx(c, oid, readEpoch(m.Epoch), m.Dkey, m.Akey, anchor, clampMax(m.Max))
	if err == nil {
		err = readDone(tt, gen, m.Epoch, oid, m.Dkey)
	}
	if err != nil {
		return rpc.Response{}, err
	}
	rep := &enginepb.ObjListRecxRep{RecSize: rsize, Anchor: anchor.Key, Eof: anchor.EOF}
	for _, x := range ents {
		rep.Recxs = append(rep.Recxs, &enginepb.RecxEpoch{Idx: x.Recx.Idx, Nr: x.Recx.Nr, Epoch: x.Epoch})
	}
	hdr, err := proto.Marshal(rep)
	return rpc.Response{Header: hdr}, err
}

func (e *Engine) objListObjs(ctx context.Context, req *rpc.Request) (rpc.Response, error) {
	var m enginepb.ObjListObjsReq
	p, c, release, err := e.contReq(req, &m, enginepb.CapRead)
	if err != nil {
		return rpc.Response{}, err
	}
	defer release()
	if len(m.Anchor) != 0 && len(m.Anchor) != 16 {
		return rpc.Response{}, daoserr.Newf(daoserr.Inval, "list objects of container %s: anchor of %d bytes, want 16 (an OID)", c, len(m.Anchor))
	}
	anchor := &vos.Anchor{Key: m.Anchor}
	oids, err := p.ListObjects(c, readEpoch(m.Epoch), anchor, clampMax(m.Max))
	if err != nil {
		return rpc.Response{}, err
	}
	rep := &enginepb.ObjListObjsRep{Anchor: anchor.Key, Eof: anchor.EOF}
	for _, o := range oids {
		rep.Oids = append(rep.Oids, &enginepb.OID{Hi: o.Hi, Lo: o.Lo})
	}
	hdr, err := proto.Marshal(rep)
	return rpc.Response{Header: hdr}, err
}

// clampMax is a listing's page size: what was asked, at most listMax.
func clampMax(n uint32) int {
	if n == 0 || n > listMax {
		return listMax
	}
	return int(n)
}
