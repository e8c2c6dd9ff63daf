package shard

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"redrain/rain"
)

// slice is a window [lo, hi) of one generated slice's packets, and its queue: the whole slice
// when it was assigned here, a part of it when it was moved here from another node. The queue
// is the packed word cursor = next<<32 | end, absolute indices: indices in [next, end) are
// unserved. A pop advances next by CAS; CutTail lowers end by CAS, so a pop and a cut can never
// both take an index.
type slice struct {
	// Read or written on every pop; kept together.
	cursor   atomic.Uint64
	released atomic.Int32 // len(stack): lets a pop skip the lock while nothing was released
	id       uint32
	epoch    uint64
	lo       uint32       // the window's first index
	amounts  rain.Amounts // the whole slice's amounts, indexed absolutely
	claimed  []uint64     // bitmap of indices journaled before a restart, from lo; nil when none
	_        [64]byte

	mu    sync.Mutex
	stack []uint32 // released indices, served again once the queue is empty

	hi              uint32 // the window's end (exclusive)
	count, amount   int64  // the window's, as assigned or moved here
	unclaimedCount  int64  // count minus the indices in claimed
	unclaimedAmount int64
	scanPos         uint32 // Progress's running sums over [lo, scanPos) of unclaimed indices;
	scanCount       int64  // guarded by Store.mu, like cutCount and cutAmount
	scanAmount      int64
	cutCount        int64 // unclaimed indices cut from the tail
	cutAmount       int64
}

func pack(next, end uint32) uint64 { return uint64(next)<<32 | uint64(end) }

func unpack(c uint64) (next, end uint32) { return uint32(c >> 32), uint32(c) }

// newSlice checks sl, amounts, the window [lo, hi) and claimed against each other and builds
// the window, with the indices in claimed made unavailable.
func newSlice(sl rain.Slice, amounts rain.Amounts, lo, hi uint32, claimed []uint32) (*slice, error) {
	if err := sl.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSlice, err)
	}
	if int64(amounts.Len()) != sl.Count {
		return nil, fmt.Errorf("%w: %d amounts for %d packets", ErrBadSlice, amounts.Len(), sl.Count)
	}
	if lo > hi || int64(hi) > sl.Count {
		return nil, fmt.Errorf("%w: window [%d, %d) of %d packets", ErrBadSlice, lo, hi, sl.Count)
	}
	var sum, window int64
	for i := range amounts.Len() {
		a := amounts.At(i)
		if a < 1 {
			return nil, fmt.Errorf("%w: packet %d has amount %d", ErrBadSlice, i, a)
		}
		sum += a
		if i >= int(lo) && i < int(hi) {
			window += a
		}
	}
	if sum != sl.Amount {
		return nil, fmt.Errorf("%w: amounts sum to %d, slice amount is %d", ErrBadSlice, sum, sl.Amount)
	}
	x := &slice{id: sl.ID, epoch: sl.Epoch, lo: lo, hi: hi, amounts: amounts, count: int64(hi - lo),
		amount: window, unclaimedCount: int64(hi - lo), unclaimedAmount: window, scanPos: lo}
	if err := x.markClaimed(claimed); err != nil {
		return nil, err
	}
	x.cursor.Store(pack(x.firstFree(lo, hi), hi))
	return x, nil
}

// markClaimed builds the bitmap of journaled indices (none when claimed is empty).
func (x *slice) markClaimed(claimed []uint32) error {
	if len(claimed) == 0 {
		return nil
	}
	x.claimed = make([]uint64, (x.count+63)/64)
	for _, i := range claimed {
		if i < x.lo || i >= x.hi {
			return fmt.Errorf("%w: claimed index %d out of the window %d..%d", ErrBadSlice, i, x.lo, x.hi-1)
		}
		if x.isClaimed(i) {
			continue // a duplicate
		}
		k := i - x.lo
		x.claimed[k>>6] |= 1 << (k & 63)
		x.unclaimedCount--
		x.unclaimedAmount -= x.amounts.At(int(i))
	}
	return nil
}

func (x *slice) isClaimed(i uint32) bool {
	if x.claimed == nil {
		return false
	}
	k := i - x.lo
	return x.claimed[k>>6]&(1<<(k&63)) != 0
}

// firstFree returns the first index in [i, end) not in the claimed bitmap, or end.
func (x *slice) firstFree(i, end uint32) uint32 {
	if x.claimed == nil {
		return i
	}
	for i < end {
		k := i - x.lo
		if w := ^x.claimed[k>>6] >> (k & 63); w != 0 {
			return min(i+uint32(bits.TrailingZeros64(w)), end)
		}
		i += 64 - k&63
	}
	return end
}

// lastClaimed returns the highest index in [from, end) in the claimed bitmap, if any.
func (x *slice) lastClaimed(from, end uint32) (uint32, bool) {
	if x.claimed == nil {
		return 0, false
	}
	for i := end; i > from; i-- {
		if x.isClaimed(i - 1) {
			return i - 1, true
		}
	}
	return 0, false
}

// pop takes the next unserved index, or else a released one; false when there is none.
func (x *slice) pop() (uint32, bool) {
	for {
		c := x.cursor.Load()
		next, end := unpack(c)
		i := x.firstFree(next, end)
		if i >= end {
			break
		}
		if x.cursor.CompareAndSwap(c, pack(i+1, end)) {
			return i, true
		}
	}
	if x.released.Load() == 0 {
		return 0, false
	}
	return x.popReleased()
}

func (x *slice) popReleased() (uint32, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := len(x.stack)
	if n == 0 {
		return 0, false
	}
	i := x.stack[n-1]
	x.stack = x.stack[:n-1]
	x.released.Add(-1)
	return i, true
}

// release makes a popped index claimable again.
func (x *slice) release(i uint32) {
	x.mu.Lock()
	x.stack = append(x.stack, i)
	x.released.Add(1)
	x.mu.Unlock()
}

// cutTail removes up to max unserved indices from the end of the queue and returns them as
// [from, to) with their count and amount; from == to when nothing was left. The range holds no
// index claimed before a restart (it stops above the last one), so every index in it is a
// packet nobody was paid: whoever receives it may serve all of it. The caller holds Store.mu.
func (x *slice) cutTail(max uint32) (from, to uint32, count, amount int64) {
	for {
		c := x.cursor.Load()
		next, end := unpack(c)
		from, to = end-min(max, end-next), end
		if i, ok := x.lastClaimed(from, end); ok {
			from = i + 1
		}
		if x.cursor.CompareAndSwap(c, pack(next, from)) {
			break
		}
	}
	count, amount = x.unclaimedIn(from, to)
	x.cutCount += count
	x.cutAmount += amount
	return from, to, count, amount
}

// unclaimedIn counts and sums the indices in [from, to) not claimed before a restart.
func (x *slice) unclaimedIn(from, to uint32) (count, amount int64) {
	for i := from; i < to; i++ {
		if !x.isClaimed(i) {
			count++
			amount += x.amounts.At(int(i))
		}
	}
	return count, amount
}

// gone reports whether the window never handed anything out and all of it was cut (or it was
// empty): nothing of it is here any more.
func (x *slice) gone() bool {
	next, end := unpack(x.cursor.Load())
	x.mu.Lock()
	defer x.mu.Unlock()
	return next == x.lo && end == x.lo && len(x.stack) == 0
}

// remaining counts and sums the packets not handed out: the queue's unclaimed indices plus the
// released stack. It extends a running prefix sum, so all calls together scan the slice once.
// The caller holds Store.mu.
func (x *slice) remaining() (count, amount int64) {
	next, _ := unpack(x.cursor.Load())
	if next > x.scanPos {
		c, a := x.unclaimedIn(x.scanPos, next)
		x.scanPos, x.scanCount, x.scanAmount = next, x.scanCount+c, x.scanAmount+a
	}
	count = x.unclaimedCount - x.scanCount - x.cutCount
	amount = x.unclaimedAmount - x.scanAmount - x.cutAmount
	x.mu.Lock()
	for _, i := range x.stack {
		count++
		amount += x.amounts.At(int(i))
	}
	x.mu.Unlock()
	return count, amount
}
