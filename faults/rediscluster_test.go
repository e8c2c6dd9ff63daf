package faults

import (
	"context"
	"strconv"
	"testing"
	"time"

	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/rediscluster"
	"redrain/internal/tap"
	"redrain/internal/testcluster"
	"redrain/internal/testlocal"
	"redrain/internal/testredis"
	"redrain/ledger"
)

// A rain on a coordinator and 3 nodes against a Redis Cluster (three masters, a replica each),
// with the master holding the rain's slot killed mid-rain after its replica fell behind: the
// replica is promoted without the last batches the old master acknowledged (Redis Cluster
// replicates asynchronously), which is a Redis rolled back for the flushers. They ride through
// the failover (the client follows the new slot map) and resume each journal at its marker, so
// in the end every 200 answer is credited exactly once, Redis equals the journals and the
// report balances.
func TestRedisClusterFailoverMidRain(t *testing.T) {
	rc := testredis.NewCluster(t)
	c := testlocal.Cluster(t, cluster.ClusterOptions{Nodes: 3, RedisCluster: rc.Addrs()})
	if c.RedisURL() != "" || c.Redis != nil {
		t.Fatalf("the local cluster started its own Redis (%q) beside the Redis Cluster", c.RedisURL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// A rain far from drained when the failover is over, however slow this machine is: few
	// connections tapping, many packets; it is stopped, not drained, at the end.
	const total, count, maxPer, users = int64(4_000_000), int64(40_000), 5, 10_000
	code := startRain(t, c, total, count, maxPer)
	l := tap.StartTapper(c, code, users, 8)
	waitOKsOrTell(t, l, 2000)

	key := ledger.Keys(code).Totals
	sh, err := rc.ShardOf(ctx, key)
	if err != nil || len(sh.Replicas) != 1 {
		t.Fatalf("shard of %s: %+v, %v", key, sh, err)
	}
	master, replica := sh.Master, sh.Replicas[0]
	// The replica falls behind: stopped, and its link cut, so what the master acknowledges from
	// now on never reaches it.
	if err := rc.Pause(replica, true); err != nil {
		t.Fatal(err)
	}
	if v, err := rediscluster.DoString(ctx, master, "CLIENT", "KILL", "TYPE", "replica"); err != nil || v == "0" {
		t.Fatalf("CLIENT KILL TYPE replica on %s: %s, %v", master, v, err)
	}
	atCut := claimedOn(t, ctx, master, key, false)
	var beforeKill int64
	testcluster.Eventually(t, 30*time.Second, "the old master acknowledging flushes after the cut", func() bool {
		beforeKill = claimedOn(t, ctx, master, key, false)
		return beforeKill > atCut
	})
	if err := rc.Kill(master); err != nil {
		t.Fatal(err)
	}
	if err := rc.Pause(replica, false); err != nil {
		t.Fatal(err)
	}
	kept := claimedOn(t, ctx, replica, key, true) // its dataset, frozen until it is promoted
	if kept >= beforeKill {
		t.Fatalf("the replica has %d claims of the rain, the old master acknowledged %d: no write was lost", kept, beforeKill)
	}
	okAtKill := l.OKs()
	began := time.Now()
	promoted, err := rc.WaitMasterMoved(ctx, key, master)
	if err != nil {
		t.Fatal(err)
	}
	if promoted != replica {
		t.Fatalf("slot of %s moved to %s, not to the replica %s", code, promoted, replica)
	}
	failover := time.Since(began)
	waitOKsOrTell(t, l, 500) // claims keep flowing, and flushing, on the new master

	answers := l.Stop()
	if _, err := c.Admin().Act(ctx, code, "stop", anchor); err != nil {
		t.Fatal(err)
	}
	v, rep := verify(t, c, code, answers, total, count, maxPer, false)
	if rep.LostAmount != 0 || rep.FlushedAmount != rep.ClaimedAmount || int64(v.Credits) != rep.ClaimedCount ||
		v.CreditAmount != rep.ClaimedAmount || v.Answered < int(beforeKill) {
		t.Errorf("after the failover: report %+v; %d answered, %d credits (%d cents)", rep, v.Answered, v.Credits, v.CreditAmount)
	}
	if _, err := c.Client().ZScore(ctx, ledger.RainsKey, code).Result(); err != nil {
		t.Errorf("%s not in %s after the failover: %v", code, ledger.RainsKey, err)
	}
	t.Logf("master %s killed after %d claims answered; the old master had acknowledged %d claims of the rain, "+
		"the replica %s kept %d (%d rolled back); promoted in %v; %d answered in all, %d credits, report flushed %d, "+
		"claimed %d, leftover %d of %d", master, okAtKill, beforeKill, replica, kept, beforeKill-kept,
		failover.Round(time.Millisecond), v.Answered, v.Credits, rep.FlushedAmount, rep.ClaimedAmount, rep.LeftoverAmount, total)
}

// claimedOn reads the rain's claimed_count on one member of the Redis Cluster, directly (a
// replica after READONLY).
func claimedOn(t *testing.T, ctx context.Context, addr, key string, replica bool) int64 {
	t.Helper()
	var v any
	var err error
	if replica {
		v, err = rediscluster.DoReadOnly(ctx, addr, "HGET", key, ledger.FieldClaimedCount)
	} else {
		var s string
		s, err = rediscluster.DoString(ctx, addr, "HGET", key, ledger.FieldClaimedCount)
		v = s
	}
	if err != nil {
		t.Fatalf("HGET %s on %s: %v", key, addr, err)
	}
	s, _ := v.(string)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("HGET %s on %s: %q", key, addr, s)
	}
	return n
}

// waitOKsOrTell is waitOKs that, when the claims stop flowing, says what the taps got.
func waitOKsOrTell(t *testing.T, l *tap.Tapper, n int64) {
	t.Helper()
	target, deadline := l.OKs()+n, time.Now().Add(60*time.Second)
	for l.OKs() < target {
		if time.Now().After(deadline) {
			by := map[string]int{}
			for _, a := range l.Stop() {
				by[check.StatusWord(a)]++
			}
			t.Fatalf("claims stopped flowing: %d of %d more; answers by word: %v", l.OKs()-(target-n), n, by)
		}
		time.Sleep(10 * time.Millisecond) // polling pace, not a wait for an event
	}
}
