package ledger

import (
	"context"
	"fmt"
)

// Reader is what Audit reads of Redis; RedisClient and MemRedis are both one.
type Reader interface {
	ReadMarker(ctx context.Context, code, node string, incarnation uint64) (uint64, error)
	ReadTotals(ctx context.Context, code string) (RainTotals, error)
	ReadNodes(ctx context.Context, code string) (map[string]NodeTotals, error)
	ReadCredits(ctx context.Context, code string) ([]Credit, error)
}

// MaxProblems bounds how many problems Audit lists.
const MaxProblems = 50

// Audit checks SPEC's invariants 2 to 4 between journals and Redis for one rain, once
// everything the journals hold of it is flushed: every journal's marker is its last sequence of
// the rain; the nodes hash says what each node journaled; the totals are the journals' sums and
// largest claim; the credit stream holds every journaled claim exactly once, with its user,
// amount and node, and nothing else. It is the one journal-against-Redis rule: the ledger's and
// the node's tests run it. It returns the problems found (nil: none), or an error if it could not
// read.
func Audit(ctx context.Context, r Reader, code string, journals ...Source) ([]string, error) {
	var a audit
	want := map[string]Credit{}
	perNode := map[string]Totals{}
	var all Totals
	for _, j := range journals {
		one, err := a.journal(ctx, r, code, j, want)
		if err != nil {
			return nil, err
		}
		t := perNode[j.NodeID()]
		t.Count, t.Amount = t.Count+one.Count, t.Amount+one.Amount
		perNode[j.NodeID()] = t
		all.Count, all.Amount, all.Max = all.Count+one.Count, all.Amount+one.Amount, max(all.Max, one.Max)
	}
	nodes, err := r.ReadNodes(ctx, code)
	if err != nil {
		return nil, err
	}
	for node, t := range perNode {
		if n := nodes[node]; n.ClaimedCount != t.Count || n.ClaimedAmount != t.Amount {
			a.fail("%s: nodes hash %d claims / %d cents, journal %d / %d", node, n.ClaimedCount, n.ClaimedAmount, t.Count, t.Amount)
		}
	}
	tot, err := r.ReadTotals(ctx, code)
	if err != nil {
		return nil, err
	}
	if want := (RainTotals{all.Count, all.Amount, all.Max}); tot != want {
		a.fail("redis totals %+v, journals %+v", tot, want)
	}
	credits, err := r.ReadCredits(ctx, code)
	if err != nil {
		return nil, err
	}
	a.credits(credits, want)
	return a.problems, nil
}

type audit struct{ problems []string }

func (a *audit) fail(format string, args ...any) {
	if len(a.problems) < MaxProblems {
		a.problems = append(a.problems, fmt.Sprintf(format, args...))
	}
}

// journal replays one journal's claims of the rain into want (claim_id -> credit) and checks its
// marker; it returns the journal's totals of the rain.
func (a *audit) journal(ctx context.Context, r Reader, code string, j Source, want map[string]Credit) (Totals, error) {
	var t Totals
	var id []byte
	err := j.Scan(code, 0, 0, func(seq uint64, rec Record) bool {
		id = AppendClaimID(id[:0], j.NodeID(), j.Incarnation(), seq)
		if _, dup := want[string(id)]; dup {
			a.fail("claim_id %s journaled twice", id)
		}
		want[string(id)] = Credit{ClaimID: string(id), Node: j.NodeID(), Incarnation: j.Incarnation(), Seq: seq,
			User: rec.User, Amount: rec.Amount}
		t.add(seq, rec.Amount)
		return true
	})
	if err != nil {
		return t, err
	}
	marker, err := r.ReadMarker(ctx, code, j.NodeID(), j.Incarnation())
	if err != nil {
		return t, err
	}
	if marker != t.LastSeq {
		a.fail("%s: marker %d, journal's last seq of the rain %d", j.NodeID(), marker, t.LastSeq)
	}
	return t, nil
}

// credits checks the stream against the journals' claims: each once, as journaled, no other.
func (a *audit) credits(credits []Credit, want map[string]Credit) {
	seen := make(map[string]bool, len(credits))
	for _, c := range credits {
		w, ok := want[c.ClaimID]
		switch {
		case seen[c.ClaimID]:
			a.fail("claim %s twice in the credit stream", c.ClaimID)
		case !ok:
			a.fail("credit %s is in no journal", c.ClaimID)
		case c.User != w.User || c.Amount != w.Amount || c.Node != w.Node:
			a.fail("credit %s = user %d, %d cents, node %s; journal: user %d, %d cents, node %s",
				c.ClaimID, c.User, c.Amount, c.Node, w.User, w.Amount, w.Node)
		}
		seen[c.ClaimID] = true
	}
	if len(seen) != len(want) {
		for id := range want {
			if !seen[id] {
				a.fail("journaled claim %s is not in the credit stream (%d of %d credited)", id, len(seen), len(want))
				break
			}
		}
	}
}
