// Package props defines pool properties as DAOS names them: their defaults,
// allowed values and descriptions, in one place for dmg and the servers.
package props

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/ec"
	"github.com/godaos/godaos/internal/units"
)

// Def is one property.
type Def struct {
	Name    string
	Default string
	Desc    string
	// Check validates a value and returns its canonical form.
	Check func(string) (string, error)
}

func enum(vals ...string) func(string) (string, error) {
	return func(v string) (string, error) {
		if slices.Contains(vals, v) {
			return v, nil
		}
		return "", fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
	}
}

func intRange(lo, hi int) func(string) (string, error) {
	return func(v string) (string, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return "", fmt.Errorf("%q is not a whole number from %d to %d", v, lo, hi)
		}
		return strconv.Itoa(n), nil
	}
}

func sizeRange(lo, hi uint64, pow2 bool) func(string) (string, error) {
	return func(v string) (string, error) {
		n, err := units.ParseByteSize(v)
		if err != nil || uint64(n) < lo || uint64(n) > hi || (pow2 && n&(n-1) != 0) {
			what := ""
			if pow2 {
				what = " and a power of 2"
			}
			return "", fmt.Errorf("%q is not a size from %s to %s%s", v, units.ByteSize(lo), units.ByteSize(hi), what)
		}
		return units.ByteSize(n).String(), nil
	}
}

// cellSize checks an EC cell size as DAOS's daos_ec_cs_valid does (4 KiB to
// 1 MiB, a multiple of 32, not necessarily a power of two); the default is
// DAOS_EC_CELL_DEF, 128 KiB.
func cellSize(v string) (string, error) {
	n, err := units.ParseByteSize(v)
	if err != nil {
		return "", fmt.Errorf("%q is not a size", v)
	}
	if err := ec.ValidateCellSize(uint64(n)); err != nil {
		return "", fmt.Errorf("%q is not a size from 4KiB to 1MiB and a multiple of 32 bytes", v)
	}
	return units.ByteSize(n).String(), nil
}

// Pool lists the pool properties GoDAOS knows, with DAOS's names and defaults.
var Pool = []Def{
	{"reclaim", "lazy", "Reclaim strategy", enum("disabled", "lazy", "time")},
	{"self_heal", "exclude;rebuild", "Self-healing policy", enum("exclude", "exclude;rebuild", "rebuild", "delay_rebuild", "exclude;delay_rebuild")},
	{"space_rb", "0", "Rebuild space ratio (%)", intRange(0, 100)},
	{"rd_fac", "0", "Pool redundancy factor", intRange(0, 4)},
	{"svc_rf", "2", "Pool service redundancy factor", intRange(0, 4)},
	{"ec_cell_sz", "128KiB", "EC cell size", cellSize},
	{"ec_pda", "1", "Performance domain affinity level of EC", intRange(1, 255)},
	{"rp_pda", "3", "Performance domain affinity level of RP", intRange(1, 255)},
	{"data_thresh", "4KiB", "Data bdev threshold size", sizeRange(0, 1<<20, false)},
	{"scrub", "off", "Checksum scrubbing mode", enum("off", "lazy", "timed")},
	{"scrub_freq", "604800", "Checksum scrubbing frequency (s)", intRange(1, 1<<30)},
	{"scrub_thresh", "0", "Checksum scrubbing threshold", intRange(0, 1<<20)},
	{"checkpoint", "timed", "WAL checkpointing behavior", enum("disabled", "timed", "lazy")},
	{"checkpoint_freq", "5", "WAL checkpointing frequency (s)", intRange(1, 1000000)},
	{"checkpoint_thresh", "50", "WAL checkpoint threshold (%)", intRange(10, 75)},
}

// Find returns the definition of a property.
func Find(name string) (Def, bool) {
	i := slices.IndexFunc(Pool, func(d Def) bool { return d.Name == name })
	if i < 0 {
		return Def{}, false
	}
	return Pool[i], true
}

func names() string {
	var n []string
	for _, d := range Pool {
		n = append(n, d.Name)
	}
	return strings.Join(n, ", ")
}

// Parse parses "name:value[,name:value]" (dmg's --properties and set-prop
// syntax) into checked, canonical pool property values.
func Parse(s string) (map[string]string, error) {
	out, err := ParseList(s)
	if err != nil {
		return nil, err
	}
	for name, val := range out {
		if out[name], err = Check(name, val); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ParseList splits "name:value[,name:value]" without judging names or values
// (container properties are checked where they are used).
func ParseList(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		name, val, ok := strings.Cut(kv, ":")
		if !ok {
			return nil, daoserr.Newf(daoserr.Inval, "property %q: want name:value", kv).WithResolution("e.g. reclaim:lazy,scrub:timed")
		}
		out[name] = val
	}
	return out, nil
}

// Check validates one property value and returns its canonical form.
func Check(name, val string) (string, error) {
	d, ok := Find(name)
	if !ok {
		return "", daoserr.Newf(daoserr.Inval, "unknown pool property %q", name).WithResolution("known properties: %s", names())
	}
	v, err := d.Check(strings.TrimSpace(val))
	if err != nil {
		return "", daoserr.Newf(daoserr.Inval, "pool property %s: %v", name, err)
	}
	return v, nil
}

// Merge returns every property's value: set ones over defaults.
func Merge(set map[string]string) map[string]string {
	out := map[string]string{}
	for _, d := range Pool {
		out[d.Name] = d.Default
	}
	for k, v := range set {
		out[k] = v
	}
	return out
}

// Sorted lists names in the table's order (unknown names last, sorted).
func Sorted(m map[string]string) []string {
	var out, extra []string
	for _, d := range Pool {
		if _, ok := m[d.Name]; ok {
			out = append(out, d.Name)
		}
	}
	for k := range m {
		if _, ok := Find(k); !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}
