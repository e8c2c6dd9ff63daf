package ledger

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// MoveTotal adds up the stock moved between a node and one peer (see rain.Move).
type MoveTotal struct {
	Peer   string
	Count  int64
	Amount int64
}

// Move directions, as they appear in the nodes hash: field "<node>:moved_<dir>.<peer>.count"
// and ".amount" (node ids have no ':' or '.').
const (
	MovedIn  = "in"
	MovedOut = "out"
)

// recordMovesScript raises a node's move fields to the values given, never lowering one: the
// figures only grow, so a late or repeated write cannot undo a newer one. KEYS: 1 nodes.
// ARGV: node, then (dir, peer, count, amount) repeated.
var recordMovesScript = redis.NewScript(`
for i = 2, #ARGV, 4 do
  local base = ARGV[1] .. ':moved_' .. ARGV[i] .. '.' .. ARGV[i+1]
  local fields = {base .. '.count', base .. '.amount'}
  local vals = {tonumber(ARGV[i+2]), tonumber(ARGV[i+3])}
  for j = 1, 2 do
    local cur = tonumber(redis.call('HGET', KEYS[1], fields[j]) or '0')
    if vals[j] > cur then redis.call('HSET', KEYS[1], fields[j], vals[j]) end
  end
end
return 1
`)

// RecordMoves stores the node's stock moves of the rain, per peer, in the rain's nodes hash, so
// the report knows them while the node is dead. Idempotent; figures are only raised.
func RecordMoves(ctx context.Context, rdb redis.UniversalClient, code, node string, in, out []MoveTotal) error {
	if err := checkMoveTotals(in, out); err != nil {
		return err
	}
	args := []any{node}
	for _, m := range in {
		args = append(args, MovedIn, m.Peer, m.Count, m.Amount)
	}
	for _, m := range out {
		args = append(args, MovedOut, m.Peer, m.Count, m.Amount)
	}
	if len(args) == 1 {
		return nil
	}
	if err := recordMovesScript.Run(ctx, rdb, []string{Keys(code).Nodes}, args...).Err(); err != nil {
		return fmt.Errorf("ledger: record moves of %s: %w", code, err)
	}
	return nil
}

// checkMoveTotals refuses negative figures and peer ids that would break the field names.
func checkMoveTotals(in, out []MoveTotal) error {
	for _, m := range append(slices.Clip(in), out...) {
		if m.Count < 0 || m.Amount < 0 || strings.ContainsAny(m.Peer, ":.") || m.Peer == "" {
			return fmt.Errorf("ledger: bad move total %+v", m)
		}
	}
	return nil
}

// RecordMoves: see the function RecordMoves.
func (c *RedisClient) RecordMoves(ctx context.Context, code, node string, in, out []MoveTotal) error {
	return RecordMoves(ctx, c.rdb, code, node, in, out)
}

// RecordMoves raises the node's move fields as recordMovesScript does.
func (m *MemRedis) RecordMoves(_ context.Context, code, node string, in, out []MoveTotal) error {
	if err := checkMoveTotals(in, out); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rain(code)
	for dir, ms := range map[string][]MoveTotal{MovedIn: in, MovedOut: out} {
		for _, mt := range ms {
			base := node + ":moved_" + dir + "." + mt.Peer
			r.nodes[base+".count"] = max(r.nodes[base+".count"], mt.Count)
			r.nodes[base+".amount"] = max(r.nodes[base+".amount"], mt.Amount)
		}
	}
	return nil
}

// parseMoveField reads the part of a nodes-hash field after "<node>:" as a move figure:
// "moved_<dir>.<peer>.<count|amount>".
func parseMoveField(name string) (dir, peer, what string, ok bool) {
	rest, found := strings.CutPrefix(name, "moved_")
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 || (parts[0] != MovedIn && parts[0] != MovedOut) || parts[1] == "" ||
		(parts[2] != "count" && parts[2] != "amount") {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// addMove notes one move figure in t.
func (t *NodeTotals) addMove(dir, peer, what string, n int64) {
	list := &t.MovedIn
	if dir == MovedOut {
		list = &t.MovedOut
	}
	i := 0
	for i < len(*list) && (*list)[i].Peer != peer {
		i++
	}
	if i == len(*list) {
		*list = append(*list, MoveTotal{Peer: peer})
	}
	if what == "count" {
		(*list)[i].Count = n
	} else {
		(*list)[i].Amount = n
	}
}
