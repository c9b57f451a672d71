package rpc

import (
	"io"
	"net"
	"sync"
	"time"
)

// Frame I/O on a connection, in as few system calls as the traffic allows.
//
// Reading: small frames (a 4 KiB update is about 4.3 KB on the wire) are read
// ahead into a buffer, many per read when many are in flight, instead of three
// reads each (fixed header, message header, bulk). Large bulk is read straight
// into its destination; only what the read-ahead already holds of it is
// copied, and after a large frame the next read at a frame boundary asks for
// no more than a header's worth, so a stream of 1 MiB frames is not copied
// through the buffer.
//
// Writing: a frame is handed to the connection's writer; whoever finds the
// connection idle writes every frame queued so far with one vectored write,
// then hands over to the next waiting sender. Callers still return only once
// their frame is on the wire (their buffers are free again) or has failed.

const (
	readAhead    = 32 << 10 // read-ahead buffer per connection
	bigBulk      = 64 << 10 // a frame with this much bulk makes the next boundary read small
	boundaryRead = 1 << 10  // what that small read asks for: a fixed and a message header
)

// frameReader reads frames from one connection (one goroutine).
type frameReader struct {
	r        io.Reader
	buf      []byte
	off, end int // buffered bytes: buf[off:end]
	lastBig  bool
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: r, buf: make([]byte, readAhead)}
}

// fill makes at least need (≤ readAhead) bytes buffered, asking each read
// for at most most bytes (or what need still lacks, if more).
func (fr *frameReader) fill(need, most int) error {
	if fr.end-fr.off >= need {
		return nil
	}
	if fr.off+need > len(fr.buf) { // compact
		fr.end = copy(fr.buf, fr.buf[fr.off:fr.end])
		fr.off = 0
	}
	for fr.end-fr.off < need {
		stop := min(len(fr.buf), fr.end+max(most, need-(fr.end-fr.off)))
		n, err := fr.r.Read(fr.buf[fr.end:stop])
		fr.end += n
		if fr.end-fr.off >= need {
			return nil
		}
		if err != nil {
			if err == io.EOF && fr.end > fr.off {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// header reads the next frame's fixed header (into fixed) and checks it.
func (fr *frameReader) header(fixed []byte, lim Limits) (frame, error) {
	limit := len(fr.buf)
	if fr.lastBig {
		limit = boundaryRead
	}
	if err := fr.fill(fixedSize, limit); err != nil {
		return frame{}, err
	}
	copy(fixed, fr.buf[fr.off:fr.off+fixedSize])
	fr.off += fixedSize
	f, err := parseFixed(fixed, lim)
	if err != nil {
		return frame{}, err
	}
	fr.lastBig = f.bulkLen >= bigBulk
	return f, nil
}

// message reads n bytes of message header into a new slice (the caller's to
// keep).
func (fr *frameReader) message(n uint32) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	b := make([]byte, n)
	if err := fr.read([][]byte{b}, uint64(n)); err != nil {
		return nil, err
	}
	return b, nil
}

// read reads exactly n bytes into the concatenation of bufs: what is buffered
// is copied, the rest read straight into bufs.
func (fr *frameReader) read(bufs [][]byte, n uint64) error {
	for _, b := range bufs {
		if n == 0 {
			return nil
		}
		b = b[:min(uint64(len(b)), n)]
		n -= uint64(len(b))
		c := copy(b, fr.buf[fr.off:fr.end])
		fr.off += c
		if c < len(b) {
			if _, err := io.ReadFull(fr.r, b[c:]); err != nil {
				return unexpected(err)
			}
		}
	}
	if n > 0 {
		return io.ErrShortBuffer // the caller checked the room: not reached
	}
	return nil
}

// discard skips n bytes.
func (fr *frameReader) discard(n uint64) error {
	c := min(uint64(fr.end-fr.off), n)
	fr.off += int(c)
	if n -= c; n > 0 {
		if _, err := io.CopyN(io.Discard, fr.r, int64(n)); err != nil {
			return unexpected(err)
		}
	}
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// frameWriter writes frames on one connection for any number of goroutines.
type frameWriter struct {
	conn    net.Conn
	timeout time.Duration // per vectored write

	mu      sync.Mutex
	cond    sync.Cond
	pending net.Buffers // queued frames' buffers, in order
	spare   net.Buffers // the previous batch's slice, for reuse
	queued  uint64      // frames queued so far
	written uint64      // frames written (or failed) so far
	writing bool
	err     error // the first write error: every later frame fails with it
}

func newFrameWriter(conn net.Conn, timeout time.Duration) *frameWriter {
	w := &frameWriter{conn: conn, timeout: timeout}
	w.cond.L = &w.mu
	return w
}

// write sends one frame: its fixed header, message header and bulk buffers.
// It returns once they are written (the buffers are the caller's again) or
// the connection has failed.
func (w *frameWriter) write(fixed, hdr []byte, bulk [][]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.pending = append(w.pending, fixed)
	if len(hdr) > 0 {
		w.pending = append(w.pending, hdr)
	}
	for _, b := range bulk {
		if len(b) > 0 {
			w.pending = append(w.pending, b)
		}
	}
	w.queued++
	seq := w.queued
	for w.writing && w.written < seq {
		w.cond.Wait()
	}
	if w.written >= seq || w.err != nil {
		return w.err
	}
	// Nobody is writing and this frame is queued: write the batch it is in.
	w.writing = true
	batch, upto := w.pending, w.queued
	w.pending = w.spare[:0]
	w.mu.Unlock()
	w.conn.SetWriteDeadline(time.Now().Add(w.timeout)) // a frame half written is lost: the caller fails the connection
	bufs := batch                                      // WriteTo consumes its receiver
	_, err := bufs.WriteTo(w.conn)
	clear(batch) // the callers' buffers are theirs again: hold no references
	w.mu.Lock()
	w.spare = batch[:0]
	if err != nil && w.err == nil {
		w.err = err
	}
	w.written = upto
	w.writing = false
	w.cond.Broadcast() // the batch's senders return; one of the next takes over
	return w.err
}
