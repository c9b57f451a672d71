package daos

import (
	"context"
	"time"

	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/proto/enginepb"
)

// Snapshot is a container snapshot: its epoch names it.
type Snapshot struct {
	Epoch   uint64
	Name    string
	Created time.Time
}

func (c *Cont) snapCall(ctx context.Context, op, name string, epoch uint64) (*ctlpb.ContSnapResp, error) {
	cred, err := c.credential(ctx)
	if err != nil {
		return nil, err
	}
	var r ctlpb.ContSnapResp
	err = c.Pool.c.svcCall(ctx, enginepb.OpSvcContSnap, &ctlpb.ContSnapReq{Pool: c.Pool.Info.Uuid, Cont: c.Info.Uuid, Cred: cred,
		Op: op, Name: name, Epoch: epoch}, &r)
	return &r, err
}

// CreateSnap snapshots the container (daos_cont_create_snap; name may be
// empty) and returns the snapshot's epoch: every update acknowledged before
// the call is in it, none made after it returns.
func (c *Cont) CreateSnap(ctx context.Context, name string) (uint64, error) {
	r, err := c.snapCall(ctx, "create", name, 0)
	return r.GetEpoch(), err
}

// ListSnaps lists the container's snapshots, oldest first.
func (c *Cont) ListSnaps(ctx context.Context) ([]Snapshot, error) {
	r, err := c.snapCall(ctx, "list", "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]Snapshot, len(r.Snaps))
	for i, s := range r.Snaps {
		out[i] = Snapshot{Epoch: s.Epoch, Name: s.Name, Created: time.Unix(s.Created, 0)}
	}
	return out, nil
}

// DestroySnap destroys the snapshot at epoch (or, with epoch 0, the one
// named name); what only it kept becomes aggregation's to reclaim.
func (c *Cont) DestroySnap(ctx context.Context, epoch uint64, name string) error {
	_, err := c.snapCall(ctx, "destroy", name, epoch)
	return err
}

// Rollback returns the container to a snapshot (by epoch, or by name with
// epoch 0): everything written after it is discarded, with the snapshots
// newer than it. Writers should be quiet meanwhile: a write racing with the
// rollback may survive it.
func (c *Cont) Rollback(ctx context.Context, epoch uint64, name string) (uint64, error) {
	r, err := c.snapCall(ctx, "rollback", name, epoch)
	return r.GetEpoch(), err
}
