// Package il is what the interception library (bin/libpil4dfs.so, an
// LD_PRELOAD shim, and bin/libgodaos_il.so, the Go client it loads) and
// dfuse agree on: the ioctl through which the shim asks dfuse which DAOS
// object a file on the mount is, and its 64-byte answer. csrc/dfuse_il.h is
// the same contract in C; TestHeaderMatches holds the two together.
//
// Build builds both libraries (make il does the same into bin/).
// docs/design/intercept.md says what is intercepted and what falls back.
package il

import (
	"embed"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/internal/daoserr"
)

// The ioctl: _IOR('D', 0x01, struct dfuse_il_info), a restricted ioctl
// whose command encodes its direction and size, so that the kernel forwards
// it to a FUSE daemon and copies InfoSize bytes back.
const (
	InfoSize    = 64
	InfoMagic   = 0x4c494447 // "GDIL" little-endian: a FUSE file system that is not dfuse does not answer it
	InfoVersion = 1
	IoctlInfo   = uint32(2<<30 | InfoSize<<16 | 'D'<<8 | 0x01)
)

// Info is dfuse's answer: the pool and container the mount serves, and the
// file's object and chunk size, all the library needs to open the file's
// byte array itself (daos_array_open_with_attr, cell size 1).
type Info struct {
	Pool, Cont [16]byte
	OID        daos.OID
	ChunkSize  uint64
}

// Layout of the answer (little-endian): magic u32, version u32, pool
// uuid[16], cont uuid[16], oid hi u64, oid lo u64, chunk size u64.
const (
	offMagic   = 0
	offVersion = 4
	offPool    = 8
	offCont    = 24
	offOIDHi   = 40
	offOIDLo   = 48
	offChunk   = 56
)

// Encode is the answer's bytes.
func (i Info) Encode() []byte {
	b := make([]byte, InfoSize)
	binary.LittleEndian.PutUint32(b[offMagic:], InfoMagic)
	binary.LittleEndian.PutUint32(b[offVersion:], InfoVersion)
	copy(b[offPool:], i.Pool[:])
	copy(b[offCont:], i.Cont[:])
	binary.LittleEndian.PutUint64(b[offOIDHi:], i.OID.Hi)
	binary.LittleEndian.PutUint64(b[offOIDLo:], i.OID.Lo)
	binary.LittleEndian.PutUint64(b[offChunk:], i.ChunkSize)
	return b
}

// DecodeInfo reads an answer, refusing one that is not dfuse's or names no
// usable array.
func DecodeInfo(b []byte) (Info, error) {
	var i Info
	if len(b) != InfoSize {
		return i, daoserr.Newf(daoserr.Inval, "interception info is %d bytes, want %d", len(b), InfoSize)
	}
	if m := binary.LittleEndian.Uint32(b[offMagic:]); m != InfoMagic {
		return i, daoserr.Newf(daoserr.Inval, "interception info has magic %#x, want %#x: not dfuse's answer", m, InfoMagic)
	}
	if v := binary.LittleEndian.Uint32(b[offVersion:]); v != InfoVersion {
		return i, daoserr.Newf(daoserr.Inval, "interception info version %d, this library reads %d", v, InfoVersion).
			WithResolution("use the libpil4dfs.so built with the running dfuse")
	}
	copy(i.Pool[:], b[offPool:])
	copy(i.Cont[:], b[offCont:])
	i.OID = daos.OID{Hi: binary.LittleEndian.Uint64(b[offOIDHi:]), Lo: binary.LittleEndian.Uint64(b[offOIDLo:])}
	i.ChunkSize = binary.LittleEndian.Uint64(b[offChunk:])
	if i.ChunkSize == 0 {
		return i, daoserr.New(daoserr.Inval, "interception info with chunk size 0")
	}
	return i, nil
}

// ParseUUID reads a UUID in its usual text form (8-4-4-4-12 hex digits).
func ParseUUID(s string) ([16]byte, error) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, daoserr.Newf(daoserr.Inval, "%q is not a UUID", s)
	}
	h := strings.ReplaceAll(s, "-", "")
	if n, err := hex.Decode(u[:], []byte(h)); err != nil || n != 16 {
		return u, daoserr.Newf(daoserr.Inval, "%q is not a UUID", s)
	}
	return u, nil
}

// FormatUUID is u in its usual text form.
func FormatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

//go:embed csrc/pil4dfs.c csrc/dfuse_il.h
var csrc embed.FS

// Library file names.
const (
	ShimName = "libpil4dfs.so"
	GoName   = "libgodaos_il.so"
)

// Build builds the two libraries into dir: the Go client as a c-shared
// library (go build -buildmode=c-shared ./cmd/libgodaos_il, run from inside
// the module) and the shim with cc (CC, default gcc). The shim finds the Go
// library next to itself.
func Build(dir string) error {
	gobin := "go"
	if g := os.Getenv("GO"); g != "" {
		gobin = g
	}
	out, err := exec.Command(gobin, "build", "-buildmode=c-shared", "-o", filepath.Join(dir, GoName),
		"github.com/godaos/godaos/cmd/libgodaos_il").CombinedOutput()
	if err != nil {
		return daoserr.Wrap(daoserr.Inval, err, "building %s: %s", GoName, out).
			WithResolution("build from inside the GoDAOS module with cgo enabled (CGO_ENABLED=1 and a C compiler)")
	}
	os.Remove(filepath.Join(dir, strings.TrimSuffix(GoName, ".so")+".h"))
	src, err := os.MkdirTemp("", "godaos-il-src")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	for _, f := range []string{"pil4dfs.c", "dfuse_il.h"} {
		b, err := csrc.ReadFile("csrc/" + f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(src, f), b, 0o644); err != nil {
			return err
		}
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	out, err = exec.Command(cc, ShimArgs(filepath.Join(dir, ShimName), filepath.Join(src, "pil4dfs.c"))...).CombinedOutput()
	if err != nil {
		return daoserr.Wrap(daoserr.Inval, err, "building %s: %s", ShimName, out).WithResolution("install gcc (build-essential)")
	}
	return nil
}

// ShimArgs are the compiler's arguments for the shim (the Makefile uses the
// same).
func ShimArgs(out, src string) []string {
	return []string{"-O2", "-g", "-Wall", "-Wextra", "-fPIC", "-shared", "-fvisibility=hidden", "-o", out, src, "-ldl", "-lpthread"}
}
