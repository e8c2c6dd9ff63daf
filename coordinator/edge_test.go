package coordinator

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// exchange writes req as is on a new connection and reads one answer to a request of method.
func exchange(t *testing.T, addr, method, req string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(adminReadTO + 10*time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// get is a raw request with the admin token (token "" sends none).
func rawGet(method, target, token string) string {
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n", method, target, auth)
}

// The coordinator's HTTP edge answers as the node's does (node/http.go serverError): headers
// over the limit 431, headers not received in time 408, a long code is an unknown rain (404),
// malformed HTTP 400; each a JSON error, the connection closed after the unread ones.
func TestEdgeAnswersLikeTheNode(t *testing.T) {
	c := newAPI(t)
	long := "/v1/rains/" + strings.Repeat("A", 5000)
	for _, tc := range []struct {
		name, req string
		status    int
		word      string
	}{
		{"5,000-character code", rawGet("GET", long, testToken), 404, "unknown_rain"},
		{"5,000-character code, report", rawGet("GET", long+"/report", testToken), 404, "unknown_rain"},
		{"5,000-character code, no token", rawGet("GET", long, ""), 401, "unauthorized"},
		{"headers over the limit", "GET /v1/nodes HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", MaxHeaderBytes) + "\r\n\r\n", 431, "headers_too_large"},
		{"path over the limit", rawGet("GET", "/v1/rains/"+strings.Repeat("A", MaxHeaderBytes), testToken), 431, "headers_too_large"},
		{"malformed", "NOT HTTP\r\n\r\n", 400, "bad_request"},
		{"slow headers", "GET /v1/nodes HTTP/1.1\r\nHost: x\r\n", 408, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := exchange(t, c.Addr(), "GET", tc.req)
			checkError(t, resp.StatusCode, b, tc.status, tc.word, tc.name)
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			if tc.status != 404 && tc.status != 401 && !resp.Close {
				t.Errorf("%d: connection kept open after a request that was not read", tc.status)
			}
		})
	}
}

// /healthz and /metrics answer GET and HEAD only; every 405 names the allowed methods; every
// 401 names the scheme, and says nothing else (no Allow).
func TestHTTPManners(t *testing.T) {
	c := newAPI(t)
	for _, p := range []string{"/healthz", "/metrics"} {
		for _, m := range []string{"GET", "HEAD"} {
			if resp, b := exchange(t, c.Addr(), m, rawGet(m, p, "")); resp.StatusCode != 200 || (m == "HEAD") != (len(b) == 0) {
				t.Errorf("%s %s: %d %q", m, p, resp.StatusCode, b)
			}
		}
		for _, m := range []string{"DELETE", "POST", "PUT", "PATCH", "OPTIONS"} {
			resp, b := exchange(t, c.Addr(), m, rawGet(m, p, ""))
			checkError(t, resp.StatusCode, b, 405, "method_not_allowed", m+" "+p)
			if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
				t.Errorf("%s %s: Allow %q, want \"GET, HEAD\"", m, p, got)
			}
		}
	}
	r := c.create(t, `{"anchor_id":1,"total_amount":1000,"total_count":10}`)
	for _, tc := range []struct{ method, path, allow string }{
		{"DELETE", "/v1/rains", "GET, POST"}, {"PUT", "/v1/rains", "GET, POST"},
		{"POST", "/v1/rains/" + r.Code, "GET"}, {"HEAD", "/v1/rains/" + r.Code, "GET"},
		{"GET", "/v1/rains/" + r.Code + "/prepare", "POST"}, {"GET", "/v1/rains/" + r.Code + "/start", "POST"},
		{"DELETE", "/v1/rains/" + r.Code + "/stop", "POST"}, {"POST", "/v1/rains/" + r.Code + "/report", "GET"},
		{"POST", "/v1/nodes", "GET"}, {"GET", "/v1/tokens", "POST"},
	} {
		resp, b := exchange(t, c.Addr(), tc.method, rawGet(tc.method, tc.path, testToken))
		if tc.method != "HEAD" {
			checkError(t, resp.StatusCode, b, 405, "method_not_allowed", tc.method+" "+tc.path)
		} else if resp.StatusCode != 405 {
			t.Errorf("HEAD %s: %d", tc.path, resp.StatusCode)
		}
		if got := resp.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
		// Without the token the same request is 401, with the challenge and no hint of the route.
		resp, b = exchange(t, c.Addr(), tc.method, rawGet(tc.method, tc.path, "wrong-token"))
		if tc.method != "HEAD" {
			checkError(t, resp.StatusCode, b, 401, "unauthorized", tc.method+" "+tc.path+" without the token")
		}
		if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || got != `Bearer realm="redrain-admin"` {
			t.Errorf("%s %s without the token: %d, WWW-Authenticate %q", tc.method, tc.path, resp.StatusCode, got)
		}
		if got := resp.Header.Values("Allow"); len(got) != 0 {
			t.Errorf("%s %s without the token: a 401 with Allow %q tells the route exists", tc.method, tc.path, got)
		}
	}
	st, b := rawCall(t, c.base, "GET", "/v1/nodes", "", "")
	checkError(t, st, b, 401, "unauthorized", "no token")
}

// Routing uses the raw path (SPEC.md): an escaped, doubled-slash or dot-segment form of a
// route is not that route.
func TestRawPathRouting(t *testing.T) {
	c := newAPI(t)
	r := c.create(t, `{"anchor_id":1,"total_amount":1000,"total_count":10}`)
	rp := "/v1/rains/" + r.Code
	for _, tc := range []struct{ method, target, word string }{
		{"GET", "/v1/%72ains", "not_found"}, {"GET", "/v1/rains%2F" + r.Code, "not_found"},
		{"GET", "//v1/rains", "not_found"}, {"GET", "/v1//rains", "not_found"}, {"GET", "/v1/rains/", "not_found"},
		{"GET", "/v1/./rains", "not_found"}, {"GET", "/v1/rains/../nodes", "not_found"}, {"GET", "/v1/x/../nodes", "not_found"},
		{"GET", "/v1/n%6Fdes", "not_found"}, {"GET", "/V1/nodes", "not_found"}, {"GET", "/v1/nodes/", "not_found"},
		{"GET", rp + "/", "not_found"}, {"GET", rp + "//report", "not_found"}, {"GET", rp + "/./report", "not_found"},
		{"GET", rp + "/%72eport", "not_found"}, {"POST", rp + "/st%61rt", "not_found"},
		{"GET", "/v1/rains/%41" + r.Code[1:], "unknown_rain"}, {"GET", "/v1/rains/./" + r.Code, "not_found"},
		{"POST", "/v1/rains/x/../" + r.Code + "/stop", "not_found"},
		// a top-level shape is not an operation on a rain
		{"GET", rp + "/nodes", "not_found"}, {"GET", rp + "/rains", "not_found"}, {"GET", rp + "/rain", "not_found"},
		{"POST", rp + "/tokens", "not_found"},
		{"GET", "/%68ealthz", "not_found"}, {"GET", "//metrics", "not_found"}, {"GET", "/healthz/", "not_found"},
		{"GET", "/./healthz", "not_found"},
	} {
		resp, b := exchange(t, c.Addr(), tc.method, rawGet(tc.method, tc.target, testToken))
		checkError(t, resp.StatusCode, b, 404, tc.word, tc.method+" "+tc.target)
		resp, b = exchange(t, c.Addr(), tc.method, rawGet(tc.method, tc.target, ""))
		checkError(t, resp.StatusCode, b, 401, "unauthorized", tc.method+" "+tc.target+" without the token")
	}
	if got := c.mustRain(t, 200, "GET", rp, ""); got.Status != "waiting" {
		t.Fatalf("a refused path changed the rain: %+v", got)
	}
	// The routes themselves, with a query, still answer.
	for _, target := range []string{rp, rp + "?x=1", "/v1/rains?anchor_id=1", "/v1/nodes"} {
		if resp, b := exchange(t, c.Addr(), "GET", rawGet("GET", target, testToken)); resp.StatusCode != 200 || !json.Valid(b) {
			t.Errorf("GET %s: %d %s", target, resp.StatusCode, b)
		}
	}
}
