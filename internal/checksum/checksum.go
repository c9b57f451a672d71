// Package checksum computes the per-chunk checksums GoDAOS stores with data and
// verifies on read. The type names follow DAOS's container property `cksum`
// (crc32, crc64, sha256, ...); GoDAOS's crc32 is Castagnoli (crc32c), the fastest here.
package checksum

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Type selects a checksum algorithm. The zero value means "off".
type Type uint8

const (
	Off Type = iota
	CRC32C
	CRC64
	SHA256
	XXH64
)

var typeNames = []string{"off", "crc32", "crc64", "sha256", "xxh64"}

// String is the DAOS property spelling (crc32 means crc32c here).
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("cksum(%d)", uint8(t))
}

// Parse accepts DAOS's property values ("off", "crc32", "crc64", "sha256") plus
// "crc32c" and "xxh64".
func Parse(s string) (Type, error) {
	switch strings.ToLower(s) {
	case "off", "none", "":
		return Off, nil
	case "crc32", "crc32c":
		return CRC32C, nil
	case "crc64":
		return CRC64, nil
	case "sha256":
		return SHA256, nil
	case "xxh64", "xxhash64":
		return XXH64, nil
	}
	return Off, fmt.Errorf("unknown checksum type %q: use one of off, crc32, crc64, sha256, xxh64", s)
}

// Size is the number of bytes one checksum of this type takes.
func (t Type) Size() int {
	switch t {
	case CRC32C:
		return 4
	case CRC64, XXH64:
		return 8
	case SHA256:
		return sha256.Size
	}
	return 0
}

// Valid reports whether t names a known type.
func (t Type) Valid() bool { return int(t) < len(typeNames) }

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	ecma       = crc64.MakeTable(crc64.ECMA)
)

// Append appends the checksum of data to dst and returns the extended slice.
func (t Type) Append(dst, data []byte) []byte {
	switch t {
	case CRC32C:
		return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(data, castagnoli))
	case CRC64:
		return binary.LittleEndian.AppendUint64(dst, crc64.Checksum(data, ecma))
	case XXH64:
		return binary.LittleEndian.AppendUint64(dst, xxhash.Sum64(data))
	case SHA256:
		s := sha256.Sum256(data)
		return append(dst, s[:]...)
	}
	return dst
}

// Equal reports whether sum (one checksum of this type) matches data.
func (t Type) Equal(sum, data []byte) bool {
	var buf [sha256.Size]byte
	got := t.Append(buf[:0], data)
	return string(got) == string(sum)
}

// Sum32C is the CRC32C GoDAOS uses for its own metadata (log records,
// checkpoints, frame headers), independent of any container setting.
func Sum32C(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

// Update32C continues a CRC32C over more data.
func Update32C(crc uint32, data []byte) uint32 { return crc32.Update(crc, castagnoli, data) }

// AppendSlices appends the checksum of the concatenation of parts to dst, without
// copying the parts together first.
func (t Type) AppendSlices(dst []byte, parts [][]byte) []byte {
	if len(parts) == 1 {
		return t.Append(dst, parts[0])
	}
	switch t {
	case CRC32C:
		var c uint32
		for _, p := range parts {
			c = crc32.Update(c, castagnoli, p)
		}
		return binary.LittleEndian.AppendUint32(dst, c)
	case CRC64:
		var c uint64
		for _, p := range parts {
			c = crc64.Update(c, ecma, p)
		}
		return binary.LittleEndian.AppendUint64(dst, c)
	case Off:
		return dst
	}
	var h hash.Hash
	if t == SHA256 {
		h = sha256.New()
	} else {
		h = xxhash.New()
	}
	for _, p := range parts {
		h.Write(p)
	}
	if t == XXH64 {
		return binary.LittleEndian.AppendUint64(dst, h.(*xxhash.Digest).Sum64())
	}
	// Not h.Sum(dst): passing dst through the interface would move every caller's
	// buffer to the heap, on the crc32c path too.
	var sum [sha256.Size]byte
	return append(dst, h.Sum(sum[:0])...)
}

// EqualSlices reports whether sum matches the concatenation of parts.
func (t Type) EqualSlices(sum []byte, parts [][]byte) bool {
	var buf [sha256.Size]byte
	return string(t.AppendSlices(buf[:0], parts)) == string(sum)
}
