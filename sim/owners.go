package sim

import (
	"errors"
	"slices"

	"redrain/ledger"
	"redrain/rain"
	"redrain/shard"
)

// Per-user owners (node/owner*.go): each (rain, user) is counted by its owner among the rain's
// holders (rain.OwnerOf over RainMeta.Holders). A claim popped on another node asks the owner
// over the network; the owner counts the user in its real shard (ReserveUser), journals the
// reservation in its owners journal and only then answers yes. A no, or no answer within
// ownerTimeout, puts the packet back (Release) and answers without one. A reservation whose
// claim was never written is released with one message, never resent.

// Results of a reserve call, as node/owner_batch.go's.
const (
	resultNone = iota
	resultReserved
	resultUserLimit
	resultRefused
)

// ownerTimeout is how long a claimant waits for its owner (Options.OwnerTimeout).
const ownerTimeout = 20 * ms

// Marks of an owners-journal record (node/owner_serve.go).
const (
	reserveMark uint32 = 0
	releaseMark uint32 = 1
)

// ownerOf returns the index of the node owning user's count of the rain, as node n sees it
// (its journaled holders), -1 when n holds no holders.
func (w *World) ownerOf(n *node, code string, user uint64) int {
	ri := n.rains[code]
	if ri == nil {
		return -1
	}
	id := rain.OwnerOf(ri.meta.Holders, code, user)
	if id == "" {
		return -1
	}
	return w.nodeOf(id)
}

// askOwner mirrors node.askOwner after the pop: no call when n is the owner; a dead owner (as
// gossip says) fails at once; else a reserve message, the claim waiting for its answer.
func (w *World) askOwner(n *node, p pending) {
	o := w.ownerOf(n, p.code, p.user)
	if o < 0 || o == n.idx {
		w.toWriter(n, p)
		return
	}
	if !w.nodes[o].up {
		n.store.Release([]byte(p.code), p.user, p.claim)
		w.tracef("%s: user %d of %s: owner %s is down", n.id, p.user, p.code, w.nodes[o].id)
		w.answer(n, p.req, answer{status: 503, word: "journal_unavailable"})
		return
	}
	p.owner = o
	n.awaiting[p.req] = p
	w.tracef("%s: user %d popped %s slice %d index %d (%d cents); asking owner %s", n.id, p.user, p.code, p.claim.Slice,
		p.claim.Index, p.claim.Amount, w.nodes[o].id)
	w.net.send(msg{kind: mReserve, node: o, peer: n.idx, req: p.req, code: p.code, user: p.user, inc: n.boots})
}

// toWriter queues a popped claim for the journal's writer (or, with the journal failed,
// releases it and answers 503 at once).
func (w *World) toWriter(n *node, p pending) {
	if err := n.j.writable(); err != nil {
		w.journalFailed(n, p.code, p, err)
		w.ownerJournalFailed(n, p, err)
		w.answer(n, p.req, answer{status: 503, word: "journal_unavailable"})
		return
	}
	w.tracef("%s: user %d popped %s slice %d index %d (%d cents)", n.id, p.user, p.code, p.claim.Slice, p.claim.Index, p.claim.Amount)
	n.queue = append(n.queue, p)
}

// ownerJournalFailed mirrors node.ownerJournalFailed: a claim whose record was never written
// releases its reservation, once; one whose commit failed keeps it.
func (w *World) ownerJournalFailed(n *node, p pending, err error) {
	if p.owner < 0 || p.owner == n.idx || (!errors.Is(err, ledger.ErrUnavailable) && errors.Is(err, ledger.ErrCommit)) {
		return
	}
	w.net.send(msg{kind: mRelease, node: p.owner, peer: n.idx, code: p.code, user: p.user})
}

// atOwners handles the owner messages at node n.
func (w *World) atOwners(n *node, m msg) {
	switch m.kind {
	case mReserve:
		res := w.countUser(n, m.code, m.user)
		if res == resultUserLimit {
			w.chk.capHeld(w, n, m.code, m.user)
		}
		if res == resultReserved {
			rec := ledger.Record{Code: m.code, User: m.user, Amount: 1, Index: reserveMark, UnixNano: w.now}
			if w.cfg.Bugs.OwnerAnswersFirst { // planted: yes now, the reservation journaled with the node's next commit
				n.ownLag = append(n.ownLag, rec)
			} else {
				n.ownj = append(n.ownj, rec)
			}
		}
		w.tracef("%s: owner: reserve user %d of %s for %s: %d", n.id, m.user, m.code, w.nodes[m.peer].id, res)
		if res == resultReserved && w.failpoint(25) {
			w.faults[FaultCrashOwnerJournaled]++
			w.crashNode(n, "after journaling a reservation, before answering")
			return
		}
		w.net.send(msg{kind: mReserveAns, node: m.peer, peer: n.idx, req: m.req, code: m.code, user: m.user, inc: m.inc,
			result: res})

	case mRelease:
		n.ownj = append(n.ownj, ledger.Record{Code: m.code, User: m.user, Amount: 1, Index: releaseMark, UnixNano: w.now})
		n.store.UnreserveUser(m.code, m.user)
		w.tracef("%s: owner: release user %d of %s", n.id, m.user, m.code)
	case mReserveAns:
		p, ok := n.awaiting[m.req]
		if !ok || m.inc != n.boots {
			return // the claim timed out, or an earlier process asked
		}
		delete(n.awaiting, m.req)
		switch m.result {
		case resultReserved:
			w.toWriter(n, p)
		case resultUserLimit:
			n.store.Release([]byte(p.code), p.user, p.claim)
			w.answer(n, p.req, answer{status: 429, word: "user_limit", owner: p.owner + 1})
		default:
			n.store.Release([]byte(p.code), p.user, p.claim)
			w.answer(n, p.req, answer{status: 503, word: "journal_unavailable"})
		}
	}
}

// countUser mirrors node.countUser: refused unless n owns the user, user_limit at the cap.
func (w *World) countUser(n *node, code string, user uint64) int {
	if w.ownerOf(n, code, user) != n.idx {
		return resultRefused
	}
	switch err := n.store.ReserveUser(code, user); {
	case errors.Is(err, shard.ErrUserLimit):
		return resultUserLimit
	case err != nil:
		return resultRefused
	}
	return resultReserved
}

// ownerTimeouts fails the claims that waited for their owner past ownerTimeout (all of them
// when all is set): the packet back, 503.
func (w *World) ownerTimeouts(all bool) {
	for _, n := range w.nodes {
		if !n.up || len(n.awaiting) == 0 {
			continue
		}
		for _, req := range slices.Sorted(mapsKeys(n.awaiting)) {
			p := n.awaiting[req]
			if !all && w.now-p.at < ownerTimeout {
				continue
			}
			delete(n.awaiting, req)
			n.store.Release([]byte(p.code), p.user, p.claim)
			n.dirty[w.codeIdx(p.code)] = true
			w.tracef("%s: owner %s of user %d did not answer in time", n.id, w.nodes[p.owner].id, p.user)
			w.answer(n, p.req, answer{status: 503, word: "journal_unavailable"})
		}
	}
}

// ownersGranted replays n's owners journal: per rain and user, reservations minus releases
// (never below zero), as node.replayOwners.
func (n *node) ownersGranted() map[string]map[uint64]int {
	out := map[string]map[uint64]int{}
	for _, r := range n.ownj {
		m := out[r.Code]
		if m == nil {
			m = map[uint64]int{}
			out[r.Code] = m
		}
		if r.Index == reserveMark {
			m[r.User]++
		} else if m[r.User] > 0 {
			m[r.User]--
		}
	}
	return out
}

// granted is the net count of user's reservations n granted (journaled or not).
func (n *node) granted(code string, user uint64) (k int) {
	for _, rs := range [][]ledger.Record{n.ownj, n.ownLag} {
		for _, r := range rs {
			if r.Code == code && r.User == user {
				if r.Index == reserveMark {
					k++
				} else if k > 0 {
					k--
				}
			}
		}
	}
	return k
}
