package userid

import (
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want uint64 // 0: refused
	}{
		{"1", 1},
		{"42", 42},
		{"7", 7},
		{"007", 7}, // leading zeros: the same user as "7"
		{"01", 1},
		{"0000000000000000000000000000042", 42},
		{"18446744073709551615", 1<<64 - 1},
		{"000000000000" + "18446744073709551615", 1<<64 - 1}, // 32 bytes: the longest accepted
		{"0000000000000" + "18446744073709551615", 0},        // 33 bytes: too long, though the value fits
		{"000000000000000000000000000000001", 0},             // 33 bytes
		{"", 0},
		{"0", 0},
		{"00", 0},
		{"000", 0},
		{"-1", 0},
		{"+1", 0},
		{"-0", 0},
		{" 1", 0},
		{"1 ", 0},
		{"1.0", 0},
		{"abc", 0},
		{"7x", 0},
		{"1e3", 0},
		{"1_000", 0},
		{"0x10", 0},
		{"18446744073709551616", 0}, // 2^64
		{"00018446744073709551616", 0},
		{"99999999999999999999", 0},
		{"184467440737095516150", 0},
	}
	for _, c := range cases {
		got, ok := Parse([]byte(c.in))
		if ok != (c.want != 0) || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.want != 0)
		}
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	in := [][]byte{[]byte("007"), []byte("18446744073709551615"), []byte("x"), []byte(strings.Repeat("0", 40))}
	if n := testing.AllocsPerRun(100, func() {
		for _, b := range in {
			Parse(b)
		}
	}); n != 0 {
		t.Fatalf("Parse allocates: %v per run", n)
	}
}

// FuzzParse checks Parse against strconv.ParseUint: an input of 1..MaxLen ASCII digits is the
// user its digits without leading zeros name (refused if zero or past 2^64-1); anything else is
// refused.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"1", "0", "007", "000", "18446744073709551615", "18446744073709551616",
		"-5", "+5", "12a", " 1", "", strings.Repeat("0", 31) + "1", strings.Repeat("0", 32) + "1",
		"00000000000018446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := Parse([]byte(s))
		var want uint64
		wantOK := false
		if len(s) >= 1 && len(s) <= MaxLen && strings.Trim(s, "0123456789") == "" {
			if digits := strings.TrimLeft(s, "0"); digits != "" {
				if ref, err := strconv.ParseUint(digits, 10, 64); err == nil {
					want, wantOK = ref, true
				}
			}
		}
		if ok != wantOK || v != want {
			t.Fatalf("Parse(%q) = %d, %v; want %d, %v", s, v, ok, want, wantOK)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	in := []byte("18446744073709551615")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, ok := Parse(in); !ok {
			b.Fatal("refused")
		}
	}
}
