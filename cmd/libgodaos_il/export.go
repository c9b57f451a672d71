//go:build cgo

package main

/*
#include <stdint.h>
#include <sys/types.h>
*/
import "C"

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/daos/il"
	"github.com/godaos/godaos/internal/daoserr"
)

// The C functions the shim calls. Errors are negative errnos. Buffers are
// the caller's (C memory): they are used in place and not kept after the
// call returns.

// ioMax is the most one call moves, as the kernel's read and write.
const ioMax = 0x7ffff000

var debug = os.Getenv("GODAOS_IL_DEBUG") != ""

func logf(format string, args ...any) {
	if debug {
		fmt.Fprintf(os.Stderr, "godaos_il[%d]: "+format+"\n", append([]any{os.Getpid()}, args...)...)
	}
}

// The process's client, connected once, and its containers, each opened
// once (DAOS's libioil also keeps one handle per container).
var (
	mu      sync.Mutex // the client and containers (held while attaching)
	client  *daos.Client
	initErr error
	conts   = map[[32]byte]*contEntry{}

	hmu     sync.RWMutex // the open arrays, looked up by every read and write
	handles = map[int64]*daos.ArrayObj{}
	nextH   int64
)

type contEntry struct {
	pool *daos.Pool
	cont *daos.Cont
	rw   bool
	err  error
}

func errnoOf(err error) C.int {
	e := dfs.Errno(err)
	if e == 0 {
		e = syscall.EIO
	}
	return -C.int(e)
}

// attach opens (once) the container; a container the user may not write is
// opened read-only, and then only files opened for reading are intercepted.
func attach(ctx context.Context, pool, cont [16]byte) (*contEntry, error) {
	var key [32]byte
	copy(key[:16], pool[:])
	copy(key[16:], cont[:])
	mu.Lock()
	defer mu.Unlock()
	if e, ok := conts[key]; ok {
		return e, e.err
	}
	if client == nil && initErr == nil {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		if debug {
			log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
		client, initErr = daos.Init(ctx, daos.Options{Logger: log})
	}
	if initErr != nil {
		return nil, initErr
	}
	e := &contEntry{}
	conts[key] = e
	e.pool, e.err = client.PoolConnect(ctx, il.FormatUUID(pool), daos.RW)
	if daoserr.Is(e.err, daoserr.NoPerm) {
		e.pool, e.err = client.PoolConnect(ctx, il.FormatUUID(pool), daos.RO)
	}
	if e.err != nil {
		return e, e.err
	}
	e.cont, e.err = e.pool.ContOpen(ctx, il.FormatUUID(cont), daos.RW)
	e.rw = e.err == nil
	if daoserr.Is(e.err, daoserr.NoPerm) {
		e.cont, e.err = e.pool.ContOpen(ctx, il.FormatUUID(cont), daos.RO)
	}
	return e, e.err
}

func uuidOf(p *C.uint8_t) (u [16]byte) {
	copy(u[:], unsafe.Slice((*byte)(unsafe.Pointer(p)), 16))
	return u
}

//export godaos_il_open
func godaos_il_open(pool, cont *C.uint8_t, oidHi, oidLo, chunk C.uint64_t, writable C.int, out *C.int64_t) C.int {
	ctx := context.Background()
	e, err := attach(ctx, uuidOf(pool), uuidOf(cont))
	if err != nil {
		logf("container %s/%s: %v", il.FormatUUID(uuidOf(pool)), il.FormatUUID(uuidOf(cont)), err)
		return errnoOf(err)
	}
	if writable != 0 && !e.rw {
		return -C.int(syscall.EPERM)
	}
	a, err := e.cont.ArrayOpenWithAttr(daos.OID{Hi: uint64(oidHi), Lo: uint64(oidLo)}, 1, uint64(chunk))
	if err != nil {
		logf("open: %v", err)
		return errnoOf(err)
	}
	hmu.Lock()
	nextH++
	h := nextH
	handles[h] = a
	hmu.Unlock()
	*out = C.int64_t(h)
	return 0
}

func handle(h C.int64_t) *daos.ArrayObj {
	hmu.RLock()
	defer hmu.RUnlock()
	return handles[int64(h)]
}

func buffer(buf unsafe.Pointer, n C.size_t) []byte {
	return unsafe.Slice((*byte)(buf), min(uint64(n), ioMax))
}

// godaos_il_pread reads as dfs_read does: short only at the end of the
// file, holes read as zeros.
//
//export godaos_il_pread
func godaos_il_pread(h C.int64_t, buf unsafe.Pointer, n C.size_t, off C.int64_t) C.ssize_t {
	a := handle(h)
	if a == nil {
		return -C.ssize_t(syscall.EBADF)
	}
	if off < 0 {
		return -C.ssize_t(syscall.EINVAL)
	}
	if n == 0 {
		return 0
	}
	ctx := context.Background()
	b := buffer(buf, n)
	end, err := a.ReadAt(ctx, b, uint64(off))
	if err != nil {
		logf("read: %v", err)
		return C.ssize_t(errnoOf(err))
	}
	if end == uint64(off)+uint64(len(b)) {
		return C.ssize_t(len(b))
	}
	// the range ends in a hole: the file may end there, or go on past it
	size, err := a.GetSize(ctx)
	if err != nil {
		logf("size: %v", err)
		return C.ssize_t(errnoOf(err))
	}
	if size <= uint64(off) {
		return 0
	}
	return C.ssize_t(min(size-uint64(off), uint64(len(b))))
}

//export godaos_il_pwrite
func godaos_il_pwrite(h C.int64_t, buf unsafe.Pointer, n C.size_t, off C.int64_t) C.ssize_t {
	a := handle(h)
	if a == nil {
		return -C.ssize_t(syscall.EBADF)
	}
	b := buffer(buf, n)
	if off < 0 || uint64(off)+uint64(len(b)) < uint64(off) {
		return -C.ssize_t(syscall.EINVAL)
	}
	if len(b) == 0 {
		return 0
	}
	if err := a.Write(context.Background(), []daos.ArrayRange{{Idx: uint64(off), Len: uint64(len(b))}}, [][]byte{b}); err != nil {
		logf("write: %v", err)
		return C.ssize_t(errnoOf(err))
	}
	return C.ssize_t(len(b))
}

//export godaos_il_size
func godaos_il_size(h C.int64_t, out *C.uint64_t) C.int {
	a := handle(h)
	if a == nil {
		return -C.int(syscall.EBADF)
	}
	size, err := a.GetSize(context.Background())
	if err != nil {
		logf("size: %v", err)
		return errnoOf(err)
	}
	*out = C.uint64_t(size)
	return 0
}

//export godaos_il_close
func godaos_il_close(h C.int64_t) C.int {
	hmu.Lock()
	a := handles[int64(h)]
	delete(handles, int64(h))
	hmu.Unlock()
	if a == nil {
		return -C.int(syscall.EBADF)
	}
	a.Close()
	return 0
}

// godaos_il_fini closes the containers and pools and the client, at the
// process's exit, bounded so that an unreachable system does not hold the
// exit up.
//
//export godaos_il_fini
func godaos_il_fini() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mu.Lock()
	defer mu.Unlock()
	for k, e := range conts {
		if e.cont != nil {
			e.cont.Close(ctx)
		}
		if e.pool != nil {
			e.pool.Disconnect(ctx)
		}
		delete(conts, k)
	}
	if client != nil {
		client.Fini()
		client = nil
	}
	initErr = daoserr.New(daoserr.Shutdown, "the interception library has been finalized")
}
