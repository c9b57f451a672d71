package launcher

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/godaos/godaos/internal/daoserr"
)

// Fault injection on a local system started by another launcher process
// (launcher kill|restart): what a demo or an administrator rehearsing a
// failure does to one server.

// localState reads dir's state and checks that server i is one of a local
// system's.
func localState(dir string, i int) (State, error) {
	st, err := ReadState(dir)
	if err != nil {
		return st, daoserr.Wrap(daoserr.Nonexist, err, "launcher: no system started in %s", dir)
	}
	if st.Mode != "" {
		return st, daoserr.Newf(daoserr.NoSys, "launcher: the system in %s was started with %s: kill and restart work on local systems", dir, st.Mode)
	}
	if i < 0 || i >= len(st.PIDs) {
		return st, daoserr.Newf(daoserr.Inval, "launcher: no server %d in %s (it has %d)", i, dir, len(st.PIDs))
	}
	return st, nil
}

// KillServerDir sends sig to server i of the local system started in dir
// (SIGKILL: a crash; SIGSTOP and SIGCONT: a pause).
func KillServerDir(dir string, i int, sig syscall.Signal) error {
	st, err := localState(dir, i)
	if err != nil {
		return err
	}
	if !ours(st.PIDs[i]) {
		return daoserr.Newf(daoserr.Nonexist, "launcher: server %d (pid %d) is not running", i, st.PIDs[i])
	}
	if err := syscall.Kill(st.PIDs[i], sig); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "launcher: signal server %d", i)
	}
	return nil
}

// RestartServerDir starts server i of the local system started in dir
// again, on its configuration and storage, and waits (up to timeout) until
// its engines have joined.
func RestartServerDir(ctx context.Context, dir string, i int, bin string, timeout time.Duration) error {
	st, err := localState(dir, i)
	if err != nil {
		return err
	}
	if ours(st.PIDs[i]) {
		return daoserr.Newf(daoserr.Busy, "launcher: server %d (pid %d) is still running", i, st.PIDs[i]).WithResolution("launcher kill --server %d first", i)
	}
	if bin, err = findServerBin(bin); err != nil {
		return err
	}
	s := &LocalSystem{bin: bin}
	cmd, _, err := s.startServer(st.Dirs[i])
	if err != nil {
		return err
	}
	st.PIDs[i] = cmd.Process.Pid
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, stateFile), b, 0o644); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "launcher: state file")
	}
	deadline := time.Now().Add(timeout)
	for {
		err := allServersJoined(ctx, st.HostList[i:i+1], nil)
		if err == nil {
			return nil
		}
		if !ours(cmd.Process.Pid) {
			return daoserr.Newf(daoserr.Unreach, "launcher: server %d exited while starting", i).WithResolution("see %s", filepath.Join(st.Dirs[i], "server.log"))
		}
		if time.Now().After(deadline) {
			return daoserr.Newf(daoserr.TimedOut, "launcher: server %d did not join within %v (%v)", i, timeout, err).
				WithResolution("see %s", filepath.Join(st.Dirs[i], "server.log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
