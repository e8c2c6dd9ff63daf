// Package coordinator is the admin side of redrain: the admin HTTP API (fasthttp, bearer
// token), the rain config store (bbolt), and the orchestration of a rain's life over the gossip
// cluster's nodes: prepare (slices with a new epoch, every ack or none), start, stop, finish,
// settle, and the reconciliation report. It is never on the claim path.
//
// Durability order of a prepare: the new epoch and a "preparing" marker are committed before
// any slice is sent; the slice map and status prepared are committed in one transaction only
// after every node acknowledged. An epoch that did not reach prepared (timeout, failure, or a
// crash found at startup) is abandoned: its marker is cleared, nodes are told to discard it,
// and since a later start names only the epoch stored with status prepared, and every epoch
// number is used once, an abandoned slice set can never be put on sale.
package coordinator
