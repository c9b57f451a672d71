package daosperf

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/godaos/godaos/internal/rpc/rpcperf"
)

// Raw baselines, measured in the same run in blocks that alternate with the
// phase's (see rounds), so that a phase and its baselines see the machine in
// the same states:
//
//   - raw TCP: one loopback connection on which size-byte buffers are written
//     back to back and read into one buffer (what a fetch's bytes must at
//     least cross);
//   - raw pwrite+fdatasync: the phase's number of writers each writing
//     size bytes at its own slot of one preallocated file in the servers'
//     storage directory and fdatasync-ing it (what an acknowledged-durable
//     update does without group commit, on the same filesystem);
//   - raw batched pwrite+fdatasync: as many writes as the phase has in
//     flight, then one fdatasync for all of them (the filesystem's durable
//     bandwidth with that much data in flight: what a group commit can reach
//     at best).
//
// Both write slots of a file preallocated with fallocate and never written,
// the state of a new pool's data files (ext4 records the first write of a
// block as a metadata change, so rewriting written blocks is faster).

// rawBudget bounds a baseline's duration over a phase's blocks: it is a
// reference, not the run.
const rawBudget = 2 * time.Second

// rawSum adds up a baseline's blocks.
type rawSum struct {
	bytes   float64
	elapsed time.Duration
	cpu     time.Duration // this process's CPU time in the blocks
}

// cpuPer is the CPU time per size bytes, in µs.
func (s *rawSum) cpuPer(size int) float64 {
	if s.bytes <= 0 {
		return 0
	}
	return float64(s.cpu.Microseconds()) * float64(size) / s.bytes
}

func (s *rawSum) add(bytes float64, d time.Duration, err error) error {
	s.bytes += bytes
	s.elapsed += d
	return err
}

func (s *rawSum) mibPerS() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return s.bytes / (1 << 20) / s.elapsed.Seconds()
}

// rawTCP streams one block (of blocks) of size-byte writes over a loopback
// Go TCP connection: the bytes moved and the time taken.
func rawTCP(ctx context.Context, size, blocks int) (float64, time.Duration, error) {
	n := max(50, min(20000, (512<<20)/size)/blocks)
	d, err := rpcperf.RawTCP(ctx, size, n)
	if err != nil {
		return 0, 0, err
	}
	return float64(n) * float64(size), d, nil
}

// rawFile is a raw baseline's file: slots of size bytes, preallocated,
// removed by close.
type rawFile struct {
	f     *os.File
	fd    int
	size  int
	slots int
}

func newRawFile(dir string, size, slots int) (*rawFile, error) {
	f, err := os.CreateTemp(dir, "daos_perf-raw-*")
	if err != nil {
		return nil, fmt.Errorf("raw pwrite+fdatasync in %s: %w", dir, err)
	}
	rf := &rawFile{f: f, fd: int(f.Fd()), size: size, slots: slots}
	total := int64(slots) * int64(size)
	if err := unix.Fallocate(rf.fd, 0, 0, total); err != nil {
		err = f.Truncate(total)
		if err != nil {
			rf.close()
			return nil, fmt.Errorf("raw pwrite+fdatasync: size %s: %w", f.Name(), err)
		}
	}
	if err := f.Sync(); err != nil {
		rf.close()
		return nil, fmt.Errorf("raw pwrite+fdatasync: sync %s: %w", f.Name(), err)
	}
	return rf, nil
}

func (rf *rawFile) close() {
	rf.f.Close()
	os.Remove(rf.f.Name())
}

// rawSlots is how many slots a baseline writes: count, at most 1 GiB.
func rawSlots(size, writers, count int) int { return max(writers, min(count, (1<<30)/size)) }

// rawPwrite runs one block (of blocks) of raw pwrite+fdatasync in dir:
// writers goroutines, each op writing size bytes at its own slot of one
// preallocated file and then fdatasync-ing it, up to count/blocks ops or
// rawBudget/blocks. It returns the bytes written and the time taken.
func rawPwrite(ctx context.Context, dir string, size, writers, count, blocks int) (float64, time.Duration, error) {
	count = max(writers, count/blocks)
	slots := rawSlots(size, writers, count)
	rf, err := newRawFile(dir, size, slots)
	if err != nil {
		return 0, 0, err
	}
	defer rf.close()
	fd := rf.fd
	var next, completed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	deadline := time.Now().Add(rawBudget / time.Duration(blocks))
	start := time.Now()
	for range writers {
		wg.Go(func() {
			buf := make([]byte, size)
			rand.Read(buf)
			for {
				i := int(next.Add(1)) - 1
				if i >= count || firstErr.Load() != nil || ctx.Err() != nil || time.Now().After(deadline) {
					return
				}
				binary.LittleEndian.PutUint64(buf, uint64(i))
				if _, err := rf.f.WriteAt(buf, int64(i%slots)*int64(size)); err == nil {
					if err = unix.Fdatasync(fd); err != nil {
						firstErr.Store(&err)
					}
					completed.Add(1)
				} else {
					firstErr.Store(&err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if e := firstErr.Load(); e != nil {
		return 0, 0, fmt.Errorf("raw pwrite+fdatasync in %s: %w", rf.f.Name(), *e)
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	return float64(completed.Load()) * float64(size), elapsed, nil
}

// rawBatched runs one block (of blocks) of raw batched pwrite+fdatasync in
// dir: batch writes of size bytes to consecutive slots, then one fdatasync,
// up to count/blocks writes or rawBudget/blocks. It returns the bytes written
// and the time taken.
func rawBatched(ctx context.Context, dir string, size, batch, count, blocks int) (float64, time.Duration, error) {
	count = max(batch, count/blocks)
	rf, err := newRawFile(dir, size, rawSlots(size, batch, count))
	if err != nil {
		return 0, 0, err
	}
	defer rf.close()
	buf := make([]byte, size)
	rand.Read(buf)
	deadline := time.Now().Add(rawBudget / time.Duration(blocks))
	start := time.Now()
	done := 0
	for done < count && ctx.Err() == nil && (done == 0 || time.Now().Before(deadline)) {
		for range min(batch, count-done) {
			binary.LittleEndian.PutUint64(buf, uint64(done))
			if _, err := rf.f.WriteAt(buf, int64(done%rf.slots)*int64(size)); err != nil {
				return 0, 0, fmt.Errorf("raw batched pwrite in %s: %w", rf.f.Name(), err)
			}
			done++
		}
		if err := unix.Fdatasync(rf.fd); err != nil {
			return 0, 0, fmt.Errorf("raw batched fdatasync in %s: %w", rf.f.Name(), err)
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	return float64(done) * float64(size), time.Since(start), nil
}
