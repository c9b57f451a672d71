// Package uns is DAOS's Unified Namespace (duns): a directory on any POSIX
// file system (Lustre, NFS, ext4, ...) that stands for a container, through
// its extended attribute "user.daos" = "DAOS.<type>://<pool>/<container>".
// Tools given such a path (daos cont query --path, dfuse --path, daos fs
// copy) follow it to the container.
package uns

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/godaos/godaos/internal/daoserr"
)

// Xattr is the attribute that holds the link (DUNS_XATTR_NAME).
const Xattr = "user.daos"

// Link is what a UNS path points at.
type Link struct {
	Type string // container layout: POSIX, HDF5, ...
	Pool string // label or UUID
	Cont string // label or UUID
}

// String is the attribute's value (DUNS_XATTR_FMT).
func (l Link) String() string { return fmt.Sprintf("DAOS.%s://%s/%s", l.Type, l.Pool, l.Cont) }

// Parse reads an attribute value.
func Parse(v string) (Link, error) {
	rest, ok := strings.CutPrefix(v, "DAOS.")
	typ, rest, ok2 := strings.Cut(rest, "://")
	pool, cont, ok3 := strings.Cut(rest, "/")
	if !ok || !ok2 || !ok3 || typ == "" || pool == "" || cont == "" || strings.Contains(cont, "/") {
		return Link{}, daoserr.Newf(daoserr.Inval, "%q is not a UNS link (DAOS.<type>://<pool>/<container>)", v)
	}
	return Link{Type: typ, Pool: pool, Cont: cont}, nil
}

// Create makes the directory path (which must not exist) and points it at
// the container (duns_create_path's last step).
func Create(path string, l Link) error {
	if err := os.Mkdir(path, 0o755); err != nil {
		return daoserr.Wrap(daoserr.Exist, err, "UNS path %s", path).WithResolution("give a path that does not exist yet; its parent must")
	}
	if err := unix.Setxattr(path, Xattr, []byte(l.String()), unix.XATTR_CREATE); err != nil {
		os.Remove(path)
		return daoserr.Wrap(daoserr.NoSys, err, "set %s on %s", Xattr, path).
			WithResolution("the file system of %s must support user extended attributes (ext4, xfs, Lustre: mount with user_xattr)", path)
	}
	return nil
}

// Resolve reads the link at path: DER_NONEXIST if path has none.
func Resolve(path string) (Link, error) {
	buf := make([]byte, 1024)
	n, err := unix.Getxattr(path, Xattr, buf)
	switch {
	case errors.Is(err, unix.ENODATA):
		return Link{}, daoserr.Newf(daoserr.Nonexist, "%s is not a UNS path (it has no %s attribute)", path, Xattr).
			WithResolution("create one with `daos cont create <pool> --path %s`, or give --pool and --cont", path)
	case err != nil:
		return Link{}, daoserr.Wrap(daoserr.Inval, err, "read %s of %s", Xattr, path)
	}
	return Parse(string(buf[:n]))
}

// Destroy removes a UNS directory (duns_destroy_path): the attribute and
// the empty directory.
func Destroy(path string) error {
	if _, err := Resolve(path); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return daoserr.Wrap(daoserr.Busy, err, "remove UNS path %s", path)
	}
	return nil
}
