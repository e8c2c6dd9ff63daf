package node

import (
	"os"
	"syscall"
	"time"
)

// crashAt names a step at which the node kills itself with SIGKILL, for the fault tests that need
// a crash at an exact point of a stock move (a kill -9 from outside cannot aim that well). It is
// read from the environment variable REDRAINTEST_CRASH_AT once, at start; unset (always, in
// production) it does nothing. The steps:
//
//	move-out-journaled  the donor journaled a move out and has not delivered it
//	move-in-journaled   the receiver journaled a move in and has neither served it nor answered
var crashAt = os.Getenv("REDRAINTEST_CRASH_AT")

// failpoint dies at step if REDRAINTEST_CRASH_AT names it.
func failpoint(step string) {
	if crashAt != "" && crashAt == step {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not deliverable late; never go on
	}
}

// giveDelay is how long a donor stalls before it cuts a move it was asked for, for the fault test
// of a slow give (a disk that stalls the donor's journal): REDRAINTEST_GIVE_DELAY, a Go duration,
// read once at start; unset (always, in production) or unreadable, it is zero.
var giveDelay = func() time.Duration {
	d, err := time.ParseDuration(os.Getenv("REDRAINTEST_GIVE_DELAY"))
	if err != nil || d < 0 {
		return 0
	}
	return d
}()
