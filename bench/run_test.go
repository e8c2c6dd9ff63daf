package bench_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"redrain/bench"
	"redrain/internal/attack"
	"redrain/internal/cluster"
	"redrain/internal/testcluster"
	"redrain/internal/testlocal"
	"redrain/rain"
)

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }

// Run against a running cluster (--coordinator, no secret: journals read from the report),
// a small rain drained by its users: every invariant verified, results.json written.
func TestRunTargetsRunningCluster(t *testing.T) {
	testcluster.Bin(t, "node")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := testlocal.Cluster(t, cluster.ClusterOptions{Nodes: 2})
	out := t.TempDir()
	res, err := bench.Run(ctx, bench.RunOptions{Coordinator: c.CoordHTTP, AdminToken: c.Opts.AdminToken, RedisURL: c.RedisURL(),
		Rain: rain.Config{TotalAmount: 40_000, TotalCount: 2000, MaxPerUser: 10},
		Load: bench.LoadOptions{Users: 400, Conns: 16, Time: 30 * time.Second}, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	// Stop: drained, or users done with every packet paid (a node whose users all reached the cap
	// never answers exhausted once its stock has followed the taps elsewhere).
	if !res.Verified || !res.Drained || (res.Stop != bench.StopDrained && res.Stop != bench.StopUsersDone) ||
		res.Claims != 2000 || res.Amounts.Sum != 40_000 {
		t.Fatalf("run: verified %v drained %v stop %s claims %d sum %d violations %v", res.Verified, res.Drained, res.Stop,
			res.Claims, res.Amounts.Sum, res.Violations)
	}
	if res.Report == nil || res.Report.ClaimedAmount != 40_000 || len(res.Nodes) != 2 || res.Redis != res.Journaled {
		t.Fatalf("report %+v nodes %v redis %+v journals %+v", res.Report, res.Nodes, res.Redis, res.Journaled)
	}
	var back bench.Results
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err == nil {
		err = json.Unmarshal(b, &back)
	}
	if err != nil || !back.Verified || back.Code != res.Code || len(back.Series) == 0 {
		t.Fatalf("results.json: %v %+v", err, back)
	}
}

// Run on a local cluster whose processes use a Redis Cluster of its own (--redis-cluster
// local): six redis-server processes beside the coordinator and the nodes, every invariant
// verified against the cluster.
func TestRunOnLocalRedisCluster(t *testing.T) {
	bin := testcluster.Bin(t, "node")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := bench.Run(ctx, bench.RunOptions{LocalNodes: 2, BinDir: filepath.Dir(bin), FastGossip: true,
		LocalRedisCluster: true, Rain: rain.Config{TotalAmount: 40_000, TotalCount: 2000, MaxPerUser: 10},
		Load: bench.LoadOptions{Users: 400, Conns: 16, Time: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || !res.Drained || res.Claims != 2000 || res.Redis != res.Journaled || res.Redis.Amount != 40_000 {
		t.Fatalf("run: verified %v drained %v claims %d redis %+v journals %+v violations %v", res.Verified, res.Drained,
			res.Claims, res.Redis, res.Journaled, res.Violations)
	}
	if !strings.HasPrefix(res.RedisTarget, "Redis Cluster 127.0.0.1:") || strings.Count(res.RedisTarget, ",") != 5 {
		t.Fatalf("redis target %q, want the six members", res.RedisTarget)
	}
}

func TestRunRefusesBadOptions(t *testing.T) {
	for _, o := range []bench.RunOptions{
		{Coordinator: "127.0.0.1:1", RedisURL: "redis://127.0.0.1:1"}, // no admin token
		{Coordinator: "127.0.0.1:1", AdminToken: "t"},                 // no redis
		{RedisURL: "redis://127.0.0.1:1"},                             // redis without coordinator
		{NodeAddrs: []string{"127.0.0.1:1"}},                          // addresses without coordinator
		{Progress: "fancy"},                                           // unknown mode
		{Load: bench.LoadOptions{Rate: -1}},                           // negative rate
		{Attack: bench.AttackOptions{Kind: "nuke"}},                   // unknown attack
		{Coordinator: "127.0.0.1:1", AdminToken: "t", RedisURL: "redis://127.0.0.1:1",
			Attack: bench.AttackOptions{Kind: attack.KindForged}}, // attack needs a local cluster
		{Coordinator: "127.0.0.1:1", AdminToken: "t", RedisURL: "redis://127.0.0.1:1",
			RedisCluster: []string{"127.0.0.1:1"}}, // both
		{Coordinator: "127.0.0.1:1", AdminToken: "t", LocalRedisCluster: true}, // a local Redis Cluster for a running cluster
		{LocalRedisCluster: true, RedisCluster: []string{"127.0.0.1:1"}},       // start one and use another
		{RedisCluster: []string{"127.0.0.1"}},                                  // not host:port
	} {
		if _, err := bench.Run(context.Background(), o); !errors.Is(err, bench.ErrRunOptions) {
			t.Errorf("Run(%+v) = %v, want ErrRunOptions", o, err)
		}
	}
}
