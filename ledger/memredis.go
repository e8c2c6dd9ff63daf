package ledger

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
)

// MemRedis is an in-memory RedisClient for unit tests: the same calls with the same rules (a
// batch applied only after the marker it was read after, totals and the node's fields moved
// with it, one credit entry per batch, a flush deleting the node's leftover record, a re-assert
// written only where the marker is behind), without a redis-server. Integration tests keep the
// real thing. Its methods are safe for concurrent use; the zero value is not: use NewMemRedis.
type MemRedis struct {
	mu    sync.Mutex
	rains map[string]*memRain
}

// memRain is one rain's keys.
type memRain struct {
	totals  RainTotals
	flushed map[string]uint64 // marker field -> last sequence applied
	nodes   map[string]int64  // "<node>:<field>" -> value, as the nodes hash
	credits []memEntry
	acked   map[string]int // consumer group -> entries acknowledged
}

// memEntry is one credit-stream entry.
type memEntry struct{ node, incarnation, claims string }

// NewMemRedis returns an empty in-memory Redis.
func NewMemRedis() *MemRedis { return &MemRedis{rains: map[string]*memRain{}} }

// rain returns the rain's keys, creating them. Called under m.mu.
func (m *MemRedis) rain(code string) *memRain {
	r := m.rains[code]
	if r == nil {
		r = &memRain{flushed: map[string]uint64{}, nodes: map[string]int64{}, acked: map[string]int{}}
		m.rains[code] = r
	}
	return r
}

// ReadMarker returns the journal's marker of the rain; 0 if none.
func (m *MemRedis) ReadMarker(_ context.Context, code, node string, incarnation uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rain(code).flushed[MarkerField(node, incarnation)], nil
}

// Apply applies b as applyScript does.
func (m *MemRedis) Apply(_ context.Context, b *Batch) (applied bool, marker uint64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rain(b.Code)
	cur := r.flushed[b.Field]
	if cur != b.Prev || b.First <= cur {
		return false, cur, nil
	}
	r.totals.ClaimedCount += b.Count
	r.totals.ClaimedAmount += b.Amount
	r.totals.MaxAmount = max(r.totals.MaxAmount, b.Max)
	r.nodes[b.Node+":"+FieldClaimedCount] += b.Count
	r.nodes[b.Node+":"+FieldClaimedAmount] += b.Amount
	delete(r.nodes, b.Node+":"+FieldLeftoverAmount)
	delete(r.nodes, b.Node+":"+FieldLeftoverAt)
	r.credits = append(r.credits, memEntry{node: b.Node, incarnation: string(appendHex16(nil, b.Incarnation)),
		claims: string(b.Claims)})
	r.flushed[b.Field] = b.Last
	return true, b.Last, nil
}

// RecordLeftover sets the node's leftover record, stamped with its flushed claimed count.
func (m *MemRedis) RecordLeftover(_ context.Context, code, node string, amount int64) error {
	if amount < 0 {
		return fmt.Errorf("ledger: leftover %d < 0", amount)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rain(code)
	r.nodes[node+":"+FieldLeftoverAmount] = amount
	r.nodes[node+":"+FieldLeftoverAt] = r.nodes[node+":"+FieldClaimedCount]
	return nil
}

// ClearLeftover deletes the node's leftover record.
func (m *MemRedis) ClearLeftover(_ context.Context, code, node string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rain(code)
	delete(r.nodes, node+":"+FieldLeftoverAmount)
	delete(r.nodes, node+":"+FieldLeftoverAt)
	return nil
}

// Reassert puts the tombstone back as reassertScript does.
func (m *MemRedis) Reassert(_ context.Context, code, node string, incarnation uint64, t Tombstone) (bool, error) {
	if t.Count == 0 && !t.HasLeftover {
		return false, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rain(code)
	field := MarkerField(node, incarnation)
	if cur, ok := r.flushed[field]; ok && cur >= t.LastSeq {
		return false, nil
	}
	r.totals.ClaimedCount += t.Count - r.nodes[node+":"+FieldClaimedCount]
	r.totals.ClaimedAmount += t.Amount - r.nodes[node+":"+FieldClaimedAmount]
	r.totals.MaxAmount = max(r.totals.MaxAmount, t.Max)
	r.nodes[node+":"+FieldClaimedCount], r.nodes[node+":"+FieldClaimedAmount] = t.Count, t.Amount
	if t.HasLeftover {
		r.nodes[node+":"+FieldLeftoverAmount], r.nodes[node+":"+FieldLeftoverAt] = t.Leftover, t.Count
	}
	r.flushed[field] = t.LastSeq
	return true, nil
}

// WalletAcked reports whether group has acknowledged every credit entry of the rain (see Ack).
func (m *MemRedis) WalletAcked(_ context.Context, code, group string) (ok bool, why string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rains[code]
	if r == nil || len(r.credits) == 0 {
		return false, "the credit stream is missing", nil
	}
	n, has := r.acked[group]
	switch {
	case !has:
		return false, fmt.Sprintf("no consumer group %q on the credit stream", group), nil
	case n < len(r.credits):
		return false, fmt.Sprintf("group %q has %d entries not acknowledged", group, len(r.credits)-n), nil
	}
	return true, "", nil
}

// Ack makes group (created if missing) acknowledge the rain's credit entries but the last
// unacked: the in-memory stand-in for a wallet reading the stream.
func (m *MemRedis) Ack(code, group string, unacked int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rain(code)
	r.acked[group] = max(0, len(r.credits)-unacked)
}

// ReadTotals returns the rain's totals; all zeros if none.
func (m *MemRedis) ReadTotals(_ context.Context, code string) (RainTotals, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.rains[code]; r != nil {
		return r.totals, nil
	}
	return RainTotals{}, nil
}

// ReadNodes returns the rain's nodes hash, by node id.
func (m *MemRedis) ReadNodes(_ context.Context, code string) (map[string]NodeTotals, error) {
	m.mu.Lock()
	h := map[string]string{}
	if r := m.rains[code]; r != nil {
		for f, v := range r.nodes {
			h[f] = strconv.FormatInt(v, 10)
		}
	}
	m.mu.Unlock()
	return parseNodes(code, h)
}

// ReadCredits returns every claim of the rain's credit entries, entry by entry.
func (m *MemRedis) ReadCredits(_ context.Context, code string) ([]Credit, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Credit
	if r := m.rains[code]; r != nil {
		for i, e := range r.credits {
			var err error
			if out, err = AppendCredits(out, e.node, e.incarnation, e.claims); err != nil {
				return nil, fmt.Errorf("ledger: credit entry %d: %w", i, err)
			}
		}
	}
	return out, nil
}

// Clone returns a copy of everything m holds: a snapshot to roll back to (a Redis restored
// from an older RDB file), as the simulator does.
func (m *MemRedis) Clone() *MemRedis {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMemRedis()
	for code, r := range m.rains {
		c.rains[code] = &memRain{totals: r.totals, flushed: maps.Clone(r.flushed), nodes: maps.Clone(r.nodes),
			credits: slices.Clone(r.credits), acked: maps.Clone(r.acked)}
	}
	return c
}

// FlushAll forgets everything, as FLUSHALL (Redis wiped).
func (m *MemRedis) FlushAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.rains)
}

// Close does nothing.
func (m *MemRedis) Close() error { return nil }
