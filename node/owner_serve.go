package node

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/internal/wire"
	"redrain/ledger"
	"redrain/rain"
	"redrain/shard"
)

// The owner's side of per-user owners (see owner.go): the reserve and release endpoints, the
// owners journal and its replay at restart.

// OwnerJournal is what the node needs of the journal of the reservations it granted as an
// owner: *ledger.Journal on <data>/owners.db (its own file, group commit and fsync like the
// claims journal, never flushed to Redis), or a ledger.MemJournal for a node built from fakes.
// A record is one reservation (Index reserveMark) or release (Index releaseMark) of one user,
// Amount 1.
type OwnerJournal interface {
	NodeID() string
	Append(r ledger.Record) (seq uint64, err error)
	Scan(code string, afterSeq uint64, max int, fn func(seq uint64, r ledger.Record) bool) error
	AllTotals() map[string]ledger.Totals
	Failed() bool
	Reopen() ([]ledger.Record, error)
	Close() error
}

// Marks of an owners-journal record, in its Index.
const (
	reserveMark uint32 = 0
	releaseMark uint32 = 1
)

// ownersWALSize is the largest write-ahead log file of the owners journal: its records are few
// (one per claim whose owner is another node) and small.
const ownersWALSize = 4 << 20

// ownerCall is the body of a reserve or release call.
type ownerCall struct {
	User uint64 `json:"user"`
}

var (
	errNotOwner      = newAPIError(409, "conflict", "this node is not the owner of this user for this rain")
	errOwnerBadArg   = newAPIError(400, "bad_request", `body must be {"user":N} with N > 0`)
	errReserveBadArg = newAPIError(400, "bad_request", `body must be {"users":[N,...]}: 1..256 users > 0`)
)

// handleOwner serves POST /internal/v1/rains/{code}/reserve, /release and /claims (the signature is
// already checked); false when path is not one of them.
func (n *Node) handleOwner(ctx *fasthttp.RequestCtx, path string) bool {
	rest, ok := strings.CutPrefix(path, "/internal/v1/rains/")
	if !ok {
		return false
	}
	code, action, ok := strings.Cut(rest, "/")
	if !ok || !rain.ValidCode(code) || (action != "reserve" && action != "release" && action != "claims") {
		return false
	}
	if !ctx.IsPost() {
		errMethodPost.write(ctx)
		return true
	}
	ro := n.ownersOf([]byte(code))
	if action == "reserve" || action == "claims" {
		var b reserveBatch
		switch err := decodeStrict(ctx.Request.Body(), &b); {
		case err != nil || !b.valid():
			errReserveBadArg.write(ctx)
		case ro == nil:
			errUnknownRain.write(ctx)
		case action == "claims":
			n.serveForward(ctx, ro, code, b.Users)
		default:
			n.serveReserve(ctx, ro, b.Users)
		}
		return true
	}
	var c ownerCall
	switch err := decodeStrict(ctx.Request.Body(), &c); {
	case err != nil || c.User == 0:
		errOwnerBadArg.write(ctx)
	case ro == nil:
		errUnknownRain.write(ctx)
	case !ro.owns(c.User):
		errNotOwner.write(ctx)
	default:
		n.serveRelease(ctx, code, c.User)
	}
	return true
}

// reserveBatch is the body of a reserve call: the users to count, 1..maxReserveBatch of them.
type reserveBatch struct {
	Users []uint64 `json:"users"`
}

func (b reserveBatch) valid() bool {
	return len(b.Users) > 0 && len(b.Users) <= maxReserveBatch && !slices.Contains(b.Users, 0)
}

// owns reports whether this node is user's owner. A node that is asked for a user it does not
// own (the holders disagree) refuses rather than count the user in two places.
func (ro *rainOwners) owns(user uint64) bool { return ro.self >= 0 && ro.owner(user) == ro.self }

// serveReserve counts one claim of each user paid elsewhere, durably before it answers yes:
// the reservations are journaled concurrently, so they share the owners journal's commits.
// It answers {"results":[...]}, one result per user in order (resultReserved, resultUserLimit,
// resultRefused).
func (n *Node) serveReserve(ctx *fasthttp.RequestCtx, ro *rainOwners, users []uint64) {
	results := make([]int, len(users))
	for i, u := range users {
		results[i] = n.countUser(ro, u)
	}
	var wg sync.WaitGroup
	last := -1 // journaled in this goroutine, the others each in its own
	for i := range users {
		if results[i] != resultReserved {
			continue
		}
		if last >= 0 {
			wg.Add(1)
			go func(j int) { defer wg.Done(); results[j] = n.journalReservation(ro, users[j]) }(last)
		}
		last = i
	}
	if last >= 0 {
		results[last] = n.journalReservation(ro, users[last])
	}
	wg.Wait()
	body := append(make([]byte, 0, 16+2*len(results)), `{"results":[`...)
	for i, r := range results {
		if i > 0 {
			body = append(body, ',')
		}
		body = strconv.AppendInt(body, int64(r), 10)
	}
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	ctx.SetBody(append(body, "]}"...))
}

// countUser raises user's count in the store unless it is at max_per_user.
func (n *Node) countUser(ro *rainOwners, user uint64) int {
	if !ro.owns(user) {
		return resultRefused
	}
	switch err := n.store.ReserveUser(ro.code, user); {
	case errors.Is(err, shard.ErrUserLimit):
		return resultUserLimit
	case err != nil:
		return resultRefused
	}
	return resultReserved
}

// journalReservation makes a count countUser took durable, or takes it back when its record was
// never written.
func (n *Node) journalReservation(ro *rainOwners, user uint64) int {
	if err := n.appendOwner(ro.code, user, reserveMark); err != nil {
		if !errors.Is(err, ledger.ErrCommit) || errors.Is(err, ledger.ErrUnavailable) {
			n.store.UnreserveUser(ro.code, user) // never written
		} // else it may be in the file: the count stays (one short at worst, never past the cap)
		return resultRefused
	}
	return resultReserved
}

// serveRelease takes back a reservation whose claim was not paid, durably first.
func (n *Node) serveRelease(ctx *fasthttp.RequestCtx, code string, user uint64) {
	if err := n.appendOwner(code, user, releaseMark); err != nil {
		errJournal.write(ctx)
		return
	}
	n.store.UnreserveUser(code, user)
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	ctx.SetBodyString(`{"ok":true}`)
}

// appendOwner journals a reservation or release; a failed journal is reopened first, at most
// once per RepairInterval (what a failed commit wrote is then in the file or not: the counts in
// memory are never below it).
func (n *Node) appendOwner(code string, user uint64, mark uint32) error {
	j := n.owner.journal
	now := time.Now().UnixNano()
	if j.Failed() {
		if last := n.owner.repairAt.Load(); now-last >= int64(RepairInterval) && n.owner.repairAt.CompareAndSwap(last, now) {
			if _, err := j.Reopen(); err != nil {
				n.log.Warn("owners journal still unavailable", "err", err)
			}
		}
	}
	_, err := j.Append(ledger.Record{Code: code, User: user, Amount: 1, Index: mark, UnixNano: now})
	return err
}

// openOwners opens the owners journal (Options.OwnerJournal, else <data>/owners.db, else a
// MemJournal for a node built from fakes with no data dir) and restores every rain's per-user
// counts: users (replayed from the claims journal) plus the reservations granted minus those
// released. Called by recover, before the node serves.
func (n *Node) openOwners(users map[string]map[uint64]int) error {
	if err := n.openOwnersJournal(); err != nil {
		return err
	}
	n.owner.signer = wire.NewSigner(n.opts.Secret)
	n.owner.rains.Store(&map[string]*rainOwners{})
	n.owner.links.Store(&map[string]*ownerLink{})
	granted, err := replayOwners(n.owner.journal)
	if err != nil {
		n.owner.journal.Close()
		return fmt.Errorf("replay owners journal: %w", err)
	}
	for code, net := range granted {
		if users[code] == nil {
			users[code] = map[uint64]int{}
		}
		for u, k := range net {
			users[code][u] += k
		}
	}
	for code, us := range users {
		n.store.RestoreUsers(code, us)
	}
	return nil
}

func (n *Node) openOwnersJournal() error {
	if n.owner.journal = n.opts.OwnerJournal; n.owner.journal != nil {
		return nil
	}
	if n.opts.DataDir == "" {
		n.owner.journal = ledger.NewMemJournal(n.opts.ID, 0)
		return nil
	}
	jo := ledger.DefaultOptions(filepath.Join(n.opts.DataDir, "owners.db"), n.opts.ID)
	jo.Logger = n.log.With("journal", "owners")
	jo.WALSize = ownersWALSize
	if n.opts.WALSize != 0 {
		jo.WALSize = min(n.opts.WALSize, ownersWALSize)
	}
	j, err := ledger.Open(jo)
	if err != nil {
		return fmt.Errorf("node: open owners journal: %w", err)
	}
	n.owner.journal = j
	return nil
}

// replayOwners returns, per rain and user, the reservations granted minus those released (never
// below zero).
func replayOwners(j OwnerJournal) (map[string]map[uint64]int, error) {
	out := map[string]map[uint64]int{}
	for code := range j.AllTotals() {
		m := map[uint64]int{}
		err := j.Scan(code, 0, 0, func(_ uint64, r ledger.Record) bool {
			if r.Index == reserveMark {
				m[r.User]++
			} else if m[r.User] > 0 {
				m[r.User]--
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("rain %s: %w", code, err)
		}
		out[code] = m
	}
	return out, nil
}

// closeOwners closes the owners journal and the links (Close, after the claims journal).
func (n *Node) closeOwners() error {
	for _, l := range *n.owner.links.Load() {
		l.hc.CloseIdleConnections()
	}
	if n.owner.journal == nil {
		return nil
	}
	return n.owner.journal.Close()
}
