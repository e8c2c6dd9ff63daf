package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The ledger's Redis API: the keys and fields of a rain, and reading and writing them (totals,
// per-node totals, leftovers, flush markers). The flush itself is script.go.

// RainsKey is the ZSET of started rains (code -> start unix seconds), written by the coordinator.
const RainsKey = "redrain:rains"

// Fields of the totals and nodes hashes and of credit-stream entries (SPEC.md "Redis").
const (
	FieldClaimedCount   = "claimed_count"
	FieldClaimedAmount  = "claimed_amount"
	FieldMaxAmount      = "max_amount"
	FieldLeftoverAmount = "leftover_amount"
	// FieldLeftoverAt is the node's flushed claimed_count when it recorded its leftover: the
	// record is current only while that count has not moved (see NodeTotals.Leftover).
	FieldLeftoverAt = "leftover_at"
	// FieldNode, FieldIncarnation and FieldClaims are the fields of a credit-stream entry (one
	// flush batch; see DecodeCredits).
	FieldNode        = "node"
	FieldIncarnation = "incarnation"
	FieldClaims      = "claims"
)

// RainKeys are a rain's Redis keys; all share the hash tag {CODE}, so one Lua call covers them
// on Redis Cluster too.
type RainKeys struct {
	Totals  string // HASH claimed_count, claimed_amount, max_amount
	Flushed string // HASH "<node>.<incarnation>" -> last sequence applied
	Nodes   string // HASH "<node>:claimed_count", "<node>:claimed_amount", "<node>:leftover_amount", "<node>:leftover_at"
	Credits string // STREAM, one entry per flush batch: node, incarnation, claims (DecodeCredits)
}

// Keys returns the rain's keys.
func Keys(code string) RainKeys {
	p := "redrain:{" + code + "}:"
	return RainKeys{Totals: p + "totals", Flushed: p + "flushed", Nodes: p + "nodes", Credits: p + "credits"}
}

// MarkerField is the flushed-hash field of a journal: "<node>.<incarnation as 16 lowercase hex>".
func MarkerField(node string, incarnation uint64) string {
	return string(appendHex16(append([]byte(node), '.'), incarnation))
}

// RainTotals are a rain's totals in Redis (what has been flushed).
type RainTotals struct{ ClaimedCount, ClaimedAmount, MaxAmount int64 }

// ReadTotals reads the rain's totals hash; a missing hash is all zeros.
func ReadTotals(ctx context.Context, rdb redis.UniversalClient, code string) (RainTotals, error) {
	m, err := rdb.HGetAll(ctx, Keys(code).Totals).Result()
	if err != nil {
		return RainTotals{}, fmt.Errorf("ledger: read totals of %s: %w", code, err)
	}
	var t RainTotals
	for f, p := range map[string]*int64{FieldClaimedCount: &t.ClaimedCount, FieldClaimedAmount: &t.ClaimedAmount, FieldMaxAmount: &t.MaxAmount} {
		if *p, err = parseField(m, f); err != nil {
			return RainTotals{}, fmt.Errorf("ledger: totals of %s: %w", code, err)
		}
	}
	return t, nil
}

// NodeTotals are what one node has flushed of a rain, and the leftover it recorded when it
// left (or compacted the rain) with the claimed count it had flushed then.
type NodeTotals struct {
	ClaimedCount, ClaimedAmount int64
	LeftoverAmount, LeftoverAt  int64
	HasLeftover, HasLeftoverAt  bool
	MovedIn, MovedOut           []MoveTotal // stock moves the node recorded (RecordMoves), per peer
}

// Leftover returns the node's recorded leftover if the record is current: both of its fields
// are there and the node has flushed no claim since it was written (every flush deletes the
// record, and a count that moved on means a node that came back and served). A stale or half
// record is never read as current.
func (t NodeTotals) Leftover() (int64, bool) {
	if !t.HasLeftover || !t.HasLeftoverAt || t.LeftoverAt != t.ClaimedCount || t.LeftoverAmount < 0 {
		return 0, false
	}
	return t.LeftoverAmount, true
}

// ReadNodes reads the rain's nodes hash, by node id.
func ReadNodes(ctx context.Context, rdb redis.UniversalClient, code string) (map[string]NodeTotals, error) {
	m, err := rdb.HGetAll(ctx, Keys(code).Nodes).Result()
	if err != nil {
		return nil, fmt.Errorf("ledger: read nodes of %s: %w", code, err)
	}
	return parseNodes(code, m)
}

// parseNodes reads a nodes hash's fields (HGETALL's answer), by node id.
func parseNodes(code string, m map[string]string) (map[string]NodeTotals, error) {
	out := map[string]NodeTotals{}
	for f, v := range m {
		i := strings.LastIndexByte(f, ':')
		if i < 0 {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("ledger: nodes of %s: field %s: %w", code, f, err)
		}
		node, t := f[:i], out[f[:i]]
		switch f[i+1:] {
		case FieldClaimedCount:
			t.ClaimedCount = n
		case FieldClaimedAmount:
			t.ClaimedAmount = n
		case FieldLeftoverAmount:
			t.LeftoverAmount, t.HasLeftover = n, true
		case FieldLeftoverAt:
			t.LeftoverAt, t.HasLeftoverAt = n, true
		default:
			dir, peer, what, ok := parseMoveField(f[i+1:])
			if !ok {
				continue
			}
			t.addMove(dir, peer, what, n)
		}
		out[node] = t
	}
	return out, nil
}

// recordLeftoverScript sets a node's leftover record: the amount and, read in the same atomic
// step, the node's flushed claimed_count. KEYS: 1 nodes. ARGV: 1 node, 2 amount.
var recordLeftoverScript = redis.NewScript(`
local at = redis.call('HGET', KEYS[1], ARGV[1] .. ':claimed_count')
if not at then at = '0' end
redis.call('HSET', KEYS[1], ARGV[1] .. ':leftover_amount', ARGV[2], ARGV[1] .. ':leftover_at', at)
return at
`)

// RecordLeftover stores the node's unclaimed remainder of the rain (a graceful leave, or a
// compaction), stamped with the claimed count the node has flushed. Call it only once
// everything the node journaled of the rain is flushed. It is idempotent: the fields are set,
// not added to.
func RecordLeftover(ctx context.Context, rdb redis.UniversalClient, code, node string, amount int64) error {
	if amount < 0 {
		return fmt.Errorf("ledger: leftover %d < 0", amount)
	}
	if err := recordLeftoverScript.Run(ctx, rdb, []string{Keys(code).Nodes}, node, amount).Err(); err != nil {
		return fmt.Errorf("ledger: record leftover of %s: %w", code, err)
	}
	return nil
}

// ClearLeftover deletes the node's leftover record of the rain: a node that comes back to serve
// the rain again does so before it serves, so the record cannot count packets it pays.
func ClearLeftover(ctx context.Context, rdb redis.UniversalClient, code, node string) error {
	err := rdb.HDel(ctx, Keys(code).Nodes, node+":"+FieldLeftoverAmount, node+":"+FieldLeftoverAt).Err()
	if err != nil {
		return fmt.Errorf("ledger: clear leftover of %s: %w", code, err)
	}
	return nil
}

// ReadMarker returns the last sequence of the journal (node, incarnation) applied to the rain;
// 0 if none.
func ReadMarker(ctx context.Context, rdb redis.UniversalClient, code, node string, incarnation uint64) (uint64, error) {
	v, err := rdb.HGet(ctx, Keys(code).Flushed, MarkerField(node, incarnation)).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("ledger: read marker of %s: %w", code, err)
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("ledger: marker of %s is %q: %w", code, v, err)
	}
	return seq, nil
}

func parseField(m map[string]string, f string) (int64, error) {
	v, ok := m[f]
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field %s = %q: %w", f, v, err)
	}
	return n, nil
}
