package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"redrain/ledger"
	"redrain/rain"
	"redrain/shard"
)

// pending is a claim popped from the store and waiting for the journal's commit.
type pending struct {
	code  string
	user  uint64
	claim shard.Claim
	req   uint64 // the client's request
	at    int64
	owner int // the node its user's owner reserved it on, -1: none (this node is the owner)
}

// rainInfo mirrors node.go's: what the node holds of a rain beside the store.
type rainInfo struct {
	meta   ledger.RainMeta
	epochs map[uint64]bool
	slices map[sliceID]rain.Slice
}

type sliceID struct {
	epoch uint64
	id    uint32
}

// node is one node process: durable journal; the rest is lost at a crash.
type node struct {
	id  string
	idx int
	j   *journal

	up      bool
	cut     bool    // partitioned from everyone (kept across a crash: it is the network)
	dirty   [2]bool // per rain (World.codes): its store or journal changed since the last conservation check
	store   *shard.Store
	rains   map[string]*rainInfo
	flusher *ledger.Flusher
	queue   []pending       // popped, waiting for the writer
	limbo   []pending       // their commit failed: maybe in the file
	held    map[string]bool // rains not served until the leftover record of an earlier run is cleared

	boots       uint64                          // process starts (an owner's answer to an earlier process is dropped)
	awaiting    map[uint64]pending              // popped, waiting for the owner's reservation, by request
	waiting     []waitClaim                     // found the node empty, waiting for a move
	ownj        []ledger.Record                 // the owners journal (durable): reservations and releases granted
	ownLag      []ledger.Record                 // reservations answered, not yet journaled (planted bug only)
	undelivered map[string]map[string]rain.Move // moves out not acknowledged, per rain and id
	offSale     map[string][2]int64             // cut, neither journaled as a move nor put back: count, amount
}

var quietLog = slog.New(slog.DiscardHandler)

// boot starts the node process over its journal: open, recover, a new flusher.
func (w *World) boot(n *node) error {
	if err := n.j.open(); err != nil {
		return fmt.Errorf("journal open: %w", err)
	}
	n.up, n.store, n.rains, n.queue, n.limbo, n.held = true, shard.New(), map[string]*rainInfo{}, nil, nil, map[string]bool{}
	n.boots++
	n.awaiting, n.ownLag, n.undelivered, n.offSale = map[uint64]pending{}, nil, map[string]map[string]rain.Move{}, nil
	n.waiting = nil
	n.flusher = ledger.NewFlusherTo(source{n.j}, sink{w, n.idx}, ledger.FlusherOptions{MaxBatch: w.flushBatch,
		MinGap: -1, Logger: quietLog})
	if err := w.recover(n); err != nil {
		return err
	}
	return w.sideServe(n)
}

// crash ends the node process: everything but the journal's durable part is gone.
func (n *node) crash() {
	n.up, n.store, n.rains, n.flusher, n.queue, n.limbo, n.held = false, nil, nil, nil, nil, nil, nil
	n.awaiting, n.ownLag, n.undelivered, n.offSale, n.waiting = nil, nil, nil, nil, nil
	n.j.mem = nil
}

// recover mirrors node.recover.
func (w *World) recover(n *node) error {
	rec, err := n.j.mem.Recover()
	if err != nil {
		return err
	}
	for _, m := range rec.Rains {
		n.rains[m.Code] = &rainInfo{meta: m, epochs: map[uint64]bool{}}
	}
	if err := w.recoverWindows(n, rec); err != nil {
		return err
	}
	if !w.cfg.Bugs.SkipUserRebuild { // the claims journal's counts plus the reservations granted (node.openOwners)
		users := map[string]map[uint64]int{}
		for code, us := range rec.Users {
			users[code] = maps.Clone(us)
		}
		for code, net := range n.ownersGranted() {
			if users[code] == nil {
				users[code] = map[uint64]int{}
			}
			for u, k := range net {
				users[code][u] += k
			}
		}
		for _, code := range slices.Sorted(mapsKeys(users)) {
			n.store.RestoreUsers(code, users[code])
		}
	}
	for _, code := range slices.Sorted(mapsKeys(n.rains)) {
		if err := n.applyWindow(n.rains[code]); err != nil {
			return err
		}
		if n.mustClearLeftover(code, w.now) && !w.cfg.Bugs.SkipLeftoverHold {
			n.held[code] = true
		}
	}
	return nil
}

// mustClearLeftover mirrors node.mustClearLeftover: the rain may still pay claims here while a
// leftover record of an earlier run may be in Redis.
func (n *node) mustClearLeftover(code string, now int64) bool {
	ri := n.rains[code]
	if ri == nil || !ri.meta.LeftoverRecorded || ri.meta.CompactedAt != 0 {
		return false
	}
	p, ok := n.store.Progress(code, now)
	return ok && !p.Finished
}

// noteLeftoverRecorded mirrors node.noteLeftoverRecorded.
func (n *node) noteLeftoverRecorded(code string, recorded bool) error {
	ri := n.rains[code]
	if ri == nil || ri.meta.LeftoverRecorded == recorded {
		return nil
	}
	m := ri.meta
	m.LeftoverRecorded = recorded
	if err := n.j.putRain(m); err != nil {
		return err
	}
	ri.meta = m
	return nil
}

func specOf(m ledger.RainMeta) shard.RainSpec {
	return shard.RainSpec{Code: m.Code, MaxPerUser: m.MaxPerUser, MinClaimInterval: int64(m.MinClaimIntervalMS) * 1e6}
}

// newestHeld is the newest epoch of which the rain holds a slice (0: none).
func newestHeld(ri *rainInfo) (e uint64) {
	for k := range ri.slices {
		e = max(e, k.epoch)
	}
	return e
}

func (ri *rainInfo) hold(sl rain.Slice) {
	ri.epochs[sl.Epoch] = true
	if ri.slices == nil {
		ri.slices = map[sliceID]rain.Slice{}
	}
	ri.slices[sliceID{sl.Epoch, sl.ID}] = sl
}

func (ri *rainInfo) forget(epoch uint64) {
	delete(ri.epochs, epoch)
	for k := range ri.slices {
		if k.epoch == epoch {
			delete(ri.slices, k)
		}
	}
}

func (n *node) applyWindow(ri *rainInfo) error {
	m := ri.meta
	if m.Epoch != 0 && ri.epochs[m.Epoch] {
		if err := n.store.Start(m.Code, m.Epoch, m.StartsAt, m.EndsAt); err != nil {
			return err
		}
	}
	if m.StoppedAt != 0 {
		n.store.Stop(m.Code, m.StoppedAt)
	}
	return nil
}

// Errors of the lifecycle calls, as node.go's (the coordinator treats a conflict as a refusal).
var (
	errUnknownRain = errors.New("unknown rain")
	errConflict    = errors.New("conflicts with rain's state")
)

// assign mirrors node.assign: the slice durably, then generated and added to the store.
func (n *node) assign(rules ledger.RainMeta, sl rain.Slice, bugs Bugs) error {
	ri := n.rains[sl.Code]
	if ri != nil {
		if held, ok := ri.slices[sliceID{sl.Epoch, sl.ID}]; ok {
			if held == sl {
				return nil
			}
			return fmt.Errorf("%w: slice held with other content", errConflict)
		}
	}
	switch {
	case ri != nil && sl.Epoch <= ri.meta.MinEpoch:
		return fmt.Errorf("%w: epoch %d was abandoned", errConflict, sl.Epoch)
	case ri != nil && ri.meta.Epoch != 0 && ri.meta.Epoch != sl.Epoch:
		return fmt.Errorf("%w: rain already serves epoch %d", errConflict, ri.meta.Epoch)
	}
	amounts, err := rain.Generate(sl)
	if err != nil {
		return err
	}
	if ri == nil || ri.meta.MaxPerUser == 0 {
		m := ledger.RainMeta{Code: rules.Code, MaxPerUser: rules.MaxPerUser, MinClaimIntervalMS: rules.MinClaimIntervalMS,
			Holders: rules.Holders}
		if ri != nil {
			m.MinEpoch = ri.meta.MinEpoch
		}
		if err := n.j.putRain(m); err != nil {
			return err
		}
		ri = &rainInfo{meta: m, epochs: map[uint64]bool{}}
		n.rains[m.Code] = ri
	} else if !bugs.HoldersOfFirstPrepare && ri.meta.Epoch == 0 && len(rules.Holders) > 0 &&
		!slices.Equal(ri.meta.Holders, rules.Holders) && newestHeld(ri) <= sl.Epoch {
		m := ri.meta // node.assign: a newer prepare's holders are the rain's
		m.Holders = rules.Holders
		if err := n.j.putRain(m); err != nil {
			return err
		}
		ri.meta = m
	}
	if err := n.j.putSlice(sl); err != nil {
		return err
	}
	if err := n.store.AddSlice(specOf(ri.meta), sl, amounts, nil); err != nil {
		return fmt.Errorf("%w: %v", errConflict, err)
	}
	ri.hold(sl)
	return nil
}

// start mirrors node.start.
func (n *node) start(code string, epoch uint64, startsAt, endsAt int64) error {
	ri := n.rains[code]
	switch {
	case ri == nil:
		return errUnknownRain
	case ri.meta.Epoch == epoch:
		return nil
	case ri.meta.Epoch != 0:
		return fmt.Errorf("%w: already serving epoch %d", errConflict, ri.meta.Epoch)
	case !ri.epochs[epoch]:
		return fmt.Errorf("%w: no slice of epoch %d here", errUnknownRain, epoch)
	}
	m := ri.meta
	m.Epoch, m.StartsAt, m.EndsAt = epoch, startsAt, endsAt
	if err := n.j.putRain(m); err != nil {
		return err
	}
	ri.meta = m
	for _, e := range slices.Sorted(mapsKeys(ri.epochs)) {
		if e != epoch {
			_ = n.j.dropSlices(code, e) // as node.start: logged, not fatal
			ri.forget(e)
		}
	}
	return n.store.Start(code, epoch, startsAt, endsAt)
}

// stop mirrors node.stop.
func (n *node) stop(code string, at int64) error {
	ri := n.rains[code]
	if ri == nil {
		return errUnknownRain
	}
	if ri.meta.StoppedAt != 0 && ri.meta.StoppedAt <= at {
		return nil
	}
	m := ri.meta
	m.StoppedAt = at
	if err := n.j.putRain(m); err != nil {
		return err
	}
	ri.meta = m
	n.store.Stop(code, at)
	return nil
}

// discard mirrors node.discard.
func (n *node) discard(code string, epoch uint64) error {
	ri := n.rains[code]
	if ri == nil {
		ri = &rainInfo{meta: ledger.RainMeta{Code: code}, epochs: map[uint64]bool{}}
	}
	if ri.meta.Epoch == epoch {
		return fmt.Errorf("%w: epoch %d is being served", errConflict, epoch)
	}
	if epoch > ri.meta.MinEpoch {
		m := ri.meta
		m.MinEpoch = epoch
		if err := n.j.putRain(m); err != nil {
			return err
		}
		ri.meta = m
		n.rains[code] = ri
	}
	if err := n.j.dropSlices(code, epoch); err != nil {
		return err
	}
	n.store.DropEpoch(code, epoch)
	ri.forget(epoch)
	return nil
}

// settle mirrors node.settle.
func (n *node) settle(code string) error {
	ri := n.rains[code]
	if ri == nil {
		return errUnknownRain
	}
	if ri.meta.Settled {
		return nil
	}
	m := ri.meta
	m.Settled = true
	if err := n.j.putRain(m); err != nil {
		return err
	}
	ri.meta = m
	return nil
}

// journalFailed mirrors node.journalFailed: never written, released; a failed commit, limbo.
func (w *World) journalFailed(n *node, code string, p pending, err error) {
	if errors.Is(err, ledger.ErrUnavailable) || !errors.Is(err, ledger.ErrCommit) || w.cfg.Bugs.ReleaseReached {
		n.store.Release([]byte(code), p.user, p.claim)
		return
	}
	n.limbo = append(n.limbo, p)
}

// repair mirrors node.repair: reopen, keep the limbo claims that reached the file, release
// the rest.
func (w *World) repair(n *node) error {
	found, err := n.j.reopen()
	if err != nil {
		return err
	}
	type key struct {
		epoch        uint64
		slice, index uint32
	}
	present := map[key]bool{}
	for _, r := range found {
		present[key{r.Epoch, r.Slice, r.Index}] = true
	}
	for _, l := range n.limbo {
		if !present[key{l.claim.Epoch, l.claim.Slice, l.claim.Index}] {
			n.store.Release([]byte(l.code), l.user, l.claim)
		}
	}
	n.limbo = nil
	return nil
}

// inflight counts and sums the packets popped and not (yet) journaled.
func (n *node) inflight(code string) (count, amount int64) {
	for _, ps := range [][]pending{n.queue, n.limbo} {
		for _, p := range ps {
			if p.code == code {
				count, amount = count+1, amount+p.claim.Amount
			}
		}
	}
	for _, p := range n.awaiting {
		if p.code == code {
			count, amount = count+1, amount+p.claim.Amount
		}
	}
	o := n.offSale[code]
	return count + o[0], amount + o[1]
}

// flushPass runs one flusher step on the rain.
func (n *node) flushPass(code string, recheck bool) (done bool, err error) {
	if recheck {
		n.flusher.Recheck(code)
	}
	return n.flusher.Pass(context.Background(), code)
}
