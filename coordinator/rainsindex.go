package coordinator

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"redrain/ledger"
	"redrain/rain"
)

// redrain:rains lists every started rain so the wallet's consumers can find the credit streams.
// Start ZADDs a rain once, but Redis may lose the index afterwards (wiped, or restored from an
// older snapshot). So on every tick the loop compares ZCARD redrain:rains with the number of
// rains this coordinator started (one Redis call, nothing else when they agree). When Redis
// lists fewer, it re-asserts every started rain with ZADD NX, in batches: the active rains
// (raining, finished) at once, then the settled ones, a few batches a tick, until all are done.

// Bounds of a re-assertion.
const (
	IndexBatch          = 500 // rains per store read and per ZADD NX
	IndexBatchesPerTick = 4   // batches of settled rains per loop tick
)

// indexRepair is a re-assertion under way. Only the loop's goroutine touches it.
type indexRepair struct {
	on         bool   // a re-assertion is under way
	activeDone bool   // the raining and finished rains are re-asserted
	after      []byte // status-index key of the last settled rain re-asserted, nil before the first
	added      int64  // entries ZADD NX added so far
}

// checkRainsIndex starts a re-assertion when redrain:rains is short, and carries one on.
func (c *Coordinator) checkRainsIndex() {
	if !c.repair.on {
		if !c.rainsIndexShort() {
			return
		}
		c.repair = indexRepair{on: true}
	}
	done, err := c.reassert()
	switch {
	case err != nil:
		c.log.Debug("redrain:rains re-assertion paused, resumed next tick", "err", err)
	case done:
		c.log.Debug("redrain:rains re-asserted", "added", c.repair.added)
		c.repair = indexRepair{}
	}
}

// rainsIndexShort reports (logs and counts) redrain:rains listing fewer rains than were
// started. An unreachable Redis is not short: the next tick asks again.
func (c *Coordinator) rainsIndexShort() bool {
	started := c.startedRains.Load()
	if started == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(c.ctx, redisTimeout)
	defer cancel()
	listed, err := c.rdb.ZCard(ctx, ledger.RainsKey).Result()
	if err != nil {
		c.log.Debug("zcard redrain:rains", "err", err)
		return false
	}
	if listed >= started {
		return false
	}
	c.metrics.indexRepairs.Inc()
	c.log.Warn("redrain:rains lists fewer rains than were started (Redis lost data): re-asserting every started rain",
		"listed", listed, "started", started)
	return true
}

// reassert does one tick's share of the re-assertion: the active rains first (bounded by
// MaxActiveRains, like the tick), then IndexBatchesPerTick batches of settled ones. A settled
// rain's place in the walk never moves, and a rain that settles during the walk was active
// when it began (or started after, and was ZADDed by Start), so every started rain is covered.
func (c *Coordinator) reassert() (done bool, err error) {
	if !c.repair.activeDone {
		if err := c.reassertActive(); err != nil {
			return false, err
		}
		c.repair.activeDone = true
	}
	for range IndexBatchesPerTick {
		ls, last, err := c.store.settledAfter(c.repair.after, IndexBatch)
		if err != nil {
			return false, fmt.Errorf("store: %w", err)
		}
		if len(ls) == 0 {
			return true, nil
		}
		if err := c.zaddListings(ls); err != nil {
			return false, err
		}
		c.repair.after = last
	}
	return false, nil
}

func (c *Coordinator) reassertActive() error {
	codes, err := c.store.codesWithStatus(rain.Raining, rain.Finished)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	codes = codes[:min(len(codes), MaxActiveRains)]
	for len(codes) > 0 {
		n := min(len(codes), IndexBatch)
		ls, err := c.store.listings(codes[:n])
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if err := c.zaddListings(ls); err != nil {
			return err
		}
		codes = codes[n:]
	}
	return nil
}

// zaddListings ZADD NXes ls to redrain:rains in one call and counts what it added.
func (c *Coordinator) zaddListings(ls []listing) error {
	if len(ls) == 0 {
		return nil
	}
	zs := make([]redis.Z, len(ls))
	for i, l := range ls {
		zs[i] = redis.Z{Score: float64(l.StartUnix), Member: l.Code}
	}
	ctx, cancel := context.WithTimeout(c.ctx, redisTimeout)
	defer cancel()
	added, err := c.rdb.ZAddNX(ctx, ledger.RainsKey, zs...).Result()
	if err != nil {
		return fmt.Errorf("%w: zadd nx redrain:rains: %w", ErrRedis, err)
	}
	c.repair.added += added
	c.metrics.indexReadded.Add(float64(added))
	return nil
}
