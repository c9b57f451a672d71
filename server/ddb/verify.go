package ddb

import (
	"fmt"
	"io"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/vos"
)

type verifyCmd struct{}

type verifyResult struct {
	Checked int         `json:"checked"` // values re-read
	Damaged int         `json:"damaged"`
	Damage  []damageOut `json:"damage"`
	target  string      // for the summary line
}

type damageOut struct {
	Path  string `json:"path"` // the akey, as ls and rm take it
	Epoch uint64 `json:"epoch"`
	What  string `json:"what"`
}

func (c *verifyCmd) Run(e *env) error {
	return e.withPool(true, func(pool *vos.Pool) error {
		res := verifyResult{target: e.dir, Damage: []damageOut{}}
		n, err := pool.Verify(func(d vos.Damage) {
			p := vosPath{depth: depthAkey, cont: d.Cont, oid: d.OID, dkey: []byte(d.Dkey), akey: []byte(d.Akey)}
			res.Damage = append(res.Damage, damageOut{Path: p.String(), Epoch: d.Epoch, What: d.What})
		})
		if err != nil {
			return daoserr.Context(err, "verify %s", e.dir)
		}
		res.Checked, res.Damaged = n, len(res.Damage)
		if res.Damaged > 0 {
			e.exit = ExitDamage
		}
		return e.emit(&res)
	})
}

func (r *verifyResult) text(w io.Writer) error {
	for _, d := range r.Damage {
		fmt.Fprintf(w, "DAMAGE %s epoch %d: %s\n", d.Path, d.Epoch, oneLine(d.What))
	}
	if r.Damaged == 0 {
		_, err := fmt.Fprintf(w, "verified %d values in %s: no damage found\n", r.Checked, r.target)
		return err
	}
	_, err := fmt.Fprintf(w, "verified %d values in %s: %d damaged; read the data from another replica, or remove it with 'ddb %s rm PATH'\n",
		r.Checked, r.target, r.Damaged, r.target)
	return err
}
