package dfs

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/godaos/godaos/daos"
)

// FuzzDecodeEntry: an inode comes off the wire, so decodeEntry must refuse
// (never panic on) anything, and what it accepts must encode back to the
// same bytes, so that a rename, which rewrites a whole inode, changes
// nothing of what DAOS's libdfs stored (nanoseconds of 1e9 or more, which
// libdfs never writes, are the one exception: they are read modulo 1e9).
func FuzzDecodeEntry(f *testing.F) {
	t := time.Unix(1700000000, 123456789)
	for _, e := range []entry{
		{mode: S_IFREG | 0o644, oid: daos.OID{Lo: 42, Hi: 7 << 32}, mtime: t, ctime: t, chunk: 1 << 20, class: 0x2000001, uid: 1000, gid: 1000, hlc: 1 << 50},
		{mode: S_IFDIR | 0o755, oid: daos.OID{Lo: 1}, mtime: t, ctime: t.Add(time.Second)},
		{mode: S_IFLNK | 0o777, oid: daos.OID{Lo: 3, Hi: 9}, mtime: t, ctime: t, size: 4095},
	} {
		f.Add(e.encode())
	}
	f.Add([]byte{})
	f.Add(make([]byte, inodeSize))
	f.Add(make([]byte, inodeSize+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		if len(b) != inodeSize {
			t.Fatalf("accepted %d bytes", len(b))
		}
		switch e.mode & S_IFMT {
		case S_IFDIR, S_IFREG:
		case S_IFLNK:
			if e.size > maxSymlink {
				t.Fatalf("accepted a symlink of %d bytes", e.size)
			}
		default:
			t.Fatalf("accepted mode %#o", e.mode)
		}
		want := bytes.Clone(b)
		for _, i := range []int{mtimeNsecIdx, ctimeNsecIdx} {
			binary.LittleEndian.PutUint64(want[i:], binary.LittleEndian.Uint64(want[i:])%1e9)
		}
		if got := e.encode(); !bytes.Equal(got, want) {
			t.Fatalf("encode(decode(b)) differs:\n got %x\nwant %x", got, want)
		}
		if e2, err := decodeEntry(e.encode()); err != nil || !e2.mtime.Equal(e.mtime) || !e2.ctime.Equal(e.ctime) || e2.oid != e.oid || e2.mode != e.mode {
			t.Fatalf("decode(encode(e)) = %+v, %v; want %+v", e2, err, e)
		}
	})
}
