package main

import "testing"

// TestReviewPositionalPoolCont: as DAOS's dfuse, `dfuse -m DIR POOL CONT`
// takes the positional arguments as pool and container when the mount
// point is given with -m (dfuse_main.c fills the mount point from them
// only when -m is missing).
func TestReviewPositionalPoolCont(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		c    cmdLine
	}{
		{"-m DIR POOL CONT", cmdLine{Mountpoint: dir, Args: []string{"tank", "results"}}},
		{"-m DIR --cont CONT POOL", cmdLine{Mountpoint: dir, Cont: "results", Args: []string{"tank"}}},
		{"DIR POOL CONT", cmdLine{Args: []string{dir, "tank", "results"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			err := c.resolve()
			if err != nil || c.Pool != "tank" || c.Cont != "results" {
				t.Errorf("pool %q cont %q, %v; want tank results", c.Pool, c.Cont, err)
			}
		})
	}
}
