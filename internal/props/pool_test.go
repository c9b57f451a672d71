package props

import (
	"strings"
	"testing"

	"github.com/godaos/godaos/internal/daoserr"
)

func TestParse(t *testing.T) {
	got, err := Parse("reclaim:disabled, ec_cell_sz:128K,space_rb:10")
	if err != nil || got["reclaim"] != "disabled" || got["ec_cell_sz"] != "128KiB" || got["space_rb"] != "10" {
		t.Fatalf("%v %v", got, err)
	}
	for in, want := range map[string]string{
		"reclaim:sometimes":  `"sometimes" is not one of disabled, lazy, time`,
		"space_rb:101":       "from 0 to 100",
		"ec_cell_sz:2K":      "from 4KiB to 1MiB",
		"ec_cell_sz:2M":      "from 4KiB to 1MiB",
		"ec_cell_sz:4100":    "multiple of 32",
		"colour:blue":        `unknown pool property "colour"`,
		"reclaim":            "want name:value",
		"checkpoint_freq:-1": "from 1 to 1000000",
	} {
		_, err := Parse(in)
		if !daoserr.Is(err, daoserr.Inval) || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want DER_INVAL containing %q", in, err, want)
		}
	}
	// DAOS's cell sizes need not be powers of two: 100 KiB and 96 KiB are valid
	for _, v := range []string{"100K", "96K", "4K", "1M"} {
		if _, err := Parse("ec_cell_sz:" + v); err != nil {
			t.Errorf("ec_cell_sz:%s refused: %v", v, err)
		}
	}
	if d, _ := Find("ec_cell_sz"); d.Default != "128KiB" {
		t.Errorf("ec_cell_sz default %q, want 128KiB (DAOS_EC_CELL_DEF)", d.Default)
	}
	for _, d := range Pool {
		if v, err := d.Check(d.Default); err != nil || v != d.Default {
			t.Errorf("default of %s (%q) is not canonical: %q %v", d.Name, d.Default, v, err)
		}
	}
	all := Merge(map[string]string{"scrub": "timed"})
	if all["scrub"] != "timed" || all["reclaim"] != "lazy" || len(all) != len(Pool) {
		t.Errorf("merge: %v", all)
	}
	if s := Sorted(map[string]string{"zz": "1", "scrub": "x", "reclaim": "y"}); strings.Join(s, ",") != "reclaim,scrub,zz" {
		t.Errorf("sorted: %v", s)
	}
}
