package sim

import (
	"context"
	"errors"

	"redrain/ledger"
)

// redisModel is Redis as the nodes see it: ledger.MemRedis (the apply script's rules) that can
// refuse every call, be wiped, be rolled back to a snapshot, or lose the reply of an applied
// batch (go-redis sees an error; the script did run).
type redisModel struct {
	mem       *ledger.MemRedis
	down      bool
	readOnly  bool // reads work, every write is refused (OOM, a read-only replica)
	snaps     []*ledger.MemRedis
	loseReply bool // the next Apply applies, then fails
	dirty     bool // changed since the last check
}

var (
	errRedisDown = errors.New("sim: redis unavailable")
	errReplyLost = errors.New("sim: redis reply lost after the script ran")
	errReadOnly  = errors.New("sim: redis refuses writes")
)

// sink is one node's connection to Redis (ledger.Sink); a cut-off node cannot reach it.
type sink struct {
	w    *World
	node int
}

func (s sink) reachable() bool { return !s.w.redis.down && !s.w.nodes[s.node].cut }

func (s sink) writable() bool { return s.reachable() && !s.w.redis.readOnly }

func (s sink) ReadMarker(ctx context.Context, code, node string, inc uint64) (uint64, error) {
	if !s.reachable() {
		return 0, errRedisDown
	}
	return s.w.redis.mem.ReadMarker(ctx, code, node, inc)
}

func (s sink) Apply(ctx context.Context, b *ledger.Batch) (bool, uint64, error) {
	r := s.w.redis
	if !s.reachable() {
		return false, 0, errRedisDown
	}
	if r.readOnly {
		return false, 0, errReadOnly
	}
	if s.w.cfg.Bugs.FlushIgnoresMarker { // planted: the script applies whatever it is sent
		cur, _ := r.mem.ReadMarker(ctx, b.Code, b.Node, b.Incarnation)
		bb := *b
		bb.Prev, bb.First = cur, cur+1
		b = &bb
	}
	applied, marker, err := r.mem.Apply(ctx, b)
	r.dirty = r.dirty || applied
	if r.loseReply && err == nil {
		r.loseReply = false
		s.w.tracef("redis: reply of the batch %d..%d of %s lost (applied %v)", b.First, b.Last, b.Node, applied)
		return false, 0, errReplyLost
	}
	return applied, marker, err
}
