package vos

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Crash test: a child process writes and prints "ACK <key>" after each update is
// acknowledged; the parent SIGKILLs it at a random moment, sometimes appends a torn
// record to the log, reopens the target and checks that every acknowledged update
// is there, byte for byte, and that nothing else appeared.

const crashChildEnv = "GODAOS_VOS_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir, os.Getenv("GODAOS_VOS_CRASH_ROUND"))
		return
	}
	os.Exit(m.Run())
}

var crashCont = UUIDFromUint64(0xc0ffee)

// crashValue is the only value ever written under key: anything else read back
// is corruption.
func crashValue(key string) (data []byte, array bool) {
	h := fnv.New64a()
	h.Write([]byte(key))
	r := rand.New(rand.NewPCG(h.Sum64(), 1))
	sizes := []int{1, 17, 300, 4095, 4096, 9000, 70000}
	data = make([]byte, sizes[r.IntN(len(sizes))])
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return data, r.IntN(2) == 0
}

func crashIOD(key string) (IOD, []byte) {
	data, array := crashValue(key)
	if array {
		return IOD{Akey: []byte("x"), Type: IODArray, Size: 1, Recxs: []Recx{{0, uint64(len(data))}}}, data
	}
	return IOD{Akey: []byte("v"), Type: IODSingle, Size: uint64(len(data))}, data
}

func crashChild(dir, round string) {
	p, err := Open(dir, Options{CheckpointBytes: 256 << 10})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	ack := func(s string) {
		mu.Lock()
		fmt.Fprintln(out, s)
		out.Flush()
		mu.Unlock()
	}
	ack("READY")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 100000; n++ {
				key := fmt.Sprintf("r%s-g%d-%06d", round, g, n)
				iod, data := crashIOD(key)
				// epochs only grow: round, then a per-writer sequence
				var rn int
				fmt.Sscan(round, &rn)
				e := Epoch(rn)<<32 | Epoch(n+1)
				if err := p.Update(crashCont, OID{Lo: uint64(g)}, e, 0, []byte(key), []IOD{iod}, []SGL{{data}}); err != nil {
					ack("ERR " + err.Error())
					return
				}
				ack("ACK " + key)
			}
		}()
	}
	wg.Wait()
	p.Close()
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test starts 50 child processes; skipped with -short")
	}
	rounds := 50
	seed := time.Now().UnixNano()
	if s := os.Getenv("GODAOS_CRASH_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (rerun with GODAOS_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 2))

	dir := t.TempDir()
	if err := Format(dir, FormatOptions{ScmSize: 1 << 30, NvmeSize: 2 << 30}); err != nil {
		t.Fatal(err)
	}
	p, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CreateContainer(crashCont, ContOptions{}); err != nil {
		t.Fatal(err)
	}
	p.Close()

	acked := map[string]bool{}
	totalCut := int64(0)
	for round := 1; round <= rounds; round++ {
		newAcks := crashRound(t, dir, round, time.Duration(rng.IntN(60))*time.Millisecond)
		for _, k := range newAcks {
			acked[k] = true
		}
		// In a third of the rounds, simulate a torn write after the last record.
		var garbage int
		var tornSeg string
		var tornAt int64
		if rng.IntN(3) == 0 {
			tornSeg, tornAt, garbage = tearLogTail(t, dir, rng)
		}
		p, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		info := p.Query()
		// The cut must start at the torn record and clear everything after it: the
		// torn bytes and whatever part of a batch the killed writer had got out.
		// (Nothing before it is lost: checkCrashState verifies every ack.)
		if garbage > 0 {
			b, err := os.ReadFile(tornSeg)
			if err != nil {
				t.Fatal(err)
			}
			if info.TruncatedBytes == 0 || tornBytes(b[tornAt:]) != 0 {
				t.Fatalf("round %d: wrote %d torn bytes at %d; open cut %d and left %d non-zero bytes after it",
					round, garbage, tornAt, info.TruncatedBytes, tornBytes(b[tornAt:]))
			}
		}
		totalCut += info.TruncatedBytes
		checkCrashState(t, p, round, acked)
		p.Close()
	}
	t.Logf("%d kill points, %d acknowledged updates verified, %d torn bytes cut", rounds, len(acked), totalCut)
}

// crashRound runs the child, kills it after delay, and returns the keys it acknowledged.
func crashRound(t *testing.T, dir string, round int, delay time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("GODAOS_VOS_CRASH_ROUND=%d", round))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "READY" && first:
				close(ready)
				first = false
			case strings.HasPrefix(line, "ACK "):
				keys = append(keys, line[4:])
			case strings.HasPrefix(line, "ERR"):
				done <- fmt.Errorf("child: %s", line)
				return
			}
		}
		done <- nil
	}()
	select {
	case <-ready:
	case err := <-done:
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("round %d: child failed before ready: %v", round, err)
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("round %d: child not ready in 60s", round)
	}
	time.Sleep(delay)
	cmd.Process.Kill() // SIGKILL
	err = <-done
	cmd.Wait()
	if err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	return keys
}

// tearLogTail appends a partial or corrupt record to the active log segment, as a
// crash in the middle of a write would leave, and returns its length.
// tearLogTail writes a torn record after the last intact one of the last log
// segment and returns the segment, the offset and the torn length.
func tearLogTail(t *testing.T, dir string, rng *rand.Rand) (string, int64, int) {
	segs, err := segments(dir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("no log segments: %v", err)
	}
	path := filepath.Join(dir, segName(segs[len(segs)-1]))
	// a real record for a key that was never acknowledged, torn somewhere
	o := &op{kind: opUpdate, seq: 1 << 62, cont: crashCont, oid: OID{Lo: 99}, epoch: 1 << 60, dkey: []byte("never-acked"),
		vals: []valueRec{{akey: []byte("v"), typ: IODSingle, rsize: 5, buf: []byte("ghost\x00\x00\x00\x00")}}}
	rec := appendRecord(nil, o)
	var tail []byte
	switch rng.IntN(3) {
	case 0: // cut short, losing at least one non-zero byte: the segment is
		// zero-filled, so a record missing only trailing zeros is not torn at all
		tail = rec[:1+rng.IntN(tornBytes(rec)-1)]
	case 1: // whole length, one byte flipped
		tail = bytes.Clone(rec)
		tail[recHeader+rng.IntN(len(rec)-recHeader)] ^= 0x40
	default: // random garbage
		tail = make([]byte, 1+rng.IntN(64))
		for i := range tail {
			tail[i] = byte(rng.Uint32())
		}
	}
	// where the next record would have gone: after the last intact one
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := 0
	for {
		_, n, err := readRecord(b[end:])
		if err != nil {
			break
		}
		end += n
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(tail, int64(end)); err != nil {
		t.Fatal(err)
	}
	return path, int64(end), len(tail)
}

func checkCrashState(t *testing.T, p *Pool, round int, acked map[string]bool) {
	t.Helper()
	found := map[string]bool{}
	objs, err := p.ListObjects(crashCont, EpochMax, &Anchor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, oid := range objs {
		if oid.Lo >= 8 {
			t.Fatalf("round %d: object %s was never written", round, oid)
		}
		keys, err := p.ListDkeys(crashCont, oid, EpochMax, &Anchor{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			key := string(k)
			iod, want := crashIOD(key)
			got := make([]byte, len(want))
			res, err := p.Fetch(crashCont, oid, EpochMax, 0, k, []IOD{iod}, []SGL{{got}})
			if err != nil {
				t.Fatalf("round %d: fetch %s: %v", round, key, err)
			}
			if (iod.Type == IODSingle && res[0].Size != uint64(len(want))) || !bytes.Equal(got, want) {
				t.Fatalf("round %d: key %s holds data that was never written", round, key)
			}
			found[key] = true
		}
	}
	for k := range acked {
		if !found[k] {
			t.Fatalf("round %d: acknowledged update %s is lost", round, k)
		}
	}
}
