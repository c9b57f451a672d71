package daosperf

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// CPU accounting: on a machine whose cores are shared by the client and the
// servers, CPU time per operation is what a phase costs, whatever its
// throughput. A phase reads this process's CPU time (getrusage) and, when
// given the servers' PIDs (a local system), theirs from /proc.

type cpuSample struct {
	self    time.Duration
	servers time.Duration
	ok      bool // every server's time was read
}

func sampleCPU(pids []int) cpuSample {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := cpuSample{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ok: len(pids) > 0}
	for _, pid := range pids {
		d, ok := procCPU(pid)
		s.servers += d
		s.ok = s.ok && ok
	}
	return s
}

// userHZ is the unit of /proc/PID/stat's times (USER_HZ, 100 on every Linux
// architecture Go supports).
const userHZ = 100

// procCPU is the user+system CPU time process pid has used.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// pid (comm) state ppid ...: comm may hold spaces, so count fields after
	// its closing parenthesis; utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * time.Second / userHZ, true
}
