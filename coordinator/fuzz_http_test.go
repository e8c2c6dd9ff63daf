package coordinator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"redrain/coordinator/dashboard"
	"redrain/internal/testredis"
)

// FuzzAdminRequest feeds raw bytes (request line, headers, maybe a body, maybe several
// requests) to the admin server, as a connection would: what routes where. Every answer is a
// documented status with a JSON error body (and Allow on 405, WWW-Authenticate on 401); without
// the admin token nothing reaches an action: no store write, and the only 200s are /healthz and
// /metrics. The seeds run in `make test`; `make fuzz` explores.
func FuzzAdminRequest(f *testing.F) {
	c := startCoordinator(f, testredis.New(f).URL(), "", func(o *Options) { o.UserKey = "fuzz-user-key-0123456789" })
	code := c.create(f, `{"anchor_id":1,"total_amount":1000,"total_count":10}`).Code
	auth := "Authorization: Bearer " + testToken + "\r\n"
	create := `{"anchor_id":1,"total_amount":1000,"total_count":10}`
	for _, s := range []string{
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
		"DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
		"GET /v1/rains HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
		"GET /v1/rains?anchor_id=1&status=waiting HTTP/1.1\r\nHost: x\r\nauthorization: bEaReR " + testToken + "\r\n\r\n",
		"GET /v1/rains HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token\r\n\r\n",
		"POST /v1/rains HTTP/1.1\r\nHost: x\r\nContent-Length: 52\r\n\r\n" + create,
		"POST /v1/rains HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 52\r\n\r\n" + create,
		"POST /v1/rains/" + code + "/stop HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\r\n{\"anchor_id\":1}",
		"POST /v1/rains/" + code + "/prepare HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\nContent-Length: 15\r\n\r\n{\"anchor_id\":1}",
		"POST /v1/rains/AAAAAAAAAAAAAAAAAAAAAA/stop HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 15\r\n\r\n{\"anchor_id\":1}",
		"POST /v1/rains/" + code + "/start HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 15\r\n\r\n{\"anchor_id\":2}",
		"GET /v1/rains/" + code + "/report HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
		"POST /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n{\"user_id\":1}",
		"POST /v1/tokens HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 13\r\n\r\n{\"user_id\":1}",
		"GET /v1/%72ains HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
		"GET //v1/rains HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
		"GET /v1/rains/../nodes HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
		"GET /v1/rains/" + code + "/nodes HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
		"GET http://x/v1/nodes HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
		"GET /v1/nodes HTTP/1.0\r\n\r\n",
		"DELETE /v1/rains HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPOST /v1/rains/" + code + "/stop HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n\r\n{\"anchor_id\":1}",
		"POST /v1/rains HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n",
		"POST /v1/rains HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 52\r\n\r\n" + create,
		"POST /v1/rains HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{",
		"POST /v1/rains HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
		"GET /v1/rains/" + strings.Repeat("A", 5000) + " HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/nodes HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("p", MaxHeaderBytes) + "\r\n\r\n",
		"GET /v1/nodes HTTP/1.1\r\nHost: x\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD /dashboard/app.js HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /dashboard/app.css HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + dashboard.Lookup("/dashboard/app.css").ETag + "\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", "GET /dashboard/../v1/nodes HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n", "NOT HTTP\r\n\r\n", "\x00\x01\x02\r\n\r\n", "GET\r\n\r\n", "",
	} {
		f.Add([]byte(s))
	}
	srv := c.newServer()
	f.Fuzz(func(t *testing.T, in []byte) {
		before := storeVersion(t, c)
		conn := &fuzzConn{in: bytes.NewReader(in)}
		served := make(chan struct{})
		go func() {
			defer close(served)
			_ = srv.ServeConn(conn) // an error is a connection fasthttp gave up on, answered or not
		}()
		select {
		case <-served:
		case <-time.After(fuzzPatience):
			t.Fatalf("no end to serving %q within %v", in, fuzzPatience)
		}
		out := conn.out.Bytes()
		withToken := bytes.Contains(in, []byte(testToken))
		if !withToken && storeVersion(t, c) != before {
			t.Fatalf("a request without the admin token wrote to the store:\n%q", in)
		}
		if len(out) == 0 {
			return // nothing to answer: empty, or only CRLFs
		}
		method, _, _ := bytes.Cut(in, []byte(" "))
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), &http.Request{Method: string(method)})
		for err == nil && resp.StatusCode == 100 { // Expect: 100-continue
			out = out[bytes.Index(out, []byte("\r\n\r\n"))+4:]
			resp, err = http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), &http.Request{Method: string(method)})
		}
		if err != nil {
			t.Fatalf("unreadable answer %q: %v\nto %q", out, err, in)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("answer body: %v", err)
		}
		checkFuzzAnswer(t, resp, body, string(method) == "HEAD", withToken, in)
	})
}

// fuzzPatience bounds serving one input: the client has sent everything and closed its side,
// and no action waits longer than a prepare (LocalOptions: 2 s).
const fuzzPatience = 10 * time.Second

// fuzzWords are the documented error words of each status.
var fuzzWords = map[int][]string{
	400: {"bad_request"}, 401: {"unauthorized"}, 403: {"forbidden"}, 404: {"not_found", "unknown_rain"},
	405: {"method_not_allowed"}, 408: {"timeout"}, 409: {"conflict"}, 413: {"body_too_large"},
	431: {"headers_too_large"}, 503: {"no_nodes", "prepare_failed", "redis_unavailable", "no_user_key", "shutting_down"},
}

// noTokenAnswers are the error statuses a request without the admin token may get.
var noTokenAnswers = map[int]bool{401: true, 405: true, 400: true, 408: true, 413: true, 431: true}

func checkFuzzAnswer(t *testing.T, resp *http.Response, body []byte, head, withToken bool, in []byte) {
	t.Helper()
	st := resp.StatusCode
	switch {
	case st == 200 || st == 201:
		if withToken {
			return
		}
		// Without the token only /healthz ({"status":"ok"}), /metrics (text) and the dashboard's
		// assets answer 200.
		ct := resp.Header.Get("Content-Type")
		if st == 200 && isAsset(resp, body, head) {
			return
		}
		if st != 200 || !(strings.HasPrefix(ct, "text/plain") || head || bytes.Equal(bytes.TrimSpace(body), []byte(`{"status":"ok"}`))) {
			t.Fatalf("%d %s %q without the admin token, to %q", st, ct, body, in)
		}
		return
	case st == 304:
		if !isAsset(resp, body, true) || len(body) != 0 {
			t.Fatalf("304 that is not a dashboard asset's, to %q", in)
		}
		return
	case fuzzWords[st] == nil:
		t.Fatalf("undocumented status %d %q, to %q", st, body, in)
	case st == 401 && resp.Header.Get("WWW-Authenticate") != authChallenge:
		t.Fatalf("401 without the challenge, to %q", in)
	case st == 405 && resp.Header.Get("Allow") == "":
		t.Fatalf("405 without Allow, to %q", in)
	case !withToken && !noTokenAnswers[st]:
		t.Fatalf("%d %q without the admin token: only 401, a 405 of /healthz or /metrics, or an unread request's answer, to %q", st, body, in)
	}
	if head {
		return
	}
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil || e.Message == "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d answer %q is not a JSON error (%v), to %q", st, body, err, in)
	}
	for _, w := range fuzzWords[st] {
		if e.Word == w {
			return
		}
	}
	t.Fatalf("%d with error %q, want one of %v, to %q", st, e.Word, fuzzWords[st], in)
}

// storeVersion is the id of the store's last committed write.
func storeVersion(t *testing.T, c *running) (id int) {
	t.Helper()
	if err := c.store.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// fuzzConn is a connection whose client sent in and then closed its side; what the server
// writes is kept in out.
type fuzzConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *fuzzConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *fuzzConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *fuzzConn) Close() error                { return nil }
func (c *fuzzConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9090} }
func (c *fuzzConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// isAsset reports whether an answer is one of the dashboard's assets: its type, its ETag and
// its body (none for HEAD or 304).
func isAsset(resp *http.Response, body []byte, noBody bool) bool {
	for _, p := range dashboard.Paths() {
		a := dashboard.Lookup(p)
		if resp.Header.Get("ETag") == a.ETag && (resp.StatusCode == 304 || resp.Header.Get("Content-Type") == a.ContentType) &&
			(noBody || bytes.Equal(body, a.Body)) && resp.Header.Get("Content-Security-Policy") == dashboard.CSP {
			return true
		}
	}
	return false
}
