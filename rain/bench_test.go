package rain

import (
	"fmt"
	"testing"
)

func benchmarkGenerate(b *testing.B, s Slice) {
	b.ReportAllocs()
	var a Amounts
	for b.Loop() {
		var err error
		if a, err = Generate(s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(a.BytesPerPacket()), "bytes/packet")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(s.Count), "ns/packet")
}

// BenchmarkGenerate10M is the SPEC's big slice: 10,000,000 double_average packets, shuffled
// (target: well under 1 s per op).
func BenchmarkGenerate10M(b *testing.B) {
	benchmarkGenerate(b, Slice{Code: "bench", Count: 10_000_000, Amount: 100_000_000, Seed: 1})
}

// BenchmarkGenerateLineCut10M covers both line_cut methods: dense (bitmap, mean 5 cents),
// sparse (bucket sort, mean 100 cents, 4-byte amounts) and sparse with 8-byte amounts.
func BenchmarkGenerateLineCut10M(b *testing.B) {
	for _, amount := range []int64{50_000_000, 1_000_000_000, MaxTotalAmount} {
		b.Run(fmt.Sprintf("amount=%d", amount), func(b *testing.B) {
			benchmarkGenerate(b, Slice{Code: "bench", Count: 10_000_000, Amount: amount, Seed: 1, Algorithm: LineCut})
		})
	}
}

// BenchmarkGenerateEqual10M is the cost floor: no generation draws, only the shuffle.
func BenchmarkGenerateEqual10M(b *testing.B) {
	benchmarkGenerate(b, Slice{Code: "bench", Count: 10_000_000, Amount: 100_000_000, Seed: 1, Algorithm: Equal})
}

// BenchmarkPlan splits the SPEC's example rain over 500 nodes, with and without weights.
func BenchmarkPlan(b *testing.B) {
	nodes := make([]string, 500)
	weights := make([]int64, len(nodes))
	for i := range nodes {
		nodes[i] = fmt.Sprintf("node-%03d", i)
		weights[i] = int64(1 + i%7)
	}
	for _, w := range [][]int64{nil, weights} {
		b.Run(fmt.Sprintf("weighted=%t", w != nil), func(b *testing.B) {
			b.ReportAllocs()
			in := PlanInput{Code: "bench", TotalAmount: 200_000_000_00, TotalCount: 10_000_000, Nodes: nodes, Weights: w, Seed: 1}
			for b.Loop() {
				if _, err := Plan(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var sink uint64

func BenchmarkUint64n(b *testing.B) {
	for _, n := range []uint64{20, 10_000_000, 1<<63 + 1} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			r := NewRand(1)
			var s uint64
			for b.Loop() {
				s += r.Uint64n(n)
			}
			sink = s
		})
	}
}

func BenchmarkUint64(b *testing.B) {
	b.ReportAllocs()
	r := NewRand(1)
	var s uint64
	for b.Loop() {
		s += r.Uint64()
	}
	sink = s
}
