package node

import (
	"context"
	"testing"
	"time"

	"redrain/internal/wire"
	"redrain/ledger"
)

// A discard that overtakes its slice is remembered: the slice of that epoch is refused, a newer
// one accepted.
func TestDiscardBeforeSlice(t *testing.T) {
	h := newHarness(t, false, nil)
	if err := h.internal("POST", wire.RainPath(wire.PathDiscard, "late"), wire.Discard{Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	sl := h.rainSlice("late", 5, 50)
	err := h.internal("POST", wire.PathSlices, wire.SliceAssignment{Rules: wire.RainRules{Code: "late", MaxPerUser: 1}, Slice: sl})
	if se, ok := err.(*wire.StatusError); !ok || se.Status != 409 {
		t.Fatalf("slice of a discarded epoch: %v", err)
	}
	sl.Epoch = 2
	if err := h.internal("POST", wire.PathSlices, wire.SliceAssignment{Rules: wire.RainRules{Code: "late", MaxPerUser: 1}, Slice: sl}); err != nil {
		t.Fatalf("slice of the next epoch: %v", err)
	}
	h.startRainEpoch("late", 2)
	if st, body := h.claim("late", 1); st != 200 {
		t.Fatalf("claim: %d %s", st, body)
	}
	// The floor survives a restart.
	h.n.Close()
	o := h.n.opts
	o.Listener = nil
	o.HTTPAddr = "127.0.0.1:0"
	h.ln = nil
	h.start(o)
	sl.Epoch = 1
	err = h.internal("POST", wire.PathSlices, wire.SliceAssignment{Rules: wire.RainRules{Code: "late", MaxPerUser: 1}, Slice: sl})
	if se, ok := err.(*wire.StatusError); !ok || se.Status != 409 {
		t.Fatalf("discarded epoch after restart: %v", err)
	}
}

// A finished rain past its retention is compacted only once flushed; its leftover goes to Redis,
// its records go, and what Redis holds is unchanged.
func TestRetentionCompacts(t *testing.T) {
	h := newHarness(t, false, func(o *Options) { o.Retention = time.Hour })
	h.rainOf("old", 10, 1000, 1, true)
	var paid int64
	for u := uint64(1); u <= 4; u++ {
		st, body := h.claim("old", u)
		if st != 200 {
			t.Fatalf("claim: %d %s", st, body)
		}
		paid += decodeAnswer(t, body).Amount
	}
	h.checkInvariants("old", nil)
	stopAt := time.Now()
	if err := h.internal("POST", wire.RainPath(wire.PathStop, "old"), wire.Stop{At: stopAt.UnixNano()}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h.n.compactDue(ctx, stopAt.Add(59*time.Minute))
	if _, ok := h.n.journal.Totals("old"); !ok {
		t.Fatal("compacted before its retention passed")
	}
	h.n.compactDue(ctx, stopAt.Add(61*time.Minute))
	if _, ok := h.n.journal.Totals("old"); ok {
		t.Fatal("not compacted after its retention")
	}
	if st, body := h.claim("old", 9); st != 404 {
		t.Fatalf("claim of a compacted rain: %d %s", st, body)
	}
	tot, err := ledger.ReadTotals(ctx, h.n.rdb, "old")
	if err != nil || tot.ClaimedCount != 4 || tot.ClaimedAmount != paid {
		t.Fatalf("redis after compaction: %+v %v (paid %d)", tot, err, paid)
	}
	nodes, err := ledger.ReadNodes(ctx, h.n.rdb, "old")
	if err != nil || !nodes["n1"].HasLeftover || nodes["n1"].LeftoverAmount != 1000-paid {
		t.Fatalf("leftover recorded %+v %v, want %d", nodes["n1"], err, 1000-paid)
	}
	sl := h.rainSlice("old", 10, 1000)
	sl.Epoch = 3
	err = h.internal("POST", wire.PathSlices, wire.SliceAssignment{Rules: wire.RainRules{Code: "old", MaxPerUser: 1}, Slice: sl})
	if se, ok := err.(*wire.StatusError); !ok || se.Status != 409 {
		t.Fatalf("slice of a compacted rain: %v", err)
	}
}
