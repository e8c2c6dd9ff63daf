package bench_test

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/bench"
	"redrain/internal/tap"
)

// The ceiling answers every claim over 127.0.0.1 with the same 200 body in the node's answer
// shape, and anything else with the node's 404/405 answers.
func TestCeilingAnswersEveryClaimTheSame(t *testing.T) {
	c, err := bench.NewCeiling(bench.CeilingOptions{HTTP: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- c.Serve() }()
	t.Cleanup(func() {
		c.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	cl := tap.NewClaimer(4)
	for u := uint64(1); u <= 50; u++ {
		a := cl.Claim(c.Addr(), "nkiMV7DnQ2Ck0a9y1r8Jxw", u)
		if a.Status != 200 || a.Amount != 1000 || a.ClaimID != "ceiling-0000000000000000-1" || a.Error != "" {
			t.Fatalf("claim of user %d: %+v", u, a)
		}
	}

	client := &fasthttp.Client{ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"POST", "/v1/rains/abc/claim", 200, bench.CeilingBody},
		{"GET", "/v1/rains/abc/claim", 405, `{"error":"method_not_allowed","message":"method not allowed"}`},
		{"POST", "/v1/rains//claim", 404, `{"error":"not_found","message":"no such endpoint"}`},
		{"POST", "/v1/rains/abc", 404, `{"error":"not_found","message":"no such endpoint"}`},
		{"GET", "/healthz", 404, `{"error":"not_found","message":"no such endpoint"}`},
	} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + c.Addr() + tc.path)
		req.Header.SetMethod(tc.method)
		req.Header.Set("X-User-Id", "7")
		if err := client.Do(req, resp); err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		if resp.StatusCode() != tc.status || string(resp.Body()) != tc.body ||
			string(resp.Header.ContentType()) != "application/json" {
			t.Errorf("%s %s: %d %q (%s); want %d %q", tc.method, tc.path, resp.StatusCode(), resp.Body(),
				resp.Header.ContentType(), tc.status, tc.body)
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
}
