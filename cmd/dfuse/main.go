// Command dfuse mounts a POSIX container (DFS) as a FUSE file system, as
// DAOS's dfuse does:
//
//	dfuse -m /mnt/x --pool tank --cont results [--foreground]
//	dfuse /mnt/x tank results
//	dfuse -m /mnt/x --path /lustre/proj/results   (a UNS directory)
//
// Without --foreground it detaches once the mount is ready. fusermount3 -u
// (or umount, or SIGTERM) stops it; writes are acknowledged only once they
// are on the servers, so stopping it loses none.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/daos/dfuse"
	"github.com/godaos/godaos/daos/uns"
	"github.com/godaos/godaos/internal/cli"
	"github.com/godaos/godaos/internal/daoserr"
)

type cmdLine struct {
	Mountpoint     string        `short:"m" name:"mountpoint" placeholder:"DIR" help:"Where to mount (or the first argument)."`
	Pool           string        `short:"p" name:"pool" help:"Pool label or UUID (or the second argument)."`
	Cont           string        `short:"c" name:"cont" help:"Container label or UUID (or the third argument)."`
	Path           string        `name:"path" placeholder:"DIR" help:"A UNS directory naming the pool and container (its user.daos attribute)."`
	Foreground     bool          `short:"f" name:"foreground" help:"Stay in the foreground (default: detach once mounted)."`
	MultiUser      bool          `name:"multi-user" help:"Let every user of the node use the mount; the kernel checks the owners and modes DFS stores (needs root)."`
	ReadOnly       bool          `name:"read-only" help:"Mount read-only."`
	DisableCaching bool          `name:"disable-caching" help:"No caching at all: every lookup, attribute and read goes to the servers."`
	AttrTimeout    time.Duration `name:"attr-timeout" default:"1s" help:"How long the kernel trusts file attributes."`
	EntryTimeout   time.Duration `name:"entry-timeout" default:"1s" help:"How long the kernel trusts a name's lookup."`
	NegTimeout     time.Duration `name:"negative-timeout" default:"0s" help:"How long the kernel trusts that a name does not exist."`
	DataCache      string        `name:"data-cache" enum:"otoc,on,off" default:"otoc" help:"File data caching: otoc (dropped at each open: close-to-open consistency), on (kept), off (direct I/O)."`
	Debug          bool          `name:"debug" help:"Log every FUSE request."`
	Args           []string      `arg:"" optional:"" help:"MOUNTPOINT [POOL [CONT]]"`
}

// readyFD is where a detached dfuse tells its parent that it mounted (or
// why it did not).
const readyEnv = "GODAOS_DFUSE_READY_FD"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	var c cmdLine
	_, rc, ok := cli.Parse("dfuse", "Mount a GoDAOS POSIX container with FUSE.", &c, args, stdout, stderr)
	if !ok {
		return rc
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "dfuse:", err)
		return 1
	}
	if err := c.resolve(); err != nil {
		return fail(err)
	}
	if os.Getenv(readyEnv) != "" {
		os.Chdir("/") // detached: hold no directory busy (the paths are absolute now)
	}
	if !c.Foreground && os.Getenv(readyEnv) == "" {
		if err := detach(args); err != nil {
			return fail(err)
		}
		return 0
	}
	ready := func(err error) {
		if fd := os.Getenv(readyEnv); fd != "" {
			var n int
			fmt.Sscan(fd, &n)
			f := os.NewFile(uintptr(n), "ready")
			if err != nil {
				fmt.Fprintln(f, err)
			} else {
				fmt.Fprintln(f, "ok")
			}
			f.Close()
		}
	}
	err := c.serve(stderr, ready)
	if err != nil {
		ready(err)
		return fail(err)
	}
	return 0
}

// resolve fills mount point, pool and container from the arguments and
// --path.
func (c *cmdLine) resolve() error {
	pos := c.Args
	take := func(dst *string) {
		if *dst == "" && len(pos) > 0 {
			*dst, pos = pos[0], pos[1:]
		}
	}
	if c.Mountpoint == "" { // with -m, the arguments are POOL [CONT]
		take(&c.Mountpoint)
	}
	take(&c.Pool)
	take(&c.Cont)
	if len(pos) > 0 {
		return daoserr.Newf(daoserr.Inval, "unexpected argument %q", pos[0]).WithResolution("dfuse [-m] MOUNTPOINT [POOL [CONT]]")
	}
	if c.Mountpoint == "" {
		return daoserr.Newf(daoserr.Inval, "no mount point").WithResolution("give one with -m DIR (or as the first argument)")
	}
	if c.Path != "" {
		l, err := uns.Resolve(c.Path)
		if err != nil {
			return err
		}
		if l.Type != "POSIX" {
			return daoserr.Newf(daoserr.Inval, "%s points at a %s container; dfuse mounts POSIX containers", c.Path, l.Type)
		}
		c.Pool, c.Cont = l.Pool, l.Cont
	}
	if c.Pool == "" || c.Cont == "" {
		return daoserr.Newf(daoserr.Inval, "no pool or container").WithResolution("give --pool and --cont, or --path to a UNS directory")
	}
	abs, err := filepath.Abs(c.Mountpoint)
	if err != nil {
		return err
	}
	c.Mountpoint = abs
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return daoserr.Newf(daoserr.Nonexist, "mount point %s is not a directory", abs).WithResolution("create it first (mkdir -p %s)", abs)
	}
	return nil
}

// detach starts dfuse again in the foreground in a new session and waits
// until it says it mounted.
func detach(args []string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), readyEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if logf := os.Getenv("D_LOG_FILE"); logf != "" {
		f, err := os.OpenFile(logf, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
		if err != nil {
			return fmt.Errorf("D_LOG_FILE: %w", err)
		}
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	w.Close()
	msg, _ := io.ReadAll(io.LimitReader(r, 4096))
	r.Close()
	if s := strings.TrimSpace(string(msg)); s != "ok" {
		cmd.Wait()
		if s == "" {
			s = "it exited before mounting (set D_LOG_FILE to keep its log)"
		}
		return errors.New(s)
	}
	cmd.Process.Release()
	return nil
}

func (c *cmdLine) serve(stderr io.Writer, ready func(error)) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	client, err := daos.Init(ctx, daos.Options{})
	if err != nil {
		return err
	}
	defer client.Fini()
	mode := daos.RW
	if c.ReadOnly {
		mode = daos.RO
	}
	pool, err := client.PoolConnect(ctx, c.Pool, mode)
	if err != nil {
		return err
	}
	defer pool.Disconnect(ctx)
	cont, err := pool.ContOpen(ctx, c.Cont, mode)
	if err != nil {
		return err
	}
	defer cont.Close(ctx)
	f, err := dfs.Mount(ctx, cont, c.ReadOnly)
	if err != nil {
		return err
	}
	defer f.Umount()
	o := dfuse.DefaultOptions()
	o.AttrTimeout, o.EntryTimeout, o.NegativeTimeout, o.DataCache = c.AttrTimeout, c.EntryTimeout, c.NegTimeout, c.DataCache
	if c.DisableCaching {
		o.AttrTimeout, o.EntryTimeout, o.NegativeTimeout, o.DataCache = 0, 0, 0, "off"
	}
	o.MultiUser, o.ReadOnly, o.Debug, o.Logger = c.MultiUser, c.ReadOnly, c.Debug, log
	o.FsName = "dfuse:" + c.Pool + "/" + c.Cont
	srv, err := dfuse.Mount(c.Mountpoint, f, o)
	if err != nil {
		return daoserr.Wrap(daoserr.Misc, err, "mount %s", c.Mountpoint).
			WithResolution("check that /dev/fuse exists and fusermount3 is installed (Debian package fuse3), and that nothing is mounted there already")
	}
	ready(nil)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-sig
		log.Warn("unmounting", "signal", s.String(), "mountpoint", c.Mountpoint)
		// Unmount waits for requests in flight; a busy mount is detached
		// lazily, and serves its last requests before it goes.
		if err := srv.Unmount(); err != nil {
			exec.Command("fusermount3", "-u", "-z", c.Mountpoint).Run()
		}
	}()
	srv.Wait()
	// give back this mount's byte-range locks now rather than when their
	// lease ends
	if err := cont.ReleaseLocks(ctx); err != nil {
		log.Warn("releasing locks", "err", err)
	}
	return nil
}
