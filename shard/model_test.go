package shard

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"redrain/rain"
)

var seedFlag = flag.Uint64("shard.seed", 0, "seed for TestModel (0: drawn from the clock)")

// model is the obviously correct store: every packet's holder and every user's standing, behind
// one mutex. Each user is driven by one goroutine only, so the model predicts every Claim's
// answer except "a packet" versus ErrExhausted, which depends on the other goroutines.
type model struct {
	mu      sync.Mutex
	amounts map[packet]int64
	held    map[packet]bool
	users   map[uint64]*modelUser // count > 0 only, as the store's table
	limit   int
	every   int64 // MinClaimInterval
}

type modelUser struct {
	count int
	last  int64
}

// predict returns the error the store must answer, or nil for "a packet or ErrExhausted".
func (m *model) predict(user uint64, now int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[user]
	switch {
	case u == nil:
		return nil
	case m.every > 0 && now-u.last < m.every:
		return ErrRateLimited
	case u.count >= m.limit:
		return ErrUserLimit
	}
	return nil
}

// claimed records the store's answer to Claim(user, now) and checks it against the model.
func (m *model) claimed(user uint64, now int64, c Claim, err, want error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[user]
	switch {
	case want != nil && err != want:
		return fmt.Errorf("user %d at %d: got %v, model says %v", user, now, err, want)
	case want == ErrRateLimited:
		return nil
	case want == ErrUserLimit:
		u.last = now
		return nil
	case errors.Is(err, ErrExhausted):
		if u != nil {
			u.last = now
		}
		return nil
	case err != nil:
		return fmt.Errorf("user %d at %d: got %v, model says a packet or exhausted", user, now, err)
	}
	p := key(c)
	amount, ok := m.amounts[p]
	switch {
	case !ok:
		return fmt.Errorf("claim %+v: no such packet", c)
	case m.held[p]:
		return fmt.Errorf("claim %+v: packet handed out twice", c)
	case amount != c.Amount:
		return fmt.Errorf("claim %+v: amount should be %d", c, amount)
	}
	m.held[p] = true
	if u == nil {
		u = &modelUser{}
		m.users[user] = u
	}
	u.count++
	u.last = now
	if u.count > m.limit {
		return fmt.Errorf("user %d holds %d packets, limit %d", user, u.count, m.limit)
	}
	return nil
}

// release records that c goes back; call it before Store.Release.
func (m *model) release(user uint64, c Claim) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.held[key(c)] = false
	u := m.users[user]
	if u.count--; u.count == 0 {
		delete(m.users, user)
	}
}

// available counts and sums the packets not held.
func (m *model) available() (count, amount int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, a := range m.amounts {
		if !m.held[p] {
			count, amount = count+1, amount+a
		}
	}
	return count, amount
}

// TestModel drives a store from 8 goroutines (claims by many users, random releases) and checks
// every answer against the model; then drains the rest and checks every packet went out once.
func TestModel(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -shard.seed %d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	m := &model{amounts: map[packet]int64{}, held: map[packet]bool{}, users: map[uint64]*modelUser{},
		limit: 1 + rng.IntN(4), every: int64(rng.IntN(3)) * 4}
	sp := spec("m", m.limit, m.every)
	s := New()
	var total int64
	for id := range uint32(2 + rng.IntN(4)) {
		count := 200 + rng.Int64N(800)
		sl := rain.Slice{Code: "m", ID: id, Epoch: 3, Count: count, Amount: count * (1 + rng.Int64N(50)), Seed: rng.Uint64()}
		a := genAmounts(sl.Count, sl.Amount, sl.Seed)
		var claimed []uint32
		if rng.IntN(2) == 0 { // recovered with some packets journaled
			for range rng.Int64N(count) {
				claimed = append(claimed, uint32(rng.Int64N(count)))
			}
		}
		if err := s.AddSlice(sp, sl, a, claimed); err != nil {
			t.Fatal(err)
		}
		for i := range count {
			m.amounts[packet{3, id, uint32(i)}] = a.At(int(i))
		}
		for _, i := range claimed {
			m.held[packet{3, id, i}] = true
		}
		total += sl.Amount
	}
	mustStart(t, s, "m", 3, 0, 1<<62)

	const workers, ops, usersPer = 8, 3000, 150
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for g := range workers {
		wrng := rand.New(rand.NewPCG(seed, uint64(g)+1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- work(s, m, wrng, uint64(g+1)*1_000_000, usersPer, ops)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	wantCount, wantAmount := m.available()
	p, _ := s.Progress("m", 1)
	if p.RemainingCount != wantCount || p.RemainingAmount != wantAmount || p.Users != len(m.users) {
		t.Fatalf("progress %+v; model: %d packets, %d cents left, %d users", p, wantCount, wantAmount, len(m.users))
	}
	for u := uint64(1); ; u++ { // drain the rest, one fresh user per packet
		want := m.predict(u, 1<<40)
		c, err := s.Claim([]byte("m"), u, 1<<40)
		if err := m.claimed(u, 1<<40, c, err, want); err != nil {
			t.Fatal(err)
		}
		if err != nil {
			break
		}
	}
	var handed int64
	for pk, a := range m.amounts {
		if !m.held[pk] {
			t.Fatalf("packet %+v never handed out, yet the store is exhausted", pk)
		}
		handed += a
	}
	if handed != total {
		t.Fatalf("handed out %d cents, slices hold %d", handed, total)
	}
	if p, _ := s.Progress("m", 1); p.RemainingCount != 0 || p.RemainingAmount != 0 || !p.Exhausted {
		t.Fatalf("progress after the drain: %+v", p)
	}
}

// work is one goroutine of TestModel: ops claims by its own users (ids base+1..base+users) with
// its own clock, releasing a random claim of its own now and then.
func work(s *Store, m *model, rng *rand.Rand, base uint64, users, ops int) error {
	type held struct {
		user uint64
		c    Claim
	}
	var mine []held
	now := int64(0)
	for range ops {
		now += rng.Int64N(4)
		if len(mine) > 0 && rng.IntN(10) == 0 {
			k := rng.IntN(len(mine))
			h := mine[k]
			mine[k] = mine[len(mine)-1]
			mine = mine[:len(mine)-1]
			m.release(h.user, h.c) // model first: once the store has it back, anyone may claim it
			s.Release([]byte("m"), h.user, h.c)
			continue
		}
		user := base + 1 + uint64(rng.IntN(users))
		want := m.predict(user, now)
		c, err := s.Claim([]byte("m"), user, now)
		if err := m.claimed(user, now, c, err, want); err != nil {
			return err
		}
		if err == nil {
			mine = append(mine, held{user, c})
		}
	}
	return nil
}
