package node

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/internal/logpace"
	"redrain/internal/wire"
)

// Reservations to one owner travel in batches, as claims do to the journal: a claim queues its
// reservation on the owner's link and waits; up to maxSenders senders per link each take what
// is queued (up to maxReserveBatch of one rain), send it as one signed call and answer each
// waiter. There is no timer: an idle link sends a lone reservation at once, and batches grow with
// load, so one HTTP exchange, one signature and one nonce serve many claims.

// Limits of the reservation batches.
const (
	maxReserveBatch = 256 // users in one reserve call
	maxSenders      = 2   // reserve calls in flight to one owner
)

// Results of one reservation, as the owner answers them in "results" (0: no answer).
const (
	resultNone      = 0
	resultReserved  = 1
	resultUserLimit = 2
	resultRefused   = 3 // not this user's owner, rain unknown there, or its journal failed
)

// reservation is one claim waiting for its owner's answer: a reservation, or (forward) the
// whole claim, made by the owner (owner_forward.go).
type reservation struct {
	ro      *rainOwners
	user    uint64
	at      int64 // unix ns queued
	result  int
	forward bool
	status  int    // forward: the owner's answer (0: none)
	body    []byte // forward: its body
	done    chan struct{}
}

var reservationPool = sync.Pool{New: func() any { return &reservation{done: make(chan struct{}, 1)} }}

// reserveWith queues a reservation of user on l and waits for its result (at most about two
// OwnerTimeouts: queued, then sent).
func (n *Node) reserveWith(l *ownerLink, ro *rainOwners, user uint64, now int64) int {
	r := reservationPool.Get().(*reservation)
	r.ro, r.user, r.at, r.result, r.forward = ro, user, now, resultNone, false
	n.queueOn(l, r)
	res := r.result
	r.ro = nil
	reservationPool.Put(r)
	return res
}

// queueOn queues r on l, starts a sender if fewer than maxSenders run, and waits until r is
// answered.
func (n *Node) queueOn(l *ownerLink, r *reservation) {
	l.mu.Lock()
	l.queue = append(l.queue, r)
	start := l.senders < maxSenders
	if start {
		l.senders++
	}
	l.mu.Unlock()
	if start {
		go n.sendReservations(l)
	}
	<-r.done
}

// sendReservations sends what l has queued, batch after batch, until the queue is empty.
func (n *Node) sendReservations(l *ownerLink) {
	var batch, sent []*reservation
	for {
		l.mu.Lock()
		batch = l.take(batch[:0])
		if len(batch) == 0 {
			l.senders--
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		if batch[0].forward {
			sent = n.callForward(l, batch, sent[:0])
		} else {
			sent = n.callReserve(l, batch, sent[:0])
		}
		for _, r := range batch { // each exactly once: its waiter may reuse it at once
			r.done <- struct{}{}
		}
	}
}

// take moves up to maxReserveBatch queued reservations of the first one's rain and kind
// (reservations or forwarded claims) into batch. The caller holds l.mu.
func (l *ownerLink) take(batch []*reservation) []*reservation {
	if len(l.queue) == 0 {
		return batch
	}
	ro, fwd := l.queue[0].ro, l.queue[0].forward
	kept := l.queue[:0]
	for _, r := range l.queue {
		if r.ro == ro && r.forward == fwd && len(batch) < maxReserveBatch {
			batch = append(batch, r)
		} else {
			kept = append(kept, r)
		}
	}
	clear(l.queue[len(kept):])
	l.queue = kept
	return batch
}

// reserveAnswer is the owner's answer to a reserve call: one result per user, in order.
type reserveAnswer struct {
	Results []int `json:"results"`
}

// callReserve sends one batch of one rain and sets each reservation's result; those queued
// longer than OwnerTimeout are not sent (resultNone: their claims fail closed). sent is scratch
// space for the ones sent, returned for reuse; batch is not modified.
func (n *Node) callReserve(l *ownerLink, batch, sent []*reservation) []*reservation {
	now := time.Now()
	body, sent := n.usersBody(batch, sent, now)
	if len(sent) == 0 {
		return sent
	}
	status, answer := n.postOwner(l, sent[0].ro.reserve, body, now, n.opts.OwnerTimeout)
	var a reserveAnswer
	if status != 200 || json.Unmarshal(answer, &a) != nil || len(a.Results) != len(sent) {
		return sent
	}
	for i, res := range a.Results {
		sent[i].result = res
	}
	return sent
}

// usersBody is the {"users":[...]} body of a batch's reservations or forwarded claims, leaving
// out those queued longer than OwnerTimeout (their claims fail closed), and sent, the ones in it.
func (n *Node) usersBody(batch, sent []*reservation, now time.Time) ([]byte, []*reservation) {
	body := append(make([]byte, 0, 16+21*len(batch)), `{"users":[`...)
	for _, r := range batch {
		if now.UnixNano()-r.at > int64(n.opts.OwnerTimeout) {
			continue
		}
		if len(sent) > 0 {
			body = append(body, ',')
		}
		body = strconv.AppendUint(body, r.user, 10)
		sent = append(sent, r)
	}
	return append(body, "]}"...), sent
}

// postOwner makes one signed call to an owner; status 0 means no answer within timeout. The
// answer's body is a copy.
func (n *Node) postOwner(l *ownerLink, path string, body []byte, now time.Time, timeout time.Duration) (int, []byte) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	ts, nonce, sig := n.owner.signer.Sign(fasthttp.MethodPost, path, body, now)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(path)
	req.Header.SetHost(l.addr)
	req.Header.Set(wire.HeaderTime, ts)
	req.Header.Set(wire.HeaderNonce, nonce)
	req.Header.Set(wire.HeaderSignature, sig)
	req.Header.SetContentTypeBytes(contentJSON)
	req.SetBody(body)
	err := l.hc.DoTimeout(req, resp, timeout)
	if err != nil || resp.StatusCode() != 200 {
		n.ownerFailed(l, path, resp.StatusCode(), resp.Body(), err)
	}
	if err != nil {
		return 0, nil
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...)
}

// ownerFailed logs a failed owner call, at most one line a second.
func (n *Node) ownerFailed(l *ownerLink, path string, status int, body []byte, err error) {
	if now := time.Now(); n.owner.failLog.Allow(now) {
		n.log.Warn("owner call failed", "owner", l.addr, "path", path, "status", status, "err", err,
			"answer", logpace.Clip(string(body), logpace.MaxField), "failed_since_last_line", n.owner.failLog.Suppressed())
	}
}
