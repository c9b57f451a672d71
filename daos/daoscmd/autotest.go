package daoscmd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/internal/daoserr"
)

// daos pool autotest: the smoke test DAOS users run on a new pool. It goes
// through what every application does — connect, create and open a
// container, write and read back small values and large extents on objects
// of classes S1 and SX, list, punch, destroy — printing one status line per
// step, and fails (non-zero exit) at the first step that does, naming it.

type autotestCmd struct {
	Pool    string `arg:"" help:"Pool label or UUID."`
	SkipBig bool   `name:"skip-big" help:"Skip the 1 MiB extents on SX objects."`
}

// What the autotest writes: small values (128 B and 4 KiB singles) on S1
// objects and 1 MiB array extents on SX objects, through an event queue with
// autotestDepth operations in flight.
const (
	autotestS1Objs  = 8
	autotestS1Dkeys = 64
	autotestSXObjs  = 2
	autotestSXDkeys = 8
	autotestBig     = 1 << 20
	autotestDepth   = 64
)

// autotestStep is one line of the report.
type autotestStep struct {
	Step      int     `json:"step"`
	Operation string  `json:"operation"`
	Status    string  `json:"status"` // OK, FAIL or SKIP
	Seconds   float64 `json:"seconds"`
	Comment   string  `json:"comment,omitempty"`
}

// autotest is one run: its state, from one step to the next.
type autotest struct {
	t     *tool
	pool  string
	steps []autotestStep

	client  *daos.Client
	p       *daos.Pool
	label   string
	created bool
	skipBig bool
	h       *daos.Cont
	s1, sx  []*daos.Obj
}

func (t *tool) poolAutotest(ctx context.Context, c autotestCmd) error {
	a := &autotest{t: t, pool: c.Pool, skipBig: c.SkipBig}
	if !t.json {
		fmt.Fprintf(t.out, "%-4s %-36s %-6s %9s %s\n", "Step", "Operation", "Status", "Time(sec)", "Comment")
	}
	err := a.runSteps(ctx)
	if err != nil {
		a.cleanup()
	}
	if t.json {
		t.printed = true
		env := map[string]any{"response": a.steps, "error": nil, "status": 0}
		if err != nil {
			env["error"], env["status"] = err.Error(), daoserr.CodeOf(err).Errno()
		}
		enc := json.NewEncoder(t.out)
		enc.SetIndent("", "  ")
		enc.Encode(env)
	}
	return err
}

func (a *autotest) runSteps(ctx context.Context) error {
	steps := []struct {
		n    int
		name string
		do   func(ctx context.Context) (string, error)
		skip bool
	}{
		{0, "Initializing DAOS", a.init, false},
		{1, "Connecting to pool", a.connect, false},
		{2, "Creating container", a.create, false},
		{3, "Opening container", a.open, false},
		{10, fmt.Sprintf("Generating %d S1 objects", autotestS1Objs), a.generate(daos.S1, autotestS1Objs, &a.s1), false},
		{11, fmt.Sprintf("Generating %d SX objects", autotestSXObjs), a.generate(daos.SX, autotestSXObjs, &a.sx), false},
		{20, fmt.Sprintf("Inserting %d 128 B values", autotestS1Objs*autotestS1Dkeys), a.singles(128, true), false},
		{21, "Reading 128 B values back", a.singles(128, false), false},
		{24, fmt.Sprintf("Inserting %d 4 KiB values", autotestS1Objs*autotestS1Dkeys), a.singles(4096, true), false},
		{25, "Reading 4 KiB values back", a.singles(4096, false), false},
		{28, fmt.Sprintf("Inserting %d 1 MiB SX extents", autotestSXObjs*autotestSXDkeys), a.extents(true), a.skipBig},
		{29, "Reading 1 MiB SX extents back", a.extents(false), a.skipBig},
		{30, "Listing dkeys", a.list, false},
		{40, "Punching objects", a.punch, false},
		{96, "Closing container", a.closeCont, false},
		{97, "Destroying container", a.destroy, false},
		{98, "Disconnecting from pool", a.disconnect, false},
		{99, "Tearing down DAOS", a.fini, false},
	}
	for _, st := range steps {
		if st.skip {
			a.report(autotestStep{Step: st.n, Operation: st.name, Status: "SKIP", Comment: "--skip-big"})
			continue
		}
		start := time.Now()
		comment, err := st.do(ctx)
		line := autotestStep{Step: st.n, Operation: st.name, Status: "OK", Seconds: time.Since(start).Seconds(), Comment: comment}
		if err != nil {
			line.Status, line.Comment = "FAIL", err.Error()
		}
		a.report(line)
		if err != nil {
			return daoserr.Context(err, "pool %s: autotest step %d (%s) failed", a.pool, st.n, st.name)
		}
	}
	return nil
}

// report prints a step's line as it ends (a slow step is seen as such).
func (a *autotest) report(s autotestStep) {
	a.steps = append(a.steps, s)
	if !a.t.json {
		line := fmt.Sprintf("%3d  %-36s %-6s %9.3f %s", s.Step, s.Operation, s.Status, s.Seconds, s.Comment)
		fmt.Fprintln(a.t.out, strings.TrimRight(line, " "))
	}
}

// cleanup undoes what a failed run left: its container, its connections.
func (a *autotest) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if a.created && a.p != nil {
		a.p.ContDestroy(ctx, a.label)
	}
	if a.client != nil {
		a.client.Fini()
	}
}

func (a *autotest) init(ctx context.Context) (string, error) {
	var err error
	a.client, err = daos.Init(ctx, daos.Options{})
	return "", err
}

func (a *autotest) connect(ctx context.Context) (string, error) {
	var err error
	a.p, err = a.client.PoolConnect(ctx, a.pool, daos.RW)
	if err != nil {
		return "", err
	}
	return "uuid = " + a.p.Info.Uuid, nil
}

func (a *autotest) create(ctx context.Context) (string, error) {
	var r [4]byte
	rand.Read(r[:])
	a.label = "autotest-" + hex.EncodeToString(r[:])
	ct, err := a.p.ContCreate(ctx, daos.ContCreateOptions{Label: a.label})
	if err != nil {
		return "", err
	}
	a.created = true
	return "label = " + ct.Label + ", uuid = " + ct.Uuid, nil
}

func (a *autotest) open(ctx context.Context) (string, error) {
	var err error
	a.h, err = a.p.ContOpen(ctx, a.label, daos.RW)
	return "", err
}

func (a *autotest) generate(class daos.ClassID, n int, into *[]*daos.Obj) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		for range n {
			oid, err := a.h.GenerateOID(ctx, class, daos.OTMultiHashed)
			if err != nil {
				return "", err
			}
			o, err := a.h.Obj(oid)
			if err != nil {
				return "", err
			}
			*into = append(*into, o)
		}
		return "first " + (*into)[0].OID.String(), nil
	}
}

// pattern is the content of one value: reproducible from where it lives, so
// that reading it back checks every byte.
func pattern(o *daos.Obj, dkey []byte, size int) []byte {
	var seed uint64
	for _, b := range dkey {
		seed = seed*131 + uint64(b)
	}
	r := mrand.New(mrand.NewPCG(o.OID.Lo^o.OID.Hi, seed^uint64(size)))
	b := make([]byte, size)
	for i := 0; i < size; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < size; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// checkRead compares what a fetch read with what was written.
func checkRead(o *daos.Obj, dkey []byte, got, want []byte, found uint64) error {
	if found == 0 {
		return daoserr.Newf(daoserr.Nonexist, "object %s dkey %s: nothing read back", o.OID, dkey)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		return daoserr.Newf(daoserr.IO, "object %s dkey %s: byte %d read back differs from what was written", o.OID, dkey, i)
	}
	return nil
}

// singles writes (or reads back and checks) a size-byte single value under
// every dkey of every S1 object.
func (a *autotest) singles(size int, write bool) func(context.Context) (string, error) {
	akey := []byte(fmt.Sprintf("%dB", size))
	return func(ctx context.Context) (string, error) {
		n := len(a.s1) * autotestS1Dkeys
		err := eqRun(ctx, n, autotestDepth, func(ctx context.Context, i int) error {
			o, dkey := a.s1[i/autotestS1Dkeys], []byte(fmt.Sprintf("d%03d", i%autotestS1Dkeys))
			iod := []daos.IOD{{Akey: akey, Type: daos.Single, Size: uint64(size)}}
			want := pattern(o, dkey, size)
			if write {
				_, err := o.Update(ctx, dkey, iod, [][]byte{want})
				return err
			}
			got := make([]byte, size)
			res, err := o.Fetch(ctx, dkey, iod, [][]byte{got})
			if err != nil {
				return err
			}
			return checkRead(o, dkey, got, want, res[0].Size)
		})
		return rate(n, size, write), err
	}
}

// extents writes (or reads back and checks) a 1 MiB extent under every dkey
// of every SX object.
func (a *autotest) extents(write bool) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		n := len(a.sx) * autotestSXDkeys
		err := eqRun(ctx, n, 4, func(ctx context.Context, i int) error {
			o, dkey := a.sx[i/autotestSXDkeys], []byte(fmt.Sprintf("c%03d", i%autotestSXDkeys))
			iod := []daos.IOD{{Akey: []byte("data"), Type: daos.Array, Size: 1, Recxs: []daos.Recx{{Idx: 0, Nr: autotestBig}}}}
			want := pattern(o, dkey, autotestBig)
			if write {
				_, err := o.Update(ctx, dkey, iod, [][]byte{want})
				return err
			}
			got := make([]byte, autotestBig)
			res, err := o.Fetch(ctx, dkey, iod, [][]byte{got})
			if err != nil {
				return err
			}
			return checkRead(o, dkey, got, want, res[0].Size)
		})
		return rate(n, autotestBig, write), err
	}
}

func rate(n, size int, write bool) string {
	verb := "written"
	if !write {
		verb = "read and verified"
	}
	return fmt.Sprintf("%d values %s", n, verb)
}

// eqRun runs op(0..n-1) from this goroutine with up to depth of them in
// flight on an event queue, and returns the first error (after the
// operations in flight have ended).
func eqRun(ctx context.Context, n, depth int, op func(ctx context.Context, i int) error) error {
	q := daos.NewEQ()
	defer q.Destroy(true)
	var free []*daos.Event
	for range min(n, depth) {
		ev, err := daos.NewEvent(q, nil)
		if err != nil {
			return err
		}
		free = append(free, ev)
	}
	var first error
	launched, done := 0, 0
	for done < launched || (launched < n && first == nil) {
		for launched < n && first == nil && len(free) > 0 {
			ev, i := free[len(free)-1], launched
			free = free[:len(free)-1]
			if err := ev.Launch(ctx, func(ctx context.Context) error { return op(ctx, i) }); err != nil {
				return err
			}
			launched++
		}
		evs, err := q.Poll(ctx, 1, depth, -1)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			done++
			if first == nil {
				first = ev.Err()
			}
			free = append(free, ev)
		}
	}
	return first
}

// list checks that every object lists exactly the dkeys written to it.
func (a *autotest) list(ctx context.Context) (string, error) {
	total := 0
	check := func(objs []*daos.Obj, want int) error {
		for _, o := range objs {
			keys, err := listAll(func(an *daos.Anchor) ([][]byte, error) { return o.ListDkeys(ctx, an, listPage) })
			if err != nil {
				return err
			}
			seen := map[string]bool{}
			for _, k := range keys {
				seen[string(k)] = true
			}
			if len(keys) != want || len(seen) != want {
				return daoserr.Newf(daoserr.IO, "object %s: %d dkeys listed (%d distinct), %d written", o.OID, len(keys), len(seen), want)
			}
			total += want
		}
		return nil
	}
	if err := check(a.s1, autotestS1Dkeys); err != nil {
		return "", err
	}
	sxDkeys := autotestSXDkeys
	if a.skipBig {
		sxDkeys = 0
	}
	if err := check(a.sx, sxDkeys); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d dkeys listed", total), nil
}

// punch punches every object and checks that none lists a dkey any more.
func (a *autotest) punch(ctx context.Context) (string, error) {
	objs := append(append([]*daos.Obj(nil), a.s1...), a.sx...)
	for _, o := range objs {
		if err := o.Punch(ctx); err != nil {
			return "", err
		}
		var an daos.Anchor
		keys, err := o.ListDkeys(ctx, &an, 1)
		if err != nil {
			return "", err
		}
		if len(keys) != 0 {
			return "", daoserr.Newf(daoserr.IO, "object %s still lists dkey %q after a punch", o.OID, keys[0])
		}
	}
	return fmt.Sprintf("%d objects punched", len(objs)), nil
}

func (a *autotest) closeCont(ctx context.Context) (string, error) { return "", a.h.Close(ctx) }

func (a *autotest) destroy(ctx context.Context) (string, error) {
	if err := a.p.ContDestroy(ctx, a.label); err != nil {
		return "", err
	}
	a.created = false
	return "", nil
}

func (a *autotest) disconnect(ctx context.Context) (string, error) { return "", a.p.Disconnect(ctx) }

func (a *autotest) fini(context.Context) (string, error) {
	err := a.client.Fini()
	a.client = nil
	return "", err
}
