package ledger

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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

// FlushRain applying journaled claims to Redis in batches of 16 to 1000 claims (one Lua call
// each; under load a round's batch is what was journaled since the last one, tens to hundreds).
// It reports claims/s and redis-µs/claim: the CPU the redis-server process spent (INFO cpu,
// used_cpu_user + used_cpu_sys: reading and parsing the call, the script, the writes) per claim.
// ns/op and allocs/op are per claim too (b.N claims). Compare runs with benchstat.
func BenchmarkFlush(b *testing.B) {
	for _, batch := range []int{16, 32, 64, 256, DefaultFlushBatch} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchFlush(b, batch) })
	}
}

func benchFlush(b *testing.B, batch int) {
	srv := testredis.New(b)
	rdb := srv.Client()
	j := openJournal(b, testOptions(b, "n1"))
	code := fmt.Sprintf("bench%d", b.N)
	bulkLoad(b, j, code, b.N)
	f := NewFlusher(j, rdb, FlusherOptions{MaxBatch: batch, Logger: quiet})
	ctx := context.Background()
	cpu0 := redisCPU(b, rdb)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if err := f.FlushRain(ctx, code); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	elapsed := time.Since(start)
	cpu := redisCPU(b, rdb) - cpu0
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "claims/s")
	b.ReportMetric(cpu.Seconds()*1e6/float64(b.N), "redis-µs/claim")
	if c, _, _ := f.Flushed(code); c != int64(b.N) {
		b.Fatalf("flushed %d of %d", c, b.N)
	}
}

// redisCPU is the CPU the redis-server has used so far (INFO cpu: used_cpu_user + used_cpu_sys).
func redisCPU(b *testing.B, rdb *redis.Client) time.Duration {
	b.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	found := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
			continue
		}
		s, err := strconv.ParseFloat(v, 64)
		if err != nil {
			b.Fatalf("INFO cpu %s: %v", line, err)
		}
		total += s
		found++
	}
	if found != 2 {
		b.Fatalf("INFO cpu lacks used_cpu_user or used_cpu_sys:\n%s", info)
	}
	return time.Duration(total * float64(time.Second))
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
