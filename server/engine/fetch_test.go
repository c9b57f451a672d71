package engine

import (
	"bytes"
	"testing"

	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/server/vos"
)

// Array fetches over holes, beyond the written records and of akeys that do
// not exist read zeros, never bytes of an earlier reply: the fetch buffer is
// cleared only where VOS does not fill it itself.
func TestArrayFetchZeroFillsHoles(t *testing.T) {
	te := startEngine(t, engineOpts(t))
	te.createPool(t)
	secret := bytes.Repeat([]byte("S"), 8000)
	big := &enginepb.IOD{Akey: []byte("secret"), Type: uint32(vos.IODSingle), Size: uint64(len(secret))}
	te.mustCall(t, enginepb.OpObjUpdate, 0, ioReq("d", big), secret)
	written := &enginepb.IOD{Akey: []byte("arr"), Type: uint32(vos.IODArray), Size: 1, Recxs: []*enginepb.Recx{{Idx: 100, Nr: 10}}}
	te.mustCall(t, enginepb.OpObjUpdate, 0, ioReq("d", written), []byte("0123456789"))
	for _, tc := range []struct {
		name string
		iod  *enginepb.IOD
		want []byte
	}{
		{"hole, data, beyond", &enginepb.IOD{Akey: []byte("arr"), Type: uint32(vos.IODArray), Size: 1, Recxs: []*enginepb.Recx{{Idx: 0, Nr: 4000}}},
			append(append(make([]byte, 100), "0123456789"...), make([]byte, 3890)...)},
		{"missing akey", &enginepb.IOD{Akey: []byte("none"), Type: uint32(vos.IODArray), Size: 1, Recxs: []*enginepb.Recx{{Idx: 0, Nr: 4000}}},
			make([]byte, 4000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 10 { // the engine's reply buffers are pooled: fill one with the secret first
				if _, err := te.call(t, enginepb.OpObjFetch, 0, ioReq("d", big), nil, make([]byte, len(secret))); err != nil {
					t.Fatal(err)
				}
				recv := make([]byte, len(tc.want))
				if _, err := te.call(t, enginepb.OpObjFetch, 0, ioReq("d", tc.iod), nil, recv); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(recv, tc.want) {
					t.Fatalf("fetched %q..., want %q...", recv[:16], tc.want[:16])
				}
			}
		})
	}
}

// A fetch mixing lent large values (sent from the page cache, see
// vos.FetchBorrowed) with copied ones and missing ones returns each IOD's
// bytes in place, zeros beyond a shorter value, and nothing of earlier
// replies.
func TestFetchLentValues(t *testing.T) {
	te := startEngine(t, engineOpts(t))
	te.createPool(t)
	large := bytes.Repeat([]byte("L"), vos.BorrowMin+3)
	secret := bytes.Repeat([]byte("S"), 3*vos.BorrowMin)
	put := func(akey string, v []byte) {
		te.mustCall(t, enginepb.OpObjUpdate, 0, ioReq("d", &enginepb.IOD{Akey: []byte(akey), Type: uint32(vos.IODSingle), Size: uint64(len(v))}), v)
	}
	put("large", large)
	put("small", []byte("abc"))
	put("secret", secret)
	room := uint64(vos.BorrowMin + 100)
	iods := []*enginepb.IOD{
		{Akey: []byte("large"), Type: uint32(vos.IODSingle), Size: room},
		{Akey: []byte("small"), Type: uint32(vos.IODSingle), Size: 10},
		{Akey: []byte("missing"), Type: uint32(vos.IODSingle), Size: 7},
		{Akey: []byte("large"), Type: uint32(vos.IODSingle), Size: uint64(len(large))},
	}
	want := append(append(append(append(bytes.Clone(large), make([]byte, room-uint64(len(large)))...), "abc\x00\x00\x00\x00\x00\x00\x00"...), make([]byte, 7)...), large...)
	for range 10 {
		if _, err := te.call(t, enginepb.OpObjFetch, 0, ioReq("d", &enginepb.IOD{Akey: []byte("secret"), Type: uint32(vos.IODSingle), Size: uint64(len(secret))}), nil, make([]byte, len(secret))); err != nil {
			t.Fatal(err)
		}
		recv := make([]byte, len(want))
		for i := range recv {
			recv[i] = '?'
		}
		if _, err := te.call(t, enginepb.OpObjFetch, 0, ioReq("d", iods...), nil, recv); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(recv, want) {
			t.Fatalf("fetched bytes differ from the values (first difference at %d)", firstDiff(recv, want))
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
