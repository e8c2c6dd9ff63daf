package ledger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testOptions are options for a journal file in the test's temporary directory.
func testOptions(t testing.TB, node string) Options {
	o := DefaultOptions(filepath.Join(t.TempDir(), node+".db"), node)
	o.Logger = quiet
	o.WALSize = 1 << 20 // tests open many journals: 2 MiB of zeros each, not 32 MiB
	return o
}

// openJournal opens a journal closed at cleanup.
func openJournal(t testing.TB, o Options) *Journal {
	t.Helper()
	j, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// claim is the i-th test claim of a rain: 4 slices, 5000 users, amounts 1..997.
func claim(code string, i int) Record {
	return Record{Code: code, Slice: uint32(i % 4), Epoch: 1, Index: uint32(i / 4), User: uint64(i%5000 + 1),
		Amount: int64(i%997 + 1), UnixNano: time.Now().UnixNano()}
}

// appendN appends claims from..from+n-1 of the rain from workers goroutines; it returns the seqs.
func appendN(t testing.TB, j *Journal, code string, from, n, workers int) []uint64 {
	t.Helper()
	seqs := make([]uint64, n)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				s, err := j.Append(claim(code, from+i))
				if err != nil {
					errs <- err
					return
				}
				seqs[i] = s
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	return seqs
}

// bulkLoad journals n claims in commits of up to 65536 through the writer's commit path without
// waiters (fast fixtures). No Append may run concurrently.
func bulkLoad(t testing.TB, j *Journal, code string, n int) {
	t.Helper()
	chunk := j.opts.MaxBatch // the largest frame the log takes
	reqs := make([]request, chunk)
	batch := make([]*request, 0, chunk)
	for done := 0; done < n; {
		batch = batch[:0]
		for i := 0; i < chunk && done+i < n; i++ {
			reqs[i] = request{rec: claim(code, done+i)}
			batch = append(batch, &reqs[i])
		}
		if err := j.commit(batch); err != nil {
			t.Fatalf("bulk commit: %v", err)
		}
		done += len(batch)
	}
	if err := j.applyLocked(); err != nil { // into bbolt, so the caller measures only its own work
		t.Fatalf("bulk apply: %v", err)
	}
}

// journalSums replays one journal's records of a rain.
type journalSums struct {
	count, amount, max int64
	last               uint64
	users              map[uint64]int64
	credits            map[string]string // claim_id -> "user amount node"
}

func replay(t testing.TB, j *Journal, code string, into *journalSums) {
	t.Helper()
	into.last = 0
	err := j.Scan(code, 0, 0, func(seq uint64, r Record) bool {
		into.count++
		into.amount += r.Amount
		into.max = max(into.max, r.Amount)
		into.users[r.User] += r.Amount
		id := string(AppendClaimID(nil, j.NodeID(), j.Incarnation(), seq))
		if _, dup := into.credits[id]; dup {
			t.Errorf("claim id %s twice in the journal", id)
		}
		into.credits[id] = fmt.Sprintf("%d %d %s", r.User, r.Amount, j.NodeID())
		into.last = seq
		return true
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
}

// checkInvariants compares the journals' replayed claims of the rain with Redis: totals, every
// journal's marker, the nodes hash, the credit stream (every claim once, same content) and the
// per-user sums it adds up to. Call it once everything is flushed.
func checkInvariants(t testing.TB, rdb redis.UniversalClient, code string, js ...*Journal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := journalSums{users: map[uint64]int64{}, credits: map[string]string{}}
	nodes, err := ReadNodes(ctx, rdb, code)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range js {
		one := journalSums{users: map[uint64]int64{}, credits: map[string]string{}}
		replay(t, j, code, &one)
		replay(t, j, code, &all)
		marker, err := ReadMarker(ctx, rdb, code, j.NodeID(), j.Incarnation())
		if err != nil {
			t.Fatal(err)
		}
		if marker != one.last {
			t.Errorf("%s: marker %d, journal's last seq of the rain %d", j.NodeID(), marker, one.last)
		}
		if n := nodes[j.NodeID()]; n.ClaimedCount != one.count || n.ClaimedAmount != one.amount {
			t.Errorf("%s: nodes hash %+v, journal count %d amount %d", j.NodeID(), n, one.count, one.amount)
		}
	}
	tot, err := ReadTotals(ctx, rdb, code)
	if err != nil {
		t.Fatal(err)
	}
	if want := (RainTotals{all.count, all.amount, all.max}); tot != want {
		t.Errorf("redis totals %+v, journals %+v", tot, want)
	}
	credits := readCredits(t, ctx, rdb, code)
	checkCredits(t, credits, all.credits)
	checkUsers(t, credits, all.users)
}

// readCredits decodes the rain's whole credit stream, in stream order.
func readCredits(t testing.TB, ctx context.Context, rdb redis.UniversalClient, code string) []Credit {
	t.Helper()
	entries, err := rdb.XRange(ctx, Keys(code).Credits, "-", "+").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	var out []Credit
	for _, e := range entries {
		cs, err := DecodeCredits(e.Values)
		if err != nil {
			t.Fatalf("credit entry %s: %v", e.ID, err)
		}
		out = append(out, cs...)
	}
	return out
}

// checkCredits: the stream holds every journaled claim once, with its user, amount and node.
func checkCredits(t testing.TB, credits []Credit, want map[string]string) {
	t.Helper()
	if len(credits) != len(want) {
		t.Errorf("credit stream has %d claims, journals %d", len(credits), len(want))
	}
	seen := map[string]bool{}
	for _, c := range credits {
		got := fmt.Sprintf("%d %d %s", c.User, c.Amount, c.Node)
		switch {
		case seen[c.ClaimID]:
			t.Errorf("claim %s twice in the credit stream", c.ClaimID)
		case want[c.ClaimID] != got:
			t.Errorf("credit %s = %q, journal %q", c.ClaimID, got, want[c.ClaimID])
		}
		seen[c.ClaimID] = true
	}
}

// checkUsers: each user's sum in the credit stream is the journals' (the wallet's balances).
func checkUsers(t testing.TB, credits []Credit, want map[uint64]int64) {
	t.Helper()
	got := map[uint64]int64{}
	for _, c := range credits {
		got[c.User] += c.Amount
	}
	if len(got) != len(want) {
		t.Errorf("credit stream has %d users, journals %d", len(got), len(want))
	}
	for u, a := range want {
		if got[u] != a {
			t.Errorf("user %d: credit stream %d, journals %d", u, got[u], a)
			return
		}
	}
}
