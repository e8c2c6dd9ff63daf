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
	var last error // the last POST's error; not changed by an attempt that found the node gone
	try := func() error {
		addr, ok := c.aliveAddr(node)
		if !ok {
			return errNotAlive
		}
		ctx, cancel := context.WithTimeout(c.ctx, callTimeout)
		defer cancel()
		last = c.post(ctx, addr, path, msg)
		return last
	}
	inTime := func(backoff time.Duration) bool { return time.Now().Add(backoff).Before(until) }
	switch end, attempts, _ := untilAck(c.ctx, try, inTime); end {
	case refused:
		c.log.Warn("node refused", "node", node, "path", path, "err", last)
	case gaveUp:
		c.log.Warn("giving up telling node", "node", node, "path", path, "attempts", attempts, "err", last)
	}
}

var errNotAlive = errors.New("node is not an alive member")

// ackEnd is how untilAck ended.
type ackEnd int

const (
	acked     ackEnd = iota // try returned nil
	refused                 // try returned a 4xx *wire.StatusError: retrying cannot help
	gaveUp                  // again said the next attempt would come too late
	cancelled               // ctx ended while waiting to retry
)

// untilAck is the coordinator's one retry-until-ack loop: it calls try until it returns nil or a
// 4xx *wire.StatusError, waiting between attempts a backoff that doubles from firstBackoff up to
// maxBackoff. Before each wait it asks again(backoff), when again is not nil, whether to go on.
// It returns how it ended, the number of attempts and try's last error.
func untilAck(ctx context.Context, try func() error, again func(backoff time.Duration) bool) (ackEnd, int, error) {
	backoff := firstBackoff
	for attempt := 1; ; attempt++ {
		err := try()
		var se *wire.StatusError
		switch {
		case err == nil:
			return acked, attempt, nil
		case errors.As(err, &se) && se.Status/100 == 4:
			return refused, attempt, err
		case again != nil && !again(backoff):
			return gaveUp, attempt, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return cancelled, attempt, err
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
