package coordinator

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redrain/internal/testcluster"
	"redrain/ledger"
	"redrain/rain"
)

// TestRainsIndexRebuilt: redrain:rains lists every started rain (raining, finished, settled)
// with its start time, also after Redis lost it (FLUSHALL) or came back from an older snapshot;
// rains never started are not listed.
func TestRainsIndexRebuilt(t *testing.T) {
	tc := newTestCluster(t, 2, nil)
	rdb := tc.redis.Client()
	want := map[string]int64{} // code -> start unix seconds
	record := func(r *Rain) {
		t.Helper()
		at, err := time.Parse(time.RFC3339, *r.StartedAt)
		if err != nil {
			t.Fatal(err)
		}
		want[r.Code] = at.Unix()
	}
	status := func(code string) rain.Status {
		rec, err := tc.c.store.get(code)
		if err != nil {
			t.Fatal(err)
		}
		return rec.Status
	}

	settled := tc.started(rainBody)
	record(settled)
	tc.c.mustRain(t, 200, "POST", rainPath(settled.Code, "/stop"), anchorJSON(1))
	testcluster.Eventually(t, 10*time.Second, "settled", func() bool { return status(settled.Code) == rain.Settled })
	waitIndex(t, rdb, want)
	tc.redis.Save() // the older snapshot: only the settled rain is listed in it
	snapshot := filepath.Join(t.TempDir(), "old.rdb")
	tc.redis.CopyRDB(snapshot)

	raining := tc.started(rainBody)
	record(raining)
	finished := tc.started(rainBody)
	record(finished)
	tc.fakes[0].setClaims(finished.Code, 1, 10, 0, 0) // never flushed: it stays finished
	tc.c.mustRain(t, 200, "POST", rainPath(finished.Code, "/stop"), anchorJSON(1))
	cancelled := tc.prepared(rainBody)
	tc.c.mustRain(t, 200, "POST", rainPath(cancelled.Code, "/stop"), anchorJSON(1))
	tc.c.create(t, rainBody) // waiting
	waitIndex(t, rdb, want)

	tc.redis.FlushAll()
	waitIndex(t, rdb, want)

	tc.redis.RestoreRDB(snapshot)
	waitIndex(t, rdb, want)
	if st := status(finished.Code); st != rain.Finished {
		t.Fatalf("rain %s is %s, want finished", finished.Code, st)
	}

	st, b := rawCall(t, tc.c.base, "GET", "/metrics", "", "")
	for _, line := range []string{
		"redrain_coordinator_rains_index_repairs_total 2", // the flush and the restore
		"redrain_coordinator_rains_index_readded_total 5", // 3 after the flush, 2 after the restore
	} {
		if st != 200 || !strings.Contains(string(b), line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}

// waitIndex waits until redrain:rains holds exactly want (code -> score).
func waitIndex(t *testing.T, rdb *redis.Client, want map[string]int64) {
	t.Helper()
	got := map[string]int64{}
	defer func() {
		if t.Failed() {
			t.Logf("redrain:rains is %v, want %v", got, want)
		}
	}()
	testcluster.Eventually(t, 10*time.Second, "redrain:rains rebuilt", func() bool {
		zs, err := rdb.ZRangeWithScores(context.Background(), ledger.RainsKey, 0, -1).Result()
		clear(got)
		for _, z := range zs {
			got[z.Member.(string)] = int64(z.Score)
		}
		return err == nil && fmt.Sprint(got) == fmt.Sprint(want)
	})
}
