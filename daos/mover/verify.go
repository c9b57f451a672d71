package mover

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"sync/atomic"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// verify compares every regular file of the source with its copy: sizes,
// then the crc32c of each piece on both sides (pieces are checked in
// parallel, so a big file is too). Holes are read as the zeros they hold.
// name is set for a file copy: the one file, named srcName in the source.
func (c *copier) verify(ctx context.Context, srcName, name string) error {
	s := newSched(ctx)
	if name != "" {
		s.push(prioFile, func(ctx context.Context) error { return c.verifyFile(ctx, s, srcName, name) })
	} else {
		s.push(prioDir, func(ctx context.Context) error { return c.verifyDir(ctx, s, "", "") })
	}
	if err := s.run(c.opts.Workers); err != nil {
		return wrapRun(err, ctx, "verify the copy of %s in %s", c.stats.Src, c.stats.Dst)
	}
	c.vmu.Lock()
	defer c.vmu.Unlock()
	if len(c.mism) > 0 {
		return daoserr.Newf(daoserr.Csum, "%d of %d files differ from their source after the copy: %s", len(c.mism), c.verified.Load(), c.mism[0]).
			WithResolution("copy them again with --force (and check the storage they came from and went to)")
	}
	return nil
}

func (c *copier) mismatch(format string, args ...any) {
	c.vmu.Lock()
	defer c.vmu.Unlock()
	c.mism = append(c.mism, fmt.Sprintf(format, args...))
}

func (c *copier) verifyDir(ctx context.Context, s *sched, sp, dp string) error {
	ents, err := c.src.readDir(ctx, sp)
	if err != nil {
		return wrap(err, "list %s", join2(c.src, sp))
	}
	for _, e := range ents {
		sc, dc := join(sp, e.name), join(dp, e.name)
		switch {
		case e.mode == 0:
			s.push(prioFile, func(ctx context.Context) error { return c.verifyEntry(ctx, s, sc, dc) })
		case isDir(e.mode):
			s.push(prioDir, func(ctx context.Context) error { return c.verifyDir(ctx, s, sc, dc) })
		case isReg(e.mode):
			s.push(prioFile, func(ctx context.Context) error { return c.verifyFile(ctx, s, sc, dc) })
		}
	}
	return nil
}

// verifyEntry verifies an entry whose type the listing did not tell.
func (c *copier) verifyEntry(ctx context.Context, s *sched, sp, dp string) error {
	r, si, _, err := c.src.(entryOpener).openEntry(ctx, sp)
	switch {
	case err != nil:
		return wrap(err, "look up %s", join2(c.src, sp))
	case isDir(si.mode):
		s.push(prioDir, func(ctx context.Context) error { return c.verifyDir(ctx, s, sp, dp) })
	case isReg(si.mode):
		return c.verifyOpened(ctx, s, sp, dp, r, si)
	}
	return nil
}

func (c *copier) verifyFile(ctx context.Context, s *sched, sp, dp string) error {
	r1, i1, err := c.src.openRead(ctx, sp)
	if err != nil {
		return wrap(err, "open %s", join2(c.src, sp))
	}
	return c.verifyOpened(ctx, s, sp, dp, r1, i1)
}

// verifyOpened verifies file sp, open as r1, against dp.
func (c *copier) verifyOpened(ctx context.Context, s *sched, sp, dp string, r1 reader, i1 info) error {
	r2, i2, err := c.dst.openRead(ctx, dp)
	if err != nil {
		r1.close(ctx)
		if isNotExist(err) {
			c.verified.Add(1)
			c.mismatch("%s: missing", join2(c.dst, dp))
			return nil
		}
		return wrap(err, "open %s", join2(c.dst, dp))
	}
	if i1.size != i2.size {
		r1.close(ctx)
		r2.close(ctx)
		c.verified.Add(1)
		c.mismatch("%s: %d bytes, its source %d", join2(c.dst, dp), i2.size, i1.size)
		return nil
	}
	ps := c.opts.PieceSize
	n := (i1.size + ps - 1) / ps
	if n == 0 {
		r1.close(ctx)
		r2.close(ctx)
		c.verified.Add(1)
		return nil
	}
	var left atomic.Int64
	left.Store(n)
	pr := &pair{r1, r2}
	c.trackPair(pr, true)
	for off := int64(0); off < i1.size; off += ps {
		p := region{off, min(ps, i1.size-off)}
		s.push(prioPiece, func(ctx context.Context) error {
			err := c.verifyPiece(ctx, r1, r2, sp, dp, p)
			if left.Add(-1) == 0 {
				c.trackPair(pr, false)
				r1.close(ctx)
				r2.close(ctx)
				c.verified.Add(1)
			}
			return err
		})
	}
	return nil
}

// pair is a file and its copy being verified.
type pair struct{ r1, r2 reader }

func (c *copier) trackPair(p *pair, add bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.vopen == nil {
		c.vopen = map[*pair]bool{}
	}
	if add {
		c.vopen[p] = true
	} else {
		delete(c.vopen, p)
	}
}

func (c *copier) verifyPiece(ctx context.Context, r1, r2 reader, sp, dp string, p region) error {
	sum := func(r reader, t tree, name string) (uint32, error) {
		buf := c.buf()
		defer c.putBuf(buf)
		n, err := r.readAt(ctx, buf[:p.n], p.off)
		if err != nil {
			return 0, wrap(err, "read %s", join2(t, name))
		}
		if int64(n) < p.n {
			return 0, daoserr.Newf(daoserr.Busy, "%s shrank while it was being verified", join2(t, name))
		}
		return crc32.Checksum(buf[:p.n], castagnoli), nil
	}
	a, err := sum(r1, c.src, sp)
	if err != nil {
		return err
	}
	b, err := sum(r2, c.dst, dp)
	if err != nil {
		return err
	}
	if a != b {
		c.mismatch("%s: bytes [%d, %d) have crc32c %08x, their source %08x", join2(c.dst, dp), p.off, p.off+p.n, b, a)
	}
	return nil
}

// progress writes a progress line every ProgressEvery until the returned
// function is called, which writes the last one and ends the line.
func (c *copier) progress(start time.Time) func() {
	w := c.opts.Progress
	if w == nil {
		return func() {}
	}
	line := func() {
		b := c.bytes.Load()
		fmt.Fprintf(w, "\r%d directories, %d files, %d skipped, %d links, %s, %s/s   ", c.dirs.Load(), c.files.Load(),
			c.skipped.Load(), c.links.Load(), human(b), human(rate(b, time.Since(start))))
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(c.opts.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				line()
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		line()
		io.WriteString(w, "\n")
	}
}
