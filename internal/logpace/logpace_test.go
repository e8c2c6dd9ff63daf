package logpace

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"", 4, ""},
		{"abcd", 4, "abcd"},
		{"abcde", 4, "abcd…[+1 bytes]"},
		{strings.Repeat("A", 3900), MaxField, strings.Repeat("A", 64) + "…[+3836 bytes]"},
		{"ab红cd", 4, "ab…[+5 bytes]"},                     // 红 is 3 bytes: not cut in the middle
		{"abc红", 6, "abc红"},                               // exactly 6 bytes
		{"a\xff\xff\xff\xffb", 3, "a\xff\xff…[+3 bytes]"}, // not UTF-8: cut by bytes
	} {
		if got := Clip(tc.in, tc.max); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestLimiterOneLineASecond(t *testing.T) {
	var l Limiter
	t0 := time.Unix(1_700_000_000, 0)
	if !l.Allow(t0) {
		t.Fatal("first line held back")
	}
	for i := range 999 {
		if l.Allow(t0.Add(time.Duration(i) * time.Millisecond)) {
			t.Fatalf("a second line let through %d ms after the first", i)
		}
	}
	if !l.Allow(t0.Add(time.Second)) {
		t.Fatal("a line a second later held back")
	}
	if n := l.Suppressed(); n != 999 {
		t.Fatalf("suppressed %d, want 999", n)
	}
	if n := l.Suppressed(); n != 0 {
		t.Fatalf("Suppressed did not reset: %d", n)
	}
}

// A burst of lines, then one a second; an idle spell refills the burst, never beyond it.
func TestLimiterBurst(t *testing.T) {
	l := Limiter{Burst: 3}
	t0 := time.Unix(1_700_000_000, 0)
	allowed := func(at time.Duration, n int) (got int) {
		for range n {
			if l.Allow(t0.Add(at)) {
				got++
			}
		}
		return got
	}
	for _, step := range []struct {
		at        time.Duration
		n, want   int
		suppresed int64
	}{
		{0, 10, 3, 7},                     // the burst
		{500 * time.Millisecond, 5, 0, 5}, // half a line refilled
		{time.Second, 5, 1, 4},            // one a second
		{2 * time.Second, 5, 1, 4},
		{time.Hour, 10, 3, 7},              // idle: the burst again, not 3,600 lines
		{time.Hour - time.Minute, 5, 0, 5}, // a clock going back refills nothing
	} {
		if got := allowed(step.at, step.n); got != step.want {
			t.Fatalf("at %v: %d of %d lines let through, want %d", step.at, got, step.n, step.want)
		}
		if s := l.Suppressed(); s != step.suppresed {
			t.Fatalf("at %v: %d held back, want %d", step.at, s, step.suppresed)
		}
	}
}

// Many goroutines at one instant: exactly one line, every other counted.
func TestLimiterConcurrent(t *testing.T) {
	var l Limiter
	now := time.Unix(1_700_000_000, 0)
	var allowed sync.WaitGroup
	var mu sync.Mutex
	n := 0
	for range 64 {
		allowed.Add(1)
		go func() {
			defer allowed.Done()
			for range 100 {
				if l.Allow(now) {
					mu.Lock()
					n++
					mu.Unlock()
				}
			}
		}()
	}
	allowed.Wait()
	if s := l.Suppressed(); n != 1 || s != 64*100-1 {
		t.Fatalf("%d lines let through, %d held back; want 1 and %d", n, s, 64*100-1)
	}
}
