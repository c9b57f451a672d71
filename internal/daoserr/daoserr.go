// Package daoserr defines GoDAOS's error codes. The names and numbers are DAOS's
// (daos_errno.h), so a user who knows DER_NONEXIST = -1005 from DAOS sees the same here,
// and a later C ABI can return them unchanged.
//
// An *Error carries a code, a message saying what failed and where, and optionally a
// resolution telling the user what to do about it. Use New/Newf to make one, Wrap to
// add context while keeping the code, and Is/CodeOf to test for one.
package daoserr

import (
	"errors"
	"fmt"
)

// Code is a DAOS error number. DAOS returns them negated (-DER_*); Code holds the
// positive value and Errno gives the negated form.
type Code int32

// GURT (common) codes, DER_ERR_GURT_BASE = 1000.
const (
	NoPerm    Code = 1001 // DER_NO_PERM
	NoHdl     Code = 1002 // DER_NO_HDL
	Inval     Code = 1003 // DER_INVAL
	Exist     Code = 1004 // DER_EXIST
	Nonexist  Code = 1005 // DER_NONEXIST
	Unreach   Code = 1006 // DER_UNREACH
	NoSpace   Code = 1007 // DER_NOSPACE
	Already   Code = 1008 // DER_ALREADY
	NoMem     Code = 1009 // DER_NOMEM
	NoSys     Code = 1010 // DER_NOSYS
	TimedOut  Code = 1011 // DER_TIMEDOUT
	Busy      Code = 1012 // DER_BUSY
	Again     Code = 1013 // DER_AGAIN
	Proto     Code = 1014 // DER_PROTO
	Uninit    Code = 1015 // DER_UNINIT
	Trunc     Code = 1016 // DER_TRUNC
	Overflow  Code = 1017 // DER_OVERFLOW
	Canceled  Code = 1018 // DER_CANCELED
	Misc      Code = 1025 // DER_MISC
	BadPath   Code = 1026 // DER_BADPATH
	NotDir    Code = 1027 // DER_NOTDIR
	Evicted   Code = 1032 // DER_EVICTED
	BadTarget Code = 1035 // DER_BAD_TARGET
	// Deadlk is GoDAOS's own (DAOS has no such code): a POSIX lock wait
	// would deadlock; dfuse answers EDEADLK.
	Deadlk Code = 1099 // DER_DEADLK
)

// DAOS codes, DER_ERR_DAOS_BASE = 2000.
const (
	IO            Code = 2001 // DER_IO
	Enoent        Code = 2003 // DER_ENOENT
	NoType        Code = 2004 // DER_NOTYPE
	NoSchema      Code = 2005 // DER_NOSCHEMA
	Stale         Code = 2007 // DER_STALE
	NotLeader     Code = 2008 // DER_NOTLEADER
	EpRO          Code = 2010 // DER_EP_RO
	EpOld         Code = 2011 // DER_EP_OLD
	Key2Big       Code = 2012 // DER_KEY2BIG
	Rec2Big       Code = 2013 // DER_REC2BIG
	IOInval       Code = 2014 // DER_IO_INVAL
	Shutdown      Code = 2017 // DER_SHUTDOWN
	InProgress    Code = 2018 // DER_INPROGRESS
	Csum          Code = 2021 // DER_CSUM
	DFInval       Code = 2022 // DER_DF_INVAL
	DFIncompt     Code = 2023 // DER_DF_INCOMPT
	RecSize       Code = 2024 // DER_REC_SIZE
	TxRestart     Code = 2025 // DER_TX_RESTART
	DataLoss      Code = 2026 // DER_DATA_LOSS
	OpCanceled    Code = 2027 // DER_OP_CANCELED
	TxBusy        Code = 2028 // DER_TX_BUSY
	AgentIncompat Code = 2029 // DER_AGENT_INCOMPAT
	RF            Code = 2031 // DER_RF
)

var names = map[Code][2]string{
	NoPerm:        {"DER_NO_PERM", "Operation not permitted"},
	NoHdl:         {"DER_NO_HDL", "Invalid handle"},
	Inval:         {"DER_INVAL", "Invalid parameters"},
	Exist:         {"DER_EXIST", "Entity already exists"},
	Nonexist:      {"DER_NONEXIST", "The specified entity does not exist"},
	Unreach:       {"DER_UNREACH", "Unreachable node"},
	NoSpace:       {"DER_NOSPACE", "No space on storage target"},
	Already:       {"DER_ALREADY", "Operation already performed"},
	NoMem:         {"DER_NOMEM", "Out of memory"},
	NoSys:         {"DER_NOSYS", "Function not implemented"},
	TimedOut:      {"DER_TIMEDOUT", "Time out"},
	Busy:          {"DER_BUSY", "Device or resource busy"},
	Again:         {"DER_AGAIN", "Try again"},
	Proto:         {"DER_PROTO", "Incompatible protocol"},
	Uninit:        {"DER_UNINIT", "Not initialized"},
	Trunc:         {"DER_TRUNC", "Buffer too short"},
	Overflow:      {"DER_OVERFLOW", "Data too long for defined data type or buffer size"},
	Canceled:      {"DER_CANCELED", "Operation canceled"},
	Misc:          {"DER_MISC", "Miscellaneous error"},
	BadPath:       {"DER_BADPATH", "Bad path name"},
	NotDir:        {"DER_NOTDIR", "Not a directory"},
	Evicted:       {"DER_EVICTED", "Rank has been evicted"},
	BadTarget:     {"DER_BAD_TARGET", "Target not in the pool map"},
	Deadlk:        {"DER_DEADLK", "Resource deadlock would occur"},
	IO:            {"DER_IO", "Generic I/O error"},
	Enoent:        {"DER_ENOENT", "Entry not found"},
	NoType:        {"DER_NOTYPE", "Unknown object type"},
	NoSchema:      {"DER_NOSCHEMA", "Unknown object schema"},
	Stale:         {"DER_STALE", "Stale resource version"},
	NotLeader:     {"DER_NOTLEADER", "Not service leader"},
	EpRO:          {"DER_EP_RO", "Epoch is read-only"},
	EpOld:         {"DER_EP_OLD", "Epoch is too old, all data have been recycled"},
	Key2Big:       {"DER_KEY2BIG", "Key is too large"},
	Rec2Big:       {"DER_REC2BIG", "Record is too large"},
	IOInval:       {"DER_IO_INVAL", "I/O buffers do not match object extents"},
	Shutdown:      {"DER_SHUTDOWN", "Service should shut down"},
	InProgress:    {"DER_INPROGRESS", "Operation now in progress"},
	Csum:          {"DER_CSUM", "Checksum error"},
	DFInval:       {"DER_DF_INVAL", "Unsupported durable format"},
	DFIncompt:     {"DER_DF_INCOMPT", "Incompatible durable format version"},
	RecSize:       {"DER_REC_SIZE", "Record size error"},
	TxRestart:     {"DER_TX_RESTART", "Transaction should restart"},
	DataLoss:      {"DER_DATA_LOSS", "Data lost or not recoverable"},
	OpCanceled:    {"DER_OP_CANCELED", "Operation canceled"},
	TxBusy:        {"DER_TX_BUSY", "TX is not committed"},
	AgentIncompat: {"DER_AGENT_INCOMPAT", "Agent is incompatible with libdaos"},
	RF:            {"DER_RF", "Failures exceed RF"},
}

// Name is the DAOS identifier, e.g. "DER_NONEXIST".
func (c Code) Name() string {
	if n, ok := names[c]; ok {
		return n[0]
	}
	return fmt.Sprintf("DER_UNKNOWN(%d)", int32(c))
}

// Desc is DAOS's one-line description of the code.
func (c Code) Desc() string {
	if n, ok := names[c]; ok {
		return n[1]
	}
	return "Unknown error"
}

// Errno is the negated value DAOS's C API returns.
func (c Code) Errno() int { return -int(c) }

func (c Code) String() string { return c.Name() }

// Error is a coded error with context.
type Error struct {
	Code       Code
	Msg        string // what failed and where, e.g. "fetch cont 1f.. obj 1.2 dkey \"a\": ..."
	Resolution string // optional: what the user can do about it
	Err        error  // optional underlying cause
}

func (e *Error) Error() string {
	s := e.Code.Name()
	if e.Msg != "" {
		s += ": " + e.Msg
	} else {
		s += ": " + e.Code.Desc()
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.Resolution != "" {
		s += " (" + e.Resolution + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, daoserr.Nonexist) work by comparing codes.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Code:
		return e.Code == t
	case *Error:
		return e.Code == t.Code && t.Msg == ""
	}
	return false
}

// Error lets a bare Code be used as a sentinel: errors.Is(err, daoserr.NoSpace).
func (c Code) Error() string { return c.Name() + ": " + c.Desc() }

// New returns an error with the given code and message.
func New(c Code, msg string) *Error { return &Error{Code: c, Msg: msg} }

// Newf returns an error with the given code and a formatted message.
func Newf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Msg: sprintf(format, args...)}
}

// maxQuoted is how many bytes of a key (a []byte argument) a message shows:
// keys may be 64 KiB, and a message quoting one whole is unreadable.
const maxQuoted = 64

// sprintf is fmt.Sprintf with long []byte arguments shortened.
func sprintf(format string, args ...any) string {
	copied := false
	for i, a := range args {
		if b, ok := a.([]byte); ok && len(b) > maxQuoted {
			if !copied { // the caller's slice stays as it was
				args, copied = append([]any(nil), args...), true
			}
			args[i] = longBytes(b)
		}
	}
	return fmt.Sprintf(format, args...)
}

// longBytes prints the start of a long byte string and its length.
type longBytes []byte

func (b longBytes) Format(f fmt.State, verb rune) {
	head := fmt.Sprintf("%"+string(verb), []byte(b[:maxQuoted]))
	fmt.Fprintf(f, "%s...(%d bytes)", head, len(b))
}

// WithResolution returns a copy of e that tells the user what to do.
func (e *Error) WithResolution(format string, args ...any) *Error {
	c := *e
	c.Resolution = sprintf(format, args...)
	return &c
}

// Wrap attaches a cause to a new coded error.
func Wrap(c Code, err error, format string, args ...any) *Error {
	return &Error{Code: c, Msg: sprintf(format, args...), Err: err}
}

// Context prefixes context to err while keeping its code: the result still
// matches Is(err, code). Errors without a code are wrapped with fmt.Errorf so
// their own identity survives.
func Context(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var de *Error
	if errors.As(err, &de) {
		c := *de
		c.Msg = sprintf(format, args...) + ": " + de.Msg
		return &c
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// CodeOf returns the code carried by err, or 0 if it carries none.
func CodeOf(err error) Code {
	var de *Error
	if errors.As(err, &de) {
		return de.Code
	}
	var c Code
	if errors.As(err, &c) {
		return c
	}
	return 0
}

// Is reports whether err carries code c.
func Is(err error, c Code) bool { return err != nil && CodeOf(err) == c }
