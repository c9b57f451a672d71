package launcher

import (
	"strconv"
	"strings"

	"github.com/godaos/godaos/internal/daoserr"
)

// maxHosts bounds an expansion: a typo such as node[1-1000000000] must be an
// error, not a launcher that runs out of memory.
const maxHosts = 1 << 16

// ExpandHostlist expands a Slurm/pdsh host list into host names, in order:
// "node[1-4,7]" is node1 node2 node3 node4 node7, "node[01-03]" keeps the zero
// padding of each range's lower bound, "a,b" and "a b" list hosts, several
// bracket groups multiply ("r[1-2]n[1-2]" is r1n1 r1n2 r2n1 r2n2), and text
// after a group is kept ("n[1-2]-ib" is n1-ib n2-ib, as pdsh does). Duplicates
// are kept, as `scontrol show hostnames` keeps them.
func ExpandHostlist(list string) ([]string, error) {
	var hosts []string
	for _, item := range splitTopLevel(list) {
		exp, err := expandItem(item)
		if err != nil {
			return nil, daoserr.Newf(daoserr.Inval, "host list %q: %s", list, err.Error()).
				WithResolution("write hosts as name, name[1-4,7] or name[01-10], separated by commas")
		}
		if len(hosts)+len(exp) > maxHosts {
			return nil, daoserr.Newf(daoserr.Inval, "host list %q: more than %d hosts", list, maxHosts).
				WithResolution("check the ranges in brackets")
		}
		hosts = append(hosts, exp...)
	}
	if len(hosts) == 0 {
		return nil, daoserr.Newf(daoserr.Inval, "host list %q names no host", list).WithResolution("give at least one host, e.g. node[1-4]")
	}
	return hosts, nil
}

// splitTopLevel splits at commas and blanks outside brackets (inside them a
// comma separates ranges). Empty items are dropped, like Slurm does.
func splitTopLevel(s string) []string {
	var items []string
	depth, start := 0, 0
	for i, c := range s {
		switch {
		case c == '[':
			depth++
		case c == ']':
			depth--
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n'):
			if i > start {
				items = append(items, s[start:i])
			}
			start = i + 1
		}
	}
	if start < len(s) {
		items = append(items, s[start:])
	}
	return items
}

// hostErr is an expansion problem; ExpandHostlist adds the list and the fix.
type hostErr string

func (e hostErr) Error() string { return string(e) }

// expandItem expands one item: text and bracket groups, left to right.
func expandItem(item string) ([]string, error) {
	out := []string{""}
	for item != "" {
		open := strings.IndexAny(item, "[]")
		if open < 0 {
			return appendAll(out, []string{item}), nil
		}
		if item[open] == ']' {
			return nil, hostErr("']' without '['")
		}
		end := strings.IndexAny(item[open+1:], "[]")
		if end < 0 || item[open+1+end] == '[' {
			return nil, hostErr("'[' without ']'")
		}
		end += open + 1
		nums, err := expandRanges(item[open+1 : end])
		if err != nil {
			return nil, err
		}
		out = appendAll(out, []string{item[:open]})
		if len(out)*len(nums) > maxHosts {
			return nil, hostErr("more than " + strconv.Itoa(maxHosts) + " hosts")
		}
		out = appendAll(out, nums)
		item = item[end+1:]
	}
	return out, nil
}

// appendAll is the product of prefixes and suffixes, prefixes varying slowest.
func appendAll(prefixes, suffixes []string) []string {
	out := make([]string, 0, len(prefixes)*len(suffixes))
	for _, p := range prefixes {
		for _, s := range suffixes {
			out = append(out, p+s)
		}
	}
	return out
}

// expandRanges expands "1-4,7" or "01-10": each number is padded with zeros
// to the width of its range's lower bound.
func expandRanges(s string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		if !isRange {
			hi = lo
		}
		a, errA := parseIndex(lo)
		b, errB := parseIndex(hi)
		if errA != nil || errB != nil {
			return nil, hostErr("range " + strconv.Quote(r) + " is not N or N-M with numbers")
		}
		if b < a {
			return nil, hostErr("range " + strconv.Quote(r) + " runs backwards")
		}
		if b-a >= maxHosts || len(out)+b-a+1 > maxHosts {
			return nil, hostErr("more than " + strconv.Itoa(maxHosts) + " hosts")
		}
		for n := a; n <= b; n++ {
			v := strconv.Itoa(n)
			if pad := len(lo) - len(v); pad > 0 {
				v = strings.Repeat("0", pad) + v
			}
			out = append(out, v)
		}
	}
	return out, nil
}

func parseIndex(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" || len(s) > 9 {
		return 0, hostErr("not a number")
	}
	return strconv.Atoi(s)
}
