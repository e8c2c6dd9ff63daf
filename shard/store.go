package shard

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"redrain/rain"
)

// Errors returned by Claim, in the order Claim checks them, and by the store's other methods.
var (
	ErrUnknownRain = errors.New("shard: unknown rain")                              // no slice of the rain is held here
	ErrNotStarted  = errors.New("shard: rain not started")                          // no Start yet, or before starts_at
	ErrFinished    = errors.New("shard: rain finished")                             // at or after ends_at, or stopped
	ErrRateLimited = errors.New("shard: claiming faster than the minimum interval") // MinClaimInterval since the last admitted attempt
	ErrUserLimit   = errors.New("shard: user holds max_per_user packets")           // MaxPerUser reached
	ErrExhausted   = errors.New("shard: no packet left here")                       // every slice of the served epoch empty
	ErrBadSlice    = errors.New("shard: bad slice")                                 // AddSlice's arguments disagree or are out of range
	ErrEpochClash  = errors.New("shard: rain already started with another epoch")   // Start or AddSlice naming a second epoch
	ErrBadWindow   = errors.New("shard: ends_at not after starts_at")               // Start with an empty window
	ErrNoSlice     = errors.New("shard: no such slice")                             // CutTail naming a slice not held
)

// RainSpec is what the store needs of a rain's config; it must be the same for all its slices.
type RainSpec struct {
	Code             string
	MaxPerUser       int   // 1..rain.MaxMaxPerUser
	MinClaimInterval int64 // ns between a user's admitted attempts; 0 = none
}

// Claim is one packet handed out.
type Claim struct {
	Epoch  uint64
	Slice  uint32
	Index  uint32
	Amount int64
}

// Progress is a rain's state on this node. Count and Amount are as assigned to the reported
// epoch's slices (the served one once started, else the newest held); Remaining* are the
// packets not handed out, released ones included (exact when no claim is in flight).
type Progress struct {
	Code                            string
	Epoch                           uint64
	Count, Amount                   int64
	RemainingCount, RemainingAmount int64
	Started, Finished, Exhausted    bool
	StartsAt, EndsAt                int64 // 0 before Start
	Users                           int   // per-user counter entries held
}

// Cut is a range of a slice's indices taken off a window's queue by CutTail or CutMost:
// [From, To), Count packets worth Amount, none of them claimed here.
type Cut struct {
	Epoch         uint64
	Slice         uint32
	From, To      uint32
	Count, Amount int64
}

// Store holds a node's rains. Claim and Release take no store-wide lock: the rain map is an
// immutable value swapped whole (copy on write) by the other methods, which serialise on mu.
type Store struct {
	mu    sync.Mutex
	rains atomic.Pointer[map[string]*rainState]
}

// sliceKey names a window: a slice of an epoch, from index lo.
type sliceKey struct {
	epoch uint64
	id    uint32
	lo    uint32
}

// rainState is one rain. serve and stopAt are read lock-free by Claim; slices only under
// Store.mu.
type rainState struct {
	spec   RainSpec
	limit  uint16
	serve  atomic.Pointer[serving] // nil until Start
	stopAt atomic.Int64            // claims at or after it are finished; MaxInt64 until Stop
	slices map[sliceKey]*slice     // every slice held, of any epoch
	_      [64]byte                // keeps the stripes' locks off the line of serve and stopAt
	users  users
}

// serving is an immutable view of a started rain: its window and its epoch's slices.
type serving struct {
	epoch            uint64
	startsAt, endsAt int64
	slices           []*slice // by slice id
}

// New returns an empty store.
func New() *Store {
	s := &Store{}
	s.rains.Store(&map[string]*rainState{})
	return s
}

func (s *Store) rain(code string) *rainState { return (*s.rains.Load())[code] }

// setRain adds (r != nil) or removes the rain code by swapping in a modified copy of the map.
// The caller holds s.mu.
func (s *Store) setRain(code string, r *rainState) {
	m := maps.Clone(*s.rains.Load())
	if r == nil {
		delete(m, code)
	} else {
		m[code] = r
	}
	s.rains.Store(&m)
}

func validSpec(spec RainSpec, sl rain.Slice) error {
	switch {
	case spec.Code != sl.Code:
		return fmt.Errorf("%w: slice of rain %q given with spec of rain %q", ErrBadSlice, sl.Code, spec.Code)
	case spec.MaxPerUser < 1 || spec.MaxPerUser > rain.MaxMaxPerUser:
		return fmt.Errorf("%w: max_per_user %d out of range 1..%d", ErrBadSlice, spec.MaxPerUser, rain.MaxMaxPerUser)
	case spec.MinClaimInterval < 0:
		return fmt.Errorf("%w: negative min claim interval %d", ErrBadSlice, spec.MinClaimInterval)
	}
	return nil
}

// AddSlice registers a slice, creating the rain from spec on its first slice. amounts are the
// slice's generated, shuffled amounts (len == sl.Count, summing to sl.Amount); claimed lists the
// indices already journaled (recovery): exactly those are never handed out. Adding a slice the
// rain already holds (same epoch and id) does nothing. After Start only the served epoch's
// slices are accepted (ErrEpochClash otherwise); they are served at once.
func (s *Store) AddSlice(spec RainSpec, sl rain.Slice, amounts rain.Amounts, claimed []uint32) error {
	return s.AddWindow(spec, sl, amounts, 0, uint32(sl.Count), claimed)
}

// AddWindow is AddSlice for the indices [lo, hi) of the slice only: a part of another node's
// slice moved here, or what is left of a slice after moves out (possibly nothing: an empty
// window keeps the rain known). Windows of one slice must not overlap; a window already held
// (same epoch, id and lo) is not added again, unless all of it was cut before anything was
// handed out (its stock moved away and is now coming back): then the new one replaces it.
func (s *Store) AddWindow(spec RainSpec, sl rain.Slice, amounts rain.Amounts, lo, hi uint32, claimed []uint32) error {
	if err := validSpec(spec, sl); err != nil {
		return err
	}
	x, err := newSlice(sl, amounts, lo, hi, claimed) // the O(count) part, outside the lock
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rain(spec.Code)
	if r == nil {
		r = &rainState{spec: spec, limit: uint16(spec.MaxPerUser), slices: map[sliceKey]*slice{}}
		r.stopAt.Store(math.MaxInt64)
		s.setRain(spec.Code, r)
	}
	if r.spec != spec {
		return fmt.Errorf("%w: spec %+v differs from the rain's %+v", ErrBadSlice, spec, r.spec)
	}
	key := sliceKey{sl.Epoch, sl.ID, lo}
	if y, ok := r.slices[key]; ok && !y.gone() {
		return nil
	}
	for k, y := range r.slices { // against what each window still holds: cut tails left it
		_, yEnd := unpack(y.cursor.Load())
		if k != key && k.epoch == sl.Epoch && k.id == sl.ID && lo < hi && y.lo < yEnd && lo < yEnd && y.lo < hi {
			return fmt.Errorf("%w: window [%d, %d) of slice %d overlaps [%d, %d)", ErrBadSlice, lo, hi, sl.ID, y.lo, yEnd)
		}
	}
	sv := r.serve.Load()
	if sv != nil && sv.epoch != sl.Epoch {
		return fmt.Errorf("%w: slice of epoch %d, serving epoch %d", ErrEpochClash, sl.Epoch, sv.epoch)
	}
	r.slices[key] = x
	if sv != nil {
		r.serve.Store(&serving{epoch: sv.epoch, startsAt: sv.startsAt, endsAt: sv.endsAt,
			slices: r.epochSlices(sv.epoch)})
	}
	return nil
}

// epochSlices returns the rain's slices of epoch, by id. The caller holds Store.mu.
func (r *rainState) epochSlices(epoch uint64) []*slice {
	var out []*slice
	for k, x := range r.slices {
		if k.epoch == epoch {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b *slice) int { return cmp.Or(cmp.Compare(a.id, b.id), cmp.Compare(a.lo, b.lo)) })
	return out
}

// RestoreUsers sets per-user claim counts replayed from the journal (after AddSlice, before
// serving). Unknown rains are ignored.
func (s *Store) RestoreUsers(code string, counts map[uint64]int) {
	if r := s.rain(code); r != nil {
		for user, n := range counts {
			r.users.restore(user, n)
		}
	}
}

// ReserveUser counts one claim of user paid on another node (this node is the user's owner),
// against max_per_user and without the per-node rate limit: ErrUnknownRain, ErrUserLimit, or nil
// with the user's count raised by one. UnreserveUser takes one back.
func (s *Store) ReserveUser(code string, user uint64) error {
	r := s.rain(code)
	if r == nil {
		return ErrUnknownRain
	}
	return r.users.take(hashUser(user), user, r.limit)
}

// UnreserveUser takes back one count of user (a ReserveUser whose claim was not paid). Unknown
// rains and users at zero are ignored.
func (s *Store) UnreserveUser(code string, user uint64) {
	if r := s.rain(code); r != nil {
		r.users.unreserve(hashUser(user), user)
	}
}

// Start serves epoch's slices in [startsAt, endsAt) and drops the rain's slices of other
// epochs. Repeating it for the same epoch only updates the window; another epoch once started
// gets ErrEpochClash.
func (s *Store) Start(code string, epoch uint64, startsAt, endsAt int64) error {
	if endsAt <= startsAt {
		return ErrBadWindow
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rain(code)
	if r == nil {
		return ErrUnknownRain
	}
	if sv := r.serve.Load(); sv != nil && sv.epoch != epoch {
		return fmt.Errorf("%w: start of epoch %d, serving epoch %d", ErrEpochClash, epoch, sv.epoch)
	}
	for k := range r.slices {
		if k.epoch != epoch {
			delete(r.slices, k)
		}
	}
	r.serve.Store(&serving{epoch: epoch, startsAt: startsAt, endsAt: endsAt, slices: r.epochSlices(epoch)})
	return nil
}

// Stop finishes the rain for claims at or after at (the earliest of several Stops wins), also
// when it was never started. Unknown rains are ignored.
func (s *Store) Stop(code string, at int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.rain(code); r != nil && at < r.stopAt.Load() {
		r.stopAt.Store(at)
	}
}

// DropEpoch discards the rain's slices of an abandoned prepare. The served epoch is kept (a
// start is final); a rain left with no slice and not started is forgotten.
func (s *Store) DropEpoch(code string, epoch uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rain(code)
	if r == nil {
		return
	}
	sv := r.serve.Load()
	if sv != nil && sv.epoch == epoch {
		return
	}
	for k := range r.slices {
		if k.epoch == epoch {
			delete(r.slices, k)
		}
	}
	if len(r.slices) == 0 && sv == nil {
		s.setRain(code, nil)
	}
}

// Remove forgets a rain and everything about it.
func (s *Store) Remove(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rain(code) != nil {
		s.setRain(code, nil)
	}
}

// Claim hands user the next packet of rain code at time now (unix ns). It checks, in order:
// ErrUnknownRain; ErrFinished if stopped at or before now; ErrNotStarted before Start or
// starts_at; ErrFinished at or after ends_at; ErrRateLimited; ErrUserLimit; then pops from the
// served slices, starting at one picked by the user's hash, and returns ErrExhausted (taking the
// user's reservation back) when all are empty. It takes no lock but the user's stripe and does
// not allocate, except when a stripe's user table grows.
func (s *Store) Claim(code []byte, user uint64, now int64) (Claim, error) {
	return s.claim(code, user, now, true)
}

// ClaimAgain is Claim for an attempt Claim already admitted and answered ErrExhausted, retried
// once stock arrived: the minimum claim interval is not applied a second time.
func (s *Store) ClaimAgain(code []byte, user uint64, now int64) (Claim, error) {
	return s.claim(code, user, now, false)
}

func (s *Store) claim(code []byte, user uint64, now int64, paced bool) (Claim, error) {
	r := (*s.rains.Load())[string(code)]
	if r == nil {
		return Claim{}, ErrUnknownRain
	}
	if now >= r.stopAt.Load() {
		return Claim{}, ErrFinished
	}
	sv := r.serve.Load()
	if sv == nil || now < sv.startsAt {
		return Claim{}, ErrNotStarted
	}
	if now >= sv.endsAt {
		return Claim{}, ErrFinished
	}
	h := hashUser(user)
	interval := r.spec.MinClaimInterval
	if !paced {
		interval = 0
	}
	if err := r.users.reserve(h, user, now, r.limit, interval); err != nil {
		return Claim{}, err
	}
	n := len(sv.slices)
	for k, j := 0, int(uint64(uint32(h>>24))*uint64(n)>>32); k < n; k++ { // start at a slice picked by h
		x := sv.slices[j]
		if i, ok := x.pop(); ok {
			return Claim{Epoch: x.epoch, Slice: x.id, Index: i, Amount: x.amounts.At(int(i))}, nil
		}
		if j++; j == n {
			j = 0
		}
	}
	r.users.unreserve(h, user)
	return Claim{}, ErrExhausted
}

// Release returns a packet handed out by Claim whose claim could not be made durable: it can be
// claimed again and user's count goes down by one. Call it at most once per Claim, and never for
// a journaled claim. Claims of rains or epochs no longer held are ignored.
func (s *Store) Release(code []byte, user uint64, c Claim) {
	r := (*s.rains.Load())[string(code)]
	if r == nil {
		return
	}
	sv := r.serve.Load()
	if sv == nil || sv.epoch != c.Epoch {
		return
	}
	for _, x := range sv.slices {
		// The window that handed it out: its index is below that window's end (a cut leaves
		// the end at or above every index popped). A window of the same slice whose tail was
		// moved away, and moved back here as a window of its own, also covers it in [lo, hi).
		if _, end := unpack(x.cursor.Load()); x.id == c.Slice && c.Index >= x.lo && c.Index < end {
			x.release(c.Index)
			r.users.unreserve(hashUser(user), user)
			return
		}
	}
}

// CutTail takes up to max unserved packets off the end of the queue of the window of slice
// sliceID starting at lo, atomically with respect to concurrent Claims: each index is either
// handed out or cut, never both. It is how unserved stock moves elsewhere; released packets and
// indices claimed before a restart are never cut.
func (s *Store) CutTail(code string, epoch uint64, sliceID, lo uint32, max uint32) (Cut, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rain(code)
	if r == nil {
		return Cut{}, ErrUnknownRain
	}
	x := r.slices[sliceKey{epoch, sliceID, lo}]
	if x == nil {
		return Cut{}, fmt.Errorf("%w: %s epoch %d slice %d from %d", ErrNoSlice, code, epoch, sliceID, lo)
	}
	return x.cut(max), nil
}

// CutMost is CutTail on the served window with the most unserved packets: ok is false when the
// rain is not being served or no window has any.
func (s *Store) CutMost(code string, max uint32) (c Cut, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rain(code)
	if r == nil || max == 0 {
		return Cut{}, false
	}
	sv := r.serve.Load()
	if sv == nil {
		return Cut{}, false
	}
	var best *slice
	var most uint32
	for _, x := range sv.slices {
		if next, end := unpack(x.cursor.Load()); end > next && end-next > most {
			best, most = x, end-next
		}
	}
	if best == nil {
		return Cut{}, false
	}
	c = best.cut(max)
	return c, c.To > c.From
}

// Uncut puts back a cut whose move could not be made durable, if nothing was cut from that
// window since: false when it could not (the packets then stay off sale until the node
// restarts and serves them again, as no move of them was journaled).
func (s *Store) Uncut(code string, c Cut) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rain(code)
	if r == nil || c.To <= c.From {
		return false
	}
	for k, x := range r.slices {
		if k.epoch != c.Epoch || k.id != c.Slice || c.From < x.lo || c.To > x.hi {
			continue
		}
		for {
			cur := x.cursor.Load()
			next, end := unpack(cur)
			if end != c.From {
				return false
			}
			if x.cursor.CompareAndSwap(cur, pack(next, c.To)) {
				x.cutCount -= c.Count
				x.cutAmount -= c.Amount
				return true
			}
		}
	}
	return false
}

// cut is cutTail as a Cut. The caller holds Store.mu.
func (x *slice) cut(max uint32) Cut {
	c := Cut{Epoch: x.epoch, Slice: x.id}
	c.From, c.To, c.Count, c.Amount = x.cutTail(max)
	return c
}

// Progress reports rain code's state at now; false if the rain is unknown. It scans each slice
// once over all calls (a running sum), so repeated calls are cheap.
func (s *Store) Progress(code string, now int64) (Progress, bool) {
	return s.progress(code, now, true)
}

// Stock is Progress without Users: it takes none of the user stripes' locks that claims take,
// for callers that poll often (the node's stock mover).
func (s *Store) Stock(code string, now int64) (Progress, bool) {
	return s.progress(code, now, false)
}

func (s *Store) progress(code string, now int64, users bool) (Progress, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rain(code)
	if r == nil {
		return Progress{}, false
	}
	p := Progress{Code: code}
	if users {
		p.Users = r.users.entries()
	}
	var held []*slice
	if sv := r.serve.Load(); sv != nil {
		p.Epoch, p.StartsAt, p.EndsAt, held = sv.epoch, sv.startsAt, sv.endsAt, sv.slices
		p.Started = now >= sv.startsAt
		p.Finished = now >= sv.endsAt
	} else {
		for k := range r.slices {
			p.Epoch = max(p.Epoch, k.epoch)
		}
		held = r.epochSlices(p.Epoch)
	}
	p.Finished = p.Finished || now >= r.stopAt.Load()
	for _, x := range held {
		c, a := x.remaining()
		p.Count, p.Amount = p.Count+x.count, p.Amount+x.amount
		p.RemainingCount, p.RemainingAmount = p.RemainingCount+c, p.RemainingAmount+a
	}
	p.Exhausted = p.RemainingCount == 0
	return p, true
}

// Codes lists the rains held, sorted.
func (s *Store) Codes() []string {
	return slices.Sorted(maps.Keys(*s.rains.Load()))
}
