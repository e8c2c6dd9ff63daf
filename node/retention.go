package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"redrain/internal/logpace"
	"redrain/ledger"
)

// Retention: a rain's journal records are the only durable copy of its claims until the wallet
// has them, so they are kept while they may be needed to rebuild Redis (a wiped or rolled-back
// Redis is repaired from them) or the credit stream. Once the rain has finished (stopped, or its
// ends_at passed) at least Options.Retention ago, every journaled claim of it is applied to Redis
// AND the wallet's consumer group (Options.WalletGroup) on the rain's credit stream has
// acknowledged every entry holding them, the janitor records the node's unclaimed remainder in
// Redis (`<node>:leftover_amount`, so the report stays exact without this node's figures), and in
// one journal transaction replaces the rain's records and slices by a tombstone: the rain's
// metadata with the node's totals (count, amount, max, last sequence, leftover). Without such a
// group the records are kept, and the janitor says why (a paced log line and the
// redrain_compaction_waiting_rains gauge).
//
// After compaction the node answers claims of the rain 410 finished, refuses late slices, and on
// every janitor round re-asserts the tombstone in Redis if Redis lost it (totals, nodes hash,
// leftover record, marker; see ledger.Reassert). The credit entries are not rebuilt: the wallet
// acknowledged them all before the records went.

// errWalletBehind: the wallet has not acknowledged every credit entry of a rain due for compaction.
var errWalletBehind = errors.New("node: the wallet has not acknowledged the rain's credits")

// compactionState is what the janitor knows of rains held back for the wallet.
type compactionState struct {
	mu      sync.Mutex
	waiting map[string]string // rain -> why it is not compacted yet
	log     logpace.Limiter
}

func (c *compactionState) set(code, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiting == nil {
		c.waiting = map[string]string{}
	}
	if why == "" {
		delete(c.waiting, code)
	} else {
		c.waiting[code] = why
	}
}

// Waiting is the number of rains past retention whose records are kept for the wallet.
func (c *compactionState) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiting)
}

// janitor runs compaction and tombstone checks every JanitorInterval until ctx ends.
func (n *Node) janitor(ctx context.Context) {
	t := time.NewTicker(n.opts.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.compactDue(ctx, time.Now())
			n.reassertTombstones(ctx)
		}
	}
}

// compactDue compacts every rain that is due; failures are logged and retried next round.
func (n *Node) compactDue(ctx context.Context, now time.Time) {
	for _, code := range n.dueForCompaction(now.UnixNano()) {
		err := n.compact(ctx, code, now.UnixNano())
		switch {
		case errors.Is(err, errWalletBehind):
			if n.compaction.log.Allow(now) {
				n.log.Warn("journal records kept: retention passed but the wallet has not acknowledged them",
					"rain", code, "why", err, "rains_waiting", n.compaction.Waiting(),
					"lines_held_back", n.compaction.log.Suppressed())
			}
		case err != nil:
			n.log.Warn("compaction postponed", "rain", code, "err", err)
		}
	}
}

func (n *Node) dueForCompaction(now int64) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var due []string
	for code, ri := range n.rains {
		m := ri.meta
		end := m.EndsAt
		if m.StoppedAt != 0 && (end == 0 || m.StoppedAt < end) {
			end = m.StoppedAt
		}
		if m.CompactedAt == 0 && end != 0 && now-end >= int64(n.opts.Retention) {
			due = append(due, code)
		}
	}
	return due
}

// compact drops one finished rain's records once they are all in Redis and the wallet has
// acknowledged them, leaving a tombstone.
func (n *Node) compact(ctx context.Context, code string, now int64) error {
	if err := n.flusher.FlushRain(ctx, code); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	t, _ := n.journal.Totals(code)
	if fc, _, _ := n.flusher.Flushed(code); fc != t.Count {
		return fmt.Errorf("%d of %d claims flushed", fc, t.Count)
	}
	if t.Count > 0 {
		acked, why, err := n.rdb.WalletAcked(ctx, code, n.opts.WalletGroup)
		if err != nil {
			return err
		}
		n.compaction.set(code, why)
		if !acked {
			return fmt.Errorf("%w: %s", errWalletBehind, why)
		}
	}
	tomb := &ledger.Tombstone{Count: t.Count, Amount: t.Amount, Max: t.Max, LastSeq: t.LastSeq}
	if p, ok := n.store.Progress(code, now); ok && p.Started {
		if err := n.rdb.RecordLeftover(ctx, code, n.opts.ID, p.RemainingAmount); err != nil {
			return fmt.Errorf("record leftover: %w", err)
		}
		tomb.Leftover, tomb.HasLeftover = p.RemainingAmount, true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	ri := n.rains[code]
	m := ri.meta
	m.Settled, m.CompactedAt, m.Tomb = true, now, tomb
	if err := n.journal.DropRain(m); err != nil {
		return err
	}
	ri.meta = m
	n.store.Remove(code)
	n.intern(code, m.RoomID, rainCompacted)
	ri.epochs, ri.slices = map[uint64]bool{}, nil
	n.log.Info("rain compacted", "rain", code, "claims", t.Count)
	return nil
}

// reassertTombstones puts every compacted rain's tombstone back into Redis where Redis lost it.
func (n *Node) reassertTombstones(ctx context.Context) {
	for code, tomb := range n.tombstones() {
		wrote, err := n.rdb.Reassert(ctx, code, n.opts.ID, n.journal.Incarnation(), tomb)
		switch {
		case err != nil:
			n.log.Warn("re-assert compacted rain", "rain", code, "err", err)
			return // Redis is down: try again next round
		case wrote:
			n.metrics.reasserted.Inc()
			n.log.Warn("redis had lost a compacted rain's totals: re-asserted from the tombstone", "rain", code,
				"claims", tomb.Count, "amount", tomb.Amount)
		}
		if err := n.recordMovesOf(ctx, code); err != nil { // stock moves: raised back if Redis lost them
			n.log.Warn("re-assert compacted rain's stock moves", "rain", code, "err", err)
			return
		}
	}
}

// tombstones copies the compacted rains' tombstones.
func (n *Node) tombstones() map[string]ledger.Tombstone {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]ledger.Tombstone{}
	for code, ri := range n.rains {
		if ri.meta.CompactedAt != 0 && ri.meta.Tomb != nil {
			out[code] = *ri.meta.Tomb
		}
	}
	return out
}
