package node

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"redrain/internal/logpace"
	"redrain/internal/wire"
	"redrain/rain"
)

// Per-user owners: max_per_user holds cluster-wide, whatever the load balancer does.
//
// Each (rain, user) has one owner, rain.OwnerOf(the rain's holders, code, user): a rendezvous hash
// over the ids of every node holding a slice of the served prepare (wire.RainRules.Holders),
// fixed for the rain's life. Not over the live members: a dead owner's users would move to a
// node that has no counts of theirs, and be paid past the cap.
//
// A claim pops its packet first (the local checks: window, the per-node rate limit, this node's
// own count of the user, stock); then, when the owner is another node, it asks the owner for a
// reservation with one signed internal call (POST /internal/v1/rains/{code}/reserve). The owner
// counts the user's claims in its shard's per-user counter (its own claims and the reservations
// it granted), journals the reservation in <data>/owners.db (group commit, fsync) and only then
// answers yes; at restart it adds the journaled reservations (minus releases) to the counts its
// claims journal gives. Only then is the claim journaled and paid. A "no" (429 user_limit), an
// owner unreachable within Options.OwnerTimeout, or any other answer puts the packet back and
// answers the claim with no packet (fail closed). A reservation whose claim then fails before
// its record was written is released with one call, never retried: the owner cannot tell a retry
// from a second release, and a release counted twice would pay past the cap; a release lost
// only leaves the user one packet short. When this node is the owner there is no call: the
// shard's counter is the count, as before.

// ownerState is what a node keeps for per-user owners.
type ownerState struct {
	journal  OwnerJournal
	signer   *wire.Signer
	rains    atomic.Pointer[map[string]*rainOwners] // by rain code, built on a rain's first claim
	links    atomic.Pointer[map[string]*ownerLink]  // by node id, refreshed from the gossip members
	linksAt  atomic.Int64                           // unix ns of the last refresh
	mu       sync.Mutex                             // serialises rebuilding rains and links
	repairAt atomic.Int64                           // unix ns of the last reopen attempt of a failed journal

	releases atomic.Int32           // release calls in flight
	failLog  logpace.Limiter        // paces the log of failed owner calls
	calls    *prometheus.CounterVec // reserve/release calls made, by result
}

// rainOwners is what a node keeps of a rain's owners: the holders (rain.Owners), itself among
// them, and the owner endpoints' paths.
type rainOwners struct {
	*rain.Owners
	code    string
	self    int    // index of this node in IDs, -1 if absent
	reserve string // the owner's internal paths for this rain
	release string
	claims  string
}

func newRainOwners(code, self string, holders []string) *rainOwners {
	ro := &rainOwners{Owners: rain.NewOwners(code, holders), code: code,
		reserve: "/internal/v1/rains/" + code + "/reserve", release: "/internal/v1/rains/" + code + "/release",
		claims: "/internal/v1/rains/" + code + "/claims"}
	ro.self = slices.Index(ro.IDs(), self)
	return ro
}

// owner returns the index in IDs of user's owner (-1 when there are no holders).
func (ro *rainOwners) owner(user uint64) int { return ro.Index(user) }

// ownersOf returns the rain's owner table, building it from the rain's rules on first use.
// nil: the rain is not known here.
func (n *Node) ownersOf(code []byte) *rainOwners {
	if ro := (*n.owner.rains.Load())[string(code)]; ro != nil {
		return ro
	}
	n.mu.Lock()
	ri := n.rains[string(code)]
	var holders []string
	if ri != nil {
		holders = slices.Clone(ri.rules.Holders)
	}
	n.mu.Unlock()
	if ri == nil {
		return nil
	}
	ro := newRainOwners(string(code), n.opts.ID, holders)
	n.owner.mu.Lock()
	defer n.owner.mu.Unlock()
	old := *n.owner.rains.Load()
	if have := old[ro.code]; have != nil {
		return have
	}
	m := maps.Clone(old)
	m[ro.code] = ro
	n.owner.rains.Store(&m)
	return ro
}

// collectors are the owner metrics, registered with the node's.
func (o *ownerState) collectors() []prometheus.Collector {
	if o.calls == nil {
		o.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redrain_owner_calls_total",
			Help: "Calls this node made to the owners of its claimants (reserve, release), by result " +
				"(ok, user_limit, unavailable: the claim was refused, fail closed)."}, []string{"call", "result"})
	}
	return []prometheus.Collector{o.calls}
}
