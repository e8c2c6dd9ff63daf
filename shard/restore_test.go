package shard

import (
	"errors"
	"slices"
	"testing"

	"redrain/rain"
)

// TestRestoreWindows rebuilds a donor's and a receiver's windows from what they journaled: moves
// out end their windows, claims land in theirs, and a journal that disagrees is refused.
func TestRestoreWindows(t *testing.T) {
	sl, a := mkSlice("r", 1, 3, 100)
	out := []rain.Move{{ID: "m1", Slice: sl, Lo: 80, Hi: 100}, {ID: "m2", Slice: sl, Lo: 60, Hi: 80}}
	back := &Window{Slice: sl, Amounts: a, Lo: 70, Hi: 80} // part of m2 came back later
	claims := func(idx ...uint32) []Journaled {
		j := Journaled{Epoch: 1, Slice: 3, Index: idx}
		for _, i := range idx {
			j.Amount = append(j.Amount, a.At(int(i)))
		}
		return []Journaled{j, {Epoch: 9, Slice: 3, Index: []uint32{99}, Amount: []int64{1}}} // another epoch: ignored
	}
	whole := &Window{Slice: sl, Amounts: a, Hi: 100}
	if err := RestoreWindows([]*Window{whole, back}, out, claims(5, 59, 71), 1); err != nil {
		t.Fatal(err)
	}
	if whole.Hi != 60 || !slices.Equal(whole.Claimed, []uint32{5, 59}) || back.Hi != 80 || !slices.Equal(back.Claimed, []uint32{71}) {
		t.Fatalf("windows %+v %+v", whole, back)
	}
	for name, c := range map[string]struct {
		out    []rain.Move
		claims []Journaled
		want   error
	}{
		"a claim in a range moved out": {out, claims(85), ErrAmountMismatch},
		"a move of a range not held":   {[]rain.Move{{ID: "x", Slice: sl, Lo: 100, Hi: 101}}, nil, ErrNoMoveRange},
		"a wrong amount":               {nil, []Journaled{{Epoch: 1, Slice: 3, Index: []uint32{1}, Amount: []int64{a.At(1) + 1}}}, ErrAmountMismatch},
	} {
		ws := []*Window{{Slice: sl, Amounts: a, Hi: 100}}
		if err := RestoreWindows(ws, c.out, c.claims, 1); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}
