package coordinator_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/tap"
	"redrain/internal/testcluster"
	"redrain/internal/testlocal"
	"redrain/rain"
)

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }

func startCluster(t *testing.T, nodes int, coordinatorLast bool) *cluster.LocalCluster {
	t.Helper()
	return testlocal.Cluster(t, cluster.ClusterOptions{Nodes: nodes, CoordinatorLast: coordinatorLast})
}

func apiStatus(err error) int {
	var e *cluster.APIError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// drain has users claim (each routed to one node by its id) until every node says exhausted.
func drain(t *testing.T, c *cluster.LocalCluster, code string, users int, workers int) []check.Answer {
	t.Helper()
	claimer := tap.NewClaimer(workers)
	addrs := c.NodeAddrs()
	var mu sync.Mutex
	var answers []check.Answer
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				u := next.Add(1)
				if u > int64(users) {
					return
				}
				user := uint64(u)
				for { // a user taps until refused
					a := claimer.Claim(addrs[tap.Route(user, len(addrs))], code, user)
					mu.Lock()
					answers = append(answers, a)
					mu.Unlock()
					if a.Status != 200 {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	return answers
}

// drainUntilFinished drains the rain (drain) and drains it again while the coordinator still has
// it raining: a user refused exhausted while a stock move was on its way (a node waits for one
// only --stock-wait) has left packets that the next round's taps get. The rain finishes when
// every live holder is out of stock with nothing in transit.
func drainUntilFinished(t *testing.T, c *cluster.LocalCluster, code string, users int, workers int) []check.Answer {
	t.Helper()
	answers := drain(t, c, code, users, workers)
	testcluster.Eventually(t, 60*time.Second, "rain finished", func() bool {
		r, err := c.Admin().Get(context.Background(), code)
		if err == nil && r.Status != rain.Raining {
			return true
		}
		answers = append(answers, drain(t, c, code, users, workers)...)
		return false
	})
	return answers
}

// The first whole rain: real processes, create -> prepare -> start -> drained -> settled, and
// every invariant, plus the admin API's refusals along the way.
func TestWholeRain(t *testing.T) {
	c := startCluster(t, 3, false)
	ctx := context.Background()
	adm := c.Admin()
	const total, count, maxPer = int64(5_000_000), int64(9000), 3
	r, err := adm.Create(ctx, rain.Config{AnchorID: 11, RoomID: 5, TotalAmount: total, TotalCount: count,
		MaxPerUser: maxPer, DurationS: 600})
	if err != nil {
		t.Fatal(err)
	}
	code := r.Code
	if len(code) < 22 || r.Status != rain.Waiting {
		t.Fatalf("created %+v", r)
	}
	// Refusals before the rain runs.
	if _, err := cluster.NewAdmin(c.CoordHTTP, "wrong").Get(ctx, code); apiStatus(err) != 401 {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := adm.Act(ctx, code, "prepare", 12); apiStatus(err) != 403 {
		t.Fatalf("wrong anchor: %v", err)
	}
	if _, err := adm.Act(ctx, code, "start", 11); apiStatus(err) != 409 {
		t.Fatalf("start before prepare: %v", err)
	}
	// Concurrent prepares: exactly one wins.
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := adm.Act(ctx, code, "prepare", 11)
			switch apiStatus(err) {
			case 0:
				if err == nil {
					wins.Add(1)
				}
			case 409:
				conflicts.Add(1)
			default:
				t.Errorf("prepare: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != 3 {
		t.Fatalf("concurrent prepares: %d won, %d conflicted", wins.Load(), conflicts.Load())
	}
	if r, err = adm.Get(ctx, code); err != nil || r.Status != rain.Prepared || len(r.Slices) != 3 {
		t.Fatalf("after prepare: %+v %v", r, err)
	}
	// A claim before start: 425 not_started.
	a := tap.NewClaimer(1).Claim(c.Nodes[0].HTTP, code, 1)
	if a.Status != 425 || a.Error != "not_started" {
		t.Fatalf("claim before start: %+v", a)
	}
	if _, err := adm.Act(ctx, code, "start", 11); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Act(ctx, code, "start", 11); apiStatus(err) != 409 {
		t.Fatalf("repeated start: %v", err)
	}
	if _, err := adm.Act(ctx, code, "prepare", 11); apiStatus(err) != 409 {
		t.Fatalf("prepare while raining: %v", err)
	}

	answers := drainUntilFinished(t, c, code, 5000, 48)

	testcluster.Eventually(t, 60*time.Second, "rain settled", func() bool {
		r, err := adm.Get(ctx, code)
		return err == nil && r.Status == rain.Settled
	})
	rep, err := adm.Report(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	credits, totals, nodes, err := check.ReadRedis(ctx, c.Client(), code)
	if err != nil {
		t.Fatal(err)
	}
	v := check.Check(answers, credits, totals, nodes, check.Expect{Code: code, TotalAmount: total,
		TotalCount: count, MaxPerUser: maxPer, Drained: true})
	for _, s := range v.Violations {
		t.Error(s)
	}
	for _, p := range check.Report(rep) {
		t.Error(p)
	}
	if v.AnsweredAmount != total || v.Answered != int(count) {
		t.Errorf("clients got %d packets / %d cents, want %d / %d", v.Answered, v.AnsweredAmount, count, total)
	}
	if rep.ClaimedAmount != total || rep.FlushedAmount != total || rep.LeftoverAmount != 0 || rep.LostAmount != 0 ||
		rep.ClaimedAmount+rep.LeftoverAmount+rep.LostAmount != rep.TotalAmount {
		t.Errorf("report does not balance or match: %+v", rep)
	}
	if n, err := c.Client().ZScore(ctx, "redrain:rains", code).Result(); err != nil || n <= 0 {
		t.Errorf("redrain:rains has no start time for %s: %v %v", code, n, err)
	}
	t.Logf("rain %s: %d claims answered, report %+v", code, v.Answered, *rep)
}

// Nodes started before the coordinator find it, and a coordinator restarted mid-rain finds the
// cluster again and reports the rain.
func TestCoordinatorRestartMidRain(t *testing.T) {
	c := startCluster(t, 2, true)
	ctx := context.Background()
	adm := c.Admin()
	r, err := adm.Create(ctx, rain.Config{AnchorID: 3, TotalAmount: 100_000, TotalCount: 1000, MaxPerUser: 1, DurationS: 600})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Act(ctx, r.Code, "prepare", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Act(ctx, r.Code, "start", 3); err != nil {
		t.Fatal(err)
	}
	first := drain(t, c, r.Code, 300, 8)
	c.Coord.Kill()
	// Nodes keep serving while the coordinator is down.
	a := tap.NewClaimer(1).Claim(c.Nodes[0].HTTP, r.Code, 100_000)
	if a.Status != 200 {
		t.Fatalf("claim with the coordinator down: %+v", a)
	}
	if err := c.StartCoordinator(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitNodesAlive(ctx, 2); err != nil {
		t.Fatal(err)
	}
	rest := drainUntilFinished(t, c, r.Code, 2000, 16)
	answers := append(append(first, a), rest...)
	testcluster.Eventually(t, 60*time.Second, "rain settled after the restart", func() bool {
		g, err := adm.Get(ctx, r.Code)
		return err == nil && g.Status == rain.Settled
	})
	credits, totals, nodes, err := check.ReadRedis(ctx, c.Client(), r.Code)
	if err != nil {
		t.Fatal(err)
	}
	v := check.Check(answers, credits, totals, nodes, check.Expect{Code: r.Code, TotalAmount: 100_000,
		TotalCount: 1000, MaxPerUser: 1, Drained: true})
	for _, s := range v.Violations {
		t.Error(s)
	}
	rep, err := adm.Report(ctx, r.Code)
	if err != nil || rep.ClaimedAmount+rep.LeftoverAmount+rep.LostAmount != rep.TotalAmount || rep.ClaimedAmount != 100_000 {
		t.Fatalf("report after restart: %+v %v", rep, err)
	}
	for _, p := range check.Report(rep) {
		t.Error(p)
	}
}
