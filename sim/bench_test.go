package sim

import "testing"

// BenchmarkRun is the cost of one seed's run (the whole of it: set-up, steps, checks, heal).
func BenchmarkRun(b *testing.B) {
	b.ReportAllocs()
	for i := range b.N {
		if r := Run(uint64(i%500)+1, Config{}); r.Violation != nil {
			b.Fatal(r.Violation)
		}
	}
}
