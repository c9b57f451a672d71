// Package launcher starts GoDAOS systems and waits until every rank has joined:
//
//   - StartLocal (`launcher local -n N`) runs N daos_server processes on this
//     host, with distinct ports and directories.
//   - StartPdsh (`launcher pdsh -w 'node[1-4]'`) and StartSrun (`launcher srun
//     -N 4`) render one daos_server YAML per node from one template
//     (DIR/<node>.yml, see NodeData) and start one server per node with pdsh or
//     in a Slurm job step; RunNode (`launcher node`) is what runs on each node.
//
// Each records what `launcher stop` (StopDir) needs in DIR/launcher.json.
package launcher

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/godaos/godaos/internal/ctlclient"
	"github.com/godaos/godaos/internal/daoserr"
	"github.com/godaos/godaos/internal/proto/ctlpb"
	"github.com/godaos/godaos/server/config"

	"google.golang.org/grpc"
)

// LocalOptions describe a local system.
type LocalOptions struct {
	N        int    // servers (one engine each)
	Targets  int    // per engine (default 4)
	Dir      string // one subdirectory per server, and the state file
	BasePort int    // server i uses BasePort+10*i (control), +1 (Raft), +2 (telemetry), +3 (fabric); default 10001
	Replicas int    // management service replicas (default 3 when N ≥ 3, else 1)
	Bin      string // daos_server to run (default: next to this program, else in PATH)

	// Transport is the servers' transport_config (nil: allow_insecure), and
	// TLS the launcher's own client certificate for its control calls while it
	// waits (nil: insecure). Tests start secure systems with them.
	Transport *config.TransportConfig
	TLS       *tls.Config
}

// State is what `launcher stop` needs, kept in Dir/launcher.json.
type State struct {
	PIDs     []int    `json:"pids"`     // daos_server processes on this host
	HostList []string `json:"hostlist"` // control addresses, one per server
	Dirs     []string `json:"dirs"`

	// pdsh and srun launches (Mode "pdsh" or "srun"; empty for local)
	Mode      string   `json:"mode,omitempty"`
	Nodes     []string `json:"nodes,omitempty"`
	LaunchPID int      `json:"launch_pid,omitempty"` // the pdsh or srun process, on this host
	Rcmd      string   `json:"rcmd,omitempty"`       // pdsh -R
	Step      string   `json:"step,omitempty"`       // srun: the job step, JOBID.STEPID
	Launcher  string   `json:"launcher,omitempty"`   // this program, as the nodes run it
}

const stateFile = "launcher.json"

// stopTimeout is how long a stop waits for servers to exit after SIGTERM
// (daos_server drains in-flight requests for up to 30 s) before SIGKILL.
const stopTimeout = 30 * time.Second

// LocalSystem is a running local system.
type LocalSystem struct {
	State
	Dir   string
	bin   string
	tls   *tls.Config
	procs []*exec.Cmd
	done  []chan struct{}
}

func (o *LocalOptions) defaults() error {
	if o.N < 1 {
		return daoserr.Newf(daoserr.Inval, "launcher: %d servers", o.N).WithResolution("give -n 1 or more")
	}
	if o.Targets == 0 {
		o.Targets = config.DefaultTargets
	}
	if o.BasePort == 0 {
		o.BasePort = config.DefaultControlPort
	}
	if o.Replicas == 0 {
		o.Replicas = 1
		if o.N >= 3 {
			o.Replicas = 3
		}
	}
	if o.Replicas > o.N {
		return daoserr.Newf(daoserr.Inval, "launcher: %d replicas for %d servers", o.Replicas, o.N)
	}
	var err error
	if o.Bin, err = findServerBin(o.Bin); err != nil {
		return err
	}
	o.Dir, err = filepath.Abs(o.Dir)
	return err
}

// findServerBin is the daos_server to run: bin if given, else the one next to
// this program, else the one in PATH.
func findServerBin(bin string) (string, error) {
	if bin != "" {
		return filepath.Abs(bin)
	}
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), "daos_server"); fileExists(p) {
			return p, nil
		}
	}
	p, err := exec.LookPath("daos_server")
	if err != nil {
		return "", daoserr.New(daoserr.Nonexist, "launcher: daos_server not found").WithResolution("build it (make) and put bin/ in PATH, or give --bin")
	}
	return filepath.Abs(p)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// ServerConfig is server i's configuration in a local system.
func ServerConfig(o LocalOptions, i int) *config.Server {
	dir := filepath.Join(o.Dir, fmt.Sprintf("server%d", i))
	c := config.Default(dir)
	c.Port = o.BasePort + 10*i
	c.TelemetryPort = c.Port + 2
	c.MgmtSvcReplicas = nil
	for r := range o.Replicas {
		c.MgmtSvcReplicas = append(c.MgmtSvcReplicas, fmt.Sprintf("127.0.0.1:%d", o.BasePort+10*r))
	}
	c.FaultPath = fmt.Sprintf("/node%d", i)
	c.Engines[0].Targets = o.Targets
	c.Engines[0].FabricIfacePort = c.Port + 3
	if o.Transport != nil {
		c.TransportConfig = *o.Transport
	}
	return c
}

// StartLocal starts a local system (or restarts one in the same Dir: the
// servers find their storage and their ranks again) and waits until every rank
// has joined.
func StartLocal(ctx context.Context, o LocalOptions) (*LocalSystem, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := refuseRunning(o.Dir); err != nil {
		return nil, err
	}
	s := &LocalSystem{Dir: o.Dir, bin: o.Bin, tls: o.TLS}
	for i := range o.N {
		cfg := ServerConfig(o, i)
		dir := filepath.Join(o.Dir, fmt.Sprintf("server%d", i))
		if err := os.MkdirAll(dir, 0o750); err != nil {
			s.Stop()
			return nil, daoserr.Wrap(daoserr.IO, err, "launcher: create %s", dir)
		}
		b, err := marshalConfig(cfg)
		if err != nil {
			s.Stop()
			return nil, err
		}
		path := filepath.Join(dir, "server.yml")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			s.Stop()
			return nil, daoserr.Wrap(daoserr.IO, err, "launcher: write %s", path)
		}
		cmd, done, err := s.startServer(dir)
		if err != nil {
			s.Stop()
			return nil, err
		}
		s.procs, s.done = append(s.procs, cmd), append(s.done, done)
		s.PIDs = append(s.PIDs, cmd.Process.Pid)
		s.HostList = append(s.HostList, fmt.Sprintf("127.0.0.1:%d", cfg.Port))
		s.Dirs = append(s.Dirs, dir)
	}
	b, _ := json.MarshalIndent(s.State, "", "  ")
	if err := os.WriteFile(filepath.Join(o.Dir, stateFile), b, 0o644); err != nil {
		s.Stop()
		return nil, daoserr.Wrap(daoserr.IO, err, "launcher: state file")
	}
	if err := s.waitJoined(ctx, o.N, 60*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// startServer starts the daos_server of dir (its server.yml, logging to its
// server.log); done is closed when it exits.
func (s *LocalSystem) startServer(dir string) (*exec.Cmd, chan struct{}, error) {
	logf, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, daoserr.Wrap(daoserr.IO, err, "launcher: server log")
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "start", "--auto-format", "-o", filepath.Join(dir, "server.yml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // not killed by the launcher's terminal
	if err := cmd.Start(); err != nil {
		return nil, nil, daoserr.Wrap(daoserr.IO, err, "launcher: start %s", s.bin)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	return cmd, done, nil
}

// Restart starts server i again (after Kill and Wait) with its configuration
// and storage, and waits until its engines have joined again (other servers
// may be down). Not safe to call concurrently with other methods of s.
func (s *LocalSystem) Restart(ctx context.Context, i int, timeout time.Duration) error {
	select {
	case <-s.done[i]:
	default:
		return daoserr.Newf(daoserr.Busy, "launcher: server %d (pid %d) is still running", i, s.PIDs[i]).WithResolution("kill it and wait for it first")
	}
	cmd, done, err := s.startServer(s.Dirs[i])
	if err != nil {
		return err
	}
	s.procs[i], s.done[i], s.PIDs[i] = cmd, done, cmd.Process.Pid
	b, _ := json.MarshalIndent(s.State, "", "  ")
	if err := os.WriteFile(filepath.Join(s.Dir, stateFile), b, 0o644); err != nil {
		return daoserr.Wrap(daoserr.IO, err, "launcher: state file")
	}
	return s.waitServerJoined(ctx, i, timeout)
}

// waitServerJoined waits until server i's engines have joined again: the
// others may be down (a fault test restarts the servers it killed one by
// one).
func (s *LocalSystem) waitServerJoined(ctx context.Context, i int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.done[i]:
			log, _ := os.ReadFile(filepath.Join(s.Dirs[i], "server.log"))
			return daoserr.Newf(daoserr.Unreach, "launcher: server %d exited while starting: %s", i, lastLine(string(log))).
				WithResolution("see %s", filepath.Join(s.Dirs[i], "server.log"))
		default:
		}
		if last = allServersJoined(ctx, s.HostList[i:i+1], s.tls); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return daoserr.Newf(daoserr.TimedOut, "launcher: server %d did not join within %v (%v)", i, timeout, last).
		WithResolution("see %s", filepath.Join(s.Dirs[i], "server.log"))
}

// marshalConfig writes a configuration as YAML through the generator's
// comments-free form (config.Server marshals with DAOS's keys).
func marshalConfig(c *config.Server) ([]byte, error) { return config.Marshal(c) }

// waitJoined waits until every server of a local system has joined.
func (s *LocalSystem) waitJoined(ctx context.Context, n int, timeout time.Duration) error {
	exited := func() error {
		for i, d := range s.done {
			select {
			case <-d:
				log, _ := os.ReadFile(filepath.Join(s.Dirs[i], "server.log"))
				return daoserr.Newf(daoserr.Unreach, "launcher: server %d exited while starting: %s", i, lastLine(string(log))).
					WithResolution("see %s", filepath.Join(s.Dirs[i], "server.log"))
			default:
			}
		}
		return nil
	}
	return waitJoinedTLS(ctx, s.HostList, n, timeout, exited, "see the server logs in "+s.Dir, s.tls)
}

// waitJoined waits until every server of hosts says its engines have joined
// (this start's join, not a record from a previous run) and the system map
// shows n joined ranks. exited, asked between polls, reports servers that
// ended while starting; seeLogs is the resolution of a timeout.
func waitJoined(ctx context.Context, hosts []string, n int, timeout time.Duration, exited func() error, seeLogs string) error {
	return waitJoinedTLS(ctx, hosts, n, timeout, exited, seeLogs, nil)
}

// waitJoinedTLS is waitJoined with a client certificate (nil: insecure).
func waitJoinedTLS(ctx context.Context, hosts []string, n int, timeout time.Duration, exited func() error, seeLogs string, tlsConf *tls.Config) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if err := exited(); err != nil {
			return err
		}
		err := allServersJoined(ctx, hosts, tlsConf)
		var joined int
		if err == nil {
			joined, err = joinedTLS(ctx, hosts, tlsConf)
		}
		if err == nil && joined == n {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d of %d ranks joined", joined, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return daoserr.Newf(daoserr.TimedOut, "launcher: the system did not come up within %v (%s)", timeout, last).
		WithResolution("%s", seeLogs)
}

// allServersJoined asks each server whether all its engines have joined.
func allServersJoined(ctx context.Context, hosts []string, tlsConf *tls.Config) error {
	for _, h := range hosts {
		cc, err := grpc.NewClient(h, ctlclient.Transport(tlsConf))
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := ctlpb.NewCtlClient(cc).ServerQuery(cctx, &ctlpb.ServerQueryReq{})
		cancel()
		cc.Close()
		if err != nil {
			return fmt.Errorf("server %s: %w", h, err)
		}
		for i, r := range resp.Ranks {
			if r < 0 {
				return fmt.Errorf("server %s: engine %d has not joined yet", h, i)
			}
		}
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// Joined asks any server of hosts how many ranks have joined.
func Joined(ctx context.Context, hosts []string) (int, error) { return joinedTLS(ctx, hosts, nil) }

// joinedTLS is Joined with a client certificate (nil: insecure).
func joinedTLS(ctx context.Context, hosts []string, tlsConf *tls.Config) (int, error) {
	var last error
	for _, h := range hosts {
		cc, err := grpc.NewClient(h, ctlclient.Transport(tlsConf))
		if err != nil {
			last = err
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := ctlpb.NewCtlClient(cc).SystemQuery(cctx, &ctlpb.SystemQueryReq{})
		cancel()
		cc.Close()
		if err != nil {
			last = err
			continue
		}
		if resp.Error != nil {
			last = fmt.Errorf("%s", resp.Error.Msg)
			continue
		}
		n := 0
		for _, m := range resp.Members {
			if m.State == "joined" {
				n++
			}
		}
		return n, nil
	}
	return 0, last
}

// Kill sends sig to server i.
func (s *LocalSystem) Kill(i int, sig syscall.Signal) error { return s.procs[i].Process.Signal(sig) }

// Wait waits until server i has exited.
func (s *LocalSystem) Wait(i int) { <-s.done[i] }

// Stop stops every server (SIGTERM, then SIGKILL after 30 s) and waits.
func (s *LocalSystem) Stop() {
	for i, p := range s.procs {
		select {
		case <-s.done[i]:
		default:
			p.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(stopTimeout) // for all of them together
	for i := range s.procs {
		select {
		case <-s.done[i]:
		case <-deadline:
			for j := i; j < len(s.procs); j++ {
				s.procs[j].Process.Kill()
			}
			<-s.done[i]
		}
	}
	os.Remove(filepath.Join(s.Dir, stateFile))
}

// ReadState reads the state file of a system started in dir.
func ReadState(dir string) (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// ours reports whether pid is a live daos_server (a PID in an old state file
// may belong to another program by now).
func ours(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(cmd), "daos_server")
}

func anyAlive(pids []int) bool {
	for _, p := range pids {
		if ours(p) {
			return true
		}
	}
	return false
}

// refuseRunning fails when a system started in dir still runs: a second
// one would share its storage and ports.
func refuseRunning(dir string) error {
	st, err := ReadState(dir)
	if err != nil || (!anyAlive(st.PIDs) && !launchAlive(st)) {
		return nil
	}
	pids := slices.Clone(st.PIDs)
	if st.LaunchPID != 0 {
		pids = append(pids, st.LaunchPID)
	}
	return daoserr.Newf(daoserr.Busy, "launcher: a system from %s is still running (pids %v)", dir, pids).
		WithResolution("stop it first: launcher stop --dir %s", dir)
}

// StopDir stops the system started in dir by another launcher process.
func StopDir(dir string) error {
	st, err := ReadState(dir)
	if err != nil {
		return daoserr.Wrap(daoserr.Nonexist, err, "launcher: no system started in %s", dir)
	}
	if st.Mode != "" {
		if err := stopCluster(dir, st, nil); err != nil {
			return err
		}
		return os.Remove(filepath.Join(dir, stateFile))
	}
	stopLocalPIDs(st.PIDs)
	return os.Remove(filepath.Join(dir, stateFile))
}

// stopLocalPIDs stops daos_server processes of this host: SIGTERM, then
// SIGKILL after 30 s.
func stopLocalPIDs(pids []int) {
	for _, p := range pids {
		if ours(p) {
			syscall.Kill(p, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(stopTimeout)
	for anyAlive(pids) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range pids {
		if ours(p) {
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
}
