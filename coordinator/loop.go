package coordinator

import (
	"context"
	"fmt"
	"sync"
	"time"

	"redrain/gossip"
	"redrain/internal/wire"
	"redrain/rain"
)

// loop moves rains along on its own pace (Options.PollInterval): raining -> finished at ends_at
// or when every live holder is exhausted; finished -> settled when every holder has flushed
// all it claimed, or is dead or gone. It also retries the redrain:rains ZADD, and re-asserts
// that index when Redis has lost it (see rainsindex.go).
func (c *Coordinator) loop() {
	t := time.NewTicker(c.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.tick()
			c.ticks.Add(1)
		}
	}
}

// MaxActiveRains bounds how many raining or finished rains one tick looks at.
const MaxActiveRains = 10000

func (c *Coordinator) tick() {
	c.checkRainsIndex()
	codes, err := c.store.codesWithStatus(rain.Raining, rain.Finished)
	if err != nil {
		c.log.Error("loop: list active rains", "err", err)
		return
	}
	if len(codes) == 0 {
		return
	}
	if len(codes) > MaxActiveRains {
		codes = codes[:MaxActiveRains]
	}
	members := c.nodeMembers()
	progress := c.pollAll(members)
	now := time.Now()
	for _, code := range codes {
		r, err := c.store.get(code)
		if err != nil {
			c.log.Error("loop: load rain", "rain", code, "err", err)
			continue
		}
		c.step(r, members, progress, now)
	}
}

// step applies at most one transition to r.
func (c *Coordinator) step(r *record, members map[string]gossip.Member, progress map[string]map[string]wire.Progress, now time.Time) {
	if !r.Listed {
		c.listRain(r)
	}
	switch r.Status {
	case rain.Raining:
		if now.UnixNano() >= r.EndsAt {
			c.finish(r.Code, "ends_at")
		} else if allExhausted(r, members, progress) {
			c.finish(r.Code, "exhausted")
		}
	case rain.Finished:
		if allFlushed(r, members, progress) {
			c.settle(r.Code)
		}
	}
}

// holderProgress is the progress a live holder reported for r's epoch.
func holderProgress(r *record, node string, progress map[string]map[string]wire.Progress) (wire.Progress, bool) {
	p, ok := progress[node][r.Code]
	return p, ok && p.Epoch == r.Epoch
}

// allExhausted: at least one holder is alive, and every alive holder says it has nothing left.
// With no live holder the rain runs until ends_at (a cut-off node may still be serving).
func allExhausted(r *record, members map[string]gossip.Member, progress map[string]map[string]wire.Progress) bool {
	alive := 0
	for _, node := range r.holders() {
		if members[node].State != gossip.StateAlive {
			continue
		}
		alive++
		p, ok := holderProgress(r, node, progress)
		if !ok || p.RemainingCount != 0 || !p.Exhausted { // Exhausted is false while a stock move from it is on its way
			return false
		}
	}
	return alive > 0
}

// allFlushed: every holder has flushed everything it journaled, or is dead or gone. A suspect
// holder is waited for: it is soon alive again or dead.
func allFlushed(r *record, members map[string]gossip.Member, progress map[string]map[string]wire.Progress) bool {
	for _, node := range r.holders() {
		m, known := members[node]
		switch {
		case !known || m.State == gossip.StateDead || m.State == gossip.StateLeft:
			continue
		case m.State != gossip.StateAlive:
			return false
		}
		p, ok := holderProgress(r, node, progress)
		if !ok || p.FlushedCount != p.ClaimedCount {
			return false
		}
	}
	return true
}

// finish moves a raining rain to finished and tells its holders.
func (c *Coordinator) finish(code, why string) {
	now := time.Now().UnixNano()
	r, err := c.store.update(code, func(r *record) error {
		if err := transition(r, rain.Finish); err != nil {
			return err
		}
		r.StoppedAt = now
		r.News++
		return nil
	})
	if err != nil {
		c.log.Error("loop: finish", "rain", code, "err", err)
		return
	}
	c.log.Info("rain finished", "rain", code, "why", why)
	c.afterStop(r)
}

// settle moves a finished rain to settled and tells its holders (best effort).
func (c *Coordinator) settle(code string) {
	now := time.Now().UnixNano()
	r, err := c.store.update(code, func(r *record) error {
		if err := transition(r, rain.Settle); err != nil {
			return err
		}
		r.SettledAt = now
		return nil
	})
	if err != nil {
		c.log.Error("loop: settle", "rain", code, "err", err)
		return
	}
	c.log.Info("rain settled", "rain", code)
	c.hook(r, "settled")
	c.tell(r.holders(), wire.RainPath(wire.PathSettle, code), wire.Settle{}, time.Now().Add(retryFor), 0)
}

// pollAll reads every alive node's progress, concurrently: node -> code -> progress.
// A node that does not answer is missing from the result.
func (c *Coordinator) pollAll(members map[string]gossip.Member) map[string]map[string]wire.Progress {
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := make(map[string]map[string]wire.Progress)
	for id, m := range members {
		if m.State != gossip.StateAlive || m.HTTPAddr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			list, err := c.readProgress(m.HTTPAddr, "")
			if err != nil {
				c.log.Debug("loop: progress", "node", id, "err", err)
				return
			}
			mu.Lock()
			out[id] = list
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// readProgress GETs a node's progress (of one rain, or of all when code is ""): code -> progress.
func (c *Coordinator) readProgress(addr, code string) (map[string]wire.Progress, error) {
	ctx, cancel := context.WithTimeout(c.ctx, progressTimeout)
	defer cancel()
	path := wire.PathProgress
	if code != "" {
		path += "?code=" + code
	}
	var list wire.ProgressList
	if err := c.nodes.Do(ctx, "GET", addr, path, nil, &list); err != nil {
		return nil, err
	}
	out := make(map[string]wire.Progress, len(list.Rains))
	for _, p := range list.Rains {
		out[p.Code] = p
	}
	return out, nil
}

// listRain ZADDs a started rain to redrain:rains; on failure the loop retries.
func (c *Coordinator) listRain(r *record) {
	ctx, cancel := context.WithTimeout(c.ctx, redisTimeout)
	defer cancel()
	if err := c.zaddRain(ctx, listingOf(r)); err != nil {
		c.log.Warn("zadd redrain:rains (will retry)", "rain", r.Code, "err", err)
		return
	}
	_, err := c.store.update(r.Code, func(r *record) error { r.Listed = true; return nil })
	if err != nil {
		c.log.Error("mark listed", "rain", r.Code, "err", fmt.Errorf("store: %w", err))
	}
}
