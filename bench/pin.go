package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Pinning (bench compare --pin) puts the servers on one core and the load generator on the
// other, so neither steals the other's cycles: children are started from an OS thread whose
// affinity is the servers' core (a child inherits its forking thread's mask, and Go starts new
// threads of a locked thread's process from its template thread, so the mask does not leak),
// and every thread of this process is moved to the load's core.

func cpuSet(cpus []int) *unix.CPUSet {
	var s unix.CPUSet
	for _, c := range cpus {
		s.Set(c)
	}
	return &s
}

// spawnOn runs fn on a locked OS thread pinned to cpus, so the processes fn starts (and their
// threads) are pinned to cpus. With no cpus it just runs fn.
func spawnOn(cpus []int, fn func() error) error {
	if len(cpus) == 0 {
		return fn()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	if err := unix.SchedSetaffinity(0, cpuSet(cpus)); err != nil {
		return fmt.Errorf("pin to cpus %v: %w", cpus, err)
	}
	defer unix.SchedSetaffinity(0, &old)
	return fn()
}

// pinProcess moves every thread of process pid (0: this one) to cpus. Threads started later
// inherit the mask of the thread that starts them, so the pass repeats until no thread is new.
func pinProcess(pid int, cpus []int) error {
	if pid == 0 {
		pid = os.Getpid()
	}
	set := cpuSet(cpus)
	done := map[int]bool{}
	for {
		ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
		if err != nil {
			return fmt.Errorf("pin: %w", err)
		}
		fresh := 0
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			fresh++
			done[tid] = true
			if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin thread %d to cpus %v: %w", tid, cpus, err)
			}
		}
		if fresh == 0 {
			return nil
		}
	}
}

// pinSelf moves this process's threads to cpus and sets GOMAXPROCS to their number; the
// returned func undoes both (back to every cpu in allCPUs).
func pinSelf(cpus, allCPUs []int) (undo func(), err error) {
	if err := pinProcess(0, cpus); err != nil {
		return nil, err
	}
	prev := runtime.GOMAXPROCS(len(cpus))
	return func() {
		runtime.GOMAXPROCS(prev)
		pinProcess(0, allCPUs)
	}, nil
}

// allowedCPUs lists the cpus this process may run on.
func allowedCPUs() ([]int, error) {
	var s unix.CPUSet
	if err := unix.SchedGetaffinity(0, &s); err != nil {
		return nil, err
	}
	var out []int
	for c := 0; c < 1024 && len(out) < s.Count(); c++ {
		if s.IsSet(c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// cpusAllowedList reads a process's Cpus_allowed_list ("0", "0-1", ...) from /proc.
func cpusAllowedList(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
