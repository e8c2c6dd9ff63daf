package rain

import (
	"errors"
	"fmt"
)

// Algorithm names how a slice's amounts are drawn. The zero value means DoubleAverage.
type Algorithm string

// The amount algorithms of SPEC.md.
const (
	DoubleAverage Algorithm = "double_average"
	LineCut       Algorithm = "line_cut"
	Equal         Algorithm = "equal"
)

// Status is a rain's lifecycle state, as the SPEC.md status strings.
type Status string

// The lifecycle states of SPEC.md.
const (
	Waiting   Status = "waiting"
	Prepared  Status = "prepared"
	Raining   Status = "raining"
	Finished  Status = "finished"
	Settled   Status = "settled"
	Cancelled Status = "cancelled"
)

// Slice is one node's share of a rain: everything the node needs to generate its packets
// locally. Amounts never cross the network; (Amount, Count, Seed, Algorithm) determine them.
type Slice struct {
	Code      string    `json:"code"`      // the rain's code
	ID        uint32    `json:"slice_id"`  // unique within the rain's epoch
	Epoch     uint64    `json:"epoch"`     // the prepare that created it
	Node      string    `json:"node"`      // the node that holds it
	Count     int64     `json:"count"`     // packets in the slice, >= 1
	Amount    int64     `json:"amount"`    // cents in the slice, >= Count
	Seed      uint64    `json:"seed"`      // generator and shuffle seed
	Algorithm Algorithm `json:"algorithm"` // how amounts are drawn
}

// ErrInvalidSlice is wrapped by every error of Slice.Validate (and so of Generate): the slice
// cannot be generated, because of an empty code, a count or amount out of range, or an unknown
// algorithm.
var ErrInvalidSlice = errors.New("invalid slice")

// ErrUnknownAlgorithm is wrapped by ParseAlgorithm's error for a name that is not an Algorithm.
var ErrUnknownAlgorithm = errors.New("unknown algorithm")

// Validate reports whether the slice can be generated; its errors wrap ErrInvalidSlice.
func (s Slice) Validate() error {
	switch {
	case s.Code == "":
		return fmt.Errorf("%w: code is empty", ErrInvalidSlice)
	case s.Count < 1 || s.Count > MaxTotalCount:
		return fmt.Errorf("%w: count %d out of range 1..%d", ErrInvalidSlice, s.Count, MaxTotalCount)
	case s.Amount < s.Count || s.Amount > MaxTotalAmount:
		return fmt.Errorf("%w: amount %d out of range %d..%d", ErrInvalidSlice, s.Amount, s.Count, int64(MaxTotalAmount))
	}
	if _, err := ParseAlgorithm(string(s.Algorithm)); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSlice, err)
	}
	return nil
}

// ParseAlgorithm maps a name to an Algorithm; "" means DoubleAverage. Its error wraps
// ErrUnknownAlgorithm.
func ParseAlgorithm(name string) (Algorithm, error) {
	switch Algorithm(name) {
	case "", DoubleAverage:
		return DoubleAverage, nil
	case LineCut, Equal:
		return Algorithm(name), nil
	}
	return "", fmt.Errorf("%w %q (want double_average, line_cut or equal)", ErrUnknownAlgorithm, name)
}

// Limits of SPEC.md's validation.
const (
	MaxTotalCount        = 100_000_000
	MaxTotalAmount       = 1_000_000_000_000
	MaxMaxPerUser        = 1000
	MaxDurationS         = 86400
	MaxMinClaimInterval  = 60000
	MaxRemarkBytes       = 256
	DefaultMaxPerUser    = 1
	DefaultDurationS     = 60
	DefaultClaimInterval = 0
)

// Amounts holds a slice's packet amounts compactly: 4 bytes per packet when the slice's total
// fits in a uint32 (then every packet does), 8 bytes otherwise. The zero value is empty.
type Amounts struct {
	small []uint32
	big   []int64
}

// NewAmounts returns room for n amounts whose sum is total.
func NewAmounts(n int, total int64) Amounts {
	if total <= 1<<32-1 {
		return Amounts{small: make([]uint32, n)}
	}
	return Amounts{big: make([]int64, n)}
}

// Len is the number of packets.
func (a *Amounts) Len() int {
	if a.big != nil {
		return len(a.big)
	}
	return len(a.small)
}

// At returns packet i's amount.
func (a *Amounts) At(i int) int64 {
	if a.big != nil {
		return a.big[i]
	}
	return int64(a.small[i])
}

// Set stores packet i's amount; v must fit the representation chosen by NewAmounts.
func (a *Amounts) Set(i int, v int64) {
	if a.big != nil {
		a.big[i] = v
		return
	}
	a.small[i] = uint32(v)
}

// Sum adds every amount.
func (a *Amounts) Sum() int64 {
	var s int64
	for i, n := 0, a.Len(); i < n; i++ {
		s += a.At(i)
	}
	return s
}

// BytesPerPacket is the storage cost of one amount.
func (a *Amounts) BytesPerPacket() int {
	if a.big != nil {
		return 8
	}
	return 4
}

// Move is a range of one slice's packets that left one node for another (stock follows demand):
// indices [Lo, Hi) of Slice, none of them claimed, Count packets worth Amount. The donor journals
// it before it sends it and the receiver before it serves any of it; from the donor's journal
// on, the packets are the receiver's. Amounts never travel: the receiver regenerates Slice.
type Move struct {
	ID     string `json:"id"`   // "<donor>-<journal incarnation, 16 hex>-<n>": unique for ever
	From   string `json:"from"` // the donor
	To     string `json:"to"`   // the receiver
	Slice  Slice  `json:"slice"`
	Lo     uint32 `json:"lo"`
	Hi     uint32 `json:"hi"`
	Count  int64  `json:"count"`
	Amount int64  `json:"amount"`
}

// Validate checks a move's shape (not its amounts: the receiver checks those against the
// regenerated slice).
func (m Move) Validate() error {
	switch {
	case m.ID == "" || m.From == "" || m.To == "" || m.From == m.To:
		return fmt.Errorf("%w: move %q from %q to %q", ErrInvalidSlice, m.ID, m.From, m.To)
	case m.Lo >= m.Hi || int64(m.Hi) > m.Slice.Count:
		return fmt.Errorf("%w: move range [%d, %d) of %d packets", ErrInvalidSlice, m.Lo, m.Hi, m.Slice.Count)
	case m.Count != int64(m.Hi-m.Lo) || m.Amount < m.Count:
		return fmt.Errorf("%w: move of %d packets worth %d over [%d, %d)", ErrInvalidSlice, m.Count, m.Amount, m.Lo, m.Hi)
	}
	return m.Slice.Validate()
}
