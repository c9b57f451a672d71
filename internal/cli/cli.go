// Package cli runs kong command lines for mains that return an exit status
// (so tests can call them): --help returns 0, a usage error 2.
package cli

import (
	"fmt"
	"io"

	"github.com/alecthomas/kong"
)

// exit carries kong's exit (after --help) out of the parser.
type exit int

// Parse parses args into grammar. ok is false when the caller should return rc
// at once (help printed, or a usage error reported on stderr).
func Parse(name, desc string, grammar any, args []string, stdout, stderr io.Writer, opts ...kong.Option) (kctx *kong.Context, rc int, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			code, isExit := r.(exit)
			if !isExit {
				panic(r)
			}
			kctx, rc, ok = nil, int(code), false
		}
	}()
	opts = append([]kong.Option{kong.Name(name), kong.Description(desc), kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exit(code)) }), kong.UsageOnError()}, opts...)
	parser, err := kong.New(grammar, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return nil, 2, false
	}
	kctx, err = parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return nil, 2, false
	}
	return kctx, 0, true
}
