package vos

import (
	"sort"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/godaos/godaos/internal/checksum"
	"github.com/godaos/godaos/internal/daoserr"
)

// ContOptions configure a container on this target.
type ContOptions struct {
	Csum      checksum.Type // checksum stored with every value; default crc32c
	CsumChunk uint32        // bytes per checksum for arrays; default 32 KiB
	NoCsum    bool          // store no checksums (Csum is then ignored)
}

// CreateContainer creates an empty container.
func (p *Pool) CreateContainer(u UUID, co ContOptions) error {
	if co.Csum == checksum.Off && !co.NoCsum {
		co.Csum = checksum.CRC32C
	}
	if co.NoCsum {
		co.Csum = checksum.Off
	}
	if !co.Csum.Valid() {
		return daoserr.Newf(daoserr.Inval, "create container %s: unknown checksum type %d", u, co.Csum)
	}
	if co.CsumChunk == 0 {
		co.CsumChunk = defaultCsumChunk
	}
	return p.submit(&op{kind: opContCreate, cont: u, csum: co.Csum, chunk: co.CsumChunk})
}

// DestroyContainer removes a container and everything in it, returning its space.
func (p *Pool) DestroyContainer(u UUID) error {
	return p.submit(&op{kind: opContDestroy, cont: u})
}

// DestroyObject removes an object with all its history (not a punch: nothing of it
// stays readable at any epoch).
func (p *Pool) DestroyObject(u UUID, oid OID) error {
	return p.submit(&op{kind: opDestroy, cont: u, oid: oid})
}

// DestroyKey removes a dkey (akey nil) or an akey with all history. ddb uses it to
// repair; applications punch instead.
func (p *Pool) DestroyKey(u UUID, oid OID, dkey, akey []byte) error {
	if err := checkKey("dkey", dkey); err != nil {
		return err
	}
	o := &op{kind: opDestroy, cont: u, oid: oid, dkey: dkey}
	if akey != nil {
		if err := checkKey("akey", akey); err != nil {
			return err
		}
		o.keys = [][]byte{akey}
	}
	return p.submit(o)
}

func checkWriteEpoch(e Epoch) error {
	if e == 0 || e == EpochMax {
		return daoserr.Newf(daoserr.Inval, "epoch %d cannot be written: use 1 to 2^64-2", e)
	}
	return nil
}

// The *Now variants of Update and the punches leave the epoch to
// Options.Stamp, applied in log order, and return it.

// UpdateNow is Update stamped at commit.
func (p *Pool) UpdateNow(u UUID, oid OID, flags CondFlags, dkey []byte, iods []IOD, sgls []SGL) (Epoch, error) {
	if err := p.stampable(); err != nil {
		return 0, err
	}
	o, err := p.buildUpdate(u, oid, stampLater, flags, dkey, iods, sgls)
	if err != nil {
		return 0, err
	}
	o.epoch = 0
	err = p.submit(o)
	return o.epoch, err
}

// PunchObjectNow is PunchObject stamped at commit.
func (p *Pool) PunchObjectNow(u UUID, oid OID, flags CondFlags) (Epoch, error) {
	return p.punchNow(buildPunchObj(u, oid, stampLater, flags))
}

// PunchDkeysNow is PunchDkeys stamped at commit.
func (p *Pool) PunchDkeysNow(u UUID, oid OID, flags CondFlags, dkeys [][]byte) (Epoch, error) {
	return p.punchNow(buildPunchDkeys(u, oid, stampLater, flags, dkeys))
}

// PunchAkeysNow is PunchAkeys stamped at commit.
func (p *Pool) PunchAkeysNow(u UUID, oid OID, flags CondFlags, dkey []byte, akeys [][]byte) (Epoch, error) {
	return p.punchNow(buildPunchAkeys(u, oid, stampLater, flags, dkey, akeys))
}

func (p *Pool) punchNow(o *op, err error) (Epoch, error) {
	if err == nil {
		err = p.stampable()
	}
	if err != nil {
		return 0, err
	}
	o.epoch = 0
	err = p.submit(o)
	return o.epoch, err
}

// stampLater passes buildUpdate's epoch check for an op stamped at commit.
const stampLater Epoch = 1

func (p *Pool) stampable() error {
	if p.opts.Stamp == nil {
		return daoserr.New(daoserr.Inval, "this target has no clock to stamp updates with (Options.Stamp)")
	}
	return nil
}

// PunchObject hides the whole object from readers at epoch and later.
func (p *Pool) PunchObject(u UUID, oid OID, epoch Epoch, flags CondFlags) error {
	return p.submitBuilt(buildPunchObj(u, oid, epoch, flags))
}

// PunchDkeys hides dkeys (and everything under them) at epoch and later.
func (p *Pool) PunchDkeys(u UUID, oid OID, epoch Epoch, flags CondFlags, dkeys [][]byte) error {
	return p.submitBuilt(buildPunchDkeys(u, oid, epoch, flags, dkeys))
}

// PunchAkeys hides akeys of one dkey at epoch and later.
func (p *Pool) PunchAkeys(u UUID, oid OID, epoch Epoch, flags CondFlags, dkey []byte, akeys [][]byte) error {
	return p.submitBuilt(buildPunchAkeys(u, oid, epoch, flags, dkey, akeys))
}

func (p *Pool) submitBuilt(o *op, err error) error {
	if err != nil {
		return err
	}
	return p.submit(o)
}

func buildPunchObj(u UUID, oid OID, epoch Epoch, flags CondFlags) (*op, error) {
	if err := checkWriteEpoch(epoch); err != nil {
		return nil, err
	}
	return &op{kind: opPunchObj, cont: u, oid: oid, epoch: epoch, cond: flags & (CondPunch | WriteBelowAggregated)}, nil
}

func buildPunchDkeys(u UUID, oid OID, epoch Epoch, flags CondFlags, dkeys [][]byte) (*op, error) {
	if err := checkWriteEpoch(epoch); err != nil {
		return nil, err
	}
	if len(dkeys) == 0 {
		return nil, daoserr.Newf(daoserr.Inval, "punch dkeys of obj %s: no dkeys given", oid)
	}
	for _, k := range dkeys {
		if err := checkKey("dkey", k); err != nil {
			return nil, daoserr.Context(err, "punch obj %s", oid)
		}
	}
	return &op{kind: opPunchDkeys, cont: u, oid: oid, epoch: epoch, cond: flags & (CondPunch | WriteBelowAggregated), keys: dkeys}, nil
}

func buildPunchAkeys(u UUID, oid OID, epoch Epoch, flags CondFlags, dkey []byte, akeys [][]byte) (*op, error) {
	if err := checkWriteEpoch(epoch); err != nil {
		return nil, err
	}
	if err := checkKey("dkey", dkey); err != nil {
		return nil, daoserr.Context(err, "punch obj %s", oid)
	}
	if len(akeys) == 0 {
		return nil, daoserr.Newf(daoserr.Inval, "punch akeys of obj %s dkey %q: no akeys given", oid, dkey)
	}
	for _, k := range akeys {
		if err := checkKey("akey", k); err != nil {
			return nil, daoserr.Context(err, "punch obj %s dkey %q", oid, dkey)
		}
	}
	return &op{kind: opPunchAkeys, cont: u, oid: oid, epoch: epoch, cond: flags & (CondPunch | WriteBelowAggregated), dkey: dkey, keys: akeys}, nil
}

// Update writes values under one dkey at epoch, atomically: all IODs or none.
// Small values are copied into the SCM tier; values of data_thresh bytes or more
// are written from the caller's buffers straight into the data file. The call
// returns when the update is durable.
func (p *Pool) Update(u UUID, oid OID, epoch Epoch, flags CondFlags, dkey []byte, iods []IOD, sgls []SGL) error {
	if err := p.fail(); err != nil {
		return err
	}
	o, err := p.buildUpdate(u, oid, epoch, flags, dkey, iods, sgls)
	if err != nil {
		return err
	}
	return p.submit(o)
}

// buildUpdate validates an update and turns it into an op for the committer:
// small values copied, checksums computed, large values left in the caller's
// buffers.
func (p *Pool) buildUpdate(u UUID, oid OID, epoch Epoch, flags CondFlags, dkey []byte, iods []IOD, sgls []SGL) (*op, error) {
	if err := checkWriteEpoch(epoch); err != nil {
		return nil, err
	}
	if err := checkKey("dkey", dkey); err != nil {
		return nil, daoserr.Context(err, "update obj %s", oid)
	}
	if len(iods) == 0 || len(sgls) != len(iods) {
		return nil, daoserr.Newf(daoserr.Inval, "update obj %s dkey %q: %d IODs and %d SGLs; need one SGL per IOD, at least one", oid, dkey, len(iods), len(sgls))
	}
	c := (*p.contParams.Load())[u] // its csum and chunk never change; the committer re-checks existence
	if c == nil {
		return nil, daoserr.Newf(daoserr.Nonexist, "update obj %s: container %s does not exist on this target", oid, u)
	}
	ct, chunk := c.csum, c.chunk
	o := &op{kind: opUpdate, cont: u, oid: oid, epoch: epoch, dkey: dkey, cond: flags, contRef: c}
	var total uint64
	for i := range iods {
		iod := &iods[i]
		if err := checkKey("akey", iod.Akey); err != nil {
			return nil, daoserr.Context(err, "update obj %s dkey %q", oid, dkey)
		}
		for j := 0; j < i; j++ {
			if string(iods[j].Akey) == string(iod.Akey) {
				return nil, daoserr.Newf(daoserr.Inval, "update obj %s dkey %q: akey %q appears twice", oid, dkey, iod.Akey)
			}
		}
		if flags&CondPerAkey != 0 && o.akeyCond == nil {
			o.akeyCond = []CondFlags{}
		}
		before := len(o.vals)
		var err error
		switch iod.Type {
		case IODSingle:
			err = p.buildSingle(o, iod, sgls[i], ct)
		case IODArray:
			err = p.buildArray(o, iod, sgls[i], ct, chunk)
		default:
			err = daoserr.Newf(daoserr.Inval, "akey %q: IOD type %d, want single (1) or array (2)", iod.Akey, iod.Type)
		}
		if err != nil {
			return nil, daoserr.Context(err, "update obj %s dkey %q", oid, dkey)
		}
		for k := before; k < len(o.vals); k++ {
			total += o.vals[k].dataLen()
			if o.akeyCond != nil {
				o.akeyCond = append(o.akeyCond, iod.Flags)
			}
		}
		if total > MaxUpdateBytes {
			return nil, daoserr.Newf(daoserr.Rec2Big, "update obj %s dkey %q: %d bytes in one update, limit %d", oid, dkey, total, MaxUpdateBytes)
		}
	}
	return o, nil
}

func (p *Pool) buildSingle(o *op, iod *IOD, sgl SGL, ct checksum.Type) error {
	if iod.Size == 0 { // punch of the value
		o.vals = append(o.vals, valueRec{akey: iod.Akey, typ: IODSingle, flags: recHole})
		return nil
	}
	if iod.Size > MaxSingleValue {
		return daoserr.Newf(daoserr.Rec2Big, "akey %q: single value of %d bytes, limit %d", iod.Akey, iod.Size, MaxSingleValue)
	}
	if sgl.size() < iod.Size {
		return daoserr.Newf(daoserr.Inval, "akey %q: value size %d but the SGL holds %d bytes", iod.Akey, iod.Size, sgl.size())
	}
	v := valueRec{akey: iod.Akey, typ: IODSingle, rsize: iod.Size}
	src := sglRange(sgl, 0, iod.Size, nil)
	p.store(o, &v, src, [][2]uint64{{0, iod.Size}}, ct)
	o.vals = append(o.vals, v)
	return nil
}

func (p *Pool) buildArray(o *op, iod *IOD, sgl SGL, ct checksum.Type, chunk uint32) error {
	if len(iod.Recxs) == 0 {
		return daoserr.Newf(daoserr.Inval, "akey %q: array IOD without extents", iod.Akey)
	}
	if len(iod.Recxs) > maxRecxPerRequest {
		return daoserr.Newf(daoserr.Inval, "akey %q: %d extents in one IOD, limit %d", iod.Akey, len(iod.Recxs), maxRecxPerRequest)
	}
	var need uint64
	for _, rx := range iod.Recxs {
		if rx.Nr == 0 || rx.Idx+rx.Nr < rx.Idx {
			return daoserr.Newf(daoserr.Inval, "akey %q: invalid extent idx %d nr %d", iod.Akey, rx.Idx, rx.Nr)
		}
		if iod.Size > 0 {
			if rx.Nr > MaxUpdateBytes/iod.Size {
				return daoserr.Newf(daoserr.Rec2Big, "akey %q: extent %v of %d-byte records is too large", iod.Akey, rx, iod.Size)
			}
			need += rx.Nr * iod.Size
		}
	}
	if iod.Size == 0 { // punch of the extents
		for _, rx := range iod.Recxs {
			o.vals = append(o.vals, valueRec{akey: iod.Akey, typ: IODArray, recx: rx, flags: recHole})
		}
		return nil
	}
	if sgl.size() < need {
		return daoserr.Newf(daoserr.Inval, "akey %q: extents need %d bytes but the SGL holds %d", iod.Akey, need, sgl.size())
	}
	var pos uint64
	for _, rx := range iod.Recxs {
		n := rx.Nr * iod.Size
		v := valueRec{akey: iod.Akey, typ: IODArray, rsize: iod.Size, recx: rx}
		src := sglRange(sgl, pos, n, nil)
		p.store(o, &v, src, csumPieces(rx, iod.Size, chunk), ct)
		o.vals = append(o.vals, v)
		pos += n
	}
	return nil
}

// store places one value's data: inline (copied into buf) below data_thresh;
// otherwise the value is marked for the NVMe tier and the caller's buffers are
// remembered, to be written by the committer straight from them (see placeData).
// Checksums of each piece (byte ranges within the value) follow the data in buf.
// v is about to become o.vals[len(o.vals)].
func (p *Pool) store(o *op, v *valueRec, src [][]byte, pieces [][2]uint64, ct checksum.Type) {
	n := v.dataLen()
	csumLen := uint64(len(pieces) * ct.Size())
	if n < p.sb.DataThresh {
		v.buf = make([]byte, n, n+csumLen)
		copyFrom(v.buf, src)
		sums := v.buf[n:n]
		for _, pc := range pieces {
			sums = ct.Append(sums, v.buf[pc[0]:pc[1]])
		}
		v.buf = v.buf[:n+csumLen]
		return
	}
	v.flags |= recNVMe
	redo := n <= p.redoMax
	if redo {
		v.flags |= recRedo
		v.redo = src
	}
	v.buf = make([]byte, 0, csumLen)
	var scratch [][]byte
	for _, pc := range pieces {
		scratch = sglRange(src, pc[0], pc[1]-pc[0], scratch[:0])
		v.buf = ct.AppendSlices(v.buf, scratch)
	}
	o.data = append(o.data, pendingData{val: len(o.vals), src: src, n: n, redo: redo})
}

// redoMax is the largest NVMe-tier value that is also written into its log record.
// Such a value's commit needs one flush (the log's) instead of two (data file, then
// log); larger values are written once, to the data file, flushed before the log.
// A data file in memory (tmpfs) has no flush to save, so there nothing is redo-logged.
const redoMax = 64 << 10

// csumPieces splits an extent at checksum-chunk boundaries aligned to absolute
// record indexes (so any later read can verify whole pieces), returning byte
// ranges relative to the extent.
func csumPieces(rx Recx, rsize uint64, chunk uint32) [][2]uint64 {
	per := max(1, uint64(chunk)/rsize) // records per chunk
	var out [][2]uint64
	for i := rx.Idx; i < rx.end(); {
		next := min(rx.end(), (i/per+1)*per)
		out = append(out, [2]uint64{(i - rx.Idx) * rsize, (next - rx.Idx) * rsize})
		i = next
	}
	return out
}

// ---- fetch ----

// Fetch reads values under one dkey as of epoch into the SGLs (data is copied or
// read straight into the caller's buffers). For arrays, parts of the requested
// extents with no visible data are zero-filled and left out of FetchResult.Extents.
// Every byte returned has been checked against its stored checksum.
func (p *Pool) Fetch(u UUID, oid OID, epoch Epoch, flags CondFlags, dkey []byte, iods []IOD, sgls []SGL) ([]FetchResult, error) {
	return p.fetch(u, oid, epoch, flags, dkey, iods, sgls, nil)
}

// fetch is Fetch, lending large single values in borrowed if not nil (see
// FetchBorrowed).
func (p *Pool) fetch(u UUID, oid OID, epoch Epoch, flags CondFlags, dkey []byte, iods []IOD, sgls []SGL, borrowed [][]byte) ([]FetchResult, error) {
	if err := checkKey("dkey", dkey); err != nil {
		return nil, daoserr.Context(err, "fetch obj %s", oid)
	}
	if sgls != nil && len(sgls) != len(iods) {
		return nil, daoserr.Newf(daoserr.Inval, "fetch obj %s dkey %q: %d IODs and %d SGLs", oid, dkey, len(iods), len(sgls))
	}
	lim := p.durable.Load()
	p.mu.RLock()
	defer p.mu.RUnlock()
	c := p.conts[u]
	if c == nil {
		return nil, daoserr.Newf(daoserr.Nonexist, "fetch obj %s: container %s does not exist on this target", oid, u)
	}
	f := fetcher{p: p, c: c, oid: oid, dkey: dkey, e: epoch, lim: lim, borrowed: borrowed}
	ob := c.lookupObj(oid)
	var d *dkeyNode
	if ob != nil {
		f.ph = maxPunch(ob.punches, epoch, lim, order{})
		d = p.dkey(ob, dkey, false)
	}
	if flags&CondDkeyFetch != 0 && (d == nil || !d.exists(epoch, lim, f.ph)) {
		return nil, daoserr.Newf(daoserr.Nonexist, "conditional fetch of obj %s: dkey %q does not exist at epoch %d", oid, dkey, epoch)
	}
	if d != nil {
		f.ph = maxPunch(d.punches, epoch, lim, f.ph)
	}
	res := make([]FetchResult, len(iods))
	for i := range iods {
		iod := &iods[i]
		if err := checkKey("akey", iod.Akey); err != nil {
			return nil, daoserr.Context(err, "fetch obj %s dkey %q", oid, dkey)
		}
		var a *akeyNode
		if d != nil {
			a = p.akey(ob, d, iod.Akey, false)
		}
		cond := flags
		if flags&CondPerAkey != 0 {
			cond = iod.Flags
		}
		if cond&CondAkeyFetch != 0 && (a == nil || !a.exists(epoch, lim, f.ph)) {
			return nil, daoserr.Newf(daoserr.Nonexist, "conditional fetch of obj %s dkey %q: akey %q does not exist at epoch %d", oid, dkey, iod.Akey, epoch)
		}
		var sgl SGL
		if sgls != nil {
			sgl = sgls[i]
		}
		var err error
		f.iod = i
		switch iod.Type {
		case IODSingle:
			res[i], err = f.single(a, iod, sgl)
		case IODArray:
			res[i], err = f.array(a, iod, sgl)
		default:
			err = daoserr.Newf(daoserr.Inval, "akey %q: IOD type %d, want single (1) or array (2)", iod.Akey, iod.Type)
		}
		if err != nil {
			return nil, daoserr.Context(err, "fetch obj %s dkey %q", oid, dkey)
		}
	}
	return res, nil
}

type fetcher struct {
	p    *Pool
	c    *contNode
	oid  OID
	dkey []byte
	e    Epoch
	lim  uint64
	ph   order // punch horizon of the object and dkey
	tmp  []byte
	sc   [][]byte // scratch for checksum pieces and zeroing
	dsc  [][]byte // scratch for the destination of one fragment

	borrowed [][]byte // FetchBorrowed's lent values, by IOD (nil: Fetch)
	iod      int      // the IOD being fetched
}

func (f *fetcher) single(a *akeyNode, iod *IOD, sgl SGL) (FetchResult, error) {
	if a == nil {
		return FetchResult{}, nil
	}
	if a.kind != IODSingle && a.kind != IODNone {
		return FetchResult{}, daoserr.Newf(daoserr.Inval, "akey %q holds an array; fetch it with an array IOD", iod.Akey)
	}
	v := a.svAt(f.e, f.lim, maxPunch(a.punches, f.e, f.lim, f.ph))
	if v == nil {
		return FetchResult{}, nil
	}
	res := FetchResult{Size: uint64(v.size)}
	if iod.Size == 0 || sgl == nil {
		return res, nil // size query
	}
	n := uint64(v.size)
	if sgl.size() < n {
		return res, daoserr.Newf(daoserr.Rec2Big, "akey %q: value is %d bytes, buffer holds %d", iod.Akey, n, sgl.size())
	}
	dst := sglRange(sgl, 0, n, nil)
	sum := v.buf
	if v.flags&recNVMe == 0 {
		sum = v.buf[n:]
		if !f.c.csum.Equal(sum, v.buf[:n]) {
			return res, f.csumErr(iod.Akey, "single value", v.order)
		}
		copyFrom2(dst, v.buf[:n])
		return res, nil
	}
	if lent, err := f.borrow(v, sum, n, iod.Akey); lent || err != nil {
		return res, err
	}
	if d := f.p.logged(v.off); d != nil {
		copyFrom2(dst, d[:n])
	} else if err := preadv(f.p.data.Fd(), dst, int64(v.off)); err != nil {
		return res, daoserr.Wrap(daoserr.IO, err, "akey %q: read data file", iod.Akey)
	}
	if !f.c.csum.EqualSlices(sum, dst) {
		return res, f.csumErr(iod.Akey, "single value", v.order)
	}
	return res, nil
}

func (f *fetcher) csumErr(akey []byte, what string, o order) error {
	return daoserr.Newf(daoserr.Csum, "cont %s obj %s dkey %q akey %q: %s at epoch %d fails its %s checksum",
		f.c.uuid, f.oid, f.dkey, akey, what, o.epoch, f.c.csum).WithResolution("the stored copy is corrupt: read another replica; 'ddb verify' lists all damage")
}

func (f *fetcher) array(a *akeyNode, iod *IOD, sgl SGL) (FetchResult, error) {
	var res FetchResult
	if iod.Size != 0 && sgl != nil { // not a size query: the extents must make sense, whatever is there
		for _, rx := range iod.Recxs {
			if rx.Nr == 0 || rx.Idx+rx.Nr < rx.Idx || rx.Nr > MaxUpdateBytes/iod.Size {
				return res, daoserr.Newf(daoserr.Inval, "akey %q: invalid extent idx %d nr %d", iod.Akey, rx.Idx, rx.Nr)
			}
		}
	}
	if a == nil {
		return res, f.zero(iod, sgl)
	}
	if a.kind != IODArray && a.kind != IODNone {
		return res, daoserr.Newf(daoserr.Inval, "akey %q holds a single value; fetch it with a single IOD", iod.Akey)
	}
	ph := maxPunch(a.punches, f.e, f.lim, f.ph)
	if a.rsize != 0 && a.hasData() {
		res.Size = a.rsize
	}
	if iod.Size == 0 || sgl == nil {
		// size query: report the record size if any data is visible
		if !a.exists(f.e, f.lim, f.ph) {
			res.Size = 0
		}
		return res, nil
	}
	if res.Size != 0 && iod.Size != res.Size {
		return res, daoserr.Newf(daoserr.RecSize, "akey %q: records are %d bytes, the IOD asks for %d", iod.Akey, res.Size, iod.Size)
	}
	var need uint64
	for _, rx := range iod.Recxs { // checked above
		need += rx.Nr * iod.Size
	}
	if sgl.size() < need {
		return res, daoserr.Newf(daoserr.Inval, "akey %q: extents need %d bytes but the SGL holds %d", iod.Akey, need, sgl.size())
	}
	var pos uint64
	var frags []fragment
	anyData := false
	for _, rx := range iod.Recxs {
		frags = a.paint(rx.Idx, rx.end(), f.e, f.lim, ph, frags[:0])
		cur := rx.Idx
		for _, fr := range frags {
			if fr.Idx > cur {
				zeroAll(sglRange(sgl, pos+(cur-rx.Idx)*iod.Size, (fr.Idx-cur)*iod.Size, f.sc[:0]))
			}
			f.dsc = sglRange(sgl, pos+(fr.Idx-rx.Idx)*iod.Size, fr.Nr*iod.Size, f.dsc[:0])
			dst := f.dsc
			if fr.ext.flags&recHole != 0 {
				zeroAll(dst)
			} else {
				if err := f.readExtent(a, iod.Akey, fr, dst); err != nil {
					return res, err
				}
				anyData = true
				if n := len(res.Extents); n > 0 && res.Extents[n-1].end() == fr.Idx {
					res.Extents[n-1].Nr += fr.Nr
				} else {
					res.Extents = append(res.Extents, fr.Recx)
				}
			}
			cur = fr.end()
		}
		if cur < rx.end() {
			zeroAll(sglRange(sgl, pos+(cur-rx.Idx)*iod.Size, (rx.end()-cur)*iod.Size, f.sc[:0]))
		}
		pos += rx.Nr * iod.Size
	}
	if !anyData && !a.exists(f.e, f.lim, f.ph) {
		res.Size = 0
	}
	return res, nil
}

// zero fills an IOD's whole destination (nothing there).
func (f *fetcher) zero(iod *IOD, sgl SGL) error {
	if iod.Type != IODArray || sgl == nil || iod.Size == 0 {
		return nil
	}
	var need uint64
	for _, rx := range iod.Recxs {
		need += rx.Nr * iod.Size
	}
	zeroAll(sglRange(sgl, 0, min(need, sgl.size()), nil))
	return nil
}

// readExtent copies the visible fragment fr of an extent into dst, verifying the
// checksums of every chunk piece it touches. When fr covers whole pieces the data
// lands directly in dst and is verified there; otherwise the covering pieces are
// read into a scratch buffer first.
func (f *fetcher) readExtent(a *akeyNode, akey []byte, fr fragment, dst [][]byte) error {
	x := fr.ext
	rs := a.rsize
	pieces := csumPieces(x.recx(), rs, f.c.chunk)
	cs := f.c.csum.Size()
	// pieces overlapping the fragment, in bytes relative to the extent
	lo, hi := (fr.Idx-x.idx)*rs, (fr.end()-x.idx)*rs
	first := sort.Search(len(pieces), func(i int) bool { return pieces[i][1] > lo })
	last := sort.Search(len(pieces), func(i int) bool { return pieces[i][0] >= hi })
	plo, phi := pieces[first][0], pieces[last-1][1]
	sums := x.buf
	if x.flags&recNVMe == 0 {
		sums = x.buf[x.nr*rs:]
	}
	chk := pieceCheck{ct: f.c.csum, sums: sums[first*cs : last*cs], pieces: pieces[first:last]}
	fail := func(k int) error {
		pc := chk.pieces[k]
		return f.csumErr(akey, "array extent "+x.recx().String()+" chunk at record "+itoa(x.idx+pc[0]/rs), x.order)
	}
	inline := x.buf
	if x.flags&recNVMe != 0 {
		inline = f.p.logged(x.off)
	}
	if inline != nil {
		var bad int
		if f.sc, bad = chk.verify([][]byte{inline[:x.nr*rs]}, 0, f.sc); bad >= 0 {
			return fail(bad)
		}
		copyFrom2(dst, inline[lo:hi])
		return nil
	}
	if plo == lo && phi == hi {
		bad, err := f.readWhole(chk, x.off, lo, dst)
		if err != nil {
			return daoserr.Wrap(daoserr.IO, err, "akey %q: read data file", akey)
		}
		if bad >= 0 {
			return fail(bad)
		}
		return nil
	}
	if uint64(cap(f.tmp)) < phi-plo {
		f.tmp = make([]byte, phi-plo)
	}
	buf := f.tmp[:phi-plo]
	if _, err := f.p.data.ReadAt(buf, int64(x.off+plo)); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "akey %q: read data file", akey)
	}
	var bad int
	if f.sc, bad = chk.verify([][]byte{buf}, plo, f.sc); bad >= 0 {
		return fail(bad)
	}
	copyFrom2(dst, buf[lo-plo:hi-plo])
	return nil
}

// splitReadMin is the size from which a direct extent read is split in two parts
// read and verified concurrently. Verifying crc32c costs about half as much as
// reading from the page cache, so doing both in one goroutine runs at two thirds
// of raw pread; DAOS offloads checksums to helper xstreams for the same reason.
const splitReadMin = 256 << 10

// readWhole reads the whole pieces of chk, which start at byte lo of the extent
// at data-file offset off, straight into dst and verifies them there. It returns
// the index of the first piece that fails its checksum, or -1.
func (f *fetcher) readWhole(chk pieceCheck, off, lo uint64, dst [][]byte) (int, error) {
	n := chk.pieces[len(chk.pieces)-1][1] - lo
	if n < splitReadMin || len(chk.pieces) < 2 {
		if err := preadv(f.p.data.Fd(), dst, int64(off+lo)); err != nil {
			return -1, err
		}
		var bad int
		f.sc, bad = chk.verify(dst, lo, f.sc)
		return bad, nil
	}
	// The helper goroutine starts some microseconds late (it has to be woken on
	// the other core), so it gets the smaller part: 3/8 measured best here.
	m := sort.Search(len(chk.pieces), func(i int) bool { return chk.pieces[i][0]-lo >= n*5/8 })
	m = min(m, len(chk.pieces)-1)
	mid := chk.pieces[m][0]
	head, tail := chk.split(m)
	var tailBad int
	var tailErr error
	// dst may be the fetcher's scratch (f.dsc): slice it before anything reuses that.
	hdst, tdst := sglRange(dst, 0, mid-lo, nil), sglRange(dst, mid-lo, lo+n-mid, nil)
	fd := f.p.data.Fd() // not f in the closure: that would move every fetcher to the heap
	done := make(chan struct{})
	go func() {
		defer close(done)
		if tailErr = preadv(fd, tdst, int64(off+mid)); tailErr == nil {
			_, tailBad = tail.verify(tdst, mid, nil)
		}
	}()
	err := preadv(fd, hdst, int64(off+lo))
	bad := -1
	if err == nil {
		f.sc, bad = head.verify(hdst, lo, f.sc)
	}
	<-done
	switch {
	case err != nil:
		return -1, err
	case tailErr != nil:
		return -1, tailErr
	case bad >= 0:
		return bad, nil
	case tailBad >= 0:
		return m + tailBad, nil
	}
	return -1, nil
}

// pieceCheck is the stored checksums of consecutive pieces of an extent.
type pieceCheck struct {
	ct     checksum.Type
	sums   []byte      // one checksum per piece
	pieces [][2]uint64 // byte ranges relative to the extent
}

// verify checks the pieces against src, which holds the extent's bytes from
// base on. It returns the scratch slice for reuse and the index of the first
// piece that fails, or -1.
func (c pieceCheck) verify(src [][]byte, base uint64, scratch [][]byte) ([][]byte, int) {
	cs := c.ct.Size()
	if cs == 0 {
		return scratch, -1
	}
	for k, pc := range c.pieces {
		scratch = sglRange(src, pc[0]-base, pc[1]-pc[0], scratch[:0])
		if !c.ct.EqualSlices(c.sums[k*cs:(k+1)*cs], scratch) {
			return scratch, k
		}
	}
	return scratch, -1
}

// split returns the checks of pieces [0, m) and [m, len).
func (c pieceCheck) split(m int) (pieceCheck, pieceCheck) {
	cs := c.ct.Size()
	return pieceCheck{c.ct, c.sums[:m*cs], c.pieces[:m]}, pieceCheck{c.ct, c.sums[m*cs:], c.pieces[m:]}
}

// ---- scatter-gather helpers ----

// sglRange returns the sub-slices of sgl covering bytes [off, off+n) of its
// concatenation, appended to out. No data is copied.
func sglRange(sgl [][]byte, off, n uint64, out [][]byte) [][]byte {
	for _, b := range sgl {
		if n == 0 {
			break
		}
		l := uint64(len(b))
		if off >= l {
			off -= l
			continue
		}
		take := min(l-off, n)
		out = append(out, b[off:off+take])
		n -= take
		off = 0
	}
	return out
}

// copyFrom copies the concatenation of src into dst.
func copyFrom(dst []byte, src [][]byte) {
	for _, s := range src {
		dst = dst[copy(dst, s):]
	}
}

// copyFrom2 copies src into the concatenation of dst.
func copyFrom2(dst [][]byte, src []byte) {
	for _, d := range dst {
		src = src[copy(d, src):]
	}
}

func zeroAll(bufs [][]byte) {
	for _, b := range bufs {
		clear(b)
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// pwritev writes bufs at off, looping over short writes and the kernel's iovec limit.
func pwritev(fd uintptr, bufs [][]byte, off int64) error {
	for len(bufs) > 0 {
		chunk := bufs[:min(len(bufs), 1024)]
		n, err := unix.Pwritev(int(fd), chunk, off)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return err
		}
		off += int64(n)
		bufs = advance(bufs, n)
	}
	return nil
}

// preadv fills bufs from off.
func preadv(fd uintptr, bufs [][]byte, off int64) error {
	for len(bufs) > 0 {
		chunk := bufs[:min(len(bufs), 1024)]
		n, err := unix.Preadv(int(fd), chunk, off)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return err
		}
		if n == 0 {
			return unix.EIO // short file: the data file is smaller than the index says
		}
		off += int64(n)
		bufs = advance(bufs, n)
	}
	return nil
}

func advance(bufs [][]byte, n int) [][]byte {
	for n > 0 && len(bufs) > 0 {
		if n >= len(bufs[0]) {
			n -= len(bufs[0])
			bufs = bufs[1:]
			continue
		}
		// copy the header so the caller's slice is not modified
		rest := make([][]byte, len(bufs))
		copy(rest, bufs)
		rest[0] = rest[0][n:]
		return rest
	}
	for len(bufs) > 0 && len(bufs[0]) == 0 {
		bufs = bufs[1:]
	}
	return bufs
}
