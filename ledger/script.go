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

// Batch is one flush call: consecutive claims of one rain, applied exactly once (see applyScript
// for the rule a Sink follows). Claims aliases the flusher's buffer: use it before Apply returns.
type Batch struct {
	Code              string
	Field             string // the journal's marker field (MarkerField)
	Node              string
	Incarnation       uint64
	Prev, First, Last uint64 // the marker it was read after; its first and last sequence
	Count, Amount     int64
	Max               int64
	Claims            []byte // "seq:user_id:amount" items joined by ','
}

// flushBatch aggregates consecutive records of one rain for one Sink.Apply call. It is reused,
// buffers included, so a batch allocates nothing per claim.
//
// The claims field is the batch's size in Redis: an item is at most 56 bytes (20 + 20 + 13
// digits, two colons, a comma) and MaxFlushBatch is 10000, so one entry, and this buffer, stay
// under 600 KB; at the default 1000 claims, under 60 KB.
type flushBatch struct {
	Batch
}

func (b *flushBatch) reset(code string, prev uint64) {
	b.Code, b.Prev, b.First, b.Last = code, prev, 0, 0
	b.Count, b.Amount, b.Max = 0, 0, 0
	b.Claims = b.Claims[:0]
}

// add takes the record with sequence seq; records come in ascending seq (Journal.Scan).
func (b *flushBatch) add(seq uint64, r Record) {
	if b.Count == 0 {
		b.First = seq
	} else {
		b.Claims = append(b.Claims, ',')
	}
	b.Last = seq
	b.Count++
	b.Amount += r.Amount
	b.Max = max(b.Max, r.Amount)
	b.Claims = appendClaimItem(b.Claims, seq, r.User, r.Amount)
}

// build fills the batch's journal fields and returns applyScript's keys and args.
func (b *flushBatch) build(field, node string, incarnation uint64) ([]string, []any) {
	b.Field, b.Node, b.Incarnation = field, node, incarnation
	return b.scriptArgs()
}

// scriptArgs returns keys and args for applyScript.
func (b *Batch) scriptArgs() ([]string, []any) {
	k := Keys(b.Code)
	keys := []string{k.Totals, k.Flushed, k.Nodes, k.Credits}
	args := []any{b.Field, b.Prev, b.First, b.Last, b.Count, b.Amount, b.Max, b.Node, appendHex16(nil, b.Incarnation), b.Claims}
	return keys, args
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
