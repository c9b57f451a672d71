package vos

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/godaos/godaos/internal/daoserr"
)

// Epoch is a point in a container's history. Every update and punch carries one; a
// read at epoch E sees the newest version at or below E.
type Epoch = uint64

// EpochMax reads "the latest": every durable version.
const EpochMax Epoch = math.MaxUint64

// OID is a 128-bit object id. As in DAOS, the top 32 bits of Hi encode the object
// type (8 bits), redundancy class (8 bits) and group count (16 bits); VOS only reads
// the type, to know whether keys are ordered as integers.
type OID struct{ Hi, Lo uint64 }

func (o OID) String() string { return fmt.Sprintf("%x.%x", o.Hi, o.Lo) }

// ParseOID parses the "hi.lo" hexadecimal form printed by String.
func ParseOID(s string) (OID, error) {
	hi, lo, ok := strings.Cut(s, ".")
	if !ok {
		return OID{}, fmt.Errorf("object id %q: want HI.LO in hexadecimal, e.g. 100000000.1", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 64)
	l, err2 := strconv.ParseUint(lo, 16, 64)
	if err1 != nil || err2 != nil {
		return OID{}, fmt.Errorf("object id %q: want HI.LO in hexadecimal, e.g. 100000000.1", s)
	}
	return OID{h, l}, nil
}

// ObjType is DAOS's daos_otype_t, stored in the top 8 bits of OID.Hi.
type ObjType uint8

const (
	ObjMultiHashed  ObjType = 0
	ObjOIT          ObjType = 1
	ObjDkeyUint64   ObjType = 2
	ObjAkeyUint64   ObjType = 3
	ObjMultiUint64  ObjType = 4
	ObjDkeyLexical  ObjType = 5
	ObjAkeyLexical  ObjType = 6
	ObjMultiLexical ObjType = 7
	ObjKVHashed     ObjType = 8
	ObjKVUint64     ObjType = 9
	ObjKVLexical    ObjType = 10
	ObjArray        ObjType = 11
	ObjArrayAttr    ObjType = 12
	ObjArrayByte    ObjType = 13
)

// Type returns the object type encoded in the OID.
func (o OID) Type() ObjType { return ObjType(o.Hi >> 56) }

// DkeyUint64 reports whether dkeys of this object are 8-byte integers, ordered numerically.
func (t ObjType) DkeyUint64() bool {
	switch t {
	case ObjDkeyUint64, ObjMultiUint64, ObjKVUint64, ObjArray, ObjArrayAttr, ObjArrayByte:
		return true
	}
	return false
}

// AkeyUint64 reports whether akeys of this object are 8-byte integers.
func (t ObjType) AkeyUint64() bool { return t == ObjAkeyUint64 || t == ObjMultiUint64 }

// UUID identifies a container.
type UUID [16]byte

func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// ParseUUID parses the canonical 36-character form.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 {
		return u, fmt.Errorf("uuid %q: want 32 hex digits, e.g. 12345678-1234-1234-1234-123456789abc", s)
	}
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, fmt.Errorf("uuid %q: %v", s, err)
	}
	return u, nil
}

// UUIDFromUint64 makes a UUID from a number, handy in tests and benchmarks.
func UUIDFromUint64(n uint64) UUID {
	var u UUID
	binary.BigEndian.PutUint64(u[8:], n)
	return u
}

// IODType is the kind of value an akey holds (daos_iod_type_t). It is fixed by the
// first update of the akey.
type IODType uint8

const (
	IODNone   IODType = 0
	IODSingle IODType = 1 // one value, replaced whole by each update
	IODArray  IODType = 2 // records of a fixed size addressed by index
)

func (t IODType) String() string {
	switch t {
	case IODSingle:
		return "single"
	case IODArray:
		return "array"
	}
	return "none"
}

// Recx is an extent of Nr records starting at record index Idx (daos_recx_t).
type Recx struct{ Idx, Nr uint64 }

func (r Recx) end() uint64 { return r.Idx + r.Nr }

func (r Recx) String() string { return fmt.Sprintf("[%d, %d)", r.Idx, r.Idx+r.Nr) }

// IOD describes the I/O to one akey (daos_iod_t).
//
// Single value: Size is the value's size; 0 in an update punches the value, 0 in a
// fetch asks only for the size. Array: Size is the record size and Recxs the extents;
// Size 0 in an update punches the extents (they read back as holes).
type IOD struct {
	Akey  []byte
	Type  IODType
	Size  uint64
	Recxs []Recx
	Flags CondFlags // per-akey conditions, used with CondPerAkey
}

// SGL is a scatter-gather list: the memory side of one IOD. For an update the
// buffers' contents are the data, consumed in order across the IOD's extents; for
// a fetch their lengths are the space to fill.
type SGL [][]byte

func (s SGL) size() uint64 {
	var n uint64
	for _, b := range s {
		n += uint64(len(b))
	}
	return n
}

// CondFlags are DAOS's conditional-operation flags (DAOS_COND_*).
type CondFlags uint32

const (
	CondPunch      CondFlags = 1 << 0 // punch only if the target exists, else DER_NONEXIST
	CondDkeyInsert CondFlags = 1 << 1 // update only if the dkey does not exist, else DER_EXIST
	CondDkeyUpdate CondFlags = 1 << 2 // update only if the dkey exists, else DER_NONEXIST
	CondDkeyFetch  CondFlags = 1 << 3 // fetch fails with DER_NONEXIST if the dkey does not exist
	CondAkeyInsert CondFlags = 1 << 4 // per akey: update only if absent, else DER_EXIST
	CondAkeyUpdate CondFlags = 1 << 5 // per akey: update only if present, else DER_NONEXIST
	CondAkeyFetch  CondFlags = 1 << 6 // per akey: fetch fails with DER_NONEXIST if absent
	CondPerAkey    CondFlags = 1 << 7 // take akey conditions from each IOD's Flags

	// CondMask is the conditions a client may ask for; engines drop other bits.
	CondMask CondFlags = 1<<8 - 1
	// WriteBelowAggregated lets an update at an epoch the container has
	// aggregated past be applied anyway: rebuild's copies, written at the
	// lowest epoch under everything newer (not a client's write: engines
	// never take it from a request).
	WriteBelowAggregated CondFlags = 1 << 16
)

// QueryFlags select what QueryKey returns (DAOS_GET_*).
type QueryFlags uint32

const (
	GetDkey QueryFlags = 1 << 0
	GetAkey QueryFlags = 1 << 1
	GetRecx QueryFlags = 1 << 2
	GetMax  QueryFlags = 1 << 3
	GetMin  QueryFlags = 1 << 4
)

// Anchor makes listing resumable: pass the same Anchor to successive List calls
// until EOF is set. The zero value starts at the beginning.
type Anchor struct {
	Key []byte // last key (or, for extents, the next record index as 8 bytes) returned
	EOF bool
}

// FetchResult reports what a fetch found for one IOD.
type FetchResult struct {
	// Size is the single value's size or the array's record size; 0 means the akey
	// has no visible value at the epoch.
	Size uint64
	// Extents lists, for arrays, the visible data extents within the requested
	// recxs, in index order. Everything else requested was a hole and reads as zeros.
	Extents []Recx
}

// RecxEntry is one visible array extent returned by ListRecx.
type RecxEntry struct {
	Recx  Recx
	Epoch Epoch
}

// Limits keep one request from exhausting a target.
const (
	MaxKeySize        = 64 << 10 // dkeys and akeys; DER_KEY2BIG above
	MaxSingleValue    = 64 << 20 // DER_REC2BIG above
	MaxUpdateBytes    = 1 << 30  // total data of one update
	maxRecxPerRequest = 1 << 20  // extents of one update
	maxCsumChunk      = 1 << 30  // largest checksum chunk
	defaultCsumChunk  = 32 << 10 // DAOS's default cksum_size
	defaultDataThresh = 4 << 10  // DAOS's default data_thresh
)

func checkKey(what string, k []byte) error {
	if len(k) == 0 {
		return daoserr.Newf(daoserr.Inval, "%s is empty", what)
	}
	if len(k) > MaxKeySize {
		return daoserr.Newf(daoserr.Key2Big, "%s is %d bytes, limit is %d", what, len(k), MaxKeySize)
	}
	return nil
}
