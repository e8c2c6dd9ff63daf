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
