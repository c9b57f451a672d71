package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/godaos/godaos/internal/daoserr"
)

// Table writes rows under a header (tab-separated columns) with a dashed rule
// between them, as DAOS's tools print tables.
func Table(w io.Writer, header string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	dashes := strings.Split(header, "\t")
	for i := range dashes {
		dashes[i] = strings.Repeat("-", len(dashes[i]))
	}
	fmt.Fprintln(tw, strings.Join(dashes, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// Envelope writes DAOS's JSON output: {"response": ..., "error": ...,
// "status": ...}, status being the negative DER code on failure.
func Envelope(w io.Writer, resp any, err error) {
	env := map[string]any{"response": resp, "error": nil, "status": 0}
	if err != nil {
		env["response"] = nil
		env["error"] = err.Error()
		env["status"] = daoserr.CodeOf(err).Errno()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(env)
}

// RankList prints ranks compactly, as DAOS does: [0-2,5].
func RankList(ranks []uint32) string {
	r := append([]uint32(nil), ranks...)
	sort.Slice(r, func(i, j int) bool { return r[i] < r[j] })
	var parts []string
	for i := 0; i < len(r); {
		j := i
		for j+1 < len(r) && r[j+1] == r[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", r[i], r[j]))
		} else {
			parts = append(parts, strconv.Itoa(int(r[i])))
		}
		i = j + 1
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// Ranks is a rank list as DAOS's tools take it: "0,1,2", "0-3,7" or
// "[0-3,7]". It decodes itself from a command-line flag.
type Ranks []uint32

// UnmarshalText parses a rank list.
func (r *Ranks) UnmarshalText(text []byte) error {
	s := strings.Trim(strings.TrimSpace(string(text)), "[]")
	var out Ranks
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err1 := strconv.ParseUint(lo, 10, 32)
		last := first
		var err2 error
		if isRange {
			last, err2 = strconv.ParseUint(hi, 10, 32)
		}
		if err1 != nil || err2 != nil || last < first || last-first > 1<<20 {
			return daoserr.Newf(daoserr.Inval, "rank list %q: %q is not a rank or a range", string(text), part).
				WithResolution("write ranks as 0,1,2 or 0-3,7")
		}
		for n := first; n <= last; n++ {
			out = append(out, uint32(n))
		}
	}
	*r = out
	return nil
}
