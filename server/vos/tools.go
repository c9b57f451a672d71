package vos

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/godaos/godaos/internal/daoserr"
)

// Inspection and repair helpers for ddb and tests.

// RecordInfo describes one stored record (a single-value version, an array extent
// or a punch) of an akey, whether visible or not.
type RecordInfo struct {
	Kind  string // "single", "extent", "hole", "punch"
	Epoch Epoch
	Seq   uint64
	Size  uint64 // value size or record size
	Recx  Recx   // extents only
	Tier  string // "scm" or "nvme"
	Off   uint64 // data file offset (nvme)
}

// AkeyRecords lists every record stored under an akey, oldest first by index.
func (p *Pool) AkeyRecords(u UUID, oid OID, dkey, akey []byte) ([]RecordInfo, IODType, error) {
	c, _, err := p.readCont(u, "records")
	if err != nil {
		return nil, 0, err
	}
	defer p.mu.RUnlock()
	a, _ := p.lookupAkey(c, oid, EpochMax, noLimit, dkey, akey)
	if a == nil {
		return nil, 0, daoserr.Newf(daoserr.Nonexist, "cont %s obj %s dkey %q akey %q: no such akey", u, oid, dkey, akey)
	}
	var out []RecordInfo
	for _, o := range a.punches {
		out = append(out, RecordInfo{Kind: "punch", Epoch: o.epoch, Seq: o.seq})
	}
	tier := func(f uint8) string {
		if f&recNVMe != 0 {
			return "nvme"
		}
		return "scm"
	}
	for _, x := range a.svs {
		k := "single"
		if x.flags&recHole != 0 {
			k = "hole"
		}
		out = append(out, RecordInfo{Kind: k, Epoch: x.epoch, Seq: x.seq, Size: uint64(x.size), Tier: tier(x.flags), Off: x.off})
	}
	for _, x := range a.exts {
		k := "extent"
		if x.flags&recHole != 0 {
			k = "hole"
		}
		out = append(out, RecordInfo{Kind: k, Epoch: x.epoch, Seq: x.seq, Size: a.rsize, Recx: x.recx(), Tier: tier(x.flags), Off: x.off})
	}
	return out, a.kind, nil
}

// Damage is one problem Verify found.
type Damage struct {
	Cont       UUID
	OID        OID
	Dkey, Akey string
	Epoch      Epoch
	What       string
}

func (d Damage) String() string {
	return fmt.Sprintf("cont %s obj %s dkey %q akey %q epoch %d: %s", d.Cont, d.OID, d.Dkey, d.Akey, d.Epoch, d.What)
}

// Verify re-reads every stored value and checks its checksums, calling fn for each
// problem. It returns the number of values checked.
func (p *Pool) Verify(fn func(Damage)) (int, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n := 0
	for _, c := range sortedConts(p.conts) {
		if c.csum.Size() == 0 {
			continue
		}
		f := fetcher{p: p, c: c}
		c.objs.Scan(func(ob *objNode) bool {
			f.oid = ob.oid
			ob.dkeys.Scan(func(d *dkeyNode) bool {
				f.dkey = []byte(d.key)
				for _, a := range d.akeys {
					report := func(e Epoch, err error) {
						fn(Damage{Cont: c.uuid, OID: ob.oid, Dkey: d.key, Akey: a.key, Epoch: e, What: err.Error()})
					}
					for i := range a.svs {
						x := &a.svs[i]
						if x.flags&recHole != 0 {
							continue
						}
						n++
						buf := make([]byte, x.size)
						f.e, f.lim, f.ph = x.epoch, noLimit, order{}
						if err := f.verifySV([]byte(a.key), x, buf); err != nil {
							report(x.epoch, err)
						}
					}
					for i := range a.exts {
						x := &a.exts[i]
						if x.flags&recHole != 0 {
							continue
						}
						n++
						buf := make([]byte, x.nr*a.rsize)
						if err := f.readExtent(a, []byte(a.key), fragment{x.recx(), x}, [][]byte{buf}); err != nil {
							report(x.epoch, err)
						}
					}
				}
				return true
			})
			return true
		})
	}
	return n, nil
}

func (f *fetcher) verifySV(akey []byte, x *svRec, buf []byte) error {
	n := uint64(x.size)
	if x.flags&recNVMe == 0 {
		if !f.c.csum.Equal(x.buf[n:], x.buf[:n]) {
			return f.csumErr(akey, "single value", x.order)
		}
		return nil
	}
	if d := f.p.logged(x.off); d != nil {
		copy(buf, d)
	} else if _, err := f.p.data.ReadAt(buf, int64(x.off)); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "read data file")
	}
	if !f.c.csum.Equal(x.buf, buf) {
		return f.csumErr(akey, "single value", x.order)
	}
	return nil
}

// LogSegment describes one log segment as found on disk.
type LogSegment struct {
	Name       string
	Bytes      int64
	Records    int
	FirstSeq   uint64
	LastSeq    uint64
	TailBytes  int64 // non-zero bytes after the last intact record (a torn tail)
	Kinds      map[string]int
	Checkpoint bool // covered by the checkpoint (would be deleted at open)
}

// LogReport is what InspectLog finds.
type LogReport struct {
	CheckpointSeq   uint64
	CheckpointBytes int64
	ReplayFrom      uint64
	CheckpointErr   string
	Segments        []LogSegment
}

// InspectLog reads a target's checkpoint header and log segments without opening
// it (nothing is modified).
func InspectLog(dir string) (LogReport, error) {
	var r LogReport
	if b, err := os.ReadFile(filepath.Join(dir, ckptName)); err == nil {
		r.CheckpointBytes = int64(len(b))
		if ck, err := decodeCheckpoint(b); err != nil {
			r.CheckpointErr = err.Error()
		} else {
			r.CheckpointSeq, r.ReplayFrom = ck.seq, ck.replayFrom
		}
	}
	segs, err := segments(dir)
	if err != nil {
		return r, daoserr.Wrap(daoserr.IO, err, "list log segments of %s", dir)
	}
	for _, s := range segs {
		b, err := os.ReadFile(filepath.Join(dir, segName(s)))
		if err != nil {
			return r, daoserr.Wrap(daoserr.IO, err, "read %s", segName(s))
		}
		ls := LogSegment{Name: segName(s), Bytes: int64(len(b)), Kinds: map[string]int{}, Checkpoint: s < r.ReplayFrom}
		off := 0
		for off < len(b) {
			payload, n, err := readRecord(b[off:])
			if err != nil {
				break
			}
			o, err := decodeOp(payload)
			if err != nil {
				break
			}
			if ls.Records == 0 {
				ls.FirstSeq = o.seq
			}
			ls.LastSeq = o.seq
			ls.Records++
			ls.Kinds[o.kind.String()]++
			off += n
		}
		ls.TailBytes = int64(tornBytes(b[off:]))
		ls.Bytes = int64(off) // the log's content; the rest is zero fill
		r.Segments = append(r.Segments, ls)
	}
	return r, nil
}
