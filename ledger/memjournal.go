package ledger

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sync"

	"redrain/rain"
)

// MemJournal is an in-memory journal for unit tests of its callers: the calls of *Journal a
// node and a flusher make, with the same rules (records validated and numbered from 1 in one
// sequence, a rain's totals kept, rains and slices stored, Recover replaying what is held, a
// failed commit refusing writes until Reopen), without files or fsync. FailNext injects a failed
// commit. Close forgets nothing: a test may build a second node on the same MemJournal, as a
// restart (Open reopens it). Its methods are safe for concurrent use.
type MemJournal struct {
	node        string
	incarnation uint64

	mu       sync.Mutex
	closed   bool
	lastSeq  uint64
	rains    map[string]RainMeta
	slices   map[SliceKey]rain.Slice
	records  map[string][]memRecord // per rain, ascending seq
	totals   map[string]Totals
	failNext *memFailure // the next Append's commit fails
	failed   error       // a commit failed: writes refused until Reopen
	failedAt uint64      // the last sequence known good before the failure
	commits  uint64
}

type memRecord struct {
	seq uint64
	rec Record
}

// memFailure is a failure FailNext injects.
type memFailure struct {
	err     error
	reached bool // the record is kept though its commit reports failure (a failed fsync that wrote)
}

// NewMemJournal returns an empty journal of node with the given incarnation.
func NewMemJournal(node string, incarnation uint64) *MemJournal {
	return &MemJournal{node: node, incarnation: incarnation, rains: map[string]RainMeta{},
		slices: map[SliceKey]rain.Slice{}, records: map[string][]memRecord{}, totals: map[string]Totals{}}
}

// NodeID is the node the journal belongs to.
func (j *MemJournal) NodeID() string { return j.node }

// Incarnation is the journal's incarnation.
func (j *MemJournal) Incarnation() uint64 { return j.incarnation }

// FailNext makes the next Append's commit fail with ErrCommit wrapping err; with reached, its
// record is kept anyway, as a failed fsync may leave it in the file (Reopen then returns it).
// From then on writes fail with ErrUnavailable until Reopen.
func (j *MemJournal) FailNext(err error, reached bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.failNext = &memFailure{err: err, reached: reached}
}

// writable is nil, ErrClosed or ErrUnavailable. Called under j.mu.
func (j *MemJournal) writable() error {
	switch {
	case j.closed:
		return ErrClosed
	case j.failed != nil:
		return fmt.Errorf("%w: %w", ErrUnavailable, j.failed)
	}
	return nil
}

// Append journals r and returns its sequence; see Journal.Append.
func (j *MemJournal) Append(r Record) (seq uint64, err error) {
	if err := r.Validate(); err != nil {
		return 0, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.writable(); err != nil {
		return 0, err
	}
	if f := j.failNext; f != nil {
		j.failNext, j.failed, j.failedAt = nil, f.err, j.lastSeq
		if f.reached {
			j.keep(r)
		}
		return 0, fmt.Errorf("%w: %w", ErrCommit, f.err)
	}
	j.commits++
	return j.keep(r), nil
}

// keep stores r under the next sequence. Called under j.mu.
func (j *MemJournal) keep(r Record) uint64 {
	j.lastSeq++
	j.records[r.Code] = append(j.records[r.Code], memRecord{seq: j.lastSeq, rec: r})
	t := j.totals[r.Code]
	t.add(j.lastSeq, r.Amount)
	j.totals[r.Code] = t
	return j.lastSeq
}

// Failed reports whether a commit failed and the journal awaits Reopen.
func (j *MemJournal) Failed() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.failed != nil
}

// Reopen accepts writes again after a failed commit and returns the records kept after the
// last sequence known good; without a failure it does nothing. See Journal.Reopen.
func (j *MemJournal) Reopen() ([]Record, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil, ErrClosed
	}
	if j.failed == nil {
		return nil, nil
	}
	var found []Record
	for _, code := range slices.Sorted(maps.Keys(j.records)) {
		for _, mr := range j.records[code] {
			if mr.seq > j.failedAt {
				found = append(found, mr.rec)
			}
		}
	}
	j.failed = nil
	return found, nil
}

// Totals returns the rain's totals; ok is false if it has no claims.
func (j *MemJournal) Totals(code string) (t Totals, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	t, ok = j.totals[code]
	return t, ok
}

// AllTotals copies every rain's totals.
func (j *MemJournal) AllTotals() map[string]Totals {
	j.mu.Lock()
	defer j.mu.Unlock()
	return maps.Clone(j.totals)
}

// Scan calls fn with the rain's records of sequence > afterSeq; see Journal.Scan. fn runs
// without the journal's lock.
func (j *MemJournal) Scan(code string, afterSeq uint64, max int, fn func(seq uint64, r Record) bool) error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	rs := j.records[code] // appends go after: the first len(rs) never change
	j.mu.Unlock()
	if afterSeq == ^uint64(0) {
		return nil
	}
	i, _ := slices.BinarySearchFunc(rs, afterSeq+1, func(r memRecord, seq uint64) int { return cmp.Compare(r.seq, seq) })
	for n := 0; i < len(rs) && (max <= 0 || n < max); i, n = i+1, n+1 {
		if !fn(rs[i].seq, rs[i].rec) {
			return nil
		}
	}
	return nil
}

// PutRain stores the rain's metadata.
func (j *MemJournal) PutRain(m RainMeta) error {
	if err := checkCode(m.Code); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.writable(); err != nil {
		return err
	}
	j.rains[m.Code] = m
	return nil
}

// Rain returns the rain's stored metadata.
func (j *MemJournal) Rain(code string) (m RainMeta, ok bool, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return m, false, ErrClosed
	}
	m, ok = j.rains[code]
	return m, ok, nil
}

// PutSlice stores a slice.
func (j *MemJournal) PutSlice(s rain.Slice) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	if err := checkCode(s.Code); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.writable(); err != nil {
		return err
	}
	j.slices[SliceKey{Code: s.Code, Epoch: s.Epoch, Slice: s.ID}] = s
	return nil
}

// DropSlices deletes the rain's slices of epoch.
func (j *MemJournal) DropSlices(code string, epoch uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.writable(); err != nil {
		return err
	}
	for k := range j.slices {
		if k.Code == code && k.Epoch == epoch {
			delete(j.slices, k)
		}
	}
	return nil
}

// DropRain replaces a settled rain's records, slices and totals with its tombstone metadata.
func (j *MemJournal) DropRain(tomb RainMeta) error {
	if !tomb.Settled {
		return fmt.Errorf("%w: %q", ErrNotSettled, tomb.Code)
	}
	if err := checkCode(tomb.Code); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.writable(); err != nil {
		return err
	}
	delete(j.records, tomb.Code)
	delete(j.totals, tomb.Code)
	for k := range j.slices {
		if k.Code == tomb.Code {
			delete(j.slices, k)
		}
	}
	j.rains[tomb.Code] = tomb
	return nil
}

// Recover replays what the journal holds; see Journal.Recover.
func (j *MemJournal) Recover() (*Recovery, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil, ErrClosed
	}
	rec := &Recovery{Incarnation: j.incarnation, Claimed: map[SliceKey][]uint32{}, Amounts: map[SliceKey][]int64{},
		Users: map[string]map[uint64]int{}, Totals: map[string]Totals{}, LastSeq: j.lastSeq}
	for _, code := range slices.Sorted(maps.Keys(j.rains)) {
		rec.Rains = append(rec.Rains, j.rains[code])
	}
	keys := slices.SortedFunc(maps.Keys(j.slices), func(a, b SliceKey) int {
		return cmp.Or(cmp.Compare(a.Code, b.Code), cmp.Compare(a.Epoch, b.Epoch), cmp.Compare(a.Slice, b.Slice))
	})
	for _, k := range keys {
		rec.Slices = append(rec.Slices, j.slices[k])
	}
	for code, rs := range j.records {
		users, tot := map[uint64]int{}, Totals{}
		for _, mr := range rs {
			k := SliceKey{Code: code, Epoch: mr.rec.Epoch, Slice: mr.rec.Slice}
			rec.Claimed[k] = append(rec.Claimed[k], mr.rec.Index)
			rec.Amounts[k] = append(rec.Amounts[k], mr.rec.Amount)
			users[mr.rec.User]++
			tot.add(mr.seq, mr.rec.Amount)
		}
		rec.Users[code], rec.Totals[code] = users, tot
	}
	return rec, nil
}

// Stats counts commits and records; the timings are zero.
func (j *MemJournal) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	return Stats{Commits: j.commits, Records: j.commits, LastBatch: min(int(j.commits), 1), MaxBatch: min(int(j.commits), 1),
		LastSeq: j.lastSeq, Failed: j.failed != nil, Incarnation: j.incarnation}
}

// Close refuses further calls until Open; what is held is kept. Safe to call twice.
func (j *MemJournal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
	return nil
}

// Open accepts calls again after Close, with everything held before: a restart.
func (j *MemJournal) Open() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = false
}
