package coordinator

import (
	"context"
	"sync"

	"redrain/gossip"
	"redrain/rain"
)

// Report reconciles a rain (see buildReport): live holders' figures from their progress,
// everyone else's from Redis. It fails with ErrRedis if Redis cannot be read.
func (c *Coordinator) Report(ctx context.Context, code string) (*Report, error) {
	r, err := c.store.get(code)
	if err != nil {
		return nil, err
	}
	members := c.nodeMembers()
	facts := make(map[string]nodeFacts)
	for _, node := range r.holders() {
		if m, ok := members[node]; ok {
			facts[node] = nodeFacts{State: string(m.State)}
		}
	}
	t := Totals{}
	if r.started() {
		if t, err = c.totals(ctx, r); err != nil {
			return nil, err
		}
		byNode, err := c.flushedByNode(ctx, code)
		if err != nil {
			return nil, err
		}
		for node, f := range facts {
			f.Redis = byNode[node]
			facts[node] = f
		}
		c.addProgress(r.Code, members, facts)
	}
	return buildReport(r, facts, t), nil
}

// addProgress reads the rain's progress from every alive holder, concurrently.
func (c *Coordinator) addProgress(code string, members map[string]gossip.Member, facts map[string]nodeFacts) {
	var alive []string
	for node, f := range facts {
		if f.State == stateAlive {
			alive = append(alive, node)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, node := range alive {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps, err := c.readProgress(members[node].HTTPAddr, code)
			if err != nil {
				c.log.Warn("report: progress", "rain", code, "node", node, "err", err)
				return
			}
			if p, ok := ps[code]; ok {
				mu.Lock()
				f := facts[node]
				f.Progress = &p
				facts[node] = f
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// Nodes lists the node members with the number of slices each holds in rains that are
// prepared, raining or finished.
func (c *Coordinator) Nodes() ([]Node, error) {
	held, err := c.heldSlices()
	if err != nil {
		return nil, err
	}
	out := []Node{}
	for _, m := range c.cluster.Members() {
		if m.Role == gossip.RoleNode {
			out = append(out, Node{ID: m.ID, Addr: m.HTTPAddr, State: string(m.State), Slices: held[m.ID]})
		}
	}
	return out, nil
}

// heldSlices counts, per node, the slices of rains that are prepared, raining or finished.
func (c *Coordinator) heldSlices() (map[string]int, error) {
	codes, err := c.store.codesWithStatus(rain.Prepared, rain.Raining, rain.Finished)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int)
	for _, code := range codes {
		r, err := c.store.get(code)
		if err != nil {
			return nil, err
		}
		for _, s := range r.Slices {
			out[s.Node]++
		}
	}
	return out, nil
}
