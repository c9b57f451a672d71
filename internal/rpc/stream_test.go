package rpc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// Frames of every size, back to back, read through the read-ahead buffer
// however the stream is cut: each comes out whole and in order.
func TestFrameReader(t *testing.T) {
	lim := Limits{}.withDefaults()
	sizes := []int{0, 1, 100, 4096, readAhead - 100, readAhead + 1, bigBulk, 1 << 20, 5, 3 << 20, 0, 77}
	var stream []byte
	var want [][]byte
	for i, n := range sizes {
		bulk := bytes.Repeat([]byte{byte(i + 1)}, n)
		want = append(want, bulk)
		stream = appendFrame(stream, frame{kind: KindReply, id: uint64(i)}, []byte(fmt.Sprintf("hdr%d", i)), bulk)
	}
	for _, tc := range []struct {
		name string
		r    func() io.Reader
	}{
		{"whole", func() io.Reader { return bytes.NewReader(stream) }},
		{"one byte per read", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) }},
		{"half reads", func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fr := newFrameReader(tc.r())
			var fixed [fixedSize]byte
			for i, w := range want {
				f, err := fr.header(fixed[:], lim)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				hdr, err := fr.message(f.hdrLen)
				if err != nil || checkCRC(fixed[:], hdr) != nil || string(hdr) != fmt.Sprintf("hdr%d", i) || f.id != uint64(i) {
					t.Fatalf("frame %d: header %q id %d: %v", i, hdr, f.id, err)
				}
				if i%3 == 2 { // skipped, as a canceled call's reply is
					if err := fr.discard(f.bulkLen); err != nil {
						t.Fatal(err)
					}
					continue
				}
				// into two buffers, split unevenly
				got := make([]byte, f.bulkLen)
				cut := len(got) / 3
				if err := fr.read([][]byte{got[:cut], got[cut:]}, f.bulkLen); err != nil {
					t.Fatalf("frame %d bulk: %v", i, err)
				}
				if !bytes.Equal(got, w) {
					t.Fatalf("frame %d: bulk differs", i)
				}
			}
			if _, err := fr.header(fixed[:], lim); err != io.EOF {
				t.Fatalf("after the last frame: %v, want EOF", err)
			}
		})
	}
	t.Run("cut short", func(t *testing.T) {
		for _, cut := range []int{10, fixedSize + 2, len(stream) - 1} {
			fr := newFrameReader(bytes.NewReader(stream[:cut]))
			var err error
			var fixed [fixedSize]byte
			for err == nil {
				var f frame
				if f, err = fr.header(fixed[:], lim); err == nil {
					if _, err = fr.message(f.hdrLen); err == nil {
						err = fr.discard(f.bulkLen)
					}
				}
			}
			if err != io.ErrUnexpectedEOF {
				t.Errorf("stream cut at %d: %v, want unexpected EOF", cut, err)
			}
		}
	})
}

// Frames written by many goroutines at once arrive whole, never interleaved,
// and each writer returns only once its frame is written.
func TestFrameWriterConcurrent(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := newFrameWriter(a, 10*time.Second)
	const writers, each = 16, 40
	got := make(chan map[string]int, 1)
	go func() {
		fr := newFrameReader(b)
		seen := map[string]int{}
		var fixed [fixedSize]byte
		for range writers * each {
			f, err := fr.header(fixed[:], Limits{}.withDefaults())
			if err != nil {
				break
			}
			hdr, _ := fr.message(f.hdrLen)
			bulk := make([]byte, f.bulkLen)
			if fr.read([][]byte{bulk}, f.bulkLen) != nil || !bytes.Equal(bulk, bytes.Repeat(hdr, len(bulk)/len(hdr))) {
				break
			}
			seen[string(hdr)]++
		}
		got <- seen
	}()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				tag := []byte(fmt.Sprintf("w%02d-%03d", g, i))
				var fixed [fixedSize]byte
				f := frame{kind: KindRequest, id: uint64(g*each + i)}
				bulk := bytes.Repeat(tag, 1+i*37)
				f.bulkLen = uint64(len(bulk))
				f.put(fixed[:], tag)
				if err := w.write(fixed[:], tag, [][]byte{bulk[:len(bulk)/2], bulk[len(bulk)/2:]}); err != nil {
					t.Error(err)
					return
				}
				clear(bulk) // the frame is out: the buffer is ours again
			}
		})
	}
	wg.Wait()
	seen := <-got
	if len(seen) != writers*each {
		t.Fatalf("%d distinct frames arrived whole, want %d", len(seen), writers*each)
	}
	a.Close()
	var fixed [fixedSize]byte
	if err := w.write(fixed[:], nil, nil); err == nil {
		t.Fatal("a write on a closed connection succeeded")
	}
}

// A handler that waits (as an update waits for its commit) does not hold
// back the requests of its target that arrive meanwhile, whatever the
// number of resident workers.
func TestWaitingHandlersDoNotQueue(t *testing.T) {
	const n = 12
	s := NewServer(ServerOptions{Targets: 1, WorkersPerTarget: 1})
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	s.Handle(opBlock, func(ctx context.Context, r *Request) (Response, error) {
		mu.Lock()
		if arrived++; arrived == n {
			close(all)
		}
		mu.Unlock()
		select { // every request is in its handler at once, or none returns
		case <-all:
			return Response{}, nil
		case <-ctx.Done():
			return Response{}, ctx.Err()
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	defer s.Shutdown(context.Background())
	c := testClient(t, l.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := c.Call(ctx, Message{Opcode: opBlock}, nil); err != nil {
				t.Errorf("call: %v", err)
			}
		})
	}
	wg.Wait()
}
