package daoserr

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestCodes(t *testing.T) {
	tests := []struct {
		code  Code
		name  string
		errno int
	}{
		{Nonexist, "DER_NONEXIST", -1005},
		{NoSpace, "DER_NOSPACE", -1007},
		{Csum, "DER_CSUM", -2021},
		{TxRestart, "DER_TX_RESTART", -2025},
		{Code(4242), "DER_UNKNOWN(4242)", -4242},
	}
	for _, tc := range tests {
		if tc.code.Name() != tc.name || tc.code.Errno() != tc.errno {
			t.Errorf("%d: name %s errno %d, want %s %d", tc.code, tc.code.Name(), tc.code.Errno(), tc.name, tc.errno)
		}
	}
}

func TestWrapping(t *testing.T) {
	base := Newf(NoSpace, "target %d is full", 3).WithResolution("free space")
	wrapped := fmt.Errorf("update: %w", Context(base, "pool %s", "p1"))
	if !Is(wrapped, NoSpace) || !errors.Is(wrapped, NoSpace) || Is(wrapped, Nonexist) {
		t.Fatalf("code lost through wrapping: %v", wrapped)
	}
	msg := wrapped.Error()
	for _, want := range []string{"DER_NOSPACE", "pool p1", "target 3 is full", "(free space)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	cause := Wrap(IO, io.ErrUnexpectedEOF, "read log")
	if !errors.Is(cause, io.ErrUnexpectedEOF) || CodeOf(cause) != IO {
		t.Errorf("Wrap loses its cause or code: %v", cause)
	}
	if CodeOf(errors.New("plain")) != 0 || Is(nil, IO) {
		t.Error("uncoded errors have a code")
	}
	if got := Context(io.EOF, "open %s", "x"); !errors.Is(got, io.EOF) || CodeOf(got) != 0 {
		t.Errorf("Context of an uncoded error: %v", got)
	}
}

// A long key in a message shows its start and its length, not 64 KiB.
func TestLongKeysShortened(t *testing.T) {
	key := bytes.Repeat([]byte("k"), 70000)
	err := Newf(Key2Big, "dkey %q of object %s", key, "1.2")
	want := `dkey "` + strings.Repeat("k", 64) + `"...(70000 bytes) of object 1.2`
	if err.Msg != want {
		t.Fatalf("message %q", err.Msg[:min(len(err.Msg), 200)])
	}
	if c := Context(err, "akey %x", key); len(c.Error()) > 400 {
		t.Fatalf("context message of %d bytes", len(c.Error()))
	}
	short := Newf(Inval, "dkey %q", []byte("abc"))
	if short.Msg != `dkey "abc"` {
		t.Fatalf("short key: %q", short.Msg)
	}
}
