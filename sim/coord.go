package sim

import (
	"slices"

	"redrain/ledger"
	"redrain/rain"
)

// coord mirrors the coordinator's lifecycle (coordinator/lifecycle.go, loop.go) for one rain:
// the record is durable (its bbolt), acks and tells in flight are not.
type coord struct {
	up bool

	// durable
	status           rain.Status
	epoch            uint64
	preparing        bool
	pending, slices  []rain.Slice
	startsAt, endsAt int64
	stoppedAt        int64
	seedCounter      uint64

	// volatile
	acks     map[int]bool
	prepAt   int64
	tells    map[uint64]msg // outstanding tells by id, resent until acked
	nextTell uint64
}

// nodeOf returns the node index of a node id.
func (w *World) nodeOf(id string) int {
	for i, n := range w.nodes {
		if n.id == id {
			return i
		}
	}
	panic("sim: unknown node " + id)
}

// live is the coordinator's view of the alive nodes: up and reachable.
func (w *World) live() []string {
	var out []string
	for _, n := range w.nodes {
		if n.up && !n.cut {
			out = append(out, n.id)
		}
	}
	return out
}

func (w *World) rules() ledger.RainMeta {
	return ledger.RainMeta{Code: w.code, MaxPerUser: w.maxPerUser, MinClaimIntervalMS: w.minIntervalMS}
}

// prepare mirrors Coordinator.Prepare: a new epoch stored as preparing, a slice to each live
// node, resent until acked or the prepare times out.
func (w *World) prepare() {
	c := w.coord
	live := w.live()
	if len(live) == 0 {
		return
	}
	c.seedCounter++
	plan, err := rain.Plan(rain.PlanInput{Code: w.code, Epoch: c.epoch + 1, TotalAmount: w.total, TotalCount: w.count,
		Algorithm: w.alg, Nodes: live, Seed: rain.DeriveSeed(w.seed, c.seedCounter)})
	if err != nil {
		w.fail("plan", "rain.Plan: %v", err)
		return
	}
	c.epoch, c.preparing, c.pending = c.epoch+1, true, plan
	c.acks, c.prepAt = map[int]bool{}, w.now
	w.tracef("coord: prepare epoch %d over %v", c.epoch, live)
	for _, s := range plan {
		w.tell(msg{kind: mAssign, node: w.nodeOf(s.Node), slice: s, epoch: c.epoch, holders: live})
	}
}

// tell sends m to its node and keeps it to resend until acked.
func (w *World) tell(m msg) {
	c := w.coord
	c.nextTell++
	m.req = c.nextTell
	c.tells[m.req] = m
	w.net.send(m)
}

// abandon mirrors Coordinator.abandon: the rain stays waiting, the nodes discard the epoch.
func (w *World) abandon() {
	c := w.coord
	w.tracef("coord: prepare of epoch %d abandoned", c.epoch)
	plan := c.pending
	c.preparing, c.pending = false, nil
	for k, m := range c.tells {
		if m.kind == mAssign {
			delete(c.tells, k)
		}
	}
	for _, s := range plan {
		w.tell(msg{kind: mDiscard, node: w.nodeOf(s.Node), epoch: c.epoch})
	}
}

// onAck handles a node's answer to the coordinator.
func (w *World) onAck(m msg) {
	c := w.coord
	if !c.up {
		return
	}
	switch m.kind {
	case mAssignAck:
		if c.preparing && m.epoch == c.epoch {
			c.acks[m.node] = true
			delete(c.tells, m.req)
			if len(c.acks) == len(c.pending) {
				w.commitPrepare()
			}
		}
	case mAssignNo:
		if c.preparing && m.epoch == c.epoch {
			w.abandon()
		}
	case mTellAck:
		delete(c.tells, m.req)
	}
}

func (w *World) commitPrepare() {
	c := w.coord
	st, err := rain.Next(c.status, rain.Prepare)
	if err != nil {
		w.fail("lifecycle", "%v", err)
		return
	}
	c.status, c.preparing, c.slices, c.pending = st, false, c.pending, nil
	w.tracef("coord: prepared epoch %d", c.epoch)
}

// coordTick is one decision of the coordinator's loop or of the anchor's admin calls.
func (w *World) coordTick(heal bool) {
	c := w.coord
	if !c.up {
		return
	}
	switch c.status {
	case rain.Waiting:
		switch {
		case c.preparing && w.now-c.prepAt > w.prepTimeout:
			w.abandon()
		case !c.preparing && (heal || w.rng.Uint64n(3) == 0):
			w.prepare()
		}
	case rain.Prepared:
		if heal || w.rng.Uint64n(3) == 0 {
			w.startRain()
		}
	case rain.Raining:
		if heal || w.now >= c.endsAt || w.rng.Uint64n(200) == 0 || w.allExhausted() {
			w.finish()
		}
	case rain.Finished:
		if w.allFlushed() {
			st, _ := rain.Next(c.status, rain.Settle)
			c.status = st
			w.tracef("coord: settled")
			for _, h := range w.holders() {
				w.tell(msg{kind: mSettle, node: h})
			}
		}
	}
}

func (w *World) startRain() {
	c := w.coord
	st, err := rain.Next(c.status, rain.Start)
	if err != nil {
		w.fail("lifecycle", "%v", err)
		return
	}
	c.status, c.startsAt, c.endsAt = st, w.now, w.now+w.duration
	w.tracef("coord: start epoch %d until %d", c.epoch, c.endsAt)
	for _, h := range w.holders() {
		w.tell(msg{kind: mStart, node: h, epoch: c.epoch, a: c.startsAt, b: c.endsAt})
	}
}

func (w *World) finish() {
	c := w.coord
	st, err := rain.Next(c.status, rain.Finish)
	if err != nil {
		w.fail("lifecycle", "%v", err)
		return
	}
	c.status, c.stoppedAt = st, w.now
	w.tracef("coord: finished at %d", c.stoppedAt)
	for _, h := range w.holders() {
		w.tell(msg{kind: mStop, node: h, a: c.stoppedAt})
	}
}

// holders are the node indices of the committed slices.
func (w *World) holders() []int {
	var out []int
	for _, s := range w.coord.slices {
		out = append(out, w.nodeOf(s.Node))
	}
	return out
}

// allExhausted mirrors loop.allExhausted: every alive holder reports nothing left.
func (w *World) allExhausted() bool {
	alive := 0
	for _, h := range w.holders() {
		n := w.nodes[h]
		if !n.up || n.cut {
			continue
		}
		p, ok := n.store.Progress(w.code, w.now)
		if !ok || !p.Exhausted || w.inTransit(n) {
			return false
		}
		alive++
	}
	return alive > 0
}

// inTransit mirrors node.inTransit: a move out of the main rain not yet acknowledged by a
// receiver that is up.
func (w *World) inTransit(n *node) bool {
	for _, mv := range n.undelivered[w.code] {
		if w.nodes[w.nodeOf(mv.To)].up {
			return true
		}
	}
	return false
}

// allFlushed mirrors loop.allFlushed: every alive holder flushed all it journaled; a holder
// that is down or cut off counts as dead.
func (w *World) allFlushed() bool {
	for _, h := range w.holders() {
		n := w.nodes[h]
		if !n.up || n.cut {
			continue
		}
		t, _ := n.j.mem.Totals(w.code)
		c, _, ok := n.flusher.Flushed(w.code)
		if t.Count > 0 && (!ok || c != t.Count) {
			return false
		}
	}
	return true
}

// resend sends every outstanding tell again (the coordinator's retries).
func (w *World) resend() {
	c := w.coord
	for _, k := range slices.Sorted(mapsKeys(c.tells)) {
		w.net.send(c.tells[k])
	}
}

// gossip hands one node the rain's news from the coordinator's record (start, stop), as
// memberlist broadcasts and push-pull do.
func (w *World) gossip(to int) {
	c := w.coord
	if !c.up || c.startsAt == 0 {
		return
	}
	w.net.send(msg{kind: mStart, node: to, epoch: c.epoch, a: c.startsAt, b: c.endsAt})
	if c.stoppedAt != 0 {
		w.net.send(msg{kind: mStop, node: to, a: c.stoppedAt})
	}
}

// coordCrash ends the coordinator process; its record stays.
func (w *World) coordCrash() {
	c := w.coord
	c.up, c.acks, c.tells = false, nil, nil
}

// coordRestart mirrors the coordinator's start-up: prepares left in flight are abandoned.
func (w *World) coordRestart() {
	c := w.coord
	c.up, c.acks, c.tells = true, map[int]bool{}, map[uint64]msg{}
	if c.preparing {
		w.abandon()
	}
	if c.startsAt != 0 { // the record's news reaches the holders again by push-pull
		for _, h := range w.holders() {
			w.gossip(h)
		}
	}
}
