package node

import (
	"bytes"
	"errors"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/gossip"
	"redrain/ledger"
)

// The claiming side of per-user owners (see owner.go).

// errOwnerUnavailable is the claim answer when the user's owner cannot count the claim: SPEC's
// fail-closed 503 journal_unavailable (the user's count is part of what must be durable before
// a packet is handed out), with its own message. Clients retry a 503 as they do any other.
var errOwnerUnavailable = newAPIError(503, "journal_unavailable",
	"the node that counts this user's packets of this rain cannot be reached; no packet was handed out, try again")

// Limits of the owner calls.
const (
	// DefaultOwnerTimeout bounds one reserve call: past it the claim fails closed.
	DefaultOwnerTimeout = 2 * time.Second
	// ownerConns bounds the keep-alive connections to one owner (one per claim in flight).
	ownerConns = 1024
	// linkRefresh is how often the owners' addresses and liveness are re-read from gossip.
	linkRefresh = time.Second
	// linkMissRefresh is how often they are re-read while an owner is missing from them.
	linkMissRefresh = 50 * time.Millisecond
	// maxReleases bounds the release calls in flight; past it a release is dropped (the user is
	// only left one packet short).
	maxReleases = 256
)

// ownerLink is a keep-alive client to one member's internal API, and the reservations waiting
// to be sent to it (owner_batch.go).
type ownerLink struct {
	addr string
	hc   *fasthttp.HostClient
	live atomic.Bool // alive or suspect in gossip: a dead or departed owner fails at once

	mu      sync.Mutex
	queue   []*reservation
	senders int // batches being sent; at most maxSenders
}

// askOwner reserves a claim of user with the user's owner when that is another node. ok false:
// the claim must not be paid; answer e and put the packet back.
func (n *Node) askOwner(code []byte, user uint64, now int64) (e apiError, ok bool) {
	ro := n.ownersOf(code)
	if ro == nil {
		return apiError{}, true // not held: the store already refused it
	}
	i := ro.owner(user)
	if i < 0 || i == ro.self {
		return apiError{}, true
	}
	result := resultNone
	l := n.waitLink(ro.IDs()[i], now)
	if l != nil && l.live.Load() {
		result = n.reserveWith(l, ro, user, now)
	}
	switch result {
	case resultReserved:
		n.owner.calls.WithLabelValues("reserve", "ok").Inc()
		return apiError{}, true
	case resultUserLimit:
		n.owner.calls.WithLabelValues("reserve", "user_limit").Inc()
		n.metrics.claimUserLimit.Inc()
		return errUserLimit, false
	default:
		return n.ownerUnavailable("reserve", "claim refused: its user's owner did not count it", ro.IDs()[i], l,
			"result", result), false
	}
}

// ownerUnavailable counts and logs (paced) a claim refused because its user's owner, id, did not
// answer a call (reserve or forward) over l (nil: gossip has not shown it), with extra log
// fields, and returns the claim's answer: fail closed.
func (n *Node) ownerUnavailable(call, msg, id string, l *ownerLink, extra ...any) apiError {
	n.owner.calls.WithLabelValues(call, "unavailable").Inc()
	n.metrics.claimJournal.Inc()
	if t := time.Now(); n.owner.failLog.Allow(t) {
		n.log.Warn(msg, append([]any{"owner", id, "known", l != nil, "live", l != nil && l.live.Load(),
			"failed_since_last_line", n.owner.failLog.Suppressed()}, extra...)...)
	}
	return errOwnerUnavailable
}

// ownerJournalFailed releases the owner's reservation of a claim whose record was never
// written (the journal refused it before writing). A claim whose own commit failed may be in
// the file: its reservation stays (the user may be one packet short; never past the cap).
func (n *Node) ownerJournalFailed(code []byte, user uint64, err error) {
	if !errors.Is(err, ledger.ErrUnavailable) && errors.Is(err, ledger.ErrCommit) {
		return
	}
	ro := n.ownersOf(code)
	if ro == nil {
		return
	}
	i := ro.owner(user)
	if i < 0 || i == ro.self {
		return // the store's Release took the count back
	}
	l := n.linkTo(ro.IDs()[i], time.Now().UnixNano())
	if l == nil {
		n.owner.calls.WithLabelValues("release", "unavailable").Inc()
		return
	}
	if n.owner.releases.Add(1) > maxReleases {
		n.owner.releases.Add(-1)
		n.owner.calls.WithLabelValues("release", "dropped").Inc()
		return
	}
	go func() {
		defer n.owner.releases.Add(-1)
		result := "ok"
		if n.callOwner(l, ro.release, user) != 200 { // once: a retry could be counted twice
			result = "unavailable"
		}
		n.owner.calls.WithLabelValues("release", result).Inc()
	}()
}

// callOwner makes one signed {"user":N} call to an owner and returns its HTTP status (0: no
// answer within Options.OwnerTimeout, or the owner is down in gossip).
func (n *Node) callOwner(l *ownerLink, path string, user uint64) int {
	if !l.live.Load() {
		return 0
	}
	var buf [40]byte
	body := strconv.AppendUint(append(buf[:0], `{"user":`...), user, 10)
	status, _ := n.postOwner(l, path, append(body, '}'), time.Now(), n.opts.OwnerTimeout)
	return status
}

// linkTo returns the client to member id, nil if gossip has not shown it. The members are read
// again every linkRefresh, or every linkMissRefresh while id is missing (a node that just joined).
func (n *Node) linkTo(id string, now int64) *ownerLink {
	if now-n.owner.linksAt.Load() > int64(linkRefresh) {
		n.refreshLinks(now)
	}
	l := (*n.owner.links.Load())[id]
	if l == nil && now-n.owner.linksAt.Load() > int64(linkMissRefresh) {
		n.refreshLinks(now)
		l = (*n.owner.links.Load())[id]
	}
	return l
}

// waitLink is linkTo, waiting up to OwnerTimeout for a member gossip has not shown yet: right
// after a rain starts, a node may not have heard of every other holder (the coordinator saw them
// alive; gossip has not carried them here yet).
func (n *Node) waitLink(id string, now int64) *ownerLink {
	deadline := now + int64(n.opts.OwnerTimeout)
	for {
		if l := n.linkTo(id, now); l != nil || now >= deadline {
			return l
		}
		time.Sleep(linkMissRefresh)
		now = time.Now().UnixNano()
	}
}

// refreshLinks re-reads the members' addresses and states; one caller at a time does it, the
// others go on with the links they have.
func (n *Node) refreshLinks(now int64) {
	if n.cluster == nil || !n.owner.mu.TryLock() {
		return
	}
	defer n.owner.mu.Unlock()
	n.owner.linksAt.Store(now)
	old := *n.owner.links.Load()
	m := maps.Clone(old)
	for _, mb := range n.cluster.Members() {
		if mb.Role != gossip.RoleNode || mb.HTTPAddr == "" || mb.ID == n.opts.ID {
			continue
		}
		l := m[mb.ID]
		if l == nil || l.addr != mb.HTTPAddr {
			l = n.newLink(mb.HTTPAddr)
			m[mb.ID] = l
		}
		l.live.Store(mb.State == gossip.StateAlive || mb.State == gossip.StateSuspect)
	}
	n.owner.links.Store(&m)
}

func (n *Node) newLink(addr string) *ownerLink {
	t := n.opts.OwnerTimeout
	l := &ownerLink{addr: addr, hc: &fasthttp.HostClient{
		Addr:                addr,
		Name:                "redrain-node",
		MaxConns:            ownerConns,
		MaxConnWaitTimeout:  t,
		ReadTimeout:         t + MaxStockWait, // a forwarded claim may wait for stock (owner_forward.go)
		WriteTimeout:        t,
		MaxIdleConnDuration: ownerIdle,
		RetryIfErr:          retryReserve,
	}}
	return l
}

// ownerIdle is how long an idle connection to an owner is kept: under the owner's idle timeout
// (by default its read timeout, 5s), so the owner does not close one as it is reused.
const ownerIdle = time.Second

// retryReserve lets a reserve call that failed on its connection (one the owner closed, say) be
// sent once more: counted twice, it leaves the user a packet short, never one over. A release is
// never sent twice: counted twice, it would pay past the cap. Nor is a forwarded claim: sent
// twice, it would be two claims.
func retryReserve(req *fasthttp.Request, attempts int, _ error) (resetTimeout, retry bool) {
	return false, attempts < 2 && bytes.HasSuffix(req.URI().Path(), []byte("/reserve"))
}
