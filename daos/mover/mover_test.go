package mover

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/daos/uns"
	"github.com/godaos/godaos/internal/daoserr"
)

// TestRoundTrip copies a generated tree POSIX -> container -> POSIX and
// finds it byte for byte, mode for mode, mtime for mtime the same, with
// its holes unwritten on both sides; then across pools, and idempotent.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := client(t)
	src := filepath.Join(tempDir(t), "tree")
	makeTree(t, src)
	label, f := newPOSIXCont(t, c, "tank", dfs.Attr{})
	opts := Options{Client: c, Workers: 8}

	// the directory itself goes into the container, under its name
	st, err := Copy(ctx, ep(t, src), ep(t, "daos://tank/"+label), opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Dst != "daos://tank/"+label+"/tree" || st.Files != 52 || st.Links != 3 || st.Dirs != 9 || st.Skipped != 0 {
		t.Errorf("stats %+v", st)
	}
	// holes: a chunk with no data has no dkey
	for p, want := range map[string]int{"/tree/sparse/start": 1, "/tree/sparse/middle": 2, "/tree/sparse/end": 3, // and the cell that marks its size
		"/tree/x/zeros-but-one": 1, "/tree/big.bin": 20} {
		if n := chunksOf(t, f, p); n != want {
			t.Errorf("%s has %d chunks, want %d", p, n, want)
		}
	}
	if !bytes.Equal(readDFS(t, f, "/tree/a/b/c/three"), mustRead(t, filepath.Join(src, "a/b/c/three"))) {
		t.Error("a/b/c/three differs in the container")
	}

	t.Run("back to POSIX", func(t *testing.T) {
		dst := filepath.Join(tempDir(t), "back")
		st, err := Copy(ctx, ep(t, "daos://tank/"+label+"/tree/"), ep(t, dst), opts)
		if err != nil {
			t.Fatal(err)
		}
		if st.Dst != dst || st.Files != 52 {
			t.Errorf("stats %+v", st)
		}
		sameTree(t, src, dst)
		checkHoles(t, dst)
		// again, every file: read-only directories are opened up and closed again
		opts := opts
		opts.Force = true
		if st, err := Copy(ctx, ep(t, "daos://tank/"+label+"/tree/"), ep(t, dst), opts); err != nil || st.Files != 52 {
			t.Fatalf("forced copy: %v %+v", err, st)
		}
		sameTree(t, src, dst)
		checkHoles(t, dst)
	})

	t.Run("idempotent", func(t *testing.T) {
		var progress bytes.Buffer
		opts := opts
		opts.Progress = &progress
		st, err := Copy(ctx, ep(t, src), ep(t, "daos://tank/"+label), opts)
		if err != nil {
			t.Fatal(err)
		}
		if st.Bytes != 0 || st.Files != 0 || st.Skipped != 52 || st.Links != 3 {
			t.Errorf("a second copy did work: %+v", st)
		}
		// the last progress line is written when the copy ends
		if p := progress.String(); !strings.HasSuffix(p, "\n") || !strings.Contains(p, "\r9 directories, 0 files, 52 skipped, 3 links, 0 B") {
			t.Errorf("progress %q", p)
		}
		var sum bytes.Buffer
		st.Summary(&sum, false)
		for _, w := range []string{"Successfully copied to DAOS: daos://tank/" + label + "/tree\n", "Directories: 9\n", "Files:       0\n",
			"Links:       3\n", "Skipped:     52 (already up to date)"} {
			if !strings.Contains(sum.String(), w) {
				t.Errorf("summary lacks %q:\n%s", w, sum.String())
			}
		}
	})

	t.Run("container to container across pools", func(t *testing.T) {
		label2, _ := newPOSIXCont(t, c, "other", dfs.Attr{ChunkSize: 256 << 10})
		st, err := Copy(ctx, ep(t, "daos://tank/"+label), ep(t, "daos://other/"+label2+"/copy"), Options{Client: c, Verify: true})
		if err != nil {
			t.Fatal(err)
		}
		if st.Verified != 52 || len(st.Mismatches) != 0 {
			t.Errorf("stats %+v", st)
		}
		dst := filepath.Join(tempDir(t), "back2")
		if _, err := Copy(ctx, ep(t, "daos://other/"+label2+"/copy/tree/"), ep(t, dst), opts); err != nil {
			t.Fatal(err)
		}
		sameTree(t, src, dst)
		checkHoles(t, dst)
	})

	t.Run("one file", func(t *testing.T) {
		dir := tempDir(t)
		if _, err := Copy(ctx, ep(t, "daos://tank/"+label+"/tree/sparse/middle"), ep(t, dir), opts); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mustRead(t, filepath.Join(dir, "middle")), mustRead(t, filepath.Join(src, "sparse/middle"))) {
			t.Error("sparse/middle differs")
		}
		if _, err := Copy(ctx, ep(t, filepath.Join(src, "a/one")), ep(t, "daos://tank/"+label+"/renamed"), opts); err != nil {
			t.Fatal(err)
		}
		if got := readDFS(t, f, "/renamed"); string(got) != "one\n" {
			t.Errorf("renamed holds %q", got)
		}
		// a destination ending in / is a directory, made if missing
		if _, err := Copy(ctx, ep(t, "daos://tank/"+label+"/renamed"), ep(t, filepath.Join(dir, "new")+"/"), opts); err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, filepath.Join(dir, "new", "renamed")); string(got) != "one\n" {
			t.Errorf("new/renamed holds %q", got)
		}
	})
}

// TestInterrupted cancels a copy midway, then runs it again: the second
// run finishes the job, recopying only what the first left incomplete.
func TestInterrupted(t *testing.T) {
	ctx := context.Background()
	c := client(t)
	src := filepath.Join(tempDir(t), "tree")
	makeTree(t, src)
	label, _ := newPOSIXCont(t, c, "tank", dfs.Attr{})
	cctx, cancel := context.WithCancel(ctx)
	var n int
	pieceHook = func() {
		if n++; n == 40 {
			cancel()
		}
	}
	t.Cleanup(func() { pieceHook = nil })
	opts := Options{Client: c, Workers: 1, PieceSize: 256 << 10}
	st, err := Copy(cctx, ep(t, src+"/"), ep(t, "daos://tank/"+label), opts)
	if !daoserr.Is(err, daoserr.Canceled) || !strings.Contains(err.Error(), "run the same copy again") {
		t.Fatalf("interrupted copy: %v", err)
	}
	if st.Files >= 52 {
		t.Fatalf("the copy was not interrupted: %+v", st)
	}
	pieceHook = nil
	st2, err := Copy(ctx, ep(t, src+"/"), ep(t, "daos://tank/"+label), opts)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Files+st2.Skipped != 52 || st2.Skipped < st.Files {
		t.Errorf("first run %+v, second %+v", st, st2)
	}
	dst := filepath.Join(tempDir(t), "back")
	if _, err := Copy(ctx, ep(t, "daos://tank/"+label), ep(t, dst), Options{Client: c, Verify: true}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst)
}

// TestVerify corrupts a byte of a copy (keeping its size and mtime, so a
// copy skips it) and finds that --verify catches it and --force repairs it.
func TestVerify(t *testing.T) {
	ctx := context.Background()
	c := client(t)
	src := filepath.Join(tempDir(t), "tree")
	makeTree(t, src)
	label, f := newPOSIXCont(t, c, "tank", dfs.Attr{})
	opts := Options{Client: c, Verify: true}
	if _, err := Copy(ctx, ep(t, src+"/"), ep(t, "daos://tank/"+label), opts); err != nil {
		t.Fatal(err)
	}
	o, err := f.LookupPath(ctx, "/big.bin", false)
	if err != nil {
		t.Fatal(err)
	}
	stat, err := o.Stat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	o.Read(ctx, b, 12345678)
	b[0] ^= 0x20
	if err := o.Write(ctx, b, 12345678); err != nil {
		t.Fatal(err)
	}
	if _, err := o.SetAttr(ctx, dfs.SetAttr{Mtime: &stat.Mtime}); err != nil {
		t.Fatal(err)
	}
	o.Close(ctx)

	st, err := Copy(ctx, ep(t, src+"/"), ep(t, "daos://tank/"+label), opts)
	if !daoserr.Is(err, daoserr.Csum) || len(st.Mismatches) != 1 || !strings.Contains(st.Mismatches[0], "big.bin: bytes [8388608, 16777216)") {
		t.Fatalf("verify after corruption: %v, %+v", err, st)
	}
	if !strings.Contains(err.Error(), "--force") {
		t.Errorf("no resolution: %v", err)
	}
	opts.Force = true
	if st, err := Copy(ctx, ep(t, src+"/"), ep(t, "daos://tank/"+label), opts); err != nil || st.Files != 52 {
		t.Fatalf("forced copy: %v %+v", err, st)
	}
}

// TestBadInput: each mistake fails with an error that says what is wrong
// and what to do.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	c := client(t)
	label, f := newPOSIXCont(t, c, "tank", dfs.Attr{})
	if err := f.Mkdir(ctx, f.Root(), "a", 0o755, dfs.OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := tempDir(t)
	os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o644)

	// a UNS directory whose container is then destroyed
	p, err := c.PoolConnect(ctx, "tank", daos.RW)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := p.ContCreate(ctx, daos.ContCreateOptions{Label: "doomed", Type: "POSIX"})
	if err != nil {
		t.Fatal(err)
	}
	unsDir := filepath.Join(dir, "uns")
	if err := uns.Create(unsDir, uns.Link{Type: "POSIX", Pool: p.Info.Uuid, Cont: ct.Uuid}); err != nil {
		t.Fatal(err)
	}
	if err := p.ContDestroy(ctx, "doomed"); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, src, dst string
		code           daoserr.Code
		want           []string
	}{
		{"missing source", filepath.Join(dir, "nosuch"), "daos://tank/" + label, daoserr.Nonexist, []string{"source", "nosuch", "does not exist"}},
		{"missing source in a container", "daos://tank/" + label + "/nosuch", dir, daoserr.Nonexist, []string{"does not exist"}},
		{"destination inside source", "daos://tank/" + label + "/a", "daos://tank/" + label + "/a/b", daoserr.Inval, []string{"inside the source"}},
		{"destination is source", "daos://tank/" + label + "/", "daos://tank/" + label + "/", daoserr.Inval, []string{"inside the source"}},
		{"missing destination container", dir, "daos://tank/nosuch", daoserr.Nonexist, []string{"container nosuch does not exist in pool tank", "daos cont create tank nosuch --type POSIX"}},
		{"missing source container", "daos://tank/nosuch", dir, daoserr.Nonexist, []string{"container nosuch does not exist"}},
		{"missing pool", "daos://nopool/c", dir, daoserr.Nonexist, []string{"nopool"}},
		{"UNS path to a destroyed container", unsDir, filepath.Join(dir, "out"), daoserr.Nonexist, []string{"UNS directory " + unsDir, "does not exist", "rmdir " + unsDir}},
		{"UNS path below it", filepath.Join(unsDir, "sub/dir"), filepath.Join(dir, "out"), daoserr.Nonexist, []string{"UNS directory " + unsDir}},
		{"POSIX to POSIX", dir, filepath.Join(dir, "x"), daoserr.Inval, []string{"POSIX paths", "rsync"}},
		{"pool only", dir, "daos://tank", daoserr.Inval, []string{"no container"}},
		{"directory over a file", dir + "/", "daos://tank/" + label + "/afile", daoserr.Exist, []string{"afile exists and is not a directory"}},
	}
	fo, err := f.Open(ctx, f.Root(), "afile", os.O_CREATE|os.O_RDWR, 0o644, dfs.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fo.Close(ctx)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := ParseEndpoint(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			dst, err := ParseEndpoint(tc.dst)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Copy(ctx, src, dst, Options{Client: c})
			if !daoserr.Is(err, tc.code) {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

func TestParseEndpoint(t *testing.T) {
	dir := t.TempDir()
	unsDir := filepath.Join(dir, "uns")
	if err := uns.Create(unsDir, uns.Link{Type: "POSIX", Pool: "P", Cont: "C"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in   string
		want Endpoint
		err  bool
	}{
		{in: "daos://tank/c", want: Endpoint{Pool: "tank", Cont: "c", Dir: "/", Contents: true}},
		{in: "daos://tank/c/", want: Endpoint{Pool: "tank", Cont: "c", Dir: "/", Contents: true}},
		{in: "daos://tank/c/a/b", want: Endpoint{Pool: "tank", Cont: "c", Dir: "/a/b"}},
		{in: "daos://tank/c/a/b/", want: Endpoint{Pool: "tank", Cont: "c", Dir: "/a/b", Contents: true}},
		{in: "daos://tank/c//a/../b", want: Endpoint{Pool: "tank", Cont: "c", Dir: "/b"}},
		{in: "daos://tank", want: Endpoint{Pool: "tank", Dir: "/", Contents: true}},
		{in: "daos://", err: true},
		{in: "daos:///c", err: true},
		{in: "", err: true},
		{in: dir + "/x", want: Endpoint{Path: dir + "/x"}},
		{in: dir + "/x/", want: Endpoint{Path: dir + "/x", Contents: true}},
		{in: unsDir, want: Endpoint{Pool: "P", Cont: "C", Dir: "/", UNS: unsDir, Contents: true}},
		{in: unsDir + "/a/b", want: Endpoint{Pool: "P", Cont: "C", Dir: "/a/b", UNS: unsDir}},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseEndpoint(tc.in)
			if tc.err {
				if !daoserr.Is(err, daoserr.Inval) {
					t.Fatalf("got %+v, %v; want DER_INVAL", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// FuzzParseEndpoint: no panic, and a parsed container endpoint prints as
// something that parses the same.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"daos://tank/c", "daos://p/c/a/b/", "daos://p", "daos:///", "daos://p//c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !strings.HasPrefix(s, "daos://") {
			s = "daos://" + s // local paths would touch the file system
		}
		e, err := ParseEndpoint(s)
		if err != nil {
			return
		}
		e2, err := ParseEndpoint(e.String())
		if err != nil || e2.Pool != e.Pool || e2.Cont != e.Cont || e2.Dir != e.Dir {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, e, e.String(), e2, err)
		}
	})
}

func TestDataRuns(t *testing.T) {
	b := make([]byte, 5*zeroBlock)
	b[100] = 1                     // block 0 (with off 0)
	b[3*zeroBlock+5] = 1           // block 3
	b[4*zeroBlock+zeroBlock-1] = 1 // block 4, adjacent
	cases := []struct {
		off  int64
		want []region
	}{
		{0, []region{{0, zeroBlock}, {3 * zeroBlock, 2 * zeroBlock}}},
		// from a file offset that is not block-aligned, blocks are the file's
		{100, []region{{0, zeroBlock - 100}, {3*zeroBlock - 100, zeroBlock}, {5*zeroBlock - 100, 100}}},
	}
	for _, tc := range cases {
		got := dataRuns(b, tc.off)
		if len(got) == 0 || !equalRegions(coalesce(got), coalesce(tc.want)) {
			t.Errorf("off %d: %v, want %v", tc.off, got, tc.want)
		}
	}
	if r := dataRuns(make([]byte, 3*zeroBlock+7), 0); len(r) != 0 {
		t.Errorf("zeros: %v", r)
	}
}

func coalesce(rs []region) []region {
	var out []region
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].off+out[n-1].n == r.off {
			out[n-1].n += r.n
			continue
		}
		out = append(out, r)
	}
	return out
}

func equalRegions(a, b []region) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestProgressTo: a progress line goes to a terminal, not to a file.
func TestProgressTo(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ProgressTo(f) != nil || ProgressTo(nil) != nil {
		t.Error("progress to a file")
	}
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	defer pty.Close()
	if ProgressTo(pty) == nil {
		t.Error("no progress to a terminal")
	}
}
