package vos

// LatestEpoch returns the newest epoch of anything durable that changed what
// a reader of object oid's dkey sees — an update or punch of the dkey, of one
// of its akeys or of the object — or, with dkey empty, of anything in the
// object. 0 when there is nothing. Transactions check their reads and writes
// with it: a change newer than the epoch they read at is a conflict.
func (p *Pool) LatestEpoch(u UUID, oid OID, dkey []byte) (Epoch, error) {
	c, lim, err := p.readCont(u, "latest epoch")
	if err != nil {
		return 0, err
	}
	defer p.mu.RUnlock()
	ob := c.lookupObj(oid)
	if ob == nil {
		return 0, nil
	}
	var latest Epoch
	note := func(o order) {
		if o.seq <= lim && o.epoch > latest {
			latest = o.epoch
		}
	}
	for _, o := range ob.punches {
		note(o)
	}
	visit := func(d *dkeyNode) bool {
		for _, o := range d.punches {
			note(o)
		}
		for _, a := range d.akeys {
			for _, o := range a.punches {
				note(o)
			}
			for i := range a.svs {
				note(a.svs[i].order)
			}
			for i := range a.exts {
				note(a.exts[i].order)
			}
		}
		return true
	}
	if len(dkey) == 0 {
		ob.dkeys.Scan(visit)
	} else if d := p.dkey(ob, dkey, false); d != nil {
		visit(d)
	}
	return latest, nil
}
