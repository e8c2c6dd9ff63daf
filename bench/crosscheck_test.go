package bench

import (
	"testing"

	"redrain/adminapi"
	"redrain/internal/check"
	"redrain/rain"
)

// The run's cross-checks: Redis against journals and report, and a drained rain's budget.
func TestCrossCheck(t *testing.T) {
	good := func() *Results {
		return &Results{Redis: Figures{6, 210}, Journaled: Figures{6, 210}, Drained: true, Claims: 6,
			Amounts: Amounts{Sum: 210}, ByStatus: map[string]int64{"ok": 6}, Rain: honestRain(), Report: drainedReport()}
	}
	v := &check.Verdict{}
	crossCheck(v, good())
	if len(v.Violations) != 0 {
		t.Fatalf("clean run: %v", v.Violations)
	}
	for name, doctor := range map[string]func(r *Results){
		"journals ahead of redis": func(r *Results) { r.Journaled.Count++ },
		"clients short":           func(r *Results) { r.Amounts.Sum-- },
		"report breaks its invariants": func(r *Results) {
			r.Report.LeftoverAmount, r.Report.LostAmount = 10, -10
			r.Report.Nodes[0].LeftoverAmount, r.Report.Nodes[0].LostAmount = 10, -10
		},
	} {
		r := good()
		doctor(r)
		v := &check.Verdict{}
		crossCheck(v, r)
		if len(v.Violations) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
	r := good()
	r.Amounts.Sum--
	r.ByStatus["network"] = 1 // an unanswered claim may be the missing one: no violation
	v = &check.Verdict{}
	if crossCheck(v, r); len(v.Violations) != 0 {
		t.Fatalf("unanswered claim: %v", v.Violations)
	}
}

// drainedReport is the coordinator's report of the honest rain, drained and flushed.
func drainedReport() *adminapi.Report {
	return &adminapi.Report{Code: "r", Status: "settled", TotalAmount: 210, TotalCount: 6, ClaimedAmount: 210,
		ClaimedCount: 6, FlushedAmount: 210, FlushedCount: 6, MaxAmount: 60,
		Nodes: []adminapi.NodeReport{{Node: "n1", State: "alive", SliceAmount: 210, SliceCount: 6,
			ClaimedAmount: 210, ClaimedCount: 6, FlushedAmount: 210}}}
}

func honestRain() rain.Config { return rain.Config{TotalAmount: 210, TotalCount: 6, MaxPerUser: 2} }
