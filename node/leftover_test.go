package node

import (
	"context"
	"testing"
	"time"

	"redrain/internal/testcluster"
	"redrain/ledger"
)

// A node that stopped gracefully recorded its leftover; when it comes back with its journal it
// clears that record before it pays anything more of the rain, so a later crash can never leave
// the report counting paid packets as leftover (lost went negative). While Redis is unreachable
// the rain is held: 503 journal_unavailable, nothing handed out.
func TestReturningNodeClearsLeftover(t *testing.T) {
	h := newRedisHarness(t, false, nil)
	h.rainOf("back", 20, 2000, 1, true)
	paid := map[string]int64{}
	claimOK := func(user uint64) {
		t.Helper()
		st, body := h.claim("back", user)
		if st != 200 {
			t.Fatalf("claim: %d %s", st, body)
		}
		a := decodeAnswer(t, body)
		paid[a.ClaimID] = a.Amount
	}
	for u := uint64(1); u <= 3; u++ {
		claimOK(u)
	}
	ctx := context.Background()
	h.n.Close() // SIGTERM: flush, record the leftover
	nodes, err := ledger.ReadNodes(ctx, h.redis.Client(), "back")
	if l, ok := nodes["n1"].Leftover(); err != nil || !ok || l != 2000-sum(paid) {
		t.Fatalf("leftover on leaving: %+v %v, want %d", nodes["n1"], err, 2000-sum(paid))
	}

	// It comes back while Redis is down: the rain is held, nothing is paid.
	h.redis.Kill()
	o := h.n.opts
	o.Listener, o.HTTPAddr, h.ln = nil, "127.0.0.1:0", nil
	h.start(o)
	for u := uint64(10); u < 13; u++ {
		st, body := h.claim("back", u)
		wantError(t, st, body, 503, "journal_unavailable")
	}
	if p, _ := h.n.store.Progress("back", time.Now().UnixNano()); p.RemainingCount != 17 {
		t.Fatalf("a held rain handed out packets: %d remain, want 17", p.RemainingCount)
	}
	h.redis.Start()
	testcluster.Eventually(t, 20*time.Second, "the rain served again", func() bool {
		st, _ := h.claim("back", 20)
		return st == 200
	})
	nodes, err = ledger.ReadNodes(ctx, h.redis.Client(), "back")
	if err != nil || nodes["n1"].HasLeftover || nodes["n1"].HasLeftoverAt {
		t.Fatalf("leftover record still there after the node served again: %+v %v", nodes["n1"], err)
	}
	if m, _, _ := h.n.journal.(*ledger.Journal).Rain("back"); m.LeftoverRecorded {
		t.Fatal("journal still says a leftover record may exist")
	}
	for u := uint64(21); u <= 24; u++ {
		claimOK(u)
	}
	h.checkInvariants("back", nil)

	// Stopped again and restarted with Redis up: recorded, then cleared at once.
	h.restart()
	testcluster.Eventually(t, 20*time.Second, "the rain served after a restart", func() bool {
		st, _ := h.claim("back", 30)
		return st == 200
	})
	if nodes, _ = ledger.ReadNodes(ctx, h.redis.Client(), "back"); nodes["n1"].HasLeftover {
		t.Fatalf("leftover record not cleared: %+v", nodes["n1"])
	}
}

// A rain that was over when the node stopped keeps its leftover record across a restart: it is
// exact (nothing more can be paid), and the rain is not held.
func TestFinishedRainKeepsLeftover(t *testing.T) {
	h := newRedisHarness(t, false, nil)
	h.rainOf("over", 10, 1000, 1, true)
	st, body := h.claim("over", 1)
	if st != 200 {
		t.Fatalf("claim: %d %s", st, body)
	}
	paid := decodeAnswer(t, body).Amount
	if err := h.n.stop("over", time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	h.restart()
	st, body = h.claim("over", 2)
	wantError(t, st, body, 410, "finished")
	nodes, err := ledger.ReadNodes(context.Background(), h.redis.Client(), "over")
	if l, ok := nodes["n1"].Leftover(); err != nil || !ok || l != 1000-paid {
		t.Fatalf("leftover of a finished rain after a restart: %+v %v", nodes["n1"], err)
	}
}

func sum(m map[string]int64) (s int64) {
	for _, v := range m {
		s += v
	}
	return s
}
