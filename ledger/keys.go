package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RainsKey is the ZSET of started rains (code -> start unix seconds), written by the coordinator.
const RainsKey = "redrain:rains"

// UserShards is the number of redrain:{CODE}:users:NN hashes.
const UserShards = 256

// Fields of the totals and nodes hashes and of credit-stream entries (SPEC.md "Redis").
const (
	FieldClaimedCount   = "claimed_count"
	FieldClaimedAmount  = "claimed_amount"
	FieldMaxAmount      = "max_amount"
	FieldLeftoverAmount = "leftover_amount"
)

// RainKeys are a rain's Redis keys; all share the hash tag {CODE}, so one Lua call covers them
// on Redis Cluster too.
type RainKeys struct {
	Totals  string // HASH claimed_count, claimed_amount, max_amount
	Flushed string // HASH "<node>.<incarnation>" -> last sequence applied
	Nodes   string // HASH "<node>:claimed_count", "<node>:claimed_amount", "<node>:leftover_amount"
	Credits string // STREAM claim_id, user_id, amount, node
	prefix  string
}

// Keys returns the rain's keys.
func Keys(code string) RainKeys {
	p := "redrain:{" + code + "}:"
	return RainKeys{Totals: p + "totals", Flushed: p + "flushed", Nodes: p + "nodes", Credits: p + "credits", prefix: p}
}

// Users is the users hash holding user's sum: NN = user % 256 as two lowercase hex digits.
func (k RainKeys) Users(user uint64) string { return k.UsersShard(uint8(user % UserShards)) }

// UsersShard is the users hash of shard n.
func (k RainKeys) UsersShard(n uint8) string {
	const digits = "0123456789abcdef"
	return k.prefix + "users:" + string([]byte{digits[n>>4], digits[n&0xf]})
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

// NodeTotals are what one node has flushed of a rain, and the leftover it recorded on leaving.
type NodeTotals struct {
	ClaimedCount, ClaimedAmount, LeftoverAmount int64
	HasLeftover                                 bool
}

// ReadNodes reads the rain's nodes hash, by node id.
func ReadNodes(ctx context.Context, rdb redis.UniversalClient, code string) (map[string]NodeTotals, error) {
	m, err := rdb.HGetAll(ctx, Keys(code).Nodes).Result()
	if err != nil {
		return nil, fmt.Errorf("ledger: read nodes of %s: %w", code, err)
	}
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
		default:
			continue
		}
		out[node] = t
	}
	return out, nil
}

// RecordLeftover stores the node's unclaimed remainder of the rain (a graceful leave). It is
// idempotent: the field is set, not added to.
func RecordLeftover(ctx context.Context, rdb redis.UniversalClient, code, node string, amount int64) error {
	if amount < 0 {
		return fmt.Errorf("ledger: leftover %d < 0", amount)
	}
	if err := rdb.HSet(ctx, Keys(code).Nodes, node+":"+FieldLeftoverAmount, amount).Err(); err != nil {
		return fmt.Errorf("ledger: record leftover of %s: %w", code, err)
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
