package bench

import (
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	text := "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 44\n" +
		"go_memstats_heap_inuse_bytes 2.818048e+06\ngo_memstats_heap_inuse_bytes_total{x=\"1\"} 9\n"
	m, err := parseMetrics(strings.NewReader(text), "go_goroutines", "go_memstats_heap_inuse_bytes")
	if err != nil || m["go_goroutines"] != 44 || m["go_memstats_heap_inuse_bytes"] != 2818048 {
		t.Fatalf("parseMetrics = %v, %v", m, err)
	}
	if _, err := parseMetrics(strings.NewReader(text), "process_resident_memory_bytes"); err == nil {
		t.Error("a missing series is no error")
	}
	if _, err := parseMetrics(strings.NewReader("go_goroutines many\n"), "go_goroutines"); err == nil {
		t.Error("a bad value is no error")
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add("go_goroutines 44\n")
	f.Add("go_goroutines 1e400\ngo_goroutines\n")
	f.Add("# TYPE x gauge\nx{a=\"b c\"} 1\n")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := parseMetrics(strings.NewReader(text), "go_goroutines")
		if err == nil && len(m) != 1 {
			t.Fatalf("no error but %v", m)
		}
	})
}

// reach takes the 99th percentile as the ceil(0.99 n)-th arrival and "all" only when all came.
func TestReach(t *testing.T) {
	t0 := time.Unix(100, 0)
	var at []time.Time
	for i := range 200 {
		at = append(at, t0.Add(time.Duration(200-i)*time.Millisecond)) // unsorted on purpose
	}
	r := reach(t0, at, 200)
	if r.Reached != 200 || r.P99S != 0.198 || r.AllS != 0.2 {
		t.Fatalf("reach = %+v", r)
	}
	r = reach(t0, at[:150], 200)
	if r.Reached != 150 || r.P99S != -1 || r.AllS != -1 {
		t.Fatalf("reach of 150 of 200 = %+v", r)
	}
}
