package ledger

import (
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"redrain/internal/testcluster"
	"redrain/rain"
)

func TestAppendRecoverRoundTrip(t *testing.T) {
	o := testOptions(t, "n1")
	j := openJournal(t, o)
	if got := j.Incarnation(); got == 0 {
		t.Fatal("incarnation is 0")
	}
	var want []Record
	for i := range 10 {
		r := claim("rainA", i)
		if i%3 == 0 {
			r.Code = "rainB"
		}
		seq, err := j.Append(r)
		if err != nil {
			t.Fatal(err)
		}
		if seq != uint64(i+1) {
			t.Fatalf("append %d: seq %d, want %d", i, seq, i+1)
		}
		want = append(want, r)
	}
	meta := RainMeta{Code: "rainA", MaxPerUser: 3, Epoch: 1, StartsAt: 10, EndsAt: 20}
	sl := rain.Slice{Code: "rainA", ID: 2, Epoch: 1, Node: "n1", Count: 100, Amount: 1000, Seed: 7, Algorithm: rain.DoubleAverage}
	if err := j.PutRain(meta); err != nil {
		t.Fatal(err)
	}
	if err := j.PutSlice(sl); err != nil {
		t.Fatal(err)
	}
	inc := j.Incarnation()
	j.Close()

	j2 := openJournal(t, o)
	if j2.Incarnation() != inc {
		t.Fatalf("incarnation %x after reopen, was %x", j2.Incarnation(), inc)
	}
	rec, err := j2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if rec.LastSeq != 10 || !reflect.DeepEqual(rec.Rains, []RainMeta{meta}) || !reflect.DeepEqual(rec.Slices, []rain.Slice{sl}) {
		t.Fatalf("recovery: last %d rains %+v slices %+v", rec.LastSeq, rec.Rains, rec.Slices)
	}
	// Rebuild the expectation from want.
	claimed, amounts := map[SliceKey][]uint32{}, map[SliceKey][]int64{}
	users, totals := map[string]map[uint64]int{}, map[string]Totals{}
	for i, r := range want {
		k := SliceKey{r.Code, r.Epoch, r.Slice}
		claimed[k] = append(claimed[k], r.Index)
		amounts[k] = append(amounts[k], r.Amount)
		if users[r.Code] == nil {
			users[r.Code] = map[uint64]int{}
		}
		users[r.Code][r.User]++
		t := totals[r.Code]
		t.add(uint64(i+1), r.Amount)
		totals[r.Code] = t
	}
	for name, pair := range map[string][2]any{"claimed": {rec.Claimed, claimed}, "amounts": {rec.Amounts, amounts},
		"users": {rec.Users, users}, "totals": {rec.Totals, totals}} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("%s = %v, want %v", name, pair[0], pair[1])
		}
	}
	if got, _ := j2.Totals("rainA"); got != totals["rainA"] {
		t.Errorf("Totals(rainA) = %+v, want %+v", got, totals["rainA"])
	}
	// A record's content survives: Scan returns what was appended.
	var got []Record
	if err := j2.Scan("rainB", 0, 0, func(_ uint64, r Record) bool { got = append(got, r); return true }); err != nil {
		t.Fatal(err)
	}
	for _, r := range want {
		if r.Code == "rainB" && (len(got) == 0 || got[0] != r) {
			t.Fatalf("Scan(rainB) = %+v, want %+v first", got, r)
		} else if r.Code == "rainB" {
			got = got[1:]
		}
	}
}

func TestSequencesUniqueAndIncreasing(t *testing.T) {
	j := openJournal(t, testOptions(t, "n1"))
	const workers, each = 32, 40
	seqs := appendN(t, j, "r", 0, workers*each, workers)
	sorted := slices.Clone(seqs)
	slices.Sort(sorted)
	for i, s := range sorted {
		if s != uint64(i+1) {
			t.Fatalf("sorted seqs[%d] = %d: not 1..%d without gaps or repeats", i, s, len(seqs))
		}
	}
	// Per appender, later appends get larger sequences.
	for w := range workers {
		for i := w + workers; i < len(seqs); i += workers {
			if seqs[i] <= seqs[i-workers] {
				t.Fatalf("worker %d: seq %d after %d", w, seqs[i], seqs[i-workers])
			}
		}
	}
	if j.LastSeq() != uint64(len(seqs)) {
		t.Fatalf("LastSeq %d", j.LastSeq())
	}
}

func TestIncarnationNewFileDiffers(t *testing.T) {
	a := openJournal(t, testOptions(t, "n1"))
	b := openJournal(t, testOptions(t, "n1"))
	if a.Incarnation() == b.Incarnation() {
		t.Fatalf("two files share incarnation %x", a.Incarnation())
	}
}

func TestSecondOpenerFailsFast(t *testing.T) {
	o := testOptions(t, "n1")
	openJournal(t, o)
	o.OpenTimeout = 100 * time.Millisecond
	start := time.Now()
	j, err := Open(o)
	if err == nil {
		j.Close()
		t.Fatal("second Open succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("second Open took %v", d)
	}
}

func TestOpenChecks(t *testing.T) {
	o := testOptions(t, "n1")
	j := openJournal(t, o)
	j.Close()
	o.NodeID = "n2"
	if _, err := Open(o); !errors.Is(err, ErrNodeMismatch) {
		t.Fatalf("open as n2: %v, want ErrNodeMismatch", err)
	}
	for _, bad := range []Options{{NodeID: "n"}, {Path: o.Path}, {Path: o.Path, NodeID: "n1", MaxBatch: -1},
		{Path: o.Path, NodeID: "n1", MaxBatch: MaxMaxBatch + 1}} {
		if _, err := Open(bad); !errors.Is(err, ErrOptions) {
			t.Errorf("Open(%+v) = %v, want ErrOptions", bad, err)
		}
	}
}

func TestAppendErrors(t *testing.T) {
	j := openJournal(t, testOptions(t, "n1"))
	if _, err := j.Append(Record{Code: "r", User: 0, Amount: 1}); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("zero user: %v", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := j.Append(claim("r", 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := j.PutRain(RainMeta{Code: "r"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("PutRain after Close: %v", err)
	}
}

// Close while appenders run: each Append either gets a sequence that is in the file, or ErrClosed.
func TestCloseUnderLoad(t *testing.T) {
	o := testOptions(t, "n1")
	j, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[uint64]bool{}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				seq, err := j.Append(claim("r", w*100000+i))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				acked[seq] = true
				mu.Unlock()
			}
		}()
	}
	testcluster.Eventually(t, 20*time.Second, "some commits", func() bool { return j.Stats().Records >= 200 })
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	j2 := openJournal(t, o)
	n := 0
	j2.Scan("r", 0, 0, func(seq uint64, _ Record) bool {
		n++
		if !acked[seq] {
			t.Errorf("seq %d in the file but never acknowledged", seq)
		}
		return true
	})
	if n != len(acked) {
		t.Fatalf("%d records in the file, %d acknowledged", n, len(acked))
	}
}

var errInjected = errors.New("injected commit failure")

// A failing commit fails every waiter of its batch, and every later write; nothing acknowledged is
// missing after reopening, and nothing failed is present.
func TestCommitFailureFailsEveryWaiter(t *testing.T) {
	o := testOptions(t, "n1")
	j, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	commits := 0
	hook := func(n int) error {
		mu.Lock()
		defer mu.Unlock()
		if commits++; commits >= 5 {
			return errInjected
		}
		return nil
	}
	j.commitHook.Store(&hook)
	type result struct {
		seq  uint64
		user uint64
		err  error
	}
	const workers, each = 64, 20
	results := make(chan result, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := claim("r", w*each+i)
				r.User = uint64(w*each + i + 1)
				seq, err := j.Append(r)
				results <- result{seq, r.User, err}
			}
		}()
	}
	wg.Wait()
	close(results)
	acked := map[uint64]uint64{}
	injected := 0
	for r := range results {
		switch {
		case r.err == nil:
			acked[r.seq] = r.user
		case !errors.Is(r.err, ErrCommit):
			t.Fatalf("Append error %v is not ErrCommit", r.err)
		case errors.Is(r.err, errInjected):
			injected++
		}
	}
	if injected == 0 || len(acked) == workers*each {
		t.Fatalf("%d acked, %d failed with the injected cause", len(acked), injected)
	}
	if !j.Stats().Failed {
		t.Fatal("Stats().Failed is false")
	}
	if _, err := j.Append(claim("r", 1)); !errors.Is(err, ErrCommit) {
		t.Fatalf("Append after failure: %v, want ErrCommit", err)
	}
	if err := j.PutRain(RainMeta{Code: "r"}); !errors.Is(err, ErrCommit) {
		t.Fatalf("PutRain after failure: %v, want ErrCommit", err)
	}
	j.Close()

	j2 := openJournal(t, o)
	found := 0
	j2.Scan("r", 0, 0, func(seq uint64, r Record) bool {
		found++
		if acked[seq] != r.User {
			t.Errorf("seq %d: user %d in the file, acknowledged %d", seq, r.User, acked[seq])
		}
		return true
	})
	if found != len(acked) {
		t.Fatalf("file holds %d records, %d acknowledged", found, len(acked))
	}
	if _, err := j2.Append(claim("r", 1)); err != nil {
		t.Fatalf("reopened journal refuses appends: %v", err)
	}
}

// Reopen after a failed commit: refused writes say ErrUnavailable, the reopened journal accepts
// writes again, sequences continue, and nothing of the failed batch is reported found.
func TestReopenAfterFailedCommit(t *testing.T) {
	j := openJournal(t, testOptions(t, "n1"))
	for i := range 3 {
		if _, err := j.Append(claim("r", i)); err != nil {
			t.Fatal(err)
		}
	}
	fail := func(int) error { return errInjected }
	j.commitHook.Store(&fail)
	if _, err := j.Append(claim("r", 3)); !errors.Is(err, ErrCommit) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("the failing commit: %v, want ErrCommit only", err)
	}
	if _, err := j.Append(claim("r", 4)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after the failure: %v, want ErrUnavailable", err)
	}
	if !j.Failed() {
		t.Fatal("Failed() is false")
	}
	j.commitHook.Store(nil)
	found, err := j.Reopen()
	if err != nil || len(found) != 0 {
		t.Fatalf("Reopen = %v, %v; want nothing found", found, err)
	}
	seq, err := j.Append(claim("r", 5))
	if err != nil || seq != 4 {
		t.Fatalf("append after reopen = %d, %v; want seq 4", seq, err)
	}
	if tot, _ := j.Totals("r"); tot.Count != 4 {
		t.Fatalf("totals after reopen count %d, want 4", tot.Count)
	}
	if found, err := j.Reopen(); err != nil || found != nil {
		t.Fatalf("Reopen of a healthy journal = %v, %v", found, err)
	}
}

// The real thing underneath: the log file closed under the writer fails the waiters.
func TestCommitFailureDBClosed(t *testing.T) {
	j := openJournal(t, testOptions(t, "n1"))
	if _, err := j.Append(claim("r", 0)); err != nil {
		t.Fatal(err)
	}
	j.wal[j.active].f.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if seq, err := j.Append(claim("r", i)); !errors.Is(err, ErrCommit) {
				t.Errorf("Append on a closed file = %d, %v; want ErrCommit", seq, err)
			}
		}()
	}
	wg.Wait()
}

// 64 concurrent appenders share fsyncs: records per commit well above 1.
func TestGroupCommitBatches(t *testing.T) {
	j := openJournal(t, testOptions(t, "n1"))
	appendN(t, j, "r", 0, 64*40, 64)
	s := j.Stats()
	mean := float64(s.Records) / float64(s.Commits)
	t.Logf("%d records in %d commits: %.1f per commit, max %d", s.Records, s.Commits, mean, s.MaxBatch)
	if mean <= 4 {
		t.Fatalf("mean batch %.1f records per commit, want > 4", mean)
	}
	if s.MaxBatch > 64 {
		t.Fatalf("a batch of %d with 64 appenders", s.MaxBatch)
	}
}

// MaxBatch bounds a commit.
func TestMaxBatch(t *testing.T) {
	o := testOptions(t, "n1")
	o.MaxBatch = 3
	j := openJournal(t, o)
	appendN(t, j, "r", 0, 300, 32)
	if s := j.Stats(); s.MaxBatch > 3 || s.Records != 300 {
		t.Fatalf("stats %+v", s)
	}
}

func TestSlicesAndDrops(t *testing.T) {
	o := testOptions(t, "n1")
	j := openJournal(t, o)
	mk := func(epoch uint64, id uint32) rain.Slice {
		return rain.Slice{Code: "r", ID: id, Epoch: epoch, Node: "n1", Count: 10, Amount: 100, Seed: uint64(id)}
	}
	for _, s := range []rain.Slice{mk(1, 0), mk(1, 1), mk(2, 0), mk(3, 5)} {
		if err := j.PutSlice(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.PutSlice(rain.Slice{Code: "r", Count: 0}); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("invalid slice: %v", err)
	}
	if err := j.DropSlices("r", 1); err != nil {
		t.Fatal(err)
	}
	if err := j.DropSlices("unknown", 1); err != nil {
		t.Fatal(err)
	}
	rec, err := j.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if want := []rain.Slice{mk(2, 0), mk(3, 5)}; !reflect.DeepEqual(rec.Slices, want) {
		t.Fatalf("slices after dropping epoch 1: %+v", rec.Slices)
	}

	appendN(t, j, "r", 0, 50, 4)
	appendN(t, j, "other", 0, 5, 1)
	if err := j.PutRain(RainMeta{Code: "r", Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	if err := j.DropRain(RainMeta{Code: "r", Epoch: 2}); !errors.Is(err, ErrNotSettled) {
		t.Fatalf("DropRain unsettled: %v", err)
	}
	if _, ok := j.Totals("r"); !ok {
		t.Fatal("a refused DropRain dropped the totals")
	}
	tomb := &Tombstone{Count: 50, Amount: 200, Max: 4, LastSeq: 50, Leftover: 7, HasLeftover: true}
	if err := j.DropRain(RainMeta{Code: "r", Epoch: 2, Settled: true, CompactedAt: 9, Tomb: tomb}); err != nil {
		t.Fatal(err)
	}
	if _, ok := j.Totals("r"); ok {
		t.Fatal("totals of a dropped rain")
	}
	j.Close()

	j = openJournal(t, o)
	rec, err = j.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Slices) != 0 || rec.Totals["r"] != (Totals{}) || rec.Totals["other"].Count != 5 || rec.LastSeq != 55 {
		t.Fatalf("after DropRain: %+v", rec)
	}
	if m, ok, err := j.Rain("r"); err != nil || !ok || !m.Settled || m.CompactedAt != 9 || m.Tomb == nil || *m.Tomb != *tomb {
		t.Fatalf("tombstone: %+v %v %v", m, ok, err)
	}
	// Sequences are not reused after a drop.
	if seq, err := j.Append(claim("r", 0)); err != nil || seq != 56 {
		t.Fatalf("append after drop: %d, %v; want 56", seq, err)
	}
}

func TestScanBounds(t *testing.T) {
	j := openJournal(t, testOptions(t, "n1"))
	for i := range 20 {
		code := "a"
		if i%2 == 1 {
			code = "b"
		}
		if _, err := j.Append(claim(code, i)); err != nil {
			t.Fatal(err)
		}
	}
	collect := func(code string, after uint64, max int, stop int) []uint64 {
		var out []uint64
		err := j.Scan(code, after, max, func(seq uint64, r Record) bool {
			if r.Code != code {
				t.Fatalf("record of %q in %q", r.Code, code)
			}
			out = append(out, seq)
			return len(out) != stop
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, c := range []struct {
		code      string
		after     uint64
		max, stop int
		want      []uint64
	}{
		{"a", 0, 3, -1, []uint64{1, 3, 5}},
		{"b", 5, 0, -1, []uint64{6, 8, 10, 12, 14, 16, 18, 20}},
		{"b", 6, 0, 2, []uint64{8, 10}},
		{"a", 19, 0, -1, nil},
		{"a", ^uint64(0), 0, -1, nil},
		{"none", 0, 0, -1, nil},
	} {
		if got := collect(c.code, c.after, c.max, c.stop); !slices.Equal(got, c.want) {
			t.Errorf("Scan(%q, %d, %d) = %v, want %v", c.code, c.after, c.max, got, c.want)
		}
	}
}

// Recovery of 1,000,000 journaled claims completes and is exact (time is in BenchmarkRecover1M;
// under the race detector, 200,000 claims keep the package's tests fast).
func TestRecover1M(t *testing.T) {
	n := 1_000_000
	if raceEnabled {
		n = 200_000
	}
	j := openJournal(t, testOptions(t, "n1"))
	bulkLoad(t, j, "big", n)
	start := time.Now()
	rec, err := j.Recover()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recovered %d claims in %v", n, time.Since(start))
	var sum int64
	claimed := 0
	for k, idx := range rec.Claimed {
		claimed += len(idx)
		for _, a := range rec.Amounts[k] {
			sum += a
		}
	}
	tot := rec.Totals["big"]
	if claimed != n || tot.Count != int64(n) || tot.Amount != sum || rec.LastSeq != uint64(n) || len(rec.Users["big"]) != 5000 {
		t.Fatalf("claimed %d totals %+v sum %d last %d users %d", claimed, tot, sum, rec.LastSeq, len(rec.Users["big"]))
	}
}

// Totals and the last sequence kept in the commits are right after a crash (no Close), also
// across a DropRain and with several rains per commit.
func TestTotalsAfterCrash(t *testing.T) {
	o := testOptions(t, "n1")
	o.MaxBatch = 3 // many commits
	j, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, j, "a", 0, 150, 4)
	appendN(t, j, "gone", 0, 41, 4)
	if err := j.DropRain(RainMeta{Code: "gone", Settled: true}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup // two rains at once: commits holding both
	wg.Add(2)
	go func() { defer wg.Done(); appendN(t, j, "b", 0, 77, 4) }()
	go func() { defer wg.Done(); appendN(t, j, "a", 150, 33, 4) }()
	wg.Wait()
	// And a last commit holding both (the writer is idle: call its commit directly).
	if err := j.commit([]*request{{rec: claim("a", 500)}, {rec: claim("b", 501)}, {rec: claim("a", 502)}}); err != nil {
		t.Fatal(err)
	}
	want, last := j.AllTotals(), j.LastSeq()
	j.db.Close() // crash: the file is closed under the writer
	j.Close()

	j2 := openJournal(t, o)
	if got := j2.AllTotals(); !reflect.DeepEqual(got, want) || j2.LastSeq() != last {
		t.Fatalf("after crash: totals %+v last %d; want %+v last %d", got, j2.LastSeq(), want, last)
	}
	rec, err := j2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rec.Totals, want) || rec.LastSeq != last {
		t.Fatalf("replay: totals %+v last %d; want %+v last %d", rec.Totals, rec.LastSeq, want, last)
	}
	if seq, err := j2.Append(claim("a", 0)); err != nil || seq != last+1 {
		t.Fatalf("append after crash: %d, %v; want %d", seq, err, last+1)
	}
}
