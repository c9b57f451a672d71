package daosperf

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
)

// Summary is the median and spread of one case (phase, class, size,
// concurrency) over repeated runs.
type Summary struct {
	Phase       string `json:"phase"`
	Class       string `json:"class"`
	Size        int    `json:"size"`
	Concurrency int    `json:"concurrency"`
	Runs        int    `json:"runs"`
	OpsPerS     Spread `json:"ops_per_sec"`
	MiBPerS     Spread `json:"mib_per_sec"`
	P50us       Spread `json:"p50_us"`
	P99us       Spread `json:"p99_us"`
	RawMiBPerS  Spread `json:"raw_tcp_mib_per_sec"`
	VsRaw       Spread `json:"vs_raw"`
	RawDisk     Spread `json:"raw_pwrite_fdatasync_mib_per_sec"`
	RawBatched  Spread `json:"raw_batched_pwrite_fdatasync_mib_per_sec"`
	VsRawDisk   Spread `json:"vs_raw_pwrite_fdatasync"`
	VsBatched   Spread `json:"vs_raw_batched_pwrite_fdatasync"`
	ClientCPUus Spread `json:"client_cpu_us_per_op"`
	ServerCPUus Spread `json:"server_cpu_us_per_op"`
	RawTCPCPU   Spread `json:"raw_tcp_cpu_us_per_op"`
	RawDiskCPU  Spread `json:"raw_batched_cpu_us_per_op"`
}

// Spread is a figure's median, minimum and maximum over runs (all 0 when no
// run measured it).
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(v []float64) Spread {
	v = slices.DeleteFunc(slices.Clone(v), func(x float64) bool { return x == 0 })
	if len(v) == 0 {
		return Spread{}
	}
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Spread{Median: m, Min: v[0], Max: v[len(v)-1]}
}

// Summarize groups rows of repeated runs by case, in the order cases first
// appear, and gives each figure's median and spread.
func Summarize(rows []Row) []Summary {
	type key struct {
		phase, class string
		size, conc   int
	}
	var order []key
	groups := map[key][]Row{}
	for _, r := range rows {
		k := key{r.Phase, r.Class, r.Size, r.Concurrency}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Summary, 0, len(order))
	for _, k := range order {
		g := groups[k]
		f := func(get func(Row) float64) Spread {
			v := make([]float64, len(g))
			for i, r := range g {
				v[i] = get(r)
			}
			return spreadOf(v)
		}
		out = append(out, Summary{Phase: k.phase, Class: k.class, Size: k.size, Concurrency: k.conc, Runs: len(g),
			OpsPerS:     f(func(r Row) float64 { return r.OpsPerS }),
			MiBPerS:     f(func(r Row) float64 { return r.MiBPerS }),
			P50us:       f(func(r Row) float64 { return r.P50us }),
			P99us:       f(func(r Row) float64 { return r.P99us }),
			RawMiBPerS:  f(func(r Row) float64 { return r.RawMiBPerS }),
			VsRaw:       f(func(r Row) float64 { return r.VsRaw }),
			RawDisk:     f(func(r Row) float64 { return r.RawDiskMiBPerS }),
			RawBatched:  f(func(r Row) float64 { return r.RawBatchedMiBPerS }),
			VsRawDisk:   f(func(r Row) float64 { return r.VsRawDisk }),
			VsBatched:   f(func(r Row) float64 { return r.VsRawBatched }),
			ClientCPUus: f(func(r Row) float64 { return r.ClientCPUus }),
			ServerCPUus: f(func(r Row) float64 { return r.ServerCPUus }),
			RawTCPCPU:   f(func(r Row) float64 { return r.RawTCPCPUus }),
			RawDiskCPU:  f(func(r Row) float64 { return r.RawBatchedCPUus }),
		})
	}
	return out
}

// WriteSummary prints summaries as a table: each figure as its median and,
// in brackets, its range over the runs.
func WriteSummary(w io.Writer, sums []Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PHASE\tCLASS\tSIZE\tCONC\tRUNS\tOPS/S\tMiB/S\tP50 µs\tP99 µs\tRAW TCP MiB/S\tVS TCP\tRAW DISK MiB/S (SYNC EACH/BATCH)\tVS DISK (EACH/BATCH)\tCPU µs/OP CLIENT+SERVERS (RAW TCP/DISK)")
	for _, s := range sums {
		disk, vsDisk := "-", "-"
		if s.RawDisk.Median > 0 {
			disk = fmt.Sprintf("%.0f/%.0f", s.RawDisk.Median, s.RawBatched.Median)
			vsDisk = pctRange(s.VsRawDisk) + " / " + pctRange(s.VsBatched)
		}
		raw, vs := "-", "-"
		if s.RawMiBPerS.Median > 0 {
			raw, vs = fmt.Sprintf("%.0f", s.RawMiBPerS.Median), pctRange(s.VsRaw)
		}
		cpu := fmt.Sprintf("%.0f", s.ClientCPUus.Median)
		if s.ServerCPUus.Median > 0 {
			cpu += fmt.Sprintf("+%.0f", s.ServerCPUus.Median)
		}
		cpu += rawCPU(s.RawTCPCPU.Median, s.RawDiskCPU.Median)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\n", s.Phase, s.Class, s.Size, s.Concurrency, s.Runs,
			numRange(s.OpsPerS), numRange(s.MiBPerS), s.P50us.Median, s.P99us.Median, raw, vs, disk, vsDisk, cpu)
	}
	return tw.Flush()
}

func numRange(s Spread) string {
	return fmt.Sprintf("%.0f [%.0f-%.0f]", s.Median, s.Min, s.Max)
}

func pctRange(s Spread) string {
	return fmt.Sprintf("%.0f%% [%.0f-%.0f]", 100*s.Median, 100*s.Min, 100*s.Max)
}
