package coordinator

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"redrain/internal/wire"
	"redrain/ledger"
)

// totals reads a started rain's Redis totals; a rain that never started has none to read.
func (c *Coordinator) totals(ctx context.Context, r *record) (Totals, error) {
	if !r.started() {
		return Totals{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	t, err := ledger.ReadTotals(ctx, c.rdb, r.Code)
	if err != nil {
		return Totals{}, fmt.Errorf("%w: %w", ErrRedis, err)
	}
	return Totals{ClaimedCount: t.ClaimedCount, ClaimedAmount: t.ClaimedAmount, MaxAmount: t.MaxAmount}, nil
}

// flushedByNode reads what each node flushed of a rain, and the leftover records that are
// current (see ledger.NodeTotals.Leftover).
func (c *Coordinator) flushedByNode(ctx context.Context, code string) (map[string]flushed, error) {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	m, err := ledger.ReadNodes(ctx, c.rdb, code)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRedis, err)
	}
	out := make(map[string]flushed, len(m))
	for node, t := range m {
		f := flushed{ClaimedCount: t.ClaimedCount, ClaimedAmount: t.ClaimedAmount}
		f.LeftoverAmount, f.HasLeftover = t.Leftover()
		f.MovesIn, f.MovesOut = moveSums(t.MovedIn), moveSums(t.MovedOut)
		out[node] = f
	}
	return out, nil
}

// zaddRain records a started rain in redrain:rains (code -> start unix seconds).
func (c *Coordinator) zaddRain(ctx context.Context, l listing) error {
	err := c.rdb.ZAdd(ctx, ledger.RainsKey, redis.Z{Score: float64(l.StartUnix), Member: l.Code}).Err()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRedis, err)
	}
	return nil
}

func moveSums(ts []ledger.MoveTotal) []wire.MoveSum {
	var out []wire.MoveSum
	for _, t := range ts {
		out = append(out, wire.MoveSum{Peer: t.Peer, Count: t.Count, Amount: t.Amount})
	}
	return out
}
