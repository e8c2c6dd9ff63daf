package wire

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, v := NewSigner("s3cret"), NewVerifier("s3cret")
	body := []byte(`{"epoch":1}`)
	ts, nonce, sig := s.Sign("POST", "/internal/v1/rains/abc/start", body, now)

	if err := v.Verify("POST", "/internal/v1/rains/abc/start", body, ts, nonce, sig, now); err != nil {
		t.Fatalf("valid request refused: %v", err)
	}
	if err := v.Verify("POST", "/internal/v1/rains/abc/start", body, ts, nonce, sig, now); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: got %v, want ErrReplay", err)
	}
	cases := []struct {
		name           string
		method, path   string
		body           []byte
		ts, nonce, sig string
		at             time.Time
		want           error
	}{
		{"unsigned", "POST", "/p", body, "", "", "", now, ErrUnsigned},
		{"other path", "POST", "/internal/v1/rains/abd/start", body, ts, nonce, sig, now, ErrBadSignature},
		{"query appended", "POST", "/internal/v1/rains/abc/start?code=zzz", body, ts, nonce, sig, now, ErrBadSignature},
		{"empty query appended", "POST", "/internal/v1/rains/abc/start?", body, ts, nonce, sig, now, ErrBadSignature},
		{"escaped path", "POST", "/internal/v1/rains/%61bc/start", body, ts, nonce, sig, now, ErrBadSignature},
		{"other method", "GET", "/internal/v1/rains/abc/start", body, ts, nonce, sig, now, ErrBadSignature},
		{"other body", "POST", "/internal/v1/rains/abc/start", []byte(`{"epoch":2}`), ts, nonce, sig, now, ErrBadSignature},
		{"garbage sig", "POST", "/p", body, ts, nonce, "zz", now, ErrBadSignature},
		{"short nonce", "POST", "/p", body, ts, "ab", sig, now, ErrBadSignature},
	}
	for _, c := range cases {
		if err := v.Verify(c.method, c.path, c.body, c.ts, c.nonce, c.sig, c.at); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	other := NewVerifier("other secret")
	ts2, n2, sig2 := s.Sign("GET", "/x", nil, now)
	if err := other.Verify("GET", "/x", nil, ts2, n2, sig2, now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("wrong secret: got %v", err)
	}
}

func TestVerifyWindowAndBound(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, v := NewSigner("k"), NewVerifier("k")
	ts, nonce, sig := s.Sign("GET", "/x", nil, now.Add(-DefaultWindow-time.Second))
	if err := v.Verify("GET", "/x", nil, ts, nonce, sig, now); !errors.Is(err, ErrStale) {
		t.Fatalf("old request: got %v, want ErrStale", err)
	}
	ts, nonce, sig = s.Sign("GET", "/x", nil, now.Add(DefaultWindow+time.Second))
	if err := v.Verify("GET", "/x", nil, ts, nonce, sig, now); !errors.Is(err, ErrStale) {
		t.Fatalf("future request: got %v, want ErrStale", err)
	}

	v.max = 3
	for i := 0; i < 3; i++ {
		ts, nonce, sig = s.Sign("GET", "/x", nil, now)
		if err := v.Verify("GET", "/x", nil, ts, nonce, sig, now); err != nil {
			t.Fatal(err)
		}
	}
	ts, nonce, sig = s.Sign("GET", "/x", nil, now)
	if err := v.Verify("GET", "/x", nil, ts, nonce, sig, now); !errors.Is(err, ErrBusy) {
		t.Fatalf("full cache: got %v, want ErrBusy", err)
	}
	// Once the window has passed, the remembered nonces expire and room is made.
	later := now.Add(2*DefaultWindow + time.Second)
	ts, nonce, sig = s.Sign("GET", "/x", nil, later)
	if err := v.Verify("GET", "/x", nil, ts, nonce, sig, later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if len(v.seen) != 1 {
		t.Fatalf("cache holds %d nonces after expiry, want 1", len(v.seen))
	}
}

func TestRainPath(t *testing.T) {
	if got := RainPath(PathStart, "Ab_9"); got != "/internal/v1/rains/Ab_9/start" {
		t.Fatal(got)
	}
}

// Client signs the request target it sends (path and query), which a server checks against
// the target as received (net/http's Request.RequestURI).
func TestClientSignsRequestTarget(t *testing.T) {
	v := NewVerifier("k")
	var targets []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		targets = append(targets, r.RequestURI)
		if err := v.Verify(r.Method, r.RequestURI, body, r.Header.Get(HeaderTime), r.Header.Get(HeaderNonce),
			r.Header.Get(HeaderSignature), time.Now()); err != nil {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	c := NewClient("k", 5*time.Second)
	addr := srv.Listener.Addr().String()
	for _, target := range []string{PathProgress, PathProgress + "?code=abc", PathProgress + "?code=a&code=b"} {
		if err := c.Do(t.Context(), "GET", addr, target, nil, nil); err != nil {
			t.Errorf("GET %s: %v", target, err)
		}
	}
	if err := c.Do(t.Context(), "POST", addr, RainPath(PathStart, "abc"), Start{Epoch: 1}, nil); err != nil {
		t.Errorf("POST start: %v", err)
	}
	if len(targets) != 4 || targets[1] != PathProgress+"?code=abc" {
		t.Fatalf("server saw %q", targets)
	}
}
