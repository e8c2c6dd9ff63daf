package node

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redrain/internal/wire"
	"redrain/ledger"
)

// A discard that overtakes its slice is remembered: the slice of that epoch is refused, a newer
// one accepted.
func TestDiscardBeforeSlice(t *testing.T) {
	h := newHarness(t, false, nil)
	if err := h.internal("POST", wire.RainPath(wire.PathDiscard, "late"), wire.Discard{Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	sl := h.rainSlice("late", 5, 50)
	err := h.internal("POST", wire.PathSlices, wire.SliceAssignment{Rules: wire.RainRules{Code: "late", MaxPerUser: 1}, Slice: sl})
	if se, ok := err.(*wire.StatusError); !ok || se.Status != 409 {
		t.Fatalf("slice of a discarded epoch: %v", err)
	}
	sl.Epoch = 2
	if err := h.internal("POST", wire.PathSlices, wire.SliceAssignment{Rules: wire.RainRules{Code: "late", MaxPerUser: 1}, Slice: sl}); err != nil {
		t.Fatalf("slice of the next epoch: %v", err)
	}
	h.startRainEpoch("late", 2)
	if st, body := h.claim("late", 1); st != 200 {
		t.Fatalf("claim: %d %s", st, body)
	}
	// The floor survives a restart.
	h.restart()
	sl.Epoch = 1
	err = h.internal("POST", wire.PathSlices, wire.SliceAssignment{Rules: wire.RainRules{Code: "late", MaxPerUser: 1}, Slice: sl})
	if se, ok := err.(*wire.StatusError); !ok || se.Status != 409 {
		t.Fatalf("discarded epoch after restart: %v", err)
	}
}

// A finished rain past its retention is compacted only once flushed and acknowledged by the
// wallet's consumer group; its leftover goes to Redis, its records go, and what Redis holds is
// unchanged. Claims of it then answer 410 finished, and a Redis that loses its totals gets them
// back from the tombstone.
func TestRetentionCompacts(t *testing.T) {
	h := newRedisHarness(t, false, func(o *Options) { o.Retention = time.Hour })
	h.rainOf("old", 10, 1000, 1, true)
	var paid int64
	for u := uint64(1); u <= 4; u++ {
		st, body := h.claim("old", u)
		if st != 200 {
			t.Fatalf("claim: %d %s", st, body)
		}
		paid += decodeAnswer(t, body).Amount
		if err := h.n.flusher.FlushRain(context.Background(), "old"); err != nil { // one credit entry each
			t.Fatal(err)
		}
	}
	h.checkInvariants("old", nil)
	stopAt := time.Now()
	if err := h.internal("POST", wire.RainPath(wire.PathStop, "old"), wire.Stop{At: stopAt.UnixNano()}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h.n.compactDue(ctx, stopAt.Add(59*time.Minute))
	if _, ok := h.n.journal.Totals("old"); !ok {
		t.Fatal("compacted before its retention passed")
	}
	h.n.compactDue(ctx, stopAt.Add(61*time.Minute))
	if _, ok := h.n.journal.Totals("old"); !ok || h.n.compaction.Waiting() != 1 {
		t.Fatalf("compacted with no wallet group on the credit stream (waiting %d)", h.n.compaction.Waiting())
	}
	ackAll(t, h.rdb(), "old", "wallet", 1)
	h.n.compactDue(ctx, stopAt.Add(61*time.Minute))
	if _, ok := h.n.journal.Totals("old"); !ok {
		t.Fatal("compacted while the wallet had acknowledged only 3 of 4 credit entries")
	}
	ackAll(t, h.rdb(), "old", "wallet", 0)
	h.n.compactDue(ctx, stopAt.Add(61*time.Minute))
	if _, ok := h.n.journal.Totals("old"); ok || h.n.compaction.Waiting() != 0 {
		t.Fatalf("not compacted after its retention and the wallet's acks (waiting %d)", h.n.compaction.Waiting())
	}
	st, body := h.claim("old", 9)
	wantError(t, st, body, 410, "finished")
	if st, body := h.do("GET", "/v1/rains/old", nil, nil); st != 200 || !strings.Contains(body, `"status":"finished"`) {
		t.Fatalf("public view of a compacted rain: %d %s", st, body)
	}
	tot, err := h.held().ReadTotals(ctx, "old")
	if err != nil || tot.ClaimedCount != 4 || tot.ClaimedAmount != paid {
		t.Fatalf("redis after compaction: %+v %v (paid %d)", tot, err, paid)
	}
	nodes, err := h.held().ReadNodes(ctx, "old")
	if l, ok := nodes["n1"].Leftover(); err != nil || !ok || l != 1000-paid {
		t.Fatalf("leftover recorded %+v %v, want %d", nodes["n1"], err, 1000-paid)
	}
	// Redis loses everything: the tombstone puts the node's share back, once.
	if err := h.rdb().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	h.n.reassertTombstones(ctx)
	h.n.reassertTombstones(ctx)
	if tot2, err := h.held().ReadTotals(ctx, "old"); err != nil || tot2 != tot {
		t.Fatalf("redis totals after a wipe and re-assert: %+v %v, want %+v", tot2, err, tot)
	}
	nodes2, err := h.held().ReadNodes(ctx, "old")
	if err != nil || !reflect.DeepEqual(nodes2["n1"], nodes["n1"]) {
		t.Fatalf("nodes hash after re-assert: %+v %v, want %+v", nodes2["n1"], err, nodes["n1"])
	}
	// And after a restart the node still knows the rain is over, and still re-asserts it.
	h.restart()
	st, body = h.claim("old", 9)
	wantError(t, st, body, 410, "finished")
	if err := h.rdb().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	h.n.reassertTombstones(ctx)
	if tot2, err := h.held().ReadTotals(ctx, "old"); err != nil || tot2 != tot {
		t.Fatalf("redis totals after a restart, a wipe and re-assert: %+v %v, want %+v", tot2, err, tot)
	}
	sl := h.rainSlice("old", 10, 1000)
	sl.Epoch = 3
	err = h.internal("POST", wire.PathSlices, wire.SliceAssignment{Rules: wire.RainRules{Code: "old", MaxPerUser: 1}, Slice: sl})
	if se, ok := err.(*wire.StatusError); !ok || se.Status != 409 {
		t.Fatalf("slice of a compacted rain: %v", err)
	}
}

// ackAll makes the wallet's consumer group (created if missing, from the stream's start) read
// every credit entry of the rain and acknowledge all of them but the last keep.
func ackAll(t *testing.T, rdb redis.UniversalClient, code, group string, keep int) {
	t.Helper()
	ctx := context.Background()
	key := ledger.Keys(code).Credits
	err := rdb.XGroupCreate(ctx, key, group, "0").Err()
	if err != nil && err.Error() != "BUSYGROUP Consumer Group name already exists" {
		t.Fatal(err)
	}
	pending, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: group, Start: "-", End: "+", Count: 1 << 20}).Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range pending {
		ids = append(ids, p.ID)
	}
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "test", Streams: []string{key, ">"}, Count: 1 << 20, Block: -1}).Result()
	if err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	for _, s := range res {
		for _, m := range s.Messages {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) < keep {
		t.Fatalf("only %d entries to read, want to keep %d pending", len(ids), keep)
	}
	if ack := ids[:len(ids)-keep]; len(ack) > 0 {
		if err := rdb.XAck(ctx, key, group, ack...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}
