package vosperf

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Raw baselines: what the filesystem does with the same sizes and concurrency and
// no engine in between. Each case measures its own, interleaved with its VOS
// phases (see interleave), so that both meet the device in the same state.
//
//	pwrite+fdatasync  each op writes size bytes at its slot of one preallocated file
//	                  shared by all goroutines, then fdatasyncs it (what the data-file
//	                  path of an update must at least do)
//	write+fdatasync   each op appends size bytes to one growing file, then fdatasyncs
//	                  it (a naive log: one durable write per op)
//	pread             each op reads back one slot written by pwrite+fdatasync

const (
	rawPwrite = "pwrite+fdatasync"
	rawAppend = "write+fdatasync"
	rawPread  = "pread"
)

// rawFile is one raw baseline's file: n slots of size bytes in dir.
type rawFile struct {
	f    *os.File
	fd   int
	dir  string
	size ByteSize
	n    int
	data []byte

	closed bool
}

// close closes and removes the file; calling it again does nothing.
func (rf *rawFile) close() {
	if rf.closed {
		return
	}
	rf.closed = true
	rf.f.Close()
	os.Remove(rf.f.Name())
}

// newSlotFile creates the file of pwrite+fdatasync and pread: n slots,
// preallocated and synced, as VOS's format does for its data file.
func (r *runner) newSlotFile(dir string, size ByteSize, n int) (*rawFile, error) {
	f, err := os.CreateTemp(dir, "raw-pwrite-*")
	if err != nil {
		return nil, err
	}
	rf := &rawFile{f: f, fd: int(f.Fd()), dir: dir, size: size, n: n, data: r.pattern(size)}
	total := int64(n) * int64(size)
	if err := unix.Fallocate(rf.fd, 0, 0, total); err != nil {
		if err := f.Truncate(total); err != nil {
			rf.close()
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		rf.close()
		return nil, err
	}
	return rf, nil
}

// newAppendFile creates the empty file of write+fdatasync, opened O_APPEND so
// that concurrent writes never overlap; n values will be appended.
func (r *runner) newAppendFile(dir string, size ByteSize, n int) (*rawFile, error) {
	f, err := os.CreateTemp(dir, "raw-append-*")
	if err != nil {
		return nil, err
	}
	name := f.Name()
	f.Close()
	af, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		os.Remove(name)
		return nil, err
	}
	return &rawFile{f: af, fd: int(af.Fd()), dir: dir, size: size, n: n, data: r.pattern(size)}, nil
}

// slots lists the file's slots in pat's order.
func (r *runner) slots(rf *rawFile, pat Pattern) []item {
	s := spread(rf.n, 1)
	if pat == Rand {
		shuffle(s, r.rng)
	}
	return s
}

// pwritePhase writes every slot of rf once, with conc goroutines.
func (r *runner) pwritePhase(rf *rawFile, pat Pattern, conc int) *phase {
	name := rf.f.Name()
	return newPhase("raw "+rawPwrite, split(r.slots(rf, pat), conc), func(int) func(item) error {
		buf := append([]byte(nil), rf.data...)
		return func(it item) error {
			stamp(buf, it.k)
			if err := pwriteFull(rf.fd, buf, int64(it.k)*int64(rf.size)); err != nil {
				return fmt.Errorf("pwrite %s: %w", name, err)
			}
			if err := unix.Fdatasync(rf.fd); err != nil {
				return fmt.Errorf("fdatasync %s: %w", name, err)
			}
			return nil
		}
	})
}

// preadPhase reads back and checks every slot pwritePhase wrote, with conc
// goroutines.
func (r *runner) preadPhase(rf *rawFile, pat Pattern, conc int) *phase {
	name, every := rf.f.Name(), r.cfg.verifyEvery()
	return newPhase("raw "+rawPread, split(r.slots(rf, pat), conc), func(int) func(item) error {
		buf := make([]byte, rf.size)
		i := 0
		return func(it item) error {
			if err := preadFull(rf.fd, buf, int64(it.k)*int64(rf.size)); err != nil {
				return fmt.Errorf("pread %s: %w", name, err)
			}
			if !stampOK(buf, it.k) {
				return fmt.Errorf("pread %s slot %d: read other bytes than were written", name, it.k)
			}
			if i++; i%every == 0 && !bodyOK(buf, rf.data) {
				return fmt.Errorf("pread %s slot %d: data differs from what was written", name, it.k)
			}
			return nil
		}
	})
}

// appendPhase appends rf.n values to rf with conc goroutines, each write followed
// by fdatasync.
func (r *runner) appendPhase(rf *rawFile, conc int) *phase {
	name := rf.f.Name()
	return newPhase("raw "+rawAppend, split(spread(rf.n, 1), conc), func(int) func(item) error {
		buf := append([]byte(nil), rf.data...)
		return func(it item) error {
			stamp(buf, it.k)
			w, err := unix.Write(rf.fd, buf)
			if err == nil && w < len(buf) {
				err = io.ErrShortWrite
			}
			if err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
			if err := unix.Fdatasync(rf.fd); err != nil {
				return fmt.Errorf("fdatasync %s: %w", name, err)
			}
			return nil
		}
	})
}

// rawRow is the row of a raw phase on rf.
func rawRow(op string, rf *rawFile, pat Pattern, conc int, p *phase) Row {
	row := newRow("raw", op, "", rf.size, pat, conc, p.stats())
	row.Dir = rf.dir
	return row
}

func pwriteFull(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

func preadFull(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pread(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}
