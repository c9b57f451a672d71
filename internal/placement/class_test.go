package placement

import (
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

func TestClassIDsMatchDAOS(t *testing.T) {
	// Values of OC_* in daos_obj_class.h: (redun << 24) | groups.
	for _, tc := range []struct {
		name string
		id   uint32
	}{
		{"S1", 0x01000001}, {"S2", 0x01000002}, {"S32", 0x01000020}, {"SX", 0x0100ffff},
		{"RP_2G1", 0x08000001}, {"RP_2GX", 0x0800ffff}, {"RP_3G1", 0x09000001},
		{"RP_3GX", 0x0900ffff}, {"RP_6G32", 0x0c000020}, {"RP_8G1", 0x0d000001},
		{"RP_128G1", 0x14000001}, {"EC_2P1G1", 0x20000001}, {"EC_2P2G4", 0x21000004},
		{"EC_4P1GX", 0x2200ffff}, {"EC_4P2G1", 0x23000001}, {"EC_8P1G2", 0x24000002},
		{"EC_8P2GX", 0x2500ffff}, {"EC_16P1G1", 0x26000001}, {"EC_16P2GX", 0x2700ffff},
		{"EC_4P3G1", 0x28000001}, {"EC_8P3G1", 0x29000001}, {"EC_16P3GX", 0x2a00ffff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseClass(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if uint32(c) != tc.id {
				t.Errorf("ParseClass(%s) = %#x, DAOS has %#x", tc.name, uint32(c), tc.id)
			}
			if c.String() != tc.name {
				t.Errorf("%#x prints as %s, want %s", tc.id, c, tc.name)
			}
		})
	}
}

func TestClassNamesRoundTrip(t *testing.T) {
	all := Classes()
	// 9 S + 5 RP_2..6 × 9 + 8 RP_8..128 (G1 only) + 11 EC × 9.
	if want := 9 + 5*9 + 8 + 11*9; len(all) != want {
		t.Fatalf("%d classes, want %d", len(all), want)
	}
	for _, c := range all {
		t.Run(c.String(), func(t *testing.T) {
			if !c.Valid() {
				t.Fatal("not valid")
			}
			for _, name := range []string{c.String(), strings.ToLower(c.String()), "OC_" + c.String()} {
				got, err := ParseClass(name)
				if err != nil || got != c {
					t.Errorf("ParseClass(%q) = %v, %v; want %v", name, got, err, c)
				}
			}
		})
	}
	// Group counts outside DAOS's names parse too, so resolved classes round-trip.
	if c, err := ParseClass("RP_3G170"); err != nil || c.Groups() != 170 || c.String() != "RP_3G170" {
		t.Errorf("RP_3G170: %v %v", c, err)
	}
}

func TestParseClassBad(t *testing.T) {
	for _, name := range []string{"", "S", "SY", "S0", "S-1", "RP_1G1", "RP_7G1", "RP_3", "RP_3G",
		"RP_3G0", "RP_3G65535", "RP_3GXX", "EC_3P1G1", "EC_4P2", "EC_4P0G1", "EC_4G1", "XYZ", "RP 3G1"} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseClass(name)
			if !daoserr.Is(err, daoserr.Inval) {
				t.Fatalf("ParseClass(%q) = %v, want DER_INVAL", name, err)
			}
			var de *daoserr.Error
			if !asError(err, &de) || !strings.Contains(de.Resolution, "RP_<n>G<g>") || !strings.Contains(err.Error(), name) {
				t.Errorf("error does not name the input and the syntax: %v / %q", err, de.Resolution)
			}
		})
	}
}

func TestClassAttributes(t *testing.T) {
	for _, tc := range []struct {
		name            string
		size, data, par int
		ec              bool
		ft              int
		groups          int
		max             bool
	}{
		{"S1", 1, 1, 0, false, 0, 1, false},
		{"SX", 1, 1, 0, false, 0, MaxGroups, true},
		{"RP_2G4", 2, 1, 1, false, 1, 4, false},
		{"RP_3GX", 3, 1, 2, false, 2, MaxGroups, true},
		{"RP_6G1", 6, 1, 5, false, 5, 1, false},
		{"RP_128G1", 128, 1, 127, false, 127, 1, false},
		{"EC_2P1G1", 3, 2, 1, true, 1, 1, false},
		{"EC_4P2GX", 6, 4, 2, true, 2, MaxGroups, true},
		{"EC_8P3G2", 11, 8, 3, true, 3, 2, false},
		{"EC_16P2G32", 18, 16, 2, true, 2, 32, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseClass(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if c.GroupSize() != tc.size || c.DataCells() != tc.data || c.ParityCells() != tc.par ||
				c.IsEC() != tc.ec || c.FaultTolerance() != tc.ft || c.Groups() != tc.groups || c.IsMax() != tc.max {
				t.Errorf("%s: size %d data %d parity %d ec %v ft %d groups %d max %v", c, c.GroupSize(),
					c.DataCells(), c.ParityCells(), c.IsEC(), c.FaultTolerance(), c.Groups(), c.IsMax())
			}
		})
	}
	if ClassUnknown.Valid() || ClassID(0x07000001).Valid() || MakeClass(RP2, 0).Valid() {
		t.Error("invalid ids reported valid")
	}
}

func TestCheckRdFac(t *testing.T) {
	for _, tc := range []struct {
		class string
		rdFac int
		ok    bool
	}{
		{"S1", 0, true}, {"SX", 1, false}, {"RP_2G1", 1, true}, {"RP_2G1", 2, false},
		{"RP_3GX", 2, true}, {"RP_3GX", 3, false}, {"EC_2P1G1", 1, true}, {"EC_2P1G1", 2, false},
		{"EC_4P2GX", 2, true}, {"EC_8P3G1", 3, true}, {"EC_16P3GX", 4, false}, {"RP_5G1", 4, true},
	} {
		t.Run(tc.class+"/rf"+string(rune('0'+tc.rdFac)), func(t *testing.T) {
			c, _ := ParseClass(tc.class)
			err := CheckRdFac(c, tc.rdFac)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckRdFac(%s, %d) = %v", tc.class, tc.rdFac, err)
			}
			if err != nil {
				if !daoserr.Is(err, daoserr.Inval) || !strings.Contains(err.Error(), tc.class) || !strings.Contains(err.Error(), "rd_fac") {
					t.Errorf("error should be DER_INVAL naming the class and rd_fac: %v", err)
				}
			}
		})
	}
}

func TestAutoClass(t *testing.T) {
	pool := func(domains int) PoolShape { return PoolShape{Targets: domains * 8, Domains: domains} }
	for _, tc := range []struct {
		name    string
		rdFac   int
		otype   OType
		hints   Hints
		domains int
		want    string
	}{
		{"rf0 array", 0, OTArrayByte, 0, 4, "SX"},
		{"rf0 kv", 0, OTKVHashed, 0, 4, "SX"},
		{"rf0 multi", 0, OTMultiHashed, 0, 4, "S1"},
		{"rf0 rp hint", 0, OTMultiHashed, HintRddRP, 4, "RP_2G1"},
		{"rf0 ec hint", 0, OTArray, HintRddEC, 12, "EC_8P1GX"},
		{"rf1 array 20", 1, OTArray, 0, 20, "EC_16P1GX"},
		{"rf1 array 12", 1, OTArrayByte, 0, 12, "EC_8P1GX"},
		{"rf1 array 6", 1, OTArrayByte, 0, 6, "EC_4P1GX"},
		{"rf1 array 3", 1, OTArrayByte, 0, 3, "EC_2P1GX"},
		{"rf1 array 2", 1, OTArrayByte, 0, 2, "RP_2GX"},
		{"rf1 array rp hint", 1, OTArrayByte, HintRddRP, 12, "RP_2GX"},
		{"rf1 kv", 1, OTKVUint64, 0, 12, "RP_2GX"},
		{"rf1 multi", 1, OTMultiLexical, 0, 12, "RP_2G1"},
		{"rf1 multi ec hint", 1, OTMultiHashed, HintRddEC, 12, "EC_8P1G1"},
		{"rf2 array 24", 2, OTArrayByte, 0, 24, "EC_16P2GX"},
		{"rf2 array 12", 2, OTArrayByte, 0, 12, "EC_8P2GX"},
		{"rf2 array 8", 2, OTArrayByte, 0, 8, "EC_4P2GX"},
		{"rf2 array 4", 2, OTArrayByte, 0, 4, "EC_2P2GX"},
		{"rf2 array 3", 2, OTArrayByte, 0, 3, "RP_3GX"},
		{"rf2 multi", 2, OTMultiHashed, 0, 12, "RP_3G1"},
		{"rf3 array", 3, OTArrayByte, 0, 12, "RP_4GX"},
		{"rf3 multi", 3, OTMultiHashed, 0, 12, "RP_4G1"},
		{"rf4 multi", 4, OTMultiHashed, 0, 12, "RP_5G1"},
		{"shard tiny", 0, OTArrayByte, HintShdTiny, 4, "S1"},
		{"shard max", 1, OTMultiHashed, HintShdMax, 4, "RP_2GX"},
		{"shard reg fits", 0, OTMultiHashed, HintShdReg, 64, "S128"},
		{"shard reg too many", 0, OTMultiHashed, HintShdReg, 8, "SX"},
		{"too few domains", 2, OTMultiHashed, 0, 2, ""},
		{"rf5", 5, OTMultiHashed, 0, 12, ""},
		{"two shard hints", 0, OTMultiHashed, HintShdTiny | HintShdMax, 12, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := AutoClass(tc.rdFac, tc.otype, tc.hints, pool(tc.domains))
			if tc.want == "" {
				if !daoserr.Is(err, daoserr.Inval) {
					t.Fatalf("got %v, %v; want DER_INVAL", c, err)
				}
				return
			}
			if err != nil || c.String() != tc.want {
				t.Fatalf("got %v, %v; want %s", c, err, tc.want)
			}
			if CheckRdFac(c, tc.rdFac) != nil {
				t.Errorf("auto class %s is weaker than rd_fac %d", c, tc.rdFac)
			}
		})
	}
}

func asError(err error, target **daoserr.Error) bool {
	de, ok := err.(*daoserr.Error)
	if ok {
		*target = de
	}
	return ok
}
