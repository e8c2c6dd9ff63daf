// Package userid parses the X-User-Id header the platform's gateway sets: the one definition the
// node and the benchmark's baseline server share.
package userid

// Parse reads a decimal uint64 > 0: digits only, no sign, no leading zero, no overflow. It
// does not allocate.
func Parse(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 || b[0] == '0' {
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
	return v, true
}
