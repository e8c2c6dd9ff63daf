package bench

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"redrain/internal/check"
	"redrain/internal/tap"
)

// Users tap until the nodes are empty: every packet is handed out once, no user beyond its
// cap, every user only on its routed node, the stop reason says drained, and the time series
// adds up to the answers.
func TestLoadClosedDrains(t *testing.T) {
	a, b := startFake(t, "a", 600, 5, 0), startFake(t, "b", 400, 5, 0)
	nodes := fakeAddrs(a, b)
	live := &Live{}
	res := Load(context.Background(), LoadOptions{Nodes: nodes, Code: "r", Users: 500, Conns: 8,
		Time: 30 * time.Second, Interval: 20 * time.Millisecond, Live: live})
	if res.Stop != StopDrained || !res.Drained() {
		t.Fatalf("stop %q, exhausted %v", res.Stop, res.Exhausted)
	}
	ids := map[string]bool{}
	perUser := map[uint64]int{}
	var claims, seriesClaims, seriesAnswers int64
	for _, an := range res.Answers {
		if want := nodes[tap.Route(an.User, 2)]; an.Node != want {
			t.Fatalf("user %d tapped %s, routed to %s", an.User, an.Node, want)
		}
		if an.Status != 200 {
			continue
		}
		if ids[an.ClaimID] {
			t.Fatalf("claim %s twice", an.ClaimID)
		}
		ids[an.ClaimID] = true
		perUser[an.User]++
		claims++
	}
	for u, n := range perUser {
		if n > 5 {
			t.Fatalf("user %d got %d", u, n)
		}
	}
	if claims != 1000 || live.Claims() != 1000 || res.ClaimLatency.TotalCount() != 1000 {
		t.Fatalf("claims %d, live %d, histogram %d; want 1000", claims, live.Claims(), res.ClaimLatency.TotalCount())
	}
	for _, iv := range res.Series {
		seriesClaims += iv.Claims
		seriesAnswers += iv.Answers
	}
	if seriesClaims != claims || seriesAnswers != int64(len(res.Answers)) || res.Latency.TotalCount() != seriesAnswers {
		t.Fatalf("series %d claims / %d answers, load %d / %d", seriesClaims, seriesAnswers, claims, len(res.Answers))
	}
}

// With more packets than users may take, every user taps until user_limit, exactly once.
func TestLoadUsersDone(t *testing.T) {
	a := startFake(t, "a", 10_000, 3, 0)
	res := Load(context.Background(), LoadOptions{Nodes: fakeAddrs(a), Code: "r", Users: 200, Conns: 16, Time: 30 * time.Second})
	if res.Stop != StopUsersDone || res.Drained() {
		t.Fatalf("stop %q", res.Stop)
	}
	ok, limit := map[uint64]int{}, map[uint64]int{}
	for _, an := range res.Answers {
		switch check.StatusWord(an) {
		case "ok":
			ok[an.User]++
		case "user_limit":
			limit[an.User]++
		default:
			t.Fatalf("answer %+v", an)
		}
	}
	for u := uint64(1); u <= 200; u++ {
		if ok[u] != 3 || limit[u] != 1 {
			t.Fatalf("user %d: %d ok, %d user_limit; want 3, 1", u, ok[u], limit[u])
		}
	}
}

// An endless rain: the load stops at its time, or when the caller cancels.
func TestLoadStopsAtTimeAndCancel(t *testing.T) {
	a := startFake(t, "a", -1, 1_000_000, 0)
	res := Load(context.Background(), LoadOptions{Nodes: fakeAddrs(a), Code: "r", Users: 10, Conns: 4, Time: 200 * time.Millisecond})
	if res.Stop != StopTime || res.Elapsed < 200*time.Millisecond || res.Elapsed > 5*time.Second {
		t.Fatalf("stop %q after %v", res.Stop, res.Elapsed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.mu.Lock()
	a.onClaim = func(seq int) { // cancel once the load is under way
		if seq >= a.seq0+50 {
			cancel()
		}
	}
	a.seq0 = a.seq
	a.mu.Unlock()
	res = Load(ctx, LoadOptions{Nodes: fakeAddrs(a), Code: "r", Users: 10, Conns: 4, Time: time.Minute})
	if res.Stop != StopCancelled || res.Elapsed > 30*time.Second {
		t.Fatalf("stop %q after %v", res.Stop, res.Elapsed)
	}
}

// Open loop sends at the schedule's pace, never more: tap i is due at i/rate.
func TestLoadOpenLoopRate(t *testing.T) {
	a := startFake(t, "a", -1, 1_000_000, 0)
	const rate, d = 1000.0, 500 * time.Millisecond
	res := Load(context.Background(), LoadOptions{Nodes: fakeAddrs(a), Code: "r", Users: 100, Conns: 16, Rate: rate, Time: d})
	n := len(res.Answers)
	if n > int(rate*d.Seconds())+1 || n < int(rate*d.Seconds()*0.5) {
		t.Fatalf("%d taps in %v at %v/s", n, d, rate)
	}
}

// No coordinated omission: against a server that takes 20 ms per claim on one connection,
// a closed loop sees ~20 ms, while an open loop at 200/s (one tap due every 5 ms) sees the
// queue build up, because latency counts from each tap's due time.
func TestLoadOpenLoopCountsQueueing(t *testing.T) {
	a := startFake(t, "a", -1, 1_000_000, 20*time.Millisecond)
	o := LoadOptions{Nodes: fakeAddrs(a), Code: "r", Users: 5, Conns: 1, Time: 400 * time.Millisecond}
	closed := Load(context.Background(), o)
	o.Rate = 200
	open := Load(context.Background(), o)
	cp50, omax := closed.Latency.ValueAtQuantile(50)/1000, open.Latency.Max()/1000
	t.Logf("closed p50 %d ms (%d taps), open max %d ms (%d taps)", cp50, len(closed.Answers), omax, len(open.Answers))
	if cp50 < 20 || cp50 > 150 {
		t.Errorf("closed loop p50 %d ms, want about 20", cp50)
	}
	if omax < 150 {
		t.Errorf("open loop max %d ms: the queueing behind slow answers was not counted", omax)
	}
}

func TestSchedule(t *testing.T) {
	start := time.Unix(1000, 0)
	s := &Schedule{Start: start, Rate: 4000}
	if !s.At(0).Equal(start) || !s.At(4000).Equal(start.Add(time.Second)) || !s.At(1).Equal(start.Add(250*time.Microsecond)) {
		t.Fatalf("At: %v %v %v", s.At(0), s.At(1), s.At(4000))
	}
	var mu sync.Mutex
	seen := map[time.Time]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				at := s.Take()
				mu.Lock()
				seen[at] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i := int64(0); i < 4000; i++ {
		if !seen[s.At(i)] {
			t.Fatalf("tap %d (due %v) never taken: Take skipped or repeated a slot", i, s.At(i))
		}
	}
}

// Per-worker histograms merged give the same figures as one histogram of every value.
func TestMergeHistograms(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	whole := NewHistogram()
	parts := []*hdrhistogram.Histogram{NewHistogram(), NewHistogram(), NewHistogram()}
	for i := 0; i < 30_000; i++ {
		v := int64(r.ExpFloat64()*2000) + 1
		if i%997 == 0 {
			v = 5_000_000 // a few slow ones
		}
		record(whole, v)
		record(parts[i%3], v)
	}
	record(parts[0], histMax*10) // clamped, not dropped
	record(whole, histMax*10)
	m := MergeHistograms(parts...)
	if Summarize(m) != Summarize(whole) || m.Min() != whole.Min() {
		t.Fatalf("merged %+v, whole %+v", Summarize(m), Summarize(whole))
	}
	if m.TotalCount() != 30_001 {
		t.Fatalf("merged count %d", m.TotalCount())
	}
}

func TestJudge(t *testing.T) {
	for _, c := range []struct {
		a    check.Answer
		want verdict
	}{
		{check.Answer{Status: 200, ClaimID: "x"}, tapAgain},
		{check.Answer{Status: 429, Error: "user_limit"}, userDone},
		{check.Answer{Status: 429, Error: "rate_limited"}, tapAgain},
		{check.Answer{Status: 410, Error: "exhausted"}, nodeEmpty},
		{check.Answer{Status: 410, Error: "finished"}, nodeOver},
		{check.Answer{Status: 404, Error: "unknown_rain"}, nodeOver},
		{check.Answer{Status: 425, Error: "not_started"}, tapAgain},
		{check.Answer{Status: 503, Error: "journal_unavailable"}, tapAgain},
		{check.Answer{Status: 0, Error: "dial tcp: connection refused"}, tapAgain},
		{check.Answer{Status: 400, Error: "bad_user"}, userDone},
	} {
		if got := judge(c.a.Status, []byte(c.a.Error)); got != c.want {
			t.Errorf("judge(%+v) = %v, want %v", c.a, got, c.want)
		}
	}
}
