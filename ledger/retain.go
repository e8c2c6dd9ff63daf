package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Tombstone is what a compacted rain leaves of one journal's claims: enough to put the journal's
// share of the rain back into Redis after Redis lost it, without the records.
type Tombstone struct {
	Count       int64  `json:"count"`    // claims journaled (all flushed before compaction)
	Amount      int64  `json:"amount"`   // their sum
	Max         int64  `json:"max"`      // the largest
	LastSeq     uint64 `json:"last_seq"` // the marker that covers them all
	Leftover    int64  `json:"leftover"` // the node's unclaimed remainder, recorded as its leftover
	HasLeftover bool   `json:"has_leftover"`
}

// reassertScript puts a compacted journal's share of a rain back into Redis, once: unless the
// marker already covers the tombstone, it makes the nodes hash say the tombstone's figures,
// moves the totals by the difference (so the other nodes' shares are untouched, after a wipe as
// after a rollback to an older snapshot: the nodes hash and the totals roll back together), sets
// the leftover record and the marker. Returns 1 if it wrote, 0 if nothing was missing.
//
// KEYS: 1 totals, 2 flushed, 3 nodes. ARGV: 1 marker field, 2 last seq, 3 node, 4 count,
// 5 amount, 6 max, 7 has leftover (0/1), 8 leftover.
var reassertScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur and tonumber(cur) >= tonumber(ARGV[2]) then
  return 0
end
local nc = tonumber(redis.call('HGET', KEYS[3], ARGV[3] .. ':claimed_count') or '0')
local na = tonumber(redis.call('HGET', KEYS[3], ARGV[3] .. ':claimed_amount') or '0')
redis.call('HINCRBY', KEYS[1], 'claimed_count', tonumber(ARGV[4]) - nc)
redis.call('HINCRBY', KEYS[1], 'claimed_amount', tonumber(ARGV[5]) - na)
local mx = redis.call('HGET', KEYS[1], 'max_amount')
if (not mx) or tonumber(ARGV[6]) > tonumber(mx) then
  redis.call('HSET', KEYS[1], 'max_amount', ARGV[6])
end
redis.call('HSET', KEYS[3], ARGV[3] .. ':claimed_count', ARGV[4], ARGV[3] .. ':claimed_amount', ARGV[5])
if ARGV[7] == '1' then
  redis.call('HSET', KEYS[3], ARGV[3] .. ':leftover_amount', ARGV[8], ARGV[3] .. ':leftover_at', ARGV[4])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`)

// Reassert puts a compacted rain's tombstone back into Redis if Redis lost it (the journal's
// marker is missing or behind the tombstone's last sequence): the totals, the node's fields in
// the nodes hash and its leftover record. The credit stream is not rebuilt: compaction waited for
// the wallet to acknowledge every entry. wrote reports whether anything was missing.
func Reassert(ctx context.Context, rdb redis.UniversalClient, code, node string, incarnation uint64, t Tombstone) (wrote bool, err error) {
	if t.Count == 0 && !t.HasLeftover {
		return false, nil
	}
	k := Keys(code)
	has := 0
	if t.HasLeftover {
		has = 1
	}
	n, err := reassertScript.Run(ctx, rdb, []string{k.Totals, k.Flushed, k.Nodes}, MarkerField(node, incarnation),
		strconv.FormatUint(t.LastSeq, 10), node, t.Count, t.Amount, t.Max, has, t.Leftover).Int()
	if err != nil {
		return false, fmt.Errorf("ledger: reassert %s: %w", code, err)
	}
	return n == 1, nil
}

// WalletAcked reports whether consumer group group of the rain's credit stream has acknowledged
// every entry the stream holds now: its last delivered id is at or past the stream's last id and
// no entry up to that id is pending. Call it after the journal's claims of the rain are all
// flushed, so every entry holding them is in the stream before the check. When it is false, why
// says what the wallet still owes ("no consumer group ...", "... not delivered", "... pending").
func WalletAcked(ctx context.Context, rdb redis.UniversalClient, code, group string) (ok bool, why string, err error) {
	key := Keys(code).Credits
	info, err := rdb.XInfoStream(ctx, key).Result()
	if isNoSuchKey(err) {
		return false, "the credit stream is missing", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("ledger: credit stream of %s: %w", code, err)
	}
	groups, err := rdb.XInfoGroups(ctx, key).Result()
	if err != nil {
		return false, "", fmt.Errorf("ledger: consumer groups of %s: %w", code, err)
	}
	for _, g := range groups {
		if g.Name != group {
			continue
		}
		last := info.LastGeneratedID
		if cmpStreamID(g.LastDeliveredID, last) < 0 {
			return false, fmt.Sprintf("group %q has not been delivered up to %s (at %s)", group, last, g.LastDeliveredID), nil
		}
		if g.Pending == 0 {
			return true, "", nil
		}
		p, err := rdb.XPending(ctx, key, group).Result()
		if err != nil {
			return false, "", fmt.Errorf("ledger: pending of %s: %w", code, err)
		}
		if p.Count > 0 && cmpStreamID(p.Lower, last) <= 0 {
			return false, fmt.Sprintf("group %q has %d pending entries from %s", group, p.Count, p.Lower), nil
		}
		return true, "", nil
	}
	return false, fmt.Sprintf("no consumer group %q on the credit stream", group), nil
}

func isNoSuchKey(err error) bool {
	return err != nil && !errors.Is(err, redis.Nil) && strings.Contains(err.Error(), "no such key")
}

// cmpStreamID compares two stream ids "ms-seq" numerically: -1, 0 or 1. A malformed id sorts
// first, so it never counts as delivered.
func cmpStreamID(a, b string) int {
	am, as, aok := splitStreamID(a)
	bm, bs, bok := splitStreamID(b)
	switch {
	case !aok || !bok:
		if aok == bok {
			return 0
		}
		if !aok {
			return -1
		}
		return 1
	case am != bm:
		return cmp.Compare(am, bm)
	default:
		return cmp.Compare(as, bs)
	}
}

func splitStreamID(id string) (ms, seq uint64, ok bool) {
	a, b, found := strings.Cut(id, "-")
	ms, err1 := strconv.ParseUint(a, 10, 64)
	if !found {
		return ms, 0, err1 == nil
	}
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}
