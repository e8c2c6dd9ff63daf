package coordinator

import (
	"context"
	"errors"
	"sync"
	"time"

	"redrain/gossip"
	"redrain/internal/wire"
)

// tell sends msg to each of nodes at path, each in its own background delivery that retries
// (while the node is not alive, or the call fails) until it is acked, the node refuses it
// (4xx), until passes, or the coordinator closes. tell waits at most wait for the deliveries
// to end, so an answer can say the reachable nodes were told.
func (c *Coordinator) tell(nodes []string, path string, msg any, until time.Time, wait time.Duration) {
	var wg sync.WaitGroup
	for _, node := range nodes {
		wg.Add(1)
		c.bg.Add(1)
		go func() {
			defer c.bg.Done()
			defer wg.Done()
			c.deliver(node, path, msg, until)
		}()
	}
	if wait <= 0 {
		return
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-c.ctx.Done():
	}
}

// deliver is one node's delivery of tell.
func (c *Coordinator) deliver(node, path string, msg any, until time.Time) {
	backoff := firstBackoff
	var last error
	for attempt := 1; ; attempt++ {
		if addr, ok := c.aliveAddr(node); ok {
			ctx, cancel := context.WithTimeout(c.ctx, callTimeout)
			last = c.post(ctx, addr, path, msg)
			cancel()
			var se *wire.StatusError
			if last == nil {
				return
			}
			if errors.As(last, &se) && se.Status/100 == 4 {
				c.log.Warn("node refused", "node", node, "path", path, "err", last)
				return
			}
		}
		if !time.Now().Add(backoff).Before(until) {
			c.log.Warn("giving up telling node", "node", node, "path", path, "attempts", attempt, "err", last)
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// aliveAddr is node's HTTP address if it is an alive member.
func (c *Coordinator) aliveAddr(node string) (string, bool) {
	for _, m := range c.cluster.Members() {
		if m.ID == node && m.Role == gossip.RoleNode && m.State == gossip.StateAlive && m.HTTPAddr != "" {
			return m.HTTPAddr, true
		}
	}
	return "", false
}
