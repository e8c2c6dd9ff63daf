package sim

import (
	"errors"
	"fmt"
	"slices"

	"redrain/ledger"
	"redrain/rain"
	"redrain/shard"
)

// Stock moves (node/moves.go): a receiver asks a donor for stock (give); the donor cuts the
// tail of a window with the real shard.CutMost, journals the move (RainMeta.MovesOut) before
// it sends it, and delivers it until the receiver acknowledges (also after its own restart:
// recovery puts the moves out of an unsettled rain back as undelivered); the receiver dedups
// by move id, journals it (RainMeta.MovesIn) before it serves it (shard.AddWindow) and
// acknowledges. Recovery rebuilds the windows with shard.RestoreWindows, as node.recoverWindows does.

// maxMovesPerRain bounds a node's moves out per rain (node/moves.go).
const maxMovesPerRain = 512

// failpoint reports whether to crash at a failpoint, one time in oneIn (with faults on).
func (w *World) failpoint(oneIn uint64) bool {
	return w.rate > 0 && !w.heal && w.rng.Uint64n(oneIn) == 0
}

// ask is a receiver asking a donor for stock: a holder of a started rain asks another holder.
// The node asks when low (node.askIfLow); the sim's rains are small, so it asks at any time,
// with empty (claims wait here) drawn at random when it still holds some.
func (w *World) ask() {
	n := w.pickNode(func(n *node) bool { return n.up && !n.cut })
	if n == nil {
		return
	}
	code := w.codes()[w.rng.Uint64n(2)]
	ri := n.rains[code]
	if ri == nil || ri.meta.Epoch == 0 || n.held[code] || len(ri.meta.Holders) < 2 {
		return
	}
	p, ok := n.store.Progress(code, w.now)
	if !ok || !p.Started || p.Finished {
		return
	}
	var donors []string
	for _, h := range ri.meta.Holders {
		if h != n.id {
			donors = append(donors, h)
		}
	}
	d := w.nodeOf(donors[w.rng.Uint64n(uint64(len(donors)))])
	empty := p.RemainingCount == 0 || w.rng.Uint64n(2) == 0
	want := 1 + int64(w.rng.Uint64n(40))
	w.tracef("%s: asks %s for %d packets of %s (empty %v)", n.id, w.nodes[d].id, want, code, empty)
	e := int64(0)
	if empty {
		e = 1
	}
	w.net.send(msg{kind: mGive, node: d, peer: n.idx, code: code, epoch: p.Epoch, a: want, b: e})
}

// atMoves handles the move messages at node n.
func (w *World) atMoves(n *node, m msg) {
	switch m.kind {
	case mGive:
		w.give(n, m)
	case mMoves:
		w.acceptMoves(n, m)
	case mMovesAck: // the receiver answered 200: the moves must be in its journal
		r := w.nodes[m.peer]
		for _, mv := range m.moves {
			if !slices.ContainsFunc(r.j.rains[m.code].MovesIn, func(x rain.Move) bool { return x.ID == mv.ID }) {
				w.fail("move-durable", "%s acknowledged move %s (%d packets / %d cents of %s) from %s, which its journal does not hold",
					r.id, mv.ID, mv.Count, mv.Amount, m.code, n.id)
				return
			}
			delete(n.undelivered[m.code], mv.ID)
		}
	}
}

// give mirrors node.give and cutMove: cut, journal, deliver.
func (w *World) give(n *node, m msg) {
	to := w.nodes[m.peer]
	if !to.up { // gossip knows the receiver is not alive
		return
	}
	ri := n.rains[m.code]
	switch {
	case ri == nil || ri.meta.Epoch != m.epoch || !slices.Contains(ri.meta.Holders, to.id):
		return // 404 / 409
	case len(ri.meta.MovesOut) >= maxMovesPerRain || n.held[m.code]:
		return
	}
	p, ok := n.store.Progress(m.code, w.now)
	if !ok || !p.Started || p.Finished {
		return
	}
	keep := p.RemainingCount / 2
	if m.b == 0 { // the node keeps what its own demand needs; the sim draws it
		keep = min(keep, int64(w.rng.Uint64n(uint64(keep)+1)))
	}
	k := min(m.a, p.RemainingCount-keep, 1<<31)
	if k <= 0 {
		return
	}
	cut, ok := n.store.CutMost(m.code, uint32(k))
	if !ok {
		return
	}
	n.dirty[w.codeIdx(m.code)] = true
	sl, ok := ri.sliceOf(cut.Epoch, cut.Slice)
	if !ok {
		w.fail("moves", "%s cut slice %d of %s, which it holds no descriptor of", n.id, cut.Slice, m.code)
		return
	}
	mv := rain.Move{ID: fmt.Sprintf("%s-%016x-%d", n.id, n.j.inc, ri.meta.MoveSeq+1), From: n.id, To: to.id, Slice: sl,
		Lo: cut.From, Hi: cut.To, Count: cut.Count, Amount: cut.Amount}
	if w.cfg.Bugs.DeliverBeforeJournal { // planted: the move leaves before it is durable
		w.net.send(msg{kind: mMoves, node: to.idx, peer: n.idx, code: m.code, moves: []rain.Move{mv}})
		if w.failpoint(6) {
			w.faults[FaultCrashMoveOut]++
			w.crashNode(n, "after delivering a move, before journaling it")
			return
		}
	}
	meta := ri.meta
	meta.MoveSeq++
	meta.MovesOut = append(slices.Clip(meta.MovesOut), mv)
	if err := n.j.putRain(meta); err != nil {
		if !n.store.Uncut(m.code, cut) {
			n.addOffSale(m.code, cut)
		}
		w.tracef("%s: move of %d packets to %s not journaled: %v", n.id, cut.Count, to.id, err)
		return
	}
	ri.meta = meta
	if n.undelivered[m.code] == nil {
		n.undelivered[m.code] = map[string]rain.Move{}
	}
	n.undelivered[m.code][mv.ID] = mv
	w.tracef("%s: move %s out: %s slice %d [%d, %d) %d packets / %d cents to %s", n.id, mv.ID, m.code, mv.Slice.ID, mv.Lo,
		mv.Hi, mv.Count, mv.Amount, to.id)
	if w.failpoint(6) { // failpoint move-out-journaled
		w.faults[FaultCrashMoveOut]++
		w.crashNode(n, "after journaling a move out, before delivering it")
		return
	}
	if !w.cfg.Bugs.DeliverBeforeJournal {
		w.net.send(msg{kind: mMoves, node: to.idx, peer: n.idx, code: m.code, moves: []rain.Move{mv}})
	}
}

// addOffSale notes packets cut whose move could not be journaled nor put back: off sale until
// the node restarts.
func (n *node) addOffSale(code string, c shard.Cut) {
	if n.offSale == nil {
		n.offSale = map[string][2]int64{}
	}
	o := n.offSale[code]
	n.offSale[code] = [2]int64{o[0] + c.Count, o[1] + c.Amount}
}

// redeliver mirrors node.redeliver: a node sends its undelivered moves again, per receiver.
func (w *World) redeliver(n *node) {
	for i, code := range w.codes() {
		byID := n.undelivered[code]
		if len(byID) == 0 {
			continue
		}
		to := map[string][]rain.Move{}
		for _, id := range slices.Sorted(mapsKeys(byID)) {
			to[byID[id].To] = append(to[byID[id].To], byID[id])
		}
		for _, r := range slices.Sorted(mapsKeys(to)) {
			w.tracef("%s: redeliver %d moves of %s to %s", n.id, len(to[r]), w.codes()[i], r)
			w.net.send(msg{kind: mMoves, node: w.nodeOf(r), peer: n.idx, code: code, moves: to[r]})
		}
	}
}

// acceptMoves mirrors node.acceptMoves: validate, dedup by id, journal, then serve; then the
// acknowledgement.
func (w *World) acceptMoves(n *node, m msg) {
	gens := make([]rain.Amounts, len(m.moves))
	for i, mv := range m.moves {
		if err := mv.Validate(); err != nil || mv.To != n.id || mv.Slice.Code != m.code {
			w.fail("moves", "%s got a malformed move %+v: %v", n.id, mv, err)
			return
		}
		a, err := rain.Generate(mv.Slice)
		if err != nil {
			w.fail("moves", "%s cannot regenerate the slice of move %s: %v", n.id, mv.ID, err)
			return
		}
		var sum int64
		for j := mv.Lo; j < mv.Hi; j++ {
			sum += a.At(int(j))
		}
		if sum != mv.Amount {
			w.fail("moves", "move %s is worth %d, not %d", mv.ID, sum, mv.Amount)
			return
		}
		gens[i] = a
	}
	ri := n.rains[m.code]
	if ri == nil {
		return // 404: the donor delivers again
	}
	meta := ri.meta
	var fresh []int
	for i, mv := range m.moves {
		switch {
		case meta.Epoch == 0 || mv.Slice.Epoch != meta.Epoch:
			w.tracef("%s: move %s of epoch %d refused, serving %d", n.id, mv.ID, mv.Slice.Epoch, meta.Epoch)
			return // 409
		case !slices.Contains(meta.Holders, mv.From):
			w.tracef("%s: move %s refused: %s is no holder here", n.id, mv.ID, mv.From)
			return // 409
		case slices.ContainsFunc(meta.MovesIn, func(x rain.Move) bool { return x.ID == mv.ID }):
			continue
		}
		meta.MovesIn = append(slices.Clip(meta.MovesIn), mv)
		fresh = append(fresh, i)
	}
	ack := msg{kind: mMovesAck, node: m.peer, peer: n.idx, code: m.code, moves: m.moves}
	if len(fresh) == 0 {
		w.net.send(ack)
		return
	}
	n.dirty[w.codeIdx(m.code)] = true
	serve := func() {
		for _, i := range fresh {
			mv := m.moves[i]
			if err := n.store.AddWindow(specOf(ri.meta), mv.Slice, gens[i], mv.Lo, mv.Hi, nil); err != nil {
				w.fail("moves", "%s journaled move %s but cannot serve it: %v", n.id, mv.ID, err)
				return
			}
			w.tracef("%s: move %s in: %s slice %d [%d, %d) %d packets from %s", n.id, mv.ID, m.code, mv.Slice.ID, mv.Lo,
				mv.Hi, mv.Count, mv.From)
		}
		w.retryWaiting(n, m.code, false, false)
	}
	if w.cfg.Bugs.ServeBeforeJournal { // planted: served and acknowledged before it is durable
		serve()
		w.net.send(ack)
		if w.failpoint(6) {
			w.faults[FaultCrashMoveIn]++
			w.crashNode(n, "after serving a move in, before journaling it")
			return
		}
	}
	if err := n.j.putRain(meta); err != nil {
		w.tracef("%s: moves in not journaled: %v", n.id, err)
		return // 503: the donor delivers again
	}
	ri.meta = meta
	if w.cfg.Bugs.ServeBeforeJournal {
		return
	}
	if w.failpoint(6) { // failpoint move-in-journaled
		w.faults[FaultCrashMoveIn]++
		w.crashNode(n, "after journaling a move in, before serving it")
		return
	}
	serve()
	w.net.send(ack)
}

// sliceOf mirrors rainInfo.sliceOf: a slice assigned here or moved in.
func (ri *rainInfo) sliceOf(epoch uint64, id uint32) (rain.Slice, bool) {
	if sl, ok := ri.slices[sliceID{epoch, id}]; ok {
		return sl, true
	}
	for _, mv := range ri.meta.MovesIn {
		if mv.Slice.Epoch == epoch && mv.Slice.ID == id {
			return mv.Slice, true
		}
	}
	return rain.Slice{}, false
}

// recoverWindows does what node.recoverWindows does, with the same pure step: each assigned
// slice and each move in is a window, and shard.RestoreWindows ends each at its moves out and
// places the journaled claims, amounts checked; moves out of an unsettled rain are undelivered
// again.
func (w *World) recoverWindows(n *node, rec *ledger.Recovery) error {
	byRain := map[string][]*shard.Window{}
	for _, sl := range rec.Slices {
		ri := n.rains[sl.Code]
		if ri == nil || (ri.meta.Epoch != 0 && sl.Epoch != ri.meta.Epoch) || sl.Epoch <= ri.meta.MinEpoch {
			continue
		}
		a, err := rain.Generate(sl)
		if err != nil {
			return err
		}
		byRain[sl.Code] = append(byRain[sl.Code], &shard.Window{Slice: sl, Amounts: a, Hi: uint32(sl.Count)})
		ri.hold(sl)
	}
	for _, code := range slices.Sorted(mapsKeys(n.rains)) {
		ri := n.rains[code]
		if ri.meta.CompactedAt != 0 {
			continue
		}
		for _, mv := range ri.meta.MovesIn {
			a, err := rain.Generate(mv.Slice)
			if err != nil {
				return err
			}
			byRain[code] = append(byRain[code], &shard.Window{Slice: mv.Slice, Amounts: a, Lo: mv.Lo, Hi: mv.Hi})
		}
		if !ri.meta.Settled {
			for _, mv := range ri.meta.MovesOut {
				if n.undelivered[code] == nil {
					n.undelivered[code] = map[string]rain.Move{}
				}
				n.undelivered[code][mv.ID] = mv
			}
		}
		ws := byRain[code]
		if len(ws) == 0 {
			continue
		}
		out := ri.meta.MovesOut
		if w.cfg.Bugs.ForgetMovesOut {
			out = nil
		}
		if err := shard.RestoreWindows(ws, out, journaledOf(rec, code), ri.meta.Epoch); err != nil {
			return fmt.Errorf("rain %s: %w", code, err)
		}
		for _, x := range ws {
			if err := n.store.AddWindow(specOf(ri.meta), x.Slice, x.Amounts, x.Lo, x.Hi, x.Claimed); err != nil {
				return fmt.Errorf("restore slice %s/%d [%d, %d): %w", x.Slice.Code, x.Slice.ID, x.Lo, x.Hi, err)
			}
		}
	}
	return nil
}

// journaledOf is the rain's journaled claims per slice, in slice order (a deterministic run).
func journaledOf(rec *ledger.Recovery, code string) []shard.Journaled {
	var out []shard.Journaled
	for _, k := range slices.SortedFunc(mapsKeys2(rec.Claimed), cmpSliceKey) {
		if k.Code == code {
			out = append(out, shard.Journaled{Epoch: k.Epoch, Slice: k.Slice, Index: rec.Claimed[k], Amount: rec.Amounts[k]})
		}
	}
	return out
}

// moveSums adds up a rain's journaled moves of epoch (in, out) on a node: count, amount.
func moveSums(m ledger.RainMeta, epoch uint64) (in, out [2]int64) {
	for _, mv := range m.MovesIn {
		if mv.Slice.Epoch == epoch {
			in[0], in[1] = in[0]+mv.Count, in[1]+mv.Amount
		}
	}
	for _, mv := range m.MovesOut {
		if mv.Slice.Epoch == epoch {
			out[0], out[1] = out[0]+mv.Count, out[1]+mv.Amount
		}
	}
	return in, out
}

// stockWait is how long a claim that found its node empty waits for a move (Options.StockWait).
const stockWait = 10 * ms

// waitClaim is a claim that found its node empty while a peer held stock (node.claimAfterWait).
type waitClaim struct {
	req, user uint64
	code      string
	at        int64 // when it arrived
	deadline  int64
}

// stockElsewhere mirrors node.stockElsewhere: another holder of the rain, up and reachable,
// holds unserved packets of the epoch (gossip's stock hints, here exact and at once).
func (w *World) stockElsewhere(n *node, code string, epoch uint64) (best *node) {
	ri := n.rains[code]
	if ri == nil {
		return nil
	}
	var most int64
	for _, h := range ri.meta.Holders {
		d := w.nodes[w.nodeOf(h)]
		if d == n || !d.up || d.cut {
			continue
		}
		if p, ok := d.store.Progress(code, w.now); ok && p.Epoch == epoch && p.RemainingCount > most {
			best, most = d, p.RemainingCount
		}
	}
	return best
}

// awaitStock parks a claim that found n empty when a peer holds stock, asking that peer at
// once; false: answer exhausted now.
func (w *World) awaitStock(n *node, m msg) bool {
	p, ok := n.store.Progress(m.code, w.now)
	if !ok {
		return false
	}
	d := w.stockElsewhere(n, m.code, p.Epoch)
	if d == nil {
		return false
	}
	n.waiting = append(n.waiting, waitClaim{req: m.req, user: m.user, code: m.code, at: w.now, deadline: w.now + stockWait})
	w.tracef("%s: user %d of %s found it empty; waits for stock, asks %s", n.id, m.user, m.code, d.id)
	w.net.send(msg{kind: mGive, node: d.idx, peer: n.idx, code: m.code, epoch: p.Epoch, a: 1 + int64(len(n.waiting)), b: 1})
	return true
}

// retryWaiting tries the waiting claims of a rain again (a move arrived), or those past their
// deadline (one last try, then exhausted); all of them when all is set.
func (w *World) retryWaiting(n *node, code string, late, all bool) {
	keep := n.waiting[:0:0]
	for _, wc := range n.waiting {
		due := all || (late && w.now >= wc.deadline)
		if wc.code != code && !due {
			keep = append(keep, wc)
			continue
		}
		c, err := n.store.ClaimAgain([]byte(wc.code), wc.user, w.now)
		switch {
		case err == nil:
			n.dirty[w.codeIdx(wc.code)] = true
			w.askOwner(n, pending{code: wc.code, user: wc.user, claim: c, req: wc.req, at: wc.at, owner: -1})
		case errors.Is(err, shard.ErrExhausted) && !due:
			keep = append(keep, wc)
		default:
			w.answer(n, wc.req, answerOf(err))
		}
	}
	n.waiting = keep
}

// stockTimeouts ends the waits past their deadline (all of them when all is set).
func (w *World) stockTimeouts(all bool) {
	for _, n := range w.nodes {
		if n.up && len(n.waiting) > 0 {
			w.retryWaiting(n, "", true, all)
		}
	}
}
