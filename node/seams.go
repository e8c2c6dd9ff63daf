package node

import (
	"context"
	"time"

	"redrain/gossip"
	"redrain/ledger"
	"redrain/rain"
)

// Journal is what the node needs of its journal: claims appended durably (the flusher's
// ledger.Source reads them back), rains and slices stored, replayed at start, reopened after a
// failed commit. *ledger.Journal is the real one (bbolt and a write-ahead log in DataDir);
// ledger.MemJournal keeps the same rules in memory, for tests of a node built from fakes. See
// ledger's errors for what Append's failures mean to the node (ErrCommit, ErrUnavailable).
type Journal interface {
	ledger.Source
	Append(r ledger.Record) (seq uint64, err error)
	PutRain(m ledger.RainMeta) error
	PutSlice(s rain.Slice) error
	DropSlices(code string, epoch uint64) error
	DropRain(tomb ledger.RainMeta) error
	Recover() (*ledger.Recovery, error)
	Failed() bool
	Reopen() ([]ledger.Record, error)
	Stats() ledger.Stats
	Close() error
}

// Redis is what the node needs of Redis: the flusher's sink, and the calls of graceful leave,
// restart, retention and re-assert. ledger.RedisClient is the real one (dialled from
// Options.RedisURL); ledger.MemRedis keeps the same rules in memory, for handler tests.
type Redis interface {
	ledger.Sink
	RecordLeftover(ctx context.Context, code, node string, amount int64) error
	ClearLeftover(ctx context.Context, code, node string) error
	RecordMoves(ctx context.Context, code, node string, in, out []ledger.MoveTotal) error
	Reassert(ctx context.Context, code, node string, incarnation uint64, t ledger.Tombstone) (wrote bool, err error)
	WalletAcked(ctx context.Context, code, group string) (ok bool, why string, err error)
	Close() error
}

// Cluster is what the node needs of its gossip membership once started: whether it has joined
// (/readyz), its address, the members (peers' HTTP addresses and liveness, for stock moves and
// per-user owners), and a graceful leave. *gossip.Cluster is the real one (memberlist on
// Options.GossipAddr); LoneCluster is a cluster of one, for handler tests.
type Cluster interface {
	Joined() bool
	GossipAddr() string
	Members() []gossip.Member
	PublishStock(s gossip.Stock)
	Stock(code string) []gossip.Stock
	Leave(timeout time.Duration) error
	Shutdown() error
}

// News applies lifecycle news heard by gossip, as the node's own memberlist does by itself. A node
// given a Cluster in Options hears no news unless the one who built that Cluster passes each
// News here from its OnNews (bench scale runs hundreds of nodes on gossip.Clusters it built, to
// watch each one's membership). Unknown rains are ignored, as by gossip.
func (n *Node) News(ns gossip.News) { n.onNews(ns) }

// LoneCluster is a Cluster of this node alone, joined from the start, bound to no address. A
// node built on it hears no gossip news: lifecycle changes come only by the internal API.
type LoneCluster struct{}

// Joined is always true: there is no one else to join.
func (LoneCluster) Joined() bool { return true }

// GossipAddr is "": nothing is bound.
func (LoneCluster) GossipAddr() string { return "" }

// Members is empty: the node knows itself without gossip.
func (LoneCluster) Members() []gossip.Member { return nil }

// PublishStock has no one to tell.
func (LoneCluster) PublishStock(gossip.Stock) {}

// Stock knows no peer's stock.
func (LoneCluster) Stock(string) []gossip.Stock { return nil }

// Leave has no one to tell.
func (LoneCluster) Leave(time.Duration) error { return nil }

// Shutdown has nothing to stop.
func (LoneCluster) Shutdown() error { return nil }
