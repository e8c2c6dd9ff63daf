package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"

	"redrain/internal/proc"
)

// ProcFigures are one server process's use of the machine over a measured window.
type ProcFigures struct {
	Name       string  `json:"name"`
	Pid        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_s"`          // user+sys time spent within the window
	PeakBytes  int64   `json:"peak_rss_bytes"` // VmHWM (peak resident set) at the window's end
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every Linux build that
// matters (sysconf(_SC_CLK_TCK) needs cgo).
const clockTicks = 100

// ProcCPU is a process's user+sys CPU time so far, from /proc/PID/stat (all its threads).
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: fields count from its end.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state); utime is field 14, stime 15
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times %q %q", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// SelfCPU is this process's user+sys CPU time so far, all threads (getrusage: microseconds,
// where /proc counts 10 ms ticks); 0 if the kernel refuses.
func SelfCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ProcPeakRSS is a process's peak resident set size (VmHWM of /proc/PID/status), in bytes.
func ProcPeakRSS(pid int) (int64, error) { return procStatusKB(pid, "VmHWM") }

// ProcRSS is a process's resident set size now (VmRSS of /proc/PID/status), in bytes.
func ProcRSS(pid int) (int64, error) { return procStatusKB(pid, "VmRSS") }

// procStatusKB reads one "<field>: N kB" line of /proc/PID/status, in bytes.
func procStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		v, ok := bytes.CutPrefix(line, []byte(field+":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))
		kb, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status: %s %q", pid, field, v)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// cpuWindow measures the CPU time a set of server processes spend between start and stop.
type cpuWindow struct {
	procs []*proc.Proc
	start []time.Duration
}

func startCPUWindow(procs []*proc.Proc) (*cpuWindow, error) {
	w := &cpuWindow{procs: procs, start: make([]time.Duration, len(procs))}
	for i, p := range procs {
		t, err := ProcCPU(p.Pid())
		if err != nil {
			return nil, fmt.Errorf("cpu of %s: %w", p.Name, err)
		}
		w.start[i] = t
	}
	return w, nil
}

// stop reads each process's CPU time since start and its peak RSS.
func (w *cpuWindow) stop() ([]ProcFigures, error) {
	out := make([]ProcFigures, len(w.procs))
	for i, p := range w.procs {
		t, err := ProcCPU(p.Pid())
		if err != nil {
			return nil, fmt.Errorf("cpu of %s: %w", p.Name, err)
		}
		peak, err := ProcPeakRSS(p.Pid())
		if err != nil {
			return nil, fmt.Errorf("memory of %s: %w", p.Name, err)
		}
		out[i] = ProcFigures{Name: p.Name, Pid: p.Pid(), CPUSeconds: (t - w.start[i]).Seconds(), PeakBytes: peak}
	}
	return out, nil
}

// peakRSS reads the processes' peak RSS (no CPU window).
func peakRSS(procs []*proc.Proc) ([]ProcFigures, error) {
	w := &cpuWindow{procs: procs, start: make([]time.Duration, len(procs))}
	out, err := w.stop()
	for i := range out {
		out[i].CPUSeconds = 0
	}
	return out, err
}

// RedisCPU is a Redis server's user+sys CPU time so far, all its threads (INFO cpu:
// used_cpu_sys + used_cpu_user), in seconds. It works for a Redis on another machine too.
func RedisCPU(ctx context.Context, rdb redis.UniversalClient) (float64, error) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, fmt.Errorf("redis INFO cpu: %w", err)
	}
	return parseRedisCPU(info)
}

// parseRedisCPU adds used_cpu_sys and used_cpu_user of an INFO cpu answer.
func parseRedisCPU(info string) (float64, error) {
	var sum float64
	found := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_sys" && k != "used_cpu_user") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return 0, fmt.Errorf("redis INFO cpu: %s %q", k, v)
		}
		sum += f
		found++
	}
	if found != 2 {
		return 0, errors.New("redis INFO cpu: no used_cpu_sys and used_cpu_user")
	}
	return sum, nil
}

// serverCPU adds the CPU seconds of the processes of ps that are not Redis.
func serverCPU(ps []ProcFigures) float64 {
	var cpu float64
	for _, p := range ps {
		if p.Name != proc.RedisName {
			cpu += p.CPUSeconds
		}
	}
	return cpu
}

// sumProcs adds the CPU seconds and the peak RSS of ps.
func sumProcs(ps []ProcFigures) (cpu float64, peak int64) {
	for _, p := range ps {
		cpu += p.CPUSeconds
		peak += p.PeakBytes
	}
	return cpu, peak
}

// StartCPUProfile writes this process's CPU profile (pprof) to path until stop is called.
func StartCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() error { pprof.StopCPUProfile(); return f.Close() }, nil
}
