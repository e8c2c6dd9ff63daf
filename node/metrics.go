package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// metrics are the node's Prometheus series, on its own registry (several nodes may share a
// process in tests). Claim counters are resolved once, so the hot path does no label lookup.
type metrics struct {
	reg     *prometheus.Registry
	handler fasthttp.RequestHandler

	claimOK, claimBadUser, claimUnknown, claimNotStarted, claimFinished, claimExhausted,
	claimUserLimit, claimRateLimited, claimJournal, claimTooLarge, claimBadToken, claimWrongRoom,
	claimIPLimited prometheus.Counter
	latency prometheus.Histogram
	refused *prometheus.CounterVec // internal requests refused, by reason
	// reasserted counts compacted rains whose totals Redis had lost and the node put back.
	reasserted prometheus.Counter
	// Stock moves: gives asked of donors, moves out journaled, moves in journaled.
	movesAsked, movesOut, movesIn prometheus.Counter
	stockWaits                    *prometheus.CounterVec // claims that found the node empty and waited, by outcome
}

func newMetrics(n *Node) *metrics {
	reg := prometheus.NewRegistry()
	claims := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redrain_claims_total",
		Help: "Claim requests answered, by result (ok or the error word)."}, []string{"result"})
	m := &metrics{reg: reg,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redrain_internal_refused_total",
			Help: "Internal API requests refused, by reason (unsigned, bad_signature, stale, replay, busy)."}, []string{"reason"}),
		claimOK: claims.WithLabelValues("ok"), claimBadUser: claims.WithLabelValues("bad_user"),
		claimUnknown: claims.WithLabelValues("unknown_rain"), claimNotStarted: claims.WithLabelValues("not_started"),
		claimFinished: claims.WithLabelValues("finished"), claimExhausted: claims.WithLabelValues("exhausted"),
		claimUserLimit: claims.WithLabelValues("user_limit"), claimRateLimited: claims.WithLabelValues("rate_limited"),
		claimJournal: claims.WithLabelValues("journal_unavailable"), claimTooLarge: claims.WithLabelValues("body_too_large"),
		claimBadToken: claims.WithLabelValues("bad_token"), claimWrongRoom: claims.WithLabelValues("wrong_room"),
		claimIPLimited: claims.WithLabelValues("ip_rate_limited"),
		reasserted: prometheus.NewCounter(prometheus.CounterOpts{Name: "redrain_tombstones_reasserted_total",
			Help: "Compacted rains whose totals Redis had lost (wiped, rolled back) and this node re-asserted from its tombstone."}),
		movesAsked: prometheus.NewCounter(prometheus.CounterOpts{Name: "redrain_stock_asks_total",
			Help: "Gives this node asked of donors because its stock ran low."}),
		movesOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "redrain_stock_moves_out_total",
			Help: "Stock moves this node journaled as a donor."}),
		movesIn: prometheus.NewCounter(prometheus.CounterOpts{Name: "redrain_stock_moves_in_total",
			Help: "Stock moves this node journaled as a receiver and serves."}),
		stockWaits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redrain_stock_waits_total",
			Help: "Claims that found this node empty while a peer held stock, and waited for a move, by outcome: arrived (tried again) or late (answered exhausted)."}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "redrain_claim_duration_seconds",
			Help:    "Time from a claim request's arrival to its answer, journal fsync included.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 14)}),
	}
	stat := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	j := n.journal
	reg.MustRegister(n.owner.collectors()...)
	reg.MustRegister(claims, m.latency, m.refused, m.reasserted, m.movesAsked, m.movesOut, m.movesIn, m.stockWaits,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		counter("redrain_journal_commits_total", "Journal commits (one write-ahead log fdatasync each).",
			func() float64 { return float64(j.Stats().Commits) }),
		counter("redrain_journal_records_total", "Claim records committed to the journal.",
			func() float64 { return float64(j.Stats().Records) }),
		counter("redrain_journal_commit_seconds_total", "Time spent in journal commits.",
			func() float64 { return j.Stats().CommitTime.Seconds() }),
		counter("redrain_journal_applies_total", "Background bbolt transactions that moved logged claims into the journal's store.",
			func() float64 { return float64(j.Stats().Applies) }),
		counter("redrain_journal_apply_seconds_total", "Time spent moving logged claims into bbolt (off the claim path).",
			func() float64 { return j.Stats().ApplyTime.Seconds() }),
		stat("redrain_journal_last_batch_size", "Records in the last journal commit.",
			func() float64 { return float64(j.Stats().LastBatch) }),
		stat("redrain_journal_last_commit_seconds", "Duration of the last journal commit.",
			func() float64 { return j.Stats().LastCommit.Seconds() }),
		stat("redrain_flush_lag_claims", "Claims journaled but not yet applied to Redis.",
			func() float64 { c, _ := n.flusher.Lag(); return float64(c) }),
		stat("redrain_open_connections", "Client connections the HTTP server holds now.",
			func() float64 { return float64(n.server.GetOpenConnectionsCount()) }),
		stat("redrain_flush_lag_seconds", "Age of the oldest claim not yet applied to Redis.",
			func() float64 { _, s := n.flusher.Lag(); return s }),
		stat("redrain_compaction_waiting_rains", "Finished rains past their retention whose journal records are kept "+
			"because the wallet's consumer group has not acknowledged their credit entries (or does not exist).",
			func() float64 { return float64(n.compaction.Waiting()) }),
		stat("redrain_remaining_packets", "Packets not handed out on this node, over every rain it holds "+
			"(no per-rain label: /metrics is unauthenticated and rain codes are not public before a rain starts).",
			func() float64 { return float64(n.remainingPackets()) }),
	)
	m.handler = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return m
}

// remainingPackets adds up the packets not handed out over every rain held.
func (n *Node) remainingPackets() int64 {
	now := time.Now().UnixNano()
	var sum int64
	for _, code := range n.store.Codes() {
		if p, ok := n.store.Progress(code, now); ok {
			sum += p.RemainingCount
		}
	}
	return sum
}
