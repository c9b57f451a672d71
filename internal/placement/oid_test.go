package placement

import (
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

func TestOTypeValues(t *testing.T) {
	// daos_otype_t values.
	for _, tc := range []struct {
		t    OType
		want uint8
	}{{OTMultiHashed, 0}, {OTOIT, 1}, {OTDkeyUint64, 2}, {OTKVHashed, 8}, {OTKVLexical, 10},
		{OTArray, 11}, {OTArrayAttr, 12}, {OTArrayByte, 13}, {OTOITV2, 14}} {
		if uint8(tc.t) != tc.want {
			t.Errorf("%s = %d, DAOS has %d", tc.t, tc.t, tc.want)
		}
	}
	if !OTArrayByte.IsArray() || OTKVHashed.IsArray() || !OTKVUint64.IsKV() || !OTArray.DkeyUint64() || OTKVHashed.DkeyUint64() {
		t.Error("type predicates")
	}
}

func TestOIDBitLayout(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lo     uint64
		hiUser uint32
		class  ClassID
		otype  OType
		hi     uint64
	}{
		{"zero", 0, 0, S1, OTMultiHashed, 0x0001_0001_0000_0000},
		{"array rp3", 42, 0xdeadbeef, MakeClass(RP3, 170), OTArrayByte, 0x0d09_00aa_dead_beef},
		{"kv ec", ^uint64(0), 0xffffffff, MakeClass(RS16P2, 65534), OTKVLexical, 0x0a27_fffe_ffff_ffff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := MakeOID(tc.lo, tc.hiUser, tc.class, tc.otype)
			if o.Hi != tc.hi || o.Lo != tc.lo {
				t.Fatalf("MakeOID = %#x.%#x, want %#x.%#x", o.Hi, o.Lo, tc.hi, tc.lo)
			}
			if o.Class() != tc.class || o.Type() != tc.otype || o.UserHi() != tc.hiUser ||
				o.Groups() != tc.class.Groups() || o.GroupSize() != tc.class.GroupSize() || o.Redun() != tc.class.Redun() {
				t.Errorf("accessors: class %v type %v hi %#x groups %d size %d", o.Class(), o.Type(), o.UserHi(), o.Groups(), o.GroupSize())
			}
			back, err := ParseOID(o.String())
			if err != nil || back != o {
				t.Errorf("ParseOID(%s) = %v, %v", o, back, err)
			}
		})
	}
	for _, bad := range []string{"", "1", "1.", ".1", "a.b", "-1.0", "1.2.3"} {
		if _, err := ParseOID(bad); !daoserr.Is(err, daoserr.Inval) {
			t.Errorf("ParseOID(%q) = %v", bad, err)
		}
	}
}

func TestGenerateOID(t *testing.T) {
	big := PoolShape{Targets: 512, Domains: 64}
	for _, tc := range []struct {
		name   string
		class  string // "" = auto
		otype  OType
		pool   PoolShape
		rdFac  int
		want   string // resolved class, "" = error
		errHas string
	}{
		{"S1", "S1", OTMultiHashed, big, 0, "S1", ""},
		{"SX", "SX", OTArrayByte, big, 0, "S512", ""},
		// GX = targets / group size, less min(rd_fac, 30% of targets / group size) reserve groups.
		{"RP_3GX rf0", "RP_3GX", OTArray, big, 0, "RP_3G170", ""},
		{"RP_3GX rf2", "RP_3GX", OTArray, big, 2, "RP_3G168", ""},
		{"EC_4P2GX rf2", "EC_4P2GX", OTArrayByte, big, 2, "EC_4P2G83", ""},
		{"RP_3GX small", "RP_3GX", OTArray, PoolShape{Targets: 4, Domains: 4}, 2, "RP_3G1", ""},
		{"RP_2GX reserve", "RP_2GX", OTArray, PoolShape{Targets: 40, Domains: 5}, 1, "RP_2G19", ""},
		{"auto rf2 array", "", OTArrayByte, big, 2, "EC_16P2G26", ""},
		{"auto rf0 dir", "", OTMultiHashed, big, 0, "S1", ""},
		{"group needs more domains", "EC_4P2G1", OTArray, PoolShape{Targets: 40, Domains: 5}, 0, "", "fault domains"},
		{"groups need more targets", "RP_3G32", OTArray, PoolShape{Targets: 64, Domains: 8}, 0, "", "targets"},
		{"weaker than rd_fac", "RP_2G1", OTMultiHashed, big, 2, "", "rd_fac 2"},
		{"bad type", "S1", OType(15), big, 0, "", "object type"},
		{"empty pool", "S1", OTMultiHashed, PoolShape{}, 0, "", "pool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c ClassID
			if tc.class != "" {
				c, _ = ParseClass(tc.class)
			}
			tc.pool.RdFac = tc.rdFac
			o, err := GenerateOID(7, 9, c, tc.otype, tc.pool)
			if tc.want == "" {
				if !daoserr.Is(err, daoserr.Inval) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("got %v, %v; want DER_INVAL mentioning %q", o.Class(), err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Class().String() != tc.want || o.Lo != 7 || o.UserHi() != 9 || o.Type() != tc.otype {
				t.Errorf("got %v (lo %d hi %d type %v), want %s", o.Class(), o.Lo, o.UserHi(), o.Type(), tc.want)
			}
		})
	}
}
