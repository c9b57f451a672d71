// Package ddb is the offline debugger for one VOS target directory, like DAOS's
// ddb: with the server stopped it lists a target's tree, dumps values, verifies
// checksums, deletes damaged containers/objects/keys and shows space, log and
// format state. cmd/ddb is a thin main around Run.
package ddb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/server/vos"
)

// Exit codes.
const (
	ExitOK     = 0 // success; verify found no damage
	ExitDamage = 1 // verify found damage
	ExitError  = 2 // bad usage, or the command failed (its error is on stderr)
)

const description = `Usage: ddb [--json] TARGET_DIR COMMAND [ARGS]

Offline debugger for one VOS target directory (the server must be stopped).

Paths name a node of the target: / (containers), /CONT_UUID (objects),
/CONT_UUID/OID (dkeys), /CONT_UUID/OID/DKEY (akeys), /CONT_UUID/OID/DKEY/AKEY
(stored records). OIDs are HI.LO in hex. Keys are text, 0x-prefixed hex, or
u64:N for 8-byte integer keys; ls prints them in the same forms.

Exit status: 0 success, 1 verify found damage, 2 error.

Examples:
  ddb /mnt/daos/pool/0 ls -r /
  ddb /mnt/daos/pool/0 dump /CONT/100000000.1/dkey/akey --out value.bin
  ddb --json /mnt/daos/pool/0 verify
  ddb /mnt/daos/pool/0 rm /CONT/100000000.1/bad-dkey`

// cli is the command line: ddb [--json] TARGET_DIR COMMAND [ARGS].
type cli struct {
	JSON   bool      `short:"j" help:"Print the result as JSON ({response, error, status}, as DAOS tools do)."`
	Target targetArg `arg:"" name:"target_dir"`
}

// targetArg is a kong branching argument: the target directory comes before the
// command, as DAOS's ddb takes the VOS path before its command.
type targetArg struct {
	Target string `arg:"" name:"target_dir" help:"VOS target directory (the one holding superblock.json)."`

	Ls         lsCmd         `cmd:"" help:"List containers, objects, dkeys, akeys or an akey's stored records."`
	Dump       dumpCmd       `cmd:"" help:"Print an akey's value (single value, or the visible extents of an array)."`
	Verify     verifyCmd     `cmd:"" help:"Re-read every stored value and check its checksums."`
	Rm         rmCmd         `cmd:"" help:"Delete a container, object, dkey or akey with all its history (opens the target read-write)."`
	Space      spaceCmd      `cmd:"" aliases:"usage" help:"Show SCM and NVMe space: total, used, free."`
	Log        logCmd        `cmd:"" help:"Show the checkpoint and write-ahead log segments."`
	Superblock superblockCmd `cmd:"" help:"Show the target's format parameters."`
}

// env is what every command runs with.
type env struct {
	dir    string
	json   bool
	stdout io.Writer
	stderr io.Writer
	exit   int // set by commands that succeed but want a non-zero status (verify)
}

// Run runs ddb with args (without the program name), writing results to stdout
// and errors to stderr, and returns the exit status.
func Run(args []string, stdout, stderr io.Writer) (status int) {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("ddb"),
		kong.Description(description),
		kong.Writers(stdout, stderr),
		// kong exits after printing --help; unwind to here instead so Run always
		// returns (tests call it, and main owns os.Exit).
		kong.Exit(func(code int) { panic(kongExit(code)) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Help(printHelp),
	)
	if err != nil { // a bug in the struct tags above
		fmt.Fprintf(stderr, "ddb: internal error: %v\n", err)
		return ExitError
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "ddb: give a target directory and a command, e.g. 'ddb /path/to/target ls /'; run 'ddb --help' for usage")
		return ExitError
	}
	defer func() {
		r := recover()
		if code, ok := r.(kongExit); ok {
			status = int(code)
		} else if r != nil {
			// A bug, in ddb or below: still one line, never a stack trace.
			fmt.Fprintf(stderr, "ddb: internal error: %v; please report it with the command line used\n", r)
			status = ExitError
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "ddb: %s; run 'ddb --help' for usage\n", oneLine(err.Error()))
		return ExitError
	}
	e := &env{dir: c.Target.Target, json: c.JSON, stdout: stdout, stderr: stderr}
	if err := kctx.Run(e); err != nil {
		e.fail(err)
		return ExitError
	}
	return e.exit
}

type kongExit int

// printHelp is kong's help with the top-level usage line that matches the
// command line: kong's own would read "ddb <command>", but the target comes first.
func printHelp(opts kong.HelpOptions, ctx *kong.Context) error {
	if ctx.Selected() != nil {
		return kong.DefaultHelpPrinter(opts, ctx)
	}
	opts.NoAppSummary = true // the description starts with the usage line
	var buf bytes.Buffer
	out := ctx.Stdout
	ctx.Stdout = &buf
	err := kong.DefaultHelpPrinter(opts, ctx)
	ctx.Stdout = out
	help := strings.Replace(strings.TrimLeft(buf.String(), "\n"), `"ddb <command> --help"`, `"ddb TARGET_DIR <command> --help"`, 1)
	if _, werr := io.WriteString(out, help); err == nil {
		err = werr
	}
	return err
}

// ---- output ----

// result is a command's response: JSON-encodable, and printable as text.
type result interface {
	text(w io.Writer) error
}

// envelope is the --json output, shaped like dmg's and daos's.
type envelope struct {
	Response any     `json:"response"`
	Error    *string `json:"error"`
	Status   int     `json:"status"`
}

// emit prints a command's result as text or JSON.
func (e *env) emit(r result) error {
	if !e.json {
		return r.text(e.stdout)
	}
	return e.writeJSON(envelope{Response: r})
}

func (e *env) writeJSON(v envelope) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON output: %w", err)
	}
	return nil
}

// fail reports err: one line on stderr, and with --json also an envelope on
// stdout so a script reading JSON sees the failure and its DAOS status.
func (e *env) fail(err error) {
	msg := oneLine(err.Error())
	fmt.Fprintf(e.stderr, "ddb: %s\n", msg)
	if e.json {
		status := -1
		if c := daoserr.CodeOf(err); c != 0 {
			status = c.Errno()
		}
		_ = e.writeJSON(envelope{Error: &msg, Status: status})
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// ---- opening the target ----

// open opens the target directory. Read-only commands pass readOnly, so nothing
// on disk changes (a torn log tail is skipped, not cut).
func (e *env) open(readOnly bool) (*vos.Pool, error) {
	if err := checkDir(e.dir); err != nil {
		return nil, err
	}
	// vos logs through slog; send it to stderr, warnings only, so it never mixes
	// with results on stdout.
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: dropTime}))
	p, err := vos.Open(e.dir, vos.Options{ReadOnly: readOnly, Logger: logger})
	if daoserr.Is(err, daoserr.Busy) {
		return nil, daoserr.Newf(daoserr.Busy,
			"target %s is in use by a running server or another tool; stop it first, then run ddb again", e.dir)
	}
	if err != nil {
		return nil, err // vos's errors already name the target and what to do
	}
	return p, nil
}

// dropTime leaves the time out of vos's log lines: ddb is interactive, the
// user knows when they ran it.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func checkDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return daoserr.Newf(daoserr.Nonexist, "target directory %s does not exist", dir)
	case err != nil:
		return daoserr.Wrap(daoserr.IO, err, "target directory %s", dir)
	case !st.IsDir():
		return daoserr.Newf(daoserr.NotDir, "%s is not a directory: give the VOS target directory (the one holding superblock.json)", dir)
	}
	return nil
}

// withPool opens the target, runs fn and closes it again, reporting a close
// error only if fn succeeded.
func (e *env) withPool(readOnly bool, fn func(*vos.Pool) error) (err error) {
	p, err := e.open(readOnly)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := p.Close(); cerr != nil && err == nil {
			err = daoserr.Wrap(daoserr.IO, cerr, "close target %s", e.dir)
		}
	}()
	return fn(p)
}

// ---- flag types ----

// epochFlag is --epoch: a number, or "latest" (the default) for every durable version.
type epochFlag vos.Epoch

func (f *epochFlag) UnmarshalText(b []byte) error {
	s := string(b)
	if s == "latest" || s == "max" {
		*f = epochFlag(vos.EpochMax)
		return nil
	}
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return fmt.Errorf("epoch %q: want a number or \"latest\"", s)
	}
	*f = epochFlag(n)
	return nil
}

func (f epochFlag) String() string {
	if vos.Epoch(f) == vos.EpochMax {
		return "latest"
	}
	return strconv.FormatUint(uint64(f), 10)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (f *epochFlag) UnmarshalJSON(b []byte) error {
	return f.UnmarshalText(bytes.Trim(b, `"`))
}

// MarshalJSON prints "latest" rather than 2^64-1, which JSON readers in other
// languages cannot hold exactly.
func (f epochFlag) MarshalJSON() ([]byte, error) {
	if vos.Epoch(f) == vos.EpochMax {
		return []byte(`"latest"`), nil
	}
	return []byte(strconv.FormatUint(uint64(f), 10)), nil
}
