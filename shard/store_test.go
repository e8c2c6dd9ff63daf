package shard

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"redrain/rain"
)

type step struct {
	user   uint64
	now    int64
	want   error
	before func(s *Store, claims []Claim) // runs before this step's Claim
}

func TestClaimErrors(t *testing.T) {
	const code = "r"
	started := func(sp RainSpec, counts ...int64) func(t *testing.T, s *Store) {
		return func(t *testing.T, s *Store) {
			for i, n := range counts {
				mustAdd(t, s, sp, 1, uint32(i), n, nil)
			}
			mustStart(t, s, code, 1, 100, 1000)
		}
	}
	release := func(i int, user uint64) func(s *Store, claims []Claim) {
		return func(s *Store, claims []Claim) { s.Release([]byte(code), user, claims[i]) }
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, s *Store)
		steps []step
	}{
		{"unknown rain", func(*testing.T, *Store) {}, []step{{1, 100, ErrUnknownRain, nil}}},
		{"no start yet", func(t *testing.T, s *Store) { mustAdd(t, s, spec(code, 1, 0), 1, 0, 10, nil) },
			[]step{{1, 100, ErrNotStarted, nil}}},
		{"before starts_at", started(spec(code, 1, 0), 10),
			[]step{{1, 99, ErrNotStarted, nil}, {1, 100, nil, nil}}},
		{"at and after ends_at", started(spec(code, 1, 0), 10),
			[]step{{1, 999, nil, nil}, {2, 1000, ErrFinished, nil}, {3, 5000, ErrFinished, nil}}},
		{"stopped", started(spec(code, 1, 0), 10), []step{
			{1, 499, nil, func(s *Store, _ []Claim) { s.Stop(code, 500) }},
			{2, 500, ErrFinished, nil},
			{3, 400, nil, func(s *Store, _ []Claim) { s.Stop(code, 600) }}, // the earliest Stop wins
			{4, 550, ErrFinished, nil},
		}},
		{"stopped before start", func(t *testing.T, s *Store) {
			mustAdd(t, s, spec(code, 1, 0), 1, 0, 10, nil)
			s.Stop(code, 50)
		}, []step{{1, 40, ErrNotStarted, nil}, {1, 60, ErrFinished, nil}}},
		{"finished before rate limited", func(t *testing.T, s *Store) {
			mustAdd(t, s, spec(code, 5, 10), 1, 0, 10, nil)
			mustStart(t, s, code, 1, 100, 105)
		}, []step{{1, 100, nil, nil}, {1, 105, ErrFinished, nil}}},
		{"rate limited", started(spec(code, 5, 10), 10), []step{
			{1, 100, nil, nil}, {1, 105, ErrRateLimited, nil}, {1, 109, ErrRateLimited, nil},
			{1, 110, nil, nil}, {2, 111, nil, nil}, {1, 119, ErrRateLimited, nil}, {1, 120, nil, nil},
		}},
		{"user limit", started(spec(code, 2, 0), 10), []step{
			{1, 100, nil, nil}, {1, 100, nil, nil}, {1, 100, ErrUserLimit, nil}, {1, 101, ErrUserLimit, nil},
			{2, 101, nil, nil},
		}},
		{"rate limit before user limit", started(spec(code, 1, 10), 10), []step{
			{1, 100, nil, nil}, {1, 101, ErrRateLimited, nil}, {1, 110, ErrUserLimit, nil},
			{1, 115, ErrRateLimited, nil}, {1, 120, ErrUserLimit, nil},
		}},
		{"exhausted rolls the reservation back", started(spec(code, 1, 0), 2), []step{
			{1, 100, nil, nil}, {2, 100, nil, nil},
			{3, 100, ErrExhausted, nil}, {3, 101, ErrExhausted, nil}, // not ErrUserLimit
			{3, 102, nil, release(0, 1)}, // user 1's packet comes back; user 3 had no count left
			{4, 103, ErrExhausted, nil},
			{1, 104, ErrExhausted, nil}, // Release lowered user 1's count: not ErrUserLimit
		}},
		{"exhausted means every slice", started(spec(code, 1, 0), 1, 1, 1), []step{
			{1, 100, nil, nil}, {2, 100, nil, nil}, {3, 100, nil, nil}, {4, 100, ErrExhausted, nil},
		}},
		{"started epoch holds no slice", func(t *testing.T, s *Store) {
			mustAdd(t, s, spec(code, 1, 0), 1, 0, 10, nil)
			mustStart(t, s, code, 2, 100, 1000)
		}, []step{{1, 100, ErrExhausted, nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			tt.setup(t, s)
			var claims []Claim
			for i, st := range tt.steps {
				if st.before != nil {
					st.before(s, claims)
				}
				c, err := s.Claim([]byte(code), st.user, st.now)
				if err != st.want || !errors.Is(err, st.want) {
					t.Fatalf("step %d: Claim(user %d, at %d) = %+v, %v; want %v", i, st.user, st.now, c, err, st.want)
				}
				if err == nil {
					claims = append(claims, c)
				}
			}
		})
	}
}

func TestEpochs(t *testing.T) {
	s := New()
	sp := spec("r", 1, 0)
	mustAdd(t, s, sp, 1, 0, 5, nil)
	mustAdd(t, s, sp, 1, 1, 5, nil)
	_, a20 := mustAdd(t, s, sp, 2, 0, 3, nil)
	_, a21 := mustAdd(t, s, sp, 2, 1, 4, nil)

	if p, _ := s.Progress("r", 0); p.Epoch != 2 || p.Count != 7 || p.Started {
		t.Fatalf("before start: progress %+v, want the newest epoch 2 with 7 packets", p)
	}
	mustStart(t, s, "r", 2, 100, 1000)
	if err := s.Start("r", 1, 100, 1000); !errors.Is(err, ErrEpochClash) {
		t.Fatalf("Start of a second epoch: %v, want ErrEpochClash", err)
	}
	sl, a := mkSlice("r", 1, 2, 5)
	if err := s.AddSlice(sp, sl, a, nil); !errors.Is(err, ErrEpochClash) {
		t.Fatalf("AddSlice of another epoch after Start: %v, want ErrEpochClash", err)
	}
	mustStart(t, s, "r", 2, 100, 2000) // repeated: updates the window
	if _, err := s.Claim([]byte("r"), 1, 1500); err != nil {
		t.Fatalf("claim inside the updated window: %v", err)
	}
	// A late slice of the served epoch is served at once.
	_, a22 := mustAdd(t, s, sp, 2, 2, 2, nil)
	claims := drain(t, s, "r", 100, 1500)
	if len(claims) != 8 {
		t.Fatalf("handed out %d packets, want 3+4+2-1 = 8 of epoch 2", len(claims))
	}
	for _, c := range claims {
		if c.Epoch != 2 {
			t.Fatalf("claim %+v of a dropped epoch", c)
		}
	}
	checkOnce(t, claims, map[uint32]rain.Amounts{0: a20, 1: a21, 2: a22})
	s.DropEpoch("r", 2) // the served epoch is kept
	if p, ok := s.Progress("r", 1500); !ok || p.Count != 9 || !p.Exhausted {
		t.Fatalf("after DropEpoch of the served epoch: %+v %v", p, ok)
	}
}

func TestDropEpoch(t *testing.T) {
	s := New()
	sp := spec("r", 1, 0)
	mustAdd(t, s, sp, 1, 0, 5, nil)
	mustAdd(t, s, sp, 2, 0, 7, nil)
	s.DropEpoch("r", 2)
	if p, _ := s.Progress("r", 0); p.Epoch != 1 || p.Count != 5 {
		t.Fatalf("after dropping epoch 2: %+v, want epoch 1 with 5 packets", p)
	}
	s.DropEpoch("r", 1)
	if got := s.Codes(); len(got) != 0 {
		t.Fatalf("rain with no slice left is still held: %v", got)
	}
	if err := s.Start("r", 1, 100, 1000); !errors.Is(err, ErrUnknownRain) {
		t.Fatalf("Start after dropping every epoch: %v, want ErrUnknownRain", err)
	}
	s.DropEpoch("nope", 1) // unknown rain: nothing happens
}

func TestAddSliceIdempotent(t *testing.T) {
	s := New()
	sp := spec("r", 1, 0)
	sl, a := mustAdd(t, s, sp, 1, 0, 20, nil)
	mustStart(t, s, "r", 1, 100, 1000)
	first := mustClaim(t, s, "r", 1, 100)
	for range 2 { // again, even with another claimed set: nothing changes
		if err := s.AddSlice(sp, sl, a, []uint32{5, 6}); err != nil {
			t.Fatalf("repeated AddSlice: %v", err)
		}
	}
	claims := append(drain(t, s, "r", 2, 100), first)
	if len(claims) != 20 {
		t.Fatalf("handed out %d, want 20", len(claims))
	}
	checkOnce(t, claims, map[uint32]rain.Amounts{0: a})
	if got := sumClaims(claims); got != sl.Amount {
		t.Fatalf("sum %d, want %d", got, sl.Amount)
	}
}

func TestAddSliceBad(t *testing.T) {
	good := func() (RainSpec, rain.Slice, rain.Amounts, []uint32) {
		sl, a := mkSlice("r", 1, 0, 10)
		return spec("r", 1, 0), sl, a, nil
	}
	tests := []struct {
		name   string
		mutate func(sp *RainSpec, sl *rain.Slice, a *rain.Amounts, claimed *[]uint32)
	}{
		{"code differs", func(sp *RainSpec, _ *rain.Slice, _ *rain.Amounts, _ *[]uint32) { sp.Code = "x" }},
		{"max_per_user 0", func(sp *RainSpec, _ *rain.Slice, _ *rain.Amounts, _ *[]uint32) { sp.MaxPerUser = 0 }},
		{"max_per_user too big", func(sp *RainSpec, _ *rain.Slice, _ *rain.Amounts, _ *[]uint32) { sp.MaxPerUser = 1001 }},
		{"negative interval", func(sp *RainSpec, _ *rain.Slice, _ *rain.Amounts, _ *[]uint32) { sp.MinClaimInterval = -1 }},
		{"invalid slice", func(_ *RainSpec, sl *rain.Slice, _ *rain.Amounts, _ *[]uint32) { sl.Amount = 5 }},
		{"amounts too few", func(_ *RainSpec, _ *rain.Slice, a *rain.Amounts, _ *[]uint32) { *a = genAmounts(9, 100, 1) }},
		{"sum differs", func(_ *RainSpec, _ *rain.Slice, a *rain.Amounts, _ *[]uint32) { a.Set(0, a.At(0)+1) }},
		{"zero amount", func(_ *RainSpec, _ *rain.Slice, a *rain.Amounts, _ *[]uint32) {
			a.Set(1, a.At(1)+a.At(0))
			a.Set(0, 0)
		}},
		{"claimed out of range", func(_ *RainSpec, _ *rain.Slice, _ *rain.Amounts, c *[]uint32) { *c = []uint32{3, 10} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			sp, sl, a, claimed := good()
			tt.mutate(&sp, &sl, &a, &claimed)
			if err := s.AddSlice(sp, sl, a, claimed); !errors.Is(err, ErrBadSlice) {
				t.Fatalf("AddSlice: %v, want ErrBadSlice", err)
			}
			if codes := s.Codes(); len(codes) != 0 {
				t.Fatalf("a refused slice created rains %v", codes)
			}
		})
	}
	t.Run("spec differs from the rain's", func(t *testing.T) {
		s := New()
		mustAdd(t, s, spec("r", 1, 0), 1, 0, 10, nil)
		sl, a := mkSlice("r", 1, 1, 10)
		if err := s.AddSlice(spec("r", 2, 0), sl, a, nil); !errors.Is(err, ErrBadSlice) {
			t.Fatalf("AddSlice with another spec: %v, want ErrBadSlice", err)
		}
	})
}

func TestStartBadWindow(t *testing.T) {
	s := New()
	mustAdd(t, s, spec("r", 1, 0), 1, 0, 10, nil)
	if err := s.Start("r", 1, 100, 100); !errors.Is(err, ErrBadWindow) {
		t.Fatalf("Start with ends_at == starts_at: %v, want ErrBadWindow", err)
	}
	if err := s.Start("x", 1, 100, 200); !errors.Is(err, ErrUnknownRain) {
		t.Fatalf("Start of an unknown rain: %v, want ErrUnknownRain", err)
	}
}

func TestRemoveAndCodes(t *testing.T) {
	s := New()
	for _, code := range []string{"b", "a", "c"} {
		mustAdd(t, s, spec(code, 1, 0), 1, 0, 10, nil)
		mustStart(t, s, code, 1, 100, 1000)
	}
	c := mustClaim(t, s, "a", 1, 100)
	if got := s.Codes(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("Codes() = %v", got)
	}
	s.Remove("a")
	s.Remove("zzz")
	if got := s.Codes(); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("Codes() after Remove = %v", got)
	}
	if _, err := s.Claim([]byte("a"), 2, 100); !errors.Is(err, ErrUnknownRain) {
		t.Fatalf("Claim of a removed rain: %v", err)
	}
	if _, ok := s.Progress("a", 100); ok {
		t.Fatal("Progress of a removed rain")
	}
	s.Release([]byte("a"), 1, c) // ignored
	if _, err := s.Claim([]byte("b"), 1, 100); err != nil {
		t.Fatalf("other rains still serve: %v", err)
	}
}

func TestRecovery(t *testing.T) {
	for _, tt := range []struct {
		name    string
		count   int64
		claimed func(rng *rand.Rand, n int64) []uint32
	}{
		{"random with duplicates", 1000, func(rng *rand.Rand, n int64) (c []uint32) {
			for range 500 {
				c = append(c, uint32(rng.Int64N(n)))
			}
			return append(c, 0, uint32(n-1), 0)
		}},
		{"a prefix", 300, func(_ *rand.Rand, n int64) (c []uint32) {
			for i := range uint32(130) {
				c = append(c, i)
			}
			return c
		}},
		{"every other", 257, func(_ *rand.Rand, n int64) (c []uint32) {
			for i := uint32(0); i < uint32(n); i += 2 {
				c = append(c, i)
			}
			return c
		}},
		{"all", 200, func(_ *rand.Rand, n int64) (c []uint32) {
			for i := range uint32(n) {
				c = append(c, i)
			}
			return c
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			claimed := tt.claimed(rng, tt.count)
			s := New()
			sl, a := mustAdd(t, s, spec("r", 1, 0), 1, 0, tt.count, claimed)
			mustStart(t, s, "r", 1, 100, 1000)
			was := map[uint32]bool{}
			var claimedAmount int64
			for _, i := range claimed {
				if !was[i] {
					was[i] = true
					claimedAmount += a.At(int(i))
				}
			}
			p, _ := s.Progress("r", 100)
			if p.RemainingCount != tt.count-int64(len(was)) || p.RemainingAmount != sl.Amount-claimedAmount {
				t.Fatalf("progress %+v, want remaining %d packets, %d cents", p, tt.count-int64(len(was)), sl.Amount-claimedAmount)
			}
			claims := drain(t, s, "r", 1, 100)
			checkOnce(t, claims, map[uint32]rain.Amounts{0: a})
			for _, c := range claims {
				if was[c.Index] {
					t.Fatalf("journaled index %d handed out again", c.Index)
				}
			}
			if len(claims)+len(was) != int(tt.count) {
				t.Fatalf("handed out %d + journaled %d != %d", len(claims), len(was), tt.count)
			}
			if got := sumClaims(claims) + claimedAmount; got != sl.Amount {
				t.Fatalf("handed out + journaled = %d cents, slice has %d", got, sl.Amount)
			}
		})
	}
}

func TestRestoreUsers(t *testing.T) {
	s := New()
	mustAdd(t, s, spec("r", 3, 0), 1, 0, 100, nil)
	s.RestoreUsers("r", map[uint64]int{1: 2, 2: 3, 3: 0})
	s.RestoreUsers("unknown", map[uint64]int{1: 1}) // ignored
	mustStart(t, s, "r", 1, 100, 1000)
	mustClaim(t, s, "r", 1, 100)
	for _, u := range []uint64{1, 2} {
		if _, err := s.Claim([]byte("r"), u, 100); !errors.Is(err, ErrUserLimit) {
			t.Fatalf("user %d: %v, want ErrUserLimit", u, err)
		}
	}
	for range 3 {
		mustClaim(t, s, "r", 3, 100)
	}
	if p, _ := s.Progress("r", 100); p.Users != 3 {
		t.Fatalf("%d user entries, want 3", p.Users)
	}
}

func TestRelease(t *testing.T) {
	s := New()
	sl, a := mustAdd(t, s, spec("r", 1, 0), 1, 0, 50, nil)
	mustStart(t, s, "r", 1, 100, 1000)
	claims := drain(t, s, "r", 1, 100)
	rel := claims[17]
	s.Release([]byte("r"), 18, rel)                                 // users are 1.., so claims[17] is user 18's
	s.Release([]byte("r"), 18, Claim{Epoch: 9, Slice: 0, Index: 3}) // not the served epoch: ignored
	p, _ := s.Progress("r", 100)
	if p.RemainingCount != 1 || p.RemainingAmount != rel.Amount || p.Exhausted {
		t.Fatalf("after Release: %+v, want 1 packet of %d left", p, rel.Amount)
	}
	if p.Users != 49 {
		t.Fatalf("%d user entries, want 49 (the releasing user's dropped to 0)", p.Users)
	}
	again := mustClaim(t, s, "r", 18, 100) // count was decremented: not ErrUserLimit
	if again != rel {
		t.Fatalf("re-handed %+v, want the released %+v", again, rel)
	}
	if more := drain(t, s, "r", 1000, 100); len(more) != 0 {
		t.Fatalf("released packet handed out twice: %+v", more)
	}
	claims[17] = again
	checkOnce(t, claims, map[uint32]rain.Amounts{0: a})
	if got := sumClaims(claims); got != sl.Amount {
		t.Fatalf("sum %d, want %d", got, sl.Amount)
	}
	if p, _ := s.Progress("r", 100); p.RemainingCount != 0 || p.RemainingAmount != 0 || !p.Exhausted {
		t.Fatalf("at the end: %+v", p)
	}
}

func TestProgress(t *testing.T) {
	s := New()
	sp := spec("r", 5, 0)
	sl0, _ := mustAdd(t, s, sp, 1, 0, 30, nil)
	sl1, a1 := mustAdd(t, s, sp, 1, 1, 20, []uint32{0, 1})
	want := Progress{Code: "r", Epoch: 1, Count: 50, Amount: sl0.Amount + sl1.Amount,
		RemainingCount: 48, RemainingAmount: sl0.Amount + sl1.Amount - a1.At(0) - a1.At(1)}
	check := func(now int64, w Progress) {
		t.Helper()
		if p, ok := s.Progress("r", now); !ok || p != w {
			t.Fatalf("Progress at %d = %+v, %v\nwant %+v", now, p, ok, w)
		}
	}
	check(0, want)
	mustStart(t, s, "r", 1, 100, 1000)
	want.StartsAt, want.EndsAt = 100, 1000
	check(99, want)
	var handed int64
	for u := range uint64(10) {
		handed += mustClaim(t, s, "r", u+1, 100).Amount
	}
	want.Started, want.Users = true, 10
	want.RemainingCount, want.RemainingAmount = 38, want.RemainingAmount-handed
	check(100, want)
	check(100, want) // the running sums are not counted twice
	want.Finished = true
	check(1000, want)
	s.Stop("r", 500)
	check(500, want)
	drain(t, s, "r", 100, 499)
	want.RemainingCount, want.RemainingAmount, want.Exhausted, want.Users = 0, 0, true, 48
	check(600, want)
}

func TestUserEntriesBounded(t *testing.T) {
	s := New()
	mustAdd(t, s, spec("r", 2, 0), 1, 0, 10, nil)
	mustStart(t, s, "r", 1, 100, 1000)
	claims := drain(t, s, "r", 1, 100)
	for u := uint64(1000); u < 11000; u++ { // 10,000 users find nothing
		if _, err := s.Claim([]byte("r"), u, 100); !errors.Is(err, ErrExhausted) {
			t.Fatal(err)
		}
	}
	if p, _ := s.Progress("r", 100); p.Users != len(claims) {
		t.Fatalf("%d user entries after %d packets handed out", p.Users, len(claims))
	}
}

func TestCutTail(t *testing.T) {
	s := New()
	sl, a := mustAdd(t, s, spec("r", 1, 0), 1, 0, 100, []uint32{95, 3})
	mustStart(t, s, "r", 1, 100, 1000)
	c, err := s.CutTail("r", 1, 0, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var cutAmount int64
	for i := 96; i < 100; i++ {
		cutAmount += a.At(i)
	}
	// The cut stops above index 95, journaled before the restart: a moved range is claim-free.
	if want := (Cut{Epoch: 1, Slice: 0, From: 96, To: 100, Count: 4, Amount: cutAmount}); c != want {
		t.Fatalf("CutTail = %+v, want %+v", c, want)
	}
	p, _ := s.Progress("r", 100)
	if p.RemainingCount != 94 || p.RemainingAmount != sl.Amount-cutAmount-a.At(95)-a.At(3) {
		t.Fatalf("after cut: %+v", p)
	}
	claims := drain(t, s, "r", 1, 100)
	if len(claims) != 94 {
		t.Fatalf("handed out %d, want 94", len(claims))
	}
	for _, cl := range claims {
		if cl.Index >= 95 || cl.Index == 3 {
			t.Fatalf("cut or journaled index handed out: %+v", cl)
		}
	}
	if c, err := s.CutTail("r", 1, 0, 0, 10); err != nil || c.From != c.To || c.Count != 0 {
		t.Fatalf("CutTail of an empty queue = %+v, %v", c, err)
	}
	if _, err := s.CutTail("r", 1, 7, 0, 10); !errors.Is(err, ErrNoSlice) {
		t.Fatalf("CutTail of a missing slice: %v", err)
	}
	if _, err := s.CutTail("x", 1, 0, 0, 10); !errors.Is(err, ErrUnknownRain) {
		t.Fatalf("CutTail of a missing rain: %v", err)
	}
}

// TestWindows moves the tail of a slice from one store to another, as a stock move does: the
// donor cuts, the receiver serves exactly the cut window, and together they hand out every
// packet once.
func TestWindows(t *testing.T) {
	donor, recv := New(), New()
	sl, a := mustAdd(t, donor, spec("r", 1000, 0), 1, 0, 100, nil)
	mustStart(t, donor, "r", 1, 100, 1000)
	c, ok := donor.CutMost("r", 30)
	if !ok || c.From != 70 || c.To != 100 || c.Count != 30 {
		t.Fatalf("CutMost = %+v %v", c, ok)
	}
	if err := recv.AddWindow(spec("r", 1000, 0), sl, a, c.From, c.To, nil); err != nil {
		t.Fatal(err)
	}
	mustStart(t, recv, "r", 1, 100, 1000)
	p, _ := recv.Progress("r", 100)
	if p.Count != 30 || p.RemainingCount != 30 || p.Amount != c.Amount || p.RemainingAmount != c.Amount {
		t.Fatalf("receiver progress %+v, cut %+v", p, c)
	}
	// The receiver moves part of its window on: windows of one slice never overlap.
	c2, ok := recv.CutMost("r", 10)
	if !ok || c2.From != 90 || c2.To != 100 {
		t.Fatalf("second cut %+v", c2)
	}
	if err := recv.AddWindow(spec("r", 1000, 0), sl, a, 85, 95, nil); !errors.Is(err, ErrBadSlice) {
		t.Fatalf("overlapping window: %v", err)
	}
	seen := make([]int, 100)
	var sum int64
	for _, st := range []*Store{donor, recv} {
		for _, cl := range drain(t, st, "r", 1, 100) {
			seen[cl.Index]++
			sum += cl.Amount
			if cl.Amount != a.At(int(cl.Index)) {
				t.Fatalf("claim %+v: amount %d", cl, a.At(int(cl.Index)))
			}
		}
	}
	for i, k := range seen {
		want := 1
		if i >= 90 { // moved on, to a third store
			want = 0
		}
		if k != want {
			t.Fatalf("index %d handed out %d times, want %d", i, k, want)
		}
	}
	if sum != sl.Amount-c2.Amount {
		t.Fatalf("handed out %d, want %d", sum, sl.Amount-c2.Amount)
	}
}

// TestUncut puts a cut back when nothing was cut after it, and refuses otherwise.
func TestUncut(t *testing.T) {
	s := New()
	mustAdd(t, s, spec("r", 1000, 0), 1, 0, 100, nil)
	mustStart(t, s, "r", 1, 100, 1000)
	c1, _ := s.CutMost("r", 10)
	c2, _ := s.CutMost("r", 10)
	if s.Uncut("r", c1) {
		t.Fatal("Uncut of a cut that another followed succeeded")
	}
	if !s.Uncut("r", c2) {
		t.Fatal("Uncut of the last cut failed")
	}
	if p, _ := s.Progress("r", 100); p.RemainingCount != 90 {
		t.Fatalf("remaining %d after one of two cuts put back, want 90", p.RemainingCount)
	}
	if n := len(drain(t, s, "r", 1, 100)); n != 90 {
		t.Fatalf("handed out %d, want 90", n)
	}
}

// TestClaimAgain retries an exhausted attempt without the minimum interval applying twice.
func TestClaimAgain(t *testing.T) {
	s := New()
	mustAdd(t, s, spec("r", 5, second), 1, 0, 2, nil)
	mustStart(t, s, "r", 1, 100, 3600*second)
	if _, err := s.Claim([]byte("r"), 7, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim([]byte("r"), 8, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim([]byte("r"), 7, 200+second); !errors.Is(err, ErrExhausted) {
		t.Fatalf("want exhausted, got %v", err)
	}
	if err := s.AddWindow(spec("r", 5, second), rain.Slice{Code: "r", ID: 1, Epoch: 1, Count: 1, Amount: 1}, oneAmount(), 0, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim([]byte("r"), 7, 300+second); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("a fresh attempt inside the interval: %v, want rate limited", err)
	}
	if c, err := s.ClaimAgain([]byte("r"), 7, 300+second); err != nil || c.Slice != 1 {
		t.Fatalf("ClaimAgain = %+v, %v", c, err)
	}
}

func oneAmount() rain.Amounts {
	a := rain.NewAmounts(1, 1)
	a.Set(0, 1)
	return a
}

// TestCutTailRacesClaims cuts while 4 goroutines claim: each index is handed out or cut, once.
func TestCutTailRacesClaims(t *testing.T) {
	const n = 20000
	s := New()
	mustAdd(t, s, spec("r", 1000, 0), 1, 0, n, nil)
	mustStart(t, s, "r", 1, 100, 1000)
	got := make([][]Claim, 4)
	done := make(chan struct{})
	for g := range got {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				c, err := s.Claim([]byte("r"), uint64(g+1)*1_000_000+uint64(len(got[g])), 100)
				if err != nil {
					return
				}
				got[g] = append(got[g], c)
			}
		}()
	}
	seen := make([]int, n)
	for {
		c, err := s.CutTail("r", 1, 0, 0, 7)
		if err != nil {
			t.Fatal(err)
		}
		if c.From == c.To {
			break
		}
		for i := c.From; i < c.To; i++ {
			seen[i]++
		}
	}
	for range got {
		<-done
	}
	for _, cs := range got {
		for _, c := range cs {
			seen[c.Index]++
		}
	}
	for i, k := range seen {
		if k != 1 {
			t.Fatalf("index %d handed out or cut %d times", i, k)
		}
	}
}

func TestClaimDoesNotAllocate(t *testing.T) {
	s := New()
	mustAdd(t, s, spec("r", 1000, 0), 1, 0, 5000, nil)
	mustAdd(t, s, spec("r", 1000, 0), 1, 1, 5000, []uint32{1, 2, 3})
	mustStart(t, s, "r", 1, 100, 1000)
	code := []byte("r")
	user := uint64(0)
	for _, tt := range []struct {
		name string
		f    func()
	}{
		{"success", func() {
			if _, err := s.Claim(code, 1+user%8, 100); err != nil {
				t.Fatal(err)
			}
			user++
		}},
		{"unknown rain", func() { s.Claim([]byte("x"), 1, 100) }},
		{"not started", func() { s.Claim(code, 1, 99) }},
		{"user limit", func() {
			if _, err := s.Claim(code, 999, 100); !errors.Is(err, ErrUserLimit) {
				t.Fatal(err)
			}
		}},
	} {
		if tt.name == "user limit" {
			for range 1000 {
				mustClaim(t, s, "r", 999, 100)
			}
		}
		if got := testing.AllocsPerRun(500, tt.f); got != 0 {
			t.Errorf("Claim (%s) allocates %v times per call", tt.name, got)
		}
	}
	drain(t, s, "r", 10_000, 100)
	if got := testing.AllocsPerRun(500, func() {
		if _, err := s.Claim(code, 42, 100); !errors.Is(err, ErrExhausted) {
			t.Fatal(err)
		}
	}); got != 0 {
		t.Errorf("Claim (exhausted) allocates %v times per call", got)
	}
}

// TestPopConcurrent pops one slice from several goroutines as fast as they can: every index
// must come out exactly once (a lost CAS update would hand one out twice).
func TestPopConcurrent(t *testing.T) {
	const n = 300_000
	sl, a := mkSlice("r", 1, 0, n)
	x, err := newSlice(sl, a, 0, n, []uint32{7, 70_000})
	if err != nil {
		t.Fatal(err)
	}
	got := make([][]uint32, 4)
	var wg sync.WaitGroup
	for g := range got {
		wg.Go(func() {
			for {
				i, ok := x.pop()
				if !ok {
					return
				}
				got[g] = append(got[g], i)
			}
		})
	}
	wg.Wait()
	seen := make([]int, n)
	for _, is := range got {
		for _, i := range is {
			seen[i]++
		}
	}
	for i, k := range seen {
		want := 1
		if i == 7 || i == 70_000 {
			want = 0 // journaled
		}
		if k != want {
			t.Fatalf("index %d popped %d times, want %d", i, k, want)
		}
	}
}

const second = int64(1_000_000_000) // ns

// TestWindowRecovered restores a window with journaled claims: its bitmap counts from the
// window's first index, and indices outside the window or claimed are never handed out.
func TestWindowRecovered(t *testing.T) {
	s := New()
	sl, a := mkSlice("r", 1, 3, 200)
	if err := s.AddWindow(spec("r", 1000, 0), sl, a, 50, 130, []uint32{50, 64, 129}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddWindow(spec("r", 1000, 0), sl, a, 130, 140, []uint32{129}); !errors.Is(err, ErrBadSlice) {
		t.Fatalf("claimed index outside the window: %v", err)
	}
	mustStart(t, s, "r", 1, 100, 1000)
	c, _ := s.CutMost("r", 5) // stops above 129, claimed: nothing to cut
	if c.To != c.From {
		t.Fatalf("cut %+v over a claimed last index", c)
	}
	claims := drain(t, s, "r", 1, 100)
	if len(claims) != 77 {
		t.Fatalf("handed out %d, want 77", len(claims))
	}
	for _, cl := range claims {
		if cl.Index < 50 || cl.Index >= 129 || cl.Index == 64 || cl.Index == 50 || cl.Amount != a.At(int(cl.Index)) {
			t.Fatalf("handed out %+v", cl)
		}
	}
}

// TestStockComesBack gives a window's stock away and takes it back: the returning range is
// served again, next to what the window kept, and an empty window keeps the rain known.
func TestStockComesBack(t *testing.T) {
	s := New()
	sl, a := mustAdd(t, s, spec("r", 1000, 0), 1, 0, 100, []uint32{0})
	mustStart(t, s, "r", 1, 100, 1000)
	c, _ := s.CutMost("r", 1000) // all but the claimed index 0
	if c.From != 1 || c.To != 100 {
		t.Fatalf("cut %+v", c)
	}
	if err := s.AddWindow(spec("r", 1000, 0), sl, a, c.From, c.To, nil); err != nil {
		t.Fatalf("the cut range back: %v", err)
	}
	if n := len(drain(t, s, "r", 1, 100)); n != 99 {
		t.Fatalf("handed out %d, want 99", n)
	}
	e := New()
	if err := e.AddWindow(spec("r", 1000, 0), sl, a, 0, 0, nil); err != nil {
		t.Fatalf("empty window: %v", err)
	}
	mustStart(t, e, "r", 1, 100, 1000)
	if _, err := e.Claim([]byte("r"), 1, 100); !errors.Is(err, ErrExhausted) {
		t.Fatalf("claim on an empty window: %v", err)
	}
	if err := e.AddWindow(spec("r", 1000, 0), sl, a, 0, 100, nil); err != nil {
		t.Fatalf("a window replacing an empty one: %v", err)
	}
	if n := len(drain(t, e, "r", 1, 100)); n != 100 {
		t.Fatalf("handed out %d after the window came back, want 100", n)
	}
}

// TestReleaseToItsWindow: a slice's tail moved away and back in two windows; a packet popped
// from the second and released goes back to it, not to the emptied window that first held it
// (where it kept that window alive, and a move back of the window's first index was then taken
// for a duplicate and never served: found by the simulator, seed 52172 of issue 20).
func TestReleaseToItsWindow(t *testing.T) {
	s := New()
	sl, a := mustAdd(t, s, spec("r", 1000, 0), 1, 0, 2, nil)
	mustStart(t, s, "r", 1, 100, 1000)
	if c, ok := s.CutMost("r", 2); !ok || c.From != 0 || c.To != 2 {
		t.Fatalf("CutMost = %+v %v", c, ok)
	}
	if err := s.AddWindow(spec("r", 1000, 0), sl, a, 1, 2, nil); err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim([]byte("r"), 7, 200)
	if err != nil || c.Index != 1 {
		t.Fatalf("Claim = %+v %v", c, err)
	}
	s.Release([]byte("r"), 7, c)
	if err := s.AddWindow(spec("r", 1000, 0), sl, a, 0, 1, nil); err != nil {
		t.Fatal(err)
	}
	p, _ := s.Progress("r", 300)
	if p.RemainingCount != 2 || p.RemainingAmount != a.At(0)+a.At(1) {
		t.Fatalf("progress %+v: want both packets unserved (%d cents)", p, a.At(0)+a.At(1))
	}
	got := map[uint32]bool{}
	for u := uint64(1); u <= 3; u++ {
		if c, err := s.Claim([]byte("r"), u, 400); err == nil {
			got[c.Index] = true
		}
	}
	if len(got) != 2 || !got[0] || !got[1] {
		t.Fatalf("claimed indices %v, want 0 and 1", got)
	}
}

// TestStockIsProgressWithoutUsers: Stock reports what Progress does but the user count.
func TestStockIsProgressWithoutUsers(t *testing.T) {
	s := New()
	mustAdd(t, s, spec("r", 5, 0), 1, 0, 10, nil)
	mustStart(t, s, "r", 1, 100, 1000)
	mustClaim(t, s, "r", 7, 100)
	p, _ := s.Progress("r", 100)
	q, ok := s.Stock("r", 100)
	if !ok || p.Users != 1 || q.Users != 0 {
		t.Fatalf("progress %+v stock %+v", p, q)
	}
	q.Users = p.Users
	if p != q {
		t.Fatalf("progress %+v, stock %+v", p, q)
	}
	if _, ok := s.Stock("x", 100); ok {
		t.Fatal("stock of an unknown rain")
	}
}
