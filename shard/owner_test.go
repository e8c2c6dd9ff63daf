package shard

import (
	"errors"
	"testing"
	"time"
)

// ReserveUser counts claims paid elsewhere against the same max_per_user as the local Claim,
// without touching the per-node rate limit; UnreserveUser gives one back.
func TestReserveUser(t *testing.T) {
	s := New()
	sp := spec("own", 2, int64(time.Second))
	mustAdd(t, s, sp, 1, 0, 10, nil)
	mustStart(t, s, "own", 1, 0, 1<<62)
	if err := s.ReserveUser("nope", 7); !errors.Is(err, ErrUnknownRain) {
		t.Fatalf("unknown rain: %v", err)
	}
	for i := range 2 {
		if err := s.ReserveUser("own", 7); err != nil {
			t.Fatalf("reservation %d: %v", i, err)
		}
	}
	if err := s.ReserveUser("own", 7); !errors.Is(err, ErrUserLimit) {
		t.Fatalf("third reservation at max_per_user 2: %v", err)
	}
	if _, err := s.Claim([]byte("own"), 7, 10); !errors.Is(err, ErrUserLimit) {
		t.Fatalf("local claim of a user reserved to the cap: %v", err)
	}
	s.UnreserveUser("own", 7)
	s.UnreserveUser("nope", 7) // ignored
	if _, err := s.Claim([]byte("own"), 7, 10+int64(time.Second)); err != nil {
		t.Fatalf("claim after an unreserve: %v", err)
	}
	// A reservation records no attempt time: the user's first local tap is not rate limited.
	if err := s.ReserveUser("own", 8); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim([]byte("own"), 8, 20); err != nil {
		t.Fatalf("local claim right after a reservation: %v", err)
	}
	if err := s.ReserveUser("own", 8); !errors.Is(err, ErrUserLimit) {
		t.Fatalf("reservation after one reserved and one claimed: %v", err)
	}
	if p, _ := s.Progress("own", 30); p.Users != 2 {
		t.Fatalf("users held: %d, want 2", p.Users)
	}
}
