// Package cli holds what redrain's thin mains share besides flag parsing: the logger choice
// (text on a terminal, JSON otherwise) and the exit conventions (bad flags: one line, exit 2).
package cli

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// NewLogger writes text to a terminal and JSON otherwise.
func NewLogger(w *os.File) *slog.Logger {
	if fi, err := w.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// BadUsage prints one line naming the program and the problem (UsageLine), and exits 2.
func BadUsage(prog string, err error) {
	fmt.Fprintln(os.Stderr, UsageLine(prog, err))
	os.Exit(2)
}

// UsageLine is "prog: problem" on one line. The packages' errors already start with their
// name ("node: bad options: ..."), so the prefix is added only when the message lacks it, and
// appears once either way.
func UsageLine(prog string, err error) string {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if strings.HasPrefix(msg, prog+": ") {
		return msg
	}
	return prog + ": " + msg
}
