package rain

import (
	"math/bits"
	"slices"
)

// The child streams of a slice's seed. Generation and shuffle draw from separate streams, so a
// change in how many numbers one of them consumes never shifts the other.
const (
	streamGenerate = 1
	streamShuffle  = 2
)

// cents is the element type of Amounts' two storage widths.
type cents interface{ uint32 | int64 }

// denseCutFactor picks line_cut's method: with N = amount-1 candidate cut points and n
// packets, N <= denseCutFactor*n marks cuts in a bitmap of N bits (at most n bytes);
// sparser slices draw points, bucket-sort them and redraw duplicates.
const denseCutFactor = 8

// Generate returns slice s's packet amounts, in serving order: every amount >= 1, their sum
// exactly s.Amount. The same slice (amount, count, seed, algorithm) always gives the same
// amounts, on every platform and Go release. Its error wraps ErrInvalidSlice.
func Generate(s Slice) (Amounts, error) {
	if err := s.Validate(); err != nil {
		return Amounts{}, err
	}
	alg, _ := ParseAlgorithm(string(s.Algorithm)) // validated above
	a := NewAmounts(int(s.Count), s.Amount)
	var r Rand
	r.Seed(DeriveSeed(s.Seed, streamGenerate))
	if a.big != nil {
		fill(a.big, alg, uint64(s.Amount), &r)
	} else {
		fill(a.small, alg, uint64(s.Amount), &r)
	}
	// Claim order must not be a source of bias: double_average's last packets vary most.
	r.Seed(DeriveSeed(s.Seed, streamShuffle))
	ShuffleAmounts(&a, &r)
	return a, nil
}

// fill writes len(dst) amounts summing to total (>= len(dst) >= 1), before the shuffle.
func fill[T cents](dst []T, alg Algorithm, total uint64, r *Rand) {
	switch alg {
	case LineCut:
		lineCut(dst, total, r)
	case Equal:
		equalSplit(dst, total)
	default:
		doubleAverage(dst, total, r)
	}
}

// doubleAverage: with rest cents and left packets to go, a packet gets a uniform integer in
// [1, 2*floor(rest/left)-1]; the last gets what remains. rest never drops below left, because
// rest >= q*left with q = floor(rest/left) >= 1 implies rest-(2q-1) >= left-1.
func doubleAverage[T cents](dst []T, total uint64, r *Rand) {
	rest := total
	last := len(dst) - 1
	for i := range last {
		left := uint64(len(dst) - i)
		x := 1 + r.Uint64n(2*(rest/left)-1)
		dst[i] = T(x)
		rest -= x
	}
	dst[last] = T(rest)
}

// equalSplit gives total/n to each packet and one cent more to the first total%n.
func equalSplit[T cents](dst []T, total uint64) {
	n := uint64(len(dst))
	q, extra := total/n, total%n
	for i := range dst {
		v := q
		if uint64(i) < extra {
			v++
		}
		dst[i] = T(v)
	}
}

// lineCut chooses n-1 distinct cut points uniformly among [1, total-1] and writes the gaps
// between consecutive points (and the ends 0 and total), in order of position. Every
// subset is equally likely, so every position has the same distribution.
func lineCut[T cents](dst []T, total uint64, r *Rand) {
	n := uint64(len(dst))
	switch {
	case n == 1:
		dst[0] = T(total)
	case total-1 <= denseCutFactor*n:
		lineCutDense(dst, total, r)
	default:
		lineCutSparse(dst, total, r)
	}
}

// lineCutDense marks the cuts in a bitmap, bit p-1 standing for point p. When more than half
// the points are cuts it picks the points that are not, so it never draws more than n-1 times.
func lineCutDense[T cents](dst []T, total uint64, r *Rand) {
	points := total - 1
	cuts := uint64(len(dst) - 1)
	pick, invert := cuts, false
	if cuts > points/2 {
		pick, invert = points-cuts, true
	}
	bm := make([]uint64, (points+63)/64)
	floydBits(bm, points, pick, r)
	var prev uint64
	i := 0
	for w, word := range bm {
		if invert {
			word = ^word
			if tail := points % 64; w == len(bm)-1 && tail != 0 {
				word &= 1<<tail - 1
			}
		}
		for ; word != 0; word &= word - 1 {
			p := uint64(w)*64 + uint64(bits.TrailingZeros64(word)) + 1
			dst[i] = T(p - prev)
			prev = p
			i++
		}
	}
	dst[i] = T(total - prev)
}

// floydBits sets m distinct bits among bits [0, n) of bm, every m-subset equally likely
// (Floyd's algorithm: exactly m draws, no rejection).
func floydBits(bm []uint64, n, m uint64, r *Rand) {
	for j := n - m; j < n; j++ {
		t := r.Uint64n(j + 1)
		if bm[t>>6]&(1<<(t&63)) != 0 {
			t = j
		}
		bm[t>>6] |= 1 << (t & 63)
	}
}

// lineCutSparse draws the cut points into dst[:n-1] (they fit T: they are < total), sorts
// and dedups them, redraws the deficit until n-1 distinct points remain, then turns the
// points into gaps in place. Drawing with replacement and redrawing duplicates treats every
// point alike, so every subset stays equally likely.
func lineCutSparse[T cents](dst []T, total uint64, r *Rand) {
	cuts := dst[:len(dst)-1]
	drawSorted(cuts, total-1, r)
	m := dedupSorted(cuts)
	for m < len(cuts) {
		m = addCuts(cuts, m, total-1, r)
	}
	last := len(dst) - 1
	dst[last] = T(total - uint64(dst[last-1]))
	for i := last - 1; i > 0; i-- {
		dst[i] -= dst[i-1]
	}
}

// drawSorted fills dst with len(dst) uniform points of [1, points], sorted. The points are
// uniform, so a two-level bucket sort is linear: first into at most topBuckets ranges (few
// enough write streams to stay in cache), then each range by a counting sort over blocks of
// ~4 points and an insertion sort per block. The draws are made twice from the same state,
// once to count and once to place, so no second buffer of len(dst) points is needed.
func drawSorted[T cents](dst []T, points uint64, r *Rand) {
	shift := blockShift(points, topBuckets)
	next := make([]uint32, (points-1)>>shift+2)
	saved := *r
	for range dst {
		next[r.Uint64n(points)>>shift+1]++
	}
	prefixSum(next) // next[b] is now where range b starts
	*r = saved
	for range dst {
		v := r.Uint64n(points)
		b := v >> shift
		dst[next[b]] = T(v + 1)
		next[b]++ // ends as where range b ends
	}
	var sc bucketScratch[T]
	var lo uint32
	for b, hi := range next[:len(next)-1] {
		sc.sort(dst[lo:hi], uint64(b)<<shift+1, uint64(1)<<shift)
		lo = hi
	}
}

// topBuckets bounds drawSorted's first-level ranges.
const topBuckets = 256

// bucketScratch is reused across drawSorted's ranges.
type bucketScratch[T cents] struct {
	buf  []T
	next []uint32
}

// sort sorts seg, whose values lie in [base, base+width), by a counting sort over blocks of
// about 4 values' expected share, then an insertion sort in each block.
func (sc *bucketScratch[T]) sort(seg []T, base, width uint64) {
	if len(seg) < 32 {
		insertionSort(seg)
		return
	}
	shift := blockShift(width, uint64(len(seg)/4))
	sc.next = slices.Grow(sc.next[:0], int((width-1)>>shift+2))[:(width-1)>>shift+2]
	clear(sc.next)
	sc.buf = append(sc.buf[:0], seg...)
	for _, v := range sc.buf {
		sc.next[(uint64(v)-base)>>shift+1]++
	}
	prefixSum(sc.next)
	for _, v := range sc.buf {
		b := (uint64(v) - base) >> shift
		seg[sc.next[b]] = v
		sc.next[b]++
	}
	var lo uint32
	for _, hi := range sc.next[:len(sc.next)-1] {
		insertionSort(seg[lo:hi])
		lo = hi
	}
}

func prefixSum(s []uint32) {
	for i := 1; i < len(s); i++ {
		s[i] += s[i-1]
	}
}

// blockShift returns the smallest s such that blocks of 2^s values cover [0, width) in at
// most max(limit, 1) blocks.
func blockShift(width, limit uint64) uint {
	limit = max(limit, 1)
	var s uint
	for (width-1)>>s+1 > limit {
		s++
	}
	return s
}

func insertionSort[T cents](s []T) {
	for i := 1; i < len(s); i++ {
		v := s[i]
		j := i
		for ; j > 0 && s[j-1] > v; j-- {
			s[j] = s[j-1]
		}
		s[j] = v
	}
}

// dedupSorted removes repeats from sorted s in place and returns the distinct count.
func dedupSorted[T cents](s []T) int {
	if len(s) == 0 {
		return 0
	}
	m := 1
	for _, v := range s[1:] {
		if v != s[m-1] {
			s[m] = v
			m++
		}
	}
	return m
}

// addCuts draws len(cuts)-m more points of [1, points], keeps those not yet in the sorted
// distinct cuts[:m], merges them in, and returns the new distinct count.
func addCuts[T cents](cuts []T, m int, points uint64, r *Rand) int {
	extra := make([]T, len(cuts)-m)
	for i := range extra {
		extra[i] = T(1 + r.Uint64n(points))
	}
	slices.Sort(extra) // integers: the result does not depend on the sort algorithm
	extra = extra[:dedupSorted(extra)]
	fresh := extra[:0]
	for _, v := range extra {
		if _, found := slices.BinarySearch(cuts[:m], v); !found {
			fresh = append(fresh, v)
		}
	}
	i, j := m-1, len(fresh)-1
	for w := m + len(fresh) - 1; j >= 0; w-- {
		if i >= 0 && cuts[i] > fresh[j] {
			cuts[w] = cuts[i]
			i--
		} else {
			cuts[w] = fresh[j]
			j--
		}
	}
	return m + len(fresh)
}
