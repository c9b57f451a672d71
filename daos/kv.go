package daos

import (
	"context"
	"sync/atomic"

	"github.com/godaos/godaos/internal/daoserr"
)

// KV is an open flat key-value object (DAOS's daos_kv.h). As in DAOS, each
// key is a dkey holding its value as a single value under the akey '0', so
// keys spread over the object's shards by their hash and a value is
// replaced whole. It is safe for concurrent use.
type KV struct {
	obj    *Obj
	closed atomic.Bool
}

// kvAkey is the akey of every value (DAOS's dc_kv uses the one byte '0').
var kvAkey = []byte{'0'}

// maxValue is the largest single value the engines' VOS stores
// (vos.MaxSingleValue; DER_REC2BIG above).
const maxValue = 64 << 20

// KVOpen opens the flat KV oid, of type KV_HASHED, KV_UINT64 or KV_LEXICAL
// (daos_kv_open). Nothing is read: a KV needs no creation.
func (c *Cont) KVOpen(oid OID) (*KV, error) {
	if !oid.Type().IsKV() {
		return nil, daoserr.Newf(daoserr.Inval, "open KV %s: the object is of type %s", oid, oid.Type()).
			WithResolution("generate its OID with a flat KV type, e.g. daos.OTKVHashed")
	}
	o, err := c.Obj(oid)
	if err != nil {
		return nil, err
	}
	return &KV{obj: o}, nil
}

// OID is the KV's object ID.
func (kv *KV) OID() OID { return kv.obj.OID }

// Close closes the handle; later calls through it fail with DER_NO_HDL.
func (kv *KV) Close() error {
	if kv.closed.Swap(true) {
		return kv.closedErr()
	}
	return nil
}

func (kv *KV) closedErr() error {
	return daoserr.Newf(daoserr.NoHdl, "KV %s: the handle is closed", kv.obj.OID).WithResolution("open the KV again")
}

func (kv *KV) check(key string) error {
	if kv.closed.Load() {
		return kv.closedErr()
	}
	return checkKey(kv.obj.OID, "key", []byte(key))
}

// Put sets key to val (daos_kv_put), replacing any value it had.
func (kv *KV) Put(ctx context.Context, key string, val []byte) error {
	return kv.PutCond(ctx, 0, key, val)
}

// PutCond is Put under a condition: CondDkeyInsert fails with DER_EXIST if
// key has a value, CondDkeyUpdate with DER_NONEXIST if it has none.
func (kv *KV) PutCond(ctx context.Context, flags CondFlags, key string, val []byte) error {
	if err := kv.check(key); err != nil {
		return err
	}
	if len(val) == 0 {
		return daoserr.Newf(daoserr.Inval, "put %q in KV %s: empty value", key, kv.obj.OID).
			WithResolution("store at least one byte; Remove deletes a key")
	}
	if len(val) > maxValue {
		return daoserr.Newf(daoserr.Rec2Big, "put %q in KV %s: a value of %d bytes, limit %d", key, kv.obj.OID, len(val), maxValue).
			WithResolution("store large data in an array object instead")
	}
	if flags&^(CondDkeyInsert|CondDkeyUpdate) != 0 {
		return daoserr.Newf(daoserr.Inval, "put %q in KV %s: condition flags %#x do not apply", key, kv.obj.OID, uint32(flags)).
			WithResolution("a put takes CondDkeyInsert or CondDkeyUpdate")
	}
	iod := []IOD{{Akey: kvAkey, Type: Single, Size: uint64(len(val))}}
	_, err := kv.obj.update(ctx, flags, []byte(key), iod, [][]byte{val})
	return daoserr.Context(err, "put %q in KV %s", key, kv.obj.OID)
}

// Get reads key's value into buf and returns its size: the value is
// buf[:n] (daos_kv_get). With an empty buf it only returns the size. A key
// without a value fails with DER_NONEXIST; a buf too small for the value
// fails with DER_REC2BIG, n then being the size needed.
func (kv *KV) Get(ctx context.Context, key string, buf []byte) (int, error) {
	if err := kv.check(key); err != nil {
		return 0, err
	}
	// No value is larger than maxValue: a larger buffer is not sent for,
	// the reply would not fit the transport's bulk limit.
	buf = buf[:min(len(buf), maxValue)]
	iod := []IOD{{Akey: kvAkey, Type: Single, Size: uint64(len(buf))}}
	var recv [][]byte
	if len(buf) > 0 {
		recv = [][]byte{buf}
	}
	res, err := kv.obj.fetch(ctx, 0, []byte(key), iod, recv)
	if daoserr.Is(err, daoserr.Rec2Big) {
		n, serr := kv.Get(ctx, key, nil)
		if serr != nil {
			return 0, serr
		}
		return n, daoserr.Newf(daoserr.Rec2Big, "get %q from KV %s: the value is %d bytes, the buffer %d", key, kv.obj.OID, n, len(buf)).
			WithResolution("pass a buffer of at least %d bytes", n)
	}
	if err != nil {
		return 0, daoserr.Context(err, "get %q from KV %s", key, kv.obj.OID)
	}
	if len(res) != 1 || res[0].Size == 0 {
		return 0, daoserr.Newf(daoserr.Nonexist, "get %q from KV %s: no such key", key, kv.obj.OID)
	}
	return int(res[0].Size), nil
}

// Remove deletes key (daos_kv_remove); removing a key without a value does
// nothing.
func (kv *KV) Remove(ctx context.Context, key string) error { return kv.RemoveCond(ctx, 0, key) }

// RemoveCond is Remove under a condition: CondPunch fails with DER_NONEXIST
// if key has no value.
func (kv *KV) RemoveCond(ctx context.Context, flags CondFlags, key string) error {
	if err := kv.check(key); err != nil {
		return err
	}
	err := kv.obj.PunchDkeysCond(ctx, flags, [][]byte{[]byte(key)})
	return daoserr.Context(err, "remove %q from KV %s", key, kv.obj.OID)
}

// List returns up to max keys after anchor and moves anchor on (daos_kv_list):
// call again with the same anchor until anchor.EOF. Keys come shard by
// shard, in each shard's key order.
func (kv *KV) List(ctx context.Context, anchor *Anchor, max int) ([]string, error) {
	if kv.closed.Load() {
		return nil, kv.closedErr()
	}
	if err := kv.obj.checkList(anchor, max); err != nil {
		return nil, err
	}
	keys, err := kv.obj.ListDkeys(ctx, anchor, max)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(k)
	}
	return out, daoserr.Context(err, "list KV %s", kv.obj.OID)
}

// Destroy removes every key (daos_kv_destroy punches the object); the
// handle stays open.
func (kv *KV) Destroy(ctx context.Context) error {
	if kv.closed.Load() {
		return kv.closedErr()
	}
	return daoserr.Context(kv.obj.Punch(ctx), "destroy KV %s", kv.obj.OID)
}
