package node

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/internal/wire"
)

// signedHeaders are the header lines of an internal request signed with secret over method and
// target (path and query as sent).
func signedHeaders(secret, method, target string, body []byte) string {
	ts, nonce, sig := wire.NewSigner(secret).Sign(method, target, body, time.Now())
	return wire.HeaderTime + ": " + ts + "\r\n" + wire.HeaderNonce + ": " + nonce + "\r\n" + wire.HeaderSignature + ": " + sig + "\r\n"
}

// The internal signature covers the whole request target: a query appended to (or dropped
// from) a signed request is another request, refused 403; the query as signed is accepted.
func TestInternalSignatureCoversQuery(t *testing.T) {
	h := newHarness(t, false, nil)
	h.rainOf("qa", 10, 100, 1, false)
	h.rainOf("qb", 10, 100, 1, false)
	get := func(target, headers string) (int, string) {
		return h.raw(t, "GET "+target+" HTTP/1.1\r\nHost: x\r\n"+headers+"\r\n")
	}
	signed := signedHeaders(testSecret, "GET", wire.PathProgress, nil)
	st, body := get(wire.PathProgress+"?code=zzz", signed)
	wantError(t, st, body, 403, "forbidden")
	st, body = get(wire.PathProgress+"?", signed)
	wantError(t, st, body, 403, "forbidden")
	one := signedHeaders(testSecret, "GET", wire.PathProgress+"?code=qa", nil)
	st, body = get(wire.PathProgress, one)
	wantError(t, st, body, 403, "forbidden")
	st, body = get(wire.PathProgress+"?code=qb", one)
	wantError(t, st, body, 403, "forbidden")

	// The refusals spent no nonce: the requests as signed are accepted, each once.
	if st, body := get(wire.PathProgress, signed); st != 200 {
		t.Fatalf("signed progress: %d %s", st, body)
	}
	st, body = get(wire.PathProgress+"?code=qa", one)
	var pl wire.ProgressList
	if err := json.Unmarshal([]byte(body), &pl); st != 200 || err != nil || len(pl.Rains) != 1 || pl.Rains[0].Code != "qa" {
		t.Fatalf("signed progress of qa: %d %s", st, body)
	}
	// The client signs what it sends, query included.
	if err := h.wire.Do(t.Context(), "GET", h.addr(), wire.PathProgress+"?code=qb", nil, &pl); err != nil || len(pl.Rains) != 1 || pl.Rains[0].Code != "qb" {
		t.Fatalf("client progress of qb: %v %+v", err, pl)
	}
}

// The node routes on the raw path, as sent: an escaped, doubled or dotted form of a path is not
// that path but 404, so a gateway that blocks the raw prefix /internal/ is not bypassed, and
// nothing but a path starting with exactly /internal/v1/ reaches the internal handler.
func TestRawPathRouting(t *testing.T) {
	h := newHarness(t, false, nil)
	h.rainOf("open", 100, 10_000, 100, true)
	user := "X-User-Id: 7\r\n"
	for _, c := range []struct{ method, target, headers string }{
		{"GET", "/%69nternal/v1/progress", ""},
		{"GET", "//internal/v1/progress", ""},
		{"GET", "/internal//v1/progress", ""},
		{"GET", "/internal/./v1/progress", ""},
		{"GET", "/x/../internal/v1/progress", ""},
		{"GET", "/internal%2fv1/progress", ""},
		{"GET", "/Internal/v1/progress", ""},
		{"GET", "/internal/v2/progress", ""},
		{"GET", "http://x/internal/v1/progress", ""}, // absolute form: not routed by its path
		{"POST", "/v1/rains/open%2fclaim", user},
		{"POST", "/v1/rains/open%2Fclaim", user},
		{"POST", "/v1/rains/%6fpen/claim", user},
		{"POST", "//v1/rains/open/claim", user},
		{"POST", "/v1//rains/open/claim", user},
		{"POST", "/v1/rains/open/./claim", user},
		{"POST", "/v1/rains/x/../open/claim", user},
		{"POST", "/v1/rains/open/claim/", user},
		{"GET", "/v1/rains/%6fpen", ""},
		{"GET", "/%68ealthz", ""},
		{"GET", "/healthz/", ""},
		{"GET", "//metrics", ""},
		{"GET", "/./readyz", ""},
	} {
		st, body := h.raw(t, c.method+" "+c.target+" HTTP/1.1\r\nHost: x\r\n"+c.headers+"\r\n")
		if st != 404 {
			t.Errorf("%s %s: %d %s, want 404 not_found", c.method, c.target, st, body)
			continue
		}
		wantError(t, st, body, 404, "not_found")
	}
	// Signed over its raw target, an escaped or dotted form under /internal/v1/ is let in by the
	// signature and is still no endpoint.
	for _, target := range []string{"/internal/v1/%70rogress", "/internal/v1/./progress", "/internal/v1/x/../progress",
		"/internal/v1/rains/open/%73top", "/internal/v1/rains/%6fpen/stop", "/internal/v1//slices"} {
		method := "POST"
		if !strings.Contains(target, "rains") && !strings.Contains(target, "slices") {
			method = "GET"
		}
		body := `{"at":1}`
		st, answer := h.raw(t, method+" "+target+" HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n"+
			signedHeaders(testSecret, method, target, []byte(body))+"\r\n"+body)
		if st != 404 {
			t.Errorf("signed %s %s: %d %s, want 404 not_found", method, target, st, answer)
			continue
		}
		wantError(t, st, answer, 404, "not_found")
	}
	if p, _ := h.n.store.Progress("open", time.Now().UnixNano()); p.RemainingCount != 100 || p.Finished {
		t.Fatalf("a refused form changed the rain: %+v", p)
	}
	// The canonical forms still route, a query on a public path included.
	for _, target := range []string{"/v1/rains/open/claim", "/v1/rains/open/claim?src=app"} {
		if st, body := h.raw(t, "POST "+target+" HTTP/1.1\r\nHost: x\r\n"+user+"\r\n"); st != 200 {
			t.Errorf("POST %s: %d %s", target, st, body)
		}
	}
	if st, body := h.raw(t, "GET /healthz?probe=1 HTTP/1.1\r\nHost: x\r\n\r\n"); st != 200 {
		t.Errorf("GET /healthz?probe=1: %d %s", st, body)
	}
}

// HTTP manners: health, readiness and metrics answer GET and HEAD only; every 405 says in Allow
// what the path takes; every 401 says in WWW-Authenticate how to authenticate; JSON is sent as
// application/json.
func TestHTTPManners(t *testing.T) {
	h := newHarness(t, false, nil)
	h.rainOf("open", 10, 1000, 1, true)
	req := func(method, target, headers string) *fasthttp.Response {
		return h.rawResponse(t, method+" "+target+" HTTP/1.1\r\nHost: x\r\n"+headers+"\r\n")
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		for _, method := range []string{"DELETE", "POST", "PUT", "PATCH", "OPTIONS"} {
			wantMethodNotAllowed(t, req(method, path, ""), method+" "+path, "GET, HEAD")
		}
		if r := req("HEAD", path, ""); r.StatusCode() != 200 || len(r.Body()) != 0 {
			t.Errorf("HEAD %s: %d %q", path, r.StatusCode(), r.Body())
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		r := req("GET", path, "")
		if r.StatusCode() != 200 || string(r.Header.ContentType()) != "application/json" || !json.Valid(r.Body()) {
			t.Errorf("GET %s: %d %s %s", path, r.StatusCode(), r.Header.ContentType(), r.Body())
		}
	}
	if r := req("GET", "/metrics", ""); r.StatusCode() != 200 || !strings.HasPrefix(string(r.Header.ContentType()), "text/plain") {
		t.Errorf("GET /metrics: %d %s", r.StatusCode(), r.Header.ContentType())
	}
	user := "X-User-Id: 5\r\n"
	wantMethodNotAllowed(t, req("GET", "/v1/rains/open/claim", user), "GET claim", "POST")
	wantMethodNotAllowed(t, req("DELETE", "/v1/rains/open/claim", user), "DELETE claim", "POST")
	wantMethodNotAllowed(t, req("POST", "/v1/rains/open", user), "POST view", "GET")
	wantMethodNotAllowed(t, req("PUT", "/v1/rains/open", user), "PUT view", "GET")
	for _, c := range []struct{ method, target, allow string }{
		{"GET", wire.PathSlices, "POST"},
		{"POST", wire.PathProgress, "GET"},
		{"DELETE", wire.PathProgress, "GET"},
		{"GET", wire.RainPath(wire.PathStop, "open"), "POST"},
		{"PUT", wire.RainPath(wire.PathSettle, "open"), "POST"},
	} {
		r := req(c.method, c.target, signedHeaders(testSecret, c.method, c.target, nil))
		wantMethodNotAllowed(t, r, "signed "+c.method+" "+c.target, c.allow)
	}
	r := req("GET", wire.PathProgress, "")
	if r.StatusCode() != 401 || string(r.Header.Peek("WWW-Authenticate")) != wire.Challenge {
		t.Errorf("unsigned internal: %d WWW-Authenticate %q, want 401 %q", r.StatusCode(), r.Header.Peek("WWW-Authenticate"), wire.Challenge)
	}
	for _, name := range []string{wire.HeaderTime, wire.HeaderNonce, wire.HeaderSignature} {
		if !strings.Contains(wire.Challenge, name) || !strings.HasPrefix(wire.Challenge, "Redrain-HMAC ") {
			t.Errorf("challenge %q does not name %s", wire.Challenge, name)
		}
	}

	th := tokenHarness(t, nil)
	th.roomRain("room", 1, 10, 1000, 1)
	for _, hdr := range []string{"", "Authorization: Bearer v1.nonsense\r\n", "Authorization: Basic eDp5\r\n"} {
		r := th.rawResponse(t, claimRequest("room", hdr))
		if r.StatusCode() != 401 || string(r.Header.Peek("WWW-Authenticate")) != `Bearer realm="redrain"` {
			t.Errorf("token claim %q: %d WWW-Authenticate %q", hdr, r.StatusCode(), r.Header.Peek("WWW-Authenticate"))
		}
	}
}

// wantMethodNotAllowed: r is 405 method_not_allowed with exactly the Allow header allow.
func wantMethodNotAllowed(t *testing.T, r *fasthttp.Response, what, allow string) {
	t.Helper()
	if r.StatusCode() != 405 || string(r.Header.Peek("Allow")) != allow {
		t.Errorf("%s: %d Allow %q (%s), want 405 Allow %q", what, r.StatusCode(), r.Header.Peek("Allow"), r.Body(), allow)
		return
	}
	wantError(t, r.StatusCode(), string(r.Body()), 405, "method_not_allowed")
}
