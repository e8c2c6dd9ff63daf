// Package logpace keeps a log bounded when what it logs is triggered from outside: a Limiter
// lets one line a second through and counts the ones it held back (the caller counts every
// event in a metric), and Clip bounds a field an attacker chose (a path segment, a code, a
// header) so one line cannot carry kilobytes of it.
package logpace

import (
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Limiter lets one log line through per second and counts the ones it held back. The zero
// value is ready; safe for concurrent use.
type Limiter struct {
	last       atomic.Int64 // unix nanoseconds of the last line let through
	suppressed atomic.Int64
}

// Allow reports whether a line may be written at now; a line it refuses is counted.
func (l *Limiter) Allow(now time.Time) bool {
	t, prev := now.UnixNano(), l.last.Load()
	if t-prev < int64(time.Second) || !l.last.CompareAndSwap(prev, t) {
		l.suppressed.Add(1)
		return false
	}
	return true
}

// Suppressed returns and resets the count of lines held back.
func (l *Limiter) Suppressed() int64 { return l.suppressed.Swap(0) }

// MaxField is the longest attacker-chosen field a log line carries whole.
const MaxField = 64

// Clip returns s if it is at most max bytes, and otherwise its first max bytes or fewer (cut
// at a character boundary) followed by a marker saying how many bytes were cut:
// "AAAA…[+3836 bytes]".
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && n > max-utf8.UTFMax && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…[+" + strconv.Itoa(len(s)-n) + " bytes]"
}
