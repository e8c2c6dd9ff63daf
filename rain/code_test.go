package rain

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestValidCode(t *testing.T) {
	issued := base64.RawURLEncoding.EncodeToString(make([]byte, 16))
	for _, tc := range []struct {
		code string
		want bool
	}{
		{"", false},
		{"a", true},
		{issued, true},
		{strings.Repeat("a", MaxCodeLen), true},
		{strings.Repeat("a", MaxCodeLen+1), false},
		{"Az09-_", true},
		{"a/b", false},
		{"{ab", false},
		{"a}b", false},
		{"a b", false},
		{"a=", false},
	} {
		if got := ValidCode(tc.code); got != tc.want {
			t.Errorf("ValidCode(%q) = %v, want %v", tc.code, got, tc.want)
		}
		if got := ValidCode([]byte(tc.code)); got != tc.want {
			t.Errorf("ValidCode([]byte(%q)) = %v, want %v", tc.code, got, tc.want)
		}
	}
	if len(issued) != MaxCodeLen {
		t.Fatalf("an issued code is %d characters, MaxCodeLen %d", len(issued), MaxCodeLen)
	}
}
