package node

import (
	"context"
	"fmt"
	"time"

	"redrain/ledger"
)

// Retention: a rain's journal records are kept while they may still be needed to rebuild Redis
// (a wiped or rolled-back Redis is repaired from them). Once the rain has finished (stopped, or
// its ends_at passed) at least Options.Retention ago AND every journaled claim of it is applied
// to Redis, the janitor records the node's unclaimed remainder in Redis
// (`<node>:leftover_amount`, so the report stays exact without this node's figures), marks the
// rain settled and compacted in the journal, and drops its claim records and slices. A small
// tombstone (the rain's metadata) stays, so a late slice of it is refused. After compaction the
// node answers claims of that rain 404 unknown_rain, and Redis is the record of its claims.

// janitor runs compaction every JanitorInterval until ctx ends.
func (n *Node) janitor(ctx context.Context) {
	t := time.NewTicker(n.opts.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.compactDue(ctx, time.Now())
		}
	}
}

// compactDue compacts every rain that is due; failures are logged and retried next round.
func (n *Node) compactDue(ctx context.Context, now time.Time) {
	for _, code := range n.dueForCompaction(now.UnixNano()) {
		if err := n.compact(ctx, code, now.UnixNano()); err != nil {
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

// compact drops one finished rain's records once they are all in Redis.
func (n *Node) compact(ctx context.Context, code string, now int64) error {
	if err := n.flusher.FlushRain(ctx, code); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	t, _ := n.journal.Totals(code)
	if fc, _, _ := n.flusher.Flushed(code); fc != t.Count {
		return fmt.Errorf("%d of %d claims flushed", fc, t.Count)
	}
	if p, ok := n.store.Progress(code, now); ok && p.Started {
		if err := ledger.RecordLeftover(ctx, n.rdb, code, n.opts.ID, p.RemainingAmount); err != nil {
			return fmt.Errorf("record leftover: %w", err)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	ri := n.rains[code]
	m := ri.meta
	m.Settled, m.CompactedAt = true, now
	if err := n.journal.PutRain(m); err != nil {
		return err
	}
	ri.meta = m
	if err := n.journal.DropRain(code); err != nil {
		return err
	}
	n.store.Remove(code)
	ri.epochs, ri.slices = map[uint64]bool{}, nil
	n.log.Info("rain compacted", "rain", code, "claims", t.Count)
	return nil
}
