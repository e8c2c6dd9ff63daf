package ledger

import (
	"context"
	"flag"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"redrain/internal/testredis"
)

var memSeed = flag.Uint64("memredis.seed", 0, "seed of TestMemRedisMatchesRedis (0: from the clock)")

// sinkUnderTest is what the model test calls on both the real and the in-memory Redis.
type sinkUnderTest interface {
	Sink
	RecordLeftover(ctx context.Context, code, node string, amount int64) error
	ClearLeftover(ctx context.Context, code, node string) error
	Reassert(ctx context.Context, code, node string, incarnation uint64, t Tombstone) (bool, error)
	ReadTotals(ctx context.Context, code string) (RainTotals, error)
	ReadNodes(ctx context.Context, code string) (map[string]NodeTotals, error)
	ReadCredits(ctx context.Context, code string) ([]Credit, error)
}

var (
	_ sinkUnderTest = (*RedisClient)(nil)
	_ sinkUnderTest = (*MemRedis)(nil)
)

// TestMemRedisMatchesRedis runs the same random calls (batches applied in and out of turn,
// leftovers recorded and cleared, tombstones re-asserted, wipes) against a redis-server and
// against MemRedis and compares every answer and, after each call, what each holds.
func TestMemRedisMatchesRedis(t *testing.T) {
	seed := *memSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-memredis.seed=%d to repeat)", seed, seed)
	srv := testredis.New(t)
	matchModel(t, seed, NewRedisClient(srv.Client()), []string{"a", "b"}, srv.FlushAll)
}

// The same on a Redis Cluster through the cluster client the node opens: every call the ledger
// makes stays on its rain's slot (a script whose keys spanned slots would fail with CROSSSLOT),
// for rains whose slots are on different masters; FLUSHALL runs on every master.
func TestMemRedisMatchesRedisCluster(t *testing.T) {
	seed := *memSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-memredis.seed=%d to repeat)", seed, seed)
	rc := testredis.NewCluster(t)
	ctx := context.Background()
	codes, masters := []string{"a", "b", "c", "d", "e", "f", "g", "h"}, map[string]bool{}
	for _, c := range codes {
		sh, err := rc.ShardOf(ctx, Keys(c).Totals)
		if err != nil {
			t.Fatal(err)
		}
		masters[sh.Master] = true
	}
	if len(masters) < 2 {
		t.Fatalf("rains %v all on one master", codes)
	}
	matchModel(t, seed, NewRedisClient(rc.Client()), codes, func() {
		if err := rc.FlushAll(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if err := rc.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	real, mem := NewRedisClient(rc.Client()), NewMemRedis()
	for _, code := range codes { // the stock moves' script too, on each rain's slot
		moves := []MoveTotal{{Peer: "n2", Count: 3, Amount: 30}}
		for _, s := range []interface {
			RecordMoves(context.Context, string, string, []MoveTotal, []MoveTotal) error
		}{real, mem} {
			if err := s.RecordMoves(ctx, code, "n1", moves, moves); err != nil {
				t.Fatalf("RecordMoves of %s on %T: %v", code, s, err)
			}
		}
		w, werr := real.ReadNodes(ctx, code)
		g, gerr := mem.ReadNodes(ctx, code)
		if werr != nil || gerr != nil || !reflect.DeepEqual(g, w) {
			t.Fatalf("moves of %s: MemRedis holds %+v (%v), the cluster %+v (%v)", code, g, gerr, w, werr)
		}
	}
	if ok, why, err := WalletAcked(ctx, rc.Client(), "a", "wallet"); ok || why == "" || err != nil {
		t.Errorf("WalletAcked on the cluster: %v %q %v", ok, why, err)
	}
}

// matchModel runs the model test's random calls on real and on a MemRedis.
func matchModel(t *testing.T, seed uint64, real *RedisClient, codes []string, flushAll func()) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0))
	mem := NewMemRedis()
	ctx := context.Background()
	nodes, incs := []string{"n1", "n2"}, []uint64{1, 0xabc}
	for step := range 400 {
		code, node, inc := codes[rng.IntN(len(codes))], nodes[rng.IntN(2)], incs[rng.IntN(2)]
		var got, want []any
		stepSeed := rng.Uint64()
		call := func(s sinkUnderTest) []any {
			rng := rand.New(rand.NewPCG(stepSeed, 1)) // the same random choices for both
			switch op := step % 7; {
			case op < 4: // apply, mostly after the marker found
				m, err := s.ReadMarker(ctx, code, node, inc)
				b := memBatch(code, node, inc, m, rng, op == 3)
				applied, marker, err2 := s.Apply(ctx, &b.Batch)
				return []any{m, err, applied, marker, err2}
			case op == 4:
				return []any{s.RecordLeftover(ctx, code, node, rng.Int64N(1000))}
			case op == 5:
				return []any{s.ClearLeftover(ctx, code, node)}
			default: // a tombstone's last sequence just below, at or just past the marker
				m, err := s.ReadMarker(ctx, code, node, inc)
				tomb := Tombstone{Count: rng.Int64N(50), Amount: rng.Int64N(5000), Max: rng.Int64N(900),
					LastSeq: uint64(max(0, int64(m)+rng.Int64N(3)-1)), Leftover: rng.Int64N(100), HasLeftover: rng.IntN(2) == 0}
				if err != nil {
					return []any{err}
				}
				w, err := s.Reassert(ctx, code, node, inc, tomb)
				return []any{w, err}
			}
		}
		want = call(real)
		got = call(mem)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d (seed %d): MemRedis answered %v, Redis %v", step, seed, got, want)
		}
		for _, c := range codes {
			compareHeld(t, ctx, real, mem, c, step, seed)
		}
		if rng.IntN(100) == 0 {
			flushAll()
			mem.FlushAll()
		}
	}
}

// memBatch is a batch of 1..5 claims after prev; wrong makes it start at or below it.
func memBatch(code, node string, inc, prev uint64, rng *rand.Rand, wrong bool) flushBatch {
	var b flushBatch
	b.reset(code, prev)
	first := prev + 1
	if wrong && prev > 0 {
		first = prev - rng.Uint64N(prev)
	}
	for i := range uint64(1 + rng.IntN(5)) {
		b.add(first+i, Record{User: 1 + rng.Uint64N(9), Amount: 1 + rng.Int64N(900)})
	}
	b.Field, b.Node, b.Incarnation = MarkerField(node, inc), node, inc
	return b
}

// compareHeld compares the rain's totals, nodes hash and credits in Redis and in the model.
func compareHeld(t *testing.T, ctx context.Context, real, mem sinkUnderTest, code string, step int, seed uint64) {
	t.Helper()
	for _, read := range []func(sinkUnderTest) (any, error){
		func(s sinkUnderTest) (any, error) { return s.ReadTotals(ctx, code) },
		func(s sinkUnderTest) (any, error) { return s.ReadNodes(ctx, code) },
		func(s sinkUnderTest) (any, error) { return s.ReadCredits(ctx, code) },
	} {
		w, werr := read(real)
		g, gerr := read(mem)
		if werr != nil || gerr != nil || !reflect.DeepEqual(g, w) {
			t.Fatalf("step %d (seed %d), rain %s: MemRedis holds %+v (%v), Redis %+v (%v)", step, seed, code, g, gerr, w, werr)
		}
	}
}

// The flusher on fakes (a MemJournal into a MemRedis): every claim reaches the totals and the
// credit entries once, batch by batch, while it runs beside the appends, and again after a
// wipe. No file, no redis-server.
func TestFlusherOnFakes(t *testing.T) {
	j, r := NewMemJournal("n1", 0xbeef), NewMemRedis()
	f := NewFlusherTo(j, r, flusherOptions())
	ctx := flushCtx(t)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.Run(runCtx) }()
	var sum int64
	for i := range 950 {
		rec := claim("r", i)
		if _, err := j.Append(rec); err != nil {
			t.Fatal(err)
		}
		sum += rec.Amount
		f.Notify()
	}
	stop()
	<-done
	check := func(when string) {
		t.Helper()
		if err := f.FlushRain(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		tot, _ := r.ReadTotals(ctx, "r")
		credits, _ := r.ReadCredits(ctx, "r")
		ids := map[string]bool{}
		for _, c := range credits {
			ids[c.ClaimID] = true
		}
		if tot.ClaimedCount != 950 || tot.ClaimedAmount != sum || len(credits) != 950 || len(ids) != 950 {
			t.Fatalf("%s: totals %+v, %d credits (%d ids); want 950 claims of %d", when, tot, len(credits), len(ids), sum)
		}
		if c, a, ok := f.Flushed("r"); !ok || c != 950 || a != sum {
			t.Fatalf("%s: flushed %d/%d %v", when, c, a, ok)
		}
	}
	check("after the run")
	r.FlushAll()
	check("after a wipe")
}

// Pass steps the flusher one batch at a time; after a rollback to a Clone taken earlier, Pass
// keeps its own marker (and the script refuses the batch) until Recheck makes it re-read
// Redis's, and then every claim is in the restored Redis exactly once.
func TestFlusherPassRecheckClone(t *testing.T) {
	j, r := NewMemJournal("n1", 0xbeef), NewMemRedis()
	opts := flusherOptions()
	opts.MaxBatch = 3
	f := NewFlusherTo(j, r, opts)
	ctx := flushCtx(t)
	for i := range 7 {
		if _, err := j.Append(claim("r", i)); err != nil {
			t.Fatal(err)
		}
	}
	for want := range []bool{false, false, false} { // batches of 3, 3, 1
		if done, err := f.Pass(ctx, "r"); done || err != nil {
			t.Fatalf("pass %d: done %v err %v; want a batch", want, done, err)
		}
	}
	snap := r.Clone()
	if done, err := f.Pass(ctx, "r"); !done || err != nil {
		t.Fatalf("last pass: done %v err %v", done, err)
	}
	if _, err := j.Append(claim("r", 7)); err != nil {
		t.Fatal(err)
	}
	old, _ := snap.ReadTotals(ctx, "r")
	if old.ClaimedCount != 7 {
		t.Fatalf("clone holds %d claims, want 7", old.ClaimedCount)
	}
	snap.FlushAll() // the clone is a copy: wiping it leaves r alone
	if tot, _ := r.ReadTotals(ctx, "r"); tot.ClaimedCount != 7 {
		t.Fatalf("r lost its totals with its clone's: %+v", tot)
	}
	back := NewMemRedis() // a Redis restored from a snapshot without the rain
	g := NewFlusherTo(j, back, opts)
	g.rains["r"] = progress{marker: 7, count: 7, synced: true} // as if it had flushed up to 7 there
	if _, err := g.Pass(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if tot, _ := back.ReadTotals(ctx, "r"); tot.ClaimedCount != 0 {
		t.Fatalf("a batch after a stale marker was applied: %+v", tot)
	}
	g.Recheck("r")
	for range 5 {
		if _, err := g.Pass(ctx, "r"); err != nil {
			t.Fatal(err)
		}
	}
	credits, _ := back.ReadCredits(ctx, "r")
	if tot, _ := back.ReadTotals(ctx, "r"); tot.ClaimedCount != 8 || len(credits) != 8 {
		t.Fatalf("after Recheck: totals %+v, %d credits; want 8 each", tot, len(credits))
	}
}
