// Package daosperf is the daos_perf benchmark: workers update and then fetch
// values of one size in one object of a chosen class, through the client API
// and the engines, and report throughput and latency beside a raw Go TCP
// stream of the same size measured in the same run (this machine is noisy;
// a figure alone says little). With Verify every fetched byte is checked.
package daosperf

import (
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
	"github.com/godaos/godaos/internal/rpc/rpcperf"
)

// Config is one run.
type Config struct {
	Pool        string   // label or UUID
	Cont        string   // "": a container made for the run and destroyed after it
	Class       string   // object class name, e.g. S1, SX
	Size        int      // bytes per operation (one value)
	Count       int      // operations per phase
	Concurrency int      // operations in flight (one worker each)
	Phases      []string // "update", "fetch" (in this order)
	Random      bool     // visit the keys in a random order (default: in order)
	Verify      bool     // check every byte fetched
	Raw         bool     // measure a raw TCP stream of Size beside
	Progress    io.Writer
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
	VsRaw       float64 `json:"vs_raw,omitempty"`
	Verified    bool    `json:"verified,omitempty"`
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
	for _, p := range c.Phases {
		if p != "update" && p != "fetch" {
			return daoserr.Newf(daoserr.Inval, "daos_perf: phase %q", p).WithResolution("phases are update and fetch")
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
	var raw float64
	if cfg.Raw {
		if raw, err = rawTCP(ctx, cfg.Size); err != nil {
			return nil, err
		}
	}
	pattern := make([]byte, cfg.Size)
	rand.Read(pattern)
	var rows []Row
	for _, phase := range cfg.Phases {
		r, err := runPhase(ctx, obj, cfg, phase, pattern)
		if err != nil {
			return rows, err
		}
		r.Class = class.String()
		if raw > 0 {
			r.RawMiBPerS, r.VsRaw = raw, r.MiBPerS/raw
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// rawTCP is a raw Go TCP stream's MiB/s with size-byte writes, on loopback.
func rawTCP(ctx context.Context, size int) (float64, error) {
	rows, err := rpcperf.Run(ctx, rpcperf.Config{Sizes: []int{size}, Inflight: []int{1}, Count: max(200, min(2000, (256<<20)/size)), Rounds: 1})
	if err != nil {
		return 0, err
	}
	for _, r := range rows {
		if r.What == "raw tcp" {
			return r.MiBPerS, nil
		}
	}
	return 0, nil
}

// value is what key i holds: its number, then the pattern.
func value(buf, pattern []byte, i int) {
	copy(buf, pattern)
	if len(buf) >= 8 {
		binary.LittleEndian.PutUint64(buf, uint64(i))
	}
}

func runPhase(ctx context.Context, obj *daos.Obj, cfg Config, phase string, pattern []byte) (Row, error) {
	order := make([]int, cfg.Count)
	for i := range order {
		order[i] = i
	}
	if cfg.Random {
		mrand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	var next atomic.Int64
	lat := make([][]time.Duration, cfg.Concurrency)
	errs := make(chan error, cfg.Concurrency)
	var done atomic.Int64
	stopProgress := progress(cfg.Progress, phase, cfg.Count, &done)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf, want := make([]byte, cfg.Size), make([]byte, cfg.Size)
			iod := []daos.IOD{{Akey: []byte("v"), Type: daos.Single, Size: uint64(cfg.Size)}}
			for {
				n := int(next.Add(1)) - 1
				if n >= len(order) {
					errs <- nil
					return
				}
				i := order[n]
				dkey := []byte(fmt.Sprintf("k%d", i))
				t0 := time.Now()
				var err error
				if phase == "update" {
					value(buf, pattern, i)
					_, err = obj.Update(ctx, dkey, iod, [][]byte{buf})
				} else {
					var res []daos.FetchResult
					res, err = obj.Fetch(ctx, dkey, iod, [][]byte{buf})
					if err == nil && cfg.Verify {
						value(want, pattern, i)
						if res[0].Size != uint64(cfg.Size) || !slices.Equal(buf, want) {
							err = daoserr.Newf(daoserr.DataLoss, "daos_perf: key %d read back differs from what was written (size %d)", i, res[0].Size)
						}
					}
				}
				if err != nil {
					errs <- err
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	stopProgress()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			return Row{}, err
		}
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(math.Ceil(p*float64(len(all))))-1)]) / 1e3
	}
	ops := float64(len(all)) / elapsed.Seconds()
	return Row{Phase: phase, Size: cfg.Size, Concurrency: cfg.Concurrency, Ops: len(all), OpsPerS: ops,
		MiBPerS: ops * float64(cfg.Size) / (1 << 20), P50us: pct(0.50), P99us: pct(0.99), Verified: phase == "fetch" && cfg.Verify}, nil
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
	fmt.Fprintln(tw, "PHASE\tCLASS\tSIZE\tCONC\tOPS\tOPS/S\tMiB/S\tP50\tP99\tRAW TCP MiB/S\tVS RAW\tVERIFIED")
	for _, r := range rows {
		raw, vs := "-", "-"
		if r.RawMiBPerS > 0 {
			raw, vs = fmt.Sprintf("%.0f", r.RawMiBPerS), fmt.Sprintf("%.0f%%", 100*r.VsRaw)
		}
		ver := ""
		if r.Verified {
			ver = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.0f\t%.1f\t%.1fµs\t%.1fµs\t%s\t%s\t%s\n", r.Phase, r.Class, r.Size, r.Concurrency, r.Ops,
			r.OpsPerS, r.MiBPerS, r.P50us, r.P99us, raw, vs, ver)
	}
	return tw.Flush()
}
