package coordinator

import (
	"testing"

	"redrain/internal/wire"
	"redrain/rain"
)

func TestBuildReport(t *testing.T) {
	slices := []rain.Slice{
		{Node: "a", Amount: 400, Count: 40, Epoch: 2}, {Node: "b", Amount: 300, Count: 30, Epoch: 2},
		{Node: "c", Amount: 300, Count: 30, Epoch: 2},
	}
	started := &record{Code: "X", Config: rain.Config{TotalAmount: 1000, TotalCount: 100}, Status: rain.Raining,
		Epoch: 2, Slices: slices, StartedAt: 1}
	prog := func(claimed, count, flushed int64) *wire.Progress {
		return &wire.Progress{Epoch: 2, SliceAmount: 400, SliceCount: 40, ClaimedAmount: claimed, ClaimedCount: count,
			FlushedAmount: flushed, RemainingAmount: 400 - claimed}
	}
	cases := []struct {
		name                    string
		rec                     *record
		facts                   map[string]nodeFacts
		claimed, leftover, lost int64
		aClaimed                int64
	}{
		{"waiting: all leftover", &record{Config: rain.Config{TotalAmount: 1000, TotalCount: 100}, Status: rain.Waiting}, nil, 0, 1000, 0, 0},
		{"prepared, a dead: still all leftover", &record{Config: rain.Config{TotalAmount: 1000, TotalCount: 100}, Status: rain.Prepared, Slices: slices},
			map[string]nodeFacts{"a": {State: stateDead}}, 0, 1000, 0, 0},
		{"all live", started, map[string]nodeFacts{
			"a": {State: stateAlive, Progress: prog(100, 10, 50)},
			"b": {State: stateAlive, Progress: &wire.Progress{Epoch: 2, SliceAmount: 300, SliceCount: 30}},
			"c": {State: stateAlive, Progress: &wire.Progress{Epoch: 2, SliceAmount: 300, SliceCount: 30, ClaimedAmount: 300, ClaimedCount: 30}},
		}, 400, 600, 0, 100},
		{"dead and unknown: flushed claimed, rest lost", started, map[string]nodeFacts{
			"a": {State: stateDead, Progress: prog(100, 10, 50), Redis: flushed{ClaimedAmount: 50, ClaimedCount: 5}},
			"b": {State: stateSuspect, Redis: flushed{ClaimedAmount: 10, ClaimedCount: 1}},
		}, 60, 0, 940, 50},
		{"left with leftover record", started, map[string]nodeFacts{
			"a": {State: stateLeft, Redis: flushed{ClaimedAmount: 150, ClaimedCount: 15, LeftoverAmount: 250, HasLeftover: true}},
			"b": {State: stateLeft, Redis: flushed{ClaimedAmount: 30, ClaimedCount: 3}},
			"c": {State: stateAlive, Progress: &wire.Progress{Epoch: 2, SliceAmount: 300, SliceCount: 30}},
		}, 180, 550, 270, 150},
		{"alive but wrong epoch or unreachable: Redis", started, map[string]nodeFacts{
			"a": {State: stateAlive, Progress: &wire.Progress{Epoch: 1, SliceAmount: 400, SliceCount: 40, ClaimedAmount: 7}, Redis: flushed{ClaimedAmount: 20, ClaimedCount: 2}},
			"b": {State: stateAlive},
			"c": {State: stateAlive, Progress: &wire.Progress{Epoch: 2, SliceAmount: 999, SliceCount: 30}},
		}, 20, 0, 980, 20},
	}
	for _, tc := range cases {
		rep := buildReport(tc.rec, tc.facts, Totals{ClaimedAmount: 77, MaxAmount: 9})
		checkBalance(t, rep)
		if rep.ClaimedAmount != tc.claimed || rep.LeftoverAmount != tc.leftover || rep.LostAmount != tc.lost {
			t.Errorf("%s: claimed %d leftover %d lost %d, want %d %d %d", tc.name, rep.ClaimedAmount,
				rep.LeftoverAmount, rep.LostAmount, tc.claimed, tc.leftover, tc.lost)
		}
		if len(rep.Nodes) > 0 && rep.Nodes[0].ClaimedAmount != tc.aClaimed {
			t.Errorf("%s: node a claimed %d, want %d", tc.name, rep.Nodes[0].ClaimedAmount, tc.aClaimed)
		}
		if rep.FlushedAmount != 77 || rep.MaxAmount != 9 || rep.Nodes == nil {
			t.Errorf("%s: Redis totals not reported: %+v", tc.name, rep)
		}
	}
}

// TestBuildReportUnknownNode: a holder gossip has forgotten is dead.
func TestBuildReportUnknownNode(t *testing.T) {
	r := &record{Config: rain.Config{TotalAmount: 10}, Status: rain.Finished, StartedAt: 1,
		Slices: []rain.Slice{{Node: "gone", Amount: 10, Count: 1}}}
	rep := buildReport(r, nil, Totals{})
	if rep.Nodes[0].State != stateDead || rep.LostAmount != 10 {
		t.Fatalf("%+v", rep)
	}
}

// TestBuildReportMoves: stock moved between holders is in the receiver's share once either side
// reports it; in transit from a live donor it is the receiver's leftover, from a dead one its
// lost; a dead donor's share no longer holds what it gave.
func TestBuildReportMoves(t *testing.T) {
	slices := []rain.Slice{{Node: "a", Amount: 600, Count: 60, Epoch: 1}, {Node: "b", Amount: 400, Count: 40, Epoch: 1}}
	rec := &record{Code: "M", Config: rain.Config{TotalAmount: 1000, TotalCount: 100}, Status: rain.Raining,
		Epoch: 1, Slices: slices, StartedAt: 1}
	out := []wire.MoveSum{{Peer: "b", Count: 20, Amount: 200}}
	in := []wire.MoveSum{{Peer: "a", Count: 20, Amount: 200}}
	a := func(claimed int64, moves []wire.MoveSum) *wire.Progress {
		return &wire.Progress{Epoch: 1, SliceAmount: 600, SliceCount: 60, ClaimedAmount: claimed, ClaimedCount: claimed / 10, MovesOut: moves}
	}
	b := func(claimed int64, moves []wire.MoveSum) *wire.Progress {
		return &wire.Progress{Epoch: 1, SliceAmount: 400, SliceCount: 40, ClaimedAmount: claimed, ClaimedCount: claimed / 10, MovesIn: moves}
	}
	type line struct{ claimed, leftover, lost, in, out int64 }
	cases := []struct {
		name  string
		facts map[string]nodeFacts
		a, b  line
	}{
		{"both report", map[string]nodeFacts{
			"a": {State: stateAlive, Progress: a(100, out)}, "b": {State: stateAlive, Progress: b(550, in)},
		}, line{100, 300, 0, 0, 200}, line{550, 50, 0, 200, 0}},
		{"in transit from a live donor: the receiver's leftover", map[string]nodeFacts{
			"a": {State: stateAlive, Progress: a(100, out)}, "b": {State: stateAlive, Progress: b(400, nil)},
		}, line{100, 300, 0, 0, 200}, line{400, 200, 0, 200, 0}},
		{"donor dead, receiver reports: the donor's share shrank", map[string]nodeFacts{
			"a": {State: stateDead, Redis: flushed{ClaimedAmount: 100, ClaimedCount: 10}}, "b": {State: stateAlive, Progress: b(500, in)},
		}, line{100, 0, 300, 0, 200}, line{500, 100, 0, 200, 0}},
		{"donor dead, move only in Redis, receiver has not got it: lost on the receiver", map[string]nodeFacts{
			"a": {State: stateDead, Redis: flushed{ClaimedAmount: 100, ClaimedCount: 10, MovesOut: out}}, "b": {State: stateAlive, Progress: b(400, nil)},
		}, line{100, 0, 300, 0, 200}, line{400, 0, 200, 200, 0}},
		{"receiver dead: its share is lost but what it flushed", map[string]nodeFacts{
			"a": {State: stateAlive, Progress: a(100, out)}, "b": {State: stateDead, Redis: flushed{ClaimedAmount: 450, ClaimedCount: 45}},
		}, line{100, 300, 0, 0, 200}, line{450, 0, 150, 200, 0}},
	}
	for _, tc := range cases {
		rep := buildReport(rec, tc.facts, Totals{})
		checkBalance(t, rep)
		for i, want := range []line{tc.a, tc.b} {
			n := rep.Nodes[i]
			got := line{n.ClaimedAmount, n.LeftoverAmount, n.LostAmount, n.MovedInAmount, n.MovedOutAmount}
			if got != want {
				t.Errorf("%s: node %s = %+v, want %+v", tc.name, n.Node, got, want)
			}
		}
	}
	// A spoiled line is caught: moved in without the matching move out.
	rep := buildReport(rec, map[string]nodeFacts{"a": {State: stateAlive, Progress: a(0, nil)}, "b": {State: stateAlive, Progress: b(0, in)}}, Totals{})
	rep.Nodes[0].MovedOutAmount = 0
	rep.Nodes[0].LeftoverAmount += 200
	rep.LeftoverAmount += 200
	rep.TotalAmount += 200
	if len(rep.Problems()) == 0 {
		t.Fatal("a report whose moves in and out differ passed the checker")
	}
}
