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
	te.mustCall(t, enginepb.OpObjUpdate, 0, ioReq("d", 1, big), secret)
	written := &enginepb.IOD{Akey: []byte("arr"), Type: uint32(vos.IODArray), Size: 1, Recxs: []*enginepb.Recx{{Idx: 100, Nr: 10}}}
	te.mustCall(t, enginepb.OpObjUpdate, 0, ioReq("d", 1, written), []byte("0123456789"))
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
				if _, err := te.call(t, enginepb.OpObjFetch, 0, ioReq("d", 2, big), nil, make([]byte, len(secret))); err != nil {
					t.Fatal(err)
				}
				recv := make([]byte, len(tc.want))
				if _, err := te.call(t, enginepb.OpObjFetch, 0, ioReq("d", 2, tc.iod), nil, recv); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(recv, tc.want) {
					t.Fatalf("fetched %q..., want %q...", recv[:16], tc.want[:16])
				}
			}
		})
	}
}
