package ddb

import (
	"fmt"
	"io"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/vos"
)

type rmCmd struct {
	Path  string `arg:"" help:"Container, object, dkey or akey to delete: /CONT_UUID[/OID[/DKEY[/AKEY]]]."`
	Force bool   `short:"f" help:"Delete even if nothing is visible at the latest epoch (e.g. only punched history is left); a path with no history at all is then a no-op."`
}

type rmResult struct {
	Removed string `json:"removed"` // path
	Kind    string `json:"kind"`
}

func (c *rmCmd) Run(e *env) error {
	p, err := parsePath(c.Path)
	if err != nil {
		return err
	}
	if p.depth == depthTarget {
		return daoserr.Newf(daoserr.BadPath, "rm: refusing to delete the whole target; give a container, object, dkey or akey path (reformat the target to start over)")
	}
	return e.withPool(false, func(pool *vos.Pool) error {
		// vos destroys of a missing object or key succeed silently, so check
		// first: a mistyped path must fail, not report a removal.
		if !c.Force || p.depth == depthCont {
			l := lister{pool: pool, epoch: vos.EpochMax}
			if err := l.checkExists(p); err != nil {
				if daoserr.Is(err, daoserr.Nonexist) && p.depth != depthCont && p.depth != depthAkey {
					return daoserr.Context(err, "rm (--force deletes punched-only history too)")
				}
				return daoserr.Context(err, "rm")
			}
		}
		if err := destroy(pool, p); err != nil {
			return daoserr.Context(err, "rm %s", p)
		}
		return e.emit(&rmResult{Removed: p.String(), Kind: p.depth.String()})
	})
}

// destroy removes the node p names with all its history.
func destroy(pool *vos.Pool, p vosPath) error {
	switch p.depth {
	case depthCont:
		return pool.DestroyContainer(p.cont)
	case depthObj:
		return pool.DestroyObject(p.cont, p.oid)
	case depthDkey:
		return pool.DestroyKey(p.cont, p.oid, p.dkey, nil)
	case depthAkey:
		return pool.DestroyKey(p.cont, p.oid, p.dkey, p.akey)
	}
	return nil
}

func (r *rmResult) text(w io.Writer) error {
	_, err := fmt.Fprintf(w, "removed %s %s\n", r.Kind, r.Removed)
	return err
}
