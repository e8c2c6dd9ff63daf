package shard

import (
	"errors"
	"fmt"

	"redrain/rain"
)

// Errors of RestoreWindows: the journal disagrees with itself or with the regenerated slices,
// and the node must not serve from it.
var (
	ErrNoMoveRange    = errors.New("shard: journaled move out of a range not held")              // a move out names a range no window covers
	ErrAmountMismatch = errors.New("shard: journaled amount differs from the regenerated slice") // or a claim lies in no window held
)

// Window is a range [Lo, Hi) of one slice's packets a node serves after a restart: an assigned
// slice whole, or stock moved in. RestoreWindows lowers Hi and fills Claimed.
type Window struct {
	Slice   rain.Slice
	Amounts rain.Amounts // the whole slice's, regenerated from its seed
	Lo, Hi  uint32
	Claimed []uint32 // the journaled indices in [Lo, Hi), for AddWindow
}

// Journaled is one slice's journaled claims in journal order: Index[i] was paid Amount[i].
type Journaled struct {
	Epoch  uint64
	Slice  uint32
	Index  []uint32
	Amount []int64
}

// RestoreWindows rebuilds what a node serves from its journal (no I/O): each move out ends the
// window it was cut from at its Lo (moves out are tails, cut in order), then each journaled
// claim is placed in the window holding it, its amount checked against the regenerated slice.
// Claims of an epoch other than served (when served != 0) are ignored. The windows are then
// ready for Store.AddWindow — an emptied one too, which keeps the rain known.
func RestoreWindows(ws []*Window, out []rain.Move, claims []Journaled, served uint64) error {
	for _, mv := range out {
		w := findWindow(ws, mv.Slice.Epoch, mv.Slice.ID, mv.Lo)
		if w == nil {
			return fmt.Errorf("%w: move %s [%d, %d) of slice %d", ErrNoMoveRange, mv.ID, mv.Lo, mv.Hi, mv.Slice.ID)
		}
		w.Hi = mv.Lo
	}
	for _, j := range claims {
		if served != 0 && j.Epoch != served {
			continue
		}
		for i, idx := range j.Index {
			w := findWindow(ws, j.Epoch, j.Slice, idx)
			if w == nil {
				return fmt.Errorf("%w: slice %d index %d is in no window held", ErrAmountMismatch, j.Slice, idx)
			}
			if w.Amounts.At(int(idx)) != j.Amount[i] {
				return fmt.Errorf("%w: slice %d index %d", ErrAmountMismatch, j.Slice, idx)
			}
			w.Claimed = append(w.Claimed, idx)
		}
	}
	return nil
}

// findWindow returns the window of slice (epoch, id) holding index idx, or nil; an index at or
// past a window's end (cut by a move out) is in none.
func findWindow(ws []*Window, epoch uint64, id uint32, idx uint32) *Window {
	for _, w := range ws {
		if w.Slice.Epoch == epoch && w.Slice.ID == id && idx >= w.Lo && idx < w.Hi {
			return w
		}
	}
	return nil
}
