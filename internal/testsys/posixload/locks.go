package posixload

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fcntl locks belong to a process, so the second locker is a child: the
// test binary itself, re-executed with lockerEnv set, which init turns into
// a small lock server reading commands on stdin (see lockerMain). Any test
// binary that imports this package can therefore run Locks.
const lockerEnv = "GODAOS_POSIXLOAD_LOCKER"

func init() {
	if os.Getenv(lockerEnv) == "1" {
		lockerMain()
		os.Exit(0)
	}
}

const (
	// lockReplyBound bounds every wait for the child (a test that hangs
	// on a lock fails instead).
	lockReplyBound = 30 * time.Second
	// lockObserve is how long a blocked F_SETLKW is watched for a wrong
	// early grant. A slow filesystem can only make the check pass, never
	// fail: it is not a timing assertion.
	lockObserve = 300 * time.Millisecond
)

// Locks checks POSIX byte-range locks (fcntl F_SETLK, F_SETLKW, F_GETLK)
// between this process, using the file through dirA, and a child process
// using the same file through dirB: pass the same directory twice on a local
// filesystem, two mounts of the same container on dfuse. Checked: write
// locks conflict (EAGAIN or EACCES) and adjacent ranges do not, read locks
// share and block writers, F_GETLK reports the conflicting lock's type and
// range (and pid, when both paths are the same file of one filesystem), a
// process's own locks never conflict, unlocking part of a range splits it,
// len 0 locks to EOF and beyond, F_SETLKW waits for the holder to unlock
// (both ways), and locks go when the holder closes any fd of the file or
// exits.
func Locks(t *testing.T, dirA, dirB string) {
	pathA := filepath.Join(dirA, "posixload-locks.dat")
	pathB := filepath.Join(dirB, "posixload-locks.dat")
	if err := os.WriteFile(pathA, make([]byte, 8192), 0o644); err != nil {
		t.Fatalf("creating %s: %v", pathA, err)
	}
	t.Cleanup(func() { os.Remove(pathA) })
	var sa, sb unix.Stat_t
	if err := unix.Stat(pathA, &sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(pathB, &sb); err != nil {
		t.Fatalf("the file created as %s is not visible as %s: %v", pathA, pathB, err)
	}
	if sb.Size != 8192 {
		t.Fatalf("%s is %d bytes through %s, want 8192", pathA, sb.Size, dirB)
	}
	sameFS := sa.Dev == sb.Dev && sa.Ino == sb.Ino
	fd, err := unix.Open(pathA, unix.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open %s: %v", pathA, err)
	}
	p := &parentLocker{t: t, fd: fd}
	t.Cleanup(func() { unix.Close(p.fd) })
	c := startLocker(t)
	c.must("open " + pathB)
	mypid := os.Getpid()

	reset := func(t *testing.T) {
		p.t = t
		c.t = t
		p.setlk(unix.F_UNLCK, 0, 0)
		c.must("setlk u 0 0")
	}
	conflict := func(t *testing.T, reply, what string) {
		t.Helper()
		if reply != "err EAGAIN" && reply != "err EACCES" {
			t.Errorf("%s: %s, want EAGAIN (or EACCES)", what, reply)
		}
	}
	checkLk := func(t *testing.T, reply, what string, typ string, start, length int64, pid int) {
		t.Helper()
		f := strings.Fields(reply)
		if len(f) != 5 || f[0] != "lk" || f[1] != typ || f[2] != fmt.Sprint(start) || f[3] != fmt.Sprint(length) {
			t.Errorf("%s: F_GETLK says %q, want a %s lock at %d len %d", what, reply, typ, start, length)
			return
		}
		got, _ := strconv.Atoi(f[4])
		if sameFS && got != pid {
			t.Errorf("%s: F_GETLK reports pid %d, want the holder %d", what, got, pid)
		} else if !sameFS {
			t.Logf("%s: F_GETLK reports pid %d (holder %d; through another mount a pid may differ)", what, got, pid)
		}
	}

	t.Run("WriteConflict", func(t *testing.T) {
		reset(t)
		p.mustLock(unix.F_WRLCK, 0, 100)
		conflict(t, c.do("setlk w 50 10"), "child write lock inside the parent's")
		conflict(t, c.do("setlk r 99 1"), "child read lock on the parent's last byte")
		conflict(t, c.do("setlk w 0 0"), "child whole-file write lock")
		if r := c.do("setlk w 100 100"); r != "ok" {
			t.Errorf("child write lock adjacent to the parent's: %s", r)
		}
		if err := p.setlk(unix.F_WRLCK, 150, 10); err != unix.EAGAIN && err != unix.EACCES {
			t.Errorf("parent write lock inside the child's: %v, want EAGAIN", err)
		}
		// A process's own locks never conflict: relocking and extending work.
		p.mustLock(unix.F_WRLCK, 0, 100)
		p.mustLock(unix.F_RDLCK, 10, 20)
	})

	t.Run("GetLk", func(t *testing.T) {
		reset(t)
		p.mustLock(unix.F_WRLCK, 0, 100)
		checkLk(t, c.do("getlk w 50 10"), "write lock held by the parent", "w", 0, 100, mypid)
		checkLk(t, c.do("getlk r 0 1"), "write lock held by the parent, asked for reading", "w", 0, 100, mypid)
		if r := c.do("getlk w 200 10"); r != "unlck" {
			t.Errorf("F_GETLK on a free range: %s, want unlck", r)
		}
		if typ, _, _, _ := p.getlk(unix.F_WRLCK, 0, 100); typ != unix.F_UNLCK {
			t.Errorf("F_GETLK on the parent's own lock reports type %d: a process's own locks never conflict", typ)
		}
		p.mustLock(unix.F_RDLCK, 300, 100)
		if r := c.do("getlk r 300 10"); r != "unlck" {
			t.Errorf("F_GETLK for reading over a read lock: %s, want unlck", r)
		}
		checkLk(t, c.do("getlk w 350 10"), "read lock held by the parent", "r", 300, 100, mypid)
		// And the other way.
		if r := c.do("setlk w 1000 50"); r != "ok" {
			t.Fatalf("child write lock: %s", r)
		}
		typ, start, length, pid := p.getlk(unix.F_RDLCK, 1010, 1)
		if typ != unix.F_WRLCK || start != 1000 || length != 50 {
			t.Errorf("parent F_GETLK over the child's lock: type %d at %d len %d, want a write lock at 1000 len 50", typ, start, length)
		}
		if sameFS && pid != c.pid {
			t.Errorf("parent F_GETLK reports pid %d, want the child %d", pid, c.pid)
		}
	})

	t.Run("ReadShared", func(t *testing.T) {
		reset(t)
		p.mustLock(unix.F_RDLCK, 0, 100)
		if r := c.do("setlk r 50 100"); r != "ok" {
			t.Errorf("child read lock over the parent's read lock: %s", r)
		}
		conflict(t, c.do("setlk w 50 10"), "child upgrade to a write lock while the parent reads")
		if err := p.setlk(unix.F_WRLCK, 0, 100); err != unix.EAGAIN && err != unix.EACCES {
			t.Errorf("parent upgrade to a write lock while the child reads [50,150): %v, want EAGAIN", err)
		}
		p.mustLock(unix.F_WRLCK, 0, 50) // no overlap with the child's
		c.must("setlk u 0 0")
		p.mustLock(unix.F_WRLCK, 0, 100)
	})

	t.Run("Split", func(t *testing.T) {
		reset(t)
		p.mustLock(unix.F_WRLCK, 0, 300)
		p.mustLock(unix.F_UNLCK, 100, 100)
		if r := c.do("setlk w 100 100"); r != "ok" {
			t.Errorf("child lock of the range the parent unlocked: %s", r)
		}
		conflict(t, c.do("setlk w 50 10"), "child lock of the first remaining part")
		conflict(t, c.do("setlk w 250 10"), "child lock of the second remaining part")
		checkLk(t, c.do("getlk w 250 10"), "second remaining part", "w", 200, 100, mypid)
	})

	t.Run("ToEOF", func(t *testing.T) {
		reset(t)
		p.mustLock(unix.F_WRLCK, 4096, 0) // from 4096 to EOF and beyond
		conflict(t, c.do("setlk w 1099511627776 1"), "child lock 1 TiB past the parent's len-0 lock")
		checkLk(t, c.do("getlk r 9000 1"), "len-0 lock", "w", 4096, 0, mypid)
		if r := c.do("setlk w 0 4096"); r != "ok" {
			t.Errorf("child lock below the parent's len-0 lock: %s", r)
		}
	})

	t.Run("SetLkWWaits", func(t *testing.T) {
		reset(t)
		p.mustLock(unix.F_WRLCK, 1000, 100)
		c.send("setlkw w 1050 10")
		if r, ok := c.reply(lockObserve); ok {
			t.Fatalf("the child's F_SETLKW returned %q while the parent held the range", r)
		}
		p.mustLock(unix.F_UNLCK, 1000, 100)
		r, ok := c.reply(lockReplyBound)
		if !ok {
			t.Fatalf("the child's F_SETLKW was not granted within %v of the parent's unlock", lockReplyBound)
		}
		if r != "ok" {
			t.Fatalf("the child's F_SETLKW: %s", r)
		}
		if err := p.setlk(unix.F_WRLCK, 1055, 1); err != unix.EAGAIN && err != unix.EACCES {
			t.Errorf("parent lock inside the range the child waited for: %v, want EAGAIN", err)
		}
		// The other way: the parent waits for the child.
		done := make(chan error, 1)
		go func() { done <- p.setlkw(unix.F_RDLCK, 1040, 40) }()
		select {
		case err := <-done:
			t.Fatalf("the parent's F_SETLKW returned (%v) while the child held the range", err)
		case <-time.After(lockObserve):
		}
		c.must("setlk u 1050 10")
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("the parent's F_SETLKW: %v", err)
			}
		case <-time.After(lockReplyBound):
			t.Fatalf("the parent's F_SETLKW was not granted within %v of the child's unlock", lockReplyBound)
		}
		conflict(t, c.do("setlk w 1050 1"), "child write lock over the read lock the parent waited for")
	})

	t.Run("WrongMode", func(t *testing.T) {
		reset(t)
		ro, err := unix.Open(pathA, unix.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 1}
		if err := unix.FcntlFlock(uintptr(ro), unix.F_SETLK, &lk); err != unix.EBADF {
			t.Errorf("write lock through a read-only fd: %v, want EBADF", err)
		}
		unix.Close(ro) // drops the parent's locks on the file: none held here
	})

	t.Run("UnlockOnClose", func(t *testing.T) {
		reset(t)
		if r := c.do("setlk w 2000 100"); r != "ok" {
			t.Fatalf("child lock: %s", r)
		}
		if err := p.setlk(unix.F_WRLCK, 2000, 100); err == nil {
			t.Fatalf("parent locked the child's range")
		}
		c.must("close")
		if err := p.setlk(unix.F_WRLCK, 2000, 100); err != nil {
			t.Errorf("parent lock after the child closed its fd: %v", err)
		}
		c.must("open " + pathB)
		// Closing any fd of the file drops the process's locks on it, not
		// only the fd the lock was taken through.
		p.mustLock(unix.F_WRLCK, 3000, 100)
		conflict(t, c.do("setlk w 3000 100"), "child lock of the parent's range")
		other, err := unix.Open(pathA, unix.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(other)
		if r := c.do("setlk w 3000 100"); r != "ok" {
			t.Errorf("child lock after the parent closed another fd of the file: %s (the parent's locks should be gone)", r)
		}
	})

	t.Run("UnlockOnExit", func(t *testing.T) {
		reset(t)
		if r := c.do("setlk w 5000 100"); r != "ok" {
			t.Fatalf("child lock: %s", r)
		}
		if err := p.setlk(unix.F_WRLCK, 5000, 100); err == nil {
			t.Fatalf("parent locked the child's range")
		}
		c.kill()
		if err := p.setlk(unix.F_WRLCK, 5000, 100); err != nil {
			t.Errorf("parent lock after the child was killed: %v", err)
		}
	})
}

// parentLocker locks through fd in this process.
type parentLocker struct {
	t  *testing.T
	fd int
}

func (p *parentLocker) setlk(typ int16, start, length int64) error {
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: start, Len: length}
	return unix.FcntlFlock(uintptr(p.fd), unix.F_SETLK, &lk)
}

func (p *parentLocker) setlkw(typ int16, start, length int64) error {
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: start, Len: length}
	for {
		err := unix.FcntlFlock(uintptr(p.fd), unix.F_SETLKW, &lk)
		if err != unix.EINTR {
			return err
		}
	}
}

func (p *parentLocker) mustLock(typ int16, start, length int64) {
	p.t.Helper()
	if err := p.setlk(typ, start, length); err != nil {
		p.t.Fatalf("parent F_SETLK type %d at %d len %d: %v", typ, start, length, err)
	}
}

func (p *parentLocker) getlk(typ int16, start, length int64) (int16, int64, int64, int) {
	p.t.Helper()
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: start, Len: length}
	if err := unix.FcntlFlock(uintptr(p.fd), unix.F_GETLK, &lk); err != nil {
		p.t.Fatalf("parent F_GETLK: %v", err)
	}
	return lk.Type, lk.Start, lk.Len, int(lk.Pid)
}

// childLocker drives the re-executed test binary.
type childLocker struct {
	t       *testing.T
	cmd     *exec.Cmd
	in      io.WriteCloser
	replies chan string
	pid     int
}

func startLocker(t *testing.T) *childLocker {
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("posixload.Locks: finding the test binary to re-execute: %v", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), lockerEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("posixload.Locks: starting the second locker (%s): %v", exe, err)
	}
	c := &childLocker{t: t, cmd: cmd, in: in, replies: make(chan string, 16), pid: cmd.Process.Pid}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.replies <- sc.Text()
		}
		close(c.replies)
	}()
	t.Cleanup(c.kill)
	if r := c.do("pid"); r != fmt.Sprintf("pid %d", c.pid) {
		t.Fatalf("posixload.Locks: the second locker answers %q to pid: is %s's init reached? (it must import posixload)", r, exe)
	}
	return c
}

func (c *childLocker) send(cmd string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, cmd+"\n"); err != nil {
		c.t.Fatalf("posixload.Locks: sending %q to the child: %v", cmd, err)
	}
}

// reply waits up to d for the child's next reply.
func (c *childLocker) reply(d time.Duration) (string, bool) {
	select {
	case r, ok := <-c.replies:
		if !ok {
			c.t.Fatalf("posixload.Locks: the child locker exited")
		}
		return r, true
	case <-time.After(d):
		return "", false
	}
}

func (c *childLocker) do(cmd string) string {
	c.t.Helper()
	c.send(cmd)
	r, ok := c.reply(lockReplyBound)
	if !ok {
		c.t.Fatalf("posixload.Locks: the child did not answer %q within %v", cmd, lockReplyBound)
	}
	return r
}

func (c *childLocker) must(cmd string) {
	c.t.Helper()
	if r := c.do(cmd); r != "ok" {
		c.t.Fatalf("posixload.Locks: child %q: %s", cmd, r)
	}
}

func (c *childLocker) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
}

// lockerMain serves lock commands on stdin, one reply line each on stdout:
//
//	pid                         -> pid N
//	open PATH                   -> ok | err ERRNO
//	close                       -> ok
//	setlk|setlkw r|w|u START LEN -> ok | err ERRNO (setlkw replies once granted)
//	getlk r|w START LEN         -> unlck | lk r|w START LEN PID
func lockerMain() {
	fd := -1
	types := map[string]int16{"r": unix.F_RDLCK, "w": unix.F_WRLCK, "u": unix.F_UNLCK}
	names := map[int16]string{unix.F_RDLCK: "r", unix.F_WRLCK: "w"}
	errReply := func(err error) string {
		if e, ok := err.(unix.Errno); ok {
			return "err " + unix.ErrnoName(e)
		}
		return "err " + err.Error()
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		reply := "err bad command"
		switch {
		case len(f) == 1 && f[0] == "pid":
			reply = fmt.Sprintf("pid %d", os.Getpid())
		case len(f) == 2 && f[0] == "open":
			var err error
			if fd, err = unix.Open(f[1], unix.O_RDWR, 0); err != nil {
				reply = errReply(err)
			} else {
				reply = "ok"
			}
		case len(f) == 1 && f[0] == "close":
			unix.Close(fd)
			fd, reply = -1, "ok"
		case len(f) == 4 && (f[0] == "setlk" || f[0] == "setlkw" || f[0] == "getlk"):
			typ, ok := types[f[1]]
			start, err1 := strconv.ParseInt(f[2], 10, 64)
			length, err2 := strconv.ParseInt(f[3], 10, 64)
			if !ok || err1 != nil || err2 != nil {
				break
			}
			lk := unix.Flock_t{Type: typ, Whence: 0, Start: start, Len: length}
			cmd := map[string]int{"setlk": unix.F_SETLK, "setlkw": unix.F_SETLKW, "getlk": unix.F_GETLK}[f[0]]
			var err error
			for {
				if err = unix.FcntlFlock(uintptr(fd), cmd, &lk); err != unix.EINTR {
					break
				}
			}
			switch {
			case err != nil:
				reply = errReply(err)
			case cmd != unix.F_GETLK:
				reply = "ok"
			case lk.Type == unix.F_UNLCK:
				reply = "unlck"
			default:
				reply = fmt.Sprintf("lk %s %d %d %d", names[lk.Type], lk.Start, lk.Len, lk.Pid)
			}
		}
		fmt.Println(reply)
	}
}
