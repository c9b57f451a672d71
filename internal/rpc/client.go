package rpc

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
)

// Message is one request: what to call, on which target, with what.
type Message struct {
	Opcode uint16
	Target uint32
	Header []byte   // the encoded message header (opaque here)
	Bulk   [][]byte // bulk, written straight from these buffers
}

// Reply is what a successful call returns.
type Reply struct {
	Header []byte // the reply's message header (the caller's to keep)
	Bulk   uint64 // bytes of reply bulk placed in the call's receive buffers
}

// ClientOptions tune a client connection.
type ClientOptions struct {
	Limits Limits // what the server may send back
	// WriteTimeout bounds sending one request (default 60 s): a server that
	// stops reading fails the connection instead of blocking every caller.
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// A Client is one connection to a server. Calls from any number of goroutines
// are pipelined and multiplexed on it by request id; replies come back in any
// order. A protocol error or a broken connection fails every call in flight
// with DER_UNREACH, and the client with it: dial again.
type Client struct {
	conn net.Conn
	lim  Limits
	log  *slog.Logger

	w  *frameWriter
	rd *frameReader // the read loop's

	mu      sync.Mutex
	pending map[uint64]*call
	nextID  uint64
	err     error // set once the connection is done
	done    chan struct{}
}

type call struct {
	fixed     [fixedSize]byte
	recv      [][]byte // where the reply's bulk goes
	receiving bool     // the reader is filling recv: the caller must wait for it
	reply     Reply
	err       error
	done      chan struct{}
}

// Dial connects to a server's data-plane address.
func Dial(ctx context.Context, addr string, opts ClientOptions) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, daoserr.Wrap(daoserr.Unreach, err, "connect to engine at %s", addr).
			WithResolution("check that the server is running and its fabric_iface_port is reachable")
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return NewClient(conn, opts), nil
}

// NewClient runs the client side of the protocol on conn.
func NewClient(conn net.Conn, opts ClientOptions) *Client {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 60 * time.Second
	}
	c := &Client{conn: conn, lim: opts.Limits.withDefaults(), log: opts.Logger.With("peer", conn.RemoteAddr().String()),
		w: newFrameWriter(conn, opts.WriteTimeout), rd: newFrameReader(conn), pending: map[uint64]*call{}, done: make(chan struct{})}
	go c.readLoop()
	return c
}

// Err is nil while the connection is usable, else why it is not (dial again).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection; calls in flight fail with DER_CANCELED.
func (c *Client) Close() error {
	c.fail(daoserr.Newf(daoserr.Canceled, "connection to %s closed by the client", c.conn.RemoteAddr()))
	<-c.done
	return nil
}

// Call sends msg and waits for its reply, placing the reply's bulk in recv.
// A reply with more bulk than recv holds fails with DER_TRUNC. The context's
// deadline travels with the request, so the server stops working on it too;
// when the context ends first the call fails with DER_TIMEDOUT or DER_CANCELED
// and the server is told to cancel it.
func (c *Client) Call(ctx context.Context, msg Message, recv [][]byte) (Reply, error) {
	// What servers would refuse as a protocol error, closing the connection
	// under every call in flight on it, is refused here, for this call only.
	if len(msg.Header) > defaultMaxHeader {
		return Reply{}, daoserr.Newf(daoserr.Overflow, "request header of %d bytes: servers take at most %d", len(msg.Header), defaultMaxHeader).
			WithResolution("use shorter keys, or fewer IODs or extents per call")
	}
	cl := &call{recv: recv, done: make(chan struct{})}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return Reply{}, err
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = cl
	c.mu.Unlock()

	f := frame{kind: KindRequest, opcode: msg.Opcode, id: id, target: msg.Target}
	for _, b := range msg.Bulk {
		f.bulkLen += uint64(len(b))
	}
	if dl, ok := ctx.Deadline(); ok {
		ms := time.Until(dl).Milliseconds()
		f.timeout = uint32(min(max(ms, 1), 1<<32-1))
	}
	f.put(cl.fixed[:], msg.Header)
	if err := c.write(cl.fixed[:], msg.Header, msg.Bulk); err != nil {
		c.fail(daoserr.Wrap(daoserr.Unreach, err, "send to %s", c.conn.RemoteAddr()))
		<-cl.done
		return Reply{}, cl.err
	}

	select {
	case <-cl.done:
		return cl.reply, cl.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	if cl.receiving || c.pending[id] == nil {
		// The reply is arriving (into the caller's buffers) or has failed: wait.
		c.mu.Unlock()
		<-cl.done
		return cl.reply, cl.err
	}
	delete(c.pending, id)
	c.mu.Unlock()
	go c.cancel(id)
	return Reply{}, ctxError(ctx.Err(), "rpc opcode "+itoa(uint64(msg.Opcode))+" to "+c.conn.RemoteAddr().String())
}

// cancel tells the server to stop working on request id (best effort).
func (c *Client) cancel(id uint64) {
	var b [fixedSize]byte
	f := frame{kind: KindCancel, id: id}
	f.put(b[:], nil)
	if err := c.write(b[:], nil, nil); err != nil {
		c.fail(daoserr.Wrap(daoserr.Unreach, err, "send to %s", c.conn.RemoteAddr()))
	}
}

// write sends one frame (batched with other callers' frames: see frameWriter).
func (c *Client) write(fixed, hdr []byte, bulk [][]byte) error {
	return c.w.write(fixed, hdr, bulk)
}

// fail ends the connection: every pending call gets err.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	calls := c.pending
	c.pending = map[uint64]*call{}
	c.mu.Unlock()
	c.conn.Close()
	for _, cl := range calls {
		if !cl.receiving { // the reader finishes a receiving call itself
			cl.err = err
			close(cl.done)
		}
	}
}

func (c *Client) readLoop() {
	defer close(c.done)
	var fixed [fixedSize]byte
	for {
		if err := c.readReply(fixed[:]); err != nil {
			if errors.Is(err, errProtocol) {
				c.log.Warn("closing connection", "reason", err)
			}
			c.fail(daoserr.Wrap(daoserr.Unreach, err, "connection to %s", c.conn.RemoteAddr()))
			return
		}
	}
}

// readReply reads one frame and completes its call.
func (c *Client) readReply(fixed []byte) error {
	f, err := c.rd.header(fixed, c.lim)
	if err != nil {
		return err
	}
	if f.kind != KindReply {
		return protoErr("a server sent a %s frame", f.kind)
	}
	hdr, err := c.rd.message(f.hdrLen)
	if err != nil {
		return err
	}
	if err := checkCRC(fixed, hdr); err != nil {
		return err
	}
	c.mu.Lock()
	cl := c.pending[f.id]
	if cl != nil {
		delete(c.pending, f.id)
		cl.receiving = true
	}
	c.mu.Unlock()
	if cl == nil { // canceled: drop its bulk
		return c.rd.discard(f.bulkLen)
	}
	err = c.receive(cl, f, hdr)
	close(cl.done)
	return err
}

// receive reads a reply's bulk into the call's buffers and sets its result. It
// returns only stream errors; a reply that does not fit fails just its call.
func (c *Client) receive(cl *call, f frame, hdr []byte) error {
	room := uint64(0)
	for _, b := range cl.recv {
		room += uint64(len(b))
	}
	if f.bulkLen > room {
		if err := c.rd.discard(f.bulkLen); err != nil {
			cl.err = daoserr.Wrap(daoserr.Unreach, err, "reply from %s", c.conn.RemoteAddr())
			return err
		}
		cl.err = daoserr.Newf(daoserr.Trunc, "reply from %s carries %d bulk bytes, the receive buffers hold %d", c.conn.RemoteAddr(), f.bulkLen, room)
		return nil
	}
	if err := c.rd.read(cl.recv, f.bulkLen); err != nil {
		cl.err = daoserr.Wrap(daoserr.Unreach, err, "reply from %s", c.conn.RemoteAddr())
		return err
	}
	if f.status != 0 {
		cl.err = decodeError(f.status, hdr)
		return nil
	}
	cl.reply = Reply{Header: hdr, Bulk: f.bulkLen}
	return nil
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
