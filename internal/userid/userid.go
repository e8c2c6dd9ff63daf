// Package userid parses the X-User-Id header the platform's gateway sets: the one definition the
// node and the benchmark's baseline server share.
package userid

// MaxLen is the longest header Parse accepts, leading zeros included: every uint64 (20 digits)
// with room for zero padding, and a bound on the work one header costs.
const MaxLen = 32

// Parse reads a decimal uint64 > 0 (SPEC.md): 1..MaxLen ASCII digits, no sign, no spaces.
// Leading zeros are allowed and change nothing: "007" is user 7, the same user as "7" (so a
// per-user cap counts them together). Zero ("0", "000") and values past 2^64-1 are refused. It
// does not allocate.
func Parse(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > MaxLen {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if v == 0 {
		return 0, false
	}
	return v, true
}
