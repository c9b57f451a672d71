package rpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
)

const (
	opEcho uint16 = iota + 1
	opFail
	opPanic
	opBlock
	opBig
)

// testServer serves the test opcodes on 127.0.0.1 and returns its address.
// opEcho replies with the header reversed, the target in 4 more header bytes,
// and the bulk as it came; opBlock waits for its context and reports the end on
// blocked.
func testServer(t *testing.T, opts ServerOptions, blocked chan error) (*Server, string) {
	t.Helper()
	if opts.Targets == 0 {
		opts.Targets = 4
	}
	if opts.Logger == nil { // the panic test's stack trace is expected noise
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := NewServer(opts)
	s.Handle(opEcho, func(ctx context.Context, r *Request) (Response, error) {
		h := make([]byte, len(r.Header), len(r.Header)+4)
		for i, b := range r.Header {
			h[len(h)-1-i] = b
		}
		h = binary.LittleEndian.AppendUint32(h, r.Target)
		if len(r.Header) > 0 && r.Header[0] == 's' { // sleep a little: replies overtake each other
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		}
		return Response{Header: h, Bulk: [][]byte{bytes.Clone(r.Bulk)}}, nil
	})
	s.Handle(opFail, func(ctx context.Context, r *Request) (Response, error) {
		return Response{}, daoserr.Newf(daoserr.Nonexist, "pool %s not found", r.Header).WithResolution("create it first")
	})
	s.Handle(opPanic, func(ctx context.Context, r *Request) (Response, error) {
		var m map[string]int
		m["boom"]++ // a bug in a handler
		return Response{}, nil
	})
	s.Handle(opBlock, func(ctx context.Context, r *Request) (Response, error) {
		<-ctx.Done()
		if blocked != nil {
			blocked <- ctx.Err()
		}
		return Response{}, ctx.Err()
	})
	s.Handle(opBig, func(ctx context.Context, r *Request) (Response, error) {
		return Response{Bulk: [][]byte{make([]byte, 1000)}}, nil
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s, l.Addr().String()
}

func testClient(t *testing.T, addr string) *Client {
	t.Helper()
	c, err := Dial(context.Background(), addr, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestFrameCodec(t *testing.T) {
	lim := Limits{}.withDefaults()
	good := appendFrame(nil, frame{kind: KindRequest, opcode: 7, id: 42, target: 3, timeout: 500}, []byte("hdr"), []byte("bulk"))
	f, hdr, bulk, n, err := decodeFrame(good, lim)
	if err != nil {
		t.Fatal(err)
	}
	if f.kind != KindRequest || f.opcode != 7 || f.id != 42 || f.target != 3 || f.timeout != 500 || string(hdr) != "hdr" || string(bulk) != "bulk" || n != len(good) {
		t.Fatalf("round trip: %+v %q %q %d", f, hdr, bulk, n)
	}
	mutate := func(fn func(b []byte)) []byte {
		b := bytes.Clone(good)
		fn(b)
		return b
	}
	reseal := func(b []byte) { // a consistent checksum, so the check under test is what fails
		binary.LittleEndian.PutUint32(b[40:], 0)
		var fx [fixedSize]byte
		ff, _ := parseFixedUnchecked(b)
		ff.put(fx[:], b[fixedSize:fixedSize+int(ff.hdrLen)])
		copy(b[40:44], fx[40:44])
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"short header", good[:20], "short frame header"},
		{"bad magic", mutate(func(b []byte) { copy(b, "HTTP") }), "bad magic"},
		{"bad version", mutate(func(b []byte) { b[4] = 9; reseal(b) }), "frame version 9"},
		{"unknown kind", mutate(func(b []byte) { b[5] = 8; reseal(b) }), "unknown frame kind 8"},
		{"oversized header", mutate(func(b []byte) { binary.LittleEndian.PutUint32(b[20:], 1<<21) }), "message header of 2097152 bytes"},
		{"oversized bulk", mutate(func(b []byte) { binary.LittleEndian.PutUint64(b[24:], 1<<40) }), "bulk of 1099511627776 bytes"},
		{"header checksum", mutate(func(b []byte) { b[fixedSize] ^= 1 }), "checksum"},
		{"flipped id", mutate(func(b []byte) { b[9] ^= 1 }), "checksum"},
		{"cut in header", good[:fixedSize+1], "cut short in its message header"},
		{"cut in bulk", good[:len(good)-1], "cut short in its bulk"},
		{"cancel with payload", appendFrame(nil, frame{kind: KindCancel, id: 1}, []byte("x"), nil), "cancel frame with 1 header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, _, err := decodeFrame(tc.in, lim)
			if !errors.Is(err, errProtocol) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a protocol error containing %q", err, tc.want)
			}
		})
	}
}

// parseFixedUnchecked reads the fields of a fixed header without validating.
func parseFixedUnchecked(b []byte) (frame, error) {
	return frame{kind: Kind(b[5]), opcode: binary.LittleEndian.Uint16(b[6:]), id: binary.LittleEndian.Uint64(b[8:]),
		target: binary.LittleEndian.Uint32(b[16:]), hdrLen: binary.LittleEndian.Uint32(b[20:]), bulkLen: binary.LittleEndian.Uint64(b[24:]),
		status: int32(binary.LittleEndian.Uint32(b[32:])), timeout: binary.LittleEndian.Uint32(b[36:])}, nil
}

func TestCallRoundTrip(t *testing.T) {
	_, addr := testServer(t, ServerOptions{}, nil)
	c := testClient(t, addr)
	bulk := make([]byte, 3<<20+17) // several buffers each way, not aligned to them
	for i := range bulk {
		bulk[i] = byte(i * 31)
	}
	tests := []struct {
		name   string
		header string
		send   [][]byte
		recv   []int
	}{
		{"empty", "", nil, nil},
		{"header only", "abc", nil, nil},
		{"one buffer", "h", [][]byte{bulk[:1000]}, []int{1000}},
		{"scattered", "hh", [][]byte{bulk[:1], bulk[1 : 1<<20], bulk[1<<20:]}, []int{5, 1 << 20, 2 << 20, 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var recv [][]byte
			for _, n := range tc.recv {
				recv = append(recv, make([]byte, n))
			}
			r, err := c.Call(context.Background(), Message{Opcode: opEcho, Target: 2, Header: []byte(tc.header), Bulk: tc.send}, recv)
			if err != nil {
				t.Fatal(err)
			}
			want := bytes.Join(tc.send, nil)
			if got := bytes.Join(recv, nil)[:r.Bulk]; r.Bulk != uint64(len(want)) || !bytes.Equal(got, want) {
				t.Errorf("bulk: got %d bytes, want %d", r.Bulk, len(want))
			}
			if h := r.Header; len(h) != len(tc.header)+4 || binary.LittleEndian.Uint32(h[len(h)-4:]) != 2 {
				t.Errorf("reply header %q", h)
			}
		})
	}
}

// Many calls from many goroutines on one connection, over several targets,
// with replies overtaking each other: each gets its own reply.
func TestPipelinedCalls(t *testing.T) {
	_, addr := testServer(t, ServerOptions{Targets: 4, WorkersPerTarget: 3}, nil)
	c := testClient(t, addr)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				tag := fmt.Sprintf("s-%d-%d", g, i)
				target := uint32((g + i) % 4)
				body := bytes.Repeat([]byte(tag), 100)
				recv := make([]byte, len(body))
				r, err := c.Call(context.Background(), Message{Opcode: opEcho, Target: target, Header: []byte(tag), Bulk: [][]byte{body}}, [][]byte{recv})
				switch {
				case err != nil:
					errs <- err
					return
				case !bytes.Equal(recv, body):
					errs <- fmt.Errorf("%s: got another call's bulk", tag)
					return
				case binary.LittleEndian.Uint32(r.Header[len(tag):]) != target:
					errs <- fmt.Errorf("%s: served by target %d, sent to %d", tag, binary.LittleEndian.Uint32(r.Header[len(tag):]), target)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCallErrors(t *testing.T) {
	_, addr := testServer(t, ServerOptions{Targets: 2}, nil)
	c := testClient(t, addr)
	tests := []struct {
		name     string
		msg      Message
		recv     int
		code     daoserr.Code
		contains string
	}{
		{"handler error keeps code, message and resolution", Message{Opcode: opFail, Header: []byte("tank")}, 0, daoserr.Nonexist, "pool tank not found (create it first)"},
		{"unknown opcode", Message{Opcode: 999}, 0, daoserr.NoSys, "opcode 999 is not served"},
		{"no such target", Message{Opcode: opEcho, Target: 7}, 0, daoserr.BadTarget, "target 7 does not exist: the engine serves 2 targets"},
		{"handler panic", Message{Opcode: opPanic, Target: 1}, 0, daoserr.Misc, "failed inside the engine"},
		{"reply larger than the buffers", Message{Opcode: opBig}, 999, daoserr.Trunc, "carries 1000 bulk bytes, the receive buffers hold 999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Call(context.Background(), tc.msg, [][]byte{make([]byte, tc.recv)})
			if !daoserr.Is(err, tc.code) || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("got %v, want %s containing %q", err, tc.code, tc.contains)
			}
			// the connection is still good
			if _, err := c.Call(context.Background(), Message{Opcode: opEcho, Header: []byte("ok")}, nil); err != nil {
				t.Errorf("next call on the same connection: %v", err)
			}
		})
	}
}

// A call's deadline reaches the handler; a canceled call tells the server.
func TestDeadlineAndCancel(t *testing.T) {
	blocked := make(chan error, 1)
	_, addr := testServer(t, ServerOptions{}, blocked)
	c := testClient(t, addr)

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := c.Call(ctx, Message{Opcode: opBlock}, nil); !daoserr.Is(err, daoserr.TimedOut) {
			t.Errorf("call: got %v, want DER_TIMEDOUT", err)
		}
		select {
		case err := <-blocked:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("handler's context ended with %v, want its deadline", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("handler never saw the deadline")
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background()) // no deadline: only the cancel frame can stop it
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
		if _, err := c.Call(ctx, Message{Opcode: opBlock}, nil); !daoserr.Is(err, daoserr.Canceled) {
			t.Errorf("call: got %v, want DER_CANCELED", err)
		}
		select {
		case err := <-blocked:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("handler's context ended with %v, want canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("handler was not canceled")
		}
	})
	if _, err := c.Call(context.Background(), Message{Opcode: opEcho}, nil); err != nil {
		t.Errorf("connection unusable after cancellations: %v", err)
	}
}

// logBuffer collects a logger's output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Garbage on one connection closes that connection, with the reason logged;
// the server keeps serving everyone else.
func TestMalformedFramesCloseOnlyTheirConnection(t *testing.T) {
	var logs logBuffer
	_, addr := testServer(t, ServerOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil)
	good := testClient(t, addr)
	valid := appendFrame(nil, frame{kind: KindRequest, opcode: opEcho, id: 1}, []byte("x"), nil)
	tests := []struct {
		name   string
		send   []byte
		reason string
	}{
		{"HTTP request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + strings.Repeat(" ", 30)), "bad magic"},
		{"oversized bulk", func() []byte {
			b := bytes.Clone(valid)
			binary.LittleEndian.PutUint64(b[24:], 1<<62)
			return b
		}(), "exceeds the limit"},
		{"corrupt header", func() []byte { b := bytes.Clone(valid); b[fixedSize] ^= 0xff; return b }(), "checksum"},
		{"reply from a client", appendFrame(nil, frame{kind: KindReply, id: 1}, nil, nil), "a client sent a reply frame"},
		{"duplicate request id", append(appendFrame(nil, frame{kind: KindRequest, opcode: opBlock, id: 5}, nil, nil),
			appendFrame(nil, frame{kind: KindRequest, opcode: opBlock, id: 5}, nil, nil)...), "already in flight"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.Write(tc.send)
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			// closed: EOF, or a reset when the server closed with our bytes unread
			if _, err := io.Copy(io.Discard, conn); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("server did not close the connection: %v", err)
			}
			if !strings.Contains(logs.String(), tc.reason) {
				t.Errorf("log does not give the reason %q:\n%s", tc.reason, logs.String())
			}
			if _, err := good.Call(context.Background(), Message{Opcode: opEcho, Header: []byte("still here")}, nil); err != nil {
				t.Errorf("another client after the bad frame: %v", err)
			}
		})
	}
}

// Shutdown lets requests already read finish and answers them, then closes.
func TestShutdownDrains(t *testing.T) {
	s := NewServer(ServerOptions{Targets: 2})
	release := make(chan struct{})
	started := make(chan struct{}, 8)
	s.Handle(opEcho, func(ctx context.Context, r *Request) (Response, error) {
		started <- struct{}{}
		<-release
		return Response{Header: []byte("done")}, nil
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	c := testClient(t, l.Addr().String())
	results := make(chan error, 4)
	for i := range 4 {
		go func() {
			_, err := c.Call(context.Background(), Message{Opcode: opEcho, Target: uint32(i % 2)}, nil)
			results <- err
		}()
	}
	for range 4 {
		<-started
	}
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-shut:
		t.Fatalf("shutdown returned (%v) with requests in flight", err)
	default:
	}
	close(release)
	for range 4 {
		if err := <-results; err != nil {
			t.Errorf("in-flight call during shutdown: %v", err)
		}
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if _, err := c.Call(context.Background(), Message{Opcode: opEcho}, nil); !daoserr.Is(err, daoserr.Unreach) {
		t.Errorf("call after shutdown: got %v, want DER_UNREACH", err)
	}
}

func TestDialRefused(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	_, err := Dial(context.Background(), addr, ClientOptions{})
	if !daoserr.Is(err, daoserr.Unreach) || !strings.Contains(err.Error(), addr) {
		t.Errorf("got %v, want DER_UNREACH naming %s", err, addr)
	}
}

// A client that sends requests and never reads the replies must not hold the
// target's workers: its connection is closed after the write timeout and other
// clients of the same target are served.
func TestClientThatStopsReading(t *testing.T) {
	s := NewServer(ServerOptions{Targets: 1, WorkersPerTarget: 2, WriteTimeout: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	reply := make([]byte, 1<<20)
	s.Handle(opBig, func(ctx context.Context, r *Request) (Response, error) {
		return Response{Bulk: [][]byte{reply}}, nil
	})
	s.Handle(opEcho, func(ctx context.Context, r *Request) (Response, error) { return Response{Header: r.Header}, nil })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	defer s.Shutdown(context.Background())

	bad, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	for id := range uint64(64) { // 64 MiB of replies: far more than socket buffers hold
		bad.Write(appendFrame(nil, frame{kind: KindRequest, opcode: opBig, id: id + 1}, nil, nil))
	}
	good := testClient(t, l.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := good.Call(ctx, Message{Opcode: opEcho, Header: []byte("me too")}, nil); err != nil {
		t.Fatalf("another client of the same target: %v", err)
	}
}

// The cache hands out one client per address and replaces a broken one.
func TestClientCache(t *testing.T) {
	_, addr := testServer(t, ServerOptions{}, nil)
	cc := NewClientCache(ClientOptions{})
	defer cc.Close()
	a, err := cc.Get(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := cc.Get(context.Background(), addr); b != a {
		t.Error("a second Get dialed again")
	}
	a.Close() // broken now
	b, err := cc.Get(context.Background(), addr)
	if err != nil || b == a || b.Err() != nil {
		t.Fatalf("after the client failed: %v %v", b, err)
	}
	if _, err := b.Call(context.Background(), Message{Opcode: opEcho}, nil); err != nil {
		t.Error(err)
	}
}

// A request whose header servers would refuse fails alone, before it is
// sent: the connection and the calls in flight on it stay.
func TestOversizedHeaderRefusedBeforeSending(t *testing.T) {
	srv := NewServer(ServerOptions{Targets: 1})
	srv.Handle(1, func(ctx context.Context, req *Request) (Response, error) { return Response{}, nil })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	c, err := Dial(context.Background(), l.Addr().String(), ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Call(context.Background(), Message{Opcode: 1, Header: make([]byte, defaultMaxHeader+1)}, nil); !daoserr.Is(err, daoserr.Overflow) {
		t.Fatalf("oversized header: %v, want DER_OVERFLOW", err)
	}
	if _, err := c.Call(context.Background(), Message{Opcode: 1, Header: make([]byte, 200<<10)}, nil); err != nil {
		t.Fatalf("a 200 KiB header on the same connection: %v", err)
	}
}
