package ledger

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	// WALSize is the size of each of the two write-ahead log files beside Path. 0 means
	// DefaultWALSize; at least 1 MiB.
	WALSize int64
	// ApplyEvery and ApplyRecords pace the background moves of logged claims into bbolt: every
	// ApplyEvery, or as soon as ApplyRecords are waiting. 0 means 500 ms and 4096 (a move of 4096
	// costs ~2 ms of CPU, and yields to the writer while it builds the transaction).
	ApplyEvery   time.Duration
	ApplyRecords int
	// Logger receives commit failures and recovery warnings. nil means slog.Default().
	Logger *slog.Logger
}

// Limits of Options.
const (
	DefaultMaxBatch     = 4096
	MaxMaxBatch         = 65536
	DefaultOpenTimeout  = time.Second
	DefaultApplyEvery   = 500 * time.Millisecond
	DefaultApplyRecords = 4096
)

// DefaultOptions returns the defaults for the file at path, owned by node.
func DefaultOptions(path, node string) Options {
	return Options{Path: path, NodeID: node, MaxBatch: DefaultMaxBatch, QueueLen: 2 * DefaultMaxBatch,
		OpenTimeout: DefaultOpenTimeout}
}

// defaultAndCheck sets each zero field of o to its default and reports (ErrOptions, naming the
// field) what is still invalid.
func (o *Options) defaultAndCheck() error {
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.QueueLen == 0 {
		o.QueueLen = 2 * o.MaxBatch
	}
	if o.OpenTimeout == 0 {
		o.OpenTimeout = DefaultOpenTimeout
	}
	if o.WALSize == 0 {
		o.WALSize = DefaultWALSize
	}
	if o.ApplyEvery == 0 {
		o.ApplyEvery = DefaultApplyEvery
	}
	if o.ApplyRecords == 0 {
		o.ApplyRecords = DefaultApplyRecords
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.Path == "":
		return fmt.Errorf("%w: Path is empty", ErrOptions)
	case o.NodeID == "":
		return fmt.Errorf("%w: NodeID is empty", ErrOptions)
	case o.MaxBatch < 1 || o.MaxBatch > MaxMaxBatch:
		return fmt.Errorf("%w: MaxBatch %d not in 1..%d", ErrOptions, o.MaxBatch, MaxMaxBatch)
	case o.QueueLen < 1:
		return fmt.Errorf("%w: QueueLen %d < 1", ErrOptions, o.QueueLen)
	case o.OpenTimeout < 0:
		return fmt.Errorf("%w: OpenTimeout %v < 0", ErrOptions, o.OpenTimeout)
	case o.WALSize < 1<<20:
		return fmt.Errorf("%w: WALSize %d < 1 MiB", ErrOptions, o.WALSize)
	case o.WALSize < maxFrame(o.MaxBatch):
		return fmt.Errorf("%w: WALSize %d cannot hold a frame of MaxBatch %d records (%d bytes)", ErrOptions,
			o.WALSize, o.MaxBatch, maxFrame(o.MaxBatch))
	case o.ApplyEvery < 0 || o.ApplyRecords < 1:
		return fmt.Errorf("%w: ApplyEvery %v < 0 or ApplyRecords %d < 1", ErrOptions, o.ApplyEvery, o.ApplyRecords)
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
	failedAt uint64                // lastSeq when the first failure happened; under failMu
	failMu   sync.Mutex
	lastSeq  atomic.Uint64

	// Lock order: walMu, applyMu, txMu, then pendMu or totalsMu.
	walMu    sync.Mutex   // held by the writer around a log commit, and by Reopen
	applyMu  sync.RWMutex // held for writing while logged claims move into bbolt; Scan reads under it
	txMu     sync.Mutex   // held around a bbolt write transaction and the in-memory change that follows it
	totalsMu sync.Mutex
	totals   map[string]Totals // per rain, as committed (to the log)

	wal      [2]*walFile // the write-ahead log; the writer appends to wal[active]
	active   int         // under walMu
	walGen   uint64      // the last generation given to a log file; under walMu
	applied  atomic.Uint64
	pendMu   sync.Mutex
	pending  map[string][]walRecord // in the log, not yet in bbolt: per rain, ascending seq
	pendN    int                    // records in pending
	kick     chan struct{}          // wakes the applier
	applied0 chan struct{}          // closed when the applier has exited

	stats      journalStats
	commitHook atomic.Pointer[func(batch int) error] // tests: fail or delay a commit

	// writer-owned scratch, reused across commits
	frame   []byte
	touched map[string]Totals
}

type journalStats struct {
	commits, records, commitNanos atomic.Uint64
	applies, applyNanos           atomic.Uint64
	lastBatch, maxBatch           atomic.Int64
	lastCommitNanos               atomic.Int64
}

// Stats are counters for metrics.
type Stats struct {
	Commits     uint64        // successful commits (one log write and fdatasync each)
	Applies     uint64        // bbolt transactions that moved logged claims into the store
	ApplyTime   time.Duration // total time spent in them
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

// Open opens (creating if needed) the journal file and its write-ahead log, moves whatever the
// log holds beyond the file into it, and starts the writer. A file another opener holds fails
// with ErrLocked after Options.OpenTimeout.
func Open(opts Options) (*Journal, error) {
	if err := opts.defaultAndCheck(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o700); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	j := &Journal{opts: opts, log: opts.Logger,
		queue: make(chan *request, opts.QueueLen), quit: make(chan struct{}), done: make(chan struct{}),
		kick: make(chan struct{}, 1), applied0: make(chan struct{})}
	if err := j.openFiles(); err != nil {
		return nil, err
	}
	go j.writer()
	go j.applier()
	return j, nil
}

// openFiles opens bbolt and the log, replays the log into bbolt and loads the state the writer
// starts from. On error everything it opened is closed.
func (j *Journal) openFiles() (err error) {
	db, err := openDB(j.opts)
	if err != nil {
		return err
	}
	j.db = db
	defer func() {
		if err != nil {
			j.closeFiles()
		}
	}()
	j.totalsMu.Lock()
	j.totals = map[string]Totals{}
	j.totalsMu.Unlock()
	j.pendMu.Lock()
	j.pending, j.pendN = map[string][]walRecord{}, 0
	j.pendMu.Unlock()
	j.touched = map[string]Totals{}
	if err := j.init(); err != nil {
		return err
	}
	for i := range j.wal {
		if j.wal[i], err = openWALFile(fmt.Sprintf("%s.wal%d", j.opts.Path, i), j.opts.WALSize); err != nil {
			return err
		}
	}
	return j.replayWAL()
}

func (j *Journal) closeFiles() error {
	var errs []error
	for i, w := range j.wal {
		if w != nil {
			errs = append(errs, w.close())
			j.wal[i] = nil
		}
	}
	if j.db != nil {
		errs = append(errs, j.db.Close())
	}
	return errors.Join(errs...)
}

// replayWAL moves the logged claims bbolt does not have into it, in one transaction, and makes
// both log files free for new generations.
func (j *Journal) replayWAL() error {
	var recs []walRecord
	for _, w := range j.wal {
		got, gen, _, err := readWAL(w.f, w.size)
		if err != nil {
			return err
		}
		j.walGen = max(j.walGen, gen)
		for _, r := range got {
			if r.seq > j.lastSeq.Load() {
				recs = append(recs, r)
			}
		}
	}
	slices.SortFunc(recs, func(a, b walRecord) int { return cmp.Compare(a.seq, b.seq) })
	next := j.lastSeq.Load() + 1
	for _, r := range recs {
		if r.seq != next {
			return fmt.Errorf("ledger: wal holds seq %d after %d: a logged claim is missing; refusing to start", r.seq, next-1)
		}
		next++
	}
	if len(recs) > 0 {
		for _, r := range recs {
			j.pending[r.rec.Code] = append(j.pending[r.rec.Code], r)
		}
		j.pendN = len(recs)
		if err := j.apply(nil); err != nil {
			return err
		}
		if err := j.load(); err != nil {
			return err
		}
		j.log.Info("journal: replayed the write-ahead log", "records", len(recs), "last_seq", j.lastSeq.Load())
	}
	j.walGen++
	j.wal[0].reset(j.walGen)
	j.wal[1].reset(0)
	j.active = 0
	return nil
}

func openDB(opts Options) (*bolt.DB, error) {
	db, err := bolt.Open(opts.Path, 0o600, &bolt.Options{
		Timeout: opts.OpenTimeout,
		// Address space, not memory: the file is mapped once up to this size, so the applier's
		// commits do not remap (and re-copy every node) each time the file doubles.
		InitialMmapSize: 1 << 30,
		NoFreelistSync:  true, // the freelist is rebuilt on open; commits write less
		FreelistType:    bolt.FreelistMapType,
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
	err := j.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketRains, bucketSlices, bucketClaims, bucketTotals} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return j.initMeta(tx.Bucket(bucketMeta))
	})
	if err != nil {
		return err
	}
	return j.load()
}

// load reads the last sequence and the per-rain totals stored in bbolt.
func (j *Journal) load() error {
	return j.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyLastSeq); len(v) == 8 {
			j.lastSeq.Store(binary.BigEndian.Uint64(v))
		}
		j.applied.Store(j.lastSeq.Load())
		totals := map[string]Totals{}
		err := tx.Bucket(bucketTotals).ForEach(func(k, v []byte) error {
			t, err := decodeTotals(v)
			totals[string(k)] = t
			return err
		})
		j.totalsMu.Lock()
		j.totals = totals
		j.totalsMu.Unlock()
		return err
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
// ErrBadRecord (r invalid, not written), ErrClosed (after Close, not written), ErrUnavailable (an
// earlier commit failed and the journal awaits Reopen; not written) or ErrCommit (the commit
// holding r failed: r may or may not be in the file, and only Reopen says which).
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
			batch = j.topUpBatch(append(batch[:0], r))
			j.commitAndAnswer(batch)
			runtime.Gosched() // let the waiters just answered queue their next record
		case <-j.quit:
			// No sender can enqueue any more (Close holds the lock first): commit the rest.
			for len(j.queue) > 0 {
				batch = j.topUpBatch(batch[:0])
				j.commitAndAnswer(batch)
			}
			return
		}
	}
}

// topUpBatch adds queued requests to batch without waiting, up to MaxBatch.
func (j *Journal) topUpBatch(batch []*request) []*request {
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
			err = j.fail(cerr, "journal commit failed; refusing writes until reopened", "records", len(batch))
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

// fail makes the journal refuse writes until Reopen, after a commit or an apply failed; it
// returns the error the batch's waiters get.
func (j *Journal) fail(cause error, msg string, args ...any) error {
	err := fmt.Errorf("%w: %w", ErrCommit, cause)
	j.failMu.Lock()
	defer j.failMu.Unlock()
	if j.failed.Load() == nil {
		j.failedAt = j.lastSeq.Load() // published by the store of failed; read by Reopen after loading it
		j.failed.Store(&err)
	}
	j.log.Error(msg, append(args, "err", cause)...)
	return err
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
	if j.failed.Load() == nil {
		return nil, nil
	}
	j.walMu.Lock()
	defer j.walMu.Unlock()
	if err := j.closeFiles(); err != nil {
		j.log.Warn("journal close before reopen", "err", err)
	}
	j.lastSeq.Store(0)
	j.walGen = 0
	if err := j.openFiles(); err != nil {
		return nil, err
	}
	var found []Record
	err := j.db.View(func(tx *bolt.Tx) error {
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

// commit writes batch to the log as one frame (one pwrite, one fdatasync), then publishes it:
// sequences, totals, and the records for the applier and the flusher. Nothing of a batch whose
// write or sync failed is published.
func (j *Journal) commit(batch []*request) error {
	j.walMu.Lock()
	defer j.walMu.Unlock()
	if h := j.commitHook.Load(); h != nil {
		if err := (*h)(len(batch)); err != nil {
			return err
		}
	}
	payload := 0
	for _, r := range batch {
		payload += 1 + len(r.rec.Code) + RecordSize
	}
	if !j.wal[j.active].fits(payload) {
		if err := j.rotate(); err != nil {
			return err
		}
		if !j.wal[j.active].fits(payload) { // more than MaxBatch records (Options.defaultAndCheck bounds the rest)
			return fmt.Errorf("ledger: a frame of %d records (%d bytes) does not fit a log file of %d", len(batch),
				payload, j.opts.WALSize)
		}
	}
	w := j.wal[j.active]
	seq := j.lastSeq.Load()
	frame := frameHeader(j.frame[:0], w.gen, seq+1)
	for _, r := range batch {
		frame = appendWALRecord(frame, r.rec)
	}
	finishFrame(frame, len(batch))
	j.frame = frame
	if err := w.appendFrame(frame, seq+uint64(len(batch))); err != nil {
		return err
	}
	clear(j.touched)
	j.pendMu.Lock()
	for _, r := range batch {
		seq++
		r.seq = seq
		t, ok := j.touched[r.rec.Code]
		if !ok {
			t = j.rainTotals(r.rec.Code)
		}
		t.add(seq, r.rec.Amount)
		j.touched[r.rec.Code] = t
		j.pending[r.rec.Code] = append(j.pending[r.rec.Code], walRecord{seq: seq, rec: r.rec})
	}
	j.pendN += len(batch)
	due := j.pendN >= j.opts.ApplyRecords
	j.pendMu.Unlock()
	j.totalsMu.Lock()
	for code, t := range j.touched {
		j.totals[code] = t
	}
	j.totalsMu.Unlock()
	j.lastSeq.Store(seq)
	if due {
		j.kickApplier()
	}
	return nil
}

// rotate makes the other log file the active one, with a new generation. Its frames must all be
// in bbolt first: if the applier is behind, the writer applies them itself. Under walMu.
func (j *Journal) rotate() error {
	other := j.wal[1-j.active]
	if other.last > j.applied.Load() {
		if err := j.apply(nil); err != nil {
			return err
		}
	}
	j.walGen++
	other.reset(j.walGen)
	j.active = 1 - j.active
	j.kickApplier() // the file just left will be needed next
	return nil
}

func (j *Journal) kickApplier() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// applier moves logged claims into bbolt every ApplyEvery, or when kicked, until Close.
func (j *Journal) applier() {
	defer close(j.applied0)
	t := time.NewTicker(j.opts.ApplyEvery)
	defer t.Stop()
	for {
		select {
		case <-j.quit:
			return
		case <-t.C:
		case <-j.kick:
		}
		if j.commitError() != nil {
			continue
		}
		if err := j.applyLocked(); err != nil {
			j.fail(err, "journal apply failed; refusing writes until reopened")
		}
	}
}

// applyLocked is apply(nil) for callers that hold no journal lock.
func (j *Journal) applyLocked() error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return nil
	}
	return j.apply(nil)
}

// apply moves every logged claim not yet in bbolt into it, in one transaction that also runs fn
// (a metadata change) after them, so no metadata change is ever ordered before a claim logged
// earlier. Callers hold no applyMu or txMu.
func (j *Journal) apply(fn func(tx *bolt.Tx) error) error {
	j.applyMu.Lock()
	defer j.applyMu.Unlock()
	j.txMu.Lock()
	defer j.txMu.Unlock()
	start := time.Now()
	j.pendMu.Lock()
	snap := make(map[string][]walRecord, len(j.pending))
	n := 0
	for code, rs := range j.pending {
		snap[code] = rs
		n += len(rs)
	}
	j.pendMu.Unlock()
	if n == 0 && fn == nil {
		return nil
	}
	var last uint64
	err := j.db.Update(func(tx *bolt.Tx) error {
		var err error
		if last, err = putRecords(tx, snap, n); err != nil {
			return err
		}
		if fn != nil {
			return fn(tx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	j.pendMu.Lock()
	for code, rs := range snap {
		rest := j.pending[code][len(rs):]
		if len(rest) == 0 {
			delete(j.pending, code)
		} else {
			j.pending[code] = rest
		}
	}
	j.pendN -= n
	j.pendMu.Unlock()
	if last > 0 {
		j.applied.Store(last)
	}
	j.stats.applies.Add(1)
	j.stats.applyNanos.Add(uint64(time.Since(start)))
	return nil
}

// putRecords stores the records under their rains' buckets, adds them to the stored totals and
// moves the stored last sequence; it returns the highest sequence stored (0 if none).
func putRecords(tx *bolt.Tx, recs map[string][]walRecord, n int) (last uint64, err error) {
	if n == 0 {
		return 0, nil
	}
	buf := make([]byte, 0, n*(8+RecordSize)) // keys and values must stay put until the commit
	tb := tx.Bucket(bucketTotals)
	for code, rs := range recs {
		b, err := tx.Bucket(bucketClaims).CreateBucketIfNotExists([]byte(code))
		if err != nil {
			return 0, err
		}
		b.FillPercent = 1 // keys only ever grow: pack pages full
		var t Totals
		if v := tb.Get([]byte(code)); v != nil {
			if t, err = decodeTotals(v); err != nil {
				return 0, err
			}
		}
		for i, r := range rs {
			if i%512 == 511 {
				// Building a large transaction is pure CPU; on a node pinned to one core it
				// would hold the only P for milliseconds while claims wait to be logged.
				runtime.Gosched()
			}
			k := len(buf)
			buf = seqKey(buf, r.seq)
			v := len(buf)
			buf = EncodeRecord(buf, r.rec)
			if err := b.Put(buf[k:v], buf[v:]); err != nil {
				return 0, err
			}
			t.add(r.seq, r.rec.Amount)
			last = max(last, r.seq)
		}
		// bbolt keeps value slices until the commit: each Put needs its own.
		if err := tb.Put([]byte(code), t.encode(nil)); err != nil {
			return 0, err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keyLastSeq); len(v) == 8 && binary.BigEndian.Uint64(v) > last {
		return last, nil
	}
	return last, meta.Put(keyLastSeq, seqKey(nil, last))
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
		Applies: s.applies.Load(), ApplyTime: time.Duration(s.applyNanos.Load()),
		LastSeq: j.lastSeq.Load(), QueueLen: len(j.queue), Failed: j.failed.Load() != nil,
		Incarnation: j.incarnation,
	}
}

// Close commits what is queued, answers its waiters, stops the writer and the applier, moves
// every logged claim into bbolt and closes the files. Later calls return ErrClosed from writes
// and nil from Close.
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
	<-j.applied0
	var err error
	if j.commitError() == nil {
		err = j.apply(nil)
	}
	return errors.Join(err, j.closeFiles())
}

// update runs fn in a write transaction, after moving every logged claim into bbolt in the same
// transaction (so a metadata change is never ordered before a claim logged earlier), unless the
// journal is closed or failed; then, on success, it runs after.
func (j *Journal) update(fn func(tx *bolt.Tx) error, after func()) error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return ErrClosed
	}
	if err := j.commitError(); err != nil {
		return err
	}
	if err := j.apply(fn); err != nil {
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
