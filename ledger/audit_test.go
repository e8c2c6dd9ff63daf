package ledger

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"redrain/internal/testredis"
)

// Audit finds each way Redis can disagree with the journals: totals, the nodes hash, the marker,
// a claim missing from the credit stream, one credited twice, one no journal holds.
func TestAuditFindsEachDisagreement(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	ctx := flushCtx(t)
	j := openJournal(t, testOptions(t, "n1"))
	appendN(t, j, "r", 0, 20, 2)
	o := flusherOptions()
	o.MaxBatch = 5 // four credit entries
	if err := NewFlusher(j, rdb, o).FlushRain(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if p, err := Audit(ctx, NewRedisClient(rdb), "r", j); err != nil || len(p) != 0 {
		t.Fatalf("a clean flush: %v %v", p, err)
	}
	k := Keys("r")
	entries, err := rdb.XRange(ctx, k.Credits, "-", "+").Result()
	if err != nil || len(entries) != 4 {
		t.Fatalf("credit entries: %d, %v", len(entries), err)
	}
	for _, tc := range []struct {
		name, want  string
		spoil, mend func()
	}{
		{"totals", "redis totals",
			func() { rdb.HIncrBy(ctx, k.Totals, FieldClaimedAmount, 1) }, func() { rdb.HIncrBy(ctx, k.Totals, FieldClaimedAmount, -1) }},
		{"nodes hash", "nodes hash",
			func() { rdb.HIncrBy(ctx, k.Nodes, "n1:claimed_count", 1) }, func() { rdb.HIncrBy(ctx, k.Nodes, "n1:claimed_count", -1) }},
		{"marker", "marker",
			func() { rdb.HSet(ctx, k.Flushed, MarkerField("n1", j.Incarnation()), 3) },
			func() { rdb.HSet(ctx, k.Flushed, MarkerField("n1", j.Incarnation()), j.LastSeq()) }},
		{"a claim missing", "not in the credit stream",
			func() { rdb.XDel(ctx, k.Credits, entries[1].ID) },
			func() { rdb.XAdd(ctx, &redis.XAddArgs{Stream: k.Credits, Values: entries[1].Values}) }},
		{"a claim twice", "twice in the credit stream",
			func() { rdb.XAdd(ctx, &redis.XAddArgs{Stream: k.Credits, ID: "*", Values: entries[2].Values}) }, nil},
	} {
		tc.spoil()
		p, err := Audit(ctx, NewRedisClient(rdb), "r", j)
		if err != nil || len(p) == 0 || !strings.Contains(strings.Join(p, "\n"), tc.want) {
			t.Errorf("%s: problems %q (%v), want one saying %q", tc.name, p, err, tc.want)
		}
		if tc.mend != nil {
			tc.mend()
		}
	}
	other := openJournal(t, testOptions(t, "n2"))
	if p, _ := Audit(ctx, NewRedisClient(rdb), "r", j, other); !strings.Contains(strings.Join(p, "\n"), "twice in the credit stream") {
		t.Errorf("the doubled entry is still there: %q", p)
	}
	if p, _ := Audit(ctx, NewRedisClient(rdb), "r", other); !strings.Contains(strings.Join(p, "\n"), "in no journal") {
		t.Errorf("credits of a journal not audited: %q", p)
	}
}
