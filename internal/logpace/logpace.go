// Package logpace keeps a log bounded when what it logs is triggered from outside: a Limiter
// lets a short burst of lines through and then one a second, and counts the ones it held back
// (the caller counts every event in a metric); Clip bounds a field an attacker chose (a path
// segment, a code, a header) so one line cannot carry kilobytes of it.
package logpace

import (
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Limiter lets Burst lines through at once, then one a second (a token bucket refilled at one
// line a second, holding at most Burst), and counts the lines it held back. With Burst 1 it is
// the node's limiter: a line, then none until a second has passed. A few refusals are each
// logged; a flood adds a line a second. The zero value is ready (Burst 0 means 1); safe for
// concurrent use.
type Limiter struct {
	Burst int

	mu         sync.Mutex
	tokens     float64   // lines that may be written now
	last       time.Time // when tokens was last refilled; zero: never (a full bucket)
	suppressed int64
}

// Allow reports whether a line may be written at now; a line it refuses is counted.
func (l *Limiter) Allow(now time.Time) bool {
	burst := float64(max(l.Burst, 1))
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.last.IsZero(): // the first line: a full bucket
		l.tokens, l.last = burst, now
	case now.After(l.last): // one line a second since the last refill, up to Burst
		l.tokens, l.last = min(burst, l.tokens+now.Sub(l.last).Seconds()), now
	}
	if l.tokens < 1 {
		l.suppressed++
		return false
	}
	l.tokens--
	return true
}

// Suppressed returns and resets the count of lines held back.
func (l *Limiter) Suppressed() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.suppressed
	l.suppressed = 0
	return n
}

// MaxField is the longest attacker-chosen field a log line carries whole.
const MaxField = 64

// Clip returns s if it is at most limit bytes, and otherwise its first limit bytes or fewer
// (cut at a character boundary) followed by a marker saying how many bytes were cut:
// "AAAA…[+3836 bytes]".
func Clip(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	n := limit
	for n > 0 && n > limit-utf8.UTFMax && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…[+" + strconv.Itoa(len(s)-n) + " bytes]"
}
