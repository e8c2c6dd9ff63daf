package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"redrain/gossip"
	"redrain/internal/wire"
	"redrain/rain"
)

// Errors of the rain operations; the admin API maps each to its status code and error word.
var (
	// ErrForbidden: anchor_id is not the rain's anchor (403 forbidden).
	ErrForbidden = errors.New("coordinator: anchor_id is not this rain's anchor")
	// ErrConflict: the rain is not in a status the operation applies to, or a prepare of it is
	// in flight (409 conflict). Wraps rain.ErrIllegalTransition when the state machine refused.
	ErrConflict = errors.New("coordinator: conflict")
	// ErrNoNodes: no live node to prepare on (503 no_nodes).
	ErrNoNodes = errors.New("coordinator: no live node")
	// ErrPrepareFailed: a slice was not acknowledged in time; the epoch was abandoned and the
	// rain is still waiting (503 prepare_failed).
	ErrPrepareFailed = errors.New("coordinator: prepare failed")
	// ErrRedis: Redis could not be read or written (503 redis_unavailable).
	ErrRedis = errors.New("coordinator: redis unavailable")
)

// CodeBytes is the randomness of a rain code: 128 bits, 22 characters of base64url.
const CodeBytes = 16

// newCode draws an unguessable, URL-safe rain code.
func newCode() string {
	var b [CodeBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("coordinator: crypto/rand failed: " + err.Error()) // never fails on supported OSes
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func randSeed() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("coordinator: crypto/rand failed: " + err.Error())
	}
	return binary.LittleEndian.Uint64(b[:])
}

// Create validates cfg (filling in defaults) and stores a new waiting rain. A validation
// failure is a *rain.FieldError naming the field.
func (c *Coordinator) Create(cfg rain.Config) (*Rain, error) {
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &record{Config: cfg, Status: rain.Waiting, CreatedAt: time.Now().UnixNano()}
	for range 3 { // 128 random bits: a collision is a broken random source
		r.Code = newCode()
		if err := c.store.create(r); !errors.Is(err, errCodeTaken) {
			if err != nil {
				return nil, err
			}
			return view(r, Totals{}), nil
		}
	}
	return nil, errCodeTaken
}

// Get returns a rain with its Redis totals.
func (c *Coordinator) Get(ctx context.Context, code string) (*Rain, error) {
	r, err := c.store.get(code)
	if err != nil {
		return nil, err
	}
	t, err := c.totals(ctx, r)
	if err != nil {
		return nil, err
	}
	return view(r, t), nil
}

// List returns the rains of anchor (0: any) in status (""; any), newest first, at most limit.
func (c *Coordinator) List(ctx context.Context, anchor int64, status rain.Status, limit int) ([]*Rain, error) {
	recs, err := c.store.list(filter{AnchorID: anchor, Status: status, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]*Rain, 0, len(recs))
	for _, r := range recs {
		t, err := c.totals(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, view(r, t))
	}
	return out, nil
}

// checkAnchor refuses another anchor's rain.
func checkAnchor(r *record, anchor int64) error {
	if r.Config.AnchorID != anchor {
		return ErrForbidden
	}
	return nil
}

// transition applies ev to r's status, or returns ErrConflict. A rain with a prepare in
// flight refuses every event until the prepare ends.
func transition(r *record, ev rain.Event) error {
	if r.Preparing {
		return fmt.Errorf("%w: a prepare of epoch %d is in progress", ErrConflict, r.Epoch)
	}
	to, err := rain.Next(r.Status, ev)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	r.Status = to
	return nil
}

// Prepare plans the rain over the live nodes under a new epoch, sends every slice and waits
// for every ack (Options.PrepareTimeout). All acked: the slices and status prepared are
// stored in one transaction. Otherwise the epoch is abandoned and ErrPrepareFailed returned.
func (c *Coordinator) Prepare(code string, anchor int64) (*Rain, error) {
	live := c.liveNodes()
	var plan []rain.Slice
	r, err := c.store.update(code, func(r *record) error {
		if err := checkAnchor(r, anchor); err != nil {
			return err
		}
		probe := *r // the status moves only once every ack is in: here, only check it may
		if err := transition(&probe, rain.Prepare); err != nil {
			return err
		}
		if len(live) == 0 {
			return ErrNoNodes
		}
		var err error
		if plan, err = planSlices(r, live); err != nil {
			return err
		}
		r.Epoch, r.Preparing, r.Pending = r.Epoch+1, true, plan
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := c.sendSlices(r, plan, live); err != nil {
		c.abandon(code, r.Epoch, plan)
		return nil, fmt.Errorf("%w: epoch %d abandoned: %w", ErrPrepareFailed, r.Epoch, err)
	}
	return c.commitPrepare(code, r.Epoch, plan)
}

// planSlices splits r over the live nodes under the next epoch.
func planSlices(r *record, live []gossip.Member) ([]rain.Slice, error) {
	ids := make([]string, len(live))
	for i, m := range live {
		ids[i] = m.ID
	}
	return rain.Plan(rain.PlanInput{
		Code: r.Code, Epoch: r.Epoch + 1, TotalAmount: r.Config.TotalAmount,
		TotalCount: r.Config.TotalCount, Algorithm: r.Config.Algorithm, Nodes: ids, Seed: randSeed(),
	})
}

// commitPrepare stores the acknowledged slices and status prepared, if the marker is still
// that of epoch (it is, unless the store was changed under this process).
func (c *Coordinator) commitPrepare(code string, epoch uint64, plan []rain.Slice) (*Rain, error) {
	r, err := c.store.update(code, func(r *record) error {
		if !r.Preparing || r.Epoch != epoch {
			return fmt.Errorf("%w: prepare of epoch %d was abandoned", ErrPrepareFailed, epoch)
		}
		r.Preparing = false
		if err := transition(r, rain.Prepare); err != nil {
			return err
		}
		r.Slices, r.Pending = plan, nil
		r.PreparedAt = time.Now().UnixNano()
		r.News++
		return nil
	})
	if err != nil {
		c.abandon(code, epoch, plan)
		return nil, err
	}
	c.publish(r, gossip.KindPrepared)
	return view(r, Totals{}), nil
}

// sendSlices sends every slice of plan to its node concurrently and waits for every ack
// within Options.PrepareTimeout; the first failure cancels the rest.
func (c *Coordinator) sendSlices(r *record, plan []rain.Slice, live []gossip.Member) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.PrepareTimeout)
	defer cancel()
	addrs := make(map[string]string, len(live))
	for _, m := range live {
		addrs[m.ID] = m.HTTPAddr
	}
	rules := wire.RainRules{Code: r.Code, MaxPerUser: r.Config.MaxPerUser,
		MinClaimIntervalMS: r.Config.MinClaimIntervalMS, RoomID: r.Config.RoomID, Holders: slices.Sorted(slices.Values(sliceNodes(plan)))}
	errc := make(chan error, len(plan))
	for _, s := range plan {
		go func() {
			msg := wire.SliceAssignment{Rules: rules, Slice: s}
			err := c.callUntil(ctx, addrs[s.Node], wire.PathSlices, msg)
			if err != nil {
				err = fmt.Errorf("node %s: %w", s.Node, err)
			}
			errc <- err
		}()
	}
	var first error
	for range plan {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// callUntil POSTs msg until the node acks, the node refuses it (4xx), or ctx ends (untilAck).
func (c *Coordinator) callUntil(ctx context.Context, addr, path string, msg any) error {
	end, _, err := untilAck(ctx, func() error { return c.post(ctx, addr, path, msg) }, nil)
	if end == cancelled {
		return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
	}
	return err
}

// post makes one signed POST and checks the ack.
func (c *Coordinator) post(ctx context.Context, addr, path string, msg any) error {
	var ack wire.Ack
	if err := c.nodes.Do(ctx, "POST", addr, path, msg, &ack); err != nil {
		return err
	}
	if !ack.OK {
		return errors.New("node answered without ok")
	}
	return nil
}

// abandon clears epoch's preparing marker (the rain stays waiting) and tells the nodes of plan
// to discard the epoch's slices, in the background.
func (c *Coordinator) abandon(code string, epoch uint64, plan []rain.Slice) {
	_, err := c.store.update(code, func(r *record) error {
		if r.Preparing && r.Epoch == epoch {
			r.Preparing, r.Pending = false, nil
		}
		return nil
	})
	if err != nil {
		c.log.Error("abandon prepare: clear marker", "rain", code, "epoch", epoch, "err", err)
	}
	c.log.Warn("prepare abandoned", "rain", code, "epoch", epoch)
	c.tell(sliceNodes(plan), wire.RainPath(wire.PathDiscard, code), wire.Discard{Epoch: epoch},
		time.Now().Add(retryFor), 0)
}

// abandonPreparing abandons every prepare a previous process left in flight.
func (c *Coordinator) abandonPreparing() {
	codes, err := c.store.preparing()
	if err != nil {
		c.log.Error("startup: list preparing rains", "err", err)
		return
	}
	for _, code := range codes {
		r, err := c.store.get(code)
		if err != nil {
			c.log.Error("startup: load preparing rain", "rain", code, "err", err)
			continue
		}
		c.abandon(code, r.Epoch, r.Pending)
	}
}

// Start puts a prepared rain on sale now, for its duration: stored first, then told to every
// slice holder directly (retried in the background) and by gossip, and ZADDed to redrain:rains.
func (c *Coordinator) Start(code string, anchor int64) (*Rain, error) {
	now := time.Now()
	r, err := c.store.update(code, func(r *record) error {
		if err := checkAnchor(r, anchor); err != nil {
			return err
		}
		if err := transition(r, rain.Start); err != nil {
			return err
		}
		r.StartedAt = now.UnixNano()
		r.EndsAt = now.Add(time.Duration(r.Config.DurationS) * time.Second).UnixNano()
		r.News++
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.publish(r, gossip.KindStarted)
	msg := wire.Start{Epoch: r.Epoch, StartsAt: r.StartedAt, EndsAt: r.EndsAt}
	c.tell(r.holders(), wire.RainPath(wire.PathStart, code), msg, time.Unix(0, r.EndsAt), syncWait)
	c.listRain(r)
	c.startedRains.Add(1) // after its ZADD: the loop never finds redrain:rains short of a rain still being listed
	return c.viewBestEffort(r), nil
}

// Stop ends a raining rain now (finished) or cancels one not started (its slices discarded).
func (c *Coordinator) Stop(code string, anchor int64) (*Rain, error) {
	now := time.Now().UnixNano()
	r, err := c.store.update(code, func(r *record) error {
		if err := checkAnchor(r, anchor); err != nil {
			return err
		}
		if err := transition(r, rain.Stop); err != nil {
			return err
		}
		r.StoppedAt = now
		r.News++ // finished, or cancelled (news for viewers' events)
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.afterStop(r)
	return c.viewBestEffort(r), nil
}

// viewBestEffort renders r after a change that already happened: a Redis failure then only
// leaves the flushed figures at 0 (logged), it does not fail the answer.
func (c *Coordinator) viewBestEffort(r *record) *Rain {
	t, err := c.totals(c.ctx, r)
	if err != nil {
		c.log.Warn("rain totals", "rain", r.Code, "err", err)
	}
	return view(r, t)
}

// afterStop tells the holders of a rain that just finished or was cancelled.
func (c *Coordinator) afterStop(r *record) {
	if r.Status == rain.Cancelled {
		if r.PreparedAt != 0 { // viewers heard of it: tell them it is off
			c.publish(r, gossip.KindCancelled)
		} else {
			c.hook(r, gossip.KindCancelled)
		}
		if len(r.Slices) > 0 {
			c.tell(r.holders(), wire.RainPath(wire.PathDiscard, r.Code), wire.Discard{Epoch: r.Epoch},
				time.Now().Add(retryFor), syncWait)
		}
		return
	}
	c.publish(r, gossip.KindStopped)
	c.tell(r.holders(), wire.RainPath(wire.PathStop, r.Code), wire.Stop{At: r.StoppedAt},
		time.Now().Add(retryFor), syncWait)
}

// publish gossips r's lifecycle news under its current version.
func (c *Coordinator) publish(r *record, kind string) {
	n := gossip.News{Code: r.Code, Kind: kind, Epoch: r.Epoch, StartsAt: r.StartedAt,
		EndsAt: r.EndsAt, Version: r.News, RoomID: r.Config.RoomID, TotalCount: r.Config.TotalCount,
		PreparedAt: r.PreparedAt}
	if kind == gossip.KindStopped || kind == gossip.KindCancelled {
		n.StoppedAt = r.StoppedAt
	}
	c.hook(r, kind)
	if err := c.cluster.Publish(n); err != nil {
		c.log.Error("gossip publish", "rain", r.Code, "kind", kind, "err", err)
	}
}

// liveNodes are the alive members with role node, by id.
func (c *Coordinator) liveNodes() []gossip.Member {
	var out []gossip.Member
	for _, m := range c.cluster.Members() {
		if m.Role == gossip.RoleNode && m.State == gossip.StateAlive && m.HTTPAddr != "" {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b gossip.Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// nodeMembers maps id -> member for every member with role node.
func (c *Coordinator) nodeMembers() map[string]gossip.Member {
	out := make(map[string]gossip.Member)
	for _, m := range c.cluster.Members() {
		if m.Role == gossip.RoleNode {
			out[m.ID] = m
		}
	}
	return out
}
