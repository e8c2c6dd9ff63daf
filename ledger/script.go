package ledger

import (
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// applyScript applies one flush batch atomically, exactly once.
//
// KEYS: 1 totals, 2 flushed, 3 nodes, 4 credits, 5.. the users hashes the batch touches.
// ARGV: 1 marker field, 2 prev (the marker the batch was read after), 3 first seq, 4 last seq,
// 5 count, 6 amount, 7 max, 8 node, 9 number of credits n, then n x (claim_id, user_id, amount),
// then for each users key: number of users m, then m x (user_id, sum).
//
// It refuses the batch (returns {0, marker}) unless the marker still equals prev and the batch's
// first sequence is above it; otherwise it applies everything, sets the marker to the last
// sequence and returns {1, last}. Key types are checked before the first write, so a wrong-typed
// key fails the call without a partial apply. Applying a batch deletes the node's leftover
// record: a node that flushes a claim has come back and served, so what it recorded when it
// left is superseded.
var applyScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if not cur then cur = '0' end
if cur ~= ARGV[2] or tonumber(ARGV[3]) <= tonumber(cur) then
  return {0, cur}
end
for k = 1, #KEYS do
  local want = 'hash'
  if k == 4 then want = 'stream' end
  local t = redis.call('TYPE', KEYS[k])['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('redrain: key ' .. KEYS[k] .. ' is a ' .. t .. ', want ' .. want)
  end
end
redis.call('HINCRBY', KEYS[1], 'claimed_count', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'claimed_amount', ARGV[6])
local mx = redis.call('HGET', KEYS[1], 'max_amount')
if (not mx) or tonumber(ARGV[7]) > tonumber(mx) then
  redis.call('HSET', KEYS[1], 'max_amount', ARGV[7])
end
redis.call('HINCRBY', KEYS[3], ARGV[8] .. ':claimed_count', ARGV[5])
redis.call('HINCRBY', KEYS[3], ARGV[8] .. ':claimed_amount', ARGV[6])
redis.call('HDEL', KEYS[3], ARGV[8] .. ':leftover_amount', ARGV[8] .. ':leftover_at')
local i = 10
for _ = 1, tonumber(ARGV[9]) do
  redis.call('XADD', KEYS[4], '*', 'claim_id', ARGV[i], 'user_id', ARGV[i+1], 'amount', ARGV[i+2], 'node', ARGV[8])
  i = i + 3
end
for k = 5, #KEYS do
  local m = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, m do
    redis.call('HINCRBY', KEYS[k], ARGV[i], ARGV[i+1])
    i = i + 2
  end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
return {1, ARGV[4]}
`)

// flushBatch aggregates consecutive records of one rain for one applyScript call. It is reused.
type flushBatch struct {
	code              string
	prev, first, last uint64
	count, amount     int64
	max               int64
	oldest            int64 // UnixNano of the first record
	users             map[uint64]int64
	shards            [UserShards][]uint64
	credits           []any
	keys              []string
	args              []any
	idBuf             []byte
}

func (b *flushBatch) reset(code string, prev uint64) {
	b.code, b.prev, b.first, b.last = code, prev, 0, 0
	b.count, b.amount, b.max, b.oldest = 0, 0, 0, 0
	if b.users == nil {
		b.users = map[uint64]int64{}
	}
	clear(b.users)
	for i := range b.shards {
		b.shards[i] = b.shards[i][:0]
	}
	clear(b.credits)
	b.credits = b.credits[:0]
}

// add takes one record; node and incarnation make its claim id.
func (b *flushBatch) add(seq uint64, r Record, node string, incarnation uint64) {
	if b.count == 0 {
		b.first, b.oldest = seq, r.UnixNano
	}
	b.last = seq
	b.count++
	b.amount += r.Amount
	b.max = max(b.max, r.Amount)
	if _, ok := b.users[r.User]; !ok {
		s := r.User % UserShards
		b.shards[s] = append(b.shards[s], r.User)
	}
	b.users[r.User] += r.Amount
	b.idBuf = AppendClaimID(b.idBuf[:0], node, incarnation, seq)
	b.credits = append(b.credits, string(b.idBuf), strconv.FormatUint(r.User, 10), strconv.FormatInt(r.Amount, 10))
}

// build fills keys and args for applyScript.
func (b *flushBatch) build(field, node string) ([]string, []any) {
	k := Keys(b.code)
	clear(b.args)
	b.keys = append(b.keys[:0], k.Totals, k.Flushed, k.Nodes, k.Credits)
	b.args = append(b.args[:0], field, strconv.FormatUint(b.prev, 10), strconv.FormatUint(b.first, 10),
		strconv.FormatUint(b.last, 10), b.count, b.amount, b.max, node, len(b.credits)/3)
	b.args = append(b.args, b.credits...)
	for s, users := range b.shards {
		if len(users) == 0 {
			continue
		}
		b.keys = append(b.keys, k.UsersShard(uint8(s)))
		b.args = append(b.args, len(users))
		for _, u := range users {
			b.args = append(b.args, strconv.FormatUint(u, 10), b.users[u])
		}
	}
	return b.keys, b.args
}

// parseApply reads applyScript's reply: applied, and the marker after the call.
func parseApply(v any) (applied bool, marker uint64, err error) {
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return false, 0, fmt.Errorf("ledger: flush script replied %#v", v)
	}
	flag, ok1 := a[0].(int64)
	s, ok2 := a[1].(string)
	if !ok1 || !ok2 {
		return false, 0, fmt.Errorf("ledger: flush script replied %#v", v)
	}
	marker, err = strconv.ParseUint(s, 10, 64)
	if err != nil {
		return false, 0, fmt.Errorf("ledger: flush script marker %q: %w", s, err)
	}
	return flag == 1, marker, nil
}
