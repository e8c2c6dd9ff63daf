//go:build unix

package shard

import "syscall"

// processCPU is the CPU time (user + system, ns) the test process has used so far.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
