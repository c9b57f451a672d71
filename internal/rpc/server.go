package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
)

// Request is what a handler gets.
type Request struct {
	Opcode uint16
	Target uint32
	Header []byte // the message header (valid until the handler returns)
	Bulk   []byte // the request's bulk (valid until the handler returns)
	Peer   string
}

// Response is what a handler returns on success.
type Response struct {
	Header []byte
	Bulk   [][]byte // written straight from these buffers after the handler returns
	// Release, if set, is called once the reply is on the wire (or failed), so a
	// handler can hand out buffers it recycles.
	Release func()
}

// Handler serves one opcode. Its context ends when the client's deadline passes,
// the client cancels, or the server shuts down. An error goes back to the client
// as its DER code with message and resolution.
type Handler func(ctx context.Context, req *Request) (Response, error)

// ServerOptions shape a server.
type ServerOptions struct {
	Targets          int // targets, each served on its own (default 1)
	WorkersPerTarget int // resident service goroutines per target (default 2)
	// QueueDepth bounds the workers one target adds beyond its resident
	// ones (default 256): a request that finds every worker busy gets a new
	// one, and readers wait when a target has this many, all busy.
	QueueDepth int
	Limits     Limits // what clients may send
	// WriteTimeout bounds writing one reply (default 30 s): a client that stops
	// reading has its connection closed instead of holding a target's worker.
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// A Server accepts connections and serves requests. Each target has its own
// service goroutines: a request goes to the target its header names, never
// through a lock shared by all targets. A connection's reader reads frames in
// order and hands each request to an idle worker of its target, or, when
// they are all busy, to a goroutine of its own; replies go back on the same
// connection in whatever order they finish.
//
// Handlers may wait (an update waits for its group commit to be durable):
// the requests that arrive meanwhile run beside them instead of queueing
// behind them, which is what lets a target's commits gather every update
// in flight rather than as many as it has workers.
type Server struct {
	opts     ServerOptions
	lim      Limits
	log      *slog.Logger
	handlers map[uint16]Handler
	queues   []targetQueue
	stats    []targetStats

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	closing   bool

	baseCtx  context.Context
	stop     context.CancelFunc
	inflight sync.WaitGroup // requests read and not yet answered
	workers  sync.WaitGroup
	readers  sync.WaitGroup
	started  bool
}

// targetQueue hands one target's requests to its workers.
type targetQueue struct {
	idle chan *serverCall // unbuffered: a send succeeds only if a worker waits
	busy chan struct{}    // one token per worker beyond the resident ones (QueueDepth)
}

type serverCall struct {
	conn   *serverConn
	id     uint64
	req    Request
	ctx    context.Context
	cancel context.CancelFunc
	bulk   *[]byte // pooled buffer behind req.Bulk, if any
}

// NewServer makes a server; register handlers with Handle before Serve.
func NewServer(opts ServerOptions) *Server {
	if opts.Targets <= 0 {
		opts.Targets = 1
	}
	if opts.WorkersPerTarget <= 0 {
		opts.WorkersPerTarget = 2
	}
	if opts.QueueDepth <= 0 {
		opts.QueueDepth = 256
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{opts: opts, lim: opts.Limits.withDefaults(), log: opts.Logger, handlers: map[uint16]Handler{},
		listeners: map[net.Listener]struct{}{}, conns: map[*serverConn]struct{}{}, baseCtx: ctx, stop: stop}
	s.stats = make([]targetStats, opts.Targets)
	s.queues = make([]targetQueue, opts.Targets)
	for t := range s.queues {
		s.queues[t] = targetQueue{idle: make(chan *serverCall), busy: make(chan struct{}, opts.QueueDepth)}
	}
	return s
}

// Handle registers h for opcode (before Serve).
func (s *Server) Handle(opcode uint16, h Handler) { s.handlers[opcode] = h }

func (s *Server) startWorkers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closing {
		return
	}
	s.started = true
	for _, q := range s.queues {
		for range s.opts.WorkersPerTarget {
			s.workers.Add(1)
			go s.work(q.idle)
		}
	}
}

// Serve accepts connections on l until Shutdown; it returns nil after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.startWorkers()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept on %s: %w", l.Addr(), err)
			}
			// Out of file descriptors, an aborted connection...: wait and go on,
			// rather than leave the listener open with nobody accepting.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "listen", l.Addr().String(), "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		s.serveConn(conn)
	}
}

// ServeConn serves one already-connected peer (tests, in-process engines).
func (s *Server) ServeConn(conn net.Conn) {
	s.startWorkers()
	s.serveConn(conn)
}

func (s *Server) serveConn(conn net.Conn) {
	sc := &serverConn{s: s, conn: conn, peer: conn.RemoteAddr().String(), calls: map[uint64]*serverCall{},
		w: newFrameWriter(conn, s.opts.WriteTimeout), rd: newFrameReader(conn)}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.conns[sc] = struct{}{}
	s.readers.Add(1)
	s.mu.Unlock()
	go sc.readLoop()
}

// Shutdown stops accepting connections and reading requests, lets the requests
// already read finish and their replies go out, then closes every connection.
// If ctx ends first, the handlers still running are canceled and Shutdown
// returns ctx's error once they have returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	started := s.started
	for l := range s.listeners {
		l.Close()
	}
	for sc := range s.conns {
		// wake the reader: it stops at the next frame boundary it is waiting at
		sc.conn.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	s.readers.Wait()

	drained := make(chan struct{})
	go func() { s.inflight.Wait(); close(drained) }()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = ctx.Err()
		s.stop()
		<-drained
	}
	s.stop()
	s.mu.Lock()
	for sc := range s.conns {
		sc.conn.Close()
	}
	s.mu.Unlock()
	if started {
		for _, q := range s.queues {
			close(q.idle)
		}
		s.workers.Wait()
	}
	return err
}

func (s *Server) work(q chan *serverCall) {
	defer s.workers.Done()
	for c := range q {
		c.conn.serve(c)
	}
}

// dispatch hands c to an idle worker of its target or, when every worker is
// busy, to a new one, up to QueueDepth beyond the resident workers (then the
// reader waits for a worker to be free, as on a full queue). A worker so
// added stays while requests keep it busy (a new goroutine would grow its
// stack again for every request) and ends after extraIdle without one.
func (s *Server) dispatch(c *serverCall) {
	q := &s.queues[c.req.Target]
	select {
	case q.idle <- c:
		return
	default:
	}
	select {
	case q.idle <- c:
	case q.busy <- struct{}{}:
		s.workers.Add(1)
		go s.extraWork(q, c)
	}
}

const extraIdle = time.Second

func (s *Server) extraWork(q *targetQueue, c *serverCall) {
	defer s.workers.Done()
	defer func() { <-q.busy }()
	idle := time.NewTimer(extraIdle)
	defer idle.Stop()
	for {
		c.conn.serve(c)
		idle.Reset(extraIdle)
		var ok bool
		select {
		case c, ok = <-q.idle:
			if !ok { // Shutdown
				return
			}
		case <-idle.C:
			return
		}
	}
}

// ---- one connection ----

type serverConn struct {
	s    *Server
	conn net.Conn
	peer string
	w    *frameWriter
	rd   *frameReader // the read loop's

	mu     sync.Mutex
	calls  map[uint64]*serverCall // in flight, for cancel frames
	broken bool
}

func (sc *serverConn) readLoop() {
	defer sc.s.readers.Done()
	var fixed [fixedSize]byte
	for {
		err := sc.readFrame(fixed[:])
		if err == nil {
			continue
		}
		var ne net.Error
		switch {
		case errors.Is(err, errProtocol):
			sc.s.log.Warn("closing connection: bad frame", "peer", sc.peer, "reason", err)
			sc.close()
		case errors.As(err, &ne) && ne.Timeout(): // Shutdown: replies still to go out
		case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			sc.close()
		default:
			sc.s.log.Info("connection lost", "peer", sc.peer, "err", err)
			sc.close()
		}
		return
	}
}

// close closes the connection and cancels its requests (their replies have
// nowhere to go).
func (sc *serverConn) close() {
	sc.mu.Lock()
	sc.broken = true
	for _, c := range sc.calls {
		c.cancel()
	}
	sc.mu.Unlock()
	sc.conn.Close()
	sc.s.mu.Lock()
	delete(sc.s.conns, sc)
	sc.s.mu.Unlock()
}

// Request bulk lands in pooled buffers of two sizes (small updates do not
// each hold a megabyte); larger bulk is allocated.
var (
	smallBulkPool = sync.Pool{New: func() any { b := make([]byte, 0, smallBulk); return &b }}
	bulkPool      = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}
)

const smallBulk = 64 << 10

// readFrame reads one frame and dispatches or acts on it.
func (sc *serverConn) readFrame(fixed []byte) error {
	f, err := sc.rd.header(fixed, sc.s.lim)
	if err != nil {
		return err
	}
	hdr, err := sc.rd.message(f.hdrLen)
	if err != nil {
		return err
	}
	if err := checkCRC(fixed, hdr); err != nil {
		return err
	}
	switch f.kind {
	case KindCancel:
		sc.mu.Lock()
		if c := sc.calls[f.id]; c != nil {
			c.cancel()
		}
		sc.mu.Unlock()
		return nil
	case KindReply:
		return protoErr("a client sent a reply frame")
	}
	c := &serverCall{conn: sc, id: f.id, req: Request{Opcode: f.opcode, Target: f.target, Header: hdr, Peer: sc.peer}}
	if f.bulkLen > 0 {
		switch {
		case f.bulkLen <= smallBulk:
			c.bulk = smallBulkPool.Get().(*[]byte)
		case f.bulkLen <= 1<<20:
			c.bulk = bulkPool.Get().(*[]byte)
		}
		if c.bulk != nil {
			c.req.Bulk = (*c.bulk)[:f.bulkLen]
		} else {
			c.req.Bulk = make([]byte, f.bulkLen)
		}
		if err := sc.rd.read([][]byte{c.req.Bulk}, f.bulkLen); err != nil {
			c.release()
			return err
		}
	}
	if f.timeout > 0 {
		c.ctx, c.cancel = context.WithTimeout(sc.s.baseCtx, time.Duration(f.timeout)*time.Millisecond)
	} else {
		c.ctx, c.cancel = context.WithCancel(sc.s.baseCtx)
	}
	sc.mu.Lock()
	if _, dup := sc.calls[f.id]; dup {
		sc.mu.Unlock()
		c.cancel()
		c.release()
		return protoErr("request id %d is already in flight", f.id)
	}
	sc.calls[f.id] = c
	sc.mu.Unlock()
	sc.s.inflight.Add(1)
	if f.target >= uint32(len(sc.s.queues)) {
		go sc.reply(c, Response{}, daoserr.Newf(daoserr.BadTarget, "target %d does not exist: the engine serves %d targets (0-%d)", f.target, len(sc.s.queues), len(sc.s.queues)-1))
		return nil
	}
	sc.s.dispatch(c)
	return nil
}

func (c *serverCall) release() {
	if c.bulk != nil {
		if cap(*c.bulk) == smallBulk {
			smallBulkPool.Put(c.bulk)
		} else {
			bulkPool.Put(c.bulk)
		}
		c.bulk = nil
	}
	c.req.Bulk = nil
}

// serve runs a request's handler and sends its reply.
func (sc *serverConn) serve(c *serverCall) {
	h := sc.s.handlers[c.req.Opcode]
	if h == nil {
		sc.reply(c, Response{}, daoserr.Newf(daoserr.NoSys, "opcode %d is not served by this engine", c.req.Opcode))
		return
	}
	var resp Response
	err := c.ctx.Err()
	if err == nil { // not canceled while queued
		start := time.Now()
		resp, err = sc.call(h, c)
		sc.s.record(c, start, &resp, err)
	}
	sc.reply(c, resp, err)
}

// call runs a handler; a panic becomes an error for that request only.
func (sc *serverConn) call(h Handler, c *serverCall) (resp Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			sc.s.log.Error("handler panicked", "opcode", c.req.Opcode, "target", c.req.Target, "peer", sc.peer, "panic", r, "stack", string(debug.Stack()))
			resp, err = Response{}, daoserr.Newf(daoserr.Misc, "opcode %d on target %d failed inside the engine (logged)", c.req.Opcode, c.req.Target)
		}
	}()
	return h(c.ctx, &c.req)
}

// reply writes a request's reply and forgets the request.
func (sc *serverConn) reply(c *serverCall, resp Response, err error) {
	defer sc.s.inflight.Done()
	f := frame{kind: KindReply, id: c.id}
	hdr, bulk := resp.Header, resp.Bulk
	if err != nil {
		f.status, hdr = encodeError(err)
		bulk = nil
	}
	for _, b := range bulk {
		f.bulkLen += uint64(len(b))
	}
	var fixed [fixedSize]byte
	f.put(fixed[:], hdr)

	sc.mu.Lock()
	delete(sc.calls, c.id)
	broken := sc.broken
	sc.mu.Unlock()
	c.cancel()
	c.release()
	var werr error
	if !broken {
		werr = sc.w.write(fixed[:], hdr, bulk)
	}
	if resp.Release != nil {
		resp.Release()
	}
	if werr != nil {
		sc.s.log.Info("reply not sent; closing connection", "peer", sc.peer, "err", werr)
		sc.close()
	}
}
