package coordinator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"redrain/internal/roomevents"
	"redrain/internal/testcluster"
	"redrain/rain"
)

const testWebhookSecret = "webhook-secret-0123456789"

// receiver is a platform's webhook endpoint: it refuses the first failFirst attempts of every
// delivery (503), then checks the signature as a platform would and keeps the body.
type receiver struct {
	t         *testing.T
	failFirst int
	mu        sync.Mutex
	attempts  map[string]int // delivery id -> attempts seen
	got       []WebhookEvent // accepted, in order
	badSig    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ev WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "bad json", 400)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts[ev.ID]++
	if rc.attempts[ev.ID] <= rc.failFirst {
		http.Error(w, "try later", 503)
		return
	}
	if !verifySignature([]byte(testWebhookSecret), r.Header.Get(HeaderWebhookTimestamp), r.Header.Get(HeaderWebhookSignature), body, time.Now()) {
		rc.badSig++
		http.Error(w, "bad signature", 401)
		return
	}
	rc.got = append(rc.got, ev)
}

// verifySignature is what a receiver does (written here from the documented rule, not with
// SignWebhook): HMAC-SHA256 over "<timestamp>.<body>", compared in constant time, and a
// timestamp within 5 minutes of its clock.
func verifySignature(secret []byte, ts, sig string, body []byte, now time.Time) bool {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(want), []byte(sig))
}

func (rc *receiver) statuses(code string) []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, ev := range rc.got {
		if ev.Code == code {
			out = append(out, ev.Status)
		}
	}
	return out
}

func TestWebhookSignedRetriedInOrder(t *testing.T) {
	rc := &receiver{t: t, failFirst: 2, attempts: map[string]int{}}
	srv := httptest.NewServer(rc) // 127.0.0.1
	defer srv.Close()
	tc := newTestCluster(t, 2, func(o *Options) {
		o.Webhook, o.WebhookSecret, o.WebhookRetry = srv.URL+"/hooks/redrain", testWebhookSecret, 5*time.Millisecond
	})
	r := tc.started(`{"anchor_id":1,"room_id":12,"total_amount":100003,"total_count":1001,"duration_s":600}`)
	tc.c.mustRain(t, 200, "POST", rainPath(r.Code, "/stop"), anchorJSON(1))
	for _, f := range tc.fakes {
		f.setClaims(r.Code, 0, 0, 0, 0) // nothing claimed, all flushed: the loop settles it
	}
	off := tc.prepared(rainBody)
	tc.c.mustRain(t, 200, "POST", rainPath(off.Code, "/stop"), anchorJSON(1))
	never := tc.c.create(t, rainBody)
	tc.c.mustRain(t, 200, "POST", rainPath(never.Code, "/stop"), anchorJSON(1))

	want := map[string]string{r.Code: "prepared raining finished settled", off.Code: "prepared cancelled", never.Code: "cancelled"}
	for code, w := range want {
		testcluster.Eventually(t, 10*time.Second, "webhooks of "+code+": "+w, func() bool { return strings.Join(rc.statuses(code), " ") == w })
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.badSig != 0 {
		t.Fatalf("%d deliveries with a bad signature", rc.badSig)
	}
	final := tc.c.mustRain(t, 200, "GET", rainPath(r.Code, ""), "")
	for _, ev := range rc.got {
		if n := rc.attempts[ev.ID]; n != 3 {
			t.Errorf("%s: %d attempts, want 3 (two refused)", ev.ID, n)
		}
		if ev.Code != r.Code {
			continue
		}
		if ev.RoomID != 12 || ev.AnchorID != 1 || ev.TotalCount != 1001 || ev.TotalAmount != 100003 {
			t.Errorf("body %+v", ev)
		}
		if ev.Status == "raining" && (ev.StartedAt == nil || *ev.StartedAt != *final.StartedAt || ev.At != *final.StartedAt) {
			t.Errorf("raining at %s started_at %v, rain started_at %s", ev.At, ev.StartedAt, *final.StartedAt)
		}
		if ev.Status != "settled" { // the same id as the viewers' event of the transition
			if k, err := roomevents.ParseID(ev.ID); err != nil || k.Code != r.Code || k.Status != ev.Status {
				t.Errorf("id %q: %+v %v", ev.ID, k, err)
			}
		}
	}
}

// A webhook that never answers costs the coordinator nothing on its request path: transitions
// go on, and past the queue's bound they are dropped, not waited for.
func TestWebhookDeadNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	var hits sync.WaitGroup
	hits.Add(1)
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(hits.Done)
		<-release
	}))
	defer srv.Close()
	defer close(release)
	tc := newTestCluster(t, 1, func(o *Options) { o.Webhook, o.WebhookSecret = srv.URL, testWebhookSecret })
	r := tc.started(rainBody)
	hits.Wait() // the first delivery is in flight, hanging
	s := tc.c.mustRain(t, 200, "POST", rainPath(r.Code, "/stop"), anchorJSON(1))
	if s.Status != rain.Finished {
		t.Fatalf("stop behind a hanging webhook: %+v", s)
	}
	w := tc.c.webhook
	for range WebhookQueue + 5 {
		w.enqueue(WebhookEvent{ID: "x"})
	}
	if d := w.dropped.Load(); d < 5 {
		t.Fatalf("%d dropped past a full queue", d)
	}
}

func TestWebhookDelay(t *testing.T) {
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{1, 500 * time.Millisecond}, {2, time.Second}, {3, 2 * time.Second}, {7, 30 * time.Second}, {60, 30 * time.Second}} {
		if got := webhookDelay(c.n, webhookFirstDelay, webhookMaxDelay); got != c.want {
			t.Errorf("retry %d: %v, want %v", c.n, got, c.want)
		}
	}
}

func TestWebhookOptions(t *testing.T) {
	for _, c := range []struct{ url, secret string }{
		{"http://127.0.0.1:1/x", ""}, {"http://127.0.0.1:1/x", "short"}, {"ftp://host/x", testWebhookSecret},
		{"/relative", testWebhookSecret}, {"http://", testWebhookSecret}, {"http://h\x7f/", testWebhookSecret},
	} {
		o := LocalOptions(t.TempDir(), "redis://127.0.0.1:1/0", testSecret, testToken)
		o.Webhook, o.WebhookSecret = c.url, c.secret
		if err := o.validate(); !errors.Is(err, ErrOptions) {
			t.Errorf("webhook %q secret %q: %v", c.url, c.secret, err)
		}
	}
}

func TestSignWebhook(t *testing.T) {
	body := []byte(`{"id":"1.raining.A"}`)
	sig := SignWebhook([]byte(testWebhookSecret), 1700000000, body)
	if !verifySignature([]byte(testWebhookSecret), "1700000000", sig, body, time.Unix(1700000000, 0)) {
		t.Fatal("a receiver refuses the coordinator's signature")
	}
	if verifySignature([]byte(testWebhookSecret), "1700000001", sig, body, time.Unix(1700000000, 0)) {
		t.Fatal("the signature does not cover the timestamp")
	}
}
