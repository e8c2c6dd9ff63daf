package node

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// A client that stops sending mid-request is cut off after the read timeout; the node keeps
// serving others.
func TestSlowClientDisconnected(t *testing.T) {
	h := newHarness(t, true, func(o *Options) { o.ReadTimeout = 300 * time.Millisecond })
	h.rainOf("slow", 10, 100, 1, true)
	c, err := net.Dial("tcp", h.n.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("POST /v1/rains/slow/claim HTTP/1.1\r\nHost: x\r\nX-Us")); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(c)
	var resp fasthttp.Response
	err = resp.Read(rd)
	if err == nil {
		if resp.StatusCode() != 408 {
			t.Fatalf("half-sent request answered %d", resp.StatusCode())
		}
		_, err = rd.ReadByte() // then the connection is closed
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v (read timeout 300ms)", time.Since(began))
	}
	if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "closed") {
		t.Fatalf("unexpected read error %v", err)
	}
	if st, body := h.claim("slow", 1); st != 200 {
		t.Fatalf("others not served: %d %s", st, body)
	}
}

// A keep-alive connection left idle after an answer is cut off after the read timeout when
// IdleTimeout is not set (SPEC.md: "idle or slow past the read timeout ... are disconnected"),
// not after fasthttp's or an old default's minute.
func TestIdleKeepAliveDisconnectedAfterReadTimeout(t *testing.T) {
	const readTimeout = 300 * time.Millisecond
	h := newHarness(t, true, func(o *Options) { o.ReadTimeout, o.IdleTimeout = readTimeout, 0 })
	h.rainOf("idle", 10, 100, 1, true)
	c, err := net.Dial("tcp", h.n.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("POST /v1/rains/idle/claim HTTP/1.1\r\nHost: x\r\nX-User-Id: 1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	const patience = 5 * time.Second // well under the old 60 s idle default
	c.SetReadDeadline(time.Now().Add(patience))
	rd := bufio.NewReader(c)
	var resp fasthttp.Response
	if err := resp.Read(rd); err != nil || resp.StatusCode() != 200 || resp.ConnectionClose() {
		t.Fatalf("claim: %v, status %d, close %v", err, resp.StatusCode(), resp.ConnectionClose())
	}
	answered := time.Now()
	_, err = rd.ReadByte() // blocks until the server closes the idle connection, or the deadline
	idle := time.Since(answered)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("idle keep-alive connection still open after %v (read timeout %v)", idle, readTimeout)
	}
	if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("unexpected read error %v after %v", err, idle)
	}
	if idle < readTimeout/2 {
		t.Fatalf("idle connection cut after %v, before the read timeout %v", idle, readTimeout)
	}
}

// FuzzClaimRequest throws arbitrary paths, user headers and bodies at the router: it never
// panics and answers only documented statuses, and a 200 only for a well-formed claim.
func FuzzClaimRequest(f *testing.F) {
	f.Add("/v1/rains/fz/claim", "1", []byte(nil), true)
	f.Add("/v1/rains/fz/claim", "0", []byte("{}"), true)
	f.Add("/v1/rains/fz", "", []byte(nil), false)
	f.Add("/v1/rains/../claim", "-3", []byte("x"), true)
	f.Add("/v1/rains/fz/claim", "18446744073709551615", make([]byte, 5000), true)
	f.Add("/internal/v1/slices", "1", []byte(`{"rules":{}}`), true)
	f.Add("/v1/rains/%66z/claim", "2", []byte(nil), true)
	h := newHarness(f, false, nil)
	h.rainOf("fz", 1000000, 100000000, 1000, true)
	documented := map[int]bool{200: true, 400: true, 401: true, 403: true, 404: true, 405: true, 410: true,
		413: true, 425: true, 429: true, 503: true}
	f.Fuzz(func(t *testing.T, path, user string, body []byte, post bool) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(path)
		if post {
			ctx.Request.Header.SetMethod("POST")
		}
		ctx.Request.Header.Set("X-User-Id", user)
		ctx.Request.SetBody(body)
		h.n.route(&ctx)
		st := ctx.Response.StatusCode()
		if !documented[st] {
			t.Fatalf("%q user %q: undocumented status %d", path, user, st)
		}
		if st == 200 && post {
			if _, ok := parseUserID([]byte(user)); !ok || len(body) > MaxClaimBody {
				t.Fatalf("%q user %q body %d: claim accepted", path, user, len(body))
			}
		}
	})
}
