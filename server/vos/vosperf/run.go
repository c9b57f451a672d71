package vosperf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/godaos/godaos/server/vos"
)

// Run runs every case of cfg and, if cfg.MemCount > 0, the index-memory
// measurement. Everything it creates on disk is removed before it returns.
func Run(ctx context.Context, cfg Config) (*RunReport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x766f735f70657266))}
	if err := r.setup(); err != nil {
		return nil, err
	}
	defer r.cleanup()

	rep := &RunReport{Label: cfg.Label, ScmDir: r.scmRoot, ScmFS: fsType(r.scmRoot),
		DataDir: r.dataDir(), DataFS: fsType(r.dataDir()), Csum: r.csumName()}
	if cfg.Raw && len(cfg.Sizes) > 0 {
		rep.Rounds = cfg.rounds()
	}
	for _, typ := range cfg.Types {
		for _, size := range cfg.Sizes {
			for _, pat := range cfg.Patterns {
				for _, conc := range cfg.Concurrency {
					rows, thresh, err := r.vosCase(ctx, typ, size, pat, conc)
					if err != nil {
						return rep, fmt.Errorf("%v %v %v c=%d: %w", typ, size, pat, conc, err)
					}
					rep.DataThresh = thresh
					rep.Rows = append(rep.Rows, rows...)
				}
			}
		}
	}
	if cfg.MemCount > 0 {
		for _, typ := range []vos.IODType{vos.IODSingle, vos.IODArray} {
			m, err := r.memory(ctx, typ, cfg.MemCount)
			if err != nil {
				return rep, fmt.Errorf("index memory (%v): %w", typ, err)
			}
			rep.Memory = append(rep.Memory, m)
		}
	}
	return rep, nil
}

type runner struct {
	cfg     Config
	rng     *rand.Rand
	base    string // our directory under cfg.Dir
	scmRoot string // where pool directories (SCM tier) go
	dropDF  bool   // cfg.DataFile did not exist: remove it after each case
	seq     int    // numbers pools and raw files
	pats    map[ByteSize][]byte
}

func (r *runner) setup() error {
	var err error
	if r.cfg.Dir != "" {
		if err = os.MkdirAll(r.cfg.Dir, 0o750); err != nil {
			return err
		}
	}
	// os.MkdirTemp with an empty dir uses os.TempDir().
	if r.base, err = os.MkdirTemp(r.cfg.Dir, "vosperf-"); err != nil {
		return err
	}
	r.scmRoot = r.base
	if r.cfg.ScmDir != "" {
		if err = os.MkdirAll(r.cfg.ScmDir, 0o750); err != nil {
			return err
		}
		if r.scmRoot, err = os.MkdirTemp(r.cfg.ScmDir, "vosperf-scm-"); err != nil {
			return err
		}
	}
	if r.cfg.DataFile != "" {
		_, err := os.Stat(r.cfg.DataFile)
		r.dropDF = errors.Is(err, os.ErrNotExist)
	}
	r.pats = map[ByteSize][]byte{}
	return nil
}

func (r *runner) cleanup() {
	if r.cfg.Keep {
		return
	}
	os.RemoveAll(r.base)
	if r.scmRoot != r.base {
		os.RemoveAll(r.scmRoot)
	}
	if r.dropDF {
		os.Remove(r.cfg.DataFile)
	}
}

// dataDir is where the data files (and so the raw baselines of large values) live.
func (r *runner) dataDir() string {
	if r.cfg.DataFile != "" {
		return filepath.Dir(r.cfg.DataFile)
	}
	return r.base
}

func (r *runner) csumName() string {
	if r.cfg.NoCsum {
		return "off"
	}
	if r.cfg.Csum == 0 {
		return "crc32" // VOS's default
	}
	return r.cfg.Csum.String()
}

func (r *runner) pattern(size ByteSize) []byte {
	if p := r.pats[size]; p != nil {
		return p
	}
	p := pattern(int(size), r.cfg.Seed)
	r.pats[size] = p
	return p
}

func (r *runner) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "vos_perf: "+format+"\n", args...)
	}
}

// ---- one VOS target ----

// target is a freshly formatted VOS target with one container.
type target struct {
	pool     *vos.Pool
	cont     vos.UUID
	dir      string
	dataFile string
	epoch    atomic.Uint64
}

// newTarget formats and opens a target sized for n values of size bytes.
func (r *runner) newTarget(n int, size ByteSize) (*target, error) {
	r.seq++
	t := &target{dir: filepath.Join(r.scmRoot, fmt.Sprintf("target-%d", r.seq)), cont: vos.UUIDFromUint64(1)}
	t.dataFile = r.cfg.DataFile
	if t.dataFile == "" {
		t.dataFile = filepath.Join(r.base, fmt.Sprintf("target-%d.data", r.seq))
	}
	thresh := r.cfg.dataThresh()
	scm, nvme := uint64(r.cfg.ScmSize), uint64(r.cfg.NvmeSize)
	if scm == 0 {
		// per value: a record header, checksums, the value itself when inline
		per := uint64(256)
		if uint64(size) < thresh {
			per += uint64(size)
		}
		scm = max(64<<20, 2*uint64(n)*per)
	}
	if nvme == 0 {
		nvme = 16 << 20
		if uint64(size) >= thresh {
			nvme += uint64(n) * ((uint64(size) + 4095) &^ 4095)
		}
	}
	fo := vos.FormatOptions{ScmSize: scm, NvmeSize: nvme, DataFile: t.dataFile, DataThresh: uint64(r.cfg.DataThresh)}
	if err := vos.Format(t.dir, fo); err != nil {
		return nil, err
	}
	p, err := vos.Open(t.dir, vos.Options{})
	if err != nil {
		r.removeTarget(t)
		return nil, err
	}
	t.pool = p
	co := vos.ContOptions{Csum: r.cfg.Csum, NoCsum: r.cfg.NoCsum}
	if err := p.CreateContainer(t.cont, co); err != nil {
		r.closeTarget(t)
		return nil, err
	}
	return t, nil
}

func (r *runner) closeTarget(t *target) error {
	err := t.pool.Close()
	r.removeTarget(t)
	return err
}

func (r *runner) removeTarget(t *target) {
	if r.cfg.Keep {
		fmt.Fprintf(os.Stderr, "vos_perf: kept target %s\n", t.dir)
		return
	}
	os.RemoveAll(t.dir)
	if t.dataFile != r.cfg.DataFile || r.dropDF {
		os.Remove(t.dataFile)
	}
}

// layout maps value k of object w to VOS keys. Single values: one dkey per value
// (an 8-byte integer key). Arrays: as DAOS's array API lays out a byte array, one
// akey of 1-byte records, the extent at byte offset k*size, in the dkey of its
// 1 MiB chunk.
type layout struct {
	typ  vos.IODType
	size uint64
}

var akey = []byte("0")

func (l layout) oid(w int) vos.OID {
	t := vos.ObjDkeyUint64
	if l.typ == vos.IODArray {
		t = vos.ObjArray
	}
	return vos.OID{Hi: uint64(t) << 56, Lo: uint64(w) + 1}
}

// keys fills dkey (8 bytes) and returns the IOD of value k.
func (l layout) keys(k uint64, dkey []byte, iod *vos.IOD) {
	iod.Akey, iod.Type = akey, l.typ
	if l.typ == vos.IODSingle {
		binary.LittleEndian.PutUint64(dkey, k)
		iod.Size = l.size
		return
	}
	off := k * l.size
	binary.LittleEndian.PutUint64(dkey, off/arrayChunk)
	iod.Size = 1
	iod.Recxs[0] = vos.Recx{Idx: off, Nr: l.size}
}

// updater returns worker w's update op: each op writes a new value of its object.
func (t *target) updater(l layout, pat []byte) func(w int) func(item) error {
	return func(w int) func(item) error {
		oid, buf, dkey := l.oid(w), append([]byte(nil), pat...), make([]byte, 8)
		iods := []vos.IOD{{Recxs: make([]vos.Recx, 1)}}
		sgls := []vos.SGL{{buf}}
		return func(it item) error {
			stamp(buf, itemID(it))
			l.keys(it.k, dkey, &iods[0])
			return t.pool.Update(t.cont, oid, t.epoch.Add(1), 0, dkey, iods, sgls)
		}
	}
}

// fetcher returns worker w's fetch op, which checks what it read.
func (t *target) fetcher(l layout, pat []byte, every int) func(w int) func(item) error {
	return func(w int) func(item) error {
		buf, dkey := make([]byte, l.size), make([]byte, 8)
		iods := []vos.IOD{{Recxs: make([]vos.Recx, 1)}}
		sgls := []vos.SGL{{buf}}
		n := 0
		return func(it item) error {
			l.keys(it.k, dkey, &iods[0])
			res, err := t.pool.Fetch(t.cont, l.oid(it.w), vos.EpochMax, 0, dkey, iods, sgls)
			if err != nil {
				return err
			}
			switch {
			case l.typ == vos.IODSingle && res[0].Size != l.size:
				return fmt.Errorf("fetch obj %d value %d: size %d, wrote %d", it.w, it.k, res[0].Size, l.size)
			case l.typ == vos.IODArray && (len(res[0].Extents) != 1 || res[0].Extents[0] != iods[0].Recxs[0]):
				return fmt.Errorf("fetch obj %d extent %v: found extents %v", it.w, iods[0].Recxs[0], res[0].Extents)
			case !stampOK(buf, itemID(it)):
				return fmt.Errorf("fetch obj %d value %d: returned another value's bytes", it.w, it.k)
			}
			if n++; n%every == 0 && !bodyOK(buf, pat) {
				return fmt.Errorf("fetch obj %d value %d: data differs from what was written", it.w, it.k)
			}
			return nil
		}
	}
}

// vosCase runs the update and fetch phases of one case with their raw baselines.
// The update phase takes turns with pwrite+fdatasync (same concurrency) and
// write+fdatasync (same concurrency and 1), the fetch phase with pread, in
// cfg.Rounds rounds each (see interleave): each row's time and latencies are
// those of its own blocks.
func (r *runner) vosCase(ctx context.Context, typ vos.IODType, size ByteSize, pat Pattern, conc int) ([]Row, uint64, error) {
	n := r.countFor(size, conc)
	fconc := r.cfg.FetchConcurrency
	if fconc == 0 {
		fconc = conc
	}
	rounds := r.cfg.rounds()
	t, err := r.newTarget(n, size)
	if err != nil {
		return nil, 0, err
	}
	closed := false
	defer func() {
		if !closed {
			r.closeTarget(t)
		}
	}()
	info := t.pool.Query()
	l := layout{typ: typ, size: uint64(size)}
	data := r.pattern(size)
	// Opening a target zero-fills a spare log segment in the background (tens of
	// MiB, synced): a one-off cost of opening, which would otherwise land on
	// whichever blocks run first, VOS or raw.
	t.pool.WaitBackground()

	// The raw files are created (and the positioned one preallocated) before any
	// timing, as VOS's format preallocates its data file. Values below
	// data_thresh go to the SCM tier's log, larger ones to the data file: compare
	// with raw I/O on that filesystem.
	var (
		slots      *rawFile
		appends    []*rawFile
		appendConc = uniq(conc, 1)
	)
	defer func() {
		for _, rf := range append(appends, slots) {
			if rf != nil {
				rf.close()
			}
		}
	}()
	if r.cfg.Raw {
		dir := r.dataDir()
		if uint64(size) < info.DataThresh {
			dir = r.scmRoot
		}
		rn := r.cfg.rawCountFor(size)
		if slots, err = r.newSlotFile(dir, size, max(rn, conc, fconc)); err != nil {
			return nil, 0, err
		}
		for _, c := range appendConc {
			af, err := r.newAppendFile(dir, size, max(rn, c))
			if err != nil {
				return nil, 0, err
			}
			appends = append(appends, af)
		}
	}

	// update: each worker its own object, its own values in key order or shuffled
	parts := split(spread(n, conc), conc)
	if pat == Rand {
		for _, p := range parts {
			shuffle(p, r.rng)
		}
	}
	upd := []*phase{newPhase("update", parts, t.updater(l, data))}
	note := ""
	if r.cfg.Raw {
		upd = append(upd, r.pwritePhase(slots, pat, conc))
		note = fmt.Sprintf(", with raw %s c=%d", rawPwrite, conc)
		for i, af := range appends {
			upd = append(upd, r.appendPhase(af, appendConc[i]))
			note += fmt.Sprintf(", %s c=%d", rawAppend, appendConc[i])
		}
		note += fmt.Sprintf(" (%d ops each) in %s, interleaved in %d rounds", r.cfg.rawCountFor(size), slots.dir, rounds)
	}
	r.progress("vos update %v %v %v c=%d: %d ops%s", typ, size, pat, conc, n, note)
	if err := interleave(ctx, rounds, upd...); err != nil {
		return nil, 0, err
	}
	up := newRow("vos", "update", typ.String(), size, pat, conc, upd[0].stats())
	if r.cfg.Raw {
		up.compare(rawRow(rawPwrite, slots, pat, conc, upd[1]))
		for i, af := range appends {
			up.compare(rawRow(rawAppend, af, Seq, appendConc[i], upd[2+i]))
			af.close() // not needed for the fetch phase
		}
	}

	// fetch: the same values, in the same order (seq) or another permutation
	// (rand), beside pread of the slots pwrite+fdatasync wrote
	all := spread(n, conc)
	if pat == Rand {
		shuffle(all, r.rng)
	}
	fet := []*phase{newPhase("fetch", split(all, fconc), t.fetcher(l, data, r.cfg.verifyEvery()))}
	note = ""
	if r.cfg.Raw {
		fet = append(fet, r.preadPhase(slots, pat, fconc))
		note = fmt.Sprintf(", with raw %s c=%d, interleaved in %d rounds", rawPread, fconc, rounds)
	}
	r.progress("vos fetch %v %v %v c=%d: %d ops%s", typ, size, pat, fconc, n, note)
	if err := interleave(ctx, rounds, fet...); err != nil {
		return nil, 0, err
	}
	fe := newRow("vos", "fetch", typ.String(), size, pat, fconc, fet[0].stats())
	if r.cfg.Raw {
		fe.compare(rawRow(rawPread, slots, pat, fconc, fet[1]))
	}

	closed = true
	if err := r.closeTarget(t); err != nil {
		return nil, 0, err
	}
	return []Row{up, fe}, info.DataThresh, nil
}

// countFor is the case's op count, at least one per worker.
func (r *runner) countFor(size ByteSize, conc int) int {
	return max(r.cfg.countFor(size), conc)
}

func uniq(a, b int) []int {
	if a == b {
		return []int{a}
	}
	return []int{a, b}
}

func newRow(engine, op, typ string, size ByteSize, pat Pattern, conc int, st phaseStats) Row {
	row := Row{Engine: engine, Op: op, Type: typ, Size: uint64(size), Pattern: string(pat), Concurrency: conc,
		Ops: st.ops, Bytes: uint64(st.ops) * uint64(size), Seconds: st.wall.Seconds(),
		P50us: us(st.percentile(0.50)), P99us: us(st.percentile(0.99)), P999us: us(st.percentile(0.999))}
	if st.wall > 0 {
		row.OpsPerSec = float64(st.ops) / st.wall.Seconds()
		row.MiBPerSec = float64(row.Bytes) / (1 << 20) / st.wall.Seconds()
	}
	return row
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// fsType names the filesystem holding path.
func fsType(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "?"
	}
	switch uint64(st.Type) {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlay"
	case unix.NFS_SUPER_MAGIC:
		return "nfs"
	case 0x2fc12fc1:
		return "zfs"
	case unix.F2FS_SUPER_MAGIC:
		return "f2fs"
	}
	return fmt.Sprintf("0x%x", uint64(st.Type))
}
