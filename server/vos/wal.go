package vos

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/godaos/godaos/internal/checksum"
	"github.com/godaos/godaos/internal/daoserr"
)

// Log records. Each is
//
//	u32 payload length | u32 crc32c(payload) | payload (an encoded op)
//
// written at the end of the active segment. A batch of records is written with one
// write and made durable with one fdatasync (group commit).
//
// Segments are preallocated with zeros when created, so a commit overwrites blocks
// that already exist: fdatasync then flushes data only, with no file-size or extent
// change for the filesystem to journal. A zero length marks the end of the log.
//
// On open, records are replayed in order until the first one that is zero, short
// or fails its checksum. In the last segment, non-zero bytes from there on are a
// torn tail from a crash and are zeroed (cut); anywhere else a bad record is
// corruption and open fails.

const recHeader = 8

// maxRecord bounds one record; it only stops a corrupt length from being believed.
const maxRecord = 1 << 30

func appendRecord(b []byte, o *op) []byte {
	start := len(b)
	b = append(b, make([]byte, recHeader)...)
	e := encoder{b: b}
	encodeOp(&e, o)
	b = e.b
	payload := b[start+recHeader:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], checksum.Sum32C(payload))
	return b
}

// readRecord returns the payload at the start of b and the record's total size.
// A short record or a checksum mismatch is errTorn.
var errTorn = errors.New("torn or corrupt record")

func readRecord(b []byte) ([]byte, int, error) {
	if len(b) < recHeader {
		return nil, 0, errTorn
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxRecord || uint64(n) > uint64(len(b)-recHeader) {
		return nil, 0, errTorn
	}
	payload := b[recHeader : recHeader+int(n)]
	if checksum.Sum32C(payload) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, errTorn
	}
	return payload, recHeader + int(n), nil
}

func (p *Pool) appendLog(b []byte) error {
	if _, err := p.seg.WriteAt(b, p.segSize); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "write log %s", p.seg.Name())
	}
	if err := unix.Fdatasync(int(p.seg.Fd())); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "sync log %s", p.seg.Name())
	}
	p.segSize += int64(len(b))
	return nil
}

// load reads the checkpoint, then replays the log segments after it.
func (p *Pool) load() error {
	replayFrom, err := p.loadCheckpoint()
	if err != nil {
		return err
	}
	segs, err := segments(p.dir)
	if err != nil {
		return daoserr.Wrap(daoserr.IO, err, "open %s: list log segments", p.dir)
	}
	var live []uint64
	for _, s := range segs {
		if s < replayFrom {
			if !p.opts.ReadOnly { // left over from a checkpoint that crashed before cleanup
				os.Remove(filepath.Join(p.dir, segName(s)))
			}
			continue
		}
		live = append(live, s)
	}
	p.replaying, p.redoData = true, map[uint64][][]byte{}
	for i, s := range live {
		last := i == len(live)-1
		if err := p.replaySegment(s, last); err != nil {
			return err
		}
	}
	p.replaying = false
	if err := p.replayRedo(); err != nil {
		return err
	}
	p.segNo = replayFrom
	if len(live) > 0 {
		p.segNo = live[len(live)-1]
	}
	if p.opts.ReadOnly {
		return nil
	}
	if len(live) == 0 {
		p.seg, err = p.createSegment(p.segNo)
	} else {
		p.seg, err = os.OpenFile(filepath.Join(p.dir, segName(p.segNo)), os.O_WRONLY, 0)
	}
	if err != nil {
		return daoserr.Wrap(daoserr.IO, err, "open %s: log segment", p.dir)
	}
	os.Remove(filepath.Join(p.dir, spareName)) // half-filled by a previous run, maybe
	p.prepareSpare()
	return syncDir(p.dir)
}

// segPrealloc is how much of a new segment is zero-filled up front: enough for the
// log to reach the checkpoint threshold without growing the file.
func (p *Pool) segPrealloc() int64 {
	return min(max(p.checkpointDue()+p.checkpointDue()/4, 64<<10), 256<<20)
}

const spareName = "wal-spare.tmp"

// zeroMiB is shared, read-only fill for new segments.
var zeroMiB = make([]byte, 1<<20)

type spareSegment struct {
	f   *os.File
	err error
}

// prepareSpare zero-fills the next segment in the background, so a checkpoint
// does not stall commits while it writes tens of megabytes of zeros.
func (p *Pool) prepareSpare() {
	ch := make(chan spareSegment, 1)
	p.spare = ch
	// Sized here, not in the goroutine: the size depends on committer state
	// (the last checkpoint's size) that only the committer may read.
	path, size := filepath.Join(p.dir, spareName), p.segPrealloc()
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		f, err := zeroFilled(path, size)
		ch <- spareSegment{f, err}
	}()
}

// WaitBackground returns when the target's background work (preparing the next log
// segment, after open and after each checkpoint) is done. Benchmarks call it so
// that one-off work of opening is not timed; nothing else needs it.
func (p *Pool) WaitBackground() { p.bg.Wait() }

// createSegment makes log segment n, zero-filled and synced: the spare one if it
// is ready, else a new one.
func (p *Pool) createSegment(n uint64) (*os.File, error) {
	path := filepath.Join(p.dir, segName(n))
	if p.spare != nil {
		select {
		case s := <-p.spare:
			p.spare = nil
			if s.err == nil {
				if err := os.Rename(filepath.Join(p.dir, spareName), path); err == nil {
					p.prepareSpare()
					return s.f, nil
				}
				s.f.Close()
			}
		default: // still being filled: do not wait for it
		}
	}
	return zeroFilled(path, p.segPrealloc())
}

// zeroFilled creates path with size bytes of zeros, synced.
func zeroFilled(path string, size int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, err
	}
	zeros := zeroMiB[:min(size, int64(len(zeroMiB)))]
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros, off); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// dropSpare waits for the background fill and removes the spare segment.
func (p *Pool) dropSpare() {
	if p.spare == nil {
		return
	}
	if s := <-p.spare; s.err == nil {
		s.f.Close()
	}
	p.spare = nil
	os.Remove(filepath.Join(p.dir, spareName))
}

func (p *Pool) replaySegment(s uint64, last bool) error {
	path := filepath.Join(p.dir, segName(s))
	b, err := os.ReadFile(path)
	if err != nil {
		return daoserr.Wrap(daoserr.IO, err, "open %s: read log", p.dir)
	}
	off := 0
	for off < len(b) {
		payload, n, err := readRecord(b[off:])
		if err != nil {
			tail := tornBytes(b[off:])
			if tail == 0 {
				break // the zero-filled rest of the segment
			}
			if !last {
				return daoserr.Newf(daoserr.DFInval, "open %s: log segment %s is corrupt at offset %d and later segments exist", p.dir, path, off).
					WithResolution("inspect with 'ddb log' and restore the target from a replica")
			}
			p.truncated += int64(tail)
			if p.opts.ReadOnly {
				p.log.Warn("ignoring torn log tail (read-only: not cut)", "segment", path, "offset", off, "bytes", tail)
			} else {
				p.log.Warn("cut torn log tail", "segment", path, "offset", off, "bytes", tail)
				if err := zeroRange(path, int64(off), int64(tail)); err != nil {
					return daoserr.Wrap(daoserr.IO, err, "open %s: cut torn log tail", p.dir)
				}
			}
			break
		}
		o, err := decodeOp(payload)
		if err == nil && o.seq <= p.seq {
			err = fmt.Errorf("sequence %d after %d", o.seq, p.seq)
		}
		if err == nil {
			// A logged write passed its checks when made; one below the
			// aggregated epoch was a rebuild copy (WriteBelowAggregated,
			// which the log does not record): replay takes it as it was.
			o.cond |= WriteBelowAggregated
			err = p.check(o)
		}
		if err != nil {
			return daoserr.Wrap(daoserr.DFInval, err, "open %s: log record at %s offset %d is intact but invalid", p.dir, path, off)
		}
		p.apply(o)
		for _, e := range p.pendingFree {
			delete(p.redoData, e.off) // freed later in the log: its space may hold newer data
		}
		p.pendingFree = p.pendingFree[:0] // the allocator is rebuilt after replay
		p.seq = o.seq
		p.replayed++
		off += n
	}
	if last {
		p.segSize = int64(off)
	}
	return nil
}

// replayRedo writes the data of redo-logged values back to the data file (a crash
// may have lost it: only the log was flushed) and flushes it, so that a later
// checkpoint can drop those log records.
func (p *Pool) replayRedo() error {
	if p.opts.ReadOnly {
		return nil // keep the logged copies: reads are served from them
	}
	defer func() { p.redoData = nil }()
	if len(p.redoData) == 0 {
		return nil
	}
	for off, data := range p.redoData {
		if err := pwritev(p.data.Fd(), data, int64(off)); err != nil {
			return daoserr.Wrap(daoserr.IO, err, "open %s: restore logged data", p.dir)
		}
	}
	if err := unix.Fdatasync(int(p.data.Fd())); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "open %s: sync data file", p.dir)
	}
	return nil
}

// tornBytes is the length of b up to its last non-zero byte: what a crash left
// after the last intact record (0 if the rest is clean zero fill).
func tornBytes(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return i + 1
		}
	}
	return 0
}

// zeroRange overwrites [off, off+n) of a file with zeros and syncs it.
func zeroRange(path string, off, n int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		return err
	}
	return f.Sync()
}

// rebuildAllocator marks every data-file extent the index references as used.
func (p *Pool) rebuildAllocator() error {
	var bad error
	note := func(off, n uint64, what string) {
		if bad == nil && !p.alloc.reserve(off, n) {
			bad = daoserr.Newf(daoserr.DFInval, "open %s: %s references data-file space [%d, +%d) that is out of range or already used", p.dir, what, off, n)
		}
	}
	for _, c := range p.conts {
		c.objs.Scan(func(ob *objNode) bool {
			ob.dkeys.Scan(func(d *dkeyNode) bool {
				for _, a := range d.akeys {
					for i := range a.svs {
						if x := &a.svs[i]; x.flags&recNVMe != 0 {
							note(x.off, uint64(x.size), "a single value")
						}
					}
					for i := range a.exts {
						if x := &a.exts[i]; x.flags&recNVMe != 0 {
							note(x.off, x.nr*a.rsize, "an array extent")
						}
					}
				}
				return bad == nil
			})
			return bad == nil
		})
	}
	return bad
}

// Checkpoint writes the index to disk now and drops the log before it, so the next
// open replays little. It also runs by itself when the log grows past
// Options.CheckpointBytes.
func (p *Pool) Checkpoint() error { return p.control(p.checkpoint) }

// checkpoint runs on the committer, between batches: every applied op is durable
// and nothing mutates the index while it is written.
//
// Crash safety: the new segment is created first, the checkpoint is written to a
// temporary file, synced and renamed over the old one, and only then are the old
// segments removed. A crash at any step leaves either the old checkpoint with all
// its segments or the new one with its (empty or short) segment.
func (p *Pool) checkpoint() error {
	// Redo-logged values were written to the data file without a flush; the
	// checkpoint is about to drop the log records that also hold their data.
	if err := unix.Fdatasync(int(p.data.Fd())); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "checkpoint %s: sync data file", p.dir)
	}
	next := p.segNo + 1
	seg, err := p.createSegment(next)
	if err != nil {
		return daoserr.Wrap(daoserr.IO, err, "checkpoint %s: new log segment", p.dir)
	}
	if err := syncDir(p.dir); err != nil {
		seg.Close()
		return daoserr.Wrap(daoserr.IO, err, "checkpoint %s", p.dir)
	}
	size, err := p.writeCheckpoint(next)
	if err != nil {
		seg.Close()
		os.Remove(filepath.Join(p.dir, segName(next)))
		return err
	}
	old := p.segNo
	p.seg.Close()
	p.seg, p.segNo, p.segSize = seg, next, 0
	p.ckptSeq, p.ckptSize = p.seq, size
	for s := old; ; s-- {
		if err := os.Remove(filepath.Join(p.dir, segName(s))); err != nil || s == 0 {
			break
		}
	}
	return nil
}
