package units

import "testing"

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"64": 64, "4K": 4096, "4KiB": 4096, "64k": 64 << 10, "1M": 1 << 20, "2G": 2 << 30, "10B": 10} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "K", "4X", "-1", "1.5M"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
	for v, want := range map[ByteSize]string{64: "64B", 4096: "4KiB", 1 << 20: "1MiB", 1500: "1500B"} {
		if v.String() != want {
			t.Errorf("%d prints as %s, want %s", uint64(v), v, want)
		}
	}
}

func TestHuman(t *testing.T) {
	for b, want := range map[uint64]string{999: "999 B", 1000: "1.0 kB", 1 << 30: "1.1 GB"} {
		if got := Human(b); got != want {
			t.Errorf("Human(%d) = %s, want %s", b, got, want)
		}
	}
}
