package node

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Forwarded claims (Options.OwnerHop = OwnerHopForward, the default). A claim that lands on a
// node other than its user's owner is made by the owner: the node sends it on (one signed
// internal call, POST /internal/v1/rains/{code}/claims, batched per owner as reservations are)
// and answers the client with the owner's answer, word for word. The owner pops the packet from
// its own stock (stock moves bring it more), counts the user, journals the claim and answers:
// one journal commit per claim, as on the owner itself, where a reservation (OwnerHopReserve)
// costs two in series (the owner's owners.db, then the claiming node's journal). The identity,
// the token and the per-address limits are checked where the claim landed; the per-user rate
// limit and the cap where the user is counted, the owner.
//
// An owner that cannot be reached, or answers nothing within OwnerTimeout + MaxStockWait (its
// claim may wait for stock), fails the claim closed: 503 journal_unavailable. A forwarded claim
// is never sent twice (a retry would be a second claim); one the owner journaled but whose
// answer was lost on the way back is a claim that never reached its client, which SPEC allows
// (it is credited from the stream like any other).

// forwardAnswer is an owner's answer to a forwarded batch: one answer per user, in order, each
// the status and body the owner would have answered the claim with; status 0 = not made here
// (this node is not the user's owner, or not ready): the claim fails closed.
type forwardAnswer struct {
	Answers []struct {
		Status int             `json:"status"`
		Body   json.RawMessage `json:"body"`
	} `json:"answers"`
}

// forwards makes the claim through user's owner when that is another node and the node
// forwards (OwnerHopForward): it answers ctx and reports true; false leaves the claim to
// claimHere.
func (n *Node) forwards(code []byte, user uint64, ctx *fasthttp.RequestCtx, now int64) bool {
	if n.opts.OwnerHop == OwnerHopReserve {
		return false
	}
	ro := n.ownersOf(code)
	if ro == nil {
		return false
	}
	i := ro.owner(user)
	if i < 0 || i == ro.self {
		return false
	}
	var status int
	var body []byte
	l := n.waitLink(ro.IDs()[i], now)
	if l != nil && l.live.Load() {
		status, body = n.forwardWith(l, ro, user, now)
	}
	if status == 0 {
		n.ownerUnavailable("forward", "claim refused: its user's owner did not make it", ro.IDs()[i], l).write(ctx)
		return true
	}
	n.owner.calls.WithLabelValues("forward", "ok").Inc()
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	ctx.Response.SetBody(body)
	if status == 200 {
		n.metrics.latency.Observe(time.Since(time.Unix(0, now)).Seconds()) // as the client saw it
	}
	return true
}

// forwardWith queues a forwarded claim of user on l and waits for the owner's answer (status 0:
// none).
func (n *Node) forwardWith(l *ownerLink, ro *rainOwners, user uint64, now int64) (int, []byte) {
	r := reservationPool.Get().(*reservation)
	r.ro, r.user, r.at, r.result, r.forward, r.status, r.body = ro, user, now, resultNone, true, 0, nil
	n.queueOn(l, r)
	status, body := r.status, r.body
	r.ro, r.body = nil, nil
	reservationPool.Put(r)
	return status, body
}

// forwardTimeout bounds a forward call: the owner's claim may wait for stock before it commits.
func (n *Node) forwardTimeout() time.Duration { return n.opts.OwnerTimeout + MaxStockWait }

// callForward sends one batch of forwarded claims of one rain and sets each one's answer; like
// callReserve, those queued longer than OwnerTimeout are not sent (they fail closed).
func (n *Node) callForward(l *ownerLink, batch, sent []*reservation) []*reservation {
	now := time.Now()
	body, sent := n.usersBody(batch, sent, now)
	if len(sent) == 0 {
		return sent
	}
	status, answer := n.postOwner(l, sent[0].ro.claims, body, now, n.forwardTimeout())
	if status == 200 {
		readForwardAnswer(answer, sent)
	}
	return sent
}

// readForwardAnswer sets each sent claim's status and body from an owner's answer. An answer
// that is not JSON, or has not one answer per claim, sets none; an answer whose status is not an
// HTTP status or whose body is not a JSON object leaves its claim unanswered (status 0). An
// unanswered claim fails closed.
func readForwardAnswer(answer []byte, sent []*reservation) {
	var a forwardAnswer
	if json.Unmarshal(answer, &a) != nil || len(a.Answers) != len(sent) {
		return
	}
	for i, x := range a.Answers { // Unmarshal checked that the whole answer, each body too, is JSON
		if x.Status >= 200 && x.Status < 600 && len(x.Body) > 0 && x.Body[0] == '{' {
			sent[i].status, sent[i].body = x.Status, x.Body
		}
	}
}

// serveForward makes the forwarded claims of users, each as if it had landed here, concurrently
// (they share the journal's commits), and answers {"answers":[{"status":N,"body":{...}},...]}.
func (n *Node) serveForward(ctx *fasthttp.RequestCtx, ro *rainOwners, code string, users []uint64) {
	type answer struct {
		status int
		body   []byte
	}
	answers := make([]answer, len(users))
	now := time.Now().UnixNano()
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i].status, answers[i].body = n.claimForwarded(ro, code, u, now)
		}()
	}
	wg.Wait()
	out := append(make([]byte, 0, 32+160*len(users)), `{"answers":[`...)
	for i, a := range answers {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"status":`...)
		out = strconv.AppendInt(out, int64(a.status), 10)
		out = append(out, `,"body":`...)
		if a.body == nil {
			out = append(out, "null"...)
		} else {
			out = append(out, a.body...)
		}
		out = append(out, '}')
	}
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	ctx.SetBody(append(out, "]}"...))
}

// claimForwarded makes one forwarded claim: status 0 when this node is not the user's owner or
// is stopping (the claiming node fails it closed), else the claim's answer as handleClaim would
// give it.
func (n *Node) claimForwarded(ro *rainOwners, code string, user uint64, now int64) (int, []byte) {
	if !ro.owns(user) || !n.ready.Load() {
		return 0, nil
	}
	hot, known := (*n.codes.Load())[code]
	if e, ok := n.rainOpen(hot, known); !ok {
		return e.status, e.body
	}
	amount, seq, e, ok := n.claimHere([]byte(code), hot.code, user, now)
	if !ok {
		return e.status, e.body
	}
	return 200, n.appendAnswer(make([]byte, 0, 160), amount, seq)
}
