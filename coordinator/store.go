package coordinator

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"redrain/rain"
)

// record is one rain as the store keeps it (JSON in bucket "rains", keyed by code).
// Times are unix nanoseconds, 0 when not (yet) set.
type record struct {
	Code       string       `json:"code"`
	Config     rain.Config  `json:"config"`
	Status     rain.Status  `json:"status"`
	Epoch      uint64       `json:"epoch"`             // the latest prepare's epoch, 0 before any
	Preparing  bool         `json:"preparing"`         // a prepare of Epoch is in flight (marker)
	Pending    []rain.Slice `json:"pending,omitempty"` // what that prepare is sending
	Slices     []rain.Slice `json:"slices,omitempty"`  // acknowledged slices of Epoch (prepared on)
	CreatedAt  int64        `json:"created_at"`
	PreparedAt int64        `json:"prepared_at,omitempty"`
	StartedAt  int64        `json:"started_at,omitempty"`
	EndsAt     int64        `json:"ends_at,omitempty"`
	StoppedAt  int64        `json:"stopped_at,omitempty"` // finished or cancelled, whatever the cause
	SettledAt  int64        `json:"settled_at,omitempty"`
	News       uint64       `json:"news,omitempty"`   // version of the last gossip news published
	Listed     bool         `json:"listed,omitempty"` // ZADDed to redrain:rains
}

// started reports whether the rain ever went on sale.
func (r *record) started() bool { return r.StartedAt != 0 }

// holders are the distinct nodes holding the rain's acknowledged slices, in slice order.
func (r *record) holders() []string { return sliceNodes(r.Slices) }

func sliceNodes(ss []rain.Slice) []string {
	var out []string
	seen := make(map[string]bool, len(ss))
	for _, s := range ss {
		if !seen[s.Node] {
			seen[s.Node] = true
			out = append(out, s.Node)
		}
	}
	return out
}

// Buckets of the store. The indexes hold keys only; their values are empty.
var (
	bucketRains     = []byte("rains")      // code -> record JSON
	bucketByCreated = []byte("by_created") // created(8) code -> nil
	bucketByAnchor  = []byte("by_anchor")  // anchor(8) created(8) code -> nil
	bucketByStatus  = []byte("by_status")  // status 0x00 created(8) code -> nil
	bucketPreparing = []byte("preparing")  // code -> nil, while the preparing marker is set
)

// Errors of the store.
var (
	// ErrUnknownRain: no rain has this code (answer 404 unknown_rain).
	ErrUnknownRain = errors.New("coordinator: unknown rain")
	errCodeTaken   = errors.New("coordinator: code already taken")
)

// store keeps rain records in a bbolt file. Every method is one transaction.
type store struct{ db *bolt.DB }

// openTimeout bounds waiting for another process's lock on the file (then New fails).
const openTimeout = 2 * time.Second

func openStore(path string, timeout time.Duration) (*store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("coordinator: open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRains, bucketByCreated, bucketByAnchor, bucketByStatus, bucketPreparing} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("coordinator: init store: %w", err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

// create stores a new record; errCodeTaken if its code exists.
func (s *store) create(r *record) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRains).Get([]byte(r.Code)) != nil {
			return errCodeTaken
		}
		if err := put(tx, r); err != nil {
			return err
		}
		created := u64(uint64(r.CreatedAt))
		if err := tx.Bucket(bucketByCreated).Put(cat(created, []byte(r.Code)), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketByAnchor).Put(cat(u64(uint64(r.Config.AnchorID)), created, []byte(r.Code)), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketByStatus).Put(statusKey(r), nil)
	})
}

// get loads one record; ErrUnknownRain if none.
func (s *store) get(code string) (*record, error) {
	var r *record
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		r, err = load(tx, code)
		return err
	})
	return r, err
}

// update loads code's record, lets fn change it and stores it, in one transaction, keeping
// the status and preparing indexes in step. An error from fn aborts and is returned as is.
func (s *store) update(code string, fn func(r *record) error) (*record, error) {
	var out *record
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := load(tx, code)
		if err != nil {
			return err
		}
		oldStatus, oldPreparing := statusKey(r), r.Preparing
		if err := fn(r); err != nil {
			return err
		}
		if err := reindex(tx, r, oldStatus, oldPreparing); err != nil {
			return err
		}
		out = r
		return put(tx, r)
	})
	return out, err
}

func reindex(tx *bolt.Tx, r *record, oldStatus []byte, oldPreparing bool) error {
	if k := statusKey(r); !bytes.Equal(k, oldStatus) {
		st := tx.Bucket(bucketByStatus)
		if err := st.Delete(oldStatus); err != nil {
			return err
		}
		if err := st.Put(k, nil); err != nil {
			return err
		}
	}
	if r.Preparing == oldPreparing {
		return nil
	}
	if r.Preparing {
		return tx.Bucket(bucketPreparing).Put([]byte(r.Code), nil)
	}
	return tx.Bucket(bucketPreparing).Delete([]byte(r.Code))
}

// filter selects records for list. Zero fields select everything.
type filter struct {
	AnchorID int64
	Status   rain.Status
	Limit    int // at most this many, newest first; must be > 0
}

// list returns the records matching f, newest first.
func (s *store) list(f filter) ([]*record, error) {
	var out []*record
	err := s.db.View(func(tx *bolt.Tx) error {
		bucket, prefix := indexFor(tx, f)
		c := bucket.Cursor()
		for k, _ := seekLast(c, prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < f.Limit; k, _ = c.Prev() {
			r, err := load(tx, string(k[len(prefix)+8:]))
			if err != nil {
				return err
			}
			if f.Status != "" && r.Status != f.Status || f.AnchorID != 0 && r.Config.AnchorID != f.AnchorID {
				continue
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// indexFor picks the narrowest index for f: by anchor, else by status, else by creation.
func indexFor(tx *bolt.Tx, f filter) (*bolt.Bucket, []byte) {
	switch {
	case f.AnchorID != 0:
		return tx.Bucket(bucketByAnchor), u64(uint64(f.AnchorID))
	case f.Status != "":
		return tx.Bucket(bucketByStatus), append([]byte(f.Status), 0)
	}
	return tx.Bucket(bucketByCreated), nil
}

// seekLast positions c on the last key with prefix (or the last key when prefix is empty).
func seekLast(c *bolt.Cursor, prefix []byte) ([]byte, []byte) {
	if len(prefix) == 0 {
		return c.Last()
	}
	end := append(bytes.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	k, _ := c.Seek(end)
	if k == nil {
		return c.Last()
	}
	return c.Prev()
}

// codesWithStatus returns the codes of every rain in one of statuses.
func (s *store) codesWithStatus(statuses ...rain.Status) ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketByStatus).Cursor()
		for _, st := range statuses {
			prefix := append([]byte(st), 0)
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				out = append(out, string(k[len(prefix)+8:]))
			}
		}
		return nil
	})
	return out, err
}

// startedStatuses are the statuses of rains that went on sale (they have a started_at).
var startedStatuses = []rain.Status{rain.Raining, rain.Finished, rain.Settled}

// countStarted counts the rains that went on sale, from the status index (keys only).
func (s *store) countStarted() (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketByStatus).Cursor()
		for _, st := range startedStatuses {
			prefix := append([]byte(st), 0)
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				n++
			}
		}
		return nil
	})
	return n, err
}

// listing is a started rain as redrain:rains lists it: code -> start unix seconds.
type listing struct {
	Code      string
	StartUnix int64
}

func listingOf(r *record) listing {
	return listing{Code: r.Code, StartUnix: r.StartedAt / int64(time.Second)}
}

// listings loads the listings of codes (a code no longer stored, or not started, is skipped).
func (s *store) listings(codes []string) ([]listing, error) {
	var out []listing
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, code := range codes {
			r, err := load(tx, code)
			if errors.Is(err, ErrUnknownRain) {
				continue
			}
			if err != nil {
				return err
			}
			if r.started() {
				out = append(out, listingOf(r))
			}
		}
		return nil
	})
	return out, err
}

// settledAfter lists up to limit settled rains in status-index order, after the index key
// after (nil: from the first). It returns the last key read, nil when there was none after.
// Settled is the last status, so a rain's key there never moves: a walk resumed from the last
// key misses no rain that was settled when the walk began.
func (s *store) settledAfter(after []byte, limit int) ([]listing, []byte, error) {
	var out []listing
	var last []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := append([]byte(rain.Settled), 0)
		c := tx.Bucket(bucketByStatus).Cursor()
		k, _ := c.Seek(prefix)
		if after != nil {
			if k, _ = c.Seek(after); bytes.Equal(k, after) {
				k, _ = c.Next()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
			r, err := load(tx, string(k[len(prefix)+8:]))
			if err != nil {
				return err
			}
			out = append(out, listingOf(r))
			last = bytes.Clone(k)
		}
		return nil
	})
	return out, last, err
}

// countByStatus counts rains per status (for metrics).
func (s *store) countByStatus() (map[rain.Status]int, error) {
	out := make(map[rain.Status]int)
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketByStatus).ForEach(func(k, _ []byte) error {
			if i := bytes.IndexByte(k, 0); i > 0 {
				out[rain.Status(k[:i])]++
			}
			return nil
		})
	})
	return out, err
}

// preparing returns the codes carrying the preparing marker.
func (s *store) preparing() ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPreparing).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}

func load(tx *bolt.Tx, code string) (*record, error) {
	v := tx.Bucket(bucketRains).Get([]byte(code))
	if v == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRain, code)
	}
	r := new(record)
	if err := json.Unmarshal(v, r); err != nil {
		return nil, fmt.Errorf("coordinator: decode rain %q: %w", code, err)
	}
	return r, nil
}

func put(tx *bolt.Tx, r *record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("coordinator: encode rain %q: %w", r.Code, err)
	}
	return tx.Bucket(bucketRains).Put([]byte(r.Code), v)
}

func statusKey(r *record) []byte {
	return cat([]byte(r.Status), []byte{0}, u64(uint64(r.CreatedAt)), []byte(r.Code))
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
