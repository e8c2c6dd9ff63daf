package sim

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"

	"redrain/ledger"
	"redrain/rain"
)

// walFile is one of the journal's two preallocated log files: buf is what the disk holds
// (durable), the rest is the writer's state in memory (lost at a crash, rebuilt by open).
type walFile struct {
	buf  []byte
	gen  uint64
	off  int
	last uint64
}

// ReadAt makes the file an io.ReaderAt for ledger.ReadWAL.
func (w *walFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(w.buf)) {
		return 0, errors.New("sim: read past the log file")
	}
	n := copy(p, w.buf[off:])
	if n < len(p) {
		return n, errors.New("sim: short read")
	}
	return n, nil
}

func (w *walFile) reset(gen uint64) { w.gen, w.off, w.last = gen, 0, 0 }

// journal models ledger.Journal: bbolt is the applied prefix of pub (durable), the log files
// are durable bytes, and pub, the published records, is what the flusher and the node see.
type journal struct {
	node string
	inc  uint64

	// durable: bbolt and the log files
	rains  map[string]ledger.RainMeta
	slices map[ledger.SliceKey]rain.Slice
	boltN  int // pub[:boltN] is in bbolt
	wal    [2]*walFile

	// in memory, rebuilt by open
	pub      []ledger.LoggedRecord // every record published, seq i+1 at index i
	mem      *ledger.MemJournal    // pub, rains and slices: the flusher's Source and Recover
	walGen   uint64
	active   int
	failed   bool
	failedAt uint64
}

func newJournal(node string, inc uint64, walSize int) *journal {
	j := &journal{node: node, inc: inc, rains: map[string]ledger.RainMeta{}, slices: map[ledger.SliceKey]rain.Slice{}}
	for i := range j.wal {
		j.wal[i] = &walFile{buf: make([]byte, walSize)}
	}
	return j
}

func (j *journal) lastSeq() uint64 { return uint64(len(j.pub)) }

// open is the journal's Open (and Reopen): the in-memory state is dropped, the log files are
// read with the journal's reader, every record past bbolt's last sequence is replayed into
// bbolt (a sequence gap refuses to open), both files start over with a new generation (as
// replayWAL does), and the published view is rebuilt from bbolt.
func (j *journal) open() error {
	j.pub = j.pub[:j.boltN]
	last := uint64(j.boltN)
	var recs []ledger.LoggedRecord
	j.walGen = 0
	for _, w := range j.wal {
		got, gen, _, err := ledger.ReadWAL(w, int64(len(w.buf)))
		if err != nil {
			return err
		}
		j.walGen = max(j.walGen, gen)
		for _, r := range got {
			if r.Seq > last {
				recs = append(recs, r)
			}
		}
	}
	slices.SortFunc(recs, func(a, b ledger.LoggedRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	for i, r := range recs {
		if r.Seq != last+1+uint64(i) {
			return fmt.Errorf("wal holds seq %d after %d: a logged claim is missing; refusing to start", r.Seq, last+uint64(i))
		}
	}
	j.pub = append(j.pub, recs...)
	j.boltN = len(j.pub)
	j.walGen++
	j.wal[0].reset(j.walGen)
	j.wal[1].reset(0)
	j.active = 0
	j.failed, j.failedAt = false, 0
	return j.rebuildMem()
}

// rebuildMem builds the MemJournal view of what is held.
func (j *journal) rebuildMem() error {
	m := ledger.NewMemJournal(j.node, j.inc)
	for _, code := range slices.Sorted(maps.Keys(j.rains)) {
		if err := m.PutRain(j.rains[code]); err != nil {
			return err
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(j.slices), cmpSliceKey) {
		if err := m.PutSlice(j.slices[k]); err != nil {
			return err
		}
	}
	for _, r := range j.pub {
		seq, err := m.Append(r.Rec)
		if err != nil {
			return err
		}
		if seq != r.Seq {
			return fmt.Errorf("record of seq %d replayed as %d", r.Seq, seq)
		}
	}
	j.mem = m
	return nil
}

func cmpSliceKey(a, b ledger.SliceKey) int {
	return cmp.Or(cmp.Compare(a.Code, b.Code), cmp.Compare(a.Epoch, b.Epoch), cmp.Compare(a.Slice, b.Slice))
}

// apply moves every published record into bbolt (the applier; also first in every metadata
// transaction).
func (j *journal) apply() { j.boltN = len(j.pub) }

// writable is nil or ErrUnavailable, as Append checks before queueing.
func (j *journal) writable() error {
	if j.failed {
		return fmt.Errorf("%w: an earlier commit failed", ledger.ErrUnavailable)
	}
	return nil
}

func (j *journal) putRain(m ledger.RainMeta) error {
	if err := j.writable(); err != nil {
		return err
	}
	j.apply()
	j.rains[m.Code] = m
	return j.mem.PutRain(m)
}

func (j *journal) putSlice(s rain.Slice) error {
	if err := j.writable(); err != nil {
		return err
	}
	j.apply()
	j.slices[ledger.SliceKey{Code: s.Code, Epoch: s.Epoch, Slice: s.ID}] = s
	return j.mem.PutSlice(s)
}

func (j *journal) dropSlices(code string, epoch uint64) error {
	if err := j.writable(); err != nil {
		return err
	}
	j.apply()
	for k := range j.slices {
		if k.Code == code && k.Epoch == epoch {
			delete(j.slices, k)
		}
	}
	return j.mem.DropSlices(code, epoch)
}

// commitOutcome is what happens to a commit's frame.
type commitOutcome int

const (
	commitOK        commitOutcome = iota // written and fdatasynced
	commitFailKept                       // the fsync failed, the frame reached the disk
	commitFailLost                       // the write or fsync failed, the frame did not reach the disk
	commitFailTorn                       // the write failed half way: a torn frame
	commitCrashLost                      // crash before the fsync: the frame never reached the disk
	commitCrashTorn                      // crash before the fsync: part of the frame reached the disk
	commitCrashKept                      // crash before the fsync: the whole frame reached the disk
)

// commit writes recs as one frame as Journal.commit does (rotating first if it does not fit)
// with the given outcome; on commitOK they are published under seqs from the returned one.
// tear picks how many bytes of a torn frame reach the disk (0 < n < len).
func (j *journal) commit(recs []ledger.Record, out commitOutcome, tear func(n int) int) (first uint64, err error) {
	if err := j.writable(); err != nil {
		return 0, err
	}
	size := ledger.WALFrameSize(recs)
	if j.wal[j.active].off+size > len(j.wal[j.active].buf) {
		j.rotate()
		if j.wal[j.active].off+size > len(j.wal[j.active].buf) {
			return 0, fmt.Errorf("sim: a frame of %d bytes does not fit a log file", size)
		}
	}
	w := j.wal[j.active]
	first = j.lastSeq() + 1
	frame := ledger.AppendWALFrame(nil, w.gen, first, recs)
	dst := w.buf[w.off : w.off+len(frame)]
	switch out {
	case commitOK, commitFailKept, commitCrashKept:
		copy(dst, frame)
	case commitFailTorn, commitCrashTorn:
		copy(dst, frame[:tear(len(frame))])
	}
	if out != commitOK {
		if out <= commitFailTorn {
			j.failed, j.failedAt = true, j.lastSeq()
		}
		return 0, fmt.Errorf("%w: simulated %v", ledger.ErrCommit, out)
	}
	w.off += len(frame)
	w.last = first + uint64(len(recs)) - 1
	for i, r := range recs {
		seq, err := j.mem.Append(r)
		if err != nil || seq != first+uint64(i) {
			return 0, fmt.Errorf("sim: publish seq %d: got %d, %v", first+uint64(i), seq, err)
		}
		j.pub = append(j.pub, ledger.LoggedRecord{Seq: seq, Rec: r})
	}
	return first, nil
}

// rotate switches to the other log file, whose records must be in bbolt first.
func (j *journal) rotate() {
	other := j.wal[1-j.active]
	if other.last > uint64(j.boltN) {
		j.apply()
	}
	j.walGen++
	other.reset(j.walGen)
	j.active = 1 - j.active
}

// reopen is Journal.Reopen after a failed commit: the records found after the last sequence
// known good.
func (j *journal) reopen() ([]ledger.Record, error) {
	if !j.failed {
		return nil, nil
	}
	at := j.failedAt
	if err := j.open(); err != nil {
		return nil, err
	}
	var found []ledger.Record
	for _, r := range j.pub[at:] {
		found = append(found, r.Rec)
	}
	return found, nil
}

func (c commitOutcome) String() string {
	return [...]string{"ok", "fsync-failed-kept", "fsync-failed-lost", "write-failed-torn", "crash-lost",
		"crash-torn", "crash-kept"}[c]
}

// source is the flusher's view of the journal: always the current in-memory state.
type source struct{ j *journal }

func (s source) NodeID() string                           { return s.j.node }
func (s source) Incarnation() uint64                      { return s.j.inc }
func (s source) Totals(code string) (ledger.Totals, bool) { return s.j.mem.Totals(code) }
func (s source) AllTotals() map[string]ledger.Totals      { return s.j.mem.AllTotals() }
func (s source) Scan(code string, after uint64, max int, fn func(uint64, ledger.Record) bool) error {
	return s.j.mem.Scan(code, after, max, fn)
}
