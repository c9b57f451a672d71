package daoscmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/godaos/godaos/daos/mover"
	"github.com/godaos/godaos/internal/units"
)

// The data mover: daos fs copy (DAOS's daos filesystem copy) and daos cont
// clone, over daos/mover.

type fsCopyCmd struct {
	Src     string `required:"" placeholder:"PATH|daos://POOL/CONT[/PATH]" help:"What to copy: a local path, daos://POOL/CONT[/PATH], or a path in a UNS directory. A directory is copied into the destination under its name; end it with / to copy its contents (a container's root is always its contents)."`
	Dst     string `required:"" placeholder:"PATH|daos://POOL/CONT[/PATH]" help:"Where to: a local path, daos://POOL/CONT[/PATH] (the container must exist), or a path in a UNS directory. Missing directories are made."`
	Verify  bool   `help:"After copying, compare the crc32c of every file on both sides; fail if any differs."`
	Force   bool   `help:"Copy every file again, even those whose copy already has the same size and mtime (which are skipped otherwise)."`
	Workers int    `default:"16" help:"Files and pieces of files copied at once."`
}

type contCloneCmd struct {
	Src     string `required:"" placeholder:"daos://POOL/CONT" help:"The container to clone (or a UNS directory)."`
	Dst     string `required:"" placeholder:"daos://POOL[/CONT]" help:"The pool of the new container, and its label (made up if not given); it must not exist."`
	Workers int    `default:"16" help:"Objects and dkeys copied at once."`
}

func (t *tool) fsCopy(ctx context.Context, c fsCopyCmd) error {
	src, err := mover.ParseEndpoint(c.Src)
	if err != nil {
		return err
	}
	dst, err := mover.ParseEndpoint(c.Dst)
	if err != nil {
		return err
	}
	opts := mover.Options{Client: t.client, Workers: c.Workers, Force: c.Force, Verify: c.Verify}
	if !t.json {
		opts.Progress = mover.ProgressTo(os.Stderr)
	}
	st, err := mover.Copy(ctx, src, dst, opts)
	if err != nil {
		if !t.json && (st.Files > 0 || st.Skipped > 0) {
			st.Summary(t.out, c.Verify) // what was done, before the error
		}
		return err
	}
	return t.show(st, func(w io.Writer) { st.Summary(w, c.Verify) })
}

func (t *tool) contClone(ctx context.Context, c contCloneCmd) error {
	src, err := mover.ParseEndpoint(c.Src)
	if err != nil {
		return err
	}
	dst, err := mover.ParseEndpoint(c.Dst)
	if err != nil {
		return err
	}
	opts := mover.Options{Client: t.client, Workers: c.Workers}
	if !t.json {
		opts.Progress = mover.ProgressTo(os.Stderr)
	}
	st, err := mover.Clone(ctx, src, dst, opts)
	if err != nil {
		return err
	}
	return t.show(st, func(w io.Writer) {
		fmt.Fprintf(w, "Successfully created container %s\n  Container UUID : %s\n  Container Label: %s\n  Container Type : %s\n", st.Cont, st.UUID, st.Cont, st.Type)
		fmt.Fprintf(w, "Successfully copied to destination container %s/%s: %d objects, %d dkeys, %s in %s\n", st.Pool, st.Cont, st.Objects, st.Dkeys,
			units.Human(uint64(st.Bytes)), st.Elapsed.Round(time.Millisecond))
	})
}
