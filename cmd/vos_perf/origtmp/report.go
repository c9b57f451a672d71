package vosperf

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the output of one vos_perf invocation: one or more runs and, for a
// preset, the targets they were checked against.
type Report struct {
	Preset    string       `json:"preset,omitempty"`
	Started   time.Time    `json:"started"`
	Seconds   float64      `json:"seconds"`
	CPUs      int          `json:"cpus"`
	GoVersion string       `json:"go_version"`
	Runs      []*RunReport `json:"runs"`
	Targets   []Target     `json:"targets,omitempty"`
}

// NewReport starts a report; add runs and call Finish.
func NewReport(preset string) *Report {
	return &Report{Preset: preset, Started: time.Now(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
}

// Finish records the elapsed time.
func (rep *Report) Finish() { rep.Seconds = time.Since(rep.Started).Seconds() }

// RunReport is what one Run measured.
type RunReport struct {
	Label      string   `json:"label,omitempty"`
	ScmDir     string   `json:"scm_dir"`
	ScmFS      string   `json:"scm_fs"`
	DataDir    string   `json:"data_dir"`
	DataFS     string   `json:"data_fs"`
	DataThresh uint64   `json:"data_thresh,omitempty"`
	Csum       string   `json:"csum"`
	Rows       []Row    `json:"rows"`
	Memory     []MemRow `json:"memory,omitempty"`
}

// Row is one timed phase. VOS rows carry the raw baselines they are compared with.
type Row struct {
	Engine      string  `json:"engine"` // "vos" or "raw"
	Op          string  `json:"op"`     // update, fetch; raw: pwrite+fdatasync, write+fdatasync, pread
	Type        string  `json:"type,omitempty"`
	Size        uint64  `json:"size"`
	Pattern     string  `json:"pattern"`
	Concurrency int     `json:"concurrency"`
	Ops         int     `json:"ops"`
	Bytes       uint64  `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	OpsPerSec   float64 `json:"ops_per_sec"`
	MiBPerSec   float64 `json:"mib_per_sec"`
	P50us       float64 `json:"p50_us"`
	P99us       float64 `json:"p99_us"`
	P999us      float64 `json:"p999_us"`
	Dir         string  `json:"dir,omitempty"` // raw rows: where the file was

	Baselines []Baseline `json:"baselines,omitempty"`
}

// Baseline is a raw row and the VOS row's throughput as a multiple of it.
type Baseline struct {
	Raw   Row     `json:"raw"`
	Ratio float64 `json:"ratio"` // vos ops/s ÷ raw ops/s (the sizes are equal)
}

func (r *Row) compare(raw Row) {
	b := Baseline{Raw: raw}
	if raw.OpsPerSec > 0 {
		b.Ratio = r.OpsPerSec / raw.OpsPerSec
	}
	r.Baselines = append(r.Baselines, b)
}

// Find returns the first VOS row matching op, type, size and concurrency.
func (rr *RunReport) Find(op, typ string, size ByteSize, conc int) (Row, bool) {
	for _, r := range rr.Rows {
		if r.Op == op && r.Type == typ && r.Size == uint64(size) && r.Concurrency == conc {
			return r, true
		}
	}
	return Row{}, false
}

// Baseline returns the row's raw baseline of the given op and concurrency.
func (r Row) Baseline(op string, conc int) (Baseline, bool) {
	for _, b := range r.Baselines {
		if b.Raw.Op == op && b.Raw.Concurrency == conc {
			return b, true
		}
	}
	return Baseline{}, false
}

// Target is one performance goal checked by a preset.
type Target struct {
	Name     string  `json:"name"`
	Goal     string  `json:"goal"` // e.g. ">= 70%", ">= 200000 ops/s"
	Measured float64 `json:"measured"`
	Display  string  `json:"display"` // Measured in the goal's unit, with the figures behind it
	Met      bool    `json:"met"`
	Skipped  string  `json:"skipped,omitempty"` // why it was not measured
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteText writes the report as aligned tables.
func (rep *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	title := "vos_perf"
	if rep.Preset != "" {
		title += " --preset " + rep.Preset
	}
	fmt.Fprintf(tw, "%s: %d CPUs, %s, %s, %.0fs\n", title, rep.CPUs, rep.GoVersion, rep.Started.UTC().Format(time.DateTime+" MST"), rep.Seconds)
	for _, run := range rep.Runs {
		fmt.Fprintln(tw)
		run.writeText(tw)
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "TARGET\tGOAL\tMEASURED\tMET")
		for _, t := range rep.Targets {
			met := "no"
			switch {
			case t.Skipped != "":
				met, t.Display = "skipped", t.Skipped
			case t.Met:
				met = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Goal, t.Display, met)
		}
	}
	return tw.Flush()
}

func (run *RunReport) writeText(tw *tabwriter.Writer) {
	head := "== "
	if run.Label != "" {
		head += run.Label + ": "
	}
	head += fmt.Sprintf("SCM tier %s (%s), data file in %s (%s)", run.ScmDir, run.ScmFS, run.DataDir, run.DataFS)
	if run.DataThresh > 0 {
		head += fmt.Sprintf(", data_thresh %v", ByteSize(run.DataThresh))
	}
	head += ", checksum " + run.Csum
	fmt.Fprintln(tw, head)
	if len(run.Rows) > 0 {
		fmt.Fprintln(tw, "OP\tTYPE\tSIZE\tPATTERN\tCONC\tOPS\tOPS/S\tMiB/S\tP50\tP99\tP99.9\tVOS/RAW")
		for _, r := range run.Rows {
			writeRow(tw, r, r.Op, r.Type, "")
			for _, b := range r.Baselines {
				writeRow(tw, b.Raw, "  raw "+b.Raw.Op, "", ratio(b.Ratio))
			}
		}
	}
	if len(run.Memory) > 0 {
		if len(run.Rows) > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintln(tw, "INDEX MEMORY\tVALUES\tOBJECTS\tHEAP INUSE +\tDATA\tOVERHEAD/VALUE\t(HEAP ALLOC)")
		for _, m := range run.Memory {
			fmt.Fprintf(tw, "%s %v\t%d\t%d\t%s\t%s\t%.0f B\t%.0f B\n", m.Type, ByteSize(m.ValueSize), m.Count, m.Objects,
				human(m.HeapInuseDelta), human(int64(m.DataBytes)), m.BytesPerItem, m.AllocBytesPerItem)
		}
	}
}

func writeRow(tw io.Writer, r Row, op, typ, ratio string) {
	fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d\t%d\t%s\t%.1f\t%s\t%s\t%s\t%s\n", op, dash(typ), ByteSize(r.Size), r.Pattern,
		r.Concurrency, r.Ops, rate(r.OpsPerSec), r.MiBPerSec, dur(r.P50us), dur(r.P99us), dur(r.P999us), ratio)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// rate prints ops/s with thousands separators.
func rate(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ratio(v float64) string {
	switch {
	case v >= 10:
		return fmt.Sprintf("%.0fx", v)
	case v >= 1:
		return fmt.Sprintf("%.2fx", v)
	}
	return fmt.Sprintf("%.0f%%", 100*v)
}

func dur(micros float64) string {
	switch {
	case micros >= 1e6:
		return fmt.Sprintf("%.2fs", micros/1e6)
	case micros >= 1e3:
		return fmt.Sprintf("%.2fms", micros/1e3)
	}
	return fmt.Sprintf("%.1fµs", micros)
}

// human prints a byte count in KiB or MiB with one decimal.
func human(b int64) string {
	if b < 1<<20 && b > -1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
