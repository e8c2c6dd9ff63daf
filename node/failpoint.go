package node

import (
	"os"
	"syscall"
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
