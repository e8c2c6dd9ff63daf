package shard

import (
	"runtime"
	"sync/atomic"
	"testing"

	"redrain/rain"
)

// benchStore returns a started rain "bench" of n packets over 8 slices, max 1000 per user.
func benchStore(b *testing.B, n int, claimed []uint32) *Store {
	b.Helper()
	s := New()
	sp := spec("bench", 1000, 0)
	per := int64(n/8 + 1)
	for id := range uint32(8) {
		sl := rain.Slice{Code: "bench", ID: id, Epoch: 1, Count: per, Amount: per * 10}
		if err := s.AddSlice(sp, sl, equalAmounts(per, 10), claimed); err != nil {
			b.Fatal(err)
		}
	}
	mustStart(b, s, "bench", 1, 0, 1<<62)
	return s
}

// claimBench runs claim b.N times (via run) and also reports the process's CPU time per claim,
// which a busy machine disturbs far less than the wall-clock ns/op.
func claimBench(b *testing.B, run func()) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	run()
	if cpu > 0 {
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkClaim is the serial claim path: lookup, time checks, user stripe, one CAS.
// Users cycle over 65,536 ids, so max_per_user (1000) is never reached.
func BenchmarkClaim(b *testing.B) {
	s := benchStore(b, b.N, nil)
	code := []byte("bench")
	claimBench(b, func() {
		for i := range b.N {
			if _, err := s.Claim(code, uint64(i&0xffff)+1, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkClaimRecovered is BenchmarkClaim on slices recovered with every 4th index journaled.
func BenchmarkClaimRecovered(b *testing.B) {
	per := (b.N*4/3)/8 + 1
	var claimed []uint32
	for i := 0; i < per; i += 4 {
		claimed = append(claimed, uint32(i))
	}
	s := benchStore(b, b.N*4/3+8, claimed)
	code := []byte("bench")
	claimBench(b, func() {
		for i := range b.N {
			if _, err := s.Claim(code, uint64(i&0xffff)+1, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkClaimParallel claims from GOMAXPROCS goroutines, each with its own range of users;
// its cpu-ns/op adds up every core's time.
func BenchmarkClaimParallel(b *testing.B) {
	s := benchStore(b, b.N, nil)
	code := []byte("bench")
	var next atomic.Uint64
	claimBench(b, func() {
		b.RunParallel(func(pb *testing.PB) {
			base := next.Add(1) << 20
			for i := uint64(0); pb.Next(); i++ {
				if _, err := s.Claim(code, base+i&0xffff, 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkClaimExhausted is the answer to the taps that come after the last packet.
func BenchmarkClaimExhausted(b *testing.B) {
	s := benchStore(b, 0, nil)
	drain(b, s, "bench", 1, 1)
	code := []byte("bench")
	claimBench(b, func() {
		for i := range b.N {
			if _, err := s.Claim(code, uint64(i&0xffff)+1, 1); err != ErrExhausted {
				b.Fatal(err)
			}
		}
	})
}

// heldBytesPerPacket measures the heap a store keeps for one n-packet slice (amounts made for
// it included) recovered with one claimed index, so the bitmap is counted too.
func heldBytesPerPacket(tb testing.TB, n int64) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := New()
	sl := rain.Slice{Code: "mem", Count: n, Amount: n * 10}
	if err := s.AddSlice(spec("mem", 1, 0), sl, equalAmounts(n, 10), []uint32{uint32(n / 2)}); err != nil {
		tb.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// BenchmarkBytesPerPacket reports the memory held per packet of a 10,000,000-packet slice.
func BenchmarkBytesPerPacket(b *testing.B) {
	b.ReportAllocs()
	var bpp float64
	for range b.N {
		bpp = heldBytesPerPacket(b, 10_000_000)
	}
	b.ReportMetric(bpp, "bytes/packet")
}

func TestBytesPerPacket(t *testing.T) {
	bpp := heldBytesPerPacket(t, 2_000_000)
	t.Logf("%.3f bytes/packet", bpp)
	if bpp > 5 {
		t.Fatalf("%.3f bytes held per packet, want <= 5 (4 for the amount, 1/8 for the bitmap)", bpp)
	}
}
