package node

import (
	"testing"
	"time"
)

// A fractional --ip-rate is honoured, not truncated: a hammering address gets its burst and then
// rate claims per second, even when its taps come far faster than a whole token accrues.
func TestIPLimiterFractionalRate(t *testing.T) {
	for _, tc := range []struct {
		rate       float64
		burst      int
		taps       int           // taps, evenly spaced
		every      time.Duration // between taps
		minN, maxN int
	}{
		{rate: 0.5, burst: 1, taps: 10_000, every: time.Millisecond, minN: 5, maxN: 6},          // 1 + 10s*0.5
		{rate: 2.5, burst: 1, taps: 10_000, every: time.Millisecond, minN: 25, maxN: 26},        // 1 + 10s*2.5
		{rate: 0.01, burst: 2, taps: 100_000, every: 10 * time.Millisecond, minN: 11, maxN: 12}, // 2 + 1000s*0.01
		{rate: 1000.5, burst: 1, taps: 100_000, every: 10 * time.Microsecond, minN: 1000, maxN: 1002},
	} {
		l := newIPLimiter(tc.rate, tc.burst)
		now := time.Now().UnixNano()
		n := 0
		for i := 0; i < tc.taps; i++ {
			if l.allow([]byte("192.0.2.7"), now+int64(i)*int64(tc.every)) {
				n++
			}
		}
		if n < tc.minN || n > tc.maxN {
			t.Errorf("rate %v burst %d, %d taps every %v: %d allowed, want %d..%d", tc.rate, tc.burst, tc.taps, tc.every, n, tc.minN, tc.maxN)
		}
	}
}
