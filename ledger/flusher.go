package ledger

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// FlusherOptions configure a Flusher. The zero value of a field means its default.
type FlusherOptions struct {
	// NodeID names the node in the marker field, the nodes hash and credit entries. "" means the
	// journal's; anything else must equal it.
	NodeID string
	// MaxBatch bounds the claims applied by one Lua call, all in one credit-stream entry (at
	// most 56 bytes a claim). 0 means 1000; at most 10000.
	MaxBatch int
	// Interval is how often Run looks for unflushed claims when not notified. 0 means 50 ms.
	Interval time.Duration
	// RecheckInterval is how often Run re-reads the marker of a rain it believes flushed, to
	// notice a Redis that lost data (wiped, restored from an older snapshot). 0 means 1 s.
	RecheckInterval time.Duration
	// MinGap is the least time between the starts of two rounds of Run. A Lua call costs Redis
	// about 16 µs however few claims it carries, so under load the flusher waits this long to
	// carry many claims per call (at 30,000 claims/s, 60 per call: well under a µs each) instead
	// of one call per journal commit. It delays only the Redis copy of claims (flush lag), never
	// an answer. 0 means 2 ms; negative means no gap (tests).
	MinGap time.Duration
	// MinBackoff and MaxBackoff bound the wait after a Redis error, doubled per failure with
	// jitter. 0 means 50 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives Redis errors. nil means the journal's.
	Logger *slog.Logger
}

// Limits and defaults of FlusherOptions.
const (
	DefaultFlushBatch      = 1000
	MaxFlushBatch          = 10000
	DefaultFlushInterval   = 50 * time.Millisecond
	DefaultRecheckInterval = time.Second
	DefaultMinGap          = 2 * time.Millisecond
	DefaultMinBackoff      = 50 * time.Millisecond
	DefaultMaxBackoff      = 5 * time.Second
)

// Source is what the flusher reads of a journal: its identity, each rain's totals and records.
// *Journal is the real one, MemJournal the in-memory one.
type Source interface {
	NodeID() string
	Incarnation() uint64
	Totals(code string) (t Totals, ok bool)
	AllTotals() map[string]Totals
	Scan(code string, afterSeq uint64, max int, fn func(seq uint64, r Record) bool) error
}

func (o *FlusherOptions) fill(j Source) {
	if o.NodeID == "" {
		o.NodeID = j.NodeID()
	}
	if o.NodeID != j.NodeID() {
		panic(fmt.Sprintf("ledger: FlusherOptions.NodeID %q is not the journal's %q", o.NodeID, j.NodeID()))
	}
	def := func(p *time.Duration, d time.Duration, name string) {
		if *p < 0 {
			panic(fmt.Sprintf("ledger: FlusherOptions.%s %v < 0", name, *p))
		}
		if *p == 0 {
			*p = d
		}
	}
	def(&o.Interval, DefaultFlushInterval, "Interval")
	def(&o.RecheckInterval, DefaultRecheckInterval, "RecheckInterval")
	switch {
	case o.MinGap == 0:
		o.MinGap = DefaultMinGap
	case o.MinGap < 0:
		o.MinGap = 0
	}
	def(&o.MinBackoff, DefaultMinBackoff, "MinBackoff")
	def(&o.MaxBackoff, DefaultMaxBackoff, "MaxBackoff")
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultFlushBatch
	}
	if o.MaxBatch < 1 || o.MaxBatch > MaxFlushBatch {
		panic(fmt.Sprintf("ledger: FlusherOptions.MaxBatch %d not in 1..%d", o.MaxBatch, MaxFlushBatch))
	}
	if jj, ok := j.(*Journal); ok && o.Logger == nil {
		o.Logger = jj.log
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Flusher moves journaled claims to Redis, exactly once (see the package comment). Its methods
// are safe for concurrent use; batches are applied one at a time.
type Flusher struct {
	j     Source
	rdb   Sink
	opts  FlusherOptions
	log   *slog.Logger
	field string // "<node>.<incarnation>"
	kick  chan struct{}

	passMu sync.Mutex // one batch at a time; guards b
	b      flushBatch

	mu    sync.Mutex // guards rains
	rains map[string]progress

	batches, claims, refused, errors atomic.Uint64
}

// progress is what the flusher knows of one rain's marker.
type progress struct {
	marker        uint64    // last marker read or set
	count, amount int64     // the journal's claims of the rain with seq <= marker
	synced        bool      // count and amount match marker
	stale         bool      // re-read the marker before the next batch
	checked       time.Time // when the marker was last read or set
}

// NewFlusher returns a flusher for j's claims. It panics on options no caller should pass
// (another node's id, a negative duration, MaxBatch out of range).
func NewFlusher(j *Journal, rdb redis.UniversalClient, opts FlusherOptions) *Flusher {
	return NewFlusherTo(j, NewRedisClient(rdb), opts)
}

// NewFlusherTo returns a flusher for j's claims (a *Journal, or a MemJournal in tests) into
// sink (a RedisClient, or a MemRedis in tests). It panics as NewFlusher does.
func NewFlusherTo(j Source, rdb Sink, opts FlusherOptions) *Flusher {
	opts.fill(j)
	return &Flusher{j: j, rdb: rdb, opts: opts, log: opts.Logger,
		field: MarkerField(opts.NodeID, j.Incarnation()), kick: make(chan struct{}, 1),
		rains: map[string]progress{}}
}

// MarkerField is this journal's field in the rains' flushed hashes.
func (f *Flusher) MarkerField() string { return f.field }

// Notify wakes Run (claims were journaled). It never blocks.
func (f *Flusher) Notify() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Run flushes in the background until ctx ends (end it before closing the journal): each round
// flushes a batch of every rain that is behind and re-reads the marker of flushed rains every
// RecheckInterval; rounds start at least MinGap apart; it waits Interval (or Notify) when idle
// and backs off after a Redis error.
func (f *Flusher) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	attempt := 0
	for {
		began := time.Now()
		busy, err := f.round(ctx)
		if ctx.Err() != nil {
			return
		}
		if gap := f.opts.MinGap - time.Since(began); gap > 0 && err == nil && !sleep(ctx, gap) {
			return
		}
		kick := f.kick
		wait := f.opts.Interval
		switch {
		case err != nil:
			attempt++
			wait, kick = backoff(attempt, f.opts.MinBackoff, f.opts.MaxBackoff, rand.Float64()), nil
			f.log.Warn("flush to redis failed; retrying", "attempt", attempt, "in", wait, "err", err)
		case busy:
			attempt = 0
			continue
		default:
			attempt = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-timer.C:
		}
	}
}

// round gives every rain that is behind (or due for a marker check) one batch. busy reports that
// some rain may have more to flush.
func (f *Flusher) round(ctx context.Context) (busy bool, err error) {
	now := time.Now()
	all := f.j.AllTotals()
	f.prune(all)
	for code, t := range all {
		p := f.progress(code)
		recheck := now.Sub(p.checked) >= f.opts.RecheckInterval
		if p.synced && !p.stale && p.marker >= t.LastSeq && !recheck {
			continue
		}
		if recheck {
			f.markStale(code)
		}
		done, err := f.pass(ctx, code)
		if err != nil {
			return busy, fmt.Errorf("rain %s: %w", code, err)
		}
		busy = busy || !done
	}
	return busy, nil
}

// FlushRain flushes the rain until the claims journaled when it was called are in Redis,
// re-reading the marker first. It retries Redis errors with backoff until ctx ends.
func (f *Flusher) FlushRain(ctx context.Context, code string) error {
	t, ok := f.j.Totals(code)
	if !ok {
		return nil
	}
	f.markStale(code)
	attempt := 0
	for {
		done, err := f.pass(ctx, code)
		if err == nil {
			attempt = 0
			if done || f.progress(code).marker >= t.LastSeq {
				return nil
			}
			continue
		}
		attempt++
		wait := backoff(attempt, f.opts.MinBackoff, f.opts.MaxBackoff, rand.Float64())
		f.log.Warn("flush to redis failed; retrying", "rain", code, "attempt", attempt, "in", wait, "err", err)
		if !sleep(ctx, wait) {
			return fmt.Errorf("ledger: flush %s: %w (last error: %w)", code, ctx.Err(), err)
		}
	}
}

// FlushAll flushes every rain with journaled claims (graceful stop).
func (f *Flusher) FlushAll(ctx context.Context) error {
	for code := range f.j.AllTotals() {
		if err := f.FlushRain(ctx, code); err != nil {
			return err
		}
	}
	return nil
}

// Pass applies one batch of the rain after its marker, reading the marker first if it is stale
// (see Recheck), and returns at once on a Redis error; done reports that nothing after the
// marker was found. It is the step Run and FlushRain repeat, exported for callers that drive
// the flusher themselves (the simulator, package sim, steps it from one goroutine).
func (f *Flusher) Pass(ctx context.Context, code string) (done bool, err error) {
	return f.pass(ctx, code)
}

// Recheck makes the next pass of the rain re-read its marker, as Run does every
// RecheckInterval and FlushRain does first.
func (f *Flusher) Recheck(code string) { f.markStale(code) }

// pass applies one batch of the rain after its marker, reading the marker first if it is stale.
// done reports that nothing after the marker was found.
func (f *Flusher) pass(ctx context.Context, code string) (done bool, err error) {
	f.passMu.Lock()
	defer f.passMu.Unlock()
	if p := f.progress(code); p.stale || !p.synced {
		m, err := f.rdb.ReadMarker(ctx, code, f.opts.NodeID, f.j.Incarnation())
		if err != nil {
			f.errors.Add(1)
			return false, err
		}
		if err := f.sync(code, m); err != nil {
			return false, err
		}
	}
	b := &f.b
	b.reset(code, f.progress(code).marker)
	err = f.j.Scan(code, b.Prev, f.opts.MaxBatch, func(seq uint64, r Record) bool {
		b.add(seq, r)
		return true
	})
	if err != nil || b.Count == 0 {
		return err == nil, err
	}
	b.Field, b.Node, b.Incarnation = f.field, f.opts.NodeID, f.j.Incarnation()
	applied, marker, err := f.rdb.Apply(ctx, &b.Batch)
	if err != nil {
		f.errors.Add(1)
		return false, err
	}
	if !applied {
		// Redis moved on (our retried call was applied) or rolled back: take its marker.
		f.refused.Add(1)
		return false, f.sync(code, marker)
	}
	f.batches.Add(1)
	f.claims.Add(uint64(b.Count))
	f.setProgress(code, progress{marker: b.Last, count: f.progress(code).count + b.Count,
		amount: f.progress(code).amount + b.Amount, synced: true, checked: time.Now()})
	return false, nil
}

// sync makes the rain's progress match marker m, summing the journal's records up to it.
func (f *Flusher) sync(code string, m uint64) error {
	p := f.progress(code)
	from, count, amount := uint64(0), int64(0), int64(0)
	if p.synced && m >= p.marker {
		from, count, amount = p.marker, p.count, p.amount
	}
	if from < m {
		c, a, err := f.sum(code, from, m)
		if err != nil {
			return err
		}
		count, amount = count+c, amount+a
	}
	if t, _ := f.j.Totals(code); m > t.LastSeq {
		f.log.Warn("redis marker is past the journal's last claim of the rain", "rain", code, "marker", m, "last", t.LastSeq)
	}
	f.setProgress(code, progress{marker: m, count: count, amount: amount, synced: true, checked: time.Now()})
	return nil
}

// sum adds the rain's records with from < seq <= to, in bounded read transactions.
func (f *Flusher) sum(code string, from, to uint64) (count, amount int64, err error) {
	const chunk = 65536
	for {
		n, last := 0, from
		err := f.j.Scan(code, from, chunk, func(seq uint64, r Record) bool {
			if seq > to {
				return false
			}
			n, last = n+1, seq
			count, amount = count+1, amount+r.Amount
			return true
		})
		if err != nil || n < chunk {
			return count, amount, err
		}
		from = last
	}
}

func (f *Flusher) progress(code string) progress {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rains[code]
}

func (f *Flusher) setProgress(code string, p progress) {
	f.mu.Lock()
	f.rains[code] = p
	f.mu.Unlock()
}

// prune forgets rains the journal no longer has (dropped).
func (f *Flusher) prune(journaled map[string]Totals) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for code := range f.rains {
		if _, ok := journaled[code]; !ok {
			delete(f.rains, code)
		}
	}
}

func (f *Flusher) markStale(code string) {
	f.mu.Lock()
	p := f.rains[code]
	p.stale = true
	f.rains[code] = p
	f.mu.Unlock()
}

// Flushed returns the rain's claims this journal has in Redis, as of the marker last read or
// set; ok is false until the flusher has read the rain's marker.
func (f *Flusher) Flushed(code string) (count, amount int64, ok bool) {
	p := f.progress(code)
	return p.count, p.amount, p.synced
}

// Lag returns the claims journaled but not known to be flushed, and the age in seconds of the
// oldest of them (0 when none).
func (f *Flusher) Lag() (claims int64, seconds float64) {
	now := time.Now()
	for code, t := range f.j.AllTotals() {
		p := f.progress(code)
		if behind := t.Count - p.count; behind > 0 {
			claims += behind
			if r, ok, err := firstAfter(f.j, code, p.marker); err == nil && ok {
				seconds = max(seconds, now.Sub(time.Unix(0, r.UnixNano)).Seconds())
			}
		}
	}
	return claims, seconds
}

// FlusherStats are counters for metrics.
type FlusherStats struct {
	Batches uint64 // Lua calls that applied a batch
	Claims  uint64 // claims applied
	Refused uint64 // batches the script refused (marker moved)
	Errors  uint64 // Redis errors
}

// Stats returns the flusher's counters.
func (f *Flusher) Stats() FlusherStats {
	return FlusherStats{Batches: f.batches.Load(), Claims: f.claims.Load(), Refused: f.refused.Load(), Errors: f.errors.Load()}
}

// backoff is the wait before retry number attempt (1-based): lo doubled per attempt, capped at
// hi, scaled by a jitter in [0.5, 1] from r in [0, 1).
func backoff(attempt int, lo, hi time.Duration, r float64) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	return time.Duration(float64(min(d, hi)) * (0.5 + r/2))
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
