package ddb

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/vos"
)

// ---- space ----

type spaceCmd struct{}

type tierSpace struct {
	Total uint64 `json:"total"`
	Used  uint64 `json:"used"`
	Free  uint64 `json:"free"`
}

type spaceResult struct {
	Target string    `json:"target"`
	SCM    tierSpace `json:"scm"`
	NVMe   tierSpace `json:"nvme"`
}

func newTierSpace(total, used uint64) tierSpace {
	return tierSpace{Total: total, Used: used, Free: total - min(used, total)}
}

func (c *spaceCmd) Run(e *env) error {
	return e.withPool(true, func(pool *vos.Pool) error {
		in := pool.Query()
		return e.emit(&spaceResult{Target: in.Dir,
			SCM: newTierSpace(in.ScmTotal, in.ScmUsed), NVMe: newTierSpace(in.NvmeTotal, in.NvmeUsed)})
	})
}

func (r *spaceResult) text(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIER\tTOTAL\tUSED\tFREE\tUSED%")
	for _, t := range []struct {
		name string
		s    tierSpace
	}{{"SCM", r.SCM}, {"NVMe", r.NVMe}} {
		pct := 0.0
		if t.s.Total > 0 {
			pct = 100 * float64(t.s.Used) / float64(t.s.Total)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f%%\n", t.name, humanBytes(t.s.Total), humanBytes(t.s.Used), humanBytes(t.s.Free), pct)
	}
	return tw.Flush()
}

// humanBytes prints a size in binary units with the exact byte count, since
// ddb users compare it with allocator offsets and file sizes.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB (%d)", float64(n)/float64(div), "KMGTPE"[exp], n)
}

// ---- superblock ----

type superblockCmd struct{}

type superblockResult struct {
	Target     string `json:"target"`
	ScmSize    uint64 `json:"scm_size"`
	NvmeSize   uint64 `json:"nvme_size"`
	DataFile   string `json:"data_file"`
	DataThresh uint64 `json:"data_thresh"`
	Containers int    `json:"containers"`
}

func (c *superblockCmd) Run(e *env) error {
	return e.withPool(true, func(pool *vos.Pool) error {
		in := pool.Query()
		return e.emit(&superblockResult{Target: in.Dir, ScmSize: in.ScmTotal, NvmeSize: in.NvmeTotal,
			DataFile: in.DataFile, DataThresh: in.DataThresh, Containers: in.Containers})
	})
}

func (r *superblockResult) text(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "target:\t%s\n", r.Target)
	fmt.Fprintf(tw, "scm_size:\t%s\n", humanBytes(r.ScmSize))
	fmt.Fprintf(tw, "nvme_size:\t%s\n", humanBytes(r.NvmeSize))
	fmt.Fprintf(tw, "data_file:\t%s\n", r.DataFile)
	fmt.Fprintf(tw, "data_thresh:\t%s\n", humanBytes(r.DataThresh))
	fmt.Fprintf(tw, "containers:\t%d\n", r.Containers)
	return tw.Flush()
}

// ---- log ----

type logCmd struct{}

type logResult struct {
	Target          string       `json:"target"`
	CheckpointSeq   uint64       `json:"checkpoint_seq"`
	CheckpointBytes int64        `json:"checkpoint_bytes"`
	CheckpointError string       `json:"checkpoint_error,omitempty"`
	ReplayFrom      uint64       `json:"replay_from_segment"`
	Segments        []logSegment `json:"segments"`
	// What opening the target found; absent when it does not open.
	Open      *logOpen `json:"open,omitempty"`
	OpenError string   `json:"open_error,omitempty"`
}

type logSegment struct {
	Name          string         `json:"name"`
	Bytes         int64          `json:"bytes"`
	Records       int            `json:"records"`
	FirstSeq      uint64         `json:"first_seq"`
	LastSeq       uint64         `json:"last_seq"`
	TornTailBytes int64          `json:"torn_tail_bytes"`
	Ops           map[string]int `json:"ops"`
	InCheckpoint  bool           `json:"in_checkpoint"`
}

type logOpen struct {
	LastSeq         uint64    `json:"last_seq"`
	ReplayedRecords int       `json:"replayed_records"`
	SkippedTail     int64     `json:"torn_tail_skipped_bytes"`
	CheckpointTime  time.Time `json:"checkpoint_time,omitzero"`
}

// Run shows the log. Unlike the other commands it still reports when the target
// does not open (a corrupt log or checkpoint is what one would look at it for);
// it only refuses when the target is in use or is not a target at all.
func (c *logCmd) Run(e *env) error {
	res := logResult{Target: e.dir}
	pool, err := e.open(true)
	switch {
	case daoserr.Is(err, daoserr.Busy), daoserr.Is(err, daoserr.Nonexist), daoserr.Is(err, daoserr.NotDir):
		return err
	case err != nil:
		res.OpenError = oneLine(err.Error())
	default:
		// Hold the target open while reading the log, so nobody writes it meanwhile.
		defer pool.Close()
		in := pool.Query()
		res.Open = &logOpen{LastSeq: in.Seq, ReplayedRecords: in.ReplayedRecords, SkippedTail: in.TruncatedBytes, CheckpointTime: in.CheckpointTime}
	}
	rep, err := vos.InspectLog(e.dir)
	if err != nil {
		return daoserr.Context(err, "log")
	}
	res.CheckpointSeq, res.CheckpointBytes, res.CheckpointError = rep.CheckpointSeq, rep.CheckpointBytes, rep.CheckpointErr
	res.ReplayFrom = rep.ReplayFrom
	res.Segments = make([]logSegment, 0, len(rep.Segments))
	for _, s := range rep.Segments {
		res.Segments = append(res.Segments, logSegment{Name: s.Name, Bytes: s.Bytes, Records: s.Records,
			FirstSeq: s.FirstSeq, LastSeq: s.LastSeq, TornTailBytes: s.TailBytes, Ops: s.Kinds, InCheckpoint: s.Checkpoint})
	}
	return e.emit(&res)
}

func (r *logResult) text(w io.Writer) error {
	if r.OpenError != "" {
		fmt.Fprintf(w, "warning: the target does not open: %s\n", r.OpenError)
	}
	switch {
	case r.CheckpointError != "":
		fmt.Fprintf(w, "checkpoint: %d bytes, unreadable: %s\n", r.CheckpointBytes, r.CheckpointError)
	case r.CheckpointBytes == 0:
		fmt.Fprintln(w, "checkpoint: none (the whole log is replayed at open)")
	default:
		fmt.Fprintf(w, "checkpoint: seq %d, %s, replay from segment %d\n", r.CheckpointSeq, humanBytes(uint64(r.CheckpointBytes)), r.ReplayFrom)
	}
	if r.Open != nil {
		fmt.Fprintf(w, "open: replays %d records, last seq %d, torn tail skipped %d bytes\n",
			r.Open.ReplayedRecords, r.Open.LastSeq, r.Open.SkippedTail)
	}
	fmt.Fprintf(w, "segments: %d\n", len(r.Segments))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tBYTES\tRECORDS\tSEQ\tTORN TAIL\tIN CHECKPOINT\tOPS")
	for _, s := range r.Segments {
		seq := "-"
		if s.Records > 0 {
			seq = fmt.Sprintf("%d-%d", s.FirstSeq, s.LastSeq)
		}
		inCkpt := "no"
		if s.InCheckpoint {
			inCkpt = "yes" // replay skips it; open deletes it
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%d\t%s\t%s\n", s.Name, s.Bytes, s.Records, seq, s.TornTailBytes, inCkpt, formatOps(s.Ops))
	}
	return tw.Flush()
}

// formatOps prints op counts sorted by name, e.g. "cont-create=1 update=4".
func formatOps(ops map[string]int) string {
	if len(ops) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(ops)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, ops[k]))
	}
	return strings.Join(parts, " ")
}
