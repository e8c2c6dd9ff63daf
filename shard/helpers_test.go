package shard

import (
	"errors"
	"math/rand/v2"
	"testing"

	"redrain/rain"
)

// genAmounts is a small double-average generator for tests (the real one lives in rain):
// count amounts >= 1 summing to total, drawn from seed.
func genAmounts(count, total int64, seed uint64) rain.Amounts {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	a := rain.NewAmounts(int(count), total)
	left := total
	for i := range count {
		n := count - i
		v := left
		if n > 1 {
			v = 1 + rng.Int64N(2*(left/n)-1)
		}
		a.Set(int(i), v)
		left -= v
	}
	return a
}

// equalAmounts gives every packet the same amount (fast, for big slices).
func equalAmounts(count, each int64) rain.Amounts {
	a := rain.NewAmounts(int(count), count*each)
	for i := range int(count) {
		a.Set(i, each)
	}
	return a
}

func spec(code string, maxPerUser int, interval int64) RainSpec {
	return RainSpec{Code: code, MaxPerUser: maxPerUser, MinClaimInterval: interval}
}

func mkSlice(code string, epoch uint64, id uint32, count int64) (rain.Slice, rain.Amounts) {
	sl := rain.Slice{Code: code, ID: id, Epoch: epoch, Count: count, Amount: count * 10, Seed: uint64(id)*7919 + epoch}
	return sl, genAmounts(sl.Count, sl.Amount, sl.Seed)
}

func mustAdd(t testing.TB, s *Store, sp RainSpec, epoch uint64, id uint32, count int64, claimed []uint32) (rain.Slice, rain.Amounts) {
	t.Helper()
	sl, a := mkSlice(sp.Code, epoch, id, count)
	if err := s.AddSlice(sp, sl, a, claimed); err != nil {
		t.Fatalf("AddSlice(%s epoch %d slice %d): %v", sp.Code, epoch, id, err)
	}
	return sl, a
}

func mustStart(t testing.TB, s *Store, code string, epoch uint64, startsAt, endsAt int64) {
	t.Helper()
	if err := s.Start(code, epoch, startsAt, endsAt); err != nil {
		t.Fatalf("Start(%s, %d): %v", code, epoch, err)
	}
}

func mustClaim(t testing.TB, s *Store, code string, user uint64, now int64) Claim {
	t.Helper()
	c, err := s.Claim([]byte(code), user, now)
	if err != nil {
		t.Fatalf("Claim(%s, user %d, at %d): %v", code, user, now, err)
	}
	return c
}

// drain claims until ErrExhausted with a fresh user per claim, failing on any other error.
func drain(t testing.TB, s *Store, code string, firstUser uint64, now int64) []Claim {
	t.Helper()
	var out []Claim
	for u := firstUser; ; u++ {
		c, err := s.Claim([]byte(code), u, now)
		if errors.Is(err, ErrExhausted) {
			return out
		}
		if err != nil {
			t.Fatalf("drain: Claim(user %d): %v", u, err)
		}
		out = append(out, c)
	}
}

type packet struct {
	epoch uint64
	slice uint32
	index uint32
}

func key(c Claim) packet { return packet{c.Epoch, c.Slice, c.Index} }

// checkOnce fails if a packet appears twice in claims or its amount is not a's.
func checkOnce(t testing.TB, claims []Claim, amounts map[uint32]rain.Amounts) {
	t.Helper()
	seen := map[packet]bool{}
	for _, c := range claims {
		if seen[key(c)] {
			t.Fatalf("packet %+v handed out twice", key(c))
		}
		seen[key(c)] = true
		a := amounts[c.Slice]
		if got := a.At(int(c.Index)); got != c.Amount {
			t.Fatalf("packet %+v: amount %d, generated %d", key(c), c.Amount, got)
		}
	}
}

func sumClaims(claims []Claim) (total int64) {
	for _, c := range claims {
		total += c.Amount
	}
	return total
}
