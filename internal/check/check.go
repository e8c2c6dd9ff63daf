package check

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"redrain/adminapi"
	"redrain/ledger"
)

// Answer is one claim answer a client received.
type Answer struct {
	Node    string // which node answered
	User    uint64
	Status  int    // HTTP status; 0 when the request failed (connection refused, timeout)
	ClaimID string // 200 only
	Amount  int64  // 200 only
	Error   string // error word of a non-200 JSON answer
	// At is when the answer arrived, from the load's start (the bench load driver sets it; 0
	// elsewhere).
	At time.Duration
}

// Expect is what the checker knows of the rain.
type Expect struct {
	Code        string
	TotalAmount int64
	TotalCount  int64
	MaxPerUser  int
	Drained     bool // every node said exhausted: the whole budget must have been claimed
}

// Verdict is the outcome of Check: the figures and every violation found.
type Verdict struct {
	Answered       int   // 200 answers
	AnsweredAmount int64 // their sum
	Credits        int   // claims in the credit stream
	CreditAmount   int64
	RedisCount     int64 // redrain:{CODE}:totals
	RedisAmount    int64
	RedisMax       int64
	Violations     []string
}

// ErrViolated is returned by Check when an invariant does not hold.
var ErrViolated = errors.New("check: invariant violated")

// MaxViolations bounds how many violations a Verdict lists.
const MaxViolations = 50

// Fail records a violation (at most MaxViolations are kept).
func (v *Verdict) Fail(format string, args ...any) {
	if len(v.Violations) < MaxViolations {
		v.Violations = append(v.Violations, fmt.Sprintf(format, args...))
	}
}

// Err is nil when no invariant was violated.
func (v *Verdict) Err() error {
	if len(v.Violations) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d problem(s), first: %s", ErrViolated, len(v.Violations), v.Violations[0])
}

// Check verifies SPEC.md's invariants for one rain, once Redis holds everything the nodes
// journaled (the caller waits for that): every claim_id answered once and credited exactly
// once with the amount the client saw, to the user it answered; no claim_id twice in the
// stream; Redis totals equal the stream; the clients' sum within the budget (equal when
// drained); per-user caps held cluster-wide, counted over the stream's user ids (Redis keeps
// no per-user keys) and over the 200s the clients got, whichever nodes answered them; the nodes
// hash agrees with the stream. The journals are checked against each other by CheckJournals.
func Check(answers []Answer, credits []ledger.Credit, totals ledger.RainTotals,
	nodes map[string]ledger.NodeTotals, exp Expect) *Verdict {
	v := &Verdict{RedisCount: totals.ClaimedCount, RedisAmount: totals.ClaimedAmount, RedisMax: totals.MaxAmount}
	byID := make(map[string]ledger.Credit, len(credits))
	perUserCount := map[uint64]int{}
	perNode := map[string]int64{}
	var max int64
	for _, c := range credits {
		if _, dup := byID[c.ClaimID]; dup {
			v.Fail("claim_id %s credited twice", c.ClaimID)
		}
		byID[c.ClaimID] = c
		v.Credits++
		v.CreditAmount += c.Amount
		perUserCount[c.User]++
		perNode[c.Node] += c.Amount
		if c.Amount > max {
			max = c.Amount
		}
		if c.Amount < 1 {
			v.Fail("claim %s credited %d cents (< 1)", c.ClaimID, c.Amount)
		}
	}
	checkAnswers(v, answers, byID, exp.MaxPerUser)
	if v.AnsweredAmount > exp.TotalAmount || v.CreditAmount > exp.TotalAmount {
		v.Fail("overpay: answered %d, credited %d, budget %d", v.AnsweredAmount, v.CreditAmount, exp.TotalAmount)
	}
	if int64(v.Credits) > exp.TotalCount {
		v.Fail("%d packets credited, only %d exist", v.Credits, exp.TotalCount)
	}
	if exp.Drained && (v.CreditAmount != exp.TotalAmount || int64(v.Credits) != exp.TotalCount) {
		v.Fail("drained but credited %d packets / %d cents of %d / %d", v.Credits, v.CreditAmount, exp.TotalCount, exp.TotalAmount)
	}
	if totals.ClaimedCount != int64(v.Credits) || totals.ClaimedAmount != v.CreditAmount || totals.MaxAmount != max {
		v.Fail("redis totals %d/%d max %d, credit stream %d/%d max %d", totals.ClaimedCount, totals.ClaimedAmount,
			totals.MaxAmount, v.Credits, v.CreditAmount, max)
	}
	if over, who, most := overCap(perUserCount, exp.MaxPerUser); over > 0 {
		v.Fail("%d user(s) credited more than max_per_user %d packets: user %d got %d", over, exp.MaxPerUser, who, most)
	}
	if nodes != nil {
		got := map[string]int64{}
		for id, nt := range nodes {
			if nt.ClaimedAmount != 0 || nt.ClaimedCount != 0 {
				got[id] = nt.ClaimedAmount
			}
		}
		checkMaps(v, "nodes hash", perNode, got)
	}
	return v
}

// checkAnswers checks every 200 the clients got (Paid), and that each is credited with the
// amount and user the client saw.
func checkAnswers(v *Verdict, answers []Answer, byID map[string]ledger.Credit, maxPerUser int) {
	Paid(v, answers, maxPerUser, func(a Answer) {
		c, ok := byID[a.ClaimID]
		switch {
		case !ok:
			v.Fail("answered claim %s (%d cents to user %d) is not in the credit stream", a.ClaimID, a.Amount, a.User)
		case c.Amount != a.Amount || c.User != a.User:
			v.Fail("claim %s answered %d cents to user %d, credited %d to user %d", a.ClaimID, a.Amount, a.User, c.Amount, c.User)
		}
	})
}

// Paid checks the 200s among answers, whichever design or node answered them: no claim_id
// twice, no user answered more than maxPerUser packets (0: no cap); it adds them to v's
// Answered figures, and calls each (if not nil) once per 200.
func Paid(v *Verdict, answers []Answer, maxPerUser int, each func(Answer)) {
	seen := make(map[string]bool, len(answers))
	perUser := map[uint64]int{}
	for _, a := range answers {
		if a.Status != 200 {
			continue
		}
		if seen[a.ClaimID] {
			v.Fail("claim_id %s answered twice", a.ClaimID)
		}
		seen[a.ClaimID] = true
		perUser[a.User]++
		v.Answered++
		v.AnsweredAmount += a.Amount
		if each != nil {
			each(a)
		}
	}
	if over, who, most := overCap(perUser, maxPerUser); over > 0 {
		v.Fail("%d user(s) were answered more than max_per_user %d packets (200s): user %d got %d", over, maxPerUser, who, most)
	}
}

// overCap counts the users of perUser above max (0: no cap) and names the one with the most
// (the lowest id among equals).
func overCap(perUser map[uint64]int, max int) (over int, who uint64, most int) {
	for u, n := range perUser {
		if max > 0 && n > max {
			over++
			if n > most || (n == most && u < who) {
				most, who = n, u
			}
		}
	}
	return over, who, most
}

// Report lists every way a coordinator's report breaks SPEC.md's reconciliation, nil
// when it breaks none: every figure >= 0, claimed + leftover + lost == total and per node
// slice == claimed + leftover + lost, the totals are the nodes' sums (leftover plus the budget
// in no slice), no node flushed more than its slice. The rules are adminapi.Report.Problems,
// written once beside Report so the coordinator's own tests run them too. Every test and run
// that reads a report checks it with this.
func Report(rep *adminapi.Report) []string { return rep.Problems() }

func checkMaps[K comparable](v *Verdict, what string, want, got map[K]int64) {
	for k, w := range want {
		if got[k] != w {
			v.Fail("%s: %v has %d, credit stream says %d", what, k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && g != 0 {
			v.Fail("%s: %v has %d, credit stream has nothing", what, k, g)
		}
	}
}

// ReadRedis loads what Check needs of one rain from Redis: totals, every claim of the credit
// stream (decoded with ledger.DecodeCredits, in stream order) and the per-node hash.
func ReadRedis(ctx context.Context, rdb redis.UniversalClient, code string) ([]ledger.Credit, ledger.RainTotals,
	map[string]ledger.NodeTotals, error) {
	totals, err := ledger.ReadTotals(ctx, rdb, code)
	if err != nil {
		return nil, totals, nil, err
	}
	credits, err := readCredits(ctx, rdb, code)
	if err != nil {
		return nil, totals, nil, err
	}
	nodes, err := ledger.ReadNodes(ctx, rdb, code)
	return credits, totals, nodes, err
}

// readCredits decodes the rain's whole credit stream, 1000 entries per XRANGE.
func readCredits(ctx context.Context, rdb redis.UniversalClient, code string) ([]ledger.Credit, error) {
	const page = 1000
	var credits []ledger.Credit
	for start := "-"; ; {
		msgs, err := rdb.XRangeN(ctx, ledger.Keys(code).Credits, start, "+", page).Result()
		if err != nil {
			return nil, fmt.Errorf("xrange: %w", err)
		}
		for _, m := range msgs {
			cs, err := ledger.DecodeCredits(m.Values)
			if err != nil {
				return nil, fmt.Errorf("credit entry %s: %w", m.ID, err)
			}
			credits = append(credits, cs...)
		}
		if len(msgs) < page {
			return credits, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// StatusWord names an answer for the by-status count: "ok" for 200, the JSON error word,
// "network" when no answer came, "http_NNN" for an answer without a word.
func StatusWord(a Answer) string {
	switch {
	case a.Status == 200:
		return "ok"
	case a.Status == 0:
		return "network"
	case a.Error != "" && !strings.ContainsAny(a.Error, " :"):
		return a.Error
	}
	return "http_" + strconv.Itoa(a.Status)
}
