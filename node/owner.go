package node

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"redrain/internal/wire"
)

// Per-user owners: max_per_user holds cluster-wide, whatever the load balancer does.
//
// Each (rain, user) has one owner, OwnerOf(the rain's holders, code, user): a rendezvous hash
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
	calls    *prometheus.CounterVec // reserve/release calls made, by result
}

// OwnerOf returns the holder that counts user's claims of rain code: the one whose rendezvous
// score for the user is highest (the first of equals), "" when there is none. Removing a holder
// moves only the users it owned; each holder owns about 1/len(holders) of the users.
func OwnerOf(holders []string, code string, user uint64) string {
	owner, best := "", uint64(0)
	for _, h := range holders {
		if s := ownerScore(holderSeed(code, h), user); owner == "" || s > best {
			owner, best = h, s
		}
	}
	return owner
}

// holderSeed hashes a rain code and a holder id (64-bit FNV-1a over code, 0, id) into the seed
// of the holder's scores in that rain.
func holderSeed(code, holder string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(code); i++ {
		h = (h ^ uint64(code[i])) * 1099511628211
	}
	h *= 1099511628211 // the 0 separator
	for i := 0; i < len(holder); i++ {
		h = (h ^ uint64(holder[i])) * 1099511628211
	}
	return h
}

// ownerScore is a holder's score for a user: the splitmix64 finalizer over the seed mixed with
// the (mixed) user id.
func ownerScore(seed, user uint64) uint64 { return mix64(seed ^ mix64(user+0x9e3779b97f4a7c15)) }

func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// rainOwners is a rain's holders with their seeds precomputed, so finding a user's owner on the
// claim path is one mix per holder and no allocation.
type rainOwners struct {
	code     string
	ids      []string // sorted; empty: no owners (a rain from before holders were sent), per-node counts
	seeds    []uint64
	self     int    // index of this node in ids, -1 if absent
	reserve  string // the owner's internal paths for this rain
	release  string
	notOwner bool // self is -1: every user is owned elsewhere
}

func newRainOwners(code, self string, holders []string) *rainOwners {
	ro := &rainOwners{code: code, ids: slices.Clone(holders), self: -1,
		reserve: "/internal/v1/rains/" + code + "/reserve", release: "/internal/v1/rains/" + code + "/release"}
	slices.Sort(ro.ids)
	ro.ids = slices.Compact(ro.ids)
	for i, id := range ro.ids {
		ro.seeds = append(ro.seeds, holderSeed(code, id))
		if id == self {
			ro.self = i
		}
	}
	return ro
}

// owner returns the index in ids of user's owner (-1 when there are no holders).
func (ro *rainOwners) owner(user uint64) int {
	idx, best := -1, uint64(0)
	for i, seed := range ro.seeds {
		if s := ownerScore(seed, user); idx < 0 || s > best {
			idx, best = i, s
		}
	}
	return idx
}

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
