package rpc

import (
	"context"
	"errors"
	"strings"

	"github.com/godaos/godaos/internal/daoserr"
)

// A failed request's reply carries the DER code as its status and, as its
// message header, the error's message and resolution separated by a NUL byte,
// so that the client rebuilds the same daoserr.Error the handler returned.

// encodeError turns a handler's error into a reply status and message header.
func encodeError(err error) (int32, []byte) {
	var de *daoserr.Error
	if errors.As(err, &de) {
		return int32(de.Code), []byte(de.Msg + "\x00" + de.Resolution)
	}
	code := daoserr.CodeOf(err)
	switch {
	case code != 0:
	case errors.Is(err, context.DeadlineExceeded):
		code = daoserr.TimedOut
	case errors.Is(err, context.Canceled):
		code = daoserr.Canceled
	default:
		code = daoserr.Misc
	}
	return int32(code), []byte(err.Error())
}

// decodeError rebuilds the error of a reply with a non-zero status.
func decodeError(status int32, hdr []byte) error {
	msg, res, _ := strings.Cut(string(hdr), "\x00")
	return &daoserr.Error{Code: daoserr.Code(status), Msg: msg, Resolution: res}
}

// ctxError maps a context's end to the DER code DAOS uses for it.
func ctxError(err error, what string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return daoserr.Wrap(daoserr.TimedOut, err, "%s", what)
	}
	return daoserr.Wrap(daoserr.Canceled, err, "%s", what)
}
