package ledger

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"redrain/rain"
)

// SliceKey names a slice: a rain, the prepare epoch, the slice id.
type SliceKey struct {
	Code  string
	Epoch uint64
	Slice uint32
}

// Recovery is everything a restarting node needs from its journal.
type Recovery struct {
	Incarnation uint64
	Rains       []RainMeta   // every stored rain, by code
	Slices      []rain.Slice // every stored slice, by code, epoch, id
	// Claimed lists each slice's journaled packet indices in sequence order; Amounts[k][i] is the
	// amount journaled with Claimed[k][i], to check against the regenerated slice. A duplicate
	// index (a packet handed out twice) is left for the caller to detect.
	Claimed map[SliceKey][]uint32
	Amounts map[SliceKey][]int64
	Users   map[string]map[uint64]int // per rain: user -> claims journaled
	Totals  map[string]Totals         // per rain, replayed from the records
	LastSeq uint64                    // the last sequence ever assigned (also of dropped rains)
	// The flush cursor is not here: it is each rain's Redis marker, which the Flusher reads
	// (a local copy could only be behind or ahead of what Redis really holds).
}

// Recover replays the journal in one read transaction. It is meant for start-up, before claims
// are served; it also corrects the in-memory totals from the replay.
func (j *Journal) Recover() (*Recovery, error) {
	if j.commitError() == nil {
		if err := j.applyLocked(); err != nil { // logged claims into bbolt first
			return nil, err
		}
	}
	rec := &Recovery{Incarnation: j.incarnation, Claimed: map[SliceKey][]uint32{},
		Amounts: map[SliceKey][]int64{}, Users: map[string]map[uint64]int{}, Totals: map[string]Totals{}}
	err := j.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyLastSeq); len(v) == 8 {
			rec.LastSeq = binary.BigEndian.Uint64(v)
		}
		if err := recoverRains(tx, rec); err != nil {
			return err
		}
		if err := recoverSlices(tx, rec); err != nil {
			return err
		}
		hints := j.AllTotals()
		return tx.Bucket(bucketClaims).ForEachBucket(func(code []byte) error {
			c := string(code)
			return recoverClaims(tx.Bucket(bucketClaims).Bucket(code), c, int(hints[c].Count), rec)
		})
	})
	if err != nil {
		return nil, err
	}
	for _, t := range rec.Totals {
		rec.LastSeq = max(rec.LastSeq, t.LastSeq) // equal unless the meta entry is damaged
	}
	j.checkTotals(rec.Totals)
	return rec, nil
}

func recoverRains(tx *bolt.Tx, rec *Recovery) error {
	return tx.Bucket(bucketRains).ForEach(func(k, v []byte) error {
		var m RainMeta
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("ledger: rain %q: %w", k, err)
		}
		rec.Rains = append(rec.Rains, m)
		return nil
	})
}

func recoverSlices(tx *bolt.Tx, rec *Recovery) error {
	slices := tx.Bucket(bucketSlices)
	return slices.ForEachBucket(func(code []byte) error {
		return slices.Bucket(code).ForEach(func(k, v []byte) error {
			var s rain.Slice
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("ledger: slice %q/%x: %w", code, k, err)
			}
			rec.Slices = append(rec.Slices, s)
			return nil
		})
	})
}

// recoverClaims replays one rain's records. Per slice, indices and amounts are appended to lists
// sized from the rain's count and its stored slices, found by a string-free key.
func recoverClaims(b *bolt.Bucket, code string, sizeHint int, rec *Recovery) error {
	type local struct {
		epoch uint64
		slice uint32
	}
	type acc struct {
		idx []uint32
		amt []int64
	}
	perSlice := sizeHint
	if n := slicesOf(rec.Slices, code); n > 0 {
		perSlice = sizeHint/n + sizeHint/(8*n) + 16 // even split plus slack
	}
	perSlice = min(perSlice, 1<<22)
	accs := map[local]*acc{}
	users := make(map[uint64]int, min(sizeHint, 1<<24))
	var tot Totals
	var cur *acc
	var curKey local
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		r, err := DecodeRecord(v)
		if err != nil || len(k) != 8 {
			return fmt.Errorf("ledger: rain %q record %x: %w", code, k, err)
		}
		if key := (local{r.Epoch, r.Slice}); cur == nil || key != curKey {
			if cur = accs[key]; cur == nil {
				cur = &acc{idx: make([]uint32, 0, perSlice), amt: make([]int64, 0, perSlice)}
				accs[key] = cur
			}
			curKey = key
		}
		cur.idx = append(cur.idx, r.Index)
		cur.amt = append(cur.amt, r.Amount)
		users[r.User]++
		tot.add(binary.BigEndian.Uint64(k), r.Amount)
	}
	for key, a := range accs {
		sk := SliceKey{Code: code, Epoch: key.epoch, Slice: key.slice}
		rec.Claimed[sk], rec.Amounts[sk] = a.idx, a.amt
	}
	rec.Users[code] = users
	rec.Totals[code] = tot
	return nil
}

func slicesOf(slices []rain.Slice, code string) (n int) {
	for _, s := range slices {
		if s.Code == code {
			n++
		}
	}
	return n
}

// checkTotals compares the replayed totals with the ones kept in commits; the replay wins.
func (j *Journal) checkTotals(replayed map[string]Totals) {
	j.totalsMu.Lock()
	defer j.totalsMu.Unlock()
	for code, t := range replayed {
		if kept := j.totals[code]; kept != t && t.Count > 0 {
			j.log.Warn("journal totals differ from the replay; using the replay", "rain", code, "kept", kept, "replayed", t)
			j.totals[code] = t
		}
	}
}

// Scan calls fn with the rain's records of sequence > afterSeq, in order, until fn returns false,
// max records were passed (max <= 0: no limit) or the records end. The record's Code is code.
// Records not yet moved into bbolt are read from memory, so a flusher that keeps up never reads
// the file. fn runs under a read lock (and a bbolt read transaction when it reads the file): keep
// it short and do not call the Journal's writing methods from it.
func (j *Journal) Scan(code string, afterSeq uint64, max int, fn func(seq uint64, r Record) bool) error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return ErrClosed
	}
	j.applyMu.RLock()
	defer j.applyMu.RUnlock()
	if afterSeq == ^uint64(0) {
		return nil
	}
	n, last := 0, afterSeq
	more := true
	if afterSeq < j.applied.Load() {
		err := j.db.View(func(tx *bolt.Tx) error {
			var err error
			n, last, more, err = scanBucket(tx.Bucket(bucketClaims).Bucket([]byte(code)), code, afterSeq, max, fn)
			return err
		})
		if err != nil || !more || (max > 0 && n >= max) {
			return err
		}
	}
	j.pendMu.Lock()
	rs := j.pending[code] // the first len(rs) entries never change: appends go after, applies reslice
	j.pendMu.Unlock()
	i, _ := slices.BinarySearchFunc(rs, last+1, func(r walRecord, seq uint64) int { return cmp.Compare(r.seq, seq) })
	for ; i < len(rs) && (max <= 0 || n < max); i++ {
		n++
		if !fn(rs[i].seq, rs[i].rec) {
			return nil
		}
	}
	return nil
}

// scanBucket is Scan over the records in bbolt; more is false when fn stopped it.
func scanBucket(b *bolt.Bucket, code string, afterSeq uint64, max int, fn func(seq uint64, r Record) bool) (n int, last uint64, more bool, err error) {
	last = afterSeq
	if b == nil {
		return 0, last, true, nil
	}
	c := b.Cursor()
	var start [8]byte
	binary.BigEndian.PutUint64(start[:], afterSeq+1)
	for k, v := c.Seek(start[:]); k != nil && (max <= 0 || n < max); k, v = c.Next() {
		r, err := DecodeRecord(v)
		if err != nil || len(k) != 8 {
			return n, last, false, fmt.Errorf("ledger: rain %q record %x: %w", code, k, err)
		}
		r.Code = code
		n++
		last = binary.BigEndian.Uint64(k)
		if !fn(last, r) {
			return n, last, false, nil
		}
	}
	return n, last, true, nil
}

// firstAfter returns the first record of the rain after afterSeq, if any.
func firstAfter(j Source, code string, afterSeq uint64) (r Record, ok bool, err error) {
	err = j.Scan(code, afterSeq, 1, func(_ uint64, rr Record) bool {
		r, ok = rr, true
		return false
	})
	return r, ok, err
}
