package vos

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/godaos/godaos/internal/daoserr"
)

// A Pool is the VOS instance of one (pool, target): its files, its index, its log
// committer. Pools share nothing, so targets never contend on a lock.
//
// Files in the target directory (the SCM tier):
//
//	superblock.json   format parameters, written once by Format
//	LOCK              flock'ed while open, so ddb and a server never share a target
//	ckpt              latest checkpoint of the index (optional)
//	wal-<seg>.log     log segments since that checkpoint
//
// and the data file (the NVMe tier), by default <dir>/data.
type Pool struct {
	dir  string
	sb   superblock
	opts Options
	log  *slog.Logger

	lockFile *os.File
	data     *os.File
	dmap     *dataMap // the data file mapped for FetchBorrowed (nil: not mapped)
	alloc    *allocator

	// index, guarded by mu: written only by the committer
	mu    sync.RWMutex
	conts map[UUID]*contNode
	dtx   map[string][]byte // the transaction table (dtx.go)
	// contParams is a copy of conts that the committer republishes when a
	// container is created or destroyed, so that Update finds a container's
	// (immutable) checksum parameters without taking mu against the committer.
	contParams  atomic.Pointer[map[UUID]*contNode]
	scmUsed     int64
	pendingFree []extent

	// log state, owned by the committer goroutine
	seq       uint64 // last assigned
	durable   atomic.Uint64
	pending   atomic.Pointer[pendingBatch] // the batch being made durable
	seg       *os.File
	segNo     uint64
	segSize   int64
	wbuf      []byte
	ckptSeq   uint64
	ckptSize  int64
	ckptTime  time.Time
	replayed  int
	truncated int64
	spare     chan spareSegment // the next segment, zero-filled in the background
	bg        sync.WaitGroup    // background work (the spare segment's fill)
	dwrites   []dataWrite       // data-file writes of the run not yet handed to the data writer
	syncData  bool              // the run has values that are not redo-logged
	dataq     chan []dataWrite  // to the data writer (see placeData)
	dataWG    sync.WaitGroup    // slices of this run on dataq or being written
	dataErr   error             // the data writer's first error of this run (read after dataWG.Wait)
	replaying bool
	redoData  map[uint64][][]byte // replay: data of redo-logged values, by offset
	redoMax   uint64              // largest value redo-logged (0 when the data file is in memory)

	failed  atomic.Pointer[error]
	gate    sync.RWMutex // submitters hold it shared; Close exclusively
	closed  bool
	reqs    chan *request
	loopEnd chan struct{}
}

// FormatOptions describe a new target.
type FormatOptions struct {
	ScmSize    uint64 // bytes for the index and inline values
	NvmeSize   uint64 // bytes of the data file
	DataFile   string // data file path (e.g. on another device); default "data" in dir
	DataThresh uint64 // values smaller than this stay in the SCM tier; default 4 KiB
}

// Options tune an open pool.
type Options struct {
	// CheckpointBytes: checkpoint when the active log segment exceeds this size
	// (default 64 MiB). Smaller keeps replay shorter, larger writes less.
	CheckpointBytes int64
	// ReadOnly opens for inspection (ddb): nothing is written, a torn log tail is
	// skipped but not cut, and mutations fail with DER_NO_PERM.
	ReadOnly bool
	Logger   *slog.Logger
	// Stamp, when set, stamps updates and punches submitted with epoch 0
	// (UpdateNow, Punch*Now) as the committer applies them: epochs then
	// follow the log's order, so the durable prefix a reader of the latest
	// sees is also a prefix in epoch order (the engine passes its clock).
	Stamp func() Epoch
}

type superblock struct {
	Magic      string    `json:"magic"`
	Version    int       `json:"version"`
	ScmSize    uint64    `json:"scm_size"`
	NvmeSize   uint64    `json:"nvme_size"`
	DataFile   string    `json:"data_file"`
	DataThresh uint64    `json:"data_thresh"`
	Created    time.Time `json:"created"`
}

const (
	sbMagic   = "godaos-vos"
	sbVersion = 1
	sbName    = "superblock.json"
	ckptName  = "ckpt"
	lockName  = "LOCK"

	defaultCheckpointBytes = 64 << 20
	maxBatch               = 512
)

// Format creates a target in dir (created if missing) and preallocates its data
// file, so the tier can never run out of disk behind the allocator's back.
func Format(dir string, fo FormatOptions) error {
	if fo.ScmSize == 0 {
		return daoserr.New(daoserr.Inval, "format: scm_size is 0").WithResolution("give the SCM tier a size, e.g. 1G")
	}
	if fo.DataThresh == 0 {
		fo.DataThresh = defaultDataThresh
	}
	dataPath := fo.DataFile
	if dataPath == "" {
		fo.DataFile = "data" // relative: the target directory can be moved or copied whole
		dataPath = filepath.Join(dir, fo.DataFile)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "format %s", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, sbName)); err == nil {
		return daoserr.Newf(daoserr.Exist, "format %s: already formatted", dir).
			WithResolution("remove the directory (destroying its data) or open it instead")
	}
	// The SCM tier's files: a checkpoint (about scm_size) plus a new one while it is
	// written, plus the log. Refuse up front rather than fail later.
	if err := checkFree(dir, 2*fo.ScmSize); err != nil {
		return err
	}
	f, err := os.OpenFile(dataPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return daoserr.Wrap(daoserr.IO, err, "format: create data file")
	}
	defer f.Close()
	if fo.NvmeSize > 0 {
		if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(fo.NvmeSize)); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return daoserr.Wrap(daoserr.NoSpace, err, "format: preallocate %d bytes for data file %s", fo.NvmeSize, dataPath).
					WithResolution("lower nvme size or free disk space")
			}
			if err := f.Truncate(int64(fo.NvmeSize)); err != nil {
				return daoserr.Wrap(daoserr.IO, err, "format: size data file")
			}
		}
	}
	if err := f.Sync(); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "format: sync data file")
	}
	sb := superblock{Magic: sbMagic, Version: sbVersion, ScmSize: fo.ScmSize, NvmeSize: fo.NvmeSize,
		DataFile: fo.DataFile, DataThresh: fo.DataThresh, Created: time.Now().UTC()}
	b, _ := json.MarshalIndent(sb, "", "  ")
	if err := writeFileSync(filepath.Join(dir, sbName), b); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "format: write superblock")
	}
	return syncDir(dir)
}

// inMemory reports whether f is on tmpfs or ramfs, where fdatasync costs nothing.
func inMemory(f *os.File) bool {
	var st unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &st) != nil {
		return false
	}
	return st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC
}

func checkFree(dir string, need uint64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil // cannot tell; the first write will say
	}
	if free := st.Bavail * uint64(st.Bsize); free < need {
		return daoserr.Newf(daoserr.NoSpace, "format %s: the SCM tier needs %d bytes free for its index files, the filesystem has %d", dir, need, free).
			WithResolution("lower scm_size or free space")
	}
	return nil
}

// Open opens a formatted target: it loads the checkpoint, replays the log after
// it (cutting a torn tail), rebuilds the allocator and starts the committer.
func Open(dir string, opts Options) (*Pool, error) {
	if opts.CheckpointBytes <= 0 {
		opts.CheckpointBytes = defaultCheckpointBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Pool{dir: dir, opts: opts, log: opts.Logger.With("target", dir), conts: map[UUID]*contNode{}}
	b, err := os.ReadFile(filepath.Join(dir, sbName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, daoserr.Newf(daoserr.Nonexist, "open %s: not a formatted VOS target (no %s)", dir, sbName).
				WithResolution("format it first")
		}
		return nil, daoserr.Wrap(daoserr.IO, err, "open %s", dir)
	}
	if err := json.Unmarshal(b, &p.sb); err != nil || p.sb.Magic != sbMagic {
		return nil, daoserr.Newf(daoserr.DFInval, "open %s: %s is not a GoDAOS VOS superblock", dir, sbName)
	}
	if p.sb.Version != sbVersion {
		return nil, daoserr.Newf(daoserr.DFIncompt, "open %s: durable format version %d, this build reads %d", dir, p.sb.Version, sbVersion)
	}
	if err := p.lock(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			p.dropSpare()
			p.closeFiles()
		}
	}()
	flag := os.O_RDWR
	if opts.ReadOnly {
		flag = os.O_RDONLY
	}
	if !filepath.IsAbs(p.sb.DataFile) {
		p.sb.DataFile = filepath.Join(dir, p.sb.DataFile)
	}
	if p.data, err = os.OpenFile(p.sb.DataFile, flag, 0); err != nil {
		return nil, daoserr.Wrap(daoserr.IO, err, "open %s: data file", dir)
	}
	p.redoMax = redoMax
	if inMemory(p.data) {
		p.redoMax = 0
	}
	if err := p.load(); err != nil {
		return nil, err
	}
	p.publishConts()
	p.alloc = newAllocator(p.sb.NvmeSize)
	if err := p.rebuildAllocator(); err != nil {
		return nil, err
	}
	p.durable.Store(p.seq)
	p.reqs = make(chan *request, 4*maxBatch)
	p.loopEnd = make(chan struct{})
	p.dataq = make(chan []dataWrite, 16)
	p.dmap = p.mapData()
	go p.dataWriter()
	go p.commitLoop()
	ok = true
	return p, nil
}

func (p *Pool) lock() error {
	f, err := os.OpenFile(filepath.Join(p.dir, lockName), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return daoserr.Wrap(daoserr.IO, err, "open %s: lock file", p.dir)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(filepath.Join(p.dir, lockName))
		f.Close()
		return daoserr.Newf(daoserr.Busy, "open %s: target is in use by %s", p.dir, strings.TrimSpace(string(owner))).
			WithResolution("stop the server (or tool) using it first")
	}
	if !p.opts.ReadOnly {
		f.Truncate(0)
		fmt.Fprintf(f, "pid %d\n", os.Getpid())
	}
	p.lockFile = f
	return nil
}

// Close stops accepting requests, lets queued ones commit, and closes the files.
// Everything acknowledged is in the log; Close does not need to checkpoint.
func (p *Pool) Close() error {
	p.gate.Lock()
	if p.closed {
		p.gate.Unlock()
		return nil
	}
	p.closed = true
	close(p.reqs)
	p.gate.Unlock()
	<-p.loopEnd
	close(p.dataq)
	p.dropSpare()
	if err := p.dmap.close(); err != nil { // waits for borrowers
		p.log.Warn("unmap data file", "err", err)
	}
	return p.closeFiles()
}

func (p *Pool) closeFiles() error {
	var errs []error
	for _, f := range []*os.File{p.seg, p.data, p.lockFile} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// Dir is the target directory.
func (p *Pool) Dir() string { return p.dir }

// ---- the committer: group commit ----

type request struct {
	op     *op
	fn     func() error // control action run by the committer (checkpoint)
	err    error
	done   chan struct{}
	notify func(error) // optional instead of done
}

var reqPool = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

// finish tells the submitter its op is done: its notify function, or done.
func (r *request) finish() {
	if r.notify != nil {
		r.notify(r.err)
		return
	}
	r.done <- struct{}{}
}

// submitAsync hands an op to the committer without waiting; notify gets the
// outcome once it is durable (or rejected). Ops are logged in the order
// they are submitted, and a durable op implies every earlier one is.
func (p *Pool) submitAsync(o *op, notify func(error)) error {
	if p.opts.ReadOnly {
		return daoserr.Newf(daoserr.NoPerm, "%s: target %s is open read-only", o.kind, p.dir)
	}
	return p.send(&request{op: o, notify: notify})
}

// submit hands an op to the committer and waits until it is durable (or rejected).
func (p *Pool) submit(o *op) error {
	if p.opts.ReadOnly {
		return daoserr.Newf(daoserr.NoPerm, "%s: target %s is open read-only", o.kind, p.dir)
	}
	r := reqPool.Get().(*request)
	r.op, r.err, r.fn = o, nil, nil
	if err := p.send(r); err != nil {
		reqPool.Put(r)
		return err
	}
	<-r.done
	err := r.err
	r.op = nil
	reqPool.Put(r)
	return err
}

func (p *Pool) send(r *request) error {
	p.gate.RLock()
	defer p.gate.RUnlock()
	if p.closed {
		return daoserr.Newf(daoserr.Shutdown, "target %s is closed", p.dir)
	}
	if e := p.failed.Load(); e != nil {
		return *e
	}
	p.reqs <- r
	return nil
}

// control runs fn on the committer between batches.
func (p *Pool) control(fn func() error) error {
	r := &request{fn: fn, done: make(chan struct{}, 1)}
	if err := p.send(r); err != nil {
		return err
	}
	<-r.done
	return r.err
}

func (p *Pool) commitLoop() {
	defer close(p.loopEnd)
	batch := make([]*request, 0, maxBatch)
	for r := range p.reqs {
		batch = append(batch[:0], r)
	drain:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-p.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		p.commitBatch(batch)
	}
}

func (p *Pool) commitBatch(batch []*request) {
	for i := 0; i < len(batch); {
		r := batch[i]
		if r.fn != nil {
			r.err = p.runControl(r.fn)
			r.finish()
			i++
			continue
		}
		j := i + 1
		if !r.op.kind.barrier() {
			for j < len(batch) && batch[j].fn == nil && !batch[j].op.kind.barrier() {
				j++
			}
		}
		p.commitRun(batch[i:j])
		i = j
	}
	if p.segSize >= p.checkpointDue() && p.failed.Load() == nil {
		if err := p.checkpoint(); err != nil {
			p.log.Error("checkpoint failed; the log keeps growing", "err", err)
		}
	}
}

// checkpointDue is the log size that triggers a checkpoint: CheckpointBytes, or
// four times the last checkpoint if that is larger, so that writing checkpoints
// (the whole index each time) costs at most a quarter of writing the log.
func (p *Pool) checkpointDue() int64 {
	return max(p.opts.CheckpointBytes, 4*p.ckptSize)
}

func (p *Pool) runControl(fn func() error) error {
	if e := p.failed.Load(); e != nil {
		return *e
	}
	return fn()
}

// commitRun checks and applies a run of ops, writes their records in one write,
// makes them durable with one fdatasync (after one of the data file if any op wrote
// data there), then publishes them to readers and wakes the writers.
func (p *Pool) commitRun(run []*request) {
	if e := p.failed.Load(); e != nil {
		for _, r := range run {
			r.err = *e
			r.finish()
		}
		return
	}
	p.wbuf = p.wbuf[:0]
	p.dwrites = p.dwrites[:0]
	p.syncData = false
	if p.dmap != nil {
		p.releaseFreed(nil) // space set aside for borrowers that have since released
	}
	limitRedo(run)
	applied := 0
	var batch *pendingBatch // epochs applied but not yet durable (WaitDurable)
	defer func() {
		if batch != nil {
			p.pending.CompareAndSwap(batch, nil)
			close(batch.done)
		}
	}()
	p.mu.Lock()
	for _, r := range run {
		if r.op.kind.writes() && batch == nil {
			// published before the first stamp: a reader whose clock moved
			// past an epoch before that stamp was taken finds the batch
			// (its smallest epoch is 0, "wait", until the first op's epoch
			// is known, just below)
			batch = &pendingBatch{done: make(chan struct{})}
			p.pending.Store(batch)
		}
		if r.op.epoch == 0 && p.opts.Stamp != nil && r.op.kind.writes() {
			r.op.epoch = p.opts.Stamp() // in log order: see Options.Stamp
		}
		if r.op.kind.writes() { // a lower bound as soon as the epoch is known, applied or not
			if !batch.known {
				batch.known = true
				batch.min.Store(r.op.epoch)
			}
			batch.lower(r.op.epoch)
		}
		if err := p.check(r.op); err != nil {
			r.err = err
			continue
		}
		if err := p.checkSpace(r.op); err != nil {
			r.err = err
			continue
		}
		if err := p.placeData(r.op); err != nil {
			r.err = err
			continue
		}
		p.seq++
		r.op.seq = p.seq
		p.wbuf = appendRecord(p.wbuf, r.op) // before apply, which drops redo data from the op
		p.apply(r.op)
		applied++
	}
	p.mu.Unlock()

	var err error
	if applied > 0 {
		// Data first, then the log records that reference it: a record must never
		// be durable before its data.
		err = p.finishData(p.syncData)
		if err == nil {
			err = p.appendLog(p.wbuf)
		}
		if err != nil {
			// What is in memory may not be on disk: stop taking writes, as a
			// database does after a failed fsync, rather than acknowledge anything.
			p.log.Error("log write failed; target stops accepting updates", "err", err)
			p.failed.Store(&err)
		} else {
			p.durable.Store(p.seq)
			p.releaseFreed(p.pendingFree)
		}
		p.pendingFree = p.pendingFree[:0]
	}
	for _, r := range run {
		if r.err == nil && err != nil {
			r.err = err
		}
		r.finish()
	}
}

// redoRunMax bounds the redo-logged bytes of one run. Redo logging trades a
// second write of the data (the log's copy) for one flush less per commit; that
// pays while commits are small and flush latency dominates, not once a run
// carries enough data that the disk's bandwidth does: then the values of the run
// are written once, to the data file, and flushed before the log.
const redoRunMax = 64 << 10

// limitRedo turns redo logging off for every value of a run whose redo-logged
// data would exceed redoRunMax.
func limitRedo(run []*request) {
	var n uint64
	for _, r := range run {
		for _, d := range r.op.data {
			if d.redo {
				n += d.n
			}
		}
	}
	if n <= redoRunMax {
		return
	}
	for _, r := range run {
		o := r.op
		for i := range o.data {
			if d := &o.data[i]; d.redo {
				d.redo = false
				v := &o.vals[d.val]
				v.flags &^= recRedo
				v.redo = nil
			}
		}
	}
}

// dataWrite is one vectored write of the data file: values placed back to back.
type dataWrite struct {
	off, len uint64
	bufs     [][]byte
}

var zeroBlock = make([]byte, blockSize)

// dataHandoff is how many queued data-file bytes placeData lets accumulate before
// handing them to the data writer, so that writing a run's values overlaps with
// checking and applying the rest of the run (copying into the page cache costs
// more than indexing a small value).
const dataHandoff = 128 << 10

// placeData allocates data-file space for an op's NVMe-tier values and queues
// their writes, merging them with the run's previous write when adjacent, so a
// group commit of many small values costs a few pwritev calls. Values are padded
// to whole blocks (from a shared zero block) so that consecutive allocations stay
// adjacent.
func (p *Pool) placeData(o *op) error {
	for i, d := range o.data {
		off, ok := p.alloc.alloc(d.n)
		if !ok {
			for _, prev := range o.data[:i] {
				p.alloc.release(o.vals[prev.val].off, prev.n)
			}
			used, total := p.alloc.usage()
			return daoserr.Newf(daoserr.NoSpace, "update obj %s dkey %q: NVMe tier of target %s is full (%d of %d bytes used, %d needed)",
				o.oid, o.dkey, p.dir, used, total, roundUp(d.n)).WithResolution("aggregate or delete data, or give the pool more NVMe space")
		}
		o.vals[d.val].off = off
	}
	var queued uint64
	for _, d := range o.data {
		p.syncData = p.syncData || !d.redo
		off, n := o.vals[d.val].off, roundUp(d.n)
		bufs := d.src
		if pad := n - d.n; pad > 0 {
			bufs = append(bufs[:len(bufs):len(bufs)], zeroBlock[:pad])
		}
		if k := len(p.dwrites) - 1; k >= 0 && p.dwrites[k].off+p.dwrites[k].len == off {
			p.dwrites[k].len += n
			p.dwrites[k].bufs = append(p.dwrites[k].bufs, bufs...)
		} else {
			p.dwrites = append(p.dwrites, dataWrite{off: off, len: n, bufs: append([][]byte(nil), bufs...)})
		}
	}
	for _, w := range p.dwrites {
		queued += w.len
	}
	if queued >= dataHandoff {
		p.handOffData()
	}
	return nil
}

// handOffData sends the queued data writes to the data writer.
func (p *Pool) handOffData() {
	if len(p.dwrites) == 0 {
		return
	}
	p.dataWG.Add(1)
	p.dataq <- p.dwrites // blocks only while the writer is busy: it never waits on the committer
	p.dwrites = nil      // the writer owns that slice now
}

// finishData hands off what is still queued, waits until the data writer has
// written everything of this run and, if sync, makes it durable (not needed when
// every value is redo-logged: the log record carries the data).
func (p *Pool) finishData(sync bool) error {
	p.handOffData()
	p.dataWG.Wait()
	err := p.dataErr
	p.dataErr = nil
	if err != nil || !sync {
		return err
	}
	if err := unix.Fdatasync(int(p.data.Fd())); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "sync data file %s", p.data.Name())
	}
	return nil
}

// dataWriter performs the data-file writes the committer hands it, in order,
// keeping the first error of the run in dataErr. One per target, ending when
// Close closes dataq.
func (p *Pool) dataWriter() {
	for ws := range p.dataq {
		for _, w := range ws {
			if p.dataErr != nil {
				break // the run fails anyway
			}
			if err := pwritev(p.data.Fd(), w.bufs, int64(w.off)); err != nil {
				p.dataErr = daoserr.Wrap(daoserr.IO, err, "write data file %s", p.data.Name())
			}
		}
		p.dataWG.Done()
	}
}

func (p *Pool) checkSpace(o *op) error {
	if o.kind != opUpdate {
		return nil
	}
	var need int64
	for i := range o.vals {
		need += recordBytes(o.vals[i].buf)
	}
	if p.scmUsed+need > int64(p.sb.ScmSize) {
		return daoserr.Newf(daoserr.NoSpace, "update obj %s dkey %q: SCM tier of target %s is full (%d of %d bytes used, %d needed)",
			o.oid, o.dkey, p.dir, p.scmUsed, p.sb.ScmSize, need).WithResolution("aggregate or delete data, or give the pool more SCM")
	}
	return nil
}

func (p *Pool) fail() error {
	if e := p.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// ---- small file helpers ----

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// segments lists the log segment numbers in dir, ascending.
func segments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []uint64
	for _, e := range ents {
		var n uint64
		if _, err := fmt.Sscanf(e.Name(), "wal-%016x.log", &n); err == nil && e.Name() == segName(n) {
			segs = append(segs, n)
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i] < segs[j] })
	return segs, nil
}

func segName(n uint64) string { return fmt.Sprintf("wal-%016x.log", n) }

// pendingBatch is the smallest epoch of a batch applied in memory and not
// yet durable, and a channel closed when the batch is done.
type pendingBatch struct {
	min   atomic.Uint64 // 0 until the first op's epoch is known
	known bool          // the committer's: min holds an op's epoch
	done  chan struct{}
}

func (b *pendingBatch) lower(e Epoch) {
	for {
		cur := b.min.Load()
		if e >= cur || b.min.CompareAndSwap(cur, e) {
			return
		}
	}
}

// WaitDurable returns once no update or punch at or below epoch is applied
// in memory without being durable yet: a reader at that epoch then sees
// everything it will ever see there. (A reader of the latest needs no wait:
// it sees the durable prefix of the log.) It waits at most one batch's
// commit at a time.
func (p *Pool) WaitDurable(epoch Epoch) {
	for range 64 { // a new batch may start at or below epoch only while its ops were stamped before the caller's clock moved
		b := p.pending.Load()
		if b == nil || b.min.Load() > epoch {
			return
		}
		<-b.done
	}
}
