package shard

import (
	"math"
	"sync"
)

// stripes is the number of independently locked parts of a rain's user table.
const stripes = 256

// never is the last-attempt time of a user with no admitted attempt on record.
const never = math.MinInt64

// userSlot is one user's standing in one rain; a slot with count 0 is empty.
type userSlot struct {
	user  uint64
	last  int64  // unix ns of the last attempt admitted past the rate limit, or never
	count uint16 // packets held or in flight (max_per_user <= 1000)
}

// table is an open-addressing hash table of users (linear probing, backward-shift deletion),
// at most 3/4 full. It does what a map[uint64]userState would, with one probe per claim
// instead of a lookup and an assignment, and no per-user allocation.
type table struct {
	slots []userSlot // len is a power of two, or 0
	used  int
}

// stripe is one lock and its part of the users, padded to a cache line so that neighbouring
// stripes do not share one.
type stripe struct {
	mu sync.Mutex
	t  table
	_  [24]byte
}

// users counts a rain's claims per user. A user's stripe is picked by the top byte of its
// hash, its slot by the low bits.
type users struct {
	stripes [stripes]stripe
}

// hashUser mixes a user id (often sequential, or with zero low bits) into 64 well-spread bits
// (the splitmix64 finalizer).
func hashUser(user uint64) uint64 {
	user ^= user >> 30
	user *= 0xbf58476d1ce4e5b9
	user ^= user >> 27
	user *= 0x94d049bb133111eb
	return user ^ user>>31
}

func (u *users) stripe(h uint64) *stripe { return &u.stripes[h>>56] }

// reserve admits one claim attempt by user (hash h) at now, in the order of Claim's checks:
// ErrRateLimited if the previous admitted attempt is less than interval ago (0 = no limit),
// else the attempt's time is recorded and ErrUserLimit is returned if the user already holds
// limit packets, else the user's count is raised by one. A time going backwards is admitted.
func (u *users) reserve(h, user uint64, now int64, limit uint16, interval int64) error {
	st := u.stripe(h)
	st.mu.Lock()
	s := st.t.slot(h, user)
	if s.count > 0 && interval > 0 && s.last != never {
		if d := now - s.last; d >= 0 && d < interval {
			st.mu.Unlock()
			return ErrRateLimited
		}
	}
	s.last = now
	err := ErrUserLimit
	if s.count < limit {
		s.count++
		err = nil
	}
	st.mu.Unlock()
	return err
}

// take raises user's count by one unless it is at limit (ErrUserLimit); unlike reserve it
// neither checks nor records an attempt time.
func (u *users) take(h, user uint64, limit uint16) error {
	st := u.stripe(h)
	st.mu.Lock()
	defer st.mu.Unlock()
	if i, ok := st.t.find(h, user); ok && st.t.slots[i].count >= limit {
		return ErrUserLimit
	}
	st.t.slot(h, user).count++
	return nil
}

// unreserve takes one claim back from user; a user left at zero is deleted, which keeps the
// table no larger than the packets handed out plus the attempts in flight.
func (u *users) unreserve(h, user uint64) {
	st := u.stripe(h)
	st.mu.Lock()
	if i, ok := st.t.find(h, user); ok {
		if st.t.slots[i].count--; st.t.slots[i].count == 0 {
			st.t.remove(i)
		}
	}
	st.mu.Unlock()
}

// restore sets user's count (as replayed from the journal), with no attempt time on record.
func (u *users) restore(user uint64, count int) {
	h := hashUser(user)
	st := u.stripe(h)
	st.mu.Lock()
	defer st.mu.Unlock()
	if count <= 0 {
		if i, ok := st.t.find(h, user); ok {
			st.t.remove(i)
		}
		return
	}
	s := st.t.slot(h, user)
	s.count, s.last = uint16(min(count, math.MaxUint16)), never
}

// entries returns how many users the table holds.
func (u *users) entries() int {
	n := 0
	for i := range u.stripes {
		st := &u.stripes[i]
		st.mu.Lock()
		n += st.t.used
		st.mu.Unlock()
	}
	return n
}

// find returns user's slot index and true, or the empty slot where it would go and false.
func (t *table) find(h, user uint64) (int, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	mask := len(t.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		switch s := &t.slots[i]; {
		case s.count == 0:
			return i, false
		case s.user == user:
			return i, true
		}
	}
}

// slot returns user's slot, claiming an empty one (count 0) when the user is not there.
// The caller must give a new slot a count before releasing the lock.
func (t *table) slot(h, user uint64) *userSlot {
	i, ok := t.find(h, user)
	if !ok {
		if (t.used+1)*4 > len(t.slots)*3 {
			t.grow()
			i, _ = t.find(h, user)
		}
		t.used++
		t.slots[i] = userSlot{user: user, last: never}
	}
	return &t.slots[i]
}

// grow doubles the table (8 slots at first) and re-inserts every user.
func (t *table) grow() {
	old := t.slots
	t.slots = make([]userSlot, max(8, 2*len(old)))
	for _, s := range old {
		if s.count > 0 {
			i, _ := t.find(hashUser(s.user), s.user)
			t.slots[i] = s
		}
	}
}

// remove empties slot i, shifting back later users of its probe run so that every user stays
// reachable from its home slot without crossing an empty one.
func (t *table) remove(i int) {
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j].count != 0; j = (j + 1) & mask {
		home := int(hashUser(t.slots[j].user)) & mask
		// The user at j may fill the hole at i unless its home lies cyclically in (i, j].
		if (j-home)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = userSlot{}
	t.used--
}
