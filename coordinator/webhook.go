package coordinator

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"redrain/gossip"
	"redrain/rain"
)

// The lifecycle webhook (Options.Webhook): on every transition of a rain — prepared, raining,
// finished, cancelled, settled — the coordinator POSTs a small JSON body to the platform, signed
// with HMAC-SHA256 under Options.WebhookSecret, for platforms that tell viewers through their
// own IM. It is never on the admin request path: a transition only puts the body in a bounded
// queue (a full queue drops it, logged and counted), and one goroutine delivers the queue in
// order, retrying each body with exponential backoff a bounded number of times. A dead or slow
// webhook therefore costs the coordinator at most the queue's memory.
//
// Signature: header X-Redrain-Timestamp carries the unix seconds of the attempt, and
// X-Redrain-Signature is "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)). The
// receiver recomputes it over the raw body, compares in constant time, and refuses timestamps
// far from its clock (replays). The body's "id" names the transition (the viewers' event id) so
// a receiver dedups retries by it.

// Headers of a webhook request.
const (
	HeaderWebhookSignature = "X-Redrain-Signature"
	HeaderWebhookTimestamp = "X-Redrain-Timestamp"
)

// Bounds of the webhook.
const (
	WebhookQueue       = 1024            // bodies waiting; a transition beyond it is dropped (logged)
	WebhookAttempts    = 8               // attempts per body (the first included)
	WebhookTimeout     = 5 * time.Second // one attempt
	webhookFirstDelay  = 500 * time.Millisecond
	webhookMaxDelay    = 30 * time.Second
	MinWebhookSecret   = 16 // bytes
	maxWebhookResponse = 4 << 10
)

// WebhookEvent is the JSON body of a webhook request.
type WebhookEvent struct {
	ID          string  `json:"id"` // "<unix ns of the transition>.<status>.<code>": the same id as the viewers' event
	Status      string  `json:"status"`
	At          string  `json:"at"` // RFC 3339, when the transition happened
	Code        string  `json:"code"`
	AnchorID    int64   `json:"anchor_id"`
	RoomID      int64   `json:"room_id"`
	TotalAmount int64   `json:"total_amount"`
	TotalCount  int64   `json:"total_count"`
	StartedAt   *string `json:"started_at"`
	EndsAt      *string `json:"ends_at"`
}

// SignWebhook is the X-Redrain-Signature value of body sent at ts (unix seconds).
func SignWebhook(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// webhookDelay is the wait before attempt n (n >= 1 is the first retry): first, doubled each
// time, at most maxDelay.
func webhookDelay(n int, first, maxDelay time.Duration) time.Duration {
	d := first
	for i := 1; i < n && d < maxDelay; i++ {
		d *= 2
	}
	return min(d, maxDelay)
}

// webhook delivers transitions to Options.Webhook.
type webhook struct {
	url      string
	secret   []byte
	client   *http.Client
	queue    chan []byte
	first    time.Duration // first retry delay
	attempts int
	log      *slog.Logger

	delivered, failed, dropped atomic.Uint64
}

func newWebhook(o Options) *webhook {
	return &webhook{url: o.Webhook, secret: []byte(o.WebhookSecret), client: &http.Client{Timeout: WebhookTimeout},
		queue: make(chan []byte, WebhookQueue), first: o.WebhookRetry, attempts: WebhookAttempts, log: o.Logger}
}

// checkWebhookURL accepts an absolute http(s) URL with a host.
func checkWebhookURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http:// or https:// URL with a host")
	}
	return nil
}

// statusOfKind names the transition a news kind stands for.
func statusOfKind(kind string) string {
	switch kind {
	case gossip.KindPrepared:
		return "prepared"
	case gossip.KindStarted:
		return "raining"
	case gossip.KindStopped:
		return "finished"
	case gossip.KindCancelled:
		return "cancelled"
	}
	return kind
}

// hook queues the webhook of r's transition named by kind (a gossip kind, or "settled"); it never
// blocks. No-op without a webhook.
func (c *Coordinator) hook(r *record, kind string) {
	if c.webhook == nil {
		return
	}
	status := statusOfKind(kind)
	at := r.StoppedAt
	switch status {
	case "prepared":
		at = r.PreparedAt
	case "raining":
		at = r.StartedAt
	case "settled":
		at = r.SettledAt
	}
	ev := WebhookEvent{ID: strconv.FormatInt(at, 10) + "." + status + "." + r.Code, Status: status,
		At: rain.FormatTime(at), Code: r.Code, AnchorID: r.Config.AnchorID, RoomID: r.Config.RoomID,
		TotalAmount: r.Config.TotalAmount, TotalCount: r.Config.TotalCount}
	if r.StartedAt != 0 {
		s, e := rain.FormatTime(r.StartedAt), rain.FormatTime(r.EndsAt)
		ev.StartedAt, ev.EndsAt = &s, &e
	}
	c.webhook.enqueue(ev)
}

func (w *webhook) enqueue(ev WebhookEvent) {
	body, _ := json.Marshal(ev) // plain struct: cannot fail
	select {
	case w.queue <- body:
	default:
		w.dropped.Add(1)
		w.log.Warn("webhook queue full: transition dropped", "id", ev.ID, "queue", WebhookQueue)
	}
}

// run delivers the queue in order until ctx ends.
func (w *webhook) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case body := <-w.queue:
			w.deliver(ctx, body)
		}
	}
}

// deliver tries body up to attempts times, waiting webhookDelay between attempts; any 2xx ends it.
func (w *webhook) deliver(ctx context.Context, body []byte) {
	var err error
	for n := 0; n < w.attempts; n++ {
		if n > 0 {
			t := time.NewTimer(webhookDelay(n, w.first, webhookMaxDelay))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if err = w.post(ctx, body); err == nil {
			w.delivered.Add(1)
			return
		}
	}
	w.failed.Add(1)
	w.log.Warn("webhook gave up", "attempts", w.attempts, "err", err, "body", string(body))
}

func (w *webhook) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "redrain-coordinator")
	req.Header.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderWebhookSignature, SignWebhook(w.secret, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	var buf [maxWebhookResponse]byte
	n, _ := resp.Body.Read(buf[:])
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(buf[:n]))
	}
	return nil
}
