package check

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"redrain/adminapi"
	"redrain/ledger"
)

// honest is a small rain as it should end: three users, every answer credited once.
func honest() ([]Answer, []ledger.Credit, ledger.RainTotals, map[string]ledger.NodeTotals, Expect) {
	var answers []Answer
	var credits []ledger.Credit
	var t ledger.RainTotals
	for i := 1; i <= 6; i++ {
		u, amt := uint64(1+i%3), int64(10*i)
		id := fmt.Sprintf("n1-0000000000000007-%d", i)
		answers = append(answers, Answer{Node: "a", User: u, Status: 200, ClaimID: id, Amount: amt})
		credits = append(credits, ledger.Credit{ClaimID: id, Node: "n1", Incarnation: 7, Seq: uint64(i), User: u, Amount: amt})
		t.ClaimedCount++
		t.ClaimedAmount += amt
		t.MaxAmount = max(t.MaxAmount, amt)
	}
	answers = append(answers, Answer{Node: "a", User: 1, Status: 429, Error: "user_limit"})
	nodes := map[string]ledger.NodeTotals{"n1": {ClaimedCount: t.ClaimedCount, ClaimedAmount: t.ClaimedAmount}}
	return answers, credits, t, nodes, Expect{Code: "r", TotalAmount: 210, TotalCount: 6, MaxPerUser: 2, Drained: true}
}

func TestCheckHonestRain(t *testing.T) {
	a, c, tot, n, exp := honest()
	if v := Check(a, c, tot, n, exp); v.Err() != nil || v.Answered != 6 || v.AnsweredAmount != 210 {
		t.Fatalf("honest rain: %+v", v)
	}
}

// The checker catches what it exists for, fed doctored answers and credits.
func TestCheckCatchesDoctoredRains(t *testing.T) {
	for _, c := range []struct {
		name   string
		doctor func(a *[]Answer, c *[]ledger.Credit, tot *ledger.RainTotals, exp *Expect)
		want   string
	}{
		{"duplicated claim_id answered", func(a *[]Answer, _ *[]ledger.Credit, _ *ledger.RainTotals, _ *Expect) {
			*a = append(*a, (*a)[0])
		}, "answered twice"},
		{"duplicated claim_id credited", func(_ *[]Answer, c *[]ledger.Credit, _ *ledger.RainTotals, _ *Expect) {
			*c = append(*c, (*c)[2])
		}, "credited twice"},
		{"overpay", func(_ *[]Answer, _ *[]ledger.Credit, _ *ledger.RainTotals, exp *Expect) {
			exp.TotalAmount, exp.Drained = 200, false
		}, "overpay"},
		{"missing credit entry", func(_ *[]Answer, c *[]ledger.Credit, _ *ledger.RainTotals, _ *Expect) {
			*c = (*c)[1:]
		}, "not in the credit stream"},
		{"amount differs from the credit", func(a *[]Answer, _ *[]ledger.Credit, _ *ledger.RainTotals, _ *Expect) {
			(*a)[3].Amount++
		}, "credited"},
		{"credited to another user", func(_ *[]Answer, c *[]ledger.Credit, _ *ledger.RainTotals, _ *Expect) {
			(*c)[3].User++
		}, "answered 40 cents to user 2, credited 40 to user 3"},
		{"per-user cap broken", func(_ *[]Answer, _ *[]ledger.Credit, _ *ledger.RainTotals, exp *Expect) {
			exp.MaxPerUser = 1
		}, "max_per_user 1"},
		{"a user answered past the cap by several nodes", func(a *[]Answer, c *[]ledger.Credit, tot *ledger.RainTotals, _ *Expect) {
			id := "n2-0000000000000009-1"
			*a = append(*a, Answer{Node: "b", User: 2, Status: 200, ClaimID: id, Amount: 5})
			*c = append(*c, ledger.Credit{ClaimID: id, Node: "n2", Incarnation: 9, Seq: 1, User: 2, Amount: 5})
			tot.ClaimedCount++
			tot.ClaimedAmount += 5
		}, "1 user(s) were answered more than max_per_user 2 packets (200s): user 2 got 3"},
		{"drained but short", func(_ *[]Answer, _ *[]ledger.Credit, _ *ledger.RainTotals, exp *Expect) {
			exp.TotalAmount, exp.TotalCount = 300, 7
		}, "drained but credited"},
		{"redis totals off", func(_ *[]Answer, _ *[]ledger.Credit, tot *ledger.RainTotals, _ *Expect) {
			tot.ClaimedAmount--
		}, "redis totals"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, cr, tot, n, exp := honest()
			c.doctor(&a, &cr, &tot, &exp)
			v := Check(a, cr, tot, n, exp)
			if !errors.Is(v.Err(), ErrViolated) || !strings.Contains(strings.Join(v.Violations, "\n"), c.want) {
				t.Fatalf("want a violation containing %q, got %q", c.want, v.Violations)
			}
		})
	}
}

// goodReport is a rain of 1000 cents part-way through: n1 alive, n2 left with a recorded
// leftover, n3 dead, and 100 cents of budget in no slice.
func goodReport() *adminapi.Report {
	return &adminapi.Report{Code: "r", Status: "finished", TotalAmount: 1000, TotalCount: 100,
		ClaimedAmount: 350, ClaimedCount: 35, FlushedAmount: 300, FlushedCount: 30, MaxAmount: 20,
		LeftoverAmount: 100 + 200 + 150, LostAmount: 200,
		Nodes: []adminapi.NodeReport{
			{Node: "n1", State: "alive", SliceAmount: 300, SliceCount: 30, ClaimedAmount: 100, ClaimedCount: 10, FlushedAmount: 50, LeftoverAmount: 200},
			{Node: "n2", State: "left", SliceAmount: 300, SliceCount: 30, ClaimedAmount: 150, ClaimedCount: 15, FlushedAmount: 150, LeftoverAmount: 150},
			{Node: "n3", State: "dead", SliceAmount: 300, SliceCount: 30, ClaimedAmount: 100, ClaimedCount: 10, FlushedAmount: 100, LostAmount: 200},
		}}
}

func TestCheckReport(t *testing.T) {
	if ps := Report(goodReport()); len(ps) != 0 {
		t.Fatalf("a good report is flagged: %q", ps)
	}
	for _, c := range []struct {
		name   string
		doctor func(r *adminapi.Report)
		want   string
	}{
		{"negative lost on a node that still balances", func(r *adminapi.Report) {
			r.Nodes[2].LostAmount, r.Nodes[2].LeftoverAmount, r.LostAmount, r.LeftoverAmount = -50, 250, -50, 700
		}, "lost_amount -50 < 0"},
		{"negative leftover in total", func(r *adminapi.Report) {
			r.LeftoverAmount, r.ClaimedAmount = -1, 801
		}, "leftover_amount -1 < 0"},
		{"node that does not balance", func(r *adminapi.Report) {
			r.Nodes[0].LeftoverAmount++
		}, "n1 (alive) does not balance"},
		{"totals that do not add up", func(r *adminapi.Report) {
			r.LostAmount++
		}, "does not balance: claimed 350 + leftover 450 + lost 201 != total 1000"},
		{"claimed is not the nodes' sum", func(r *adminapi.Report) {
			r.ClaimedAmount, r.LeftoverAmount = 351, 449
		}, "is not the sum of the nodes'"},
		{"claimed count is not the nodes' sum", func(r *adminapi.Report) {
			r.ClaimedCount++
		}, "is not the sum of the nodes'"},
		{"lost is not the nodes' sum", func(r *adminapi.Report) {
			r.LostAmount, r.LeftoverAmount = 250, 400
		}, "lost 250 is not the sum of the nodes' 200"},
		{"leftover short of the nodes' and the unassigned budget", func(r *adminapi.Report) {
			r.Nodes[2].LeftoverAmount, r.Nodes[2].LostAmount, r.LostAmount = 50, 150, 150
		}, "leftover 450 is not the nodes' 400 plus the 100 cents in no slice"},
		{"slices past the budget", func(r *adminapi.Report) {
			r.Nodes = append(r.Nodes, adminapi.NodeReport{Node: "n4", State: "alive", SliceAmount: 150, SliceCount: 5, LeftoverAmount: 150})
		}, "slices hold 95 packets / 1050 cents"},
		{"node flushed past its slice", func(r *adminapi.Report) {
			r.Nodes[2].FlushedAmount = 301
		}, "flushed 301 cents of a slice of 300 (overpay)"},
		{"alive node flushed more than it journaled", func(r *adminapi.Report) {
			r.Nodes[0].FlushedAmount = 101
		}, "more than the 100 it journaled"},
		{"redis past the budget", func(r *adminapi.Report) {
			r.FlushedAmount = 1001
		}, "exceed the rain's"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := goodReport()
			c.doctor(r)
			ps := Report(r)
			if !strings.Contains(strings.Join(ps, "\n"), c.want) {
				t.Fatalf("want a problem containing %q, got %q", c.want, ps)
			}
		})
	}
}
