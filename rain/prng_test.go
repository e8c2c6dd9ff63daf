package rain

import (
	"slices"
	"testing"
)

// The published reference outputs of xoshiro256** from state {1, 2, 3, 4} (as in the
// reference C code's users, e.g. rand_xoshiro's test): Rand is the real algorithm.
func TestXoshiro256StarStarReference(t *testing.T) {
	r := &Rand{1, 2, 3, 4}
	want := []uint64{
		11520, 0, 1509978240, 1215971899390074240, 1216172134540287360,
		607988272756665600, 16172922978634559625, 8476171486693032832,
		10595114339597558777, 2904607092377533576,
	}
	for i, w := range want {
		if got := r.Uint64(); got != w {
			t.Fatalf("output %d = %d, want %d", i, got, w)
		}
	}
}

// The published first outputs of SplitMix64 seeded with 1234567.
func TestSplitMix64Reference(t *testing.T) {
	st := uint64(1234567)
	want := []uint64{6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821}
	for i, w := range want {
		if got := splitMix64(&st); got != w {
			t.Fatalf("output %d = %d, want %d", i, got, w)
		}
	}
}

// Golden outputs of redrain's seeding: changing NewRand, DeriveSeed or Uint64n changes every
// slice, so it must fail here first.
func TestRandGolden(t *testing.T) {
	for _, tc := range []struct {
		seed uint64
		want []uint64
	}{
		{0, []uint64{0x99ec5f36cb75f2b4, 0xbf6e1f784956452a, 0x1a5f849d4933e6e0, 0x6aa594f1262d2d2c, 0xbba5ad4a1f842e59}},
		{42, []uint64{0x15780b2e0c2ec716, 0x6104d9866d113a7e, 0xae17533239e499a1, 0xecb8ad4703b360a1, 0xfde6dc7fe2ec5e64}},
	} {
		r := NewRand(tc.seed)
		got := make([]uint64, len(tc.want))
		for i := range got {
			got[i] = r.Uint64()
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("NewRand(%d) = %#v, want %#v", tc.seed, got, tc.want)
		}
	}
	r := NewRand(7)
	gotN := make([]uint64, 8)
	for i := range gotN {
		gotN[i] = r.Uint64n(uint64(10 + i*1000))
	}
	if want := []uint64{7, 281, 1687, 2953, 3973, 4372, 365, 732}; !slices.Equal(gotN, want) {
		t.Errorf("Uint64n golden = %#v, want %#v", gotN, want)
	}
	gotD := []uint64{DeriveSeed(0, 0), DeriveSeed(0, 1), DeriveSeed(42, 1), DeriveSeed(42, 2)}
	if want := []uint64{0x634f56b5283d4d23, 0xb463409098e73fe7, 0x801f73bdbaaf2059, 0x8f6e19650eb4540e}; !slices.Equal(gotD, want) {
		t.Errorf("DeriveSeed golden = %#v, want %#v", gotD, want)
	}
}

func TestSeedResets(t *testing.T) {
	a, b := NewRand(1), NewRand(99)
	a.Uint64()
	a.Seed(99)
	for range 100 {
		if x, y := a.Uint64(), b.Uint64(); x != y {
			t.Fatalf("after Seed(99): %d, NewRand(99): %d", x, y)
		}
	}
}

func TestDeriveSeedDistinct(t *testing.T) {
	seen := make(map[uint64][2]uint64)
	for s := range uint64(300) {
		parents := []uint64{s, s * 0x9e3779b97f4a7c15, ^s}
		for _, p := range parents {
			for i := range uint64(100) {
				d := DeriveSeed(p, i)
				if prev, dup := seen[d]; dup && prev != [2]uint64{p, i} {
					t.Fatalf("DeriveSeed(%d, %d) == DeriveSeed(%d, %d)", p, i, prev[0], prev[1])
				}
				seen[d] = [2]uint64{p, i}
				if d == p {
					t.Fatalf("DeriveSeed(%d, %d) is its parent", p, i)
				}
			}
		}
	}
}

func TestUint64nRange(t *testing.T) {
	r := NewRand(testSeed(t, 1))
	for _, n := range []uint64{1, 2, 3, 7, 10, 1000, 1<<32 + 1, 1<<63 + 1, ^uint64(0)} {
		var hit [2]bool // results below n/2 and from n/2 on
		for range 2000 {
			v := r.Uint64n(n)
			if v >= n {
				t.Fatalf("Uint64n(%d) = %d", n, v)
			}
			if v < n/2 {
				hit[0] = true
			} else {
				hit[1] = true
			}
		}
		if n > 1 && !(hit[0] && hit[1]) {
			t.Errorf("Uint64n(%d) stayed in one half: %v", n, hit)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Uint64n(0) did not panic")
		}
	}()
	r.Uint64n(0)
}

func TestUint64nUniform(t *testing.T) {
	r := NewRand(testSeed(t, 2))
	for _, n := range []uint64{2, 7, 100} {
		counts := make([]int, n)
		for range 500 * int(n) {
			counts[r.Uint64n(n)]++
		}
		if x, crit := chi2(counts), chi2Critical(int(n)-1, 5); x > crit {
			t.Errorf("Uint64n(%d): chi-square %.1f > %.1f", n, x, crit)
		}
	}
}

// Without rejection, multiply-shift with n = 3*2^62 maps two inputs to every result that is
// a multiple of 3 and one to the others, so half the results would be multiples of 3; with
// Lemire's rejection it is a third.
func TestUint64nRejectsBias(t *testing.T) {
	r := NewRand(testSeed(t, 3))
	const n, draws = 3 << 62, 30000
	mult3 := 0
	for range draws {
		if r.Uint64n(n)%3 == 0 {
			mult3++
		}
	}
	// Binomial(30000, 1/3): sd 82; 6 sd either side. The biased generator gives 15000.
	if lo, hi := draws/3-6*82, draws/3+6*82; mult3 < lo || mult3 > hi {
		t.Errorf("%d of %d results are multiples of 3, want %d..%d", mult3, draws, lo, hi)
	}
}

func TestShuffleIsPermutation(t *testing.T) {
	r := NewRand(testSeed(t, 4))
	for _, total := range []int64{1 << 20, 1 << 40} {
		a := NewAmounts(1000, total)
		for i := range a.Len() {
			a.Set(i, int64(i))
		}
		ShuffleAmounts(&a, r)
		got := values(&a)
		moved := 0
		for i, v := range got {
			if v != int64(i) {
				moved++
			}
		}
		slices.Sort(got)
		for i, v := range got {
			if v != int64(i) {
				t.Fatalf("after shuffle, sorted[%d] = %d: not a permutation", i, v)
			}
		}
		if moved < 900 {
			t.Errorf("only %d of 1000 moved", moved)
		}
	}
	var empty Amounts
	ShuffleAmounts(&empty, r) // must not panic
}

// Every permutation of 4 elements is equally likely.
func TestShuffleUniform(t *testing.T) {
	r := NewRand(testSeed(t, 5))
	counts := make([]int, 24)
	for range 24 * 2000 {
		a := NewAmounts(4, 10)
		for i := range 4 {
			a.Set(i, int64(i))
		}
		ShuffleAmounts(&a, r)
		counts[permIndex(values(&a))]++
	}
	if x, crit := chi2(counts), chi2Critical(23, 5); x > crit {
		t.Errorf("chi-square %.1f > %.1f over 24 permutations: %v", x, crit, counts)
	}
}

// permIndex ranks a permutation of 0..len-1 (Lehmer code).
func permIndex(p []int64) int {
	idx := 0
	for i := range p {
		smaller := 0
		for _, q := range p[i+1:] {
			if q < p[i] {
				smaller++
			}
		}
		idx = idx*(len(p)-i) + smaller
	}
	return idx
}
