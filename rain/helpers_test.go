package rain

import (
	crand "crypto/rand"
	"encoding/binary"
	"flag"
	"hash/fnv"
	"math"
	"testing"
)

// Statistical and property tests use fixed seeds, so `make test` is deterministic and the
// bounds below cannot flake. -rain.randseed draws fresh seeds; -rain.seed=N replays one.
var (
	flagRandSeed = flag.Bool("rain.randseed", false, "draw random seeds in property and statistical tests")
	flagSeed     = flag.Uint64("rain.seed", 0, "use this seed in property and statistical tests (0: fixed default or random)")
)

// testSeed returns the seed a test should use, and logs it so that a failure can be replayed.
func testSeed(t testing.TB, fixed uint64) uint64 {
	t.Helper()
	seed := fixed
	switch {
	case *flagSeed != 0:
		seed = *flagSeed
	case *flagRandSeed:
		var b [8]byte
		if _, err := crand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		seed = binary.LittleEndian.Uint64(b[:])
	}
	t.Logf("seed %d (replay with -rain.seed=%d)", seed, seed)
	return seed
}

// values copies a into a []int64.
func values(a *Amounts) []int64 {
	out := make([]int64, a.Len())
	for i := range out {
		out[i] = a.At(i)
	}
	return out
}

// checksum is FNV-64a over every amount as 8 little-endian bytes, whatever the storage.
func checksum(a *Amounts) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range a.Len() {
		binary.LittleEndian.PutUint64(b[:], uint64(a.At(i)))
		h.Write(b[:])
	}
	return h.Sum64()
}

// checkAmounts reports the first way a breaks the generation contract for a slice of count
// packets summing to amount.
func checkAmounts(t testing.TB, a *Amounts, count, amount int64) {
	t.Helper()
	if int64(a.Len()) != count {
		t.Fatalf("len %d, want %d", a.Len(), count)
	}
	wantBytes := 4
	if amount > math.MaxUint32 {
		wantBytes = 8
	}
	if a.BytesPerPacket() != wantBytes {
		t.Fatalf("amount %d stored in %d bytes/packet, want %d", amount, a.BytesPerPacket(), wantBytes)
	}
	var sum int64
	for i := range a.Len() {
		v := a.At(i)
		if v < 1 || v > amount-count+1 {
			t.Fatalf("packet %d = %d, want 1..%d", i, v, amount-count+1)
		}
		sum += v
	}
	if sum != amount {
		t.Fatalf("sum %d, want %d", sum, amount)
	}
}

// chi2Critical approximates the chi-square quantile with df degrees of freedom whose upper tail
// is the normal tail beyond z (Wilson–Hilferty); z = 5 is an upper tail of about 3e-7.
func chi2Critical(df int, z float64) float64 {
	k := float64(df)
	c := 1 - 2/(9*k) + z*math.Sqrt(2/(9*k))
	return k * c * c * c
}

// chi2 is Pearson's statistic of observed counts against equal expected counts.
func chi2(counts []int) float64 {
	total := 0
	for _, c := range counts {
		total += c
	}
	exp := float64(total) / float64(len(counts))
	var x float64
	for _, c := range counts {
		d := float64(c) - exp
		x += d * d / exp
	}
	return x
}
