package node

import (
	"sync/atomic"
	"time"
)

// logLimiter lets one log line through per second and counts the ones it held back.
type logLimiter struct {
	last       atomic.Int64
	suppressed atomic.Int64
}

// Allow reports whether a line may be written now.
func (l *logLimiter) Allow(now time.Time) bool {
	t, prev := now.UnixNano(), l.last.Load()
	if t-prev < int64(time.Second) || !l.last.CompareAndSwap(prev, t) {
		l.suppressed.Add(1)
		return false
	}
	return true
}

// Suppressed returns and resets the count of lines held back.
func (l *logLimiter) Suppressed() int64 { return l.suppressed.Swap(0) }
