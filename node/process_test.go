package node_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"redrain/internal/check"
	"redrain/internal/proc"
	"redrain/internal/tap"
	"redrain/internal/testcluster"
	"redrain/internal/testredis"
	"redrain/internal/wire"
	"redrain/ledger"
	"redrain/rain"
)

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }

const procSecret = "process-test-secret"

// nodeProc is a node binary running under test.
type nodeProc struct {
	id, http, gossip, data string
	proc                   *proc.Proc
}

func startNode(t *testing.T, np *nodeProc, redisURL string, join string) {
	t.Helper()
	args := []string{"--id", np.id, "--http", np.http, "--gossip", np.gossip, "--data", np.data,
		"--redis", redisURL, "--fast-gossip"}
	if join != "" {
		args = append(args, "--join", join)
	}
	np.proc = testcluster.Start(t, np.id, testcluster.Bin(t, "node"), args, "REDRAIN_SECRET="+procSecret)
	testcluster.WaitHTTP(t, np.proc, "http://"+np.http+"/readyz", 30*time.Second)
}

func progressOf(t *testing.T, c *wire.Client, addr, code string) (wire.Progress, error) {
	var pl wire.ProgressList
	if err := c.Do(context.Background(), "GET", addr, wire.PathProgress+"?code="+code, nil, &pl); err != nil {
		return wire.Progress{}, err
	}
	if len(pl.Rains) != 1 {
		return wire.Progress{}, fmt.Errorf("%s holds %d rains named %s", addr, len(pl.Rains), code)
	}
	return pl.Rains[0], nil
}

// Three node processes, one rain pushed over the internal API, many users draining it while
// one node is killed with SIGKILL and restarted: every answered claim is credited exactly once,
// the whole budget is paid and no more, caps hold.
func TestNodesDrainRainWithCrash(t *testing.T) {
	rs := testredis.New(t)
	const code, total, count, maxPer = "procrain", int64(2_000_000), int64(6000), 3
	nodes := make([]*nodeProc, 3)
	for i := range nodes {
		nodes[i] = &nodeProc{id: fmt.Sprintf("n%d", i+1), http: testcluster.FreeAddr(t), gossip: testcluster.FreeAddr(t),
			data: filepath.Join(t.TempDir(), "data")}
		join := ""
		if i > 0 {
			join = nodes[0].gossip
		}
		startNode(t, nodes[i], rs.URL(), join)
	}
	ids := []string{"n1", "n2", "n3"}
	slices, err := rain.Plan(rain.PlanInput{Code: code, Epoch: 1, TotalAmount: total, TotalCount: count, Nodes: ids, Seed: 1234})
	if err != nil {
		t.Fatal(err)
	}
	wc := wire.NewClient(procSecret, 10*time.Second)
	ctx := context.Background()
	now := time.Now()
	for i, sl := range slices {
		a := wire.SliceAssignment{Rules: wire.RainRules{Code: code, MaxPerUser: maxPer}, Slice: sl}
		if err := wc.Do(ctx, "POST", nodes[i].http, wire.PathSlices, a, nil); err != nil {
			t.Fatalf("assign to %s: %v", nodes[i].id, err)
		}
	}
	for _, np := range nodes {
		s := wire.Start{Epoch: 1, StartsAt: now.UnixNano(), EndsAt: now.Add(10 * time.Minute).UnixNano()}
		if err := wc.Do(ctx, "POST", np.http, wire.RainPath(wire.PathStart, code), s, nil); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu      sync.Mutex
		answers []check.Answer
		oks     atomic.Int64
	)
	claimer := tap.NewClaimer(64)
	const users = 4000
	var next atomic.Uint64
	var wg sync.WaitGroup
	victim := nodes[1]
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				u := next.Add(1)
				if u > users*4 { // every user taps in several rounds
					return
				}
				user := (u-1)%users + 1
				np := nodes[tap.Route(user, len(nodes))]
				a := claimer.Claim(np.http, code, user)
				if a.Status == 200 {
					oks.Add(1)
				}
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
			}
		}()
	}
	// kill -9 the victim mid-rain, then restart it from the same data dir.
	testcluster.Eventually(t, 60*time.Second, "a third of the claims", func() bool { return oks.Load() > count/3 })
	before, err := progressOf(t, wc, victim.http, code)
	if err != nil {
		t.Fatal(err)
	}
	victim.proc.Kill()
	startNode(t, victim, rs.URL(), nodes[0].gossip)
	after, err := progressOf(t, wc, victim.http, code)
	if err != nil {
		t.Fatal(err)
	}
	if after.ClaimedCount < before.ClaimedCount || after.RemainingCount+after.ClaimedCount > after.SliceCount {
		t.Fatalf("recovery: before the crash %+v, after %+v", before, after)
	}
	t.Logf("victim journaled %d claims before the kill, recovered %d (remaining %d)", before.ClaimedCount, after.ClaimedCount, after.RemainingCount)
	wg.Wait()
	// Drain what is left (users that hit the dead node come back), as more taps would.
	for user := uint64(1); user <= users; user++ {
		np := nodes[tap.Route(user, len(nodes))]
		for {
			a := claimer.Claim(np.http, code, user)
			answers = append(answers, a)
			if a.Status != 200 {
				break
			}
		}
	}
	for _, np := range nodes {
		testcluster.Eventually(t, 30*time.Second, np.id+" flushed", func() bool {
			p, err := progressOf(t, wc, np.http, code)
			return err == nil && p.FlushedCount == p.ClaimedCount && p.RemainingCount == 0 && p.ClaimedCount == p.SliceCount
		})
	}
	credits, totals, nodeSums, err := check.ReadRedis(ctx, rs.Client(), code)
	if err != nil {
		t.Fatal(err)
	}
	v := check.Check(answers, credits, totals, nodeSums,
		check.Expect{Code: code, TotalAmount: total, TotalCount: count, MaxPerUser: maxPer, Drained: true})
	for _, s := range v.Violations {
		t.Error(s)
	}
	t.Logf("answered %d claims (%d cents); credited %d; redis %d/%d", v.Answered, v.AnsweredAmount, v.Credits, v.RedisCount, v.RedisAmount)

	// Journals (read after a graceful stop) agree with Redis.
	var jc, ja int64
	for _, np := range nodes {
		if err := np.proc.Term(20 * time.Second); err != nil {
			t.Errorf("%s SIGTERM: %v", np.id, err)
		}
		j, err := ledger.Open(ledger.DefaultOptions(filepath.Join(np.data, "journal.db"), np.id))
		if err != nil {
			t.Fatal(err)
		}
		tt, _ := j.Totals(code)
		jc, ja = jc+tt.Count, ja+tt.Amount
		j.Close()
	}
	if jc != totals.ClaimedCount || ja != totals.ClaimedAmount {
		t.Errorf("journals hold %d/%d, redis %d/%d", jc, ja, totals.ClaimedCount, totals.ClaimedAmount)
	}
}
