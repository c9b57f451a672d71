package checksum

import (
	"encoding/binary"
	"encoding/hex"
	"testing"
)

func TestKnownVectors(t *testing.T) {
	check := []byte("123456789")
	tests := []struct {
		typ  Type
		want string // hex of the stored (little-endian for CRCs) checksum
	}{
		{CRC32C, le32(0xe3069283)},
		{CRC64, le64(0x995dc9bbdf1939fa)},
		{XXH64, le64(0x8cb841db40e6ae83)},
		{SHA256, "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"},
	}
	for _, tc := range tests {
		t.Run(tc.typ.String(), func(t *testing.T) {
			got := hex.EncodeToString(tc.typ.Append(nil, check))
			if got != tc.want {
				t.Fatalf("%s(%q) = %s, want %s", tc.typ, check, got, tc.want)
			}
			if len(got)/2 != tc.typ.Size() {
				t.Fatalf("size %d, checksum has %d bytes", tc.typ.Size(), len(got)/2)
			}
			// the same over pieces, and Equal agrees
			parts := [][]byte{check[:2], check[2:2], check[2:7], check[7:]}
			if sum := tc.typ.AppendSlices(nil, parts); hex.EncodeToString(sum) != tc.want || !tc.typ.EqualSlices(sum, parts) || !tc.typ.Equal(sum, check) {
				t.Fatalf("over slices: %x", sum)
			}
			if tc.typ.Equal(tc.typ.Append(nil, check), []byte("123456780")) {
				t.Fatalf("a changed byte still matches")
			}
		})
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]Type{"off": Off, "crc32": CRC32C, "CRC32C": CRC32C, "crc64": CRC64, "sha256": SHA256, "xxh64": XXH64} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := Parse("md5"); err == nil {
		t.Error("Parse(md5) accepted an unknown type")
	}
	if Off.Size() != 0 || len(Off.Append(nil, []byte("x"))) != 0 {
		t.Error("off stores something")
	}
}

func le32(v uint32) string { return hex.EncodeToString(binary.LittleEndian.AppendUint32(nil, v)) }
func le64(v uint64) string { return hex.EncodeToString(binary.LittleEndian.AppendUint64(nil, v)) }
