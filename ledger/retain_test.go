package ledger

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"redrain/internal/testredis"
)

func TestCmpStreamID(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1-0", "1-0", 0}, {"1-1", "1-0", 1}, {"1-9", "2-0", -1}, {"10-0", "9-99", 1},
		{"0-0", "1-0", -1}, {"5", "5-0", 0}, {"bad", "0-0", -1}, {"0-0", "bad", 1}, {"x", "y", 0},
		{"18446744073709551615-0", "18446744073709551614-99", 1},
	} {
		if got := cmpStreamID(tc.a, tc.b); got != tc.want {
			t.Errorf("cmpStreamID(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestWalletAcked walks a consumer group through the states that must keep a rain's records:
// no stream, no group, entries not delivered, delivered but pending; and the one that frees them.
func TestWalletAcked(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	ctx := flushCtx(t)
	key := Keys("r").Credits
	want := func(ok bool, what string) {
		t.Helper()
		got, why, err := WalletAcked(ctx, rdb, "r", "wallet")
		if err != nil || got != ok {
			t.Fatalf("%s: acked %v (%q, %v), want %v", what, got, why, err, ok)
		}
		if !ok && why == "" {
			t.Fatalf("%s: no reason given", what)
		}
	}
	want(false, "no stream")
	j := openJournal(t, testOptions(t, "n1"))
	appendN(t, j, "r", 0, 20, 2)
	o := flusherOptions()
	o.MaxBatch = 1 // 20 credit entries
	if err := NewFlusher(j, rdb, o).FlushRain(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	want(false, "no group")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rdb.XGroupCreate(ctx, key, "other", "$").Err()) // another group that read everything
	want(false, "only another group")
	must(rdb.XGroupCreate(ctx, key, "wallet", "0").Err())
	want(false, "nothing delivered")
	msgs, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "wallet", Consumer: "c1", Streams: []string{key, ">"}, Count: 15}).Result()
	must(err)
	ids := func(ms []redis.XMessage) (out []string) {
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	must(rdb.XAck(ctx, key, "wallet", ids(msgs[0].Messages)...).Err())
	want(false, "15 of 20 delivered and acked")
	msgs, err = rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "wallet", Consumer: "c1", Streams: []string{key, ">"}}).Result()
	must(err)
	rest := ids(msgs[0].Messages)
	must(rdb.XAck(ctx, key, "wallet", rest[1:]...).Err())
	want(false, "all delivered, one pending")
	must(rdb.XAck(ctx, key, "wallet", rest[0]).Err())
	want(true, "all acked")
}

// TestReassert: a compacted journal's tombstone puts its share back after a wipe and after a
// rollback to an older snapshot, once, leaving another node's share alone.
func TestReassert(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	ctx := flushCtx(t)
	j := openJournal(t, testOptions(t, "n1"))
	other := openJournal(t, testOptions(t, "n2"))
	appendN(t, j, "r", 0, 30, 2)
	appendN(t, other, "r", 100, 10, 1)
	o := flusherOptions()
	o.MaxBatch = 10
	f := NewFlusher(j, rdb, o)
	if err := NewFlusher(other, rdb, flusherOptions()).FlushRain(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pass(ctx, "r"); err != nil { // the first 10: the "older snapshot"
		t.Fatal(err)
	}
	snap := snapshot(t, ctx, rdb, "r")
	if err := f.FlushRain(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	tot, _ := j.Totals("r")
	tomb := Tombstone{Count: tot.Count, Amount: tot.Amount, Max: tot.Max, LastSeq: tot.LastSeq, Leftover: 321, HasLeftover: true}
	if err := RecordLeftover(ctx, rdb, "r", "n1", 321); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, ctx, rdb, "r")
	if wrote, err := Reassert(ctx, rdb, "r", "n1", j.Incarnation(), tomb); err != nil || wrote {
		t.Fatalf("nothing missing: wrote %v, %v", wrote, err)
	}
	for _, loss := range []struct {
		name    string
		restore map[string]map[string]string
	}{{"wipe", nil}, {"rollback", snap}} {
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		for key, h := range loss.restore {
			if err := rdb.HSet(ctx, key, h).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if loss.restore == nil { // after a wipe the other node re-flushes its own share
			if err := NewFlusher(other, rdb, flusherOptions()).FlushRain(ctx, "r"); err != nil {
				t.Fatal(err)
			}
		}
		for i, wantWrote := range []bool{true, false} {
			wrote, err := Reassert(ctx, rdb, "r", "n1", j.Incarnation(), tomb)
			if err != nil || wrote != wantWrote {
				t.Fatalf("%s, call %d: wrote %v, %v", loss.name, i, wrote, err)
			}
		}
		got := snapshot(t, ctx, rdb, "r")
		for _, key := range []string{Keys("r").Totals, Keys("r").Nodes, Keys("r").Flushed} {
			if len(got[key]) != len(want[key]) {
				t.Errorf("%s: %s = %v, want %v", loss.name, key, got[key], want[key])
			}
			for f, v := range want[key] {
				if got[key][f] != v {
					t.Errorf("%s: %s %s = %q, want %q", loss.name, key, f, got[key][f], v)
				}
			}
		}
		nodes, _ := ReadNodes(ctx, rdb, "r")
		if l, ok := nodes["n1"].Leftover(); !ok || l != 321 {
			t.Errorf("%s: leftover after reassert %d %v", loss.name, l, ok)
		}
	}
}

// snapshot copies the rain's hashes (totals, nodes, flushed).
func snapshot(t *testing.T, ctx context.Context, rdb redis.UniversalClient, code string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, key := range []string{Keys(code).Totals, Keys(code).Nodes, Keys(code).Flushed} {
		h, err := rdb.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[key] = h
	}
	return out
}
