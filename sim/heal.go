package sim

import "redrain/rain"

// healAndSettle ends the faults: everything comes back, every message is delivered, the rain
// finishes and every node flushes; then the end-state invariants are checked.
func (w *World) healAndSettle() {
	w.heal = true
	w.tracef("HEAL")
	w.redis.down, w.redis.readOnly = false, false
	if !w.coord.up {
		w.coordRestart()
	}
	for _, n := range w.nodes {
		n.cut = false
		if !n.up {
			w.restartNode(n)
		}
		if n.up && n.j.failed {
			w.repairNode(n)
		}
		if n.up {
			w.clearHeld(n)
		}
	}
	for round := 0; round < 200 && w.viol == nil; round++ {
		w.step++
		w.now += ms
		for w.deliverOne(true) && w.viol == nil {
		}
		w.stockTimeouts(true)
		w.ownerTimeouts(true)
		for _, n := range w.nodes {
			for len(n.queue) > 0 {
				w.commitNode(n, commitOK)
			}
		}
		for w.deliverOne(true) && w.viol == nil {
		}
		w.drainFlush()
		w.coordTick(true)
		w.chk.afterStep(w)
		if len(w.net.inflight) == 0 && len(w.coord.tells) == 0 && !w.anyUndelivered() && (w.coord.status == rain.Settled || w.coord.status == rain.Cancelled) {
			break
		}
		w.resend()
		for i, n := range w.nodes {
			w.gossip(i)
			if n.up {
				w.redeliver(n)
			}
		}
		w.ownerTimeouts(true)
	}
	for w.deliverOne(true) && w.viol == nil {
	}
	w.drainFlush()
	w.coordTick(true)
	if w.viol == nil {
		w.chk.final(w)
	}
}

// drainFlush flushes every node until Redis has everything (FlushRain's loop).
func (w *World) drainFlush() {
	for _, n := range w.nodes {
		for _, code := range w.codes() {
			w.drainRain(n, code)
		}
	}
}

// drainRain flushes the rain of a node until Redis has all of it.
func (w *World) drainRain(n *node, code string) {
	{
		if _, ok := n.j.mem.Totals(code); !ok {
			return
		}
		n.flusher.Recheck(code)
		for i := 0; ; i++ {
			done, err := n.flushPass(code, false)
			if err != nil {
				w.fail("flush", "%s: flush in the healed run: %v", n.id, err)
				return
			}
			if done {
				break
			}
			if i > 10000 {
				w.fail("flush", "%s: flush does not end", n.id)
				return
			}
		}
	}
}

// anyUndelivered reports whether a node holds a move out not yet acknowledged.
func (w *World) anyUndelivered() bool {
	for _, n := range w.nodes {
		for _, byID := range n.undelivered {
			if len(byID) > 0 {
				return true
			}
		}
	}
	return false
}
