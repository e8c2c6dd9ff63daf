package ledger

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"redrain/rain"
)

// RainMeta is what a node keeps of a rain besides its slices and claims.
type RainMeta struct {
	Code               string   `json:"code"`
	MaxPerUser         int      `json:"max_per_user"`
	MinClaimIntervalMS int      `json:"min_claim_interval_ms"`
	Epoch              uint64   `json:"epoch"`      // the epoch being served; 0 = not started
	StartsAt           int64    `json:"starts_at"`  // unix ns
	EndsAt             int64    `json:"ends_at"`    // unix ns
	StoppedAt          int64    `json:"stopped_at"` // unix ns; 0 = not stopped
	Settled            bool     `json:"settled"`
	RoomID             int64    `json:"room_id,omitempty"`      // the live room the rain belongs to
	Holders            []string `json:"holders,omitempty"`      // every slice holder of the prepare, sorted (wire.RainRules.Holders)
	MinEpoch           uint64   `json:"min_epoch,omitempty"`    // slices of epochs <= this were discarded: refused
	CompactedAt        int64    `json:"compacted_at,omitempty"` // unix ns: records dropped (retention); a tombstone
	// LeftoverRecorded: the node recorded its leftover of the rain in Redis when it stopped. Set
	// before the record is written; a restarted node clears the record before it serves the rain
	// again, then unsets this.
	LeftoverRecorded bool `json:"leftover_recorded,omitempty"`
	// MovesOut are the ranges of stock this node gave away, MovesIn those it received (see
	// rain.Move), in journal order; MoveSeq numbers the moves out (their ids).
	MovesOut []rain.Move `json:"moves_out,omitempty"`
	MovesIn  []rain.Move `json:"moves_in,omitempty"`
	MoveSeq  uint64      `json:"move_seq,omitempty"`
	// Tomb is what a compacted rain leaves of the node's claims (CompactedAt != 0).
	Tomb *Tombstone `json:"tombstone,omitempty"`
}

// PutRain stores (replaces) the rain's metadata durably; acknowledge it only after this returns.
func (j *Journal) PutRain(m RainMeta) error {
	if err := checkCode(m.Code); err != nil {
		return err
	}
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return j.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRains).Put([]byte(m.Code), v)
	}, nil)
}

// Rain returns the stored metadata of a rain.
func (j *Journal) Rain(code string) (m RainMeta, ok bool, err error) {
	err = j.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRains).Get([]byte(code))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &m)
	})
	return m, ok, err
}

// PutSlice stores a slice assignment durably (replacing one with the same code, epoch and id);
// acknowledge it only after this returns.
func (j *Journal) PutSlice(s rain.Slice) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	if err := checkCode(s.Code); err != nil {
		return err
	}
	v, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return j.update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketSlices).CreateBucketIfNotExists([]byte(s.Code))
		if err != nil {
			return err
		}
		return b.Put(sliceKey(s.Epoch, s.ID), v)
	}, nil)
}

// DropSlices deletes the rain's slices of one epoch (an abandoned prepare). Claims are kept.
func (j *Journal) DropSlices(code string, epoch uint64) error {
	return j.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSlices).Bucket([]byte(code))
		if b == nil {
			return nil
		}
		prefix := binary.BigEndian.AppendUint64(nil, epoch)
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && len(k) == 12 && string(k[:8]) == string(prefix); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	}, nil)
}

// DropRain compacts a settled rain (retention; see the package comment): in one transaction it
// stores tomb as the rain's metadata and deletes its claim records, slices and totals. Call it
// only once the flusher has flushed the rain's last claim. It fails with ErrNotSettled unless
// tomb says Settled. Sequences are not reused afterwards.
func (j *Journal) DropRain(tomb RainMeta) error {
	if !tomb.Settled {
		return fmt.Errorf("%w: %q", ErrNotSettled, tomb.Code)
	}
	if err := checkCode(tomb.Code); err != nil {
		return err
	}
	v, err := json.Marshal(tomb)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	code := []byte(tomb.Code)
	return j.update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketClaims, bucketSlices} {
			err := tx.Bucket(name).DeleteBucket(code)
			if err != nil && !errors.Is(err, errBucketNotFound) {
				return err
			}
		}
		if err := tx.Bucket(bucketTotals).Delete(code); err != nil {
			return err
		}
		return tx.Bucket(bucketRains).Put(code, v)
	}, func() {
		j.totalsMu.Lock()
		delete(j.totals, tomb.Code)
		j.totalsMu.Unlock()
	})
}

func sliceKey(epoch uint64, id uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(make([]byte, 0, 12), epoch), id)
}
