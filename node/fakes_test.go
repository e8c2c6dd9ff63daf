package node

import (
	"errors"
	"testing"
	"time"

	"redrain/internal/testcluster"
	"redrain/ledger"
)

// A node built from fakes alone (a MemJournal, a MemRedis, a LoneCluster): claims are paid,
// journaled and flushed; a failed commit answers 503 and settles its packet after the repair
// (kept when the record reached the journal, released when it did not); a restart on the same
// journal and Redis recovers every claim. Nothing on disk, no redis-server, no memberlist.
func TestClaimHandlerFromFakes(t *testing.T) {
	mem := ledger.NewMemJournal("n1", 0xfeed)
	h := newHarness(t, false, func(o *Options) { o.Journal, o.DataDir = mem, "" })
	h.rainOf("fake", 10, 1000, 1, true)
	answered := map[string]int64{}
	claim := func(user uint64) (int, string) {
		st, body := h.claim("fake", user)
		if st == 200 {
			a := decodeAnswer(t, body)
			answered[a.ClaimID] = a.Amount
		}
		return st, body
	}
	for u := uint64(1); u <= 3; u++ {
		if st, body := claim(u); st != 200 {
			t.Fatalf("claim: %d %s", st, body)
		}
	}
	remaining := func() int64 {
		p, _ := h.n.store.Progress("fake", time.Now().UnixNano())
		return p.RemainingCount
	}
	for i, reached := range []bool{true, false} {
		before := remaining()
		mem.FailNext(errors.New("injected"), reached)
		st, body := claim(100 + uint64(i))
		wantError(t, st, body, 503, "journal_unavailable")
		testcluster.Eventually(t, 10*time.Second, "the journal repaired", func() bool { return !mem.Failed() })
		want := before
		if reached { // journaled though unanswered: stays claimed, counted and flushed
			want--
		}
		if got := remaining(); got != want {
			t.Fatalf("after a failed commit (reached %v): %d packets remain, want %d", reached, got, want)
		}
	}
	h.checkInvariants("fake", answered)

	h.n.Close()
	mem.Open()
	h.restart()
	for u := uint64(4); u <= 5; u++ {
		if st, body := claim(u); st != 200 {
			t.Fatalf("claim after restart: %d %s", st, body)
		}
	}
	if st, body := claim(1); st != 429 {
		t.Fatalf("a user at its cap before the restart: %d %s", st, body)
	}
	h.checkInvariants("fake", answered)
}
