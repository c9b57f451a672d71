package vos

import (
	"bytes"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
)

func fetchBorrowed(t *testing.T, p *Pool, e Epoch, dkey string, iods []IOD) ([]FetchResult, [][]byte, [][]byte, func()) {
	t.Helper()
	sgls := make([]SGL, len(iods))
	bufs := make([][]byte, len(iods))
	for i, d := range iods {
		bufs[i] = make([]byte, d.Size)
		sgls[i] = SGL{bufs[i]}
	}
	res, borrowed, release, err := p.FetchBorrowed(tCont, tOID, e, 0, []byte(dkey), iods, sgls)
	if err != nil {
		t.Fatal(err)
	}
	return res, borrowed, bufs, release
}

// Large single values in the data file are lent, verified, as they are
// stored; the others are read into their buffers as by Fetch.
func TestFetchBorrowed(t *testing.T) {
	p := newTestPool(t)
	if p.dmap == nil {
		t.Fatal("the test pool's data file is not mapped: borrowing cannot be tested (mmap of a regular file failed)")
	}
	large := bytes.Repeat([]byte("large value "), BorrowMin/8)
	putSV(t, p, 1, "d", "large", string(large))
	putSV(t, p, 1, "d", "small", "tiny")
	putSV(t, p, 1, "d", "mid", string(large[:BorrowMin-1]))
	iods := []IOD{
		{Akey: []byte("large"), Type: IODSingle, Size: uint64(len(large)) + 10},
		{Akey: []byte("small"), Type: IODSingle, Size: 4},
		{Akey: []byte("mid"), Type: IODSingle, Size: BorrowMin},
		{Akey: []byte("missing"), Type: IODSingle, Size: BorrowMin},
	}
	res, borrowed, bufs, release := fetchBorrowed(t, p, 2, "d", iods)
	if !bytes.Equal(borrowed[0], large) || res[0].Size != uint64(len(large)) || bytes.Count(bufs[0], []byte{0}) != len(bufs[0]) {
		t.Errorf("large value: borrowed %d bytes (size %d), buffer touched: %v", len(borrowed[0]), res[0].Size, bytes.Count(bufs[0], []byte{0}) != len(bufs[0]))
	}
	for i, want := range []string{"", "tiny", string(large[:BorrowMin-1]), ""} {
		if i == 0 {
			continue
		}
		if borrowed[i] != nil || string(bufs[i][:res[i].Size]) != want {
			t.Errorf("IOD %d: borrowed %v, read %q...", i, borrowed[i] != nil, bufs[i][:min(8, len(bufs[i]))])
		}
	}
	release()
	release() // once is enough; again does nothing

	// damage in the data file: DER_CSUM, naming the akey, nothing lent
	recs, _, err := p.AkeyRecords(tCont, tOID, []byte("d"), []byte("large"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.data.WriteAt([]byte{'X'}, int64(recs[0].Off+1000)); err != nil {
		t.Fatal(err)
	}
	_, _, rel, err := p.FetchBorrowed(tCont, tOID, 2, 0, []byte("d"), iods[:1], []SGL{{make([]byte, iods[0].Size)}})
	if !daoserr.Is(err, daoserr.Csum) || !bytes.Contains([]byte(err.Error()), []byte(`akey "large"`)) {
		t.Errorf("corrupt value: got %v, want DER_CSUM naming the akey", err)
	}
	rel()
}

// Space freed while a value is lent is not written again until the borrower
// releases it: the borrowed bytes stay what was verified. After the release
// the space is reused as before.
func TestBorrowedSpaceIsNotReused(t *testing.T) {
	p := newTestPool(t)
	if p.dmap == nil {
		t.Fatal("the test pool's data file is not mapped: borrowing cannot be tested (mmap of a regular file failed)")
	}
	old := bytes.Repeat([]byte{'o'}, BorrowMin)
	putSV(t, p, 1, "d", "v", string(old))
	iod := []IOD{{Akey: []byte("v"), Type: IODSingle, Size: BorrowMin}}
	_, borrowed, _, release := fetchBorrowed(t, p, 2, "d", iod)
	if !bytes.Equal(borrowed[0], old) {
		t.Fatal("not lent")
	}
	used := p.Query().NvmeUsed
	// a newer version, then aggregation drops the old one and frees its space
	putSV(t, p, 3, "d", "v", string(bytes.Repeat([]byte{'n'}, BorrowMin)))
	if err := p.Aggregate(tCont, 0, 10, nil); err != nil {
		t.Fatal(err)
	}
	// new values that would take the freed space
	for _, k := range []string{"a", "b", "c"} {
		putSV(t, p, 11, "e", k, string(bytes.Repeat([]byte(k), BorrowMin)))
	}
	if !bytes.Equal(borrowed[0], old) {
		t.Fatal("lent bytes overwritten while borrowed")
	}
	held := p.Query().NvmeUsed
	if want := used + 4*roundUp(BorrowMin); held != want {
		t.Errorf("while lent: %d bytes used, want %d (the old version's space set aside)", held, want)
	}
	release()
	putSV(t, p, 12, "e", "d", string(bytes.Repeat([]byte{'d'}, BorrowMin))) // a commit hands the space back
	if got, want := p.Query().NvmeUsed, held; got != want {
		t.Errorf("after release and one more value: %d bytes used, want %d (the freed space reused)", got, want)
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		if got := getSV(t, p, 20, "e", k); got != string(bytes.Repeat([]byte(k), BorrowMin)) {
			t.Errorf("value %s read back wrong", k)
		}
	}
}

// Close waits for borrowers: the mapping goes only when nothing is lent.
func TestCloseWaitsForBorrowers(t *testing.T) {
	p := newTestPool(t)
	if p.dmap == nil {
		t.Fatal("the test pool's data file is not mapped: borrowing cannot be tested (mmap of a regular file failed)")
	}
	val := bytes.Repeat([]byte{'v'}, BorrowMin)
	putSV(t, p, 1, "d", "v", string(val))
	_, borrowed, _, release := fetchBorrowed(t, p, 2, "d", []IOD{{Akey: []byte("v"), Type: IODSingle, Size: BorrowMin}})
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a value was lent", err)
	case <-time.After(100 * time.Millisecond):
	}
	if !bytes.Equal(borrowed[0], val) { // still mapped
		t.Fatal("lent bytes changed")
	}
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// A fault reading the mapping (here: the data file cut short under it; on a
// real device, a media error) fails that fetch with DER_IO instead of ending
// the process with SIGBUS.
func TestBorrowFaultIsAnError(t *testing.T) {
	p := newTestPool(t)
	if p.dmap == nil {
		t.Fatal("the test pool's data file is not mapped: borrowing cannot be tested (mmap of a regular file failed)")
	}
	putSV(t, p, 1, "d", "v", string(bytes.Repeat([]byte{'v'}, BorrowMin)))
	if err := p.data.Truncate(0); err != nil {
		t.Fatal(err)
	}
	_, _, release, err := p.FetchBorrowed(tCont, tOID, 2, 0, []byte("d"), []IOD{{Akey: []byte("v"), Type: IODSingle, Size: BorrowMin}}, []SGL{{make([]byte, BorrowMin)}})
	if !daoserr.Is(err, daoserr.IO) || !bytes.Contains([]byte(err.Error()), []byte("mapped address")) {
		t.Fatalf("fetch through a faulting mapping: %v, want DER_IO", err)
	}
	release()
}
