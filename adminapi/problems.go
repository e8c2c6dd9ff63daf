package adminapi

import "fmt"

// MaxProblems bounds how many problems Report.Problems lists.
const MaxProblems = 50

// Problems lists every way r breaks the reconciliation SPEC.md promises, nil when it breaks
// none:
//   - every figure is >= 0, in total and per node;
//   - claimed + leftover + lost == total, and per node slice == claimed + leftover + lost;
//   - the report's claimed amount and count and its lost amount are the sums of the nodes';
//     its leftover is theirs plus the budget in no slice (the slices never exceed the budget);
//   - no node flushed more than its slice (an overpay), nor Redis more than the budget, and
//     an alive node flushed no more than it journaled.
//
// Tests and the benchmark run it on every report they read (check.Report); the
// coordinator's own tests run it too.
func (r *Report) Problems() []string {
	var out []string
	fail := func(format string, args ...any) {
		if len(out) < MaxProblems {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	for _, f := range []figure{{"total_amount", r.TotalAmount}, {"total_count", r.TotalCount},
		{"claimed_amount", r.ClaimedAmount}, {"claimed_count", r.ClaimedCount}, {"flushed_amount", r.FlushedAmount},
		{"flushed_count", r.FlushedCount}, {"max_amount", r.MaxAmount}, {"leftover_amount", r.LeftoverAmount},
		{"lost_amount", r.LostAmount}} {
		if f.v < 0 {
			fail("rain %s: %s %d < 0", r.Code, f.name, f.v)
		}
	}
	if r.ClaimedAmount+r.LeftoverAmount+r.LostAmount != r.TotalAmount {
		fail("rain %s does not balance: claimed %d + leftover %d + lost %d != total %d", r.Code,
			r.ClaimedAmount, r.LeftoverAmount, r.LostAmount, r.TotalAmount)
	}
	if r.FlushedAmount > r.TotalAmount || r.FlushedCount > r.TotalCount {
		fail("rain %s: Redis totals %d / %d cents exceed the rain's %d / %d (overpay)", r.Code,
			r.FlushedCount, r.FlushedAmount, r.TotalCount, r.TotalAmount)
	}
	var sum NodeReport
	for _, n := range r.Nodes {
		nodeProblems(r.Code, n, fail)
		sum.MovedInAmount += n.MovedInAmount
		sum.MovedInCount += n.MovedInCount
		sum.MovedOutAmount += n.MovedOutAmount
		sum.MovedOutCount += n.MovedOutCount
		sum.SliceAmount += n.SliceAmount
		sum.SliceCount += n.SliceCount
		sum.ClaimedAmount += n.ClaimedAmount
		sum.ClaimedCount += n.ClaimedCount
		sum.LeftoverAmount += n.LeftoverAmount
		sum.LostAmount += n.LostAmount
	}
	if r.ClaimedAmount != sum.ClaimedAmount || r.ClaimedCount != sum.ClaimedCount {
		fail("rain %s: claimed %d cents / %d is not the sum of the nodes' %d / %d", r.Code,
			r.ClaimedAmount, r.ClaimedCount, sum.ClaimedAmount, sum.ClaimedCount)
	}
	if sum.MovedInAmount != sum.MovedOutAmount || sum.MovedInCount != sum.MovedOutCount {
		fail("rain %s: stock moved in %d / %d cents is not the stock moved out %d / %d", r.Code,
			sum.MovedInCount, sum.MovedInAmount, sum.MovedOutCount, sum.MovedOutAmount)
	}
	if r.LostAmount != sum.LostAmount {
		fail("rain %s: lost %d is not the sum of the nodes' %d", r.Code, r.LostAmount, sum.LostAmount)
	}
	if sum.SliceAmount > r.TotalAmount || sum.SliceCount > r.TotalCount {
		fail("rain %s: slices hold %d packets / %d cents, more than the rain's %d / %d", r.Code,
			sum.SliceCount, sum.SliceAmount, r.TotalCount, r.TotalAmount)
	}
	if unassigned := r.TotalAmount - sum.SliceAmount; r.LeftoverAmount != sum.LeftoverAmount+unassigned {
		fail("rain %s: leftover %d is not the nodes' %d plus the %d cents in no slice", r.Code,
			r.LeftoverAmount, sum.LeftoverAmount, unassigned)
	}
	return out
}

// figure is one named figure of a report, for the ">= 0" checks.
type figure struct {
	name string
	v    int64
}

// nodeProblems checks one node line of rain code's report.
func nodeProblems(code string, n NodeReport, fail func(format string, args ...any)) {
	for _, f := range []figure{{"slice_amount", n.SliceAmount}, {"slice_count", n.SliceCount},
		{"claimed_amount", n.ClaimedAmount}, {"claimed_count", n.ClaimedCount}, {"flushed_amount", n.FlushedAmount},
		{"leftover_amount", n.LeftoverAmount}, {"lost_amount", n.LostAmount},
		{"moved_in_amount", n.MovedInAmount}, {"moved_in_count", n.MovedInCount},
		{"moved_out_amount", n.MovedOutAmount}, {"moved_out_count", n.MovedOutCount}} {
		if f.v < 0 {
			fail("rain %s node %s (%s): %s %d < 0", code, n.Node, n.State, f.name, f.v)
		}
	}
	shareAmount, shareCount := n.Share()
	if shareAmount < 0 || shareCount < 0 {
		fail("rain %s node %s (%s): moved out %d / %d cents, more than its slice %d / %d plus moved in %d / %d",
			code, n.Node, n.State, n.MovedOutCount, n.MovedOutAmount, n.SliceCount, n.SliceAmount, n.MovedInCount, n.MovedInAmount)
	}
	if n.ClaimedAmount+n.LeftoverAmount+n.LostAmount != shareAmount {
		fail("rain %s node %s (%s) does not balance: claimed %d + leftover %d + lost %d != share %d (slice %d + in %d - out %d)", code,
			n.Node, n.State, n.ClaimedAmount, n.LeftoverAmount, n.LostAmount, shareAmount, n.SliceAmount, n.MovedInAmount, n.MovedOutAmount)
	}
	if n.ClaimedCount > shareCount {
		fail("rain %s node %s (%s): claimed %d packets of a share of %d", code, n.Node, n.State, n.ClaimedCount, shareCount)
	}
	if n.FlushedAmount > shareAmount {
		fail("rain %s node %s (%s): flushed %d cents of a share of %d (overpay)", code, n.Node, n.State,
			n.FlushedAmount, shareAmount)
	}
	if n.State == StateAlive && n.FlushedAmount > n.ClaimedAmount {
		fail("rain %s node %s (alive): flushed %d cents, more than the %d it journaled", code, n.Node,
			n.FlushedAmount, n.ClaimedAmount)
	}
}

// CaughtUp reports whether Redis holds everything the rain's live nodes journaled: every alive
// node flushed what it journaled, by its own account, and Redis's totals (the report's flushed
// figures) are the report's claimed figures. The nodes' account alone is not enough: a node
// learns that Redis lost or rolled back writes it had acknowledged (a restart, a failover to a
// replica that was behind) only at its next marker check, and until then it reports them
// flushed. Callers that wait for the flushers before checking SPEC's invariants wait for this.
func (r *Report) CaughtUp() bool {
	for _, n := range r.Nodes {
		if n.State == StateAlive && n.FlushedAmount != n.ClaimedAmount {
			return false
		}
	}
	return r.FlushedAmount == r.ClaimedAmount && r.FlushedCount == r.ClaimedCount
}
