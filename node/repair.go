package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"redrain/ledger"
	"redrain/shard"
)

// When a journal commit fails the node answers 503 and hands nothing out. A claim that was
// refused before any write (ledger.ErrUnavailable) is released to the shard at once. A claim
// whose own commit failed (ledger.ErrCommit) is held in limbo: a failed fsync may still have
// left it in the file. The repair loop reopens the journal (every RepairInterval until it
// works, e.g. once disk space is freed); the reopened journal says which limbo claims did reach
// the file (those stay claimed: counted and flushed, though no client was told) and the rest are
// released, so no packet is ever handed out twice and none is lost.

// RepairInterval is the pace of journal reopen attempts after a failed commit.
const RepairInterval = 500 * time.Millisecond

// MaxLimbo bounds the claims held in limbo: at most one failed batch (the journal refuses
// everything after it without writing).
const MaxLimbo = 1 << 20

type limboClaim struct {
	code  string
	user  uint64
	claim shard.Claim
}

type limbo struct {
	mu     sync.Mutex
	claims []limboClaim
}

// journalFailed decides the fate of a popped packet whose journal write failed.
func (n *Node) journalFailed(code string, user uint64, c shard.Claim, err error) {
	if errors.Is(err, ledger.ErrUnavailable) || !errors.Is(err, ledger.ErrCommit) {
		n.store.Release([]byte(code), user, c) // never written: claimable again
		return
	}
	n.limbo.mu.Lock()
	if len(n.limbo.claims) < MaxLimbo {
		n.limbo.claims = append(n.limbo.claims, limboClaim{code, user, c})
	}
	n.limbo.mu.Unlock()
}

// repairLoop reopens a failed journal and settles the limbo.
func (n *Node) repairLoop(ctx context.Context) {
	t := time.NewTicker(RepairInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n.journal.Failed() {
				n.repair()
			}
		}
	}
}

func (n *Node) repair() {
	found, err := n.journal.Reopen()
	if err != nil {
		n.log.Warn("journal still unavailable", "err", err)
		return
	}
	type key struct {
		code         string
		epoch        uint64
		slice, index uint32
	}
	present := make(map[key]bool, len(found))
	for _, r := range found {
		present[key{r.Code, r.Epoch, r.Slice, r.Index}] = true
	}
	n.limbo.mu.Lock()
	claims := n.limbo.claims
	n.limbo.claims = nil
	n.limbo.mu.Unlock()
	kept := 0
	for _, l := range claims {
		if present[key{l.code, l.claim.Epoch, l.claim.Slice, l.claim.Index}] {
			kept++
			continue
		}
		n.store.Release([]byte(l.code), l.user, l.claim)
	}
	n.flusher.Notify()
	n.log.Info("journal repaired", "released", len(claims)-kept, "journaled_unanswered", kept)
}
