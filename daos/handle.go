package daos

import (
	"context"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/authpb"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/proto/enginepb"
)

// Disconnect closes the pool handle: its containers' handles close with it,
// and every later call through them fails with DER_NO_HDL.
func (p *Pool) Disconnect(ctx context.Context) error {
	if p.disconnected.Swap(true) {
		return p.closedErr()
	}
	return nil
}

func (p *Pool) closedErr() error {
	return daoserr.Newf(daoserr.NoHdl, "pool %s: handle %s is disconnected", p.Info.GetLabel(), p.Handle).
		WithResolution("connect to the pool again")
}

// credential is the caller's credential for a call through the pool handle.
func (p *Pool) credential(ctx context.Context) (*authpb.Credential, error) {
	if p.disconnected.Load() {
		return nil, p.closedErr()
	}
	return p.c.credential(ctx)
}

// Close closes the container handle: later calls through it, and through
// the objects opened from it, fail with DER_NO_HDL. (Engines go on accepting
// its capability until it expires, at most capability.TTL: a closed handle
// is refused here, by the library that closed it.)
func (c *Cont) Close(ctx context.Context) error {
	if c.closed.Swap(true) {
		return c.closedErr()
	}
	return nil
}

func (c *Cont) closedErr() error {
	return daoserr.Newf(daoserr.NoHdl, "container %s/%s: handle %s is closed", c.Pool.Info.GetLabel(), c.Info.GetLabel(), c.Handle).
		WithResolution("open the container again")
}

// usable says whether calls may go through the handle.
func (c *Cont) usable() error {
	if c.closed.Load() {
		return c.closedErr()
	}
	if c.Pool.disconnected.Load() {
		return c.Pool.closedErr()
	}
	return nil
}

func (c *Cont) credential(ctx context.Context) (*authpb.Credential, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	return c.Pool.c.credential(ctx)
}

// refreshCap reopens the container after an engine found the handle's
// capability expired (stale is the capability that was refused: when another
// goroutine has already replaced it, there is nothing to do).
func (c *Cont) refreshCap(ctx context.Context, stale []byte) error {
	c.reopen.Lock()
	defer c.reopen.Unlock()
	if cur := c.capBytes(); string(cur) != string(stale) {
		return nil
	}
	r, err := c.Pool.contCallReq(ctx, enginepb.OpSvcContOpen, &ctlpb.ContReq{Pool: c.Pool.Info.Uuid, Cont: c.Info.GetUuid(),
		Flags: uint32(c.mode), Handle: c.Handle})
	if err != nil {
		return daoserr.Context(err, "reopen container %s/%s (its capability expired)", c.Pool.Info.GetLabel(), c.Info.GetLabel())
	}
	c.capab.Store(&r.Cap)
	return nil
}

// capField is the field number of the "cap" field of object requests
// (enginepb: bytes cap = 15).
const capField = 15

// mapVersionField is the field number of the "map_version" field of object
// requests (enginepb: uint32 map_version = 14).
const mapVersionField = 14

// withCap encodes m with b as its cap field and ver as its map_version,
// without touching m (requests are shared by the goroutines that send them
// to several shards): the fields are appended to the encoding, and a later
// occurrence of a field wins when decoding, which also overrides any m may
// carry.
func withCap(m proto.Message, b []byte, ver uint32) ([]byte, error) {
	hdr, err := proto.Marshal(m)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Misc, err, "encode request")
	}
	fields := m.ProtoReflect().Descriptor().Fields()
	fd := fields.ByNumber(capField)
	if fd == nil || fd.Name() != "cap" || fd.Kind() != protoreflect.BytesKind {
		return hdr, nil // not an object request: nothing to attach
	}
	hdr = protowire.AppendTag(hdr, capField, protowire.BytesType)
	hdr = protowire.AppendBytes(hdr, b)
	if fv := fields.ByNumber(mapVersionField); ver != 0 && fv != nil && fv.Name() == "map_version" && fv.Kind() == protoreflect.Uint32Kind {
		hdr = protowire.AppendTag(hdr, mapVersionField, protowire.VarintType)
		hdr = protowire.AppendVarint(hdr, uint64(ver))
	}
	return hdr, nil
}
