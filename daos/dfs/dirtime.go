package dfs

import (
	"context"
	"time"

	"github.com/godaos/godaos/daos"
)

// dirTouchWindow bounds how often a mount writes one directory's mtime: an
// entry created, removed or renamed in it moves the directory's mtime and
// ctime on (POSIX), but a burst of creates in one directory (mdtest, an
// untar) writes them once per window rather than once per entry. The times
// stored are therefore at most this much older than the last change made
// through this mount.
const dirTouchWindow = 10 * time.Millisecond

// touchDir records that dir's entries changed now.
func (f *FS) touchDir(ctx context.Context, dir *Obj) {
	now := time.Now().UnixNano()
	last := dir.n.touched.Load()
	if last != 0 && now-last < int64(dirTouchWindow) || !dir.n.touched.CompareAndSwap(last, now) {
		return
	}
	t := time.Unix(0, now)
	e := entry{mtime: t, ctime: t}
	// mtime and ctime seconds, then their nanoseconds: two runs of 16 bytes.
	// A failure (the directory removed meanwhile) loses only a time.
	dir.updateInode(ctx, &e, []daos.Recx{{Idx: mtimeIdx, Nr: 16}, {Idx: mtimeNsecIdx, Nr: 16}})
}
