package capability

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/security/certs"
)

// Requests only servers may make (enginepb.ServerOps) travel sealed: the
// message in a ServerSigned with the sending server's signature (the
// servers share one key) over the opcode, the time, a random nonce and the
// message. An engine opens them with Verifier.Open, which refuses an
// unsigned, forged, misdirected or stale one; it refuses a replayed one
// with a ReplayCache.

// MaxServerSkew is how old (or how far ahead) a sealed request may be: it
// bounds how long a replay cache must remember a request, and the servers'
// clocks must agree within it.
const MaxServerSkew = 5 * time.Minute

// NonceSize is the length of a sealed request's nonce.
const NonceSize = 16

// SignedBytes is what a sealed request's signature covers: opcode, time,
// nonce (length-prefixed) and message.
func SignedBytes(op uint32, t int64, nonce, msg []byte) []byte {
	b := make([]byte, 0, 13+len(nonce)+len(msg))
	b = binary.LittleEndian.AppendUint32(b, op)
	b = binary.LittleEndian.AppendUint64(b, uint64(t))
	b = binary.AppendUvarint(b, uint64(len(nonce)))
	b = append(b, nonce...)
	return append(b, msg...)
}

// Seal wraps a server's request for opcode op (signer nil: unsigned, for
// systems running insecure).
func Seal(signer crypto.Signer, op uint16, msg []byte) ([]byte, error) {
	s := &enginepb.ServerSigned{Op: uint32(op), Time: time.Now().UnixNano(), Msg: msg, Nonce: make([]byte, NonceSize)}
	rand.Read(s.Nonce) // never fails (crypto/rand)
	if signer != nil {
		var err error
		if s.Sig, err = certs.Sign(signer, SignedBytes(s.Op, s.Time, s.Nonce, msg)); err != nil {
			return nil, daoserr.Context(err, "sign a server request (%s)", enginepb.OpName(op))
		}
		s.Signer, _ = certs.Fingerprint(signer.Public())
	}
	return proto.Marshal(s)
}

// An Opened is a sealed request Verifier.Open accepted.
type Opened struct {
	Msg []byte // the request's message
	// ID names the request for a ReplayCache: a hash of what its signature
	// covers. Not of the signature itself: an ECDSA signature can be altered
	// into another valid one (s into n-s) by anyone, the signed bytes cannot.
	// Zero when the request is unsigned (an insecure system): replays
	// cannot be told from new requests there.
	ID     [sha256.Size]byte
	Signed bool
	Sent   time.Time
}

// Open checks a sealed request for opcode op and returns it.
func (v Verifier) Open(op uint16, b []byte) (Opened, error) {
	var s enginepb.ServerSigned
	name := enginepb.OpName(op)
	if err := proto.Unmarshal(b, &s); err != nil || s.Op == 0 {
		return Opened{}, daoserr.Newf(daoserr.NoPerm, "%s (opcode %d) is for servers only: not a sealed server request", name, op)
	}
	if s.Op != uint32(op) {
		return Opened{}, daoserr.Newf(daoserr.NoPerm, "server request sealed for %s (opcode %d), sent as %s (opcode %d)",
			enginepb.OpName(uint16(s.Op)), s.Op, name, op)
	}
	o := Opened{Msg: s.Msg, Sent: time.Unix(0, s.Time)}
	if v.Key == nil {
		return o, nil
	}
	if len(s.Sig) == 0 {
		return Opened{}, daoserr.Newf(daoserr.NoPerm, "%s (opcode %d) is for servers only: unsigned request on a secure system", name, op)
	}
	signed := SignedBytes(s.Op, s.Time, s.Nonce, s.Msg)
	if err := certs.Verify(v.Key, signed, s.Sig); err != nil {
		return Opened{}, daoserr.Newf(daoserr.NoPerm, "%s (opcode %d): the server signature does not verify", name, op).
			WithResolution("every server must have the same server certificate and key (dmg cert generate)")
	}
	if len(s.Nonce) != NonceSize {
		return Opened{}, daoserr.Newf(daoserr.NoPerm, "%s (opcode %d): server request with a %d-byte nonce, want %d", name, op, len(s.Nonce), NonceSize).
			WithResolution("run the same GoDAOS version on every server")
	}
	if d := time.Since(o.Sent); d > MaxServerSkew || d < -MaxServerSkew {
		return Opened{}, daoserr.Newf(daoserr.NoPerm, "%s (opcode %d): server request sent %s away from this server's clock", name, op, d.Round(time.Second)).
			WithResolution("synchronise the servers' clocks (NTP)")
	}
	o.ID, o.Signed = sha256.Sum256(signed), true
	return o, nil
}
