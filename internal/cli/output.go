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
