package vosperf

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Raw baselines: what the filesystem does with the same sizes and concurrency and
// no engine in between. Results are cached per (kind, dir, size, pattern,
// concurrency, count), so cases that share a baseline measure it once.
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

type rawKey struct {
	kind        string
	dir         string
	size        ByteSize
	pat         Pattern
	conc, count int
}

// rawPositioned measures pwrite+fdatasync with wconc goroutines, then pread of the
// same slots with rconc goroutines, on a file of n slots in dir.
func (r *runner) rawPositioned(ctx context.Context, dir string, size ByteSize, pat Pattern, wconc, rconc, n int) (Row, Row, error) {
	n = max(n, wconc, rconc)
	wk := rawKey{rawPwrite, dir, size, pat, wconc, n}
	rk := rawKey{rawPread, dir, size, pat, rconc, n}
	pw, ok1 := r.raw[wk]
	pr, ok2 := r.raw[rk]
	if ok1 && ok2 {
		return pw, pr, nil
	}
	f, err := os.CreateTemp(dir, "raw-pwrite-*")
	if err != nil {
		return pw, pr, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	fd := int(f.Fd())
	total := int64(n) * int64(size)
	// Preallocate and sync, as VOS's format does for its data file.
	if err := unix.Fallocate(fd, 0, 0, total); err != nil {
		if err := f.Truncate(total); err != nil {
			return pw, pr, err
		}
	}
	if err := f.Sync(); err != nil {
		return pw, pr, err
	}
	data := r.pattern(size)
	slots := spread(n, 1)
	if pat == Rand {
		shuffle(slots, r.rng)
	}
	r.progress("raw %s %v %v c=%d in %s: %d ops", rawPwrite, size, pat, wconc, dir, n)
	st, err := runWorkers(ctx, split(slots, wconc), func(int) func(item) error {
		buf := append([]byte(nil), data...)
		return func(it item) error {
			stamp(buf, it.k)
			if err := pwriteFull(fd, buf, int64(it.k)*int64(size)); err != nil {
				return fmt.Errorf("pwrite %s: %w", f.Name(), err)
			}
			if err := unix.Fdatasync(fd); err != nil {
				return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
			}
			return nil
		}
	})
	if err != nil {
		return pw, pr, err
	}
	pw = newRow("raw", rawPwrite, "", size, pat, wconc, st)
	pw.Dir = dir

	slots = spread(n, 1)
	if pat == Rand {
		shuffle(slots, r.rng)
	}
	r.progress("raw %s %v %v c=%d in %s: %d ops", rawPread, size, pat, rconc, dir, n)
	every := r.cfg.verifyEvery()
	st, err = runWorkers(ctx, split(slots, rconc), func(int) func(item) error {
		buf := make([]byte, size)
		i := 0
		return func(it item) error {
			if err := preadFull(fd, buf, int64(it.k)*int64(size)); err != nil {
				return fmt.Errorf("pread %s: %w", f.Name(), err)
			}
			if !stampOK(buf, it.k) {
				return fmt.Errorf("pread %s slot %d: read other bytes than were written", f.Name(), it.k)
			}
			if i++; i%every == 0 && !bodyOK(buf, data) {
				return fmt.Errorf("pread %s slot %d: data differs from what was written", f.Name(), it.k)
			}
			return nil
		}
	})
	if err != nil {
		return pw, pr, err
	}
	pr = newRow("raw", rawPread, "", size, pat, rconc, st)
	pr.Dir = dir
	r.raw[wk], r.raw[rk] = pw, pr
	return pw, pr, nil
}

// rawAppend measures write+fdatasync: conc goroutines append n values of size
// bytes to one new file opened O_APPEND, each write followed by fdatasync.
func (r *runner) rawAppend(ctx context.Context, dir string, size ByteSize, conc, n int) (Row, error) {
	n = max(n, conc)
	k := rawKey{rawAppend, dir, size, Seq, conc, n}
	if row, ok := r.raw[k]; ok {
		return row, nil
	}
	f, err := os.CreateTemp(dir, "raw-append-*")
	if err != nil {
		return Row{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// a second descriptor with O_APPEND, so concurrent writes never overlap
	af, err := os.OpenFile(f.Name(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return Row{}, err
	}
	defer af.Close()
	fd := int(af.Fd())
	data := r.pattern(size)
	r.progress("raw %s %v c=%d in %s: %d ops", rawAppend, size, conc, dir, n)
	st, err := runWorkers(ctx, split(spread(n, 1), conc), func(int) func(item) error {
		buf := append([]byte(nil), data...)
		return func(it item) error {
			stamp(buf, it.k)
			w, err := unix.Write(fd, buf)
			if err == nil && w < len(buf) {
				err = io.ErrShortWrite
			}
			if err != nil {
				return fmt.Errorf("write %s: %w", f.Name(), err)
			}
			if err := unix.Fdatasync(fd); err != nil {
				return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
			}
			return nil
		}
	})
	if err != nil {
		return Row{}, err
	}
	row := newRow("raw", rawAppend, "", size, Seq, conc, st)
	row.Dir = dir
	r.raw[k] = row
	return row, nil
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
