package rain

import "slices"

// Per-user owners. Each user of a rain has one owner among the rain's holders (the nodes given a
// slice at prepare): the holder with the highest rendezvous score for the user. Every node, and a
// gateway that wants to route users to their owners, computes it alone from the holders; removing
// a holder moves only the users it owned, and each holder owns about 1/len(holders) of the users.
// The scores are pinned by a test: a change would move users between owners of running rains.

// OwnerOf returns the holder that counts user's claims of rain code ("" when there is none).
func OwnerOf(holders []string, code string, user uint64) string {
	o := NewOwners(code, holders)
	if i := o.Index(user); i >= 0 {
		return o.ids[i]
	}
	return ""
}

// Owners is a rain's holders with their seeds precomputed: finding a user's owner is one mix per
// holder and no allocation. Immutable, safe for concurrent use.
type Owners struct {
	ids   []string // sorted, distinct
	seeds []uint64
}

// NewOwners prepares the holders of rain code (in any order; repeats are ignored).
func NewOwners(code string, holders []string) *Owners {
	o := &Owners{ids: slices.Compact(slices.Sorted(slices.Values(holders)))}
	for _, id := range o.ids {
		o.seeds = append(o.seeds, holderSeed(code, id))
	}
	return o
}

// IDs are the holders, sorted. The caller must not modify them.
func (o *Owners) IDs() []string { return o.ids }

// Index returns the position in IDs of user's owner, -1 when there are no holders. Of equal
// scores the first holder wins.
func (o *Owners) Index(user uint64) int {
	idx, best := -1, uint64(0)
	for i, seed := range o.seeds {
		if s := ownerScore(seed, user); idx < 0 || s > best {
			idx, best = i, s
		}
	}
	return idx
}

// holderSeed hashes a rain code and a holder id (64-bit FNV-1a over code, a 0 byte, id) into the
// seed of the holder's scores in that rain.
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

// ownerScore is a holder's score for a user: SplitMix64's output function over the seed mixed
// with the (mixed) user id.
func ownerScore(seed, user uint64) uint64 { return mix64(seed ^ mix64(user+golden)) }
