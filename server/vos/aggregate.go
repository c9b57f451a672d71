package vos

import (
	"slices"
	"sort"

	"github.com/godaos/godaos/internal/daoserr"
)

// Aggregation merges history in [lo, hi] that no reader can tell apart any more.
//
// The read points that must keep answering exactly as before are every snapshot in
// [lo, hi] and hi itself (which stands for every epoch above it). A record with its
// epoch in [lo, hi] is dropped when it contributes nothing at any read point:
//   - a single-value version that is not the newest at any read point, or is
//     punched there;
//   - an array extent that is not on top anywhere at any read point; a hole
//     (punched range) that hides no remaining older data;
//   - a punch with nothing older beneath it.
//
// Reads at epochs in [lo, hi] that are not read points may change (that history is
// what aggregation gives up), so writes at or below hi are refused afterwards
// (DER_TX_RESTART): a late write under a dropped punch would otherwise resurface.
// Space of dropped NVMe-tier data is returned once the aggregation is durable.
//
// Partially covered extents are kept whole; their covered parts are not rewritten
// (no new allocation, so aggregation stays deterministic for log replay).

// Aggregate runs aggregation of container u over [lo, hi] keeping snapshots.
func (p *Pool) Aggregate(u UUID, lo, hi Epoch, snapshots []Epoch) error {
	if lo > hi || hi == EpochMax {
		return daoserr.Newf(daoserr.Inval, "aggregate container %s: bad epoch range [%d, %d]", u, lo, hi)
	}
	return p.submit(&op{kind: opAggregate, cont: u, lo: lo, hi: hi, snaps: slices.Clone(snapshots)})
}

// Discard removes every record of container u with an epoch in [lo, hi], as if
// those updates and punches never happened (rollback, transaction abort).
func (p *Pool) Discard(u UUID, lo, hi Epoch) error {
	if lo > hi {
		return daoserr.Newf(daoserr.Inval, "discard container %s: bad epoch range [%d, %d]", u, lo, hi)
	}
	return p.submit(&op{kind: opDiscard, cont: u, lo: lo, hi: hi})
}

func readPoints(lo, hi Epoch, snaps []Epoch) []Epoch {
	pts := []Epoch{hi}
	for _, s := range snaps {
		if s >= lo && s < hi {
			pts = append(pts, s)
		}
	}
	slices.Sort(pts)
	return slices.Compact(pts)
}

const noLimit = ^uint64(0)

func (p *Pool) aggregate(c *contNode, lo, hi Epoch, snaps []Epoch) {
	pts := readPoints(lo, hi, snaps)
	in := func(o order) bool { return o.epoch >= lo && o.epoch <= hi }
	p.pruneCont(c, func(ob *objNode, d *dkeyNode, a *akeyNode) {
		horizon := func(r Epoch) order {
			ph := maxPunch(ob.punches, r, noLimit, order{})
			ph = maxPunch(d.punches, r, noLimit, ph)
			return maxPunch(a.punches, r, noLimit, ph)
		}
		if a.kind == IODSingle {
			p.aggSingle(a, pts, horizon, in)
		} else {
			p.aggArray(a, pts, horizon, in)
		}
	}, in)
	c.aggHi = max(c.aggHi, hi)
}

func (p *Pool) aggSingle(a *akeyNode, pts []Epoch, horizon func(Epoch) order, in func(order) bool) {
	keep := make([]bool, len(a.svs))
	for _, r := range pts {
		i := sort.Search(len(a.svs), func(i int) bool { return a.svs[i].epoch > r }) - 1
		if i >= 0 && horizon(r).less(a.svs[i].order) {
			keep[i] = true
		}
	}
	out := a.svs[:0]
	for i := range a.svs {
		x := a.svs[i]
		if in(x.order) && !keep[i] {
			p.dropSV(&x)
			continue
		}
		out = append(out, x)
	}
	// a punch-value (hole) with nothing older hides nothing
	for len(out) > 0 && out[0].flags&recHole != 0 && in(out[0].order) {
		p.dropSV(&out[0])
		out = out[1:]
	}
	a.svs = slices.Clip(out)
	if len(a.svs) == 0 {
		a.svs = nil
	}
}

func (p *Pool) aggArray(a *akeyNode, pts []Epoch, horizon func(Epoch) order, in func(order) bool) {
	onTop := make(map[*exRec]bool)
	lo, hi := a.arrayBounds()
	for _, r := range pts {
		for _, f := range a.paint(lo, hi, r, noLimit, horizon(r), nil) {
			onTop[f.ext] = true
		}
	}
	drop := make([]bool, len(a.exts))
	for i := range a.exts {
		x := &a.exts[i]
		drop[i] = in(x.order) && !onTop[x]
	}
	// holes survive only if they hide some older data extent that survives
	for i := range a.exts {
		h := &a.exts[i]
		if drop[i] || h.flags&recHole == 0 || !in(h.order) {
			continue
		}
		hides := false
		for j := range a.exts {
			y := &a.exts[j]
			if !drop[j] && y.flags&recHole == 0 && y.order.less(h.order) && y.idx < h.end() && h.idx < y.end() {
				hides = true
				break
			}
		}
		drop[i] = !hides
	}
	p.dropExtents(a, drop)
}

func (p *Pool) dropExtents(a *akeyNode, drop []bool) {
	out := a.exts[:0]
	for i := range a.exts {
		x := a.exts[i]
		if drop[i] {
			p.dropExt(&x, a.rsize)
			continue
		}
		out = append(out, x)
	}
	clear(a.exts[len(out):])
	a.exts = out
	if len(a.exts) == 0 {
		a.exts = nil
	}
	a.recomputeMaxLen()
}

func (p *Pool) discard(c *contNode, lo, hi Epoch) {
	in := func(o order) bool { return o.epoch >= lo && o.epoch <= hi }
	p.pruneCont(c, func(_ *objNode, _ *dkeyNode, a *akeyNode) {
		out := a.svs[:0]
		for i := range a.svs {
			if x := a.svs[i]; in(x.order) {
				p.dropSV(&x)
			} else {
				out = append(out, x)
			}
		}
		a.svs = out
		drop := make([]bool, len(a.exts))
		for i := range a.exts {
			drop[i] = in(a.exts[i].order)
		}
		p.dropExtents(a, drop)
	}, nil)
	// punches in the range go too
	dropPunch := func(ps []order) []order {
		out := ps[:0]
		for _, o := range ps {
			if in(o) {
				p.scmUsed -= punchOverhead
			} else {
				out = append(out, o)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	p.walk(c, func(ob *objNode, d *dkeyNode, a *akeyNode) {
		switch {
		case a != nil:
			a.punches = dropPunch(a.punches)
		case d != nil:
			d.punches = dropPunch(d.punches)
		default:
			ob.punches = dropPunch(ob.punches)
		}
	})
	p.pruneEmpty(c)
}

// pruneCont runs fn on every akey, then (for aggregation, when prunable is set)
// drops punches in range with nothing older beneath them, and removes empty nodes.
func (p *Pool) pruneCont(c *contNode, fn func(*objNode, *dkeyNode, *akeyNode), prunable func(order) bool) {
	c.objs.Scan(func(ob *objNode) bool {
		obMin := order{epoch: EpochMax, seq: noLimit}
		ob.dkeys.Scan(func(d *dkeyNode) bool {
			dMin := order{epoch: EpochMax, seq: noLimit}
			for _, a := range d.akeys {
				fn(ob, d, a)
				aMin := a.oldest()
				if prunable != nil {
					a.punches = p.prunePunches(a.punches, aMin, prunable)
				}
				if len(a.punches) > 0 && a.punches[0].less(aMin) {
					aMin = a.punches[0]
				}
				if aMin.less(dMin) {
					dMin = aMin
				}
			}
			if prunable != nil {
				d.punches = p.prunePunches(d.punches, dMin, prunable)
			}
			if len(d.punches) > 0 && d.punches[0].less(dMin) {
				dMin = d.punches[0]
			}
			if dMin.less(obMin) {
				obMin = dMin
			}
			return true
		})
		if prunable != nil {
			ob.punches = p.prunePunches(ob.punches, obMin, prunable)
		}
		return true
	})
	p.pruneEmpty(c)
}

// prunePunches drops punches in range that are not newer than anything beneath.
func (p *Pool) prunePunches(ps []order, beneathMin order, in func(order) bool) []order {
	out := ps[:0]
	for _, o := range ps {
		if in(o) && !beneathMin.less(o) {
			p.scmUsed -= punchOverhead
			continue
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// oldest returns the smallest order of the akey's values, or the maximum order.
func (a *akeyNode) oldest() order {
	m := order{epoch: EpochMax, seq: noLimit}
	if len(a.svs) > 0 {
		m = a.svs[0].order
	}
	for i := range a.exts {
		if a.exts[i].order.less(m) {
			m = a.exts[i].order
		}
	}
	return m
}

// walk visits every object (d, a nil), dkey (a nil) and akey.
func (p *Pool) walk(c *contNode, fn func(*objNode, *dkeyNode, *akeyNode)) {
	c.objs.Scan(func(ob *objNode) bool {
		fn(ob, nil, nil)
		ob.dkeys.Scan(func(d *dkeyNode) bool {
			fn(ob, d, nil)
			for _, a := range d.akeys {
				fn(ob, d, a)
			}
			return true
		})
		return true
	})
}

// pruneEmpty removes akeys, dkeys and objects that hold nothing.
func (p *Pool) pruneEmpty(c *contNode) {
	var deadObjs []*objNode
	c.objs.Scan(func(ob *objNode) bool {
		var deadDkeys []*dkeyNode
		ob.dkeys.Scan(func(d *dkeyNode) bool {
			d.akeys = slices.DeleteFunc(d.akeys, func(a *akeyNode) bool { return a.empty() })
			if d.empty() {
				deadDkeys = append(deadDkeys, d)
			}
			return true
		})
		for _, d := range deadDkeys {
			ob.dkeys.Delete(d)
		}
		if ob.empty() {
			deadObjs = append(deadObjs, ob)
		}
		return true
	})
	for _, ob := range deadObjs {
		c.objs.Delete(ob)
	}
}
