package daos

import "github.com/godaos/godaos/internal/daoserr"

// Code is a DAOS error number (daos_errno.h): every error the API returns
// carries one. Test for one with errors.Is(err, daos.ErrNonexist), or read
// it with ErrorCode; Code.Name() is DAOS's DER_* name and Code.Errno() the
// negative number DAOS's C API returns.
type Code = daoserr.Code

// The codes callers of this API meet most.
const (
	ErrNoPerm     Code = daoserr.NoPerm     // DER_NO_PERM: the ACL or the handle does not allow it
	ErrNoHdl      Code = daoserr.NoHdl      // DER_NO_HDL: closed, disconnected or invalid handle
	ErrInval      Code = daoserr.Inval      // DER_INVAL: invalid argument
	ErrExist      Code = daoserr.Exist      // DER_EXIST: already exists (or a failed insert condition)
	ErrNonexist   Code = daoserr.Nonexist   // DER_NONEXIST: no such pool, container, object or key
	ErrUnreach    Code = daoserr.Unreach    // DER_UNREACH: a server cannot be reached
	ErrNoSpace    Code = daoserr.NoSpace    // DER_NOSPACE: the pool is full
	ErrBusy       Code = daoserr.Busy       // DER_BUSY: in use (e.g. an event queue with events in flight)
	ErrTimedOut   Code = daoserr.TimedOut   // DER_TIMEDOUT
	ErrCanceled   Code = daoserr.Canceled   // DER_CANCELED
	ErrStale      Code = daoserr.Stale      // DER_STALE: an outdated pool map
	ErrKey2Big    Code = daoserr.Key2Big    // DER_KEY2BIG: a key over the limit
	ErrRec2Big    Code = daoserr.Rec2Big    // DER_REC2BIG: a value larger than the buffer (or limit)
	ErrIOInval    Code = daoserr.IOInval    // DER_IO_INVAL: IODs and buffers do not match
	ErrInProgress Code = daoserr.InProgress // DER_INPROGRESS: retried by the library; seen only after ~10 s
	ErrCsum       Code = daoserr.Csum       // DER_CSUM: data failed its checksum
	ErrTxRestart  Code = daoserr.TxRestart  // DER_TX_RESTART: restart the transaction (Tx.Restart)
	ErrNoSys      Code = daoserr.NoSys      // DER_NOSYS: not implemented
)

// ErrorCode is the DAOS error number err carries (0 for nil or an error
// from outside GoDAOS).
func ErrorCode(err error) Code { return daoserr.CodeOf(err) }
