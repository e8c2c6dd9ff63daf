package rain

import "testing"

func TestFormatTime(t *testing.T) {
	for ns, want := range map[int64]string{
		0:                         "1970-01-01T00:00:00.000Z",
		1_700_000_000_123e6:       "2023-11-14T22:13:20.123Z",
		1_700_000_000_999_999_999: "2023-11-14T22:13:20.999Z",
	} {
		if got := FormatTime(ns); got != want {
			t.Errorf("FormatTime(%d) = %q, want %q", ns, got, want)
		}
	}
}
