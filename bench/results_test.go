package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"redrain/adminapi"
	"redrain/internal/check"
	"redrain/rain"
)

func sampleResults() *Results {
	l := &LoadResult{Start: time.Unix(0, 0), Elapsed: 2 * time.Second, Stop: StopDrained, Exhausted: []bool{true, true},
		Latency: NewHistogram(), ClaimLatency: NewHistogram(), CPU: 20 * time.Millisecond}
	ms := time.Millisecond
	for i, a := range []check.Answer{
		{Node: "x", At: 1 * ms, Status: 200, ClaimID: "a", Amount: 1, User: 1},
		{Node: "y", At: 2 * ms, Status: 200, ClaimID: "b", Amount: 9, User: 2},
		{Node: "y", At: 4 * ms, Status: 200, ClaimID: "c", Amount: 5, User: 3},
		{Node: "x", At: 5 * ms, Status: 429, Error: "user_limit"},
		{Node: "y", At: 6 * ms, Status: 410, Error: "exhausted"}, {Node: "x", At: 3 * ms, Status: 410, Error: "exhausted"},
		{Node: "y", At: 7 * ms, Status: 0, Error: "dial tcp: refused"},
		{Node: "x", At: 8 * ms, Status: 502, Error: "undecodable answer: invalid character"},
	} {
		l.Answers = append(l.Answers, a)
		record(l.Latency, int64(500*(i+1)))
		if a.Status == 200 {
			record(l.ClaimLatency, int64(1500*(i+1)))
		}
	}
	r := &Results{Code: "CODE", Cluster: "local", Nodes: []string{"x", "y"},
		Rain: rain.Config{TotalAmount: 15, TotalCount: 3, MaxPerUser: 1, Algorithm: rain.DoubleAverage},
		Load: LoadSpec{Mode: "closed", Users: 12345, Conns: 64, TimeS: 10}, Redis: Figures{3, 15}, Journaled: Figures{3, 15},
		Report: &adminapi.Report{Status: rain.Finished, ClaimedAmount: 15, TotalAmount: 15}, Verified: true, Violations: []string{}}
	r.FillLoad(l)
	return r
}

func TestFillLoad(t *testing.T) {
	r := sampleResults()
	want := map[string]int64{"ok": 3, "user_limit": 1, "exhausted": 2, "network": 1, "http_502": 1}
	for w, n := range want {
		if r.ByStatus[w] != n {
			t.Errorf("by status %q = %d, want %d (%v)", w, r.ByStatus[w], n, r.ByStatus)
		}
	}
	if r.Claims != 3 || r.Answers != 8 || r.Amounts != (Amounts{Min: 1, Mean: 5, Max: 9, Sum: 15}) || !r.Drained {
		t.Fatalf("%+v", r)
	}
	if r.FirstExhaustedS == nil || *r.FirstExhaustedS != 0.003 || r.BeforeExhausted != 2 || r.BeforeExhaustedPct < 66.6 ||
		r.BeforeExhaustedPct > 66.7 || len(r.PerNode) != 2 {
		t.Fatalf("exhaustion: first %v, before %d (%.2f%%), per node %+v", r.FirstExhaustedS, r.BeforeExhausted,
			r.BeforeExhaustedPct, r.PerNode)
	}
	x, y := r.PerNode[0], r.PerNode[1]
	if x.Addr != "x" || x.Answers != 4 || x.Claims != 1 || x.BeforeExhausted != 1 || x.Exhausted != 1 || *x.FirstExhaustedS != 0.003 ||
		y.Addr != "y" || y.Answers != 4 || y.Claims != 2 || y.BeforeExhausted != 1 || y.Exhausted != 1 || *y.FirstExhaustedS != 0.006 {
		t.Fatalf("per node: %+v %+v", x, y)
	}
	if r.ClaimsPerSec != 1.5 || r.ClaimLatency.Count != 3 || r.AnswerLatency.Max < 4000 {
		t.Fatalf("rates/latency: %v %+v %+v", r.ClaimsPerSec, r.ClaimLatency, r.AnswerLatency)
	}
}

func TestTable(t *testing.T) {
	r := sampleResults()
	var b bytes.Buffer
	if err := Table(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Log("\n" + out)
	for _, want := range []string{
		"rain         CODE: 3 packets, 15 cents, double_average, max 1 per user",
		"load         12,345 users, closed loop, 64 conns, balance sticky, at most 10s",
		"exhausted    first at 0.00 s; 2 packets handed out before it: 66.7% of 3",
		"node 1       x  ok 1 (1 before the first exhausted)  exhausted 1 (first at 0.00 s)",
		"journal db   not read",
		"stopped      drained after 2.00 s",
		"answers      ok 3  exhausted 2  http_502 1  network 1  user_limit 1",
		"latency ok   p50 3.00ms  p90 4.50ms  p99 4.50ms  p99.9 4.50ms  max 4.50ms",
		"redis        3 claims, 15 cents == journals 3 / 15",
		"amounts      min 1  mean 5.0  max 9 cents",
		"load CPU     0.02 s: 2500.0 µs per answer",
		"leftover 0, lost 0, finished",
		"invariants   verified",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	r.Verified, r.Violations = false, []string{"claim_id x answered twice", "overpay: answered 20"}
	b.Reset()
	Table(&b, r)
	if out := b.String(); !strings.Contains(out, "invariants   VIOLATED (2)\n             - claim_id x answered twice\n             - overpay") {
		t.Errorf("violations not listed:\n%s", out)
	}
	if r.Err() == nil || !strings.Contains(r.Err().Error(), "answered twice") {
		t.Errorf("Err: %v", r.Err())
	}
}

func TestLoadTable(t *testing.T) {
	var b bytes.Buffer
	if err := LoadTable(&b, sampleResults()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"target       x, y, rain CODE",
		"answers/s    4  (8 answers; 3 claims, 2/s)",
		"answers      ok 3  exhausted 2",
		"load CPU     0.02 s: 2500.0 µs per answer (bench's own, user+sys)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("load table lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	r := sampleResults()
	p, err := r.WriteJSON(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back["verified"] != true || back["claims"] != 3.0 || back["claim_latency_us"].(map[string]any)["p99"] == nil ||
		back["load_cpu_s"] != 0.02 {
		t.Fatalf("results.json: %s", b)
	}
}

func TestFormatting(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 10_000_000: "10,000,000"} {
		if got := Commas(n); got != want {
			t.Errorf("Commas(%d) = %q", n, got)
		}
	}
	for us, want := range map[int64]string{850: "850µs", 1500: "1.50ms", 2_345_678: "2.35s"} {
		if got := Micros(us); got != want {
			t.Errorf("Micros(%d) = %q", us, got)
		}
	}
	live := &Live{}
	live.claims.Store(1234)
	live.amount.Store(5000)
	live.last.Store(&Interval{ClaimsPerSec: 20345.4, P99US: 2100})
	got := ProgressLine(3*time.Second, live, 1_000_000, 10_000_000)
	if want := "  3.0s  claims 1,234 of 1,000,000  20,345/s  p99 2.10ms  budget left 9,995,000 cents"; got != want {
		t.Errorf("ProgressLine = %q, want %q", got, want)
	}
}
