package coordinator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"redrain/internal/logpace"
	"redrain/internal/testcluster"
	"redrain/internal/testredis"
)

// syncBuffer is a log destination the coordinator's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// from returns what was written after the first off bytes.
func (s *syncBuffer) from(off int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()[off:]
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// refusedLines parses the audit lines of refused requests in log text (one JSON object a line).
func refusedLines(t *testing.T, text string) (lines []map[string]any) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line not JSON: %v: %q", err, l)
		}
		if m["outcome"] == "unauthorized" {
			lines = append(lines, m)
		}
	}
	return lines
}

// 10,000 admin requests refused for a wrong token, each with a path of almost 4 KB, add a few
// KB of log (a burst of lines, then one a second, the code clipped), and every one is counted in
// redrain_coordinator_refused_total{reason="unauthorized"}; the paced lines account for all of
// them (lines + refused_since_last_line).
func TestRefusalsKeepTheLogBounded(t *testing.T) {
	var logs syncBuffer
	c := startCoordinator(t, testredis.New(t).URL(), "", func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	const n, workers = 10_000, 8
	code := strings.Repeat("A", 3800)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	refuse := func(i int) error {
		req, err := http.NewRequest("GET", c.base+"/v1/rains/"+code+"/report", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", fmt.Sprintf("Bearer wrong-token-%d", i))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 {
			return fmt.Errorf("request %d: status %d", i, resp.StatusCode)
		}
		return nil
	}
	before := logs.Len()
	began := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
				if err := refuse(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	elapsed := time.Since(began)
	grown := logs.Len() - before
	maxLines := refusalBurst + int(elapsed.Seconds()) + 1 // the burst, then one a second
	const maxLine = 512
	t.Logf("%d refusals in %v grew the log by %d bytes", n, elapsed.Round(time.Millisecond), grown)
	if grown > maxLines*maxLine {
		t.Fatalf("%d refusals in %v grew the log by %d bytes, want at most %d (%d lines of %d bytes)",
			n, elapsed, grown, maxLines*maxLine, maxLines, maxLine)
	}
	text := logs.from(before)
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if len(l) > maxLine {
			t.Fatalf("a log line of %d bytes: %.300s…", len(l), l)
		}
	}
	lines := refusedLines(t, text)
	if len(lines) == 0 || len(lines) > maxLines {
		t.Fatalf("%d refusal lines in %v, want 1..%d", len(lines), elapsed, maxLines)
	}
	if rain, _ := lines[0]["rain"].(string); !strings.HasPrefix(rain, strings.Repeat("A", logpace.MaxField)+"…") ||
		len(rain) > logpace.MaxField+32 {
		t.Fatalf("the code is logged as %q, want it clipped to %d bytes and marked", rain, logpace.MaxField)
	}
	if got := scrapeRefused(t, c, "unauthorized"); got != n {
		t.Fatalf("redrain_coordinator_refused_total{reason=\"unauthorized\"} = %d, want %d", got, n)
	}
	// One more refusal once the pace allows writes a line that says how many were held back:
	// the lines account for every refusal.
	extra := 0
	testcluster.Eventually(t, 10*time.Second, "a refusal line after a second", func() bool {
		extra++
		if err := refuse(n + extra); err != nil {
			t.Fatal(err)
		}
		return len(refusedLines(t, logs.from(before))) > len(lines)
	})
	lines = refusedLines(t, logs.from(before))
	total := len(lines)
	for _, l := range lines {
		held, ok := l["refused_since_last_line"].(float64)
		if !ok {
			t.Fatalf("a paced line without refused_since_last_line: %v", l)
		}
		total += int(held)
	}
	if total != n+extra {
		t.Fatalf("the lines account for %d refusals, %d were sent", total, n+extra)
	}
}

// scrapeRefused reads redrain_coordinator_refused_total{reason} from /metrics.
func scrapeRefused(t *testing.T, c *running, reason string) int {
	t.Helper()
	st, b := rawCall(t, c.base, "GET", "/metrics", "", "")
	if st != 200 {
		t.Fatalf("metrics: %d", st)
	}
	prefix := fmt.Sprintf(`redrain_coordinator_refused_total{reason=%q} `, reason)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			var n int
			if _, err := fmt.Sscan(v, &n); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in the metrics", strings.TrimSpace(prefix))
	return 0
}

// Requests the server cannot read are refused at the edge: each counted by reason, and
// fasthttp's line for each is paced and does not quote the request.
func TestUnreadRequestsKeepTheLogBounded(t *testing.T) {
	var logs syncBuffer
	c := startCoordinator(t, testredis.New(t).URL(), "", func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	const n = 300
	junk := strings.Repeat("\x01junk", 600) // no method: malformed
	before := logs.Len()
	began := time.Now()
	for range n {
		resp, b := exchange(t, c.Addr(), "GET", junk+"\r\n\r\n")
		checkError(t, resp.StatusCode, b, 400, "bad_request", "junk")
	}
	maxLines := refusalBurst + int(time.Since(began).Seconds()) + 1
	text := logs.from(before)
	if lines := strings.Count(text, "\n"); lines > maxLines || len(text) > maxLines*512 {
		t.Fatalf("%d unread requests wrote %d log lines, %d bytes; want at most %d lines of 512 bytes", n, lines, len(text), maxLines)
	}
	if strings.Contains(text, "junk") {
		t.Fatalf("the log quotes the request: %.300s", text)
	}
	if got := scrapeRefused(t, c, "bad_request"); got != n {
		t.Fatalf("redrain_coordinator_refused_total{reason=\"bad_request\"} = %d, want %d", got, n)
	}
}
