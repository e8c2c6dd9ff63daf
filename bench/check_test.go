package bench

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"redrain/ledger"
	"redrain/rain"
)

// honest is a small rain as it should end: three users, every answer credited once.
func honest() ([]Answer, []Credit, ledger.RainTotals, map[uint64]int64, map[string]ledger.NodeTotals, Expect) {
	var answers []Answer
	var credits []Credit
	users := map[uint64]int64{}
	var t ledger.RainTotals
	for i := 1; i <= 6; i++ {
		u, amt := uint64(1+i%3), int64(10*i)
		id := fmt.Sprintf("n1.7.%d", i)
		answers = append(answers, Answer{Node: "a", User: u, Status: 200, ClaimID: id, Amount: amt})
		credits = append(credits, Credit{ClaimID: id, User: u, Amount: amt, Node: "n1"})
		users[u] += amt
		t.ClaimedCount++
		t.ClaimedAmount += amt
		t.MaxAmount = max(t.MaxAmount, amt)
	}
	answers = append(answers, Answer{Node: "a", User: 1, Status: 429, Error: "user_limit"})
	nodes := map[string]ledger.NodeTotals{"n1": {ClaimedCount: t.ClaimedCount, ClaimedAmount: t.ClaimedAmount}}
	return answers, credits, t, users, nodes, Expect{Code: "r", TotalAmount: 210, TotalCount: 6, MaxPerUser: 2, Drained: true}
}

func TestCheckHonestRain(t *testing.T) {
	a, c, tot, u, n, exp := honest()
	if v := Check(a, c, tot, u, n, exp); v.Err() != nil || v.Answered != 6 || v.AnsweredAmount != 210 {
		t.Fatalf("honest rain: %+v", v)
	}
}

// The checker catches what it exists for, fed doctored answers and credits.
func TestCheckCatchesDoctoredRains(t *testing.T) {
	for _, c := range []struct {
		name   string
		doctor func(a *[]Answer, c *[]Credit, tot *ledger.RainTotals, exp *Expect)
		want   string
	}{
		{"duplicated claim_id answered", func(a *[]Answer, _ *[]Credit, _ *ledger.RainTotals, _ *Expect) {
			*a = append(*a, (*a)[0])
		}, "answered twice"},
		{"duplicated claim_id credited", func(_ *[]Answer, c *[]Credit, _ *ledger.RainTotals, _ *Expect) {
			*c = append(*c, (*c)[2])
		}, "credited twice"},
		{"overpay", func(_ *[]Answer, _ *[]Credit, _ *ledger.RainTotals, exp *Expect) {
			exp.TotalAmount, exp.Drained = 200, false
		}, "overpay"},
		{"missing credit entry", func(_ *[]Answer, c *[]Credit, _ *ledger.RainTotals, _ *Expect) {
			*c = (*c)[1:]
		}, "not in the credit stream"},
		{"amount differs from the credit", func(a *[]Answer, _ *[]Credit, _ *ledger.RainTotals, _ *Expect) {
			(*a)[3].Amount++
		}, "credited"},
		{"per-user cap broken", func(_ *[]Answer, _ *[]Credit, _ *ledger.RainTotals, exp *Expect) {
			exp.MaxPerUser = 1
		}, "max_per_user 1"},
		{"drained but short", func(_ *[]Answer, _ *[]Credit, _ *ledger.RainTotals, exp *Expect) {
			exp.TotalAmount, exp.TotalCount = 300, 7
		}, "drained but credited"},
		{"redis totals off", func(_ *[]Answer, _ *[]Credit, tot *ledger.RainTotals, _ *Expect) {
			tot.ClaimedAmount--
		}, "redis totals"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, cr, tot, u, n, exp := honest()
			c.doctor(&a, &cr, &tot, &exp)
			v := Check(a, cr, tot, u, n, exp)
			if !errors.Is(v.Err(), ErrViolated) || !strings.Contains(strings.Join(v.Violations, "\n"), c.want) {
				t.Fatalf("want a violation containing %q, got %q", c.want, v.Violations)
			}
		})
	}
}

// The run's cross-checks: Redis against journals and report, and a drained rain's budget.
func TestCrossCheck(t *testing.T) {
	good := func() *Results {
		return &Results{Redis: Figures{6, 210}, Journaled: Figures{6, 210}, Drained: true, Claims: 6,
			Amounts: Amounts{Sum: 210}, ByStatus: map[string]int64{"ok": 6}, Rain: honestRain()}
	}
	v := &Verdict{}
	crossCheck(v, good())
	if len(v.Violations) != 0 {
		t.Fatalf("clean run: %v", v.Violations)
	}
	for name, doctor := range map[string]func(r *Results){
		"journals ahead of redis": func(r *Results) { r.Journaled.Count++ },
		"clients short":           func(r *Results) { r.Amounts.Sum-- },
	} {
		r := good()
		doctor(r)
		v := &Verdict{}
		crossCheck(v, r)
		if len(v.Violations) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
	r := good()
	r.Amounts.Sum--
	r.ByStatus["network"] = 1 // an unanswered claim may be the missing one: no violation
	v = &Verdict{}
	if crossCheck(v, r); len(v.Violations) != 0 {
		t.Fatalf("unanswered claim: %v", v.Violations)
	}
}

func honestRain() rain.Config { return rain.Config{TotalAmount: 210, TotalCount: 6, MaxPerUser: 2} }
