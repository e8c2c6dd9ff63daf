package rain

import "math/bits"

// Rand is redrain's own pseudo-random generator: xoshiro256** (Blackman and Vigna) whose state
// is expanded from a 64-bit seed by SplitMix64. It is not math/rand on purpose: a slice's
// packets are regenerated from its seed after a restart, so the stream must never change with
// a Go release. Golden vectors in the tests pin it. A Rand is not safe for concurrent use;
// its zero value is not a usable generator (use NewRand or Seed).
type Rand struct {
	s0, s1, s2, s3 uint64
}

// golden is 2^64 divided by the golden ratio: SplitMix64's increment.
const golden = 0x9e3779b97f4a7c15

// mix64 is SplitMix64's output function (a bijection on uint64).
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// splitMix64 advances *state and returns the next SplitMix64 output.
func splitMix64(state *uint64) uint64 {
	*state += golden
	return mix64(*state)
}

// NewRand returns a generator seeded from seed. Every seed, 0 included, is valid.
func NewRand(seed uint64) *Rand {
	r := &Rand{}
	r.Seed(seed)
	return r
}

// Seed resets r to the stream of NewRand(seed). Four consecutive SplitMix64 outputs are never
// all zero (it is a bijection of distinct states), so the xoshiro state is always valid.
func (r *Rand) Seed(seed uint64) {
	st := seed
	r.s0 = splitMix64(&st)
	r.s1 = splitMix64(&st)
	r.s2 = splitMix64(&st)
	r.s3 = splitMix64(&st)
}

// Uint64 returns the next 64 uniformly random bits (xoshiro256**).
func (r *Rand) Uint64() uint64 {
	out := bits.RotateLeft64(r.s1*5, 7) * 9
	t := r.s1 << 17
	r.s2 ^= r.s0
	r.s3 ^= r.s1
	r.s1 ^= r.s2
	r.s0 ^= r.s3
	r.s2 ^= t
	r.s3 = bits.RotateLeft64(r.s3, 45)
	return out
}

// Uint64n returns a uniform integer in [0, n), without modulo bias, by Lemire's
// multiply-shift with rejection ("Fast random integer generation in an interval", 2019).
// It panics if n is 0 (a programmer error).
func (r *Rand) Uint64n(n uint64) uint64 {
	if n == 0 {
		panic("rain: Uint64n(0)")
	}
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		// Reject the 2^64 mod n low products that would over-represent some results.
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}

// DeriveSeed returns the seed of child stream i of seed: distinct i give unrelated seeds, and
// the child differs from the parent's own stream. Plan gives slice id its seed as
// DeriveSeed(rainSeed, id); Generate derives its generation and shuffle streams the same way.
func DeriveSeed(seed, i uint64) uint64 {
	// Hash the parent first so that (seed, i) and (seed+golden, i-1) do not collide, as
	// they would with a plain SplitMix64 step.
	return mix64(mix64(seed^0x5ca1ab1e0ddba11) + golden*(i+1))
}

// ShuffleAmounts permutes a uniformly at random (Fisher–Yates), drawing from r.
func ShuffleAmounts(a *Amounts, r *Rand) {
	if a.big != nil {
		shuffle(a.big, r)
		return
	}
	shuffle(a.small, r)
}

func shuffle[T cents](s []T, r *Rand) {
	for i := len(s) - 1; i > 0; i-- {
		j := r.Uint64n(uint64(i) + 1)
		s[i], s[j] = s[j], s[i]
	}
}
