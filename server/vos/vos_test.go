package vos

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/checksum"
	"github.com/godaos/godaos/internal/daoserr"
)

// testPool formats and opens a target in a temporary directory.
func testPool(t *testing.T, fo FormatOptions) *Pool {
	t.Helper()
	dir := t.TempDir()
	if fo.ScmSize == 0 {
		fo.ScmSize = 64 << 20
	}
	if fo.NvmeSize == 0 {
		fo.NvmeSize = 64 << 20
	}
	if err := Format(dir, fo); err != nil {
		t.Fatal(err)
	}
	p, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

var (
	tCont = UUIDFromUint64(1)
	tOID  = OID{Hi: 0, Lo: 42}
)

func newTestPool(t *testing.T) *Pool {
	p := testPool(t, FormatOptions{})
	if err := p.CreateContainer(tCont, ContOptions{}); err != nil {
		t.Fatal(err)
	}
	return p
}

func putSV(t *testing.T, p *Pool, e Epoch, dkey, akey, val string) {
	t.Helper()
	iod := IOD{Akey: []byte(akey), Type: IODSingle, Size: uint64(len(val))}
	if err := p.Update(tCont, tOID, e, 0, []byte(dkey), []IOD{iod}, []SGL{{[]byte(val)}}); err != nil {
		t.Fatalf("update %s/%s@%d: %v", dkey, akey, e, err)
	}
}

func getSV(t *testing.T, p *Pool, e Epoch, dkey, akey string) string {
	t.Helper()
	buf := make([]byte, 1<<16)
	res, err := p.Fetch(tCont, tOID, e, 0, []byte(dkey), []IOD{{Akey: []byte(akey), Type: IODSingle, Size: 1}}, []SGL{{buf}})
	if err != nil {
		t.Fatalf("fetch %s/%s@%d: %v", dkey, akey, e, err)
	}
	return string(buf[:res[0].Size])
}

func putArr(t *testing.T, p *Pool, e Epoch, dkey, akey string, idx uint64, data []byte) {
	t.Helper()
	iod := IOD{Akey: []byte(akey), Type: IODArray, Size: 1, Recxs: []Recx{{idx, uint64(len(data))}}}
	if err := p.Update(tCont, tOID, e, 0, []byte(dkey), []IOD{iod}, []SGL{{data}}); err != nil {
		t.Fatalf("update array %s/%s@%d: %v", dkey, akey, e, err)
	}
}

func punchArr(t *testing.T, p *Pool, e Epoch, dkey, akey string, rx Recx) {
	t.Helper()
	iod := IOD{Akey: []byte(akey), Type: IODArray, Size: 0, Recxs: []Recx{rx}}
	if err := p.Update(tCont, tOID, e, 0, []byte(dkey), []IOD{iod}, []SGL{nil}); err != nil {
		t.Fatalf("punch array %s/%s@%d: %v", dkey, akey, e, err)
	}
}

func getArr(t *testing.T, p *Pool, e Epoch, dkey, akey string, rx Recx) ([]byte, []Recx) {
	t.Helper()
	buf := make([]byte, rx.Nr)
	res, err := p.Fetch(tCont, tOID, e, 0, []byte(dkey), []IOD{{Akey: []byte(akey), Type: IODArray, Size: 1, Recxs: []Recx{rx}}}, []SGL{{buf}})
	if err != nil {
		t.Fatalf("fetch array %s/%s@%d: %v", dkey, akey, e, err)
	}
	return buf, res[0].Extents
}

func TestSingleValueEpochs(t *testing.T) {
	p := newTestPool(t)
	putSV(t, p, 10, "d", "a", "v10")
	putSV(t, p, 20, "d", "a", "v20-longer")
	putSV(t, p, 30, "d", "a", "") // punch the value
	putSV(t, p, 40, "d", "a", "v40")
	for _, tc := range []struct {
		epoch Epoch
		want  string
	}{{5, ""}, {10, "v10"}, {15, "v10"}, {20, "v20-longer"}, {29, "v20-longer"}, {30, ""}, {39, ""}, {40, "v40"}, {EpochMax, "v40"}} {
		if got := getSV(t, p, tc.epoch, "d", "a"); got != tc.want {
			t.Errorf("epoch %d: got %q, want %q", tc.epoch, got, tc.want)
		}
	}
}

func TestArrayOverlaps(t *testing.T) {
	p := newTestPool(t)
	putArr(t, p, 1, "d", "a", 0, []byte("aaaaaaaaaa")) // [0,10)
	putArr(t, p, 2, "d", "a", 3, []byte("bbb"))        // [3,6)
	putArr(t, p, 3, "d", "a", 8, []byte("cccc"))       // [8,12)
	punchArr(t, p, 4, "d", "a", Recx{1, 2})            // hole [1,3)
	putArr(t, p, 5, "d", "a", 20, []byte("zz"))        // [20,22), leaves a gap
	tests := []struct {
		name  string
		epoch Epoch
		rx    Recx
		want  string
		exts  []Recx
	}{
		{"first write only", 1, Recx{0, 12}, "aaaaaaaaaa\x00\x00", []Recx{{0, 10}}},
		{"newer inside older", 2, Recx{0, 10}, "aaabbbaaaa", []Recx{{0, 10}}},
		{"newer past the end", 3, Recx{0, 12}, "aaabbbaacccc", []Recx{{0, 12}}},
		{"hole reads as zeros and is not reported", 4, Recx{0, 6}, "a\x00\x00bbb", []Recx{{0, 1}, {3, 3}}},
		{"gap between extents", 5, Recx{10, 12}, "cc\x00\x00\x00\x00\x00\x00\x00\x00zz", []Recx{{10, 2}, {20, 2}}},
		{"unaligned middle", 5, Recx{4, 5}, "bbaac", []Recx{{4, 5}}},
		{"before anything", 0, Recx{0, 4}, "\x00\x00\x00\x00", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, exts := getArr(t, p, tc.epoch, "d", "a", tc.rx)
			if string(got) != tc.want || !slices.Equal(exts, tc.exts) {
				t.Errorf("got %q %v, want %q %v", got, exts, tc.want, tc.exts)
			}
		})
	}
}

func TestTiersAndChecksums(t *testing.T) {
	p := newTestPool(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160000 bytes: NVMe tier, several checksum chunks
	putArr(t, p, 1, "d", "big", 0, big)
	putSV(t, p, 1, "d", "small", "tiny")
	putSV(t, p, 1, "d", "large", string(big[:5000]))
	in := p.Query()
	if in.NvmeUsed != roundUp(160000)+roundUp(5000) {
		t.Errorf("nvme used %d, want %d", in.NvmeUsed, roundUp(160000)+roundUp(5000))
	}
	for _, rx := range []Recx{{0, 160000}, {1, 7}, {32767, 3}, {70000, 40000}} {
		got, _ := getArr(t, p, 2, "d", "big", rx)
		if !bytes.Equal(got, big[rx.Idx:rx.end()]) {
			t.Errorf("extent %v read back wrong", rx)
		}
	}
	if got := getSV(t, p, 2, "d", "large"); got != string(big[:5000]) {
		t.Errorf("large single value read back wrong")
	}
	// Corrupt one byte of the array in the data file: the read of that chunk fails
	// with DER_CSUM naming the akey; other chunks still read.
	recs, _, err := p.AkeyRecords(tCont, tOID, []byte("d"), []byte("big"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.data.WriteAt([]byte{'X'}, int64(recs[0].Off+100000)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	_, err = p.Fetch(tCont, tOID, 2, 0, []byte("d"), []IOD{{Akey: []byte("big"), Type: IODArray, Size: 1, Recxs: []Recx{{99995, 10}}}}, []SGL{{buf}})
	if !daoserr.Is(err, daoserr.Csum) || !bytes.Contains([]byte(err.Error()), []byte(`akey "big"`)) {
		t.Errorf("corrupt read: got %v, want DER_CSUM naming the akey", err)
	}
	if got, _ := getArr(t, p, 2, "d", "big", Recx{0, 10}); !bytes.Equal(got, big[:10]) {
		t.Errorf("undamaged chunk unreadable")
	}
	var damage []Damage
	n, _ := p.Verify(func(d Damage) { damage = append(damage, d) })
	if n != 3 || len(damage) != 1 || damage[0].Akey != "big" {
		t.Errorf("verify checked %d values, found %v", n, damage)
	}
}

// A large extent read whole is read and verified in two parts concurrently
// (readWhole); damage in either part must still be caught and named, and an SGL
// whose buffers straddle the split must be filled exactly.
func TestSplitReadVerifies(t *testing.T) {
	const n = 1 << 20
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	tests := []struct {
		name    string
		corrupt int64 // byte offset in the extent to damage, -1 for none
		sgl     []int // buffer sizes of the fetch SGL
		wantErr string
	}{
		{"clean, one buffer", -1, []int{n}, ""},
		{"clean, buffers straddling the split", -1, []int{1000, n*5/8 - 1000 + 3, n*3/8 - 3}, ""},
		{"damage in the first part", 40000, []int{n}, "chunk at record 32768"},
		{"damage in the first chunk of the second part", n * 5 / 8, []int{n}, "chunk at record 655360"},
		{"damage in the second part", n - 5, []int{n}, "chunk at record 1015808"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPool(t)
			putArr(t, p, 1, "d", "big", 0, data)
			if tc.corrupt >= 0 {
				recs, _, err := p.AkeyRecords(tCont, tOID, []byte("d"), []byte("big"))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.data.WriteAt([]byte{^data[tc.corrupt]}, int64(recs[0].Off)+tc.corrupt); err != nil {
					t.Fatal(err)
				}
			}
			var sgl SGL
			for _, sz := range tc.sgl {
				sgl = append(sgl, make([]byte, sz))
			}
			_, err := p.Fetch(tCont, tOID, 2, 0, []byte("d"), []IOD{{Akey: []byte("big"), Type: IODArray, Size: 1, Recxs: []Recx{{0, n}}}}, []SGL{sgl})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := bytes.Join(sgl, nil); !bytes.Equal(got, data) {
					t.Error("read back wrong")
				}
				return
			}
			if !daoserr.Is(err, daoserr.Csum) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want DER_CSUM naming %q", err, tc.wantErr)
			}
		})
	}
}

func TestConditionalOps(t *testing.T) {
	p := newTestPool(t)
	putSV(t, p, 10, "d1", "a", "x")
	sv := func(akey string, flags CondFlags) IOD {
		return IOD{Akey: []byte(akey), Type: IODSingle, Size: 1, Flags: flags}
	}
	update := func(e Epoch, flags CondFlags, dkey string, iods ...IOD) error {
		sgls := make([]SGL, len(iods))
		for i := range sgls {
			sgls[i] = SGL{[]byte("y")}
		}
		return p.Update(tCont, tOID, e, flags, []byte(dkey), iods, sgls)
	}
	fetch := func(e Epoch, flags CondFlags, dkey string, iods ...IOD) error {
		sgls := make([]SGL, len(iods))
		for i := range sgls {
			sgls[i] = SGL{make([]byte, 1)}
		}
		_, err := p.Fetch(tCont, tOID, e, flags, []byte(dkey), iods, sgls)
		return err
	}
	tests := []struct {
		name string
		run  func() error
		want daoserr.Code
	}{
		{"dkey insert on existing dkey", func() error { return update(20, CondDkeyInsert, "d1", sv("b", 0)) }, daoserr.Exist},
		{"dkey insert before it existed", func() error { return update(5, CondDkeyInsert, "d1", sv("b", 0)) }, 0},
		{"dkey insert on new dkey", func() error { return update(20, CondDkeyInsert, "d2", sv("b", 0)) }, 0},
		{"dkey update on missing dkey", func() error { return update(20, CondDkeyUpdate, "d3", sv("b", 0)) }, daoserr.Nonexist},
		{"dkey update on existing dkey", func() error { return update(21, CondDkeyUpdate, "d1", sv("c", 0)) }, 0},
		{"akey insert on existing akey", func() error { return update(22, CondAkeyInsert, "d1", sv("a", 0)) }, daoserr.Exist},
		{"akey update on missing akey", func() error { return update(22, CondAkeyUpdate, "d1", sv("zz", 0)) }, daoserr.Nonexist},
		{"per-akey conditions", func() error {
			return update(23, CondPerAkey, "d1", sv("a", CondAkeyUpdate), sv("new", CondAkeyInsert))
		}, 0},
		{"per-akey condition failing rejects the whole update", func() error {
			return update(24, CondPerAkey, "d1", sv("q", CondAkeyInsert), sv("a", CondAkeyInsert))
		}, daoserr.Exist},
		{"dkey fetch on missing dkey", func() error { return fetch(30, CondDkeyFetch, "nope", sv("a", 0)) }, daoserr.Nonexist},
		{"dkey fetch on existing dkey", func() error { return fetch(30, CondDkeyFetch, "d1", sv("a", 0)) }, 0},
		{"akey fetch on missing akey", func() error { return fetch(30, CondAkeyFetch, "d1", sv("missing", 0)) }, daoserr.Nonexist},
		{"punch if exists, missing dkey", func() error { return p.PunchDkeys(tCont, tOID, 40, CondPunch, [][]byte{[]byte("nope")}) }, daoserr.Nonexist},
		{"punch if exists, missing akey", func() error {
			return p.PunchAkeys(tCont, tOID, 40, CondPunch, []byte("d1"), [][]byte{[]byte("nope")})
		}, daoserr.Nonexist},
		{"punch if exists, missing object", func() error { return p.PunchObject(tCont, OID{9, 9}, 40, CondPunch) }, daoserr.Nonexist},
		{"punch if exists, existing akey", func() error {
			return p.PunchAkeys(tCont, tOID, 41, CondPunch, []byte("d1"), [][]byte{[]byte("a")})
		}, 0},
		{"insert after punch succeeds", func() error { return update(42, CondAkeyInsert, "d1", sv("a", 0)) }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if tc.want == 0 && err != nil || tc.want != 0 && !daoserr.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// the rejected per-akey update left nothing behind
	if got := getSV(t, p, EpochMax, "d1", "q"); got != "" {
		t.Errorf("rejected update is visible: %q", got)
	}
}

func TestPunchLevels(t *testing.T) {
	p := newTestPool(t)
	putSV(t, p, 10, "d1", "a", "1a")
	putSV(t, p, 10, "d1", "b", "1b")
	putSV(t, p, 10, "d2", "a", "2a")
	if err := p.PunchAkeys(tCont, tOID, 20, 0, []byte("d1"), [][]byte{[]byte("a")}); err != nil {
		t.Fatal(err)
	}
	if err := p.PunchDkeys(tCont, tOID, 30, 0, [][]byte{[]byte("d2")}); err != nil {
		t.Fatal(err)
	}
	putSV(t, p, 40, "d2", "a", "2a-again")
	if err := p.PunchObject(tCont, tOID, 50, 0); err != nil {
		t.Fatal(err)
	}
	keys := func(e Epoch) []string {
		var out []string
		ks, err := p.ListDkeys(tCont, tOID, e, &Anchor{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			out = append(out, string(k))
		}
		return out
	}
	for _, tc := range []struct {
		e     Epoch
		d1a   string
		dkeys []string
	}{{15, "1a", []string{"d1", "d2"}}, {25, "", []string{"d1", "d2"}}, {35, "", []string{"d1"}}, {45, "", []string{"d1", "d2"}}, {55, "", nil}} {
		if got := getSV(t, p, tc.e, "d1", "a"); got != tc.d1a {
			t.Errorf("d1/a at %d: %q, want %q", tc.e, got, tc.d1a)
		}
		if got := keys(tc.e); !slices.Equal(got, tc.dkeys) {
			t.Errorf("dkeys at %d: %v, want %v", tc.e, got, tc.dkeys)
		}
	}
	objs, _ := p.ListObjects(tCont, 45, &Anchor{}, 0)
	if len(objs) != 1 {
		t.Errorf("objects at 45: %v", objs)
	}
	if objs, _ := p.ListObjects(tCont, 55, &Anchor{}, 0); len(objs) != 0 {
		t.Errorf("punched object still listed: %v", objs)
	}
}

func TestIntegerKeysAndQuery(t *testing.T) {
	p := newTestPool(t)
	oid := OID{Hi: uint64(ObjArray) << 56, Lo: 1} // array objects have uint64 dkeys
	key := func(n uint64) []byte { b := make([]byte, 8); b[0], b[1] = byte(n), byte(n>>8); return b }
	for _, n := range []uint64{3, 256, 1, 70} {
		iod := IOD{Akey: []byte{0}, Type: IODArray, Size: 1, Recxs: []Recx{{n * 10, 5}}}
		if err := p.Update(tCont, oid, 1, 0, key(n), []IOD{iod}, []SGL{{[]byte("hello")}}); err != nil {
			t.Fatal(err)
		}
	}
	var anchor Anchor
	var got []byte
	for !anchor.EOF {
		ks, err := p.ListDkeys(tCont, oid, 5, &anchor, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			got = append(got, k[0])
		}
	}
	if !bytes.Equal(got, []byte{1, 3, 70, 0}) { // 256 has low byte 0 and sorts last numerically
		t.Errorf("integer dkeys listed as %v", got)
	}
	q, err := p.QueryKey(tCont, oid, 5, GetMax|GetDkey|GetAkey|GetRecx, nil, nil)
	if err != nil || !bytes.Equal(q.Dkey, key(256)) || q.Recx != (Recx{2560, 5}) {
		t.Errorf("query max: %+v %v", q, err)
	}
	q, err = p.QueryKey(tCont, oid, 5, GetMin|GetDkey, nil, nil)
	if err != nil || !bytes.Equal(q.Dkey, key(1)) {
		t.Errorf("query min: %+v %v", q, err)
	}
	if _, err := p.QueryKey(tCont, oid, 0, GetMax|GetDkey, nil, nil); !daoserr.Is(err, daoserr.Nonexist) {
		t.Errorf("query before any write: %v", err)
	}
	recs, rsize, err := p.ListRecx(tCont, oid, 5, key(3), []byte{0}, &Anchor{}, 0)
	if err != nil || rsize != 1 || len(recs) != 1 || recs[0].Recx != (Recx{30, 5}) || recs[0].Epoch != 1 {
		t.Errorf("list recx: %v %d %v", recs, rsize, err)
	}
}

func TestAggregationReclaimsAndKeepsSnapshots(t *testing.T) {
	p := newTestPool(t)
	big := func(c byte) []byte { return bytes.Repeat([]byte{c}, 8192) }
	putArr(t, p, 10, "d", "a", 0, big('1'))
	putArr(t, p, 20, "d", "a", 0, big('2')) // snapshot at 20 pins this one
	putArr(t, p, 30, "d", "a", 0, big('3'))
	putArr(t, p, 40, "d", "a", 0, big('4'))
	punchArr(t, p, 45, "d", "a", Recx{0, 100}) // hole over older data that survives: kept
	before := p.Query().NvmeUsed
	if err := p.Aggregate(tCont, 0, 50, []Epoch{20}); err != nil {
		t.Fatal(err)
	}
	after := p.Query().NvmeUsed
	if before-after != 2*8192 {
		t.Errorf("aggregation freed %d bytes, want %d (versions 10 and 30)", before-after, 2*8192)
	}
	if got, _ := getArr(t, p, 20, "d", "a", Recx{0, 4}); string(got) != "2222" {
		t.Errorf("snapshot 20 reads %q", got)
	}
	if got, ext := getArr(t, p, 60, "d", "a", Recx{98, 4}); string(got) != "\x00\x0044" || !slices.Equal(ext, []Recx{{100, 2}}) {
		t.Errorf("latest reads %q %v", got, ext)
	}
	// writing below the aggregated epoch is refused
	err := p.Update(tCont, tOID, 50, 0, []byte("d"), []IOD{{Akey: []byte("a"), Type: IODArray, Size: 1, Recxs: []Recx{{0, 1}}}}, []SGL{{[]byte("x")}})
	if !daoserr.Is(err, daoserr.TxRestart) {
		t.Errorf("write below aggregation: %v", err)
	}
	// freed space is reused
	putArr(t, p, 60, "d", "b", 0, big('5'))
	putArr(t, p, 60, "d", "c", 0, big('6'))
	if got := p.Query().NvmeUsed; got != before {
		t.Errorf("after reuse nvme used %d, want %d", got, before)
	}
}

func TestDiscardAndDestroy(t *testing.T) {
	p := newTestPool(t)
	putSV(t, p, 10, "d", "a", "ten")
	putSV(t, p, 20, "d", "a", "twenty")
	putArr(t, p, 30, "d", "arr", 0, bytes.Repeat([]byte("z"), 9000))
	if err := p.Discard(tCont, 15, 35); err != nil {
		t.Fatal(err)
	}
	if got := getSV(t, p, EpochMax, "d", "a"); got != "ten" {
		t.Errorf("after discard: %q", got)
	}
	if used := p.Query().NvmeUsed; used != 0 {
		t.Errorf("discarded extent still uses %d bytes", used)
	}
	if err := p.DestroyObject(tCont, tOID); err != nil {
		t.Fatal(err)
	}
	if objs, _ := p.ListObjects(tCont, EpochMax, &Anchor{}, 0); len(objs) != 0 {
		t.Errorf("destroyed object listed: %v", objs)
	}
	if err := p.DestroyContainer(tCont); err != nil {
		t.Fatal(err)
	}
	if err := p.DestroyContainer(tCont); !daoserr.Is(err, daoserr.Nonexist) {
		t.Errorf("second destroy: %v", err)
	}
	if err := p.CreateContainer(tCont, ContOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := p.CreateContainer(tCont, ContOptions{}); !daoserr.Is(err, daoserr.Exist) {
		t.Errorf("second create: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	p := newTestPool(t)
	putSV(t, p, 1, "d", "single", "x")
	putArr(t, p, 1, "d", "array", 0, []byte("abc"))
	long := bytes.Repeat([]byte("k"), MaxKeySize+1)
	one := SGL{[]byte("x")}
	tests := []struct {
		name string
		run  func() error
		want daoserr.Code
	}{
		{"no container", func() error {
			return p.Update(UUIDFromUint64(99), tOID, 1, 0, []byte("d"), []IOD{{Akey: []byte("a"), Type: IODSingle, Size: 1}}, []SGL{one})
		}, daoserr.Nonexist},
		{"epoch 0", func() error {
			return p.Update(tCont, tOID, 0, 0, []byte("d"), []IOD{{Akey: []byte("a"), Type: IODSingle, Size: 1}}, []SGL{one})
		}, daoserr.Inval},
		{"empty dkey", func() error {
			return p.Update(tCont, tOID, 2, 0, nil, []IOD{{Akey: []byte("a"), Type: IODSingle, Size: 1}}, []SGL{one})
		}, daoserr.Inval},
		{"key too big", func() error {
			return p.Update(tCont, tOID, 2, 0, long, []IOD{{Akey: []byte("a"), Type: IODSingle, Size: 1}}, []SGL{one})
		}, daoserr.Key2Big},
		{"sgl count", func() error {
			return p.Update(tCont, tOID, 2, 0, []byte("d"), []IOD{{Akey: []byte("a"), Type: IODSingle, Size: 1}}, nil)
		}, daoserr.Inval},
		{"sgl too short", func() error {
			return p.Update(tCont, tOID, 2, 0, []byte("d"), []IOD{{Akey: []byte("a"), Type: IODSingle, Size: 5}}, []SGL{one})
		}, daoserr.Inval},
		{"zero-length extent", func() error {
			return p.Update(tCont, tOID, 2, 0, []byte("d"), []IOD{{Akey: []byte("a"), Type: IODArray, Size: 1, Recxs: []Recx{{5, 0}}}}, []SGL{one})
		}, daoserr.Inval},
		{"overflowing extent", func() error {
			return p.Update(tCont, tOID, 2, 0, []byte("d"), []IOD{{Akey: []byte("a"), Type: IODArray, Size: 1, Recxs: []Recx{{^uint64(0), 2}}}}, []SGL{one})
		}, daoserr.Inval},
		{"array into single akey", func() error {
			return p.Update(tCont, tOID, 2, 0, []byte("d"), []IOD{{Akey: []byte("single"), Type: IODArray, Size: 1, Recxs: []Recx{{0, 1}}}}, []SGL{one})
		}, daoserr.Inval},
		{"different record size", func() error {
			return p.Update(tCont, tOID, 2, 0, []byte("d"), []IOD{{Akey: []byte("array"), Type: IODArray, Size: 2, Recxs: []Recx{{0, 1}}}}, []SGL{{[]byte("xy")}})
		}, daoserr.RecSize},
		{"duplicate akey", func() error {
			iod := IOD{Akey: []byte("a"), Type: IODSingle, Size: 1}
			return p.Update(tCont, tOID, 2, 0, []byte("d"), []IOD{iod, iod}, []SGL{one, one})
		}, daoserr.Inval},
		{"unknown iod type", func() error {
			return p.Update(tCont, tOID, 2, 0, []byte("d"), []IOD{{Akey: []byte("a"), Type: 7, Size: 1}}, []SGL{one})
		}, daoserr.Inval},
		{"fetch buffer too small", func() error {
			_, err := p.Fetch(tCont, tOID, 2, 0, []byte("d"), []IOD{{Akey: []byte("single"), Type: IODSingle, Size: 1}}, []SGL{{nil}})
			return err
		}, daoserr.Rec2Big},
		{"fetch single as array", func() error {
			_, err := p.Fetch(tCont, tOID, 2, 0, []byte("d"), []IOD{{Akey: []byte("single"), Type: IODArray, Size: 1, Recxs: []Recx{{0, 1}}}}, []SGL{one})
			return err
		}, daoserr.Inval},
		{"fetch wrong record size", func() error {
			_, err := p.Fetch(tCont, tOID, 2, 0, []byte("d"), []IOD{{Akey: []byte("array"), Type: IODArray, Size: 4, Recxs: []Recx{{0, 1}}}}, []SGL{{make([]byte, 4)}})
			return err
		}, daoserr.RecSize},
		{"query without level", func() error { _, err := p.QueryKey(tCont, tOID, 2, GetMax, nil, nil); return err }, daoserr.Inval},
		{"aggregate bad range", func() error { return p.Aggregate(tCont, 5, 4, nil) }, daoserr.Inval},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !daoserr.Is(err, tc.want) {
				t.Fatalf("got %v, want %s", err, tc.want.Name())
			}
		})
	}
}

func TestSpaceExhaustion(t *testing.T) {
	p := testPool(t, FormatOptions{ScmSize: 1 << 20, NvmeSize: 64 << 10})
	if err := p.CreateContainer(tCont, ContOptions{}); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("n"), 16<<10)
	var stored int
	var err error
	for i := range 10 {
		err = p.Update(tCont, tOID, Epoch(i+1), 0, []byte{byte(i)}, []IOD{{Akey: []byte("a"), Type: IODArray, Size: 1, Recxs: []Recx{{0, uint64(len(chunk))}}}}, []SGL{{chunk}})
		if err != nil {
			break
		}
		stored++
	}
	if stored != 4 || !daoserr.Is(err, daoserr.NoSpace) {
		t.Fatalf("stored %d 16 KiB extents in 64 KiB, then %v; want 4 then DER_NOSPACE", stored, err)
	}
	// punch + aggregate reclaims, and the space is usable again
	if err := p.PunchObject(tCont, tOID, 20, 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Aggregate(tCont, 0, 30, nil); err != nil {
		t.Fatal(err)
	}
	if used := p.Query().NvmeUsed; used != 0 {
		t.Fatalf("after punch and aggregation %d bytes still used", used)
	}
	if err := p.Update(tCont, tOID, 31, 0, []byte("again"), []IOD{{Akey: []byte("a"), Type: IODArray, Size: 1, Recxs: []Recx{{0, uint64(len(chunk))}}}}, []SGL{{chunk}}); err != nil {
		t.Fatalf("write after reclaim: %v", err)
	}
	// SCM exhaustion with small values
	small := bytes.Repeat([]byte("s"), 1000)
	for i := 0; ; i++ {
		err := p.Update(tCont, tOID, 40, 0, []byte{byte(i), byte(i >> 8)}, []IOD{{Akey: []byte("s"), Type: IODSingle, Size: 1000}}, []SGL{{small}})
		if err != nil {
			if !daoserr.Is(err, daoserr.NoSpace) || i < 900 {
				t.Fatalf("SCM tier: %v after %d values", err, i)
			}
			break
		}
		if i > 2000 {
			t.Fatal("SCM tier never filled")
		}
	}
}

func TestLogDamage(t *testing.T) {
	setup := func(t *testing.T) (string, []int) {
		dir := t.TempDir()
		if err := Format(dir, FormatOptions{ScmSize: 1 << 20, NvmeSize: 1 << 20}); err != nil {
			t.Fatal(err)
		}
		p, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		p.CreateContainer(tCont, ContOptions{})
		for i := range 3 {
			putSV(t, p, Epoch(i+1), "d", string(rune('a'+i)), "value")
		}
		p.Close()
		b, _ := os.ReadFile(filepath.Join(dir, segName(0)))
		var offs []int // record starts
		for off := 0; ; {
			_, n, err := readRecord(b[off:])
			if err != nil {
				break
			}
			offs = append(offs, off)
			off += n
		}
		return dir, offs
	}
	flip := func(t *testing.T, path string, off int) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var b [1]byte
		f.ReadAt(b[:], int64(off))
		b[0] ^= 0xff
		f.WriteAt(b[:], int64(off))
	}
	t.Run("bad record in the last segment is a torn tail: cut there", func(t *testing.T) {
		dir, offs := setup(t)
		flip(t, filepath.Join(dir, segName(0)), offs[3]+recHeader+2) // the update of "c"
		p, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if got := getSV(t, p, EpochMax, "d", "b"); got != "value" {
			t.Errorf("record before the damage lost: %q", got)
		}
		if got := getSV(t, p, EpochMax, "d", "c"); got != "" {
			t.Errorf("damaged record replayed: %q", got)
		}
		if in := p.Query(); in.TruncatedBytes == 0 || in.ReplayedRecords != 3 {
			t.Errorf("cut %d bytes, replayed %d records", in.TruncatedBytes, in.ReplayedRecords)
		}
	})
	t.Run("bad record with later segments is corruption: open refuses", func(t *testing.T) {
		dir, offs := setup(t)
		flip(t, filepath.Join(dir, segName(0)), offs[2]+recHeader+2)
		if err := os.WriteFile(filepath.Join(dir, segName(1)), make([]byte, 4096), 0o640); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, Options{})
		if !daoserr.Is(err, daoserr.DFInval) || !strings.Contains(err.Error(), segName(0)) {
			t.Fatalf("got %v, want DER_DF_INVAL naming the segment", err)
		}
	})
	t.Run("read-only open does not cut", func(t *testing.T) {
		dir, offs := setup(t)
		path := filepath.Join(dir, segName(0))
		flip(t, path, offs[3]+recHeader+2)
		before, _ := os.ReadFile(path)
		p, err := Open(dir, Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Fatal("read-only open modified the log")
		}
	})
	t.Run("a second open of a target in use is refused", func(t *testing.T) {
		dir, _ := setup(t)
		p, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if _, err := Open(dir, Options{ReadOnly: true}); !daoserr.Is(err, daoserr.Busy) {
			t.Fatalf("got %v, want DER_BUSY", err)
		}
	})
}

// Values up to redoMax in the NVMe tier are committed with the log flush only: their
// data is in the log record too. A power failure can lose their (unflushed) data-file
// blocks; replay must restore them, and must not clobber newer data written later to
// the same space.
func TestRedoLoggedValues(t *testing.T) {
	dir := t.TempDir()
	if err := Format(dir, FormatOptions{ScmSize: 16 << 20, NvmeSize: 16 << 20}); err != nil {
		t.Fatal(err)
	}
	p, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.redoMax = redoMax // even if TMPDIR is tmpfs (where Open turns redo off)
	p.CreateContainer(tCont, ContOptions{})
	small := bytes.Repeat([]byte("r"), 8192)      // redo-logged
	large := bytes.Repeat([]byte("L"), redoMax+1) // written once, flushed before the log
	putArr(t, p, 1, "d1", "a", 0, small)
	// free small's space, then let a large value take it
	if err := p.DestroyKey(tCont, tOID, []byte("d1"), nil); err != nil {
		t.Fatal(err)
	}
	putArr(t, p, 2, "d2", "a", 0, large)
	putArr(t, p, 3, "d3", "a", 0, small)
	p.Close()

	// Lose every data-file block written since format, as a power failure could for
	// unflushed writes (the large value was flushed, so give it back).
	data := filepath.Join(dir, "data")
	img, _ := os.ReadFile(data)
	largeOff := bytes.Index(img, large)
	if largeOff != 0 {
		t.Fatalf("large value at %d, want 0 (it reuses the destroyed value's space)", largeOff)
	}
	clear(img)
	copy(img[largeOff:], large)
	os.WriteFile(data, img, 0o640)

	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := getArr(t, ro, 5, "d3", "a", Recx{0, uint64(len(small))}); !bytes.Equal(got, small) {
		t.Errorf("read-only open does not serve the logged data")
	}
	ro.Close()

	p, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got, _ := getArr(t, p, 5, "d3", "a", Recx{0, uint64(len(small))}); !bytes.Equal(got, small) {
		t.Errorf("redo-logged value not restored")
	}
	if got, _ := getArr(t, p, 5, "d2", "a", Recx{0, uint64(len(large))}); !bytes.Equal(got, large) {
		t.Errorf("replay clobbered a newer value written to freed space")
	}
	if n, err := p.Verify(func(d Damage) { t.Errorf("damage: %v", d) }); err != nil || n != 2 {
		t.Errorf("verify: %d values, %v", n, err)
	}
}

// A run whose redo-loggable data exceeds redoRunMax is written once, to the data
// file (flushed before the log), instead of twice.
func TestLimitRedo(t *testing.T) {
	run := func(sizes ...uint64) []*request {
		var rs []*request
		for _, n := range sizes {
			o := &op{vals: []valueRec{{flags: recNVMe | recRedo, redo: [][]byte{make([]byte, n)}}}}
			o.data = []pendingData{{val: 0, n: n, redo: true}}
			rs = append(rs, &request{op: o})
		}
		return rs
	}
	tests := []struct {
		name     string
		sizes    []uint64
		wantRedo bool
	}{
		{"one small value", []uint64{4096}, true},
		{"exactly the limit", []uint64{redoRunMax / 2, redoRunMax / 2}, true},
		{"over the limit", []uint64{redoRunMax / 2, redoRunMax/2 + 1}, false},
		{"many small values", slices.Repeat([]uint64{4096}, 64), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := run(tc.sizes...)
			limitRedo(rs)
			for i, r := range rs {
				v, d := r.op.vals[0], r.op.data[0]
				if got := v.flags&recRedo != 0; got != tc.wantRedo || d.redo != tc.wantRedo || (v.redo != nil) != tc.wantRedo {
					t.Errorf("value %d: flag %v, pending %v, data kept %v; want redo %v", i, got, d.redo, v.redo != nil, tc.wantRedo)
				}
			}
		})
	}
}

// One group commit whose NVMe-tier values are handed to the data writer many
// times over (a full batch of 64 KiB values: 256 hand-offs of 128 KiB) must
// commit and read back. The run is formed by the test, so its size does not
// depend on timing. (A reply channel with a bounded
// buffer once deadlocked here: the writer waited on the committer and the
// committer on the writer.)
func TestRunWithManyDataHandoffs(t *testing.T) {
	p := newTestPool(t)
	const n, size = maxBatch, 64 << 10
	run := make([]*request, n)
	for i := range run {
		val := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, size/2)
		dkey := []byte(fmt.Sprintf("d%04d", i))
		o, err := p.buildUpdate(tCont, tOID, 1, 0, dkey, []IOD{{Akey: []byte("a"), Type: IODSingle, Size: size}}, []SGL{{val}})
		if err != nil {
			t.Fatal(err)
		}
		run[i] = &request{op: o, done: make(chan struct{}, 1)}
	}
	// As one run, on the committer (control runs a function there between batches).
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.control(func() error { p.commitRun(run); return nil })
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		// Not t.Fatal or panic: the pool's cleanup would wait for the stuck
		// committer until the test binary times out. Show where it is stuck, and exit.
		stacks := make([]byte, 1<<20)
		stacks = stacks[:runtime.Stack(stacks, true)]
		fmt.Fprintf(os.Stderr, "--- FAIL: %s: commit of one large run did not finish in a minute: committer and data writer deadlocked\n%s", t.Name(), stacks)
		os.Exit(1)
	}
	for i, r := range run {
		if r.err != nil {
			t.Fatalf("op %d: %v", i, r.err)
		}
	}
	for _, i := range []int{0, 1, n/2 + 3, n - 1} {
		want := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, size/2)
		if got := getSV(t, p, 2, fmt.Sprintf("d%04d", i), "a"); got != string(want) {
			t.Errorf("value %d read back wrong", i)
		}
	}
}

// An update built against a container that is then destroyed and created again
// (possibly with another checksum type) must not be applied to the new one with
// checksums of the old type.
func TestUpdateOfRecreatedContainer(t *testing.T) {
	p := newTestPool(t)
	o, err := p.buildUpdate(tCont, tOID, 1, 0, []byte("d"), []IOD{{Akey: []byte("a"), Type: IODSingle, Size: 3}}, []SGL{{[]byte("old")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.DestroyContainer(tCont); err != nil {
		t.Fatal(err)
	}
	if err := p.CreateContainer(tCont, ContOptions{Csum: checksum.SHA256}); err != nil {
		t.Fatal(err)
	}
	if err := p.submit(o); !daoserr.Is(err, daoserr.Nonexist) || !strings.Contains(err.Error(), "created again") {
		t.Fatalf("in-flight update of a recreated container: got %v, want DER_NONEXIST saying it was recreated", err)
	}
	putSV(t, p, 2, "d", "a", "new") // a fresh update works, with the new checksum type
	if got := getSV(t, p, 3, "d", "a"); got != "new" {
		t.Errorf("read %q, want %q", got, "new")
	}
}

// Rebuild writes its copies at the lowest epoch, under whatever the target
// got since: below an aggregated epoch only with WriteBelowAggregated, and
// then under the newer versions, which stay visible.
func TestWriteBelowAggregated(t *testing.T) {
	p := newTestPool(t)
	putSV(t, p, 50, "d", "a", "newer")
	if err := p.Aggregate(tCont, 0, 100, nil); err != nil {
		t.Fatal(err)
	}
	iod := []IOD{{Akey: []byte("a"), Type: IODSingle, Size: 4}}
	copyOf := func(flags CondFlags, dkey string) error {
		return p.Update(tCont, tOID, 1, flags, []byte(dkey), iod, []SGL{{[]byte("copy")}})
	}
	if err := copyOf(0, "d"); !daoserr.Is(err, daoserr.TxRestart) {
		t.Fatalf("a write below the aggregated epoch: %v, want DER_TX_RESTART", err)
	}
	if err := copyOf(WriteBelowAggregated, "d"); err != nil {
		t.Fatal(err)
	}
	if err := copyOf(WriteBelowAggregated, "e"); err != nil {
		t.Fatal(err)
	}
	if got := getSV(t, p, EpochMax, "d", "a"); got != "newer" {
		t.Fatalf("latest of d: %q, want the newer version over the copy", got)
	}
	if got := getSV(t, p, EpochMax, "e", "a"); got != "copy" {
		t.Fatalf("latest of e: %q, want the copy", got)
	}
}
