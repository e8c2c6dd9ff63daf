package node

import (
	"testing"
	"time"

	"redrain/gossip"
)

// A node given its Cluster (a LoneCluster here) starts a rain from news passed to News, as one on
// its own memberlist does from gossip: before it, the rain is not started; after it, it pays.
func TestNewsStartsARainOnAGivenCluster(t *testing.T) {
	h := newHarness(t, false, nil)
	h.rainOf("nw", 10, 1000, 1, false)
	if st, body := h.claim("nw", 7); st != 425 {
		t.Fatalf("claim before the news: %d %s, want 425 not_started", st, body)
	}
	now := time.Now()
	h.n.News(gossip.News{Code: "nw", Kind: gossip.KindStarted, Epoch: 1, Version: 1,
		StartsAt: now.Add(-time.Second).UnixNano(), EndsAt: now.Add(time.Hour).UnixNano()})
	if st, body := h.claim("nw", 7); st != 200 {
		t.Fatalf("claim after the news: %d %s, want 200", st, body)
	}
	h.n.News(gossip.News{Code: "nw", Kind: gossip.KindStopped, Epoch: 1, Version: 2, StoppedAt: time.Now().UnixNano()})
	if st, body := h.claim("nw", 8); st != 410 {
		t.Fatalf("claim after the stop news: %d %s, want 410 finished", st, body)
	}
	h.n.News(gossip.News{Code: "unknown", Kind: gossip.KindStarted, Epoch: 1, Version: 1, // ignored
		StartsAt: now.UnixNano(), EndsAt: now.Add(time.Hour).UnixNano()})
}
