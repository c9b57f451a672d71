package rpc

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

func fuzzSeeds(f *testing.F) {
	f.Add(appendFrame(nil, frame{kind: KindRequest, opcode: opEcho, id: 1, target: 0, timeout: 100}, []byte("hdr"), []byte("bulk")))
	f.Add(appendFrame(nil, frame{kind: KindCancel, id: 9}, nil, nil))
	f.Add(appendFrame(nil, frame{kind: KindReply, id: 3, status: 1005}, []byte("msg\x00fix"), nil))
	two := appendFrame(nil, frame{kind: KindRequest, opcode: opEcho, id: 1}, nil, []byte("a"))
	f.Add(appendFrame(two, frame{kind: KindRequest, opcode: opFail, id: 2, target: 1}, []byte("x"), nil))
	f.Add([]byte("GDRP\x01"))
	f.Add([]byte{})
}

// Any bytes decode to a frame that encodes back to them, or to a protocol
// error; never a panic or an allocation a length field asked for.
func FuzzDecodeFrame(f *testing.F) {
	fuzzSeeds(f)
	lim := Limits{MaxHeader: 1 << 10, MaxBulk: 1 << 16}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, hdr, bulk, n, err := decodeFrame(b, lim)
		if err != nil {
			return
		}
		if got := appendFrame(nil, fr, hdr, bulk); !bytes.Equal(got, b[:n]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", got, b[:n])
		}
	})
}

// Whatever a client sends, the server neither panics nor hangs: it serves what
// is valid, closes the connection at the first bad frame, and shuts down.
func FuzzServerConn(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewServer(ServerOptions{Targets: 2, Limits: Limits{MaxHeader: 1 << 10, MaxBulk: 1 << 16},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		s.Handle(opEcho, func(ctx context.Context, r *Request) (Response, error) {
			return Response{Header: r.Header, Bulk: [][]byte{r.Bulk}}, nil
		})
		client, server := net.Pipe()
		s.ServeConn(server)
		go io.Copy(io.Discard, client) // replies
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(b)
		client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("server did not shut down: %v", err)
		}
	})
}
