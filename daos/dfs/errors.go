package dfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/godaos/godaos/internal/daoserr"
)

// Errors: every DFS operation fails with an *fs.PathError whose error
// matches a POSIX errno with errors.Is (errors.Is(err, syscall.ENOENT),
// and so fs.ErrNotExist), as DAOS's dfs_* calls return errnos; the DAOS
// error underneath, when there is one, stays reachable with errors.As, so
// that a user still sees DER_NOSPACE and its resolution.

// errnoError is an errno with the error it stands for.
type errnoError struct {
	errno syscall.Errno
	cause error // may be nil
}

func (e *errnoError) Error() string {
	if e.cause == nil {
		return e.errno.Error()
	}
	return e.errno.Error() + ": " + e.cause.Error()
}

func (e *errnoError) Unwrap() error { return e.cause }

// Is matches the errno, and what the errno matches (fs.ErrNotExist, ...).
func (e *errnoError) Is(target error) bool {
	if t, ok := target.(syscall.Errno); ok {
		return t == e.errno
	}
	return e.errno.Is(target)
}

// Errno is the POSIX errno err stands for: the one a DFS error carries, or
// the one a DAOS error maps to (DAOS's daos_der2errno); EIO for anything
// else, and 0 for nil.
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var ee *errnoError
	if errors.As(err, &ee) {
		return ee.errno
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	switch {
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, context.DeadlineExceeded):
		return syscall.ETIMEDOUT
	}
	switch daoserr.CodeOf(err) {
	case daoserr.Nonexist, daoserr.Enoent:
		return syscall.ENOENT
	case daoserr.Exist:
		return syscall.EEXIST
	case daoserr.NoSpace:
		return syscall.ENOSPC
	case daoserr.NoPerm:
		return syscall.EPERM
	case daoserr.Inval, daoserr.IOInval:
		return syscall.EINVAL
	case daoserr.Busy:
		return syscall.EBUSY
	case daoserr.Again, daoserr.TxRestart:
		return syscall.EAGAIN
	case daoserr.TimedOut:
		return syscall.ETIMEDOUT
	case daoserr.NoSys:
		return syscall.ENOSYS
	case daoserr.NoMem:
		return syscall.ENOMEM
	case daoserr.Key2Big:
		return syscall.ENAMETOOLONG
	case daoserr.Rec2Big, daoserr.Overflow:
		return syscall.E2BIG
	case daoserr.NotDir:
		return syscall.ENOTDIR
	case daoserr.Unreach:
		return syscall.EHOSTUNREACH
	case daoserr.Canceled, daoserr.OpCanceled:
		return syscall.ECANCELED
	case daoserr.Shutdown:
		return syscall.ESHUTDOWN
	case daoserr.NoHdl:
		return syscall.EBADF
	case daoserr.EpRO:
		return syscall.EROFS
	case daoserr.Deadlk:
		return syscall.EDEADLK
	}
	return syscall.EIO
}

// pathErr wraps err for operation op on path: as the errno err maps to, with
// err kept as its cause.
func pathErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err // already one of ours
	}
	if en, ok := err.(syscall.Errno); ok {
		return &fs.PathError{Op: op, Path: path, Err: en}
	}
	return &fs.PathError{Op: op, Path: path, Err: &errnoError{errno: Errno(err), cause: err}}
}

// errf is a PathError for errno with an explanation.
func errf(op, path string, errno syscall.Errno, format string, args ...any) error {
	return &fs.PathError{Op: op, Path: path, Err: &errnoError{errno: errno, cause: fmt.Errorf(format, args...)}}
}
