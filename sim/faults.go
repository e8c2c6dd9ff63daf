package sim

import (
	"context"
	"slices"

	"redrain/rain"
)

// injectFault injects one fault picked at random.
func (w *World) injectFault() {
	switch w.rng.Uint64n(10) {
	case 9:
		if n := w.pickNode(func(n *node) bool { return n.up }); n != nil {
			w.faults[FaultLeave]++
			w.leave(n)
		}
	case 0, 1:
		n := w.pickNode(func(n *node) bool { return n.up })
		if n == nil {
			return
		}
		if len(n.queue) > 0 {
			w.faults[FaultCrashPopped]++
		} else if len(n.awaiting) > 0 {
			w.faults[FaultCrashAwaitingOwner]++
		} else {
			w.faults[FaultCrashIdle]++
		}
		w.crashNode(n, "")
	case 2:
		n := w.pickNode(func(n *node) bool { return n.up && len(n.queue) > 0 })
		if n != nil {
			w.commitNode(n, commitOutcome(1+w.rng.Uint64n(6)))
		}
	case 3:
		switch {
		case w.rng.Uint64n(3) == 0 && !w.redis.readOnly:
			w.faults[FaultRedisReadOnly]++
			w.redis.readOnly = true
			w.tracef("redis: refusing writes")
		case !w.redis.down:
			w.faults[FaultRedisDown]++
			w.redis.down = true
			w.tracef("redis: down")
		}
	case 4:
		switch w.rng.Uint64n(3) {
		case 0:
			w.faults[FaultRedisWipe]++
			w.redis.mem.FlushAll()
			w.tracef("redis: wiped")
		case 1:
			w.redis.snaps = append(w.redis.snaps, w.redis.mem.Clone())
			w.tracef("redis: snapshot %d", len(w.redis.snaps))
		default:
			if k := len(w.redis.snaps); k > 0 {
				i := int(w.rng.Uint64n(uint64(k)))
				w.faults[FaultRedisRollback]++
				w.redis.mem = w.redis.snaps[i].Clone()
				w.rolledBack = true
				w.tracef("redis: rolled back to snapshot %d", i+1)
			}
		}
		w.redis.dirty = true
	case 5:
		if n := w.pickNode(func(n *node) bool { return !n.cut }); n != nil {
			w.faults[FaultPartition]++
			n.cut = true
			w.tracef("%s: cut off", n.id)
		}
	case 6:
		c := w.coord
		if !c.up {
			return
		}
		switch {
		case c.preparing:
			w.faults[FaultCoordCrashPrepare]++
		case c.status == rain.Raining:
			w.faults[FaultCoordCrashRain]++
		default:
			w.faults[FaultCoordCrashOther]++
		}
		w.tracef("coord: CRASH (status %s, preparing %v)", c.status, c.preparing)
		w.coordCrash()
	default:
		w.flushOne()
	}
}

// mend undoes a fault: a node restarted or repaired, Redis back, a partition healed, the
// coordinator restarted.
func (w *World) mend() {
	switch w.rng.Uint64n(6) {
	case 0:
		if n := w.pickNode(func(n *node) bool { return !n.up }); n != nil {
			w.restartNode(n)
		}
	case 5:
		if n := w.pickNode(func(n *node) bool { return n.up && len(n.held) > 0 }); n != nil {
			w.clearHeld(n)
		}
	case 1:
		if n := w.pickNode(func(n *node) bool { return n.up && n.j.failed }); n != nil {
			w.repairNode(n)
		}
	case 2:
		if w.redis.down || w.redis.readOnly {
			w.redis.down, w.redis.readOnly = false, false
			w.tracef("redis: up")
		}
	case 3:
		if n := w.pickNode(func(n *node) bool { return n.cut }); n != nil {
			n.cut = false
			w.tracef("%s: reconnected", n.id)
		}
	default:
		if !w.coord.up {
			w.tracef("coord: restart")
			w.coordRestart()
		}
	}
}

func (w *World) repairNode(n *node) {
	n.dirty = [2]bool{true, true}
	err := w.repair(n)
	w.tracef("%s: repair: %v", n.id, err)
	if err != nil {
		w.fail("recovery", "%s cannot reopen its journal: %v", n.id, err)
		return
	}
	w.chk.published(w, n)
}

// leave mirrors node.shutdown: claims in flight finish, everything is flushed, and only then
// each started rain's unclaimed remainder is recorded in Redis (the journal first learns that a
// record exists); then the process ends.
func (w *World) leave(n *node) {
	w.tracef("%s: LEAVE (graceful stop)", n.id)
	for len(n.queue) > 0 {
		w.commitNode(n, commitOK)
	}
	flushed := true
	for _, code := range w.codes() {
		if _, ok := n.j.mem.Totals(code); !ok {
			continue
		}
		n.flusher.Recheck(code)
		for i := 0; flushed; i++ {
			done, err := n.flushPass(code, false)
			if err != nil || i > 10000 {
				flushed = false
			}
			if done {
				break
			}
		}
	}
	if flushed {
		ctx := context.Background()
		for _, code := range n.store.Codes() {
			p, ok := n.store.Progress(code, w.now)
			if !ok || !p.Started {
				continue
			}
			if err := n.noteLeftoverRecorded(code, true); err != nil {
				continue
			}
			if (sink{w, n.idx}).writable() {
				err := w.redis.mem.RecordLeftover(ctx, code, n.id, p.RemainingAmount)
				w.redis.dirty = true
				w.tracef("%s: leftover of %s recorded: %d cents: %v", n.id, code, p.RemainingAmount, err)
			}
		}
	}
	w.crashNode(n, "after the graceful stop")
	w.leftCheck = true
}

// clearHeld mirrors node.clearOne for each held rain: the record deleted in Redis, then the
// journal told, then the rain served.
func (w *World) clearHeld(n *node) {
	for _, code := range slices.Sorted(mapsKeys(n.held)) {
		if !(sink{w, n.idx}).writable() {
			return
		}
		if err := w.redis.mem.ClearLeftover(context.Background(), code, n.id); err != nil {
			continue
		}
		w.redis.dirty = true
		if err := n.noteLeftoverRecorded(code, false); err != nil {
			continue
		}
		delete(n.held, code)
		w.tracef("%s: leftover record of %s cleared; serving it again", n.id, code)
	}
}

// crashNode kills a node process.
func (w *World) crashNode(n *node, why string) {
	w.tracef("%s: CRASH %s (%d queued, %d in limbo)", n.id, why, len(n.queue), len(n.limbo))
	for range len(n.queue) + len(n.awaiting) + len(n.waiting) {
		w.chk.noAnswer(w)
	}
	n.crash()
}

// restartNode boots a crashed node from its journal.
func (w *World) restartNode(n *node) {
	n.dirty = [2]bool{true, true}
	err := w.boot(n)
	w.tracef("%s: restart: %v (%d records)", n.id, err, len(n.j.pub))
	if err != nil {
		w.fail("recovery", "%s cannot restart: %v", n.id, err)
		return
	}
	w.chk.published(w, n)
}
