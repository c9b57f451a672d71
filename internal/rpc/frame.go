// Package rpc is GoDAOS's data-plane transport: framed request/reply RPCs over TCP
// between clients and engines (and between engines).
//
// A frame is a fixed 44-byte header, an opaque message header (the caller's
// encoded protobuf) and raw bulk bytes:
//
//	off size
//	 0   4  magic "GDRP"
//	 4   1  version (1)
//	 5   1  kind: request 1, reply 2, cancel 3
//	 6   2  opcode
//	 8   8  request id (chosen by the client; a reply or cancel carries its request's)
//	16   4  target index (the engine's target that serves the request)
//	20   4  message header length
//	24   8  bulk length
//	32   4  status: a reply's DER code (0: success); 0 otherwise
//	36   4  timeout: a request's deadline in milliseconds from receipt (0: none)
//	40   4  crc32c of bytes 0-39 and the message header
//
// all little-endian. Bulk is not checksummed here: end-to-end checksums cover
// data. Bulk is written with vectored writes straight from the caller's
// buffers (several frames per write when several are queued) and read
// straight into the receiver's; only small frames, and the first bytes of a
// large one, pass through a connection's read-ahead buffer (see stream.go).
//
// A frame that fails any check (magic, version, kind, limits, checksum) is a
// protocol error: the connection it came on is closed with a logged reason, and
// every other connection goes on.
package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/godaos/godaos/internal/checksum"
)

const (
	frameMagic   = "GDRP"
	frameVersion = 1
	fixedSize    = 44
)

// Kind is what a frame is.
type Kind uint8

const (
	KindRequest Kind = 1
	KindReply   Kind = 2
	KindCancel  Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindReply:
		return "reply"
	case KindCancel:
		return "cancel"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Limits bound what a peer may send; anything larger is a protocol error.
type Limits struct {
	MaxHeader uint32 // message header bytes (default 1 MiB)
	MaxBulk   uint64 // bulk bytes (default 64 MiB)
}

// The defaults. A header holds a request's keys and IODs: two keys of the
// largest size VOS takes (64 KiB) and many extents must fit.
const (
	defaultMaxHeader = 1 << 20
	defaultMaxBulk   = 64 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxHeader == 0 {
		l.MaxHeader = defaultMaxHeader
	}
	if l.MaxBulk == 0 {
		l.MaxBulk = defaultMaxBulk
	}
	return l
}

// frame is a decoded fixed header.
type frame struct {
	kind    Kind
	opcode  uint16
	id      uint64
	target  uint32
	hdrLen  uint32
	bulkLen uint64
	status  int32
	timeout uint32 // ms
}

// errProtocol marks frames that close the connection.
var errProtocol = errors.New("protocol error")

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errProtocol}, args...)...)
}

// put encodes f's fixed header into b (fixedSize bytes), with the checksum of it
// and hdr.
func (f *frame) put(b []byte, hdr []byte) {
	_ = b[fixedSize-1]
	copy(b, frameMagic)
	b[4] = frameVersion
	b[5] = byte(f.kind)
	binary.LittleEndian.PutUint16(b[6:], f.opcode)
	binary.LittleEndian.PutUint64(b[8:], f.id)
	binary.LittleEndian.PutUint32(b[16:], f.target)
	binary.LittleEndian.PutUint32(b[20:], uint32(len(hdr)))
	binary.LittleEndian.PutUint64(b[24:], f.bulkLen)
	binary.LittleEndian.PutUint32(b[32:], uint32(f.status))
	binary.LittleEndian.PutUint32(b[36:], f.timeout)
	crc := checksum.Update32C(checksum.Sum32C(b[:40]), hdr)
	binary.LittleEndian.PutUint32(b[40:], crc)
}

// parseFixed decodes and checks a fixed header, all but the checksum, which
// needs the message header too (see checkCRC).
func parseFixed(b []byte, lim Limits) (frame, error) {
	if len(b) < fixedSize {
		return frame{}, protoErr("short frame header: %d bytes, want %d", len(b), fixedSize)
	}
	if string(b[:4]) != frameMagic {
		return frame{}, protoErr("bad magic %q: the peer does not speak GoDAOS RPC (wrong port?)", b[:4])
	}
	if b[4] != frameVersion {
		return frame{}, protoErr("frame version %d, this build speaks %d", b[4], frameVersion)
	}
	f := frame{
		kind:    Kind(b[5]),
		opcode:  binary.LittleEndian.Uint16(b[6:]),
		id:      binary.LittleEndian.Uint64(b[8:]),
		target:  binary.LittleEndian.Uint32(b[16:]),
		hdrLen:  binary.LittleEndian.Uint32(b[20:]),
		bulkLen: binary.LittleEndian.Uint64(b[24:]),
		status:  int32(binary.LittleEndian.Uint32(b[32:])),
		timeout: binary.LittleEndian.Uint32(b[36:]),
	}
	switch f.kind {
	case KindRequest, KindReply:
	case KindCancel:
		if f.hdrLen != 0 || f.bulkLen != 0 {
			return frame{}, protoErr("cancel frame with %d header and %d bulk bytes", f.hdrLen, f.bulkLen)
		}
	default:
		return frame{}, protoErr("unknown frame kind %d", b[5])
	}
	if f.hdrLen > lim.MaxHeader {
		return frame{}, protoErr("message header of %d bytes exceeds the limit of %d", f.hdrLen, lim.MaxHeader)
	}
	if f.bulkLen > lim.MaxBulk {
		return frame{}, protoErr("bulk of %d bytes exceeds the limit of %d", f.bulkLen, lim.MaxBulk)
	}
	return f, nil
}

// checkCRC verifies the checksum of a fixed header and its message header.
func checkCRC(fixed, hdr []byte) error {
	want := binary.LittleEndian.Uint32(fixed[40:])
	if got := checksum.Update32C(checksum.Sum32C(fixed[:40]), hdr); got != want {
		return protoErr("frame header checksum %08x, computed %08x", want, got)
	}
	return nil
}

// decodeFrame decodes one whole frame from b (what the stream readers do piece
// by piece): the fixed header, the message header and the bulk, and the number
// of bytes it took.
func decodeFrame(b []byte, lim Limits) (frame, []byte, []byte, int, error) {
	f, err := parseFixed(b, lim)
	if err != nil {
		return frame{}, nil, nil, 0, err
	}
	rest := b[fixedSize:]
	if uint64(len(rest)) < uint64(f.hdrLen) {
		return frame{}, nil, nil, 0, protoErr("frame cut short in its message header")
	}
	hdr := rest[:f.hdrLen]
	if err := checkCRC(b[:fixedSize], hdr); err != nil {
		return frame{}, nil, nil, 0, err
	}
	rest = rest[f.hdrLen:]
	if uint64(len(rest)) < f.bulkLen {
		return frame{}, nil, nil, 0, protoErr("frame cut short in its bulk")
	}
	bulk := rest[:f.bulkLen]
	return f, hdr, bulk, fixedSize + int(f.hdrLen) + int(f.bulkLen), nil
}

// appendFrame encodes a whole frame (tests and fuzzing; the transport writes
// the parts with one vectored write instead).
func appendFrame(b []byte, f frame, hdr, bulk []byte) []byte {
	var fixed [fixedSize]byte
	f.bulkLen = uint64(len(bulk))
	f.put(fixed[:], hdr)
	b = append(b, fixed[:]...)
	b = append(b, hdr...)
	return append(b, bulk...)
}
