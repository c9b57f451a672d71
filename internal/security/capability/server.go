package capability

import (
	"crypto"
	"encoding/binary"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/security/certs"
)

// Requests only servers may make (enginepb.ServerOps) travel sealed: the
// message in a ServerSigned with the sending server's signature (the
// servers share one key) over the opcode, the time and the message. An
// engine opens them with Verifier.Open, which refuses an unsigned, forged,
// misdirected or stale one.

// MaxServerSkew is how old (or how far ahead) a sealed request may be: it
// bounds replays, and the servers' clocks must agree within it.
const MaxServerSkew = 5 * time.Minute

// SignedBytes is what a sealed request's signature covers.
func SignedBytes(op uint32, t int64, msg []byte) []byte {
	b := make([]byte, 0, 12+len(msg))
	b = binary.LittleEndian.AppendUint32(b, op)
	b = binary.LittleEndian.AppendUint64(b, uint64(t))
	return append(b, msg...)
}

// Seal wraps a server's request for opcode op (signer nil: unsigned, for
// systems running insecure).
func Seal(signer crypto.Signer, op uint16, msg []byte) ([]byte, error) {
	s := &enginepb.ServerSigned{Op: uint32(op), Time: time.Now().UnixNano(), Msg: msg}
	if signer != nil {
		var err error
		if s.Sig, err = certs.Sign(signer, SignedBytes(s.Op, s.Time, msg)); err != nil {
			return nil, daoserr.Context(err, "sign a server request")
		}
		s.Signer, _ = certs.Fingerprint(signer.Public())
	}
	return proto.Marshal(s)
}

// Open checks a sealed request for opcode op and returns its message.
func (v Verifier) Open(op uint16, b []byte) ([]byte, error) {
	var s enginepb.ServerSigned
	if err := proto.Unmarshal(b, &s); err != nil || s.Op == 0 {
		return nil, daoserr.Newf(daoserr.NoPerm, "opcode %d is for servers only: not a sealed server request", op)
	}
	if s.Op != uint32(op) {
		return nil, daoserr.Newf(daoserr.NoPerm, "server request sealed for opcode %d, sent as %d", s.Op, op)
	}
	if v.Key != nil {
		if len(s.Sig) == 0 {
			return nil, daoserr.Newf(daoserr.NoPerm, "opcode %d is for servers only: unsigned request on a secure system", op)
		}
		if err := certs.Verify(v.Key, SignedBytes(s.Op, s.Time, s.Msg), s.Sig); err != nil {
			return nil, daoserr.Newf(daoserr.NoPerm, "opcode %d: the server signature does not verify", op).
				WithResolution("every server must have the same server certificate and key (dmg cert generate)")
		}
		if d := time.Since(time.Unix(0, s.Time)); d > MaxServerSkew || d < -MaxServerSkew {
			return nil, daoserr.Newf(daoserr.NoPerm, "opcode %d: server request sent %s away from this server's clock", op, d.Round(time.Second)).
				WithResolution("synchronise the servers' clocks (NTP)")
		}
	}
	return s.Msg, nil
}
