package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// newMemberlistLogger adapts slog to the *log.Logger memberlist wants. memberlist writes lines
// like "[WARN] memberlist: Refuting a suspect message"; the bracketed word becomes the slog level
// (slog.NewLogLogger would log them all at one level).
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(logWriter{l: l.With("component", "memberlist")}, "", 0)
}

type logWriter struct{ l *slog.Logger }

var logLevels = []struct {
	tag   string
	level slog.Level
}{
	{"[DEBUG] ", slog.LevelDebug},
	{"[INFO] ", slog.LevelInfo},
	{"[WARN] ", slog.LevelWarn},
	{"[ERR] ", slog.LevelError},
	{"[ERROR] ", slog.LevelError},
}

func (w logWriter) Write(p []byte) (int, error) {
	level, msg := parseLogLine(p)
	if w.l.Enabled(context.Background(), level) {
		w.l.Log(context.Background(), level, msg)
	}
	return len(p), nil
}

// parseLogLine splits a memberlist log line into its level and message (unknown tags: info).
func parseLogLine(p []byte) (slog.Level, string) {
	p = bytes.TrimRight(p, "\n")
	level := slog.LevelInfo
	for _, t := range logLevels {
		if bytes.HasPrefix(p, []byte(t.tag)) {
			level, p = t.level, p[len(t.tag):]
			break
		}
	}
	p = bytes.TrimPrefix(p, []byte("memberlist: "))
	return level, string(p)
}
