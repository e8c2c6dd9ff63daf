package node

import (
	"context"
	"time"
)

// Leftover records: a node that stops gracefully records each started rain's unclaimed remainder
// in Redis (recordLeftovers), so the report counts it as leftover rather than lost while the node
// is away. A node that comes back with its journal must not let that record count packets it
// pays: every flush deletes the record, and before the node serves such a rain again it clears
// the record itself (claims of the rain answer 503 until then), so even claims it pays and cannot
// flush before dying again are counted as lost (an upper bound), never as leftover.

// clearLeftovers clears the held rains' leftover records, retrying with backoff until every one
// is cleared or ctx ends, and then lets the rains be served.
func (n *Node) clearLeftovers(ctx context.Context) {
	wait := 50 * time.Millisecond
	for {
		pending, err := n.clearHeld(ctx)
		if pending == 0 {
			return
		}
		n.log.Warn("rains held until their leftover records are cleared", "rains", pending, "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// clearHeld tries each held rain once; it returns how many are still held and the last error.
func (n *Node) clearHeld(ctx context.Context) (pending int, last error) {
	for code, h := range *n.codes.Load() {
		if h.state != rainHeld {
			continue
		}
		if err := n.clearOne(ctx, code); err != nil {
			pending, last = pending+1, err
		}
	}
	return pending, last
}

// clearOne deletes the rain's leftover record in Redis, then notes in the journal that none is
// left, then serves the rain.
func (n *Node) clearOne(ctx context.Context, code string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := n.rdb.ClearLeftover(ctx, code, n.opts.ID); err != nil {
		return err
	}
	if err := n.noteLeftoverRecorded(code, false); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if ri := n.rains[code]; ri != nil {
		n.intern(code, ri.meta.RoomID, rainServing)
	}
	n.log.Info("leftover record cleared; serving the rain again", "rain", code)
	return nil
}
