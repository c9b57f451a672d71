package daoscmd

import (
	"context"
	"strings"

	"github.com/godaos/godaos/daos"
	"github.com/godaos/godaos/daos/dfs"
	"github.com/godaos/godaos/daos/uns"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/internal/units"
)

// posixCreateFlags are daos cont create's options for POSIX containers
// (the DFS namespace's defaults) and for UNS.
type posixCreateFlags struct {
	ChunkSize  string `name:"chunk-size" placeholder:"SIZE" help:"POSIX: files' chunk size, e.g. 1MiB (the default)."`
	Oclass     string `name:"oclass" placeholder:"CLASS" help:"POSIX: the object class of files and directories (default: chosen from rd_fac, as DAOS does)."`
	DirOclass  string `name:"dir-oclass" placeholder:"CLASS" help:"POSIX: directories' object class."`
	FileOclass string `name:"file-oclass" placeholder:"CLASS" help:"POSIX: files' object class."`
	Path       string `name:"path" placeholder:"DIR" help:"Also create DIR (on any file system with user xattrs) pointing at the container (UNS)."`
}

// check validates the options against the container type, and returns the
// namespace's attributes when the container is to hold one.
func (f posixCreateFlags) check(opts *daos.ContCreateOptions) (*dfs.Attr, error) {
	posix := strings.EqualFold(opts.Type, "POSIX")
	if posix {
		opts.Type = "POSIX"
	}
	if !posix {
		for name, v := range map[string]string{"--chunk-size": f.ChunkSize, "--oclass": f.Oclass, "--dir-oclass": f.DirOclass, "--file-oclass": f.FileOclass} {
			if v != "" {
				return nil, daoserr.Newf(daoserr.Inval, "%s is for POSIX containers", name).WithResolution("add --type POSIX")
			}
		}
		return nil, nil
	}
	var a dfs.Attr
	if f.ChunkSize != "" {
		n, err := units.ParseByteSize(f.ChunkSize)
		if err != nil {
			return nil, daoserr.Wrap(daoserr.Inval, err, "--chunk-size %q", f.ChunkSize)
		}
		if n == 0 {
			return nil, daoserr.Newf(daoserr.Inval, "--chunk-size 0").WithResolution("give a size such as 1MiB")
		}
		a.ChunkSize = uint64(n)
	}
	for _, c := range []struct {
		flag, v string
		dst     *daos.ClassID
	}{{"--oclass", f.Oclass, &a.ObjClass}, {"--dir-oclass", f.DirOclass, &a.DirClass}, {"--file-oclass", f.FileOclass, &a.FileClass}} {
		if c.v == "" {
			continue
		}
		id, err := daos.ParseClass(c.v)
		if err != nil {
			return nil, daoserr.Context(err, "%s", c.flag)
		}
		*c.dst = id
	}
	return &a, nil
}

// finishPOSIX formats a new POSIX container's namespace and creates its UNS
// directory; if either fails the container is destroyed again, so that a
// failed create leaves nothing behind.
func (t *tool) finishPOSIX(ctx context.Context, p *daos.Pool, ct *ctlpb.Cont, f posixCreateFlags, attr *dfs.Attr) (err error) {
	defer func() {
		if err != nil {
			p.ContDestroy(ctx, ct.Uuid)
		}
	}()
	if attr != nil {
		h, err := p.ContOpen(ctx, ct.Uuid, daos.RW)
		if err != nil {
			return err
		}
		defer h.Close(ctx)
		if err := dfs.Format(ctx, h, *attr); err != nil {
			return daoserr.Context(err, "create the POSIX namespace of container %s", ct.Label)
		}
	}
	if f.Path != "" {
		typ := ct.Type
		if typ == "" || typ == "unknown" {
			typ = "UNKNOWN"
		}
		return uns.Create(f.Path, uns.Link{Type: typ, Pool: p.Info.Uuid, Cont: ct.Uuid})
	}
	return nil
}

// resolve names the container: POOL CONT, or --path.
func (a contPathArgs) resolve() (pool, cont string, err error) {
	switch {
	case a.Path != "" && a.Pool != "":
		return "", "", daoserr.Newf(daoserr.Inval, "both --path and a pool given").WithResolution("name the container by POOL CONT or by --path, not both")
	case a.Path != "":
		l, err := uns.Resolve(a.Path)
		if err != nil {
			return "", "", err
		}
		return l.Pool, l.Cont, nil
	case a.Pool == "" || a.Cont == "":
		return "", "", daoserr.Newf(daoserr.Inval, "no container named").WithResolution("give POOL CONT, or --path DIR")
	}
	return a.Pool, a.Cont, nil
}
