package engine

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/hlc"
	"github.com/godaos/godaos/internal/proto/enginepb"
	"github.com/godaos/godaos/internal/security/capability"
	"github.com/godaos/godaos/server/vos"
)

// capOf is an unsigned capability of handle h for the test container.
func capOf(h byte, rights uint32) []byte {
	handle := vos.UUIDFromUint64(uint64(h))
	b, err := capability.Issue(nil, &enginepb.CapToken{Handle: handle[:], Pool: tPool[:], Cont: tCont[:], Rights: rights, Expires: time.Now().Add(time.Hour).Unix()})
	if err != nil {
		panic(err)
	}
	return b
}

var (
	rw     = enginepb.CapRead | enginepb.CapWrite
	obj7   = &enginepb.OID{Lo: 7}
	valIOD = &enginepb.IOD{Akey: []byte("a"), Type: uint32(vos.IODSingle), Size: 1}
)

func txid() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return b
}

// prepare sends a transaction part to target tgt: reads and writes of dkeys
// of object 7 ("": the whole object; a write to "" punches it).
func (te *testEngine) prepare(t *testing.T, tgt uint32, id []byte, epoch uint64, capb []byte, reads, writes []string, m func(*enginepb.TxPrepareReq)) error {
	t.Helper()
	req := &enginepb.TxPrepareReq{Pool: tPool[:], Cont: tCont[:], Txid: id, Epoch: epoch, Cap: capb}
	var bulk []byte
	for _, r := range reads {
		req.Reads = append(req.Reads, &enginepb.TxKey{Oid: obj7, Dkey: []byte(r)})
	}
	for _, w := range writes {
		if w == "" {
			req.Writes = append(req.Writes, &enginepb.TxWrite{Oid: obj7, Punch: true})
			continue
		}
		req.Writes = append(req.Writes, &enginepb.TxWrite{Oid: obj7, Dkey: []byte(w), Iods: []*enginepb.IOD{valIOD}})
		bulk = append(bulk, 'T')
	}
	if m != nil {
		m(req)
	}
	_, err := te.call(t, enginepb.OpTxPrepare, tgt, req, bulk, nil)
	return err
}

func (te *testEngine) finish(t *testing.T, tgt uint32, id []byte, epoch uint64, capb []byte, abort, coord bool) error {
	t.Helper()
	_, err := te.call(t, enginepb.OpTxCommit, tgt, &enginepb.TxCommitReq{Pool: tPool[:], Cont: tCont[:], Txid: id, Epoch: epoch, Abort: abort, Coordinator: coord, Cap: capb}, nil, nil)
	return err
}

func (te *testEngine) put(t *testing.T, tgt uint32, dkey string, capb []byte) error {
	t.Helper()
	m := ioReq(dkey, valIOD)
	m.Cap = capb
	_, err := te.call(t, enginepb.OpObjUpdate, tgt, m, []byte{'P'}, nil)
	return err
}

func (te *testEngine) get(t *testing.T, tgt uint32, dkey string, epoch uint64) (byte, error) {
	t.Helper()
	m := ioReq(dkey, valIOD)
	m.Epoch = epoch
	b := make([]byte, 1)
	_, err := te.call(t, enginepb.OpObjFetch, tgt, m, nil, b)
	return b[0], err
}

func (te *testEngine) now(t *testing.T) uint64 {
	t.Helper()
	r, err := te.call(t, enginepb.OpEpochQuery, 0, &enginepb.EpochSyncReq{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var rep enginepb.ObjUpdateRep
	proto.Unmarshal(r.Header, &rep)
	return rep.Epoch
}

func wantCode(t *testing.T, err error, code daoserr.Code, contains string) {
	t.Helper()
	if !daoserr.Is(err, code) || !strings.Contains(err.Error(), contains) {
		t.Fatalf("got %v, want %s containing %q", err, code.Name(), contains)
	}
}

// Locks: a whole-object write conflicts with any dkey's; reads share; a
// dkey a transaction writes makes I/O there wait, one it only read lets
// readers through and keeps writers out.
func TestTxLocks(t *testing.T) {
	te := startEngine(t, engineOpts(t))
	te.createPool(t)
	a := capOf(1, rw)
	coord := func(r *enginepb.TxPrepareReq) { r.Coordinator = true }
	e := te.now(t)

	t1 := txid()
	if err := te.prepare(t, 0, t1, e, a, nil, []string{""}, coord); err != nil { // punch object 7
		t.Fatal(err)
	}
	wantCode(t, te.prepare(t, 0, txid(), e, a, nil, []string{"x"}, coord), daoserr.TxRestart, "another transaction holds it")
	wantCode(t, te.prepare(t, 0, txid(), e, a, []string{"y"}, nil, coord), daoserr.TxRestart, "writing it")
	_, err := te.get(t, 0, "x", 0)
	wantCode(t, err, daoserr.InProgress, "committing")
	wantCode(t, te.put(t, 0, "x", a), daoserr.InProgress, "committing")
	if err := te.finish(t, 0, t1, te.now(t), a, true, false); err != nil {
		t.Fatal(err)
	}

	t2 := txid()
	if err := te.prepare(t, 0, t2, e, a, []string{"r"}, []string{"w"}, coord); err != nil {
		t.Fatal(err)
	}
	if err := te.prepare(t, 0, txid(), e, a, []string{"r"}, []string{"z"}, coord); err != nil {
		t.Fatalf("a second reader of r: %v", err)
	}
	if _, err := te.get(t, 0, "r", 0); err != nil {
		t.Fatalf("a plain read of a dkey only read by transactions: %v", err)
	}
	wantCode(t, te.put(t, 0, "r", a), daoserr.InProgress, "committing")
	_, err = te.get(t, 0, "w", 0)
	wantCode(t, err, daoserr.InProgress, "committing")
	// a read below the prepare stamp need not wait: the commit lands above it
	if _, err := te.get(t, 0, "w", e); err != nil {
		t.Fatalf("read below the stamp: %v", err)
	}
}

// Only the handle that prepared a transaction commits or aborts it, and
// only handles that may write take part.
func TestTxHandles(t *testing.T) {
	te := startEngine(t, engineOpts(t))
	te.createPool(t)
	a, b, ro := capOf(1, rw), capOf(2, rw), capOf(3, enginepb.CapRead)
	e := te.now(t)
	id := txid()
	wantCode(t, te.prepare(t, 0, id, e, ro, []string{"x"}, nil, func(r *enginepb.TxPrepareReq) { r.Coordinator = true }), daoserr.NoPerm, "may not write")
	if err := te.prepare(t, 0, id, e, a, nil, []string{"x"}, func(r *enginepb.TxPrepareReq) { r.Coordinator = true }); err != nil {
		t.Fatal(err)
	}
	wantCode(t, te.finish(t, 0, id, te.now(t), b, false, true), daoserr.NoPerm, "another container handle")
	wantCode(t, te.finish(t, 0, id, te.now(t), ro, false, true), daoserr.NoPerm, "may not write")
	if err := te.finish(t, 0, id, te.now(t), a, false, true); err != nil {
		t.Fatal(err)
	}
	if v, err := te.get(t, 0, "x", 0); err != nil || v != 'T' {
		t.Fatalf("after commit: %q, %v", v, err)
	}
	// a retried commit is answered from the decision
	if err := te.finish(t, 0, id, te.now(t), a, false, true); err != nil {
		t.Fatalf("retried commit: %v", err)
	}
}

// Epochs from elsewhere may not be far in the engine's future, and changes
// outside transactions take the engine's.
func TestTxEpochBounds(t *testing.T) {
	te := startEngine(t, engineOpts(t))
	te.createPool(t)
	a := capOf(1, rw)
	future := uint64(time.Now().Add(time.Hour).UnixNano())
	_, err := te.get(t, 0, "x", future)
	wantCode(t, err, daoserr.Inval, "in this engine's future")
	wantCode(t, te.prepare(t, 0, txid(), future, a, nil, []string{"x"}, func(r *enginepb.TxPrepareReq) { r.Commit = true }), daoserr.Inval, "in this engine's future")
	id := txid()
	if err := te.prepare(t, 0, id, te.now(t), a, nil, []string{"x"}, func(r *enginepb.TxPrepareReq) { r.Coordinator = true }); err != nil {
		t.Fatal(err)
	}
	wantCode(t, te.finish(t, 0, id, future, a, false, true), daoserr.Inval, "in this engine's future")
	if ahead := hlc.Time(te.now(t)).Sub(time.Now()); ahead > time.Minute {
		t.Fatalf("the clock moved %s ahead", ahead)
	}
	// one-phase: committed at once, at an epoch after what it read
	e := te.now(t)
	if err := te.prepare(t, 1, txid(), e, a, []string{"y"}, []string{"y"}, func(r *enginepb.TxPrepareReq) { r.Commit = true }); err != nil {
		t.Fatal(err)
	}
	if v, _ := te.get(t, 1, "y", 0); v != 'T' {
		t.Fatalf("one-phase commit not applied: %q", v)
	}
	if v, _ := te.get(t, 1, "y", e); v != 0 {
		t.Fatalf("one-phase commit visible at its read epoch: %q", v)
	}
}

// A participant whose commit does not come asks the coordinator: committed
// there, it commits at the same epoch; not decided, the coordinator aborts
// (presumed abort) and a late commit is refused.
func TestTxCoordinatorDecides(t *testing.T) {
	te, a := txEngine(t, 500*time.Millisecond)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for range 100 { // bounded: 10 s
			if cond() {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s did not happen", what)
	}

	// committed at the coordinator, never told to the participant
	id := te.preparePair(t, a, "c1", "p1")
	ce := te.now(t)
	if err := te.finish(t, 0, id, ce, a, false, true); err != nil {
		t.Fatal(err)
	}
	waitFor("the participant's commit", func() bool { v, err := te.get(t, 1, "p1", 0); return err == nil && v == 'T' })
	if v, _ := te.get(t, 1, "p1", ce-1); v != 0 {
		t.Fatal("the participant committed below the coordinator's epoch")
	}

	// never committed: the coordinator aborts, the participant too, and the
	// client's late commit is refused where it would decide
	id = te.preparePair(t, a, "c2", "p2")
	waitFor("the participant's abort", func() bool { return te.put(t, 1, "p2", a) == nil })
	wantCode(t, te.finish(t, 0, id, te.now(t), a, false, true), daoserr.TxRestart, "aborted")
	if v, _ := te.get(t, 0, "c2", 0); v != 'P' && v != 0 {
		t.Fatalf("an aborted transaction wrote: %q", v)
	}
}

// A commit that reaches the coordinator after its part's wait is refused
// there even when the sweeper has not run (a paused server resumed with
// the client's commit queued): the participants may be settling the
// transaction as aborted without it.
func TestTxLateCommitAtCoordinator(t *testing.T) {
	oldTTL, oldSweep := txPreparedTTL, txSweepEvery
	txPreparedTTL, txSweepEvery = 200*time.Millisecond, time.Hour
	t.Cleanup(func() { txPreparedTTL, txSweepEvery = oldTTL, oldSweep }) // after the engine stops
	te := startEngine(t, engineOpts(t))
	te.createPool(t)
	a := capOf(1, rw)

	id := te.preparePair(t, a, "c", "p")
	time.Sleep(2 * txPreparedTTL)
	wantCode(t, te.finish(t, 0, id, te.now(t), a, false, true), daoserr.TxRestart, "after the participants' wait")
	// the client aborts the others (without the sweeper they would ask the
	// coordinator, which decided to abort)
	if err := te.finish(t, 1, id, te.now(t), a, true, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tgt  uint32
		dkey string
	}{{0, "c"}, {1, "p"}} {
		if v, _ := te.get(t, tc.tgt, tc.dkey, 0); v != 0 {
			t.Fatalf("target %d dkey %s: the refused transaction wrote %q", tc.tgt, tc.dkey, v)
		}
	}
}

// The transaction table is durable (dtx.go): an engine restarted between a
// transaction's phases still holds its prepared parts and its
// coordinator's commit decision. Restarted before the coordinator decided,
// the coordinator presumes an abort (the client's late commit is refused)
// and the participant, locked meanwhile, learns it; restarted after, the
// participant learns the commit by asking.
func TestTxSurvivesRestart(t *testing.T) {
	te, a := txEngine(t, 500*time.Millisecond)

	// prepared on both targets, restarted: aborted
	id := te.preparePair(t, a, "c1", "p1")
	te.restart(t)
	wantCode(t, te.put(t, 1, "p1", a), daoserr.InProgress, "") // brought back, locked
	wantCode(t, te.finish(t, 0, id, te.now(t), a, false, true), daoserr.TxRestart, "aborted")
	unlocked := false
	for range 100 { // bounded: 10 s (the participant asks the coordinator)
		if unlocked = te.put(t, 1, "p1", a) == nil; unlocked {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !unlocked {
		t.Fatal("the participant brought back did not learn the abort")
	}
	if v, _ := te.get(t, 0, "c1", 0); v == 'T' {
		t.Fatal("the aborted coordinator's part was applied")
	}

	// committed at the coordinator; restarted before the participant's
	// commit: the participant, brought back, asks and commits
	id = te.preparePair(t, a, "c2", "p2")
	if err := te.finish(t, 0, id, te.now(t), a, false, true); err != nil {
		t.Fatal(err)
	}
	te.restart(t)
	for range 100 { // bounded: 10 s
		if v, err := te.get(t, 1, "p2", 0); err == nil && v == 'T' {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	v, err := te.get(t, 1, "p2", 0)
	t.Fatalf("the participant did not commit after the restart: %q %v", v, err)
}

// preparePair prepares a new transaction writing cdkey on target 0, its
// coordinator, and pdkey on target 1, and returns its id.
func (te *testEngine) preparePair(t *testing.T, capb []byte, cdkey, pdkey string) []byte {
	t.Helper()
	part := func(r *enginepb.TxPrepareReq) { r.CoordAddr, r.CoordTarget = te.addr, 0 }
	coord := func(r *enginepb.TxPrepareReq) { part(r); r.Coordinator = true }
	id := txid()
	e := te.now(t)
	if err := te.prepare(t, 0, id, e, capb, nil, []string{cdkey}, coord); err != nil {
		t.Fatal(err)
	}
	if err := te.prepare(t, 1, id, e, capb, nil, []string{pdkey}, part); err != nil {
		t.Fatal(err)
	}
	return id
}

// txEngine starts an engine with a pool whose prepared parts wait ttl for
// their commit, and returns it with a read-write capability.
func txEngine(t *testing.T, ttl time.Duration) (*testEngine, []byte) {
	old := txPreparedTTL
	txPreparedTTL = ttl
	t.Cleanup(func() { txPreparedTTL = old }) // after the engine stops (cleanups run last first)
	te := startEngine(t, engineOpts(t))
	te.createPool(t)
	return te, capOf(1, rw)
}
