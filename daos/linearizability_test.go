package daos

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/godaos/godaos/internal/testsys/cluster"
)

// The linearizability test's keys: under each (object, dkey) a single value
// "sv" and an array "arr" of linRecs records of 8 bytes. Each (object, dkey)
// is one register of the model (one porcupine partition): VOS updates one
// dkey atomically, so a fetch of both akeys must see whole updates only.
const (
	linClients = 16
	linOps     = 200 // per client
	linDkeys   = 8   // per object: about one operation at a time per key, bursts of several
	linRecs    = 8
)

// linState is one (object, dkey): its single value (0: none yet) and its
// records (0: a hole). Values are unique per update, so a read names the
// update it saw.
type linState struct {
	sv  uint64
	arr [linRecs]uint64
}

// linInput is one operation: an update (sv and/or the records of recx) or a
// fetch (sv and the records of recx).
type linInput struct {
	key    string // object/dkey: the partition
	update bool
	sv     bool   // the op writes or reads the single value
	recx   Recx   // the records written or read (Nr 0: none)
	val    uint64 // update: the value of sv, and the base of the records' values
	client int
}

// linOutput is what an operation returned: for a fetch, the values seen; for
// an update, the epoch it was stamped with (for reports).
type linOutput struct {
	sv    uint64
	arr   [linRecs]uint64 // only the records of the input's recx
	epoch uint64
}

// recVal is record i's value in the update of value v: every record of every
// update is different, so a read shows exactly which update each came from.
func recVal(v uint64, i uint64) uint64 { return v<<8 | (i + 1) }

// linModel is a register per (object, dkey) holding linState.
var linModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(linInput).key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		slices.Sort(keys)
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return linState{} },
	Hash: func(state any) uint64 {
		st := state.(linState)
		h := st.sv * 0x9e3779b97f4a7c15
		for _, v := range st.arr {
			h = (h ^ v) * 0x100000001b3
		}
		return h
	},
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(linState), input.(linInput), output.(linOutput)
		if in.update {
			if in.sv {
				st.sv = in.val
			}
			for i := in.recx.Idx; i < in.recx.Idx+in.recx.Nr; i++ {
				st.arr[i] = recVal(in.val, i)
			}
			return true, st
		}
		if in.sv && out.sv != st.sv {
			return false, st
		}
		for i := in.recx.Idx; i < in.recx.Idx+in.recx.Nr; i++ {
			if out.arr[i] != st.arr[i] {
				return false, st
			}
		}
		return true, st
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		if in.update {
			return fmt.Sprintf("c%d update %s sv=%v recx=%v val=%d epoch=%d", in.client, in.key, in.sv, in.recx, in.val, out.epoch)
		}
		return fmt.Sprintf("c%d fetch %s sv=%v recx=%v -> sv=%d arr=%v", in.client, in.key, in.sv, in.recx, out.sv, out.arr)
	},
	DescribeState: func(state any) string {
		st := state.(linState)
		return fmt.Sprintf("sv=%d arr=%v", st.sv, st.arr)
	},
}

// linNext draws client id's n-th operation on one of the objects names.
func linNext(rng *rand.Rand, id, n int, names []string) (obj, dkey string, in linInput) {
	obj, dkey = names[rng.IntN(len(names))], fmt.Sprintf("k%d", rng.IntN(linDkeys))
	// 40% updates; fetches mostly of the whole array, which pins the
	// register's state down and keeps the checker's search short
	in = linInput{key: obj + "/" + dkey, client: id, update: rng.IntN(5) < 2}
	idx := rng.Uint64N(linRecs)
	in.recx = Recx{Idx: idx, Nr: 1 + rng.Uint64N(linRecs-idx)}
	if !in.update {
		in.sv = rng.IntN(4) != 0
		if rng.IntN(4) != 0 {
			in.recx = Recx{Idx: 0, Nr: linRecs}
		}
		return obj, dkey, in
	}
	in.val = uint64(id+1)<<32 | uint64(n+1)
	switch rng.IntN(3) { // the single value, the records, or both
	case 0:
		in.sv, in.recx = true, Recx{}
	case 1:
		in.sv = false
	default:
		in.sv = true
	}
	return obj, dkey, in
}

// linRun performs in on o under dkey (svBuf and arrBuf are the client's
// buffers) and returns what it saw.
func linRun(ctx context.Context, o *Obj, dkey string, in linInput, svBuf, arrBuf []byte) (linOutput, error) {
	var out linOutput
	var iods []IOD
	var bufs [][]byte
	clear(svBuf) // a fetch of a missing value leaves it as it is
	if in.sv {
		if in.update {
			binary.LittleEndian.PutUint64(svBuf, in.val)
		}
		iods, bufs = append(iods, IOD{Akey: []byte("sv"), Type: Single, Size: 8}), append(bufs, svBuf)
	}
	if in.recx.Nr > 0 {
		b := arrBuf[:8*in.recx.Nr]
		if in.update {
			for i := range in.recx.Nr {
				binary.LittleEndian.PutUint64(b[8*i:], recVal(in.val, in.recx.Idx+i))
			}
		}
		iods, bufs = append(iods, IOD{Akey: []byte("arr"), Type: Array, Size: 8, Recxs: []Recx{in.recx}}), append(bufs, b)
	}
	if in.update {
		var err error
		out.epoch, err = o.Update(ctx, []byte(dkey), iods, bufs)
		return out, err
	}
	res, err := o.Fetch(ctx, []byte(dkey), iods, bufs)
	if err != nil {
		return out, err
	}
	if in.sv && res[0].Size != 0 {
		out.sv = binary.LittleEndian.Uint64(svBuf)
	}
	for i := range in.recx.Nr {
		out.arr[in.recx.Idx+i] = binary.LittleEndian.Uint64(arrBuf[8*i:])
	}
	return out, nil
}

// linClient runs one client's operations on objs (by name) and returns its
// history, with call and return times from start on the monotonic clock.
func linClient(ctx context.Context, id int, rng *rand.Rand, objs map[string]*Obj, names []string, start time.Time) ([]porcupine.Operation, error) {
	var hist []porcupine.Operation
	svBuf, arrBuf := make([]byte, 8), make([]byte, 8*linRecs)
	for n := range linOps {
		obj, dkey, in := linNext(rng, id, n, names)
		call := time.Since(start).Nanoseconds()
		out, err := linRun(ctx, objs[obj], dkey, in, svBuf, arrBuf)
		ret := time.Since(start).Nanoseconds()
		if err != nil {
			return hist, fmt.Errorf("client %d op %d (%s): %w", id, n, linModel.DescribeOperation(in, out), err)
		}
		hist = append(hist, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
	}
	return hist, nil
}

// TestLinearizability: 16 clients of their own update and fetch overlapping
// keys of an S1 and an SX object on a 3-server system; every fetch must be
// explained by some serial order of the updates that respects real time
// (porcupine, a register per object and dkey).
func TestLinearizability(t *testing.T) {
	began := time.Now()
	sys := cluster.Start(t, cluster.Options{Servers: 3, Targets: 2})
	t.Logf("system up in %v", time.Since(began).Round(time.Millisecond))
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	setup, err := Init(ctx, Options{AgentSocket: sys.AgentSocket, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { setup.Fini() })
	p, err := setup.PoolConnect(ctx, sys.Pool, RW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ContCreate(ctx, ContCreateOptions{Label: "lin"}); err != nil {
		t.Fatal(err)
	}
	h, err := p.ContOpen(ctx, "lin", RW)
	if err != nil {
		t.Fatal(err)
	}
	oids := map[string]OID{}
	for name, class := range map[string]ClassID{"S1": S1, "SX": SX} {
		if oids[name], err = h.GenerateOID(ctx, class, OTMultiHashed); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"S1", "SX"}

	// every client connects and opens first, then all start together
	type clientObjs struct {
		c    *Client
		objs map[string]*Obj
	}
	clients := make([]clientObjs, linClients)
	for i := range clients {
		c, err := Init(ctx, Options{AgentSocket: sys.AgentSocket, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Fini() })
		p, err := c.PoolConnect(ctx, sys.Pool, RW)
		if err != nil {
			t.Fatal(err)
		}
		h, err := p.ContOpen(ctx, "lin", RW)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = clientObjs{c: c, objs: map[string]*Obj{}}
		for _, name := range names {
			if clients[i].objs[name], err = h.Obj(oids[name]); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Logf("%d clients ready in %v", linClients, time.Since(began).Round(time.Millisecond))
	runCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	hists := make([][]porcupine.Operation, linClients)
	errs := make([]error, linClients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			hists[i], errs[i] = linClient(runCtx, i, rng, clients[i].objs, names, start)
		}()
	}
	wg.Wait()
	t.Logf("%d clients × %d operations in %v", linClients, linOps, time.Since(start).Round(time.Millisecond))
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	var history []porcupine.Operation
	for _, h := range hists {
		history = append(history, h...)
	}
	if t.Failed() {
		return
	}
	t.Logf("%d of %d operations overlapped another on their key", overlapping(history), len(history))
	checkLinearizable(t, history)

	// the checker rejects this very history with one stale read added: a
	// fetch, just after the first update of a single value returned, that
	// sees the value as never written (placed early, so that the checker's
	// search for a linearization ends soon)
	first := -1
	for i, op := range history {
		if in := op.Input.(linInput); in.update && in.sv && (first < 0 || op.Return < history[first].Return) {
			first = i
		}
	}
	if first < 0 {
		t.Fatal("no update of a single value in the history")
	}
	key := history[first].Input.(linInput).key
	stale := porcupine.Operation{ClientId: linClients, Input: linInput{key: key, sv: true, client: linClients},
		Call: history[first].Return + 1, Output: linOutput{}, Return: history[first].Return + 2}
	if r := porcupine.CheckOperationsTimeout(linModel, append(slices.Clone(history), stale), time.Minute); r != porcupine.Illegal {
		t.Errorf("the checker's verdict on a fetch of %s that misses a returned update: %v, want Illegal", key, r)
	}
}

// checkLinearizable checks history against linModel and, if it is not
// linearizable, reports each key whose history is not, with the fetches that
// no order of its updates by epoch explains, and writes the histories and
// porcupine's visualization to files for a human to read.
func checkLinearizable(t *testing.T, history []porcupine.Operation) {
	t.Helper()
	begin := time.Now()
	res, info := porcupine.CheckOperationsVerbose(linModel, history, 2*time.Minute)
	t.Logf("checked %d operations in %v", len(history), time.Since(begin).Round(time.Millisecond))
	switch res {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		t.Fatalf("the linearizability check of %d operations did not finish in 2 minutes", len(history))
	}
	dir, err := os.MkdirTemp("", "godaos-linearizability-")
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range linModel.Partition(history) { // which keys: each partition alone
		if porcupine.CheckOperations(linModel, part) {
			continue
		}
		key := part[0].Input.(linInput).key
		path := filepath.Join(dir, strings.ReplaceAll(key, "/", "-")+".txt")
		os.WriteFile(path, []byte(describeOps(part)), 0o644)
		t.Errorf("%s: not linearizable (its %d operations by call time: %s)\n%s", key, len(part), path, explainByEpochs(part))
	}
	f, err := os.Create(filepath.Join(dir, "porcupine.html"))
	if err == nil {
		err = porcupine.Visualize(linModel, info, f)
		f.Close()
	}
	t.Logf("porcupine's visualization: %s (%v)", f.Name(), err)
}

// explainByEpochs finds the fetches of one key's history that no prefix of
// its updates in epoch order explains within the fetch's real-time bounds.
// A dkey lives on one target, whose clock stamps its updates, and VOS shows
// a fetch of the latest data the updates in epoch order: so each fetch must
// see such a prefix, one holding every update that returned before the fetch
// began and none that began after it returned. For each fetch that does not,
// it names the updates it saw and those it missed, with their epochs.
func explainByEpochs(part []porcupine.Operation) string {
	var ups []porcupine.Operation
	byVal := map[uint64]int{} // update value -> index in ups
	for _, op := range part {
		if op.Input.(linInput).update {
			ups = append(ups, op)
		}
	}
	slices.SortFunc(ups, func(a, b porcupine.Operation) int {
		return cmp.Compare(a.Output.(linOutput).epoch, b.Output.(linOutput).epoch)
	})
	states := []linState{{}} // states[k]: after the first k updates by epoch
	for i, u := range ups {
		byVal[u.Input.(linInput).val] = i
		_, next := linModel.Step(states[i], u.Input, u.Output)
		states = append(states, next.(linState))
	}
	describe := func(u porcupine.Operation) string {
		return fmt.Sprintf("[%d, %d] %s", u.Call, u.Return, linModel.DescribeOperation(u.Input, u.Output))
	}
	var sb strings.Builder
	for _, f := range part {
		in, out := f.Input.(linInput), f.Output.(linOutput)
		if in.update {
			continue
		}
		lo, hi := 0, len(ups) // real time: at least lo updates by epoch, at most hi
		for k, u := range ups {
			if u.Return < f.Call {
				lo = max(lo, k+1)
			}
			if u.Call > f.Return {
				hi = min(hi, k)
			}
		}
		explained := false
		for k := lo; k <= hi && !explained; k++ {
			explained, _ = linModel.Step(states[k], f.Input, f.Output)
		}
		if explained {
			continue
		}
		fmt.Fprintf(&sb, "  fetch %s\n", describe(f))
		// the updates whose values it saw, and what the updates by epoch up to
		// the latest of them would have shown instead
		seen := -1
		saw := func(v uint64) {
			if k, ok := byVal[v]; ok {
				seen = max(seen, k)
			}
		}
		if in.sv {
			saw(out.sv)
		}
		for i := in.recx.Idx; i < in.recx.Idx+in.recx.Nr; i++ {
			saw(out.arr[i] >> 8)
		}
		want := states[seen+1]
		if seen >= 0 {
			fmt.Fprintf(&sb, "    it saw update %s,\n", describe(ups[seen]))
		}
		writer := func(v uint64) string {
			if k, ok := byVal[v]; ok {
				return fmt.Sprintf("the value of the update of epoch %d", ups[k].Output.(linOutput).epoch)
			}
			return "nothing"
		}
		if in.sv && out.sv != want.sv {
			fmt.Fprintf(&sb, "    sv: it saw %s, the updates by epoch give %s\n", writer(out.sv), writer(want.sv))
		}
		for i := in.recx.Idx; i < in.recx.Idx+in.recx.Nr; i++ {
			if out.arr[i] == want.arr[i] {
				continue
			}
			fmt.Fprintf(&sb, "    arr[%d]: it saw %s, the updates by epoch give %s", i, writer(out.arr[i]>>8), writer(want.arr[i]>>8))
			if k, ok := byVal[want.arr[i]>>8]; ok {
				fmt.Fprintf(&sb, ": %s", describe(ups[k]))
			}
			sb.WriteString("\n")
		}
		fmt.Fprintf(&sb, "    real time allows the first %d to %d updates by epoch\n", lo, hi)
	}
	if sb.Len() == 0 {
		return "  every fetch matches a prefix of the updates by epoch: the updates' epochs contradict real time"
	}
	return sb.String()
}

// overlapping counts the operations whose interval overlaps that of another
// operation on the same key: what gives the check something to decide.
func overlapping(history []porcupine.Operation) int {
	n := 0
	for _, part := range linModel.Partition(history) {
		part = slices.Clone(part)
		slices.SortFunc(part, func(a, b porcupine.Operation) int { return int(a.Call - b.Call) })
		end := int64(-1) // the latest return so far
		prev := -1       // the operation that returns at end
		counted := map[int]bool{}
		for i, op := range part {
			if op.Call <= end {
				counted[i], counted[prev] = true, true
			}
			if op.Return > end {
				end, prev = op.Return, i
			}
		}
		n += len(counted)
	}
	return n
}

// describeOps lists operations by call time, with their intervals.
func describeOps(ops []porcupine.Operation) string {
	ops = slices.Clone(ops)
	slices.SortFunc(ops, func(a, b porcupine.Operation) int { return int(a.Call - b.Call) })
	var sb strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&sb, "  [%d, %d] %s\n", op.Call, op.Return, linModel.DescribeOperation(op.Input, op.Output))
	}
	return sb.String()
}

// laterEpochFirst is the shape of a violation TestLinearizability found:
// two concurrent updates of one dkey, the first (epoch 10) writing sv and
// record 7, the second (epoch 11) writing sv; a fetch saw the second update's
// sv without the first's record, and a later fetch saw both, the second's sv
// on top (the epochs' order).
func laterEpochFirst() []porcupine.Operation {
	const k = "S1/k0"
	u1 := porcupine.Operation{ClientId: 0, Input: linInput{key: k, update: true, sv: true, recx: Recx{7, 1}, val: 1}, Call: 0, Output: linOutput{epoch: 10}, Return: 30}
	u2 := porcupine.Operation{ClientId: 1, Input: linInput{key: k, update: true, sv: true, val: 2, client: 1}, Call: 5, Output: linOutput{epoch: 11}, Return: 31}
	f := porcupine.Operation{ClientId: 2, Input: linInput{key: k, sv: true, recx: Recx{0, linRecs}, client: 2}, Call: 20, Output: linOutput{sv: 2}, Return: 32}
	var both [linRecs]uint64
	both[7] = recVal(1, 7)
	g := porcupine.Operation{ClientId: 3, Input: linInput{key: k, sv: true, recx: Recx{0, linRecs}, client: 3}, Call: 40, Output: linOutput{sv: 2, arr: both}, Return: 50}
	return []porcupine.Operation{u1, u2, f, g}
}

// TestLinearizabilityExplained: the report of a violation names the fetch,
// the update it saw and the earlier-epoch update it missed, with epochs.
func TestLinearizabilityExplained(t *testing.T) {
	got := explainByEpochs(laterEpochFirst())
	for _, want := range []string{"c2 fetch S1/k0", "it saw update [5, 31] c1 update S1/k0 sv=true recx={0 0} val=2 epoch=11",
		"arr[7]: it saw nothing, the updates by epoch give the value of the update of epoch 10: [0, 30] c0 update"} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation without %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "c3 fetch") {
		t.Errorf("the later fetch, which the epochs explain, is reported:\n%s", got)
	}
}

// TestLinearizabilityChecker: the model and checker reject what is not
// linearizable (a stale read, an update seen in part, records out of order)
// and accept what is, so TestLinearizability can fail.
func TestLinearizabilityChecker(t *testing.T) {
	const k = "S1/k0"
	upd := func(c int, val uint64, sv bool, rx Recx, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: linInput{key: k, update: true, sv: sv, recx: rx, val: val, client: c}, Call: call, Output: linOutput{}, Return: ret}
	}
	fetch := func(c int, sv bool, rx Recx, out linOutput, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: linInput{key: k, sv: sv, recx: rx, client: c}, Call: call, Output: out, Return: ret}
	}
	recs := func(vals map[uint64]uint64) (a [linRecs]uint64) {
		for i, v := range vals {
			a[i] = recVal(v, i)
		}
		return a
	}
	for _, tc := range []struct {
		name string
		hist []porcupine.Operation
		ok   bool
	}{
		{"latest value", []porcupine.Operation{upd(0, 1, true, Recx{}, 0, 10), upd(0, 2, true, Recx{}, 20, 30), fetch(1, true, Recx{}, linOutput{sv: 2}, 40, 50)}, true},
		{"stale read", []porcupine.Operation{upd(0, 1, true, Recx{}, 0, 10), upd(0, 2, true, Recx{}, 20, 30), fetch(1, true, Recx{}, linOutput{sv: 1}, 40, 50)}, false},
		{"concurrent update either way", []porcupine.Operation{upd(0, 1, true, Recx{}, 0, 10), upd(1, 2, true, Recx{}, 5, 30), fetch(2, true, Recx{}, linOutput{sv: 1}, 12, 20),
			fetch(2, true, Recx{}, linOutput{sv: 2}, 40, 50)}, true},
		{"going back in time", []porcupine.Operation{upd(0, 1, true, Recx{}, 0, 10), upd(1, 2, true, Recx{}, 5, 30), fetch(2, true, Recx{}, linOutput{sv: 2}, 12, 20),
			fetch(2, true, Recx{}, linOutput{sv: 1}, 40, 50)}, false},
		{"never written", []porcupine.Operation{upd(0, 1, true, Recx{}, 0, 10), fetch(1, true, Recx{}, linOutput{}, 20, 30)}, false},
		{"overlapping extents", []porcupine.Operation{upd(0, 1, false, Recx{0, 4}, 0, 10), upd(0, 2, false, Recx{2, 4}, 20, 30),
			fetch(1, false, Recx{0, 6}, linOutput{arr: recs(map[uint64]uint64{0: 1, 1: 1, 2: 2, 3: 2, 4: 2, 5: 2})}, 40, 50)}, true},
		{"overlapping extents in the wrong order", []porcupine.Operation{upd(0, 1, false, Recx{0, 4}, 0, 10), upd(0, 2, false, Recx{2, 4}, 20, 30),
			fetch(1, false, Recx{0, 6}, linOutput{arr: recs(map[uint64]uint64{0: 1, 1: 1, 2: 1, 3: 1, 4: 2, 5: 2})}, 40, 50)}, false},
		{"half an update", []porcupine.Operation{upd(0, 1, true, Recx{0, 2}, 0, 10), fetch(1, true, Recx{0, 2}, linOutput{sv: 1}, 5, 15)}, false},
		{"a whole concurrent update", []porcupine.Operation{upd(0, 1, true, Recx{0, 2}, 0, 10), fetch(1, true, Recx{0, 2}, linOutput{sv: 1, arr: recs(map[uint64]uint64{0: 1, 1: 1})}, 5, 15)}, true},
		{"an update seen before an earlier one", laterEpochFirst(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(linModel, tc.hist); got != tc.ok {
				t.Fatalf("linearizable: %v, want %v; history:\n%s", got, tc.ok, describeOps(tc.hist))
			}
		})
	}
}
