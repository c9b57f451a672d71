// Package units parses and prints the sizes users type: 64, 4K, 4KiB, 1M, 10G,
// 2T (binary multiples, as DAOS's tools read them).
package units

import (
	"fmt"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes. It parses "64", "4K", "4KiB", "64k", "1M", "1G"
// (binary multiples) and prints the shortest exact binary form.
type ByteSize uint64

// ParseByteSize parses a size such as 4K or 1MiB.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRight(t, "kKmMgGtTiIbB")
	unit := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(t[len(num):], "B"), "b"))
	unit = strings.TrimSuffix(unit, "I")
	var mult uint64
	switch unit {
	case "":
		mult = 1
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	case "T":
		mult = 1 << 40
	default:
		return 0, fmt.Errorf("size %q: unknown unit, use e.g. 64, 4K, 1M or 2G", s)
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: want a whole number with an optional K, M, G or T suffix, e.g. 4K", s)
	}
	if n > (1<<64-1)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return ByteSize(n * mult), nil
}

// UnmarshalText lets flag parsers (kong) read sizes directly.
func (b *ByteSize) UnmarshalText(t []byte) error {
	v, err := ParseByteSize(string(t))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

func (b ByteSize) String() string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if b >= 1<<u.shift && b%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", b>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%dB", uint64(b))
}

// Human prints bytes in decimal units, as dmg does (1.0 GB).
func Human(b uint64) string {
	const unit = 1000
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(b)/float64(div), "kMGTPE"[exp])
}
