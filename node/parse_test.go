package node

import (
	"strconv"
	"testing"

	"redrain/internal/userid"
)

func TestParseUserID(t *testing.T) {
	good := map[string]uint64{"1": 1, "42": 42, "18446744073709551615": 1<<64 - 1,
		"01": 1, "007": 7, "00000000000018446744073709551615": 1<<64 - 1} // leading zeros: SPEC's decimal uint64
	for in, want := range good {
		if got, ok := parseUserID([]byte(in)); !ok || got != want {
			t.Errorf("parseUserID(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "0", "00", "000", "000000000000018446744073709551615", "-1", "+1", " 1", "1 ", "1.0", "abc", "1e3",
		"18446744073709551616", "99999999999999999999", "184467440737095516150"} {
		if got, ok := parseUserID([]byte(in)); ok {
			t.Errorf("parseUserID(%q) = %d, accepted", in, got)
		}
	}
}

func TestParseRainPath(t *testing.T) {
	cases := []struct {
		path      string
		code      string
		claim, ok bool
	}{
		{"/v1/rains/abc/claim", "abc", true, true},
		{"/v1/rains/abc", "abc", false, true},
		{"/v1/rains/a-b_C9", "a-b_C9", false, true},
		{"/v1/rains/", "", false, false},
		{"/v1/rains//claim", "", false, false},
		{"/v1/rains/a/b/claim", "", false, false},
		{"/v1/rains/a%2F/claim", "", false, false},
		{"/v1/rain/abc/claim", "", false, false},
		{"/v1/rains/" + string(make([]byte, 65)), "", false, false},
	}
	for _, c := range cases {
		code, claim, ok := parseRainPath([]byte(c.path))
		if ok != c.ok || claim != c.claim || string(code) != c.code {
			t.Errorf("parseRainPath(%q) = %q, %v, %v; want %q, %v, %v", c.path, code, claim, ok, c.code, c.claim, c.ok)
		}
	}
}

func FuzzParseUserID(f *testing.F) {
	for _, s := range []string{"1", "0", "18446744073709551615", "18446744073709551616", "-5", "12a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := parseUserID([]byte(s))
		ref, err := strconv.ParseUint(s, 10, 64)
		refOK := err == nil && ref > 0 && s[0] != '+' && len(s) <= userid.MaxLen // leading zeros allowed
		if ok != refOK || (ok && v != ref) {
			t.Fatalf("parseUserID(%q) = %d, %v; strconv says %d, %v", s, v, ok, ref, refOK)
		}
	})
}
