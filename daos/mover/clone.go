package mover

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/internal/daoserr"
)

// CloneStats is what a clone did.
type CloneStats struct {
	Pool    string        `json:"pool"`      // the new container's pool
	Cont    string        `json:"container"` // its label
	UUID    string        `json:"uuid"`
	Type    string        `json:"type"`
	Objects int64         `json:"objects"`
	Dkeys   int64         `json:"dkeys"`
	Values  int64         `json:"values"` // single values and array extents copied
	Bytes   int64         `json:"bytes"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// cloneProps are the container properties a clone takes from its source
// (the rest are the new container's own: label, status, health).
var cloneProps = []string{"layout_version", "cksum", "cksum_size", "srv_cksum", "dedup", "dedup_threshold",
	"compression", "encryption", "rd_fac", "rd_lvl", "ec_cell_sz", "ec_pda", "rp_pda", "oclass", "dir_oclass",
	"file_oclass", "perf_domain", "scm_hugepages", "chunk_size"}

// Clone copies the container src into a new container dst, as `daos cont
// clone`: dst.Pool (labels or UUIDs), labeled dst.Cont (made up if empty),
// which must not exist yet. The new container has src's type, properties
// and user attributes; every object is copied with its OID, every dkey,
// akey, single value and array extent (holes stay holes), so a container of
// any type reads the same, a POSIX one mounts the same. The latest
// version is copied (not the snapshots). If the clone fails the new
// container is destroyed.
func Clone(ctx context.Context, src, dst Endpoint, opts Options) (CloneStats, error) {
	opts = opts.withDefaults()
	start := time.Now()
	if !src.IsDAOS() || src.Cont == "" || (src.Dir != "" && src.Dir != "/") {
		return CloneStats{}, daoserr.Newf(daoserr.Inval, "clone source %s is not a container", src).
			WithResolution("give --src daos://POOL/CONT (or a UNS directory)")
	}
	if !dst.IsDAOS() || (dst.Dir != "" && dst.Dir != "/") {
		return CloneStats{}, daoserr.Newf(daoserr.Inval, "clone destination %s is not a pool or a new container", dst).
			WithResolution("give --dst daos://POOL or daos://POOL/NEWCONT")
	}
	cl, closeC, err := opts.client(ctx)
	if err != nil {
		return CloneStats{}, err
	}
	defer closeC()
	sp, sc, err := openCont(ctx, cl, src, false)
	if err != nil {
		return CloneStats{}, err
	}
	done := context.WithoutCancel(ctx) // to close what was opened, even after a cancel
	defer sp.Disconnect(done)
	defer sc.Close(done)
	dp, err := cl.PoolConnect(ctx, dst.Pool, daos.RW)
	if err != nil {
		return CloneStats{}, daoserr.Context(err, "connect to pool %s (the clone's destination)", dst.Pool)
	}
	defer dp.Disconnect(done)
	if dst.Cont != "" {
		h, err := dp.ContOpen(ctx, dst.Cont, daos.RO)
		if err == nil {
			h.Close(ctx)
			return CloneStats{}, daoserr.Newf(daoserr.Exist, "container %s already exists in pool %s", dst.Cont, dst.Pool).
				WithResolution("a clone makes its container: name a new one, or destroy that one first")
		}
		if !daoserr.Is(err, daoserr.Nonexist) {
			return CloneStats{}, daoserr.Context(err, "pool %s", dst.Pool)
		}
	}

	props := map[string]string{}
	for _, k := range cloneProps {
		if v, ok := sc.Info.GetProps()[k]; ok {
			props[k] = v
		}
	}
	ct, err := dp.ContCreate(ctx, daos.ContCreateOptions{Label: dst.Cont, Type: sc.Info.GetType(), Props: props})
	if err != nil {
		return CloneStats{}, daoserr.Context(err, "create the clone of %s in pool %s", src, dst.Pool)
	}
	st := CloneStats{Pool: dp.Info.GetLabel(), Cont: ct.GetLabel(), UUID: ct.GetUuid(), Type: ct.GetType()}
	ok := false
	defer func() {
		if !ok { // leave nothing half-made
			dp.ContDestroy(done, ct.GetUuid())
		}
	}()
	dc, err := dp.ContOpen(ctx, ct.GetUuid(), daos.RW)
	if err != nil {
		return st, daoserr.Context(err, "open the new container %s", ct.GetLabel())
	}
	defer dc.Close(done)

	if err := cloneAttrs(ctx, sp, src.Cont, dp, ct.GetUuid()); err != nil {
		return st, err
	}
	k := &cloner{src: sc, dst: dc, opts: opts}
	if err := k.remapSuperblock(); err != nil {
		return st, err
	}
	stop := k.progress(start)
	err = k.run(ctx)
	stop()
	st.Objects, st.Dkeys, st.Values, st.Bytes = k.objects.Load(), k.dkeys.Load(), k.values.Load(), k.bytes.Load()
	if err != nil {
		return st, asDaos(wrapRun(err, ctx, "clone %s to pool %s", src, dst.Pool)).
			WithResolution("the new container was destroyed; run the clone again")
	}
	// The new container's allocator must never hand out the OIDs copied.
	if err := k.reserveOIDs(ctx); err != nil {
		return st, err
	}
	ok = true
	st.Elapsed = time.Since(start)
	return st, nil
}

// cloneAttrs copies the container's user attributes.
func cloneAttrs(ctx context.Context, sp *daos.Pool, scont string, dp *daos.Pool, dcont string) error {
	_, names, err := sp.ContAttrs(ctx, scont, daos.AttrChange{List: true})
	if err != nil {
		return daoserr.Context(err, "list the attributes of container %s", scont)
	}
	if len(names) == 0 {
		return nil
	}
	vals, _, err := sp.ContAttrs(ctx, scont, daos.AttrChange{Get: names})
	if err != nil {
		return daoserr.Context(err, "read the attributes of container %s", scont)
	}
	if _, _, err := dp.ContAttrs(ctx, dcont, daos.AttrChange{Set: vals}); err != nil {
		return daoserr.Context(err, "set the attributes of the clone")
	}
	return nil
}

type cloner struct {
	src, dst *daos.Cont
	opts     Options
	remap    map[daos.OID]daos.OID // source OID -> destination OID, where they differ

	objects, dkeys, values, bytes atomic.Int64
	mu                            sync.Mutex
	maxLo                         uint64
}

// remapSuperblock: DFS finds its superblock at OID 0.0 of the class the
// pool's shape gives (daos.Cont.EncodeOID); a pool of another shape gives
// another class, so the superblock goes where the new pool's DFS looks.
// The superblock names the root's OID, which every other object follows.
func (k *cloner) remapSuperblock() error {
	k.remap = map[daos.OID]daos.OID{}
	if k.src.Info.GetType() != "POSIX" {
		return nil
	}
	a, err := k.src.EncodeOID(0, 0, 0, daos.OTMultiHashed)
	if err != nil {
		return err
	}
	b, err := k.dst.EncodeOID(0, 0, 0, daos.OTMultiHashed)
	if err != nil {
		return err
	}
	if a != b {
		k.remap[a] = b
	}
	return nil
}

// run copies every object: objects are listed in pages, each object's
// dkeys are listed by one task and copied by others, so a big object (a
// big file) is copied by every worker.
func (k *cloner) run(ctx context.Context) error {
	s := newSched(ctx)
	s.push(prioDir, func(ctx context.Context) error { return k.listObjects(ctx, s, daos.Anchor{}) })
	return s.run(k.opts.Workers)
}

func (k *cloner) listObjects(ctx context.Context, s *sched, a daos.Anchor) error {
	oids, err := k.src.ListObjects(ctx, &a, 1024)
	if err != nil {
		return daoserr.Context(err, "list the objects of container %s", k.src.Info.GetLabel())
	}
	if !a.EOF {
		s.push(prioDir, func(ctx context.Context) error { return k.listObjects(ctx, s, a) })
	}
	for _, oid := range oids {
		s.push(prioFile, func(ctx context.Context) error { return k.cloneObject(ctx, s, oid) })
	}
	return nil
}

func (k *cloner) cloneObject(ctx context.Context, s *sched, oid daos.OID) error {
	so, err := k.src.Obj(oid)
	if err != nil {
		return err
	}
	doid := oid
	if o, ok := k.remap[oid]; ok {
		doid = o
	}
	do, err := k.dst.Obj(doid)
	if err != nil {
		return daoserr.Context(err, "open object %s in the clone", doid)
	}
	k.mu.Lock()
	k.maxLo = max(k.maxLo, oid.Lo)
	k.mu.Unlock()
	k.objects.Add(1)
	for a := (daos.Anchor{}); !a.EOF; {
		dkeys, err := so.ListDkeys(ctx, &a, 1024)
		if err != nil {
			return daoserr.Context(err, "list the dkeys of object %s", oid)
		}
		for _, dk := range dkeys {
			s.push(prioPiece, func(ctx context.Context) error { return k.cloneDkey(ctx, so, do, dk) })
		}
	}
	return nil
}

// Limits of one copy request: its bytes and its extents.
const (
	cloneMaxBytes = 8 << 20
	cloneMaxRecxs = 256
)

// dkeyHook, when set (by tests), runs as each dkey is copied.
var dkeyHook func()

func (k *cloner) cloneDkey(ctx context.Context, so, do *daos.Obj, dkey []byte) error {
	k.dkeys.Add(1)
	if dkeyHook != nil {
		dkeyHook()
	}
	for a := (daos.Anchor{}); !a.EOF; {
		akeys, err := so.ListAkeys(ctx, dkey, &a, 1024)
		if err != nil {
			return daoserr.Context(err, "list the akeys of object %s dkey %q", so.OID, dkey)
		}
		for _, ak := range akeys {
			if err := k.cloneAkey(ctx, so, do, dkey, ak); err != nil {
				return daoserr.Context(err, "copy object %s dkey %q akey %q", so.OID, dkey, ak)
			}
		}
	}
	return nil
}

// cloneAkey copies one akey: its array extents (ListRecx says it holds an
// array by giving a record size), or its single value.
func (k *cloner) cloneAkey(ctx context.Context, so, do *daos.Obj, dkey, akey []byte) error {
	var recxs []daos.Recx
	var rsize uint64
	for a := (daos.Anchor{}); !a.EOF; {
		page, rs, err := so.ListRecx(ctx, dkey, akey, &a, 1024)
		if err != nil {
			return err
		}
		for _, x := range page {
			recxs = append(recxs, x.Recx)
		}
		rsize = max(rsize, rs)
	}
	if rsize == 0 {
		iod := []daos.IOD{{Akey: akey, Type: daos.Single}}
		res, err := so.Fetch(ctx, dkey, iod, [][]byte{nil}) // the value's size
		if daoserr.Is(err, daoserr.Inval) || err == nil && res[0].Size == 0 {
			return nil // an array whose extents are all punched, or a punched value: nothing to copy
		}
		if err != nil {
			return err
		}
		iod[0].Size = res[0].Size
		buf := make([]byte, res[0].Size)
		if _, err := so.Fetch(ctx, dkey, iod, [][]byte{buf}); err != nil {
			return err
		}
		if _, err := do.Update(ctx, dkey, iod, [][]byte{buf}); err != nil {
			return err
		}
		k.values.Add(1)
		k.bytes.Add(int64(len(buf)))
		return nil
	}
	// Arrays: extents in batches of at most cloneMaxBytes, long ones cut.
	maxRecs := max(1, cloneMaxBytes/rsize)
	var batch []daos.Recx
	var n uint64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		iod := []daos.IOD{{Akey: akey, Type: daos.Array, Size: rsize, Recxs: batch}}
		buf := make([]byte, n*rsize)
		if _, err := so.Fetch(ctx, dkey, iod, [][]byte{buf}); err != nil {
			return err
		}
		if _, err := do.Update(ctx, dkey, iod, [][]byte{buf}); err != nil {
			return err
		}
		k.values.Add(int64(len(batch)))
		k.bytes.Add(int64(len(buf)))
		batch, n = nil, 0
		return nil
	}
	for _, x := range recxs {
		for x.Nr > 0 {
			take := min(x.Nr, maxRecs-n)
			batch = append(batch, daos.Recx{Idx: x.Idx, Nr: take})
			n += take
			x.Idx, x.Nr = x.Idx+take, x.Nr-take
			if n == maxRecs || len(batch) == cloneMaxRecxs {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// reserveOIDs moves the new container's OID allocator past every OID
// copied, so that new objects never take one.
func (k *cloner) reserveOIDs(ctx context.Context) error {
	const batch = 1 << 30 // the management service's most at once
	for {
		first, err := k.dst.AllocOIDs(ctx, 1)
		if err != nil {
			return daoserr.Context(err, "reserve the copied object IDs in the clone")
		}
		if first > k.maxLo {
			return nil
		}
		if _, err := k.dst.AllocOIDs(ctx, min(batch, k.maxLo-first+1)); err != nil {
			return daoserr.Context(err, "reserve the copied object IDs in the clone")
		}
	}
}

func (k *cloner) progress(start time.Time) func() {
	w := k.opts.Progress
	if w == nil {
		return func() {}
	}
	line := func() {
		b := k.bytes.Load()
		fmt.Fprintf(w, "\r%d objects, %d dkeys, %s, %s/s   ", k.objects.Load(), k.dkeys.Load(), human(b), human(rate(b, time.Since(start))))
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(k.opts.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				line()
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		line()
		io.WriteString(w, "\n")
	}
}
