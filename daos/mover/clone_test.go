package mover

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/internal/daoserr"
)

// dumpCont describes every object of a container: each OID, dkey, akey,
// single value and array extent with its bytes, in order.
func dumpCont(t *testing.T, h *daos.Cont) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for a := (daos.Anchor{}); !a.EOF; {
		oids, err := h.ListObjects(ctx, &a, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, oid := range oids {
			o, err := h.Obj(oid)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range dumpObj(t, o) {
				out = append(out, oid.String()+" "+line)
			}
		}
	}
	return out
}

func dumpObj(t *testing.T, o *daos.Obj) []string {
	ctx := context.Background()
	var out []string
	for a := (daos.Anchor{}); !a.EOF; {
		dkeys, err := o.ListDkeys(ctx, &a, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, dk := range dkeys {
			for b := (daos.Anchor{}); !b.EOF; {
				akeys, err := o.ListAkeys(ctx, dk, &b, 100)
				if err != nil {
					t.Fatal(err)
				}
				for _, ak := range akeys {
					var recxs []daos.Recx
					var rsize uint64
					for c := (daos.Anchor{}); !c.EOF; {
						page, rs, err := o.ListRecx(ctx, dk, ak, &c, 100)
						if err != nil {
							t.Fatal(err)
						}
						for _, x := range page { // adjacent extents as one: a copy writes them at one epoch
							if n := len(recxs); n > 0 && recxs[n-1].Idx+recxs[n-1].Nr == x.Idx {
								recxs[n-1].Nr += x.Nr
								continue
							}
							recxs = append(recxs, x.Recx)
						}
						rsize = max(rsize, rs)
					}
					key := fmt.Sprintf("%x/%x", dk, ak)
					if rsize == 0 {
						iod := []daos.IOD{{Akey: ak, Type: daos.Single}}
						res, err := o.Fetch(ctx, dk, iod, [][]byte{nil})
						if err != nil || res[0].Size == 0 {
							continue
						}
						iod[0].Size = res[0].Size
						buf := make([]byte, res[0].Size)
						if _, err := o.Fetch(ctx, dk, iod, [][]byte{buf}); err != nil {
							t.Fatal(err)
						}
						out = append(out, fmt.Sprintf("%s single %x", key, buf))
						continue
					}
					for _, x := range recxs {
						buf := make([]byte, x.Nr*rsize)
						iod := []daos.IOD{{Akey: ak, Type: daos.Array, Size: rsize, Recxs: []daos.Recx{x}}}
						if _, err := o.Fetch(ctx, dk, iod, [][]byte{buf}); err != nil {
							t.Fatal(err)
						}
						out = append(out, fmt.Sprintf("%s array %d [%d,%d) %x", key, rsize, x.Idx, x.Idx+x.Nr, buf))
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func openCont2(t *testing.T, c *daos.Client, pool, cont string) (*daos.Pool, *daos.Cont) {
	t.Helper()
	ctx := context.Background()
	p, err := c.PoolConnect(ctx, pool, daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p.ContOpen(ctx, cont, daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return p, h
}

// TestClonePOSIX clones a POSIX container into another pool: the clone
// mounts and reads the same, and new files in it take new OIDs.
func TestClonePOSIX(t *testing.T) {
	ctx := context.Background()
	c := client(t)
	src := filepath.Join(tempDir(t), "tree")
	makeTree(t, src)
	label, _ := newPOSIXCont(t, c, "tank", dfs.Attr{ChunkSize: 512 << 10})
	if _, err := Copy(ctx, ep(t, src+"/"), ep(t, "daos://tank/"+label), Options{Client: c}); err != nil {
		t.Fatal(err)
	}
	st, err := Clone(ctx, ep(t, "daos://tank/"+label), ep(t, "daos://other/"+label+"-clone"), Options{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	p, h := openCont2(t, c, "other", label+"-clone")
	t.Cleanup(func() { p.ContDestroy(context.Background(), label+"-clone") })
	if st.Cont != label+"-clone" || st.Type != "POSIX" || st.Objects < 60 || h.Info.GetType() != "POSIX" {
		t.Errorf("stats %+v, type %s", st, h.Info.GetType())
	}
	_, sh := openCont2(t, c, "tank", label)
	if a, b := dumpCont(t, sh), dumpCont(t, h); !slices.Equal(a, b) {
		t.Errorf("the clone holds %d values, the source %d", len(b), len(a))
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Errorf("first difference:\n%.300s\n%.300s", a[i], b[i])
				break
			}
		}
	}
	f, err := dfs.Mount(ctx, h, false)
	if err != nil {
		t.Fatal(err)
	}
	if f.Attr().ChunkSize != 512<<10 {
		t.Errorf("chunk size %d", f.Attr().ChunkSize)
	}
	dst := filepath.Join(tempDir(t), "back")
	if _, err := Copy(ctx, ep(t, "daos://other/"+label+"-clone"), ep(t, dst), Options{Client: c, Verify: true}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst)

	// new objects in the clone do not take the OIDs it was given
	seen := map[daos.OID]bool{}
	for a := (daos.Anchor{}); !a.EOF; {
		oids, err := h.ListObjects(ctx, &a, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range oids {
			seen[o] = true
		}
	}
	for i := range 20 {
		o, err := f.Open(ctx, f.Root(), fmt.Sprintf("new%d", i), os.O_CREATE|os.O_RDWR, 0o644, dfs.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if seen[o.OID()] {
			t.Fatalf("new file %d took OID %s, a cloned object's", i, o.OID())
		}
		o.Close(ctx)
	}
}

// TestCloneObjects clones a container of plain objects: single values,
// sparse arrays, integer keys; its type, properties and attributes.
func TestCloneObjects(t *testing.T) {
	ctx := context.Background()
	c := client(t)
	p, err := c.PoolConnect(ctx, "tank", daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ContCreate(ctx, daos.ContCreateOptions{Label: "raw", Type: "HDF5", Props: map[string]string{"cksum": "crc64", "rd_lvl": "rank"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.ContDestroy(context.Background(), "raw") })
	if _, _, err := p.ContAttrs(ctx, "raw", daos.AttrChange{Set: map[string][]byte{"run": []byte("42")}}); err != nil {
		t.Fatal(err)
	}
	_, h := openCont2(t, c, "tank", "raw")
	for i := range 5 {
		oid, err := h.GenerateOID(ctx, 0, daos.OTMultiHashed)
		if err != nil {
			t.Fatal(err)
		}
		o, err := h.Obj(oid)
		if err != nil {
			t.Fatal(err)
		}
		for d := range 10 {
			dk := []byte(fmt.Sprintf("dkey%d", d))
			iods := []daos.IOD{
				{Akey: []byte("single"), Type: daos.Single, Size: uint64(d + 1)},
				{Akey: []byte("array"), Type: daos.Array, Size: 4, Recxs: []daos.Recx{{Idx: 3, Nr: 2}, {Idx: 100 * uint64(i+1), Nr: 5}}},
			}
			sgls := [][]byte{[]byte(strings.Repeat("v", d+1)), []byte(strings.Repeat(fmt.Sprintf("%04d", i), 7))}
			if _, err := o.Update(ctx, dk, iods, sgls); err != nil {
				t.Fatal(err)
			}
		}
	}
	aoid, err := h.GenerateOID(ctx, 0, daos.OTArray)
	if err != nil {
		t.Fatal(err)
	}
	arr, err := h.ArrayCreate(ctx, aoid, 8, 1000)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 8*5000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := arr.Write(ctx, []daos.ArrayRange{{Idx: 0, Len: 10}, {Idx: 20000, Len: 5000}}, [][]byte{big[:80], big}); err != nil {
		t.Fatal(err)
	}

	st, err := Clone(ctx, ep(t, "daos://tank/raw"), ep(t, "daos://tank"), Options{Client: c, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.ContDestroy(context.Background(), st.UUID) })
	if st.Objects != 6 || st.Type != "HDF5" || !strings.HasPrefix(st.Cont, "container-") {
		t.Errorf("stats %+v", st)
	}
	_, h2 := openCont2(t, c, "tank", st.UUID)
	if h2.Info.Props["cksum"] != "crc64" || h2.Info.Props["rd_lvl"] != "rank" {
		t.Errorf("properties %v", h2.Info.Props)
	}
	if a, b := dumpCont(t, h), dumpCont(t, h2); !slices.Equal(a, b) || len(a) < 100 {
		t.Errorf("the clone holds %d values, the source %d", len(b), len(a))
	}
	vals, _, err := p.ContAttrs(ctx, st.UUID, daos.AttrChange{Get: []string{"run"}})
	if err != nil || string(vals["run"]) != "42" {
		t.Errorf("attribute run: %q %v", vals["run"], err)
	}
	a2, err := h2.ArrayOpen(ctx, aoid)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := a2.GetSize(ctx); err != nil || n != 25000 {
		t.Errorf("array size %d %v", n, err)
	}

	t.Run("interrupted", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		n := 0
		dkeyHook = func() {
			if n++; n == 5 {
				cancel()
			}
		}
		t.Cleanup(func() { dkeyHook = nil })
		_, err := Clone(cctx, ep(t, "daos://tank/raw"), ep(t, "daos://tank/halfway"), Options{Client: c, Workers: 1})
		if !daoserr.Is(err, daoserr.Canceled) || !strings.Contains(err.Error(), "the new container was destroyed") {
			t.Fatalf("interrupted clone: %v", err)
		}
		if _, err := p.ContOpen(ctx, "halfway", daos.RO); !daoserr.Is(err, daoserr.Nonexist) {
			t.Fatalf("the interrupted clone left its container: %v", err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		cases := []struct {
			name, src, dst string
			code           daoserr.Code
			want           string
		}{
			{"destination exists", "daos://tank/raw", "daos://tank/raw", daoserr.Exist, "already exists"},
			{"missing source", "daos://tank/nosuch", "daos://tank/x", daoserr.Nonexist, "container nosuch does not exist"},
			{"POSIX destination", "daos://tank/raw", t.TempDir(), daoserr.Inval, "not a pool"},
			{"path in a container", "daos://tank/raw/a", "daos://tank", daoserr.Inval, "not a container"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := Clone(ctx, ep(t, tc.src), ep(t, tc.dst), Options{Client: c})
				if !daoserr.Is(err, tc.code) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want %s %q", err, tc.code, tc.want)
				}
			})
		}
	})
}
