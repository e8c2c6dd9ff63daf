package ledger

import (
	"context"
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

// checkInvariants runs Audit, the one journal-against-Redis rule, on the rain: markers, the
// nodes hash, totals and the credit stream (every claim once, as journaled). Call it once
// everything is flushed.
func checkInvariants(t testing.TB, rdb redis.UniversalClient, code string, js ...*Journal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srcs := make([]Source, len(js))
	for i, j := range js {
		srcs[i] = j
	}
	problems, err := Audit(ctx, NewRedisClient(rdb), code, srcs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}
