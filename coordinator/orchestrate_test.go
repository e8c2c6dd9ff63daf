package coordinator

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"redrain/gossip"
	"redrain/internal/testcluster"
	"redrain/internal/wire"
	"redrain/ledger"
	"redrain/rain"
)

const rainBody = `{"anchor_id":1,"total_amount":100003,"total_count":1001,"duration_s":600}`

func rainPath(code, op string) string { return "/v1/rains/" + code + op }

// prepared creates a rain and prepares it.
func (tc *testCluster) prepared(body string) *Rain {
	tc.t.Helper()
	r := tc.c.create(tc.t, body)
	return tc.c.mustRain(tc.t, 200, "POST", rainPath(r.Code, "/prepare"), anchorJSON(r.AnchorID))
}

// started creates, prepares and starts a rain.
func (tc *testCluster) started(body string) *Rain {
	tc.t.Helper()
	r := tc.prepared(body)
	return tc.c.mustRain(tc.t, 200, "POST", rainPath(r.Code, "/start"), anchorJSON(r.AnchorID))
}

func TestPrepareOneSliceEach(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	r := tc.prepared(`{"anchor_id":1,"room_id":9,"total_amount":100003,"total_count":1001,"max_per_user":3,"min_claim_interval_ms":250,"algorithm":"line_cut"}`)
	if r.Status != rain.Prepared || r.Epoch != 1 || len(r.Slices) != 3 {
		t.Fatalf("prepared: %+v", r)
	}
	var amount, count int64
	for _, f := range tc.fakes {
		ss := f.slicesOf(r.Code)
		if len(ss) != 1 {
			t.Fatalf("node %s got %d slices, want 1", f.id, len(ss))
		}
		s := ss[0]
		if s.Epoch != 1 || s.Node != f.id || s.Algorithm != rain.LineCut || s.Validate() != nil {
			t.Fatalf("node %s got %+v", f.id, s)
		}
		want := wire.RainRules{Code: r.Code, MaxPerUser: 3, MinClaimIntervalMS: 250, RoomID: 9, Holders: holderIDs(tc.fakes)}
		if got := f.rules[r.Code]; !reflect.DeepEqual(got, want) {
			t.Fatalf("rules: %+v", got)
		}
		amount, count = amount+s.Amount, count+s.Count
	}
	if amount != r.TotalAmount || count != r.TotalCount {
		t.Fatalf("slices add up to %d/%d, want %d/%d", amount, count, r.TotalAmount, r.TotalCount)
	}
	tc.c.expectError(t, 409, "conflict", "POST", rainPath(r.Code, "/prepare"), anchorJSON(1))
	st, b := tc.c.call(t, "GET", "/v1/nodes", "")
	for _, f := range tc.fakes {
		want := fmt.Sprintf(`{"id":%q,"addr":%q,"state":"alive","slices":1}`, f.id, f.addr)
		if st != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("nodes lack %s: %s", want, b)
		}
	}
}

func TestConcurrentPrepare(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	r := tc.c.create(t, rainBody)
	const n = 8
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _ := call(t, tc.c.base, testToken, "POST", rainPath(r.Code, "/prepare"), anchorJSON(1))
			codes <- st
		}()
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for st := range codes {
		got[st]++
	}
	if got[200] != 1 || got[409] != n-1 {
		t.Fatalf("answers %v, want one 200 and %d 409", got, n-1)
	}
	for _, f := range tc.fakes {
		if ss := f.slicesOf(r.Code); len(ss) != 1 || ss[0].Epoch != 1 {
			t.Fatalf("node %s got %+v, want one slice of epoch 1", f.id, ss)
		}
	}
}

func TestPrepareTimeoutAbandons(t *testing.T) {
	const timeout = 400 * time.Millisecond
	tc := newTestCluster(t, 3, func(o *Options) { o.PrepareTimeout = timeout })
	tc.fakes[1].setHang(true)
	r := tc.c.create(t, rainBody)
	t0 := time.Now()
	tc.c.expectError(t, 503, "prepare_failed", "POST", rainPath(r.Code, "/prepare"), anchorJSON(1))
	if el := time.Since(t0); el < timeout || el > timeout+3*time.Second {
		t.Fatalf("prepare failed after %v, want about %v", el, timeout)
	}
	got := tc.c.mustRain(t, 200, "GET", rainPath(r.Code, ""), "")
	if got.Status != rain.Waiting || len(got.Slices) != 0 || got.Epoch != 1 {
		t.Fatalf("after a failed prepare: %+v", got)
	}
	for _, f := range tc.fakes {
		testcluster.Eventually(t, 5*time.Second, "discard of epoch 1 on "+f.id, func() bool {
			d := f.discardsOf(r.Code)
			return len(d) == 1 && d[0] == 1
		})
	}
	if rec, _ := tc.c.store.get(r.Code); rec.Preparing {
		t.Fatal("preparing marker left set")
	}
	// The next prepare uses a new epoch; nothing of epoch 1 is ever started.
	tc.fakes[1].setHang(false)
	p := tc.c.mustRain(t, 200, "POST", rainPath(r.Code, "/prepare"), anchorJSON(1))
	if p.Epoch != 2 || p.Status != rain.Prepared {
		t.Fatalf("second prepare: %+v", p)
	}
	s := tc.c.mustRain(t, 200, "POST", rainPath(r.Code, "/start"), anchorJSON(1))
	for _, f := range tc.fakes {
		testcluster.Eventually(t, 5*time.Second, "start on "+f.id, func() bool { return len(f.startsOf(r.Code)) == 1 })
		if st := f.startsOf(r.Code)[0]; st.Epoch != 2 {
			t.Fatalf("node %s started on epoch %d", f.id, st.Epoch)
		}
	}
	_ = s
}

// TestRestartAbandonsPreparing: a coordinator that died mid-prepare left the marker; the next
// one abandons that epoch (discard sent, waiting) and prepares under a new one.
func TestRestartAbandonsPreparing(t *testing.T) {
	tc := newTestCluster(t, 2, nil)
	r := tc.c.create(t, rainBody)
	tc.c.stop()
	// What a crash after the marker commit and one delivered slice leaves behind.
	st, err := openStore(tc.dir+"/"+storeFile, openTimeout)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := rain.Plan(rain.PlanInput{Code: r.Code, Epoch: 1, TotalAmount: r.TotalAmount, TotalCount: r.TotalCount,
		Nodes: []string{"n1", "n2"}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.update(r.Code, func(rec *record) error {
		rec.Epoch, rec.Preparing, rec.Pending = 1, true, plan
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if codes, _ := st.preparing(); len(codes) != 1 {
		t.Fatalf("preparing index: %v", codes)
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	tc.c = launchCoordinator(t, tc.redis.URL(), tc.dir, func(o *Options) {
		o.Join = []string{tc.fakes[0].cluster.GossipAddr()}
	})
	got := tc.c.mustRain(t, 200, "GET", rainPath(r.Code, ""), "")
	if got.Status != rain.Waiting || got.Epoch != 1 || len(got.Slices) != 0 {
		t.Fatalf("after restart: %+v", got)
	}
	if codes, _ := tc.c.store.preparing(); len(codes) != 0 {
		t.Fatalf("marker still set: %v", codes)
	}
	for _, f := range tc.fakes {
		testcluster.Eventually(t, 10*time.Second, "discard of epoch 1 on "+f.id, func() bool {
			d := f.discardsOf(r.Code)
			return len(d) == 1 && d[0] == 1
		})
	}
	tc.waitAlive(2)
	p := tc.c.mustRain(t, 200, "POST", rainPath(r.Code, "/prepare"), anchorJSON(1))
	if p.Epoch != 2 {
		t.Fatalf("prepare after restart: epoch %d, want 2", p.Epoch)
	}
}

func TestStartStop(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	t0 := time.Now()
	r := tc.started(rainBody)
	if r.Status != rain.Raining || r.StartedAt == nil || r.EndsAt == nil {
		t.Fatalf("started: %+v", r)
	}
	startedAt, _ := time.Parse(time.RFC3339, *r.StartedAt)
	endsAt, _ := time.Parse(time.RFC3339, *r.EndsAt)
	if startedAt.Before(t0.Add(-time.Second)) || endsAt.Sub(startedAt) != 600*time.Second {
		t.Fatalf("started_at %v ends_at %v", startedAt, endsAt)
	}
	for _, f := range tc.fakes {
		testcluster.Eventually(t, 5*time.Second, "start on "+f.id, func() bool { return len(f.startsOf(r.Code)) == 1 })
		s := f.startsOf(r.Code)[0]
		if s.Epoch != 1 || s.StartsAt/1e6 != startedAt.UnixMilli() || s.EndsAt-s.StartsAt != int64(600*time.Second) {
			t.Fatalf("node %s got %+v", f.id, s)
		}
		testcluster.Eventually(t, 5*time.Second, "started news on "+f.id, func() bool {
			n, ok := f.cluster.NewsFor(r.Code)
			return ok && n.Kind == gossip.KindStarted && n.Epoch == 1 && n.EndsAt/1e6 == endsAt.UnixMilli()
		})
	}
	rdb := tc.redis.Client()
	testcluster.Eventually(t, 5*time.Second, "redrain:rains entry", func() bool {
		score, err := rdb.ZScore(context.Background(), ledger.RainsKey, r.Code).Result()
		return err == nil && int64(score) == startedAt.Unix()
	})
	tc.c.expectError(t, 409, "conflict", "POST", rainPath(r.Code, "/start"), anchorJSON(1))
	tc.c.expectError(t, 409, "conflict", "POST", rainPath(r.Code, "/prepare"), anchorJSON(1))
	tc.c.expectError(t, 403, "forbidden", "POST", rainPath(r.Code, "/stop"), anchorJSON(2))

	s := tc.c.mustRain(t, 200, "POST", rainPath(r.Code, "/stop"), anchorJSON(1))
	if s.Status != rain.Finished || s.StoppedAt == nil {
		t.Fatalf("stopped: %+v", s)
	}
	for _, f := range tc.fakes {
		testcluster.Eventually(t, 5*time.Second, "stop on "+f.id, func() bool { return f.count(f.stops, r.Code) == 1 })
		testcluster.Eventually(t, 5*time.Second, "stopped news on "+f.id, func() bool {
			// versions: 1 prepared, 2 started, 3 stopped
			n, ok := f.cluster.NewsFor(r.Code)
			return ok && n.Kind == gossip.KindStopped && n.Version == 3 && n.StoppedAt > 0
		})
	}
	tc.c.expectError(t, 409, "conflict", "POST", rainPath(r.Code, "/stop"), anchorJSON(1))
	tc.c.expectError(t, 409, "conflict", "POST", rainPath(r.Code, "/start"), anchorJSON(1))
	for _, n := range []int{1, 2, 3} {
		if got := tc.fakes[n-1].startsOf(r.Code); len(got) != 1 {
			t.Fatalf("node n%d was started %d times", n, len(got))
		}
	}
}

func TestConcurrentStart(t *testing.T) {
	tc := newTestCluster(t, 2, nil)
	r := tc.prepared(rainBody)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[int]int{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _ := call(t, tc.c.base, testToken, "POST", rainPath(r.Code, "/start"), anchorJSON(1))
			mu.Lock()
			got[st]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if got[200] != 1 || got[409] != 7 {
		t.Fatalf("answers %v, want one 200 and seven 409", got)
	}
}

func TestCancelPrepared(t *testing.T) {
	tc := newTestCluster(t, 2, nil)
	r := tc.prepared(rainBody)
	s := tc.c.mustRain(t, 200, "POST", rainPath(r.Code, "/stop"), anchorJSON(1))
	if s.Status != rain.Cancelled {
		t.Fatalf("stop of a prepared rain: %+v", s)
	}
	for _, f := range tc.fakes {
		testcluster.Eventually(t, 5*time.Second, "discard on "+f.id, func() bool {
			d := f.discardsOf(r.Code)
			return len(d) == 1 && d[0] == 1
		})
	}
	rep := tc.c.report(t, r.Code)
	if rep.LeftoverAmount != r.TotalAmount || rep.ClaimedAmount != 0 || rep.LostAmount != 0 {
		t.Fatalf("report of a cancelled rain: %+v", rep)
	}
}

// TestReport: live nodes count from their progress, a dead one from what it flushed to Redis
// (the rest lost), one that left gracefully from Redis with its recorded leftover.
func TestReport(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	r := tc.started(rainBody)
	slice := map[string]rain.Slice{}
	for _, f := range tc.fakes {
		slice[f.id] = f.slicesOf(r.Code)[0]
	}
	tc.fakes[0].setClaims(r.Code, 10, 1000, 4, 400)
	rep := tc.c.report(t, r.Code)
	n1 := rep.Nodes[0]
	if n1.Node != "n1" || n1.State != "alive" || n1.ClaimedAmount != 1000 || n1.ClaimedCount != 10 ||
		n1.FlushedAmount != 400 || n1.SliceAmount != slice["n1"].Amount || n1.SliceCount != slice["n1"].Count {
		t.Fatalf("n1: %+v", n1)
	}
	if rep.LeftoverAmount != r.TotalAmount-1000 || rep.LostAmount != 0 || rep.ClaimedAmount != 1000 {
		t.Fatalf("all alive: %+v", rep)
	}

	// Redis: what the flushers applied (the ledger's keys), n2's leftover record.
	ctx := context.Background()
	rdb := tc.redis.Client()
	k := ledger.Keys(r.Code)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rdb.HSet(ctx, k.Totals, "claimed_count", 4+5+7, "claimed_amount", 400+500+700, "max_amount", 150).Err())
	must(rdb.HSet(ctx, k.Nodes, "n1:claimed_count", 4, "n1:claimed_amount", 400,
		"n2:claimed_count", 5, "n2:claimed_amount", 500, "n3:claimed_count", 7, "n3:claimed_amount", 700).Err())
	must(ledger.RecordLeftover(ctx, rdb, r.Code, "n2", slice["n2"].Amount-500))
	if err := tc.fakes[1].cluster.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	tc.fakes[1].die()
	tc.fakes[2].die()
	testcluster.Eventually(t, 10*time.Second, "n2 left and n3 dead", func() bool {
		m := tc.c.nodeMembers()
		return m["n2"].State == gossip.StateLeft && m["n3"].State == gossip.StateDead
	})
	rep = tc.c.report(t, r.Code)
	want := []NodeReport{
		{Node: "n1", State: "alive", SliceAmount: slice["n1"].Amount, SliceCount: slice["n1"].Count, ClaimedAmount: 1000, ClaimedCount: 10, FlushedAmount: 400,
			LeftoverAmount: slice["n1"].Amount - 1000},
		{Node: "n2", State: "left", SliceAmount: slice["n2"].Amount, SliceCount: slice["n2"].Count, ClaimedAmount: 500, ClaimedCount: 5, FlushedAmount: 500,
			LeftoverAmount: slice["n2"].Amount - 500},
		{Node: "n3", State: "dead", SliceAmount: slice["n3"].Amount, SliceCount: slice["n3"].Count, ClaimedAmount: 700, ClaimedCount: 7, FlushedAmount: 700,
			LostAmount: slice["n3"].Amount - 700},
	}
	if fmt.Sprint(rep.Nodes) != fmt.Sprint(want) {
		t.Fatalf("nodes:\n got %+v\nwant %+v", rep.Nodes, want)
	}
	wantLeft := (slice["n1"].Amount - 1000) + (slice["n2"].Amount - 500)
	if rep.ClaimedAmount != 2200 || rep.ClaimedCount != 22 || rep.LeftoverAmount != wantLeft ||
		rep.LostAmount != slice["n3"].Amount-700 || rep.FlushedAmount != 1600 || rep.MaxAmount != 150 {
		t.Fatalf("report: %+v", rep)
	}
	got := tc.c.mustRain(t, 200, "GET", rainPath(r.Code, ""), "")
	if got.ClaimedAmount != 1600 || got.ClaimedCount != 16 || got.MaxAmount != 150 {
		t.Fatalf("rain object's figures are not Redis's: %+v", got)
	}
}

// TestFinishAndSettle: finished when every live holder is exhausted, settled when every holder
// flushed all it journaled.
func TestFinishAndSettle(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	r := tc.started(rainBody)
	for _, f := range tc.fakes[:2] {
		s := f.slicesOf(r.Code)[0]
		f.setClaims(r.Code, s.Count, s.Amount, 0, 0)
	}
	last := tc.fakes[2].slicesOf(r.Code)[0]
	tc.fakes[2].setClaims(r.Code, last.Count-1, last.Amount-5, 0, 0)
	status := func() rain.Status {
		rec, err := tc.c.store.get(r.Code)
		if err != nil {
			t.Fatal(err)
		}
		return rec.Status
	}
	// Several loop rounds polled progress: one holder still has a packet, so it keeps raining.
	tc.waitTicks(5)
	if st := status(); st != rain.Raining {
		t.Fatalf("status %s while a holder has packets left", st)
	}
	tc.fakes[2].setClaims(r.Code, last.Count, last.Amount, 0, 0)
	testcluster.Eventually(t, 5*time.Second, "finished", func() bool { return status() == rain.Finished })
	for _, f := range tc.fakes {
		testcluster.Eventually(t, 5*time.Second, "stop on "+f.id, func() bool { return f.count(f.stops, r.Code) == 1 })
	}
	rep := tc.c.report(t, r.Code)
	if rep.ClaimedAmount != r.TotalAmount || rep.LeftoverAmount != 0 || rep.LostAmount != 0 {
		t.Fatalf("exhausted rain's report: %+v", rep)
	}
	// Two holders flushed everything, one not yet: finished until it has.
	for _, f := range tc.fakes[:2] {
		s := f.slicesOf(r.Code)[0]
		f.setClaims(r.Code, s.Count, s.Amount, s.Count, s.Amount)
	}
	tc.fakes[2].setClaims(r.Code, last.Count, last.Amount, last.Count-1, last.Amount-5)
	tc.waitTicks(5)
	if st := status(); st != rain.Finished {
		t.Fatalf("status %s while a holder has not flushed", st)
	}
	tc.fakes[2].setClaims(r.Code, last.Count, last.Amount, last.Count, last.Amount)
	testcluster.Eventually(t, 5*time.Second, "settled", func() bool { return status() == rain.Settled })
	for _, f := range tc.fakes {
		testcluster.Eventually(t, 5*time.Second, "settle on "+f.id, func() bool { return f.count(f.settles, r.Code) == 1 })
	}
}

// TestFinishAtEndsAtAndSettleWithDeadHolder: the duration ends the rain; a dead holder does
// not hold up settling.
func TestFinishAtEndsAtAndSettleWithDeadHolder(t *testing.T) {
	tc := newTestCluster(t, 2, nil)
	r := tc.started(`{"anchor_id":1,"total_amount":1000,"total_count":100,"duration_s":1}`)
	s1 := tc.fakes[0].slicesOf(r.Code)[0]
	tc.fakes[0].setClaims(r.Code, 3, 30, 3, 30)
	tc.fakes[1].setClaims(r.Code, 2, 20, 0, 0) // never flushes: it dies
	tc.fakes[1].die()
	status := func() rain.Status {
		rec, _ := tc.c.store.get(r.Code)
		return rec.Status
	}
	testcluster.Eventually(t, 10*time.Second, "finished at ends_at", func() bool { return status() != rain.Raining })
	rec, _ := tc.c.store.get(r.Code)
	if rec.StoppedAt < rec.EndsAt {
		t.Fatalf("finished at %d before ends_at %d", rec.StoppedAt, rec.EndsAt)
	}
	testcluster.Eventually(t, 10*time.Second, "settled with a dead holder", func() bool { return status() == rain.Settled })
	rep := tc.c.report(t, r.Code)
	if rep.ClaimedAmount != 30 || rep.LostAmount != r.TotalAmount-s1.Amount || rep.LeftoverAmount != s1.Amount-30 {
		t.Fatalf("report: %+v", rep)
	}
}

// TestRestartMidRain: a restarted coordinator finds the nodes again and carries the rain on.
func TestRestartMidRain(t *testing.T) {
	tc := newTestCluster(t, 2, nil)
	r := tc.started(rainBody)
	tc.fakes[0].setClaims(r.Code, 3, 300, 1, 100)
	tc.restart(func(o *Options) { o.Join = []string{tc.fakes[1].cluster.GossipAddr()} })
	tc.waitAlive(2)
	got := tc.c.mustRain(t, 200, "GET", rainPath(r.Code, ""), "")
	if got.Status != rain.Raining || got.Epoch != 1 || len(got.Slices) != 2 {
		t.Fatalf("after restart: %+v", got)
	}
	if rep := tc.c.report(t, r.Code); rep.ClaimedAmount != 300 || rep.Nodes[0].FlushedAmount != 100 {
		t.Fatalf("report after restart: %+v", rep)
	}
	for _, f := range tc.fakes {
		s := f.slicesOf(r.Code)[0]
		f.setClaims(r.Code, s.Count, s.Amount, s.Count, s.Amount)
	}
	testcluster.Eventually(t, 10*time.Second, "settled after restart", func() bool {
		rec, err := tc.c.store.get(r.Code)
		return err == nil && rec.Status == rain.Settled
	})
	tc.c.expectError(t, 409, "conflict", "POST", rainPath(r.Code, "/start"), anchorJSON(1))
}

// holderIDs is the sorted ids of fakes: the holders a prepare over all of them names.
func holderIDs(fakes []*fakeNode) []string {
	var ids []string
	for _, f := range fakes {
		ids = append(ids, f.id)
	}
	slices.Sort(ids)
	return ids
}
