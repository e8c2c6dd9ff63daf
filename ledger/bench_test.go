package ledger

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"redrain/internal/testredis"
	"redrain/rain"
)

// runAppenders runs b.N calls of fn spread over workers goroutines and reports claims/s.
func runAppenders(b *testing.B, workers int, fn func(i int) error) {
	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if err := fn(int(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "claims/s")
}

func benchGroupCommit(b *testing.B, workers int) {
	b.ReportAllocs()
	j := openJournal(b, testOptions(b, "n1"))
	before, cpu := j.Stats(), processCPU()
	runAppenders(b, workers, func(i int) error {
		_, err := j.Append(claim("bench", i))
		return err
	})
	s := j.Stats()
	commits := float64(s.Commits - before.Commits)
	b.ReportMetric(float64(s.Records-before.Records)/commits, "records/commit")
	b.ReportMetric(float64((s.CommitTime-before.CommitTime).Microseconds())/commits, "µs/commit")
	b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/claim")
}

// processCPU is the CPU time (user + system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Group commit from 8 concurrent appenders: few claims in flight, each commit's latency shows.
func BenchmarkAppendGroupCommit8(b *testing.B) { benchGroupCommit(b, 8) }

// Group commit from 64 concurrent appenders (fsync on).
func BenchmarkAppendGroupCommit64(b *testing.B) { benchGroupCommit(b, 64) }

// Group commit from 1024 concurrent appenders (fsync on).
func BenchmarkAppendGroupCommit1024(b *testing.B) { benchGroupCommit(b, 1024) }

// The baseline: one bbolt transaction (one fsync) per claim, 64 appenders.
func BenchmarkAppendUpdatePerClaim64(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "per-claim.db"), 0o600,
		&bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("claims")); return err }); err != nil {
		b.Fatal(err)
	}
	runAppenders(b, 64, func(i int) error {
		return db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket([]byte("claims"))
			seq, _ := bk.NextSequence()
			return bk.Put(seqKey(nil, seq), EncodeRecord(nil, claim("bench", i)))
		})
	})
	b.ReportMetric(1, "records/commit")
}

// Claims applied to Redis per second by FlushRain (default batch of 1000 claims per Lua call).
func BenchmarkFlush(b *testing.B) {
	srv := testredis.New(b)
	rdb := srv.Client()
	j := openJournal(b, testOptions(b, "n1"))
	code := fmt.Sprintf("bench%d", b.N)
	bulkLoad(b, j, code, b.N)
	f := NewFlusher(j, rdb, FlusherOptions{Logger: quiet})
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if err := f.FlushRain(context.Background(), code); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "claims/s")
	if c, _, _ := f.Flushed(code); c != int64(b.N) {
		b.Fatalf("flushed %d of %d", c, b.N)
	}
}

// Recovery of 1,000,000 journaled claims (4 slices, 5000 users).
func BenchmarkRecover1M(b *testing.B) {
	j := openJournal(b, testOptions(b, "n1"))
	for id := range uint32(4) {
		if err := j.PutSlice(rain.Slice{Code: "big", ID: id, Epoch: 1, Node: "n1", Count: 250_000, Amount: 1_000_000_000}); err != nil {
			b.Fatal(err)
		}
	}
	bulkLoad(b, j, "big", 1_000_000)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := j.Recover(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeDecodeRecord(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, RecordSize)
	r := claim("x", 7)
	r.Code = ""
	for range b.N {
		buf = EncodeRecord(buf[:0], r)
		if _, err := DecodeRecord(buf); err != nil {
			b.Fatal(err)
		}
	}
}
