package adminapi

import "testing"

func TestCaughtUp(t *testing.T) {
	// Two alive nodes and a dead one; each case changes one figure of a caught-up report.
	base := func() *Report {
		return &Report{Code: "r", ClaimedAmount: 600, ClaimedCount: 6, FlushedAmount: 600, FlushedCount: 6,
			Nodes: []NodeReport{
				{Node: "n1", State: StateAlive, ClaimedAmount: 300, FlushedAmount: 300},
				{Node: "n2", State: StateAlive, ClaimedAmount: 200, FlushedAmount: 200},
				{Node: "n3", State: "dead", ClaimedAmount: 100, FlushedAmount: 100},
			}}
	}
	for _, c := range []struct {
		name   string
		change func(r *Report)
		want   bool
	}{
		{"caught up", func(*Report) {}, true},
		{"an alive node behind", func(r *Report) { r.Nodes[1].FlushedAmount = 150 }, false},
		{"a dead node's line is Redis's own", func(r *Report) { r.Nodes[2].FlushedAmount = 0 }, true},
		// The nodes say they flushed all; Redis rolled back 50 cents of it (a failover).
		{"redis rolled back, amount", func(r *Report) { r.FlushedAmount = 550 }, false},
		{"redis rolled back, count", func(r *Report) { r.FlushedCount = 5 }, false},
	} {
		r := base()
		c.change(r)
		if got := r.CaughtUp(); got != c.want {
			t.Errorf("%s: CaughtUp() = %v, want %v", c.name, got, c.want)
		}
	}
}
