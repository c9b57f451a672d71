package dfsperf

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/godaos/godaos/internal/daoserr"
)

// Result is one phase's figures over all ranks.
type Result struct {
	Phase   string  `json:"phase"`
	API     string  `json:"api"`
	Ranks   int     `json:"ranks"`
	Ops     int64   `json:"ops"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	OpsPerS float64 `json:"ops_per_sec"`
	MiBPerS float64 `json:"mib_per_sec,omitempty"`
}

// The parent and its ranks speak lines: a rank says "ready PHASE", the
// parent answers "go" to every rank at once, and the rank says
// "done PHASE OPS BYTES" (or "error MESSAGE").

// Run starts cfg.Ranks copies of the command (self, with args and the rank
// flags RankArgs adds) and runs each phase in all of them at once.
func Run(ctx context.Context, cfg Config, self string, args []string) ([]Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	top := fmt.Sprintf("dfs_perf-%d", os.Getpid())
	type rank struct {
		cmd *exec.Cmd
		in  io.WriteCloser
		out *bufio.Reader
	}
	ranks := make([]rank, cfg.Ranks)
	defer func() {
		for _, r := range ranks {
			if r.cmd != nil && r.cmd.Process != nil {
				r.in.Close()
				r.cmd.Process.Kill()
				r.cmd.Wait()
			}
		}
	}()
	for i := range ranks {
		cmd := exec.CommandContext(ctx, self, append(slicesClone(args), "--rank", strconv.Itoa(i), "--top", top)...)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		ranks[i] = rank{cmd, in, bufio.NewReader(out)}
	}
	read := func(i int, want string) ([]string, error) {
		line, err := ranks[i].out.ReadString('\n')
		if err != nil {
			return nil, daoserr.Newf(daoserr.IO, "dfs_perf: rank %d ended: %v", i, err)
		}
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "error" {
			return nil, daoserr.Newf(daoserr.IO, "dfs_perf: rank %d: %s", i, strings.TrimSpace(strings.TrimPrefix(line, "error")))
		}
		if len(f) < 2 || f[0] != want {
			return nil, daoserr.Newf(daoserr.Proto, "dfs_perf: rank %d said %q, expected %s", i, line, want)
		}
		return f, nil
	}
	var results []Result
	for _, phase := range append(cfg.Phases(), "cleanup") {
		for i := range ranks {
			if _, err := read(i, "ready"); err != nil {
				return nil, err
			}
		}
		start := time.Now()
		for i := range ranks {
			if _, err := io.WriteString(ranks[i].in, "go\n"); err != nil {
				return nil, err
			}
		}
		res := Result{Phase: phase, API: cfg.API, Ranks: cfg.Ranks}
		for i := range ranks {
			f, err := read(i, "done")
			if err != nil {
				return nil, err
			}
			if len(f) != 4 {
				return nil, daoserr.Newf(daoserr.Proto, "dfs_perf: rank %d: %q", i, f)
			}
			ops, _ := strconv.ParseInt(f[2], 10, 64)
			b, _ := strconv.ParseInt(f[3], 10, 64)
			res.Ops += ops
			res.Bytes += b
		}
		if phase == "cleanup" {
			break // not timed: the ranks remove what they made once all are done with it
		}
		res.Seconds = time.Since(start).Seconds()
		res.OpsPerS = float64(res.Ops) / res.Seconds
		if res.Bytes > 0 {
			res.MiBPerS = float64(res.Bytes) / (1 << 20) / res.Seconds
		}
		results = append(results, res)
	}
	for i := range ranks {
		ranks[i].in.Close()
		if err := ranks[i].cmd.Wait(); err != nil {
			return nil, daoserr.Newf(daoserr.IO, "dfs_perf: rank %d: %v", i, err)
		}
		ranks[i].cmd = nil
	}
	if cfg.API == "posix" {
		os.Remove(path.Join(cfg.Dir, top)) // the ranks emptied it
	}
	return results, nil
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// RunRank is one rank: it waits for the parent's word before each phase.
func RunRank(ctx context.Context, cfg Config, rank int, top string, in io.Reader, out io.Writer) error {
	err := runRank(ctx, cfg, rank, top, bufio.NewReader(in), out)
	if err != nil {
		fmt.Fprintf(out, "error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	return err
}

func runRank(ctx context.Context, cfg Config, rank int, top string, in *bufio.Reader, out io.Writer) error {
	if err := cfg.check(); err != nil {
		return err
	}
	var b backend = posixBackend{}
	base := cfg.Dir
	if cfg.API == "dfs" {
		d, err := newDFSBackend(ctx, cfg.Pool, cfg.Cont)
		if err != nil {
			return err
		}
		defer d.close()
		b = d
		if base == "" {
			base = "/"
		}
	}
	topDir := path.Join(base, top)
	dir := rankPath(topDir, rank)
	if err := b.mkdirAll(dir); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	wait := func(phase string) error {
		fmt.Fprintf(out, "ready %s\n", phase)
		line, err := in.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "go" {
			return fmt.Errorf("the parent went away before %s", phase)
		}
		return nil
	}
	done := func(phase string, ops, n int64) { fmt.Fprintf(out, "done %s %d %d\n", phase, ops, n) }
	// cleanup removes the rank's files and directory once every rank is
	// done with them (another rank reads them)
	cleanup := func(files ...string) error {
		if err := wait("cleanup"); err != nil {
			return err
		}
		for _, f := range append(files, dir) {
			if err := b.remove(f); err != nil {
				return err
			}
		}
		done("cleanup", 0, 0)
		return nil
	}
	if cfg.Mode == "md" {
		name := func(i int) string { return fmt.Sprintf("%s/f.%d", dir, i) }
		for _, phase := range cfg.Phases() {
			if err := wait(phase); err != nil {
				return err
			}
			for i := 0; i < cfg.Files; i++ {
				var err error
				switch phase {
				case "create":
					var f file
					if f, err = b.create(name(i)); err == nil {
						err = f.close()
					}
				case "stat":
					err = b.stat(name(i))
				case "remove":
					err = b.remove(name(i))
				}
				if err != nil {
					return fmt.Errorf("%s %s: %w", phase, name(i), err)
				}
			}
			done(phase, int64(cfg.Files), 0)
		}
		return cleanup()
	}
	// io: rank r writes its file, then reads rank r+1's (IOR -C), so that
	// nothing it reads is in its own cache
	// every rank fills its transfers alike, so that a reader knows what
	// another rank wrote: the same pseudo-random bytes, stamped with the
	// rank and the block
	buf := make([]byte, cfg.Xfer)
	mrand.NewChaCha8([32]byte{'d', 'f', 's'}).Read(buf)
	want := append([]byte(nil), buf...)
	stamp := func(b []byte, r int, block int64) {
		binary.LittleEndian.PutUint64(b, uint64(r))
		if len(b) >= 16 {
			binary.LittleEndian.PutUint64(b[8:], uint64(block))
		}
	}
	blocks := cfg.FileSize / int64(cfg.Xfer)
	mine := dir + "/data"
	if err := wait("write"); err != nil {
		return err
	}
	f, err := b.create(mine)
	if err != nil {
		return fmt.Errorf("create %s: %w", mine, err)
	}
	for i := int64(0); i < blocks; i++ {
		stamp(buf, rank, i)
		if err := f.writeAt(buf, i*int64(cfg.Xfer)); err != nil {
			return fmt.Errorf("write %s: %w", mine, err)
		}
	}
	if pf, ok := f.(posixFile); ok {
		if err := pf.f.Sync(); err != nil { // as IOR -e: the write phase ends durable
			return err
		}
		// and out of the page cache, so that reads come from the storage
		unix.Fadvise(int(pf.f.Fd()), 0, 0, unix.FADV_DONTNEED)
	}
	if err := f.close(); err != nil {
		return err
	}
	done("write", blocks, cfg.FileSize)
	next := (rank + 1) % cfg.Ranks
	theirs := rankPath(topDir, next) + "/data"
	if err := wait("read"); err != nil {
		return err
	}
	f, err = b.open(theirs)
	if err != nil {
		return fmt.Errorf("open %s: %w", theirs, err)
	}
	for i := int64(0); i < blocks; i++ {
		n, err := f.readAt(buf, i*int64(cfg.Xfer))
		if err != nil && !(err == io.EOF && n == len(buf)) {
			return fmt.Errorf("read %s: %w", theirs, err)
		}
		if n != len(buf) {
			return fmt.Errorf("read %s at %d: %d bytes of %d", theirs, i*int64(cfg.Xfer), n, len(buf))
		}
		if cfg.Verify {
			stamp(want, next, i)
			if !bytes.Equal(buf, want) {
				return fmt.Errorf("read %s: block %d differs from what rank %d wrote (%s)", theirs, i, next, diff(buf, want, func() []byte {
					again := make([]byte, len(buf))
					f.readAt(again, i*int64(cfg.Xfer))
					return again
				}))
			}
		}
	}
	f.close()
	done("read", blocks, cfg.FileSize)
	return cleanup(mine)
}

// diff describes how got differs from want: where, over how many bytes,
// whether they read as zeros, and whether reading again gives want.
func diff(got, want []byte, again func() []byte) string {
	first, last := -1, -1
	for i := range got {
		if got[i] != want[i] {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	zeros := bytes.Count(got[first:last+1], []byte{0}) == last+1-first
	return fmt.Sprintf("bytes %d to %d differ, zeros: %v; read again: equal %v", first, last, zeros, bytes.Equal(again(), want))
}
