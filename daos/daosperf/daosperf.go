// Package daosperf is the daos_perf benchmark: workers update and then fetch
// values of one size in one object of a chosen class, through the client API
// and the engines, and report throughput, latency and CPU time per operation
// beside raw baselines measured in the same run (this machine is noisy; a
// figure alone says little): a raw Go TCP stream of the same size, and raw
// pwrite+fdatasync of the same size and concurrency on the servers' storage
// (see raw.go). With Verify every fetched byte is checked.
package daosperf

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/internal/daoserr"
)

// Config is one run.
type Config struct {
	Pool        string   // label or UUID
	Cont        string   // "": a container made for the run and destroyed after it
	Class       string   // object class name, e.g. S1, SX
	Size        int      // bytes per operation (one value)
	Count       int      // operations per phase
	Concurrency int      // operations in flight (one worker each)
	Phases      []string // "update", "fetch", "punch" (run in the order given)
	Random      bool     // visit the keys in a random order (default: in order)
	Verify      bool     // check every byte fetched
	Raw         bool     // measure a raw TCP stream of Size beside
	// RawDir, if set, is a directory on the servers' storage where raw
	// pwrite+fdatasync is measured beside each update phase.
	RawDir string
	// ServerPIDs, if set, are the local servers' processes, whose CPU time
	// each phase reports beside the client's.
	ServerPIDs []int
	Progress   io.Writer
	// Between, if set, runs after each phase but the last, before the next
	// one starts (daos_perf --between: e.g. kill a server so that the next
	// phase runs degraded). Its error ends the run.
	Between func(after string) error
}

// Row is one phase's result.
type Row struct {
	Phase       string  `json:"phase"`
	Class       string  `json:"class"`
	Size        int     `json:"size"`
	Concurrency int     `json:"concurrency"`
	Ops         int     `json:"ops"`
	OpsPerS     float64 `json:"ops_per_sec"`
	MiBPerS     float64 `json:"mib_per_sec"`
	P50us       float64 `json:"p50_us"`
	P99us       float64 `json:"p99_us"`
	RawMiBPerS  float64 `json:"raw_tcp_mib_per_sec,omitempty"`
	VsRaw       float64 `json:"vs_raw,omitempty"` // MiB/s over raw TCP's
	// raw pwrite+fdatasync beside an update phase (with RawDir): one
	// fdatasync per write, and one per Concurrency writes
	RawDiskMiBPerS    float64 `json:"raw_pwrite_fdatasync_mib_per_sec,omitempty"`
	RawBatchedMiBPerS float64 `json:"raw_batched_pwrite_fdatasync_mib_per_sec,omitempty"`
	VsRawDisk         float64 `json:"vs_raw_pwrite_fdatasync,omitempty"`
	VsRawBatched      float64 `json:"vs_raw_batched_pwrite_fdatasync,omitempty"`
	// CPU time per operation: this process's, and the servers' (with ServerPIDs)
	ClientCPUus float64 `json:"client_cpu_us_per_op"`
	ServerCPUus float64 `json:"server_cpu_us_per_op,omitempty"`
	// the raw baselines' CPU time per Size bytes (both ends of the stream;
	// the batched writes and their fdatasyncs)
	RawTCPCPUus     float64 `json:"raw_tcp_cpu_us_per_op,omitempty"`
	RawBatchedCPUus float64 `json:"raw_batched_cpu_us_per_op,omitempty"`
	Verified        bool    `json:"verified,omitempty"`
}

func (c *Config) check() error {
	if c.Size <= 0 || c.Count <= 0 || c.Concurrency <= 0 {
		return daoserr.Newf(daoserr.Inval, "daos_perf: size %d, count %d, concurrency %d", c.Size, c.Count, c.Concurrency).
			WithResolution("give a size, a count and a concurrency above 0")
	}
	if c.Size > 16<<20 {
		return daoserr.Newf(daoserr.Inval, "daos_perf: size %d", c.Size).WithResolution("use values up to 16 MiB")
	}
	if len(c.Phases) == 0 {
		c.Phases = []string{"update", "fetch"}
	}
	punched := false
	for _, p := range c.Phases {
		switch p {
		case "update":
			punched = false
		case "punch":
			punched = true
		case "fetch":
			if punched && c.Verify {
				return daoserr.New(daoserr.Inval, "daos_perf: --verify of a fetch after a punch: the punched keys read as nothing").
					WithResolution("update again before the fetch (e.g. -R update,punch,update,fetch), or drop --verify")
			}
		default:
			return daoserr.Newf(daoserr.Inval, "daos_perf: phase %q", p).WithResolution("phases are update, fetch and punch")
		}
	}
	if c.Class == "" {
		c.Class = "SX"
	}
	return nil
}

// Run runs the phases through cl.
func Run(ctx context.Context, cl *daos.Client, cfg Config) ([]Row, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	class, err := daos.ParseClass(cfg.Class)
	if err != nil {
		return nil, err
	}
	pool, err := cl.PoolConnect(ctx, cfg.Pool, daos.RW)
	if err != nil {
		return nil, err
	}
	contID := cfg.Cont
	if contID == "" {
		var b [4]byte
		rand.Read(b[:])
		contID = fmt.Sprintf("daos_perf-%x", b)
		if _, err := pool.ContCreate(ctx, daos.ContCreateOptions{Label: contID}); err != nil {
			return nil, err
		}
		defer pool.ContDestroy(context.WithoutCancel(ctx), contID)
	}
	cont, err := pool.ContOpen(ctx, contID, daos.RW)
	if err != nil {
		return nil, err
	}
	oid, err := cont.GenerateOID(ctx, class, daos.OTMultiHashed)
	if err != nil {
		return nil, err
	}
	obj, err := cont.Obj(oid)
	if err != nil {
		return nil, err
	}
	pattern := make([]byte, cfg.Size)
	rand.Read(pattern)
	var rows []Row
	for i, phase := range cfg.Phases {
		if i > 0 && cfg.Between != nil {
			if err := cfg.Between(cfg.Phases[i-1]); err != nil {
				return rows, daoserr.Context(err, "daos_perf: between the %s and %s phases", cfg.Phases[i-1], phase)
			}
		}
		r, err := runPhase(ctx, obj, cfg, phase, pattern)
		if err != nil {
			return rows, err
		}
		r.Class = class.String()
		rows = append(rows, r)
	}
	return rows, nil
}

// Key i holds its number in its first 8 bytes, then the pattern. A worker
// fills its buffer with the pattern once and stamps only the number per
// operation, so the benchmark adds no copy of its own to an update.

func stamp(buf []byte, i int) {
	if len(buf) >= 8 {
		binary.LittleEndian.PutUint64(buf, uint64(i))
	}
}

// holds says whether buf holds key i's value.
func holds(buf, pattern []byte, i int) bool {
	if len(buf) < 8 {
		return bytes.Equal(buf, pattern)
	}
	return binary.LittleEndian.Uint64(buf) == uint64(i) && bytes.Equal(buf[8:], pattern[8:])
}

// rounds is how many blocks a phase runs in, each after its raw baselines'
// blocks, so that the phase and its baselines see the machine in the same
// states (a neighbour's burst, the disk's write-back) rather than one of
// them the quiet moment and the other the busy one.
const rounds = 4

// phaseRun accumulates a phase's blocks and its baselines' blocks.
type phaseRun struct {
	lat                []time.Duration
	elapsed            time.Duration
	cpu                cpuSample // summed over the op blocks
	tcp, disk, batched rawSum
	cfg                Config
	phase              string
	pattern            []byte
	done               atomic.Int64
}

func runPhase(ctx context.Context, obj *daos.Obj, cfg Config, phase string, pattern []byte) (Row, error) {
	order := make([]int, cfg.Count)
	for i := range order {
		order[i] = i
	}
	if cfg.Random {
		mrand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	pr := &phaseRun{cfg: cfg, phase: phase, pattern: pattern, cpu: cpuSample{ok: len(cfg.ServerPIDs) > 0}}
	stopProgress := progress(cfg.Progress, phase, cfg.Count, &pr.done)
	defer stopProgress()
	n := min(rounds, cfg.Count)
	for b := range n {
		if err := pr.baselines(ctx, n); err != nil {
			return Row{}, err
		}
		if err := pr.block(ctx, obj, order[b*len(order)/n:(b+1)*len(order)/n]); err != nil {
			return Row{}, err
		}
	}
	all := pr.lat
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(math.Ceil(p*float64(len(all))))-1)]) / 1e3
	}
	ops := float64(len(all)) / pr.elapsed.Seconds()
	r := Row{Phase: phase, Size: cfg.Size, Concurrency: cfg.Concurrency, Ops: len(all), OpsPerS: ops,
		MiBPerS: ops * float64(cfg.Size) / (1 << 20), P50us: pct(0.50), P99us: pct(0.99), Verified: phase == "fetch" && cfg.Verify}
	r.ClientCPUus = float64(pr.cpu.self.Microseconds()) / float64(len(all))
	if pr.cpu.ok {
		r.ServerCPUus = float64(pr.cpu.servers.Microseconds()) / float64(len(all))
	}
	if raw := pr.tcp.mibPerS(); raw > 0 {
		r.RawMiBPerS, r.VsRaw = raw, r.MiBPerS/raw
		r.RawTCPCPUus = pr.tcp.cpuPer(cfg.Size)
	}
	if d, b := pr.disk.mibPerS(), pr.batched.mibPerS(); d > 0 && b > 0 {
		r.RawDiskMiBPerS, r.VsRawDisk = d, r.MiBPerS/d
		r.RawBatchedMiBPerS, r.VsRawBatched = b, r.MiBPerS/b
		r.RawBatchedCPUus = pr.batched.cpuPer(cfg.Size)
	}
	return r, nil
}

// baselines runs one block (of n) of each raw baseline the phase has.
func (pr *phaseRun) baselines(ctx context.Context, n int) error {
	cfg := pr.cfg
	if cfg.Raw {
		cpu0 := sampleCPU(nil)
		err := pr.tcp.add(rawTCP(ctx, cfg.Size, n))
		pr.tcp.cpu += sampleCPU(nil).self - cpu0.self
		if err != nil {
			return err
		}
	}
	if pr.phase == "update" && cfg.RawDir != "" {
		if err := pr.disk.add(rawPwrite(ctx, cfg.RawDir, cfg.Size, cfg.Concurrency, cfg.Count, n)); err != nil {
			return err
		}
		cpu0 := sampleCPU(nil)
		err := pr.batched.add(rawBatched(ctx, cfg.RawDir, cfg.Size, cfg.Concurrency, cfg.Count, n))
		pr.batched.cpu += sampleCPU(nil).self - cpu0.self
		if err != nil {
			return err
		}
	}
	return nil
}

// block runs the operations on keys, cfg.Concurrency at a time.
func (pr *phaseRun) block(ctx context.Context, obj *daos.Obj, keys []int) error {
	cfg := pr.cfg
	var next atomic.Int64
	lat := make([][]time.Duration, cfg.Concurrency)
	errs := make(chan error, cfg.Concurrency)
	cpu0 := sampleCPU(cfg.ServerPIDs)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Go(func() {
			buf := bytes.Clone(pr.pattern)
			iod := []daos.IOD{{Akey: []byte("v"), Type: daos.Single, Size: uint64(cfg.Size)}}
			for {
				n := int(next.Add(1)) - 1
				if n >= len(keys) {
					return
				}
				i := keys[n]
				dkey := []byte(fmt.Sprintf("k%d", i))
				t0 := time.Now()
				var err error
				switch pr.phase {
				case "update":
					stamp(buf, i)
					_, err = obj.Update(ctx, dkey, iod, [][]byte{buf})
				case "punch":
					err = obj.PunchDkeys(ctx, [][]byte{dkey})
				default:
					var res []daos.FetchResult
					res, err = obj.Fetch(ctx, dkey, iod, [][]byte{buf})
					if err == nil && cfg.Verify {
						if res[0].Size != uint64(cfg.Size) || !holds(buf, pr.pattern, i) {
							err = daoserr.Newf(daoserr.DataLoss, "daos_perf: key %d read back differs from what was written (size %d)", i, res[0].Size)
						}
					}
				}
				if err != nil {
					errs <- err
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
				pr.done.Add(1)
			}
		})
	}
	wg.Wait()
	pr.elapsed += time.Since(start)
	cpu1 := sampleCPU(cfg.ServerPIDs)
	pr.cpu.self += cpu1.self - cpu0.self
	pr.cpu.servers += cpu1.servers - cpu0.servers
	pr.cpu.ok = pr.cpu.ok && cpu0.ok && cpu1.ok
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	for _, l := range lat {
		pr.lat = append(pr.lat, l...)
	}
	return nil
}

// rawCPU shows the raw baselines' CPU per op beside a phase's, "-" for
// those not measured.
func rawCPU(tcp, disk float64) string {
	if tcp == 0 && disk == 0 {
		return ""
	}
	f := func(v float64) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", v)
	}
	return " (" + f(tcp) + "/" + f(disk) + ")"
}

// progress prints a bar on w every second for runs that last, until stopped.
func progress(w io.Writer, phase string, total int, done *atomic.Int64) func() {
	if w == nil {
		return func() {}
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		shown := false
		for {
			select {
			case <-stop:
				if shown {
					fmt.Fprintln(w)
				}
				return
			case <-t.C:
				d := int(done.Load())
				const width = 40
				fill := width * d / total
				fmt.Fprintf(w, "\r%-6s [%s%s] %d/%d", phase, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), d, total)
				shown = true
			}
		}
	}()
	return func() { close(stop); <-finished }
}

// WriteText prints rows as a table.
func WriteText(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PHASE\tCLASS\tSIZE\tCONC\tOPS\tOPS/S\tMiB/S\tP50\tP99\tRAW TCP MiB/S\tVS TCP\tRAW DISK MiB/S (SYNC EACH/BATCH)\tVS DISK\tCPU µs/OP CLIENT+SERVERS (RAW TCP/DISK)\tVERIFIED")
	for _, r := range rows {
		raw, vs := "-", "-"
		if r.RawMiBPerS > 0 {
			raw, vs = fmt.Sprintf("%.0f", r.RawMiBPerS), fmt.Sprintf("%.0f%%", 100*r.VsRaw)
		}
		rawDisk, vsDisk := "-", "-"
		if r.RawDiskMiBPerS > 0 {
			rawDisk = fmt.Sprintf("%.0f/%.0f", r.RawDiskMiBPerS, r.RawBatchedMiBPerS)
			vsDisk = fmt.Sprintf("%.0f%%/%.0f%%", 100*r.VsRawDisk, 100*r.VsRawBatched)
		}
		cpu := fmt.Sprintf("%.1f", r.ClientCPUus)
		if r.ServerCPUus > 0 {
			cpu += fmt.Sprintf("+%.1f", r.ServerCPUus)
		}
		cpu += rawCPU(r.RawTCPCPUus, r.RawBatchedCPUus)
		ver := ""
		if r.Verified {
			ver = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.0f\t%.1f\t%.1fµs\t%.1fµs\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Phase, r.Class, r.Size, r.Concurrency, r.Ops,
			r.OpsPerS, r.MiBPerS, r.P50us, r.P99us, raw, vs, rawDisk, vsDisk, cpu, ver)
	}
	return tw.Flush()
}
