// Package gossip is redrain's cluster membership and lifecycle news, on hashicorp/memberlist:
// who is in the cluster (alive / suspect / dead / left, with each member's id, role and HTTP
// address) and which rains started or stopped (versioned News, spread by broadcast and push-pull).
//
// Gossip is encrypted with a key derived from the cluster secret; a member without it cannot join.
// Gossip is best effort: what must arrive (slice assignments) goes point-to-point elsewhere, and
// News carries versions so that push-pull repairs whatever a broadcast missed.
//
// Locking: memberlist calls the delegates while holding its own node lock, so the Cluster never
// calls memberlist while holding its own mutex, and user callbacks (OnMember, OnNews) run on a
// separate goroutine, never under any lock.
package gossip
