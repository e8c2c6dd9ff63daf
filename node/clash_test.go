package node

import (
	"testing"
	"time"

	"redrain/internal/wire"
)

// A second assignment of a held slice with other content is refused and changes nothing, also
// across a restart (the journaled slice is not overwritten).
func TestSliceAssignmentClash(t *testing.T) {
	h := newHarness(t, false, nil)
	sl := h.rainOf("clash", 10, 10000, 1, false)
	bigger := sl
	bigger.Amount = 1_000_000
	err := h.internal("POST", wire.PathSlices, wire.SliceAssignment{Rules: wire.RainRules{Code: "clash", MaxPerUser: 1}, Slice: bigger})
	if se, ok := err.(*wire.StatusError); !ok || se.Status != 409 {
		t.Fatalf("clashing assignment: %v", err)
	}
	h.restart()
	p, ok := h.n.store.Progress("clash", time.Now().UnixNano())
	if !ok || p.Amount != 10000 {
		t.Fatalf("after a restart the slice holds %d cents (%v), want the original 10000", p.Amount, ok)
	}
}

// Close right after Start returns (a SIGTERM during start-up must not hang the process).
func TestCloseRightAfterStart(t *testing.T) {
	for i := 0; i < 5; i++ {
		h := newRedisHarness(t, true, nil)
		done := make(chan error, 1)
		go func() { done <- h.n.Close() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("Close right after Start did not return within 20s")
		}
	}
}
