package daoscmd

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/internal/cli"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/ctlpb"
)

// Container snapshots: daos cont create-snap | list-snaps | destroy-snap |
// rollback, as DAOS's daos tool has them.

type snapCreateCmd struct {
	Pool string `arg:"" help:"Pool label or UUID."`
	Cont string `arg:"" help:"Container label or UUID."`
	Snap string `short:"s" name:"snap" help:"Name the snapshot."`
}

type snapNameCmd struct {
	Pool  string `arg:"" help:"Pool label or UUID."`
	Cont  string `arg:"" help:"Container label or UUID."`
	Snap  string `short:"s" name:"snap" help:"The snapshot's name."`
	Epoch string `short:"e" name:"epc" help:"The snapshot's epoch (decimal or 0x hex)."`
}

// target is the snapshot the flags name: an epoch, or a name.
func (c snapNameCmd) target() (uint64, string, error) {
	if (c.Epoch == "") == (c.Snap == "") {
		return 0, "", daoserr.New(daoserr.Inval, "name the snapshot with --snap NAME or --epc EPOCH (one of them)").
			WithResolution("list the snapshots: daos cont list-snaps POOL CONT")
	}
	if c.Epoch == "" {
		return 0, c.Snap, nil
	}
	e, err := strconv.ParseUint(c.Epoch, 0, 64)
	if err != nil || e == 0 {
		return 0, "", daoserr.Newf(daoserr.Inval, "--epc %q is not an epoch", c.Epoch).WithResolution("give it as daos cont list-snaps prints it, e.g. 0x1879a5b2c0040000")
	}
	return e, "", nil
}

func (t *tool) openContMode(ctx context.Context, pool, cont string, mode ctlpb.AccessFlags) (*daos.Cont, error) {
	p, err := t.connect(ctx, pool, daos.RO)
	if err != nil {
		return nil, err
	}
	return p.ContOpen(ctx, cont, mode)
}

func (t *tool) snapCreate(ctx context.Context, c snapCreateCmd) error {
	h, err := t.openContMode(ctx, c.Pool, c.Cont, daos.RW)
	if err != nil {
		return err
	}
	e, err := h.CreateSnap(ctx, c.Snap)
	if err != nil {
		return daoserr.Context(err, "snapshot container %s", c.Cont)
	}
	return t.show(map[string]any{"epoch": e, "name": c.Snap}, func(w io.Writer) {
		fmt.Fprintf(w, "snapshot/epoch %#x has been created\n", e)
	})
}

func (t *tool) snapList(ctx context.Context, c contArgs) error {
	h, err := t.openContMode(ctx, c.Pool, c.Cont, daos.RO)
	if err != nil {
		return err
	}
	snaps, err := h.ListSnaps(ctx)
	if err != nil {
		return daoserr.Context(err, "list snapshots of container %s", c.Cont)
	}
	out := []map[string]any{}
	var rows [][]string
	for _, s := range snaps {
		out = append(out, map[string]any{"epoch": s.Epoch, "name": s.Name, "created": s.Created.UTC().Format(time.RFC3339)})
		rows = append(rows, []string{fmt.Sprintf("%#x", s.Epoch), s.Name, s.Created.Format("2006-01-02 15:04:05")})
	}
	return t.show(out, func(w io.Writer) {
		if len(rows) == 0 {
			fmt.Fprintln(w, "No snapshots.")
			return
		}
		cli.Table(w, "Epoch\tName\tCreated", rows)
	})
}

// snapTarget opens the container read-write and names the snapshot the
// flags give.
func (t *tool) snapTarget(ctx context.Context, c snapNameCmd) (*daos.Cont, uint64, string, error) {
	e, name, err := c.target()
	if err != nil {
		return nil, 0, "", err
	}
	h, err := t.openContMode(ctx, c.Pool, c.Cont, daos.RW)
	return h, e, name, err
}

func (t *tool) snapDestroy(ctx context.Context, c snapNameCmd) error {
	h, e, name, err := t.snapTarget(ctx, c)
	if err != nil {
		return err
	}
	if err := h.DestroySnap(ctx, e, name); err != nil {
		return daoserr.Context(err, "container %s", c.Cont)
	}
	return t.show(map[string]any{"epoch": e, "name": name}, func(w io.Writer) {
		fmt.Fprintln(w, "snapshot destroyed")
	})
}

func (t *tool) snapRollback(ctx context.Context, c snapNameCmd) error {
	h, e, name, err := t.snapTarget(ctx, c)
	if err != nil {
		return err
	}
	at, err := h.Rollback(ctx, e, name)
	if err != nil {
		return daoserr.Context(err, "container %s", c.Cont)
	}
	return t.show(map[string]any{"epoch": at}, func(w io.Writer) {
		fmt.Fprintf(w, "container %s rolled back to snapshot %#x\n", c.Cont, at)
	})
}
