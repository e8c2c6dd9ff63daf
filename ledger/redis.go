package ledger

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Sink is what the flusher needs of Redis: a journal's marker of a rain, and one batch applied
// exactly once. RedisClient is the real one, MemRedis the in-memory one for tests.
type Sink interface {
	// ReadMarker returns the last sequence of the journal (node, incarnation) applied to the
	// rain; 0 if none.
	ReadMarker(ctx context.Context, code, node string, incarnation uint64) (uint64, error)
	// Apply applies b unless the marker no longer equals b.Prev or b.First is not above it
	// (applied false, and the marker found); see applyScript for what it writes.
	Apply(ctx context.Context, b *Batch) (applied bool, marker uint64, err error)
}

// RedisClient is every call the ledger makes to Redis, on a go-redis client. Its methods are
// the package's functions of the same names (ReadMarker, RecordLeftover, ...).
type RedisClient struct{ rdb redis.UniversalClient }

// NewRedisClient wraps rdb; Close closes it.
func NewRedisClient(rdb redis.UniversalClient) *RedisClient { return &RedisClient{rdb: rdb} }

// Client is the go-redis client it wraps.
func (c *RedisClient) Client() redis.UniversalClient { return c.rdb }

// ReadMarker: see the function ReadMarker.
func (c *RedisClient) ReadMarker(ctx context.Context, code, node string, incarnation uint64) (uint64, error) {
	return ReadMarker(ctx, c.rdb, code, node, incarnation)
}

// Apply runs applyScript for b.
func (c *RedisClient) Apply(ctx context.Context, b *Batch) (applied bool, marker uint64, err error) {
	keys, args := b.scriptArgs()
	res, err := applyScript.Run(ctx, c.rdb, keys, args...).Result()
	if err != nil {
		return false, 0, err
	}
	return parseApply(res)
}

// RecordLeftover: see the function RecordLeftover.
func (c *RedisClient) RecordLeftover(ctx context.Context, code, node string, amount int64) error {
	return RecordLeftover(ctx, c.rdb, code, node, amount)
}

// ClearLeftover: see the function ClearLeftover.
func (c *RedisClient) ClearLeftover(ctx context.Context, code, node string) error {
	return ClearLeftover(ctx, c.rdb, code, node)
}

// Reassert: see the function Reassert.
func (c *RedisClient) Reassert(ctx context.Context, code, node string, incarnation uint64, t Tombstone) (bool, error) {
	return Reassert(ctx, c.rdb, code, node, incarnation, t)
}

// WalletAcked: see the function WalletAcked.
func (c *RedisClient) WalletAcked(ctx context.Context, code, group string) (ok bool, why string, err error) {
	return WalletAcked(ctx, c.rdb, code, group)
}

// ReadTotals: see the function ReadTotals.
func (c *RedisClient) ReadTotals(ctx context.Context, code string) (RainTotals, error) {
	return ReadTotals(ctx, c.rdb, code)
}

// ReadNodes: see the function ReadNodes.
func (c *RedisClient) ReadNodes(ctx context.Context, code string) (map[string]NodeTotals, error) {
	return ReadNodes(ctx, c.rdb, code)
}

// ReadCredits returns every claim of the rain's credit stream, entry by entry.
func (c *RedisClient) ReadCredits(ctx context.Context, code string) ([]Credit, error) {
	entries, err := c.rdb.XRange(ctx, Keys(code).Credits, "-", "+").Result()
	if err != nil {
		return nil, fmt.Errorf("ledger: read credit stream of %s: %w", code, err)
	}
	var out []Credit
	for _, e := range entries {
		cs, err := DecodeCredits(e.Values)
		if err != nil {
			return nil, fmt.Errorf("ledger: credit entry %s: %w", e.ID, err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// Close closes the client.
func (c *RedisClient) Close() error { return c.rdb.Close() }
