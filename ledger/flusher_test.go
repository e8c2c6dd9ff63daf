package ledger

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redrain/internal/testcluster"
	"redrain/internal/testredis"
)

func flusherOptions() FlusherOptions {
	return FlusherOptions{MaxBatch: 100, Interval: 5 * time.Millisecond, RecheckInterval: 20 * time.Millisecond,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Logger: quiet}
}

func flushCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runFlusher runs f.Run until the test ends.
func runFlusher(t *testing.T, f *Flusher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// flushedTo reports whether Redis's marker for j's claims of code has reached seq.
func flushedTo(t *testing.T, rdb redis.UniversalClient, j *Journal, code string, seq uint64) bool {
	m, err := ReadMarker(context.Background(), rdb, code, j.NodeID(), j.Incarnation())
	return err == nil && m >= seq
}

func TestFlushExact(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	j := openJournal(t, testOptions(t, "n1"))
	appendN(t, j, "r1", 0, 2500, 32)
	appendN(t, j, "r2", 0, 300, 8)
	f := NewFlusher(j, rdb, flusherOptions())
	if err := f.FlushAll(flushCtx(t)); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, rdb, "r1", j)
	checkInvariants(t, rdb, "r2", j)
	tot, _ := j.Totals("r1")
	if c, a, ok := f.Flushed("r1"); !ok || c != tot.Count || a != tot.Amount {
		t.Fatalf("Flushed = %d, %d, %v; journal %+v", c, a, ok, tot)
	}
	if n, s := f.Lag(); n != 0 || s != 0 {
		t.Fatalf("Lag = %d, %v after FlushAll", n, s)
	}
	if st := f.Stats(); st.Claims != 2800 || st.Batches != 28 {
		t.Fatalf("stats %+v, want 2800 claims in 28 batches", st)
	}
	ctx := flushCtx(t)
	for code, want := range map[string]int64{"r1": 25, "r2": 3} { // one credit entry per batch
		if n, err := rdb.XLen(ctx, Keys(code).Credits).Result(); err != nil || n != want {
			t.Fatalf("%s: %d credit entries (%v), want %d", code, n, err, want)
		}
	}
	// Flushing again changes nothing.
	if err := f.FlushAll(flushCtx(t)); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, rdb, "r1", j)
}

// Two nodes flush into one rain: totals are their sum, each has its own marker and nodes fields.
func TestFlushTwoNodes(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	j1 := openJournal(t, testOptions(t, "n1"))
	j2 := openJournal(t, testOptions(t, "n2"))
	appendN(t, j1, "r", 0, 700, 16)
	appendN(t, j2, "r", 700, 500, 16)
	var wg sync.WaitGroup
	for _, j := range []*Journal{j1, j2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := NewFlusher(j, rdb, flusherOptions()).FlushRain(flushCtx(t), "r"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	checkInvariants(t, rdb, "r", j1, j2)
}

// The script refuses a batch that starts at or below the marker, or was read after another marker.
func TestScriptRefusesOldBatch(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	j := openJournal(t, testOptions(t, "n1"))
	appendN(t, j, "r", 0, 10, 1)
	f := NewFlusher(j, rdb, flusherOptions())
	if err := f.FlushRain(flushCtx(t), "r"); err != nil {
		t.Fatal(err)
	}
	ctx := flushCtx(t)
	for _, c := range []struct {
		name        string
		prev, first uint64
	}{
		{"first == marker", 10, 10},
		{"first below marker", 10, 3},
		{"prev below marker", 5, 11},
		{"prev above marker", 12, 13},
	} {
		var b flushBatch
		b.reset("r", c.prev)
		b.add(c.first, claim("r", 1))
		keys, args := b.build(f.MarkerField(), "n1", j.Incarnation())
		res, err := applyScript.Run(ctx, rdb, keys, args...).Result()
		if err != nil {
			t.Fatal(err)
		}
		applied, marker, err := parseApply(res)
		if err != nil || applied || marker != 10 {
			t.Fatalf("%s: applied %v marker %d err %v; want refused at 10", c.name, applied, marker, err)
		}
	}
	checkInvariants(t, rdb, "r", j)

	// A wrong-typed key (the stream, or a hash) fails the call before any write.
	k := Keys("r")
	appendN(t, j, "r", 10, 1, 1)
	for _, key := range []string{k.Credits, k.Nodes} {
		if err := rdb.Set(ctx, key, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
		before, _ := ReadTotals(ctx, rdb, "r")
		if err := f.FlushRain(ctxWithTimeout(t, 300*time.Millisecond), "r"); err == nil {
			t.Fatalf("flush into a wrong-typed %s succeeded", key)
		}
		if after, _ := ReadTotals(ctx, rdb, "r"); after != before {
			t.Fatalf("%s: totals moved from %+v to %+v on a failed call", key, before, after)
		}
		if err := rdb.Del(ctx, key).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func ctxWithTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// (1) A crash between the Redis apply and the cursor advance: the flusher's local cursor is behind
// Redis's marker. The next batch is refused, the flusher takes the marker, totals stay exact.
// A brand-new flusher (no local state at all) likewise resumes at the marker.
func TestFlushCrashBetweenApplyAndCursor(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	j := openJournal(t, testOptions(t, "n1"))
	appendN(t, j, "r", 0, 450, 16)
	f := NewFlusher(j, rdb, flusherOptions())
	ctx := flushCtx(t)
	if err := f.FlushRain(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	// Roll the local cursor back as if the last advances never happened.
	f.setProgress("r", progress{marker: 200, count: 200, amount: sumFirst(t, j, "r", 200), synced: true, checked: time.Now()})
	appendN(t, j, "r", 450, 100, 4)
	if done, err := f.pass(ctx, "r"); err != nil || done {
		t.Fatalf("pass = %v, %v", done, err)
	}
	if f.Stats().Refused != 1 {
		t.Fatalf("stats %+v: want the stale batch refused", f.Stats())
	}
	if err := f.FlushRain(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, rdb, "r", j)

	appendN(t, j, "r", 550, 100, 4)
	if err := NewFlusher(j, rdb, flusherOptions()).FlushRain(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, rdb, "r", j)
}

func sumFirst(t *testing.T, j *Journal, code string, n int) (amount int64) {
	j.Scan(code, 0, n, func(_ uint64, r Record) bool { amount += r.Amount; return true })
	return amount
}

// (2) redis-server killed and restarted (empty: no persistence) while Run is flushing and claims
// keep coming: everything ends counted exactly once.
func TestFlushRedisRestartMidFlush(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	j := openJournal(t, testOptions(t, "n1"))
	bulkLoad(t, j, "r", 20000)
	o := flusherOptions()
	o.MaxBatch = 50
	f := NewFlusher(j, rdb, o)
	runFlusher(t, f)
	testcluster.Eventually(t, 30*time.Second, "flush under way", func() bool { return flushedTo(t, rdb, j, "r", 2000) })
	srv.Kill()
	appendN(t, j, "r", 20000, 200, 8) // journaling goes on while Redis is down
	srv.Start()
	last := appendN(t, j, "r", 20200, 200, 8)
	testcluster.Eventually(t, 60*time.Second, "flush caught up", func() bool { return flushedTo(t, rdb, j, "r", j.LastSeq()) && last != nil })
	if err := f.FlushRain(flushCtx(t), "r"); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, rdb, "r", j)
}

// (3) Redis restarted empty after everything was flushed: Run notices the lost marker and
// rebuilds the totals from the journal.
func TestFlushRedisWiped(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	j := openJournal(t, testOptions(t, "n1"))
	appendN(t, j, "r", 0, 1000, 16)
	f := NewFlusher(j, rdb, flusherOptions())
	runFlusher(t, f)
	testcluster.Eventually(t, 30*time.Second, "flushed", func() bool { return flushedTo(t, rdb, j, "r", j.LastSeq()) })
	checkInvariants(t, rdb, "r", j)

	srv.Wipe()
	testcluster.Eventually(t, 30*time.Second, "rebuilt", func() bool { return flushedTo(t, rdb, j, "r", j.LastSeq()) })
	checkInvariants(t, rdb, "r", j)
}

// (4) Redis restored from an older snapshot (SAVE, more flushes, restart from that file): totals
// and marker roll back together, and the flusher re-applies exactly what the snapshot lacks.
func TestFlushOlderSnapshot(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	j := openJournal(t, testOptions(t, "n1"))
	f := NewFlusher(j, rdb, flusherOptions())
	ctx := flushCtx(t)
	appendN(t, j, "r", 0, 600, 16)
	if err := f.FlushRain(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	srv.Save()
	old := filepath.Join(t.TempDir(), "old.rdb")
	srv.CopyRDB(old)
	appendN(t, j, "r", 600, 400, 16)
	if err := f.FlushRain(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, rdb, "r", j)

	srv.RestoreRDB(old)
	if m, _ := ReadMarker(ctx, rdb, "r", "n1", j.Incarnation()); m == 0 || m >= j.LastSeq() {
		t.Fatalf("restored marker %d, want the older one (0 < m < %d)", m, j.LastSeq())
	}
	if err := f.FlushRain(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, rdb, "r", j)
}

// Redis down: appends do not wait for it, Lag grows; once it is back, Run catches up and Lag is 0.
func TestFlushRedisDownLag(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	j := openJournal(t, testOptions(t, "n1"))
	f := NewFlusher(j, rdb, flusherOptions())
	srv.Kill()
	runFlusher(t, f)
	start := time.Now()
	appendN(t, j, "r", 0, 500, 16)
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("appends took %v with Redis down", d)
	}
	f.Notify()
	testcluster.Eventually(t, 10*time.Second, "flusher errors", func() bool { return f.Stats().Errors > 0 })
	if n, s := f.Lag(); n != 500 || s <= 0 {
		t.Fatalf("Lag = %d, %v; want 500 claims and a positive age", n, s)
	}
	srv.Start()
	testcluster.Eventually(t, 30*time.Second, "lag 0", func() bool { n, _ := f.Lag(); return n == 0 })
	checkInvariants(t, rdb, "r", j)
	if _, s := f.Lag(); s != 0 {
		t.Fatalf("lag seconds %v with nothing behind", s)
	}
}

// FlushRain gives up when its context ends while Redis is down.
func TestFlushRainContext(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	j := openJournal(t, testOptions(t, "n1"))
	appendN(t, j, "r", 0, 5, 1)
	srv.Kill()
	err := NewFlusher(j, rdb, flusherOptions()).FlushRain(ctxWithTimeout(t, 200*time.Millisecond), "r")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if err := NewFlusher(j, rdb, flusherOptions()).FlushRain(flushCtx(t), "unknown"); err != nil {
		t.Fatalf("flush of a rain with no claims: %v", err)
	}
}

func TestRecordLeftoverReadNodes(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	j := openJournal(t, testOptions(t, "n:1")) // a colon in the id still parses
	appendN(t, j, "r", 0, 30, 2)
	ctx := flushCtx(t)
	if err := NewFlusher(j, rdb, flusherOptions()).FlushRain(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := RecordLeftover(ctx, rdb, "r", "n:1", 1234); err != nil {
			t.Fatal(err)
		}
	}
	if err := RecordLeftover(ctx, rdb, "r", "n9", 0); err != nil {
		t.Fatal(err)
	}
	nodes, err := ReadNodes(ctx, rdb, "r")
	if err != nil {
		t.Fatal(err)
	}
	tot, _ := j.Totals("r")
	want := map[string]NodeTotals{
		"n:1": {ClaimedCount: 30, ClaimedAmount: tot.Amount, LeftoverAmount: 1234, HasLeftover: true, LeftoverAt: 30, HasLeftoverAt: true},
		"n9":  {HasLeftover: true, HasLeftoverAt: true},
	}
	if !reflect.DeepEqual(nodes, want) {
		t.Fatalf("ReadNodes = %+v, want %+v", nodes, want)
	}
	if l, ok := nodes["n:1"].Leftover(); !ok || l != 1234 {
		t.Fatalf("current record read as %d, %v", l, ok)
	}
	if rt, err := ReadTotals(ctx, rdb, "none"); err != nil || rt != (RainTotals{}) {
		t.Fatalf("ReadTotals of an unknown rain = %+v, %v", rt, err)
	}
	checkInvariants(t, rdb, "r", j)
}

func TestBackoff(t *testing.T) {
	const lo, hi = 10 * time.Millisecond, time.Second
	for _, c := range []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{1, 0.999999, 10 * time.Millisecond},
		{1, 0, 5 * time.Millisecond},
		{2, 0.999999, 20 * time.Millisecond},
		{4, 0.999999, 80 * time.Millisecond},
		{4, 0, 40 * time.Millisecond},
		{20, 0.999999, time.Second},
		{20, 0, 500 * time.Millisecond},
		{1000, 0.5, 750 * time.Millisecond},
	} {
		got := backoff(c.attempt, lo, hi, c.r)
		if d := got - c.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("backoff(%d, r=%v) = %v, want %v", c.attempt, c.r, got, c.want)
		}
	}
}

// TestLeftoverSuperseded: a node that recorded its leftover and then flushes again (it came back
// and served) loses the record in the same Lua call, and a record whose count has moved on, or
// that lacks its stamp, is never read as current. This is what kept a returning node's old
// leftover in the report (negative lost).
func TestLeftoverSuperseded(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	j := openJournal(t, testOptions(t, "n1"))
	ctx := flushCtx(t)
	f := NewFlusher(j, rdb, flusherOptions())
	appendN(t, j, "r", 0, 10, 2)
	if err := f.FlushRain(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if err := RecordLeftover(ctx, rdb, "r", "n1", 500); err != nil {
		t.Fatal(err)
	}
	appendN(t, j, "r", 10, 5, 2)
	if err := f.FlushRain(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	nodes, err := ReadNodes(ctx, rdb, "r")
	if err != nil {
		t.Fatal(err)
	}
	if n := nodes["n1"]; n.HasLeftover || n.HasLeftoverAt || n.ClaimedCount != 15 {
		t.Fatalf("after a later flush the record is still there: %+v", n)
	}
	for _, tc := range []NodeTotals{
		{ClaimedCount: 15, LeftoverAmount: 9, HasLeftover: true, LeftoverAt: 10, HasLeftoverAt: true},
		{ClaimedCount: 15, LeftoverAmount: 9, HasLeftover: true},
		{ClaimedCount: 15, LeftoverAt: 15, HasLeftoverAt: true},
		{ClaimedCount: 15, LeftoverAmount: -1, HasLeftover: true, LeftoverAt: 15, HasLeftoverAt: true},
	} {
		if l, ok := tc.Leftover(); ok {
			t.Errorf("%+v read as current leftover %d", tc, l)
		}
	}
	if err := RecordLeftover(ctx, rdb, "r", "n1", 70); err != nil {
		t.Fatal(err)
	}
	if err := ClearLeftover(ctx, rdb, "r", "n1"); err != nil {
		t.Fatal(err)
	}
	if nodes, _ = ReadNodes(ctx, rdb, "r"); nodes["n1"].HasLeftover || nodes["n1"].HasLeftoverAt {
		t.Fatalf("cleared record still there: %+v", nodes["n1"])
	}
	checkInvariants(t, rdb, "r", j)
}
