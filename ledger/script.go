package ledger

import (
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// applyScript applies one flush batch atomically, exactly once.
//
// KEYS: 1 totals, 2 flushed, 3 nodes, 4 credits.
// ARGV: 1 marker field, 2 prev (the marker the batch was read after), 3 first seq, 4 last seq,
// 5 count, 6 amount, 7 max, 8 node, 9 incarnation (16 lowercase hex), 10 claims (the batch's
// "seq:user_id:amount" items joined by ',', built by flushBatch).
//
// It refuses the batch (returns {0, marker}) unless the marker still equals prev and the batch's
// first sequence is above it; otherwise it adds the batch to the totals and the node's fields,
// appends one credit entry holding every claim of the batch, sets the marker to the last
// sequence and returns {1, last}. Key types are checked before the first write, so a wrong-typed
// key fails the call without a partial apply. Applying a batch deletes the node's leftover
// record: a node that flushes a claim has come back and served, so what it recorded when it
// left is superseded.
//
// One entry per batch instead of one per claim, and no per-user keys, is what keeps Redis under
// a µs of CPU per claim: writes per claim (an XADD and a HINCRBY each) cost Redis 2-4 µs per
// claim, while this call costs about 16 µs whatever the batch's size up to a few dozen claims
// (the round trip and the script), so from about 20 claims a batch it is under a µs per claim
// (BenchmarkFlush reports redis-µs/claim).
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
redis.call('XADD', KEYS[4], '*', 'node', ARGV[8], 'incarnation', ARGV[9], 'claims', ARGV[10])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
return {1, ARGV[4]}
`)

// flushBatch aggregates consecutive records of one rain for one applyScript call. It is reused,
// buffers included, so a batch allocates nothing per claim.
//
// The claims field is the batch's size in Redis: an item is at most 56 bytes (20 + 20 + 13
// digits, two colons, a comma) and MaxFlushBatch is 10000, so one entry, and this buffer, stay
// under 600 KB; at the default 1000 claims, under 60 KB.
type flushBatch struct {
	code              string
	prev, first, last uint64
	count, amount     int64
	max               int64
	claims            []byte // "seq:user_id:amount" items joined by ','
	inc               []byte // the incarnation as 16 lowercase hex
	keys              []string
	args              []any
}

func (b *flushBatch) reset(code string, prev uint64) {
	b.code, b.prev, b.first, b.last = code, prev, 0, 0
	b.count, b.amount, b.max = 0, 0, 0
	b.claims = b.claims[:0]
}

// add takes the record with sequence seq; records come in ascending seq (Journal.Scan).
func (b *flushBatch) add(seq uint64, r Record) {
	if b.count == 0 {
		b.first = seq
	} else {
		b.claims = append(b.claims, ',')
	}
	b.last = seq
	b.count++
	b.amount += r.Amount
	b.max = max(b.max, r.Amount)
	b.claims = appendClaimItem(b.claims, seq, r.User, r.Amount)
}

// build fills keys and args for applyScript. They alias the batch's buffers: use them before
// the next reset.
func (b *flushBatch) build(field, node string, incarnation uint64) ([]string, []any) {
	k := Keys(b.code)
	b.inc = appendHex16(b.inc[:0], incarnation)
	clear(b.args)
	b.keys = append(b.keys[:0], k.Totals, k.Flushed, k.Nodes, k.Credits)
	b.args = append(b.args[:0], field, b.prev, b.first, b.last, b.count, b.amount, b.max, node, b.inc, b.claims)
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
