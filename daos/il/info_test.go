package il

import (
	"bytes"
	"testing"

	"github.com/godaos/godaos/daos"
)

func TestInfoRoundTrip(t *testing.T) {
	pool, err := ParseUUID("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9fa")
	if err != nil {
		t.Fatal(err)
	}
	in := Info{Pool: pool, Cont: [16]byte{15: 1}, OID: daos.OID{Hi: 0x1234 << 32, Lo: 1025}, ChunkSize: 1 << 20}
	out, err := DecodeInfo(in.Encode())
	if err != nil || out != in {
		t.Fatalf("decode(encode(%+v)) = %+v, %v", in, out, err)
	}
	if s := FormatUUID(pool); s != "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9fa" {
		t.Fatalf("FormatUUID = %s", s)
	}
}

func TestDecodeInfoRefuses(t *testing.T) {
	good := Info{ChunkSize: 1}.Encode()
	for _, tc := range []struct {
		name string
		b    func() []byte
	}{
		{"short", func() []byte { return good[:63] }},
		{"long", func() []byte { return append(bytes.Clone(good), 0) }},
		{"magic", func() []byte { b := bytes.Clone(good); b[0]++; return b }},
		{"version", func() []byte { b := bytes.Clone(good); b[4] = 9; return b }},
		{"chunk 0", func() []byte { return Info{}.Encode() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeInfo(tc.b()); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestParseUUIDRefuses(t *testing.T) {
	for _, s := range []string{"", "tank", "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f", "0b1c2d3e+4f50-6172-8394-a5b6c7d8e9fa", "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9fz"} {
		t.Run(s, func(t *testing.T) {
			if _, err := ParseUUID(s); err == nil {
				t.Fatalf("%q parsed", s)
			}
		})
	}
}

// FuzzDecodeInfo: no panic, and what decodes encodes to the same bytes.
func FuzzDecodeInfo(f *testing.F) {
	f.Add(Info{ChunkSize: 1 << 20, OID: daos.OID{Hi: 7, Lo: 9}}.Encode())
	f.Add(make([]byte, InfoSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		i, err := DecodeInfo(b)
		if err != nil {
			return
		}
		if !bytes.Equal(i.Encode(), b) {
			t.Fatalf("encode(decode(%x)) = %x", b, i.Encode())
		}
	})
}

// FuzzParseUUID: no panic, and a parsed UUID formats back (in lower case).
func FuzzParseUUID(f *testing.F) {
	f.Add("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9fa")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUUID(s)
		if err != nil {
			return
		}
		if v, err := ParseUUID(FormatUUID(u)); err != nil || v != u {
			t.Fatalf("%q: %x formats to %s", s, u, FormatUUID(u))
		}
	})
}
