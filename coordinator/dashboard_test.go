package coordinator

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"redrain/coordinator/dashboard"
)

// assetTypes is every path the dashboard serves and its Content-Type, written out here so
// that a path added, dropped or served with another type fails this test.
var assetTypes = map[string]string{
	"/":                      "text/html; charset=utf-8",
	"/dashboard/app.css":     "text/css; charset=utf-8",
	"/dashboard/app.js":      "text/javascript; charset=utf-8",
	"/dashboard/chart.js":    "text/javascript; charset=utf-8",
	"/dashboard/favicon.svg": "image/svg+xml",
}

// assetExchange writes req as is on a new connection and returns the response with its body read.
func assetExchange(t *testing.T, addr, req string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(req, " ")
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

func assetReq(method, path string, headers ...string) string {
	return method + " " + path + " HTTP/1.1\r\nHost: x\r\n" + strings.Join(headers, "") + "Connection: close\r\n\r\n"
}

// Every dashboard path is served without the token, with its type, the security headers and
// revalidation; a conditional GET is 304, HEAD has no body, any other method is 405.
func TestDashboardAssets(t *testing.T) {
	c := newAPI(t)
	paths := dashboard.Paths()
	var want []string
	for p := range assetTypes {
		want = append(want, p)
	}
	sort.Strings(want)
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Fatalf("served paths %v, want %v", paths, want)
	}
	for _, p := range paths {
		resp, body := assetExchange(t, c.Addr(), assetReq("GET", p))
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Content-Type") != assetTypes[p] || len(body) == 0 {
			t.Fatalf("GET %s: %d %q, %d bytes", p, resp.StatusCode, h.Get("Content-Type"), len(body))
		}
		if !bytes.Equal(body, dashboard.Lookup(p).Body) {
			t.Fatalf("GET %s: body is not the embedded file", p)
		}
		csp := h.Get("Content-Security-Policy")
		for _, part := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "form-action 'none'"} {
			if !strings.Contains(csp, part+";") && !strings.HasSuffix(csp, part) {
				t.Errorf("GET %s: CSP %q lacks %q", p, csp, part)
			}
		}
		if strings.Contains(csp, "unsafe") || strings.Contains(csp, "*") || strings.Contains(csp, "http") {
			t.Errorf("GET %s: CSP %q is not strict", p, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache",
			"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if h.Get(k) != v {
				t.Errorf("GET %s: %s %q, want %q", p, k, h.Get(k), v)
			}
		}
		etag := h.Get("ETag")
		if len(etag) < 10 || etag[0] != '"' || etag[len(etag)-1] != '"' {
			t.Fatalf("GET %s: ETag %q", p, etag)
		}
		for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag} {
			resp, body = assetExchange(t, c.Addr(), assetReq("GET", p, "If-None-Match: "+inm+"\r\n"))
			if resp.StatusCode != 304 || len(body) != 0 || resp.Header.Get("ETag") != etag {
				t.Fatalf("GET %s If-None-Match %s: %d, %d bytes", p, inm, resp.StatusCode, len(body))
			}
		}
		if resp, _ = assetExchange(t, c.Addr(), assetReq("GET", p, `If-None-Match: "stale"`+"\r\n")); resp.StatusCode != 200 {
			t.Fatalf("GET %s with a stale ETag: %d", p, resp.StatusCode)
		}
		resp, body = assetExchange(t, c.Addr(), assetReq("HEAD", p))
		if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Type") != assetTypes[p] {
			t.Fatalf("HEAD %s: %d %q, %d bytes", p, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		for _, m := range []string{"POST", "PUT", "DELETE"} {
			resp, body = assetExchange(t, c.Addr(), assetReq(m, p))
			checkError(t, resp.StatusCode, body, 405, "method_not_allowed", m+" "+p)
			if resp.Header.Get("Allow") != "GET, HEAD" {
				t.Fatalf("%s %s: Allow %q", m, p, resp.Header.Get("Allow"))
			}
		}
	}
	// the page's query string does not change what it is
	if resp, body := assetExchange(t, c.Addr(), assetReq("GET", "/?code=x")); resp.StatusCode != 200 || !bytes.Equal(body, dashboard.Lookup("/").Body) {
		t.Fatalf("GET /?code=x: %d", resp.StatusCode)
	}
}

// Nothing but the exact asset paths is public: every other form of them, under the prefix or
// not, and every way of reaching the API through them, is 401 without the token and never an
// asset or an API answer (404 not_found with the token).
func TestDashboardLeaksNothing(t *testing.T) {
	c := newAPI(t)
	for _, p := range []string{
		"/dashboard", "/dashboard/", "/dashboard//app.js", "/dashboard/./app.js", "/dashboard/x/../app.js",
		"/dashboard/%61pp.js", "/dashboard/app%2ejs", "/dashboard/app.js/", "/dashboard/APP.JS", "/Dashboard/app.js",
		"/dashboard/app.js%00", "/dashboard/app.js;x", "/dashboard/index.html", "/index.html", "/dashboard/static/app.js",
		"/static/app.js", "/dashboard/dashboard.go", "/dashboard/../go.mod", "/dashboard/..", "/dashboard/%2e%2e/v1/nodes",
		"/dashboard/../v1/nodes", "/dashboard/../v1/rains", "//", "/%2F", "/.", "/./", "/favicon.ico", "/app.js",
		"/dashboard/app.jsx", "/dashboard/app.js.map", "/dashboard/favicon.svg/../../v1/nodes",
	} {
		resp, body := assetExchange(t, c.Addr(), assetReq("GET", p))
		checkError(t, resp.StatusCode, body, 401, "unauthorized", "GET "+p+" without token")
		if resp.Header.Get("Content-Security-Policy") != "" || resp.Header.Get("ETag") != "" {
			t.Fatalf("GET %s: answered with an asset's headers", p)
		}
		resp, body = assetExchange(t, c.Addr(), assetReq("GET", p, "Authorization: Bearer "+testToken+"\r\n"))
		checkError(t, resp.StatusCode, body, 404, "not_found", "GET "+p+" with token")
	}
	// an asset path with the API's methods opens no API route either
	resp, body := assetExchange(t, c.Addr(), "POST /dashboard/app.js HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{\"anchor_id\":1}\r\n")
	checkError(t, resp.StatusCode, body, 405, "method_not_allowed", "POST asset")
}
