package ledger

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Options configure a Journal. The zero value of a field means its default (DefaultOptions).
type Options struct {
	// Path of the bbolt file; its directory is created if missing. Required.
	Path string
	// NodeID is stored when the file is created; opening it under another id fails with
	// ErrNodeMismatch. Required.
	NodeID string
	// MaxBatch bounds the records committed in one transaction (one fsync). 0 means 4096.
	MaxBatch int
	// QueueLen bounds the records waiting for the writer; Append blocks when it is full.
	// 0 means 2*MaxBatch.
	QueueLen int
	// OpenTimeout bounds the wait for the file lock, so a second opener fails fast with
	// ErrLocked. 0 means 1 s.
	OpenTimeout time.Duration
	// Logger receives commit failures and recovery warnings. nil means slog.Default().
	Logger *slog.Logger
}

// Limits of Options.
const (
	DefaultMaxBatch    = 4096
	MaxMaxBatch        = 65536
	DefaultOpenTimeout = time.Second
)

// DefaultOptions returns the defaults for the file at path, owned by node.
func DefaultOptions(path, node string) Options {
	return Options{Path: path, NodeID: node, MaxBatch: DefaultMaxBatch, QueueLen: 2 * DefaultMaxBatch,
		OpenTimeout: DefaultOpenTimeout}
}

func (o *Options) fill() error {
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.QueueLen == 0 {
		o.QueueLen = 2 * o.MaxBatch
	}
	if o.OpenTimeout == 0 {
		o.OpenTimeout = DefaultOpenTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.Path == "":
		return fmt.Errorf("%w: Path is empty", ErrBadOptions)
	case o.NodeID == "":
		return fmt.Errorf("%w: NodeID is empty", ErrBadOptions)
	case o.MaxBatch < 1 || o.MaxBatch > MaxMaxBatch:
		return fmt.Errorf("%w: MaxBatch %d not in 1..%d", ErrBadOptions, o.MaxBatch, MaxMaxBatch)
	case o.QueueLen < 1:
		return fmt.Errorf("%w: QueueLen %d < 1", ErrBadOptions, o.QueueLen)
	case o.OpenTimeout < 0:
		return fmt.Errorf("%w: OpenTimeout %v < 0", ErrBadOptions, o.OpenTimeout)
	}
	return nil
}

var (
	bucketMeta   = []byte("meta")
	bucketRains  = []byte("rains")
	bucketSlices = []byte("slices")
	bucketClaims = []byte("claims")
	bucketTotals = []byte("totals")

	keyIncarnation = []byte("incarnation")
	keyNode        = []byte("node")
	keyVersion     = []byte("version")
	keyLastSeq     = []byte("last_seq")
)

const formatVersion = 1

var errBucketNotFound = berrors.ErrBucketNotFound

// Totals are a rain's journaled claims.
type Totals struct {
	Count   int64  // claims
	Amount  int64  // cents
	Max     int64  // largest single claim
	LastSeq uint64 // sequence of the rain's last claim
}

func (t *Totals) add(seq uint64, amount int64) {
	t.Count++
	t.Amount += amount
	t.Max = max(t.Max, amount)
	t.LastSeq = seq
}

func (t Totals) encode(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.Count))
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.Amount))
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.Max))
	return binary.BigEndian.AppendUint64(dst, t.LastSeq)
}

func decodeTotals(b []byte) (Totals, error) {
	if len(b) != 32 {
		return Totals{}, fmt.Errorf("ledger: totals entry of %d bytes", len(b))
	}
	return Totals{Count: int64(binary.BigEndian.Uint64(b)), Amount: int64(binary.BigEndian.Uint64(b[8:])),
		Max: int64(binary.BigEndian.Uint64(b[16:])), LastSeq: binary.BigEndian.Uint64(b[24:])}, nil
}

// Journal is the node's claim journal. Its methods are safe for concurrent use.
type Journal struct {
	db          *bolt.DB
	opts        Options
	log         *slog.Logger
	incarnation uint64

	queue chan *request
	quit  chan struct{} // closed by Close: the writer drains the queue and exits
	done  chan struct{} // closed when the writer has exited

	mu     sync.RWMutex // senders hold it shared, so Close knows when no one can enqueue
	closed bool

	failed   atomic.Pointer[error] // the first commit failure; later writes get ErrUnavailable
	failedAt uint64                // lastSeq when the commit failed; under txMu
	lastSeq  atomic.Uint64

	txMu     sync.Mutex // held around a write transaction and the in-memory change that follows it
	totalsMu sync.Mutex
	totals   map[string]Totals // per rain, as committed

	stats      journalStats
	commitHook atomic.Pointer[func(batch int) error] // tests: fail or delay a commit

	// writer-owned scratch, reused across commits
	buf     []byte
	touched map[string]Totals
	buckets map[string]*bolt.Bucket
}

type journalStats struct {
	commits, records, commitNanos atomic.Uint64
	lastBatch, maxBatch           atomic.Int64
	lastCommitNanos               atomic.Int64
}

// Stats are counters for metrics.
type Stats struct {
	Commits     uint64        // successful commits (fsyncs of claim batches)
	Records     uint64        // records committed
	LastBatch   int           // records in the last commit
	MaxBatch    int           // largest commit so far
	CommitTime  time.Duration // total time spent committing
	LastCommit  time.Duration // duration of the last commit
	LastSeq     uint64        // last sequence assigned
	QueueLen    int           // records waiting for the writer now
	Failed      bool          // a commit failed: the journal refuses writes
	Incarnation uint64
}

// request is one Append waiting for its batch; pooled, with its channel reused.
type request struct {
	rec  Record
	seq  uint64
	err  error
	done chan struct{}
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

// Open opens (creating if needed) the journal file and starts its writer. A file another opener
// holds fails with ErrLocked after Options.OpenTimeout.
func Open(opts Options) (*Journal, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o700); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	db, err := openDB(opts)
	if err != nil {
		return nil, err
	}
	j := &Journal{db: db, opts: opts, log: opts.Logger,
		queue: make(chan *request, opts.QueueLen), quit: make(chan struct{}), done: make(chan struct{}),
		totals: map[string]Totals{}, touched: map[string]Totals{}, buckets: map[string]*bolt.Bucket{}}
	if err := j.init(); err != nil {
		db.Close()
		return nil, err
	}
	go j.writer()
	return j, nil
}

func openDB(opts Options) (*bolt.DB, error) {
	db, err := bolt.Open(opts.Path, 0o600, &bolt.Options{
		Timeout:        opts.OpenTimeout,
		NoFreelistSync: true, // the freelist is rebuilt on open; commits write less
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (waited %v)", ErrLocked, opts.Path, opts.OpenTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", opts.Path, err)
	}
	return db, nil
}

// init creates the buckets and the incarnation on a new file, checks the owner of an old one and
// loads the last sequence and per-rain totals.
func (j *Journal) init() error {
	return j.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketRains, bucketSlices, bucketClaims, bucketTotals} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := j.initMeta(meta); err != nil {
			return err
		}
		if v := meta.Get(keyLastSeq); len(v) == 8 {
			j.lastSeq.Store(binary.BigEndian.Uint64(v))
		}
		return tx.Bucket(bucketTotals).ForEach(func(k, v []byte) error {
			t, err := decodeTotals(v)
			j.totals[string(k)] = t
			return err
		})
	})
}

func (j *Journal) initMeta(meta *bolt.Bucket) error {
	if v := meta.Get(keyIncarnation); len(v) == 8 {
		j.incarnation = binary.BigEndian.Uint64(v)
		if node := string(meta.Get(keyNode)); node != j.opts.NodeID {
			return fmt.Errorf("%w: file %s is node %q's, not %q", ErrNodeMismatch, j.opts.Path, node, j.opts.NodeID)
		}
		if v := meta.Get(keyVersion); len(v) != 1 || v[0] != formatVersion {
			return fmt.Errorf("ledger: %s: unknown format version %v", j.opts.Path, v)
		}
		return nil
	}
	var b [8]byte
	for j.incarnation == 0 {
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("ledger: incarnation: %w", err)
		}
		j.incarnation = binary.BigEndian.Uint64(b[:])
	}
	if err := meta.Put(keyIncarnation, b[:]); err != nil {
		return err
	}
	if err := meta.Put(keyNode, []byte(j.opts.NodeID)); err != nil {
		return err
	}
	return meta.Put(keyVersion, []byte{formatVersion})
}

// Incarnation is the random id drawn when the file was created.
func (j *Journal) Incarnation() uint64 { return j.incarnation }

// NodeID is the node that owns the file.
func (j *Journal) NodeID() string { return j.opts.NodeID }

// Path is the bbolt file.
func (j *Journal) Path() string { return j.opts.Path }

// Append journals r and returns its sequence once the commit holding it is fsynced. It fails with
// ErrBadRecord (r invalid), ErrClosed (after Close) or ErrCommit (nothing of r was made durable).
func (j *Journal) Append(r Record) (seq uint64, err error) {
	if err := r.Validate(); err != nil {
		return 0, err
	}
	if err := j.commitError(); err != nil {
		return 0, err
	}
	req := requestPool.Get().(*request)
	req.rec = r
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		requestPool.Put(req)
		return 0, ErrClosed
	}
	j.queue <- req
	j.mu.RUnlock()
	<-req.done
	seq, err = req.seq, req.err
	*req = request{done: req.done}
	requestPool.Put(req)
	return seq, err
}

// writer is the only goroutine that commits claims: it takes what is queued, commits, answers.
func (j *Journal) writer() {
	defer close(j.done)
	batch := make([]*request, 0, j.opts.MaxBatch)
	for {
		select {
		case r := <-j.queue:
			batch = j.fill(append(batch[:0], r))
			j.commitAndAnswer(batch)
			runtime.Gosched() // let the waiters just answered queue their next record
		case <-j.quit:
			// No sender can enqueue any more (Close holds the lock first): commit the rest.
			for len(j.queue) > 0 {
				batch = j.fill(batch[:0])
				j.commitAndAnswer(batch)
			}
			return
		}
	}
}

// fill adds queued requests to batch without waiting, up to MaxBatch.
func (j *Journal) fill(batch []*request) []*request {
	for len(batch) < j.opts.MaxBatch {
		select {
		case r := <-j.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commitAndAnswer commits batch and wakes its waiters with their seq, or all with the error
// (also, without trying, once an earlier commit has failed).
func (j *Journal) commitAndAnswer(batch []*request) {
	err := j.commitError()
	if err == nil {
		start := time.Now()
		if cerr := j.commit(batch); cerr != nil {
			err = fmt.Errorf("%w: %w", ErrCommit, cerr)
			j.failedAt = j.lastSeq.Load() // published by the store of failed; read by Reopen after loading it
			j.failed.Store(&err)
			j.log.Error("journal commit failed; refusing writes until reopened", "records", len(batch), "err", cerr)
		} else {
			j.noteCommit(len(batch), time.Since(start))
		}
	}
	for _, r := range batch {
		if err != nil {
			r.seq, r.err = 0, err
		}
		r.done <- struct{}{}
	}
	clear(batch)
}

func (j *Journal) commitError() error {
	if p := j.failed.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, *p)
	}
	return nil
}

// Failed reports whether a commit failed and the journal awaits Reopen.
func (j *Journal) Failed() bool { return j.failed.Load() != nil }

// Reopen recovers from a failed commit: it closes and reopens the file (so nothing of the failed
// transaction is trusted from memory), reloads the last sequence and totals from it, and accepts
// writes again. It returns the records found after the last sequence known good before the
// failure: claims whose commit reported failure but which did reach the file (a failed fsync can
// leave them there). The caller must treat those as claimed and the others of the failed batch
// as never journaled. Without a failure it does nothing.
func (j *Journal) Reopen() ([]Record, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil, ErrClosed
	}
	j.txMu.Lock()
	defer j.txMu.Unlock()
	if j.failed.Load() == nil {
		return nil, nil
	}
	if err := j.db.Close(); err != nil {
		j.log.Warn("journal close before reopen", "err", err)
	}
	db, err := openDB(j.opts)
	if err != nil {
		return nil, err
	}
	j.db = db
	j.totalsMu.Lock()
	j.totals = map[string]Totals{}
	j.totalsMu.Unlock()
	if err := j.init(); err != nil {
		return nil, err
	}
	var found []Record
	err = j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketClaims).ForEachBucket(func(code []byte) error {
			c := tx.Bucket(bucketClaims).Bucket(code).Cursor()
			for k, v := c.Seek(seqKey(nil, j.failedAt+1)); k != nil; k, v = c.Next() {
				r, err := DecodeRecord(v)
				if err != nil {
					return err
				}
				r.Code = string(code)
				found = append(found, r)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	j.failed.Store(nil)
	j.log.Info("journal reopened after a failed commit", "last_seq", j.lastSeq.Load(), "committed_after_all", len(found))
	return found, nil
}

func (j *Journal) noteCommit(n int, d time.Duration) {
	s := &j.stats
	s.commits.Add(1)
	s.records.Add(uint64(n))
	s.lastBatch.Store(int64(n))
	if int64(n) > s.maxBatch.Load() {
		s.maxBatch.Store(int64(n)) // only the writer stores
	}
	s.commitNanos.Add(uint64(d))
	s.lastCommitNanos.Store(int64(d))
}

// commit writes batch in one transaction: each record under its rain's bucket at the next
// sequence, the touched rains' totals and the last sequence. Seqs are published only on success.
func (j *Journal) commit(batch []*request) error {
	seq := j.lastSeq.Load()
	need := len(batch) * (8 + RecordSize)
	if cap(j.buf) < need {
		j.buf = make([]byte, 0, need)
	}
	buf := j.buf[:0] // keys and values must stay put until the commit: no reallocation
	j.txMu.Lock()
	defer j.txMu.Unlock()
	clear(j.touched)
	clear(j.buckets)
	err := j.db.Update(func(tx *bolt.Tx) error {
		if h := j.commitHook.Load(); h != nil {
			if err := (*h)(len(batch)); err != nil {
				return err
			}
		}
		for _, r := range batch {
			b, err := j.claimBucket(tx, r.rec.Code)
			if err != nil {
				return err
			}
			seq++
			k := len(buf)
			buf = seqKey(buf, seq)
			v := len(buf)
			buf = EncodeRecord(buf, r.rec)
			if err := b.Put(buf[k:v], buf[v:]); err != nil {
				return err
			}
			r.seq = seq
			t, ok := j.touched[r.rec.Code]
			if !ok {
				t = j.rainTotals(r.rec.Code)
			}
			t.add(seq, r.rec.Amount)
			j.touched[r.rec.Code] = t
		}
		return j.putTotals(tx, seq)
	})
	if err != nil {
		return err
	}
	j.lastSeq.Store(seq)
	j.totalsMu.Lock()
	for code, t := range j.touched {
		j.totals[code] = t
	}
	j.totalsMu.Unlock()
	return nil
}

func (j *Journal) claimBucket(tx *bolt.Tx, code string) (*bolt.Bucket, error) {
	if b := j.buckets[code]; b != nil {
		return b, nil
	}
	b, err := tx.Bucket(bucketClaims).CreateBucketIfNotExists([]byte(code))
	if err != nil {
		return nil, err
	}
	b.FillPercent = 1 // keys only ever grow: pack pages full
	j.buckets[code] = b
	return b, nil
}

// putTotals stores the batch's rains' totals and the last sequence. (Both buckets are small, so
// bbolt keeps them inline in the root page the commit writes anyway: no extra page per fsync.)
func (j *Journal) putTotals(tx *bolt.Tx, seq uint64) error {
	tb := tx.Bucket(bucketTotals)
	for code, t := range j.touched {
		// bbolt keeps value slices until the commit: each Put needs its own.
		if err := tb.Put([]byte(code), t.encode(nil)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(keyLastSeq, seqKey(nil, seq))
}

// rainTotals returns code's committed totals (zero if none).
func (j *Journal) rainTotals(code string) Totals {
	j.totalsMu.Lock()
	defer j.totalsMu.Unlock()
	return j.totals[code]
}

// Totals returns what is journaled of the rain; ok is false if nothing is.
func (j *Journal) Totals(code string) (t Totals, ok bool) {
	j.totalsMu.Lock()
	defer j.totalsMu.Unlock()
	t, ok = j.totals[code]
	return t, ok
}

// AllTotals returns a copy of every rain's journaled totals.
func (j *Journal) AllTotals() map[string]Totals {
	j.totalsMu.Lock()
	defer j.totalsMu.Unlock()
	m := make(map[string]Totals, len(j.totals))
	for k, v := range j.totals {
		m[k] = v
	}
	return m
}

// LastSeq is the last sequence committed.
func (j *Journal) LastSeq() uint64 { return j.lastSeq.Load() }

// Stats returns the writer's counters.
func (j *Journal) Stats() Stats {
	s := &j.stats
	return Stats{
		Commits: s.commits.Load(), Records: s.records.Load(),
		LastBatch: int(s.lastBatch.Load()), MaxBatch: int(s.maxBatch.Load()),
		CommitTime: time.Duration(s.commitNanos.Load()), LastCommit: time.Duration(s.lastCommitNanos.Load()),
		LastSeq: j.lastSeq.Load(), QueueLen: len(j.queue), Failed: j.failed.Load() != nil,
		Incarnation: j.incarnation,
	}
}

// Close commits what is queued, answers its waiters, stops the writer and closes the file.
// Later calls return ErrClosed from writes and nil from Close.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	close(j.quit)
	<-j.done
	return j.db.Close()
}

// update runs fn in a write transaction of its own, unless the journal is closed or failed, then
// after (on success) runs after, both without a claim commit in between.
func (j *Journal) update(fn func(tx *bolt.Tx) error, after func()) error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return ErrClosed
	}
	if err := j.commitError(); err != nil {
		return err
	}
	j.txMu.Lock()
	defer j.txMu.Unlock()
	if err := j.db.Update(fn); err != nil {
		return err
	}
	if after != nil {
		after()
	}
	return nil
}

// view runs fn in a read transaction unless the journal is closed.
func (j *Journal) view(fn func(tx *bolt.Tx) error) error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return ErrClosed
	}
	return j.db.View(fn)
}
