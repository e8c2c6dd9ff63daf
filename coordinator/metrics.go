package coordinator

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"redrain/gossip"
	"redrain/rain"
)

// metrics are the coordinator's Prometheus series, on its own registry (several coordinators
// may share a process in tests). Rains by status and nodes by state are read at scrape time;
// admin answers and redrain:rains repairs are counted as they happen.
type metrics struct {
	requests     *prometheus.CounterVec
	refused      *prometheus.CounterVec // by reason: refusalReasons
	indexRepairs prometheus.Counter     // redrain:rains found short
	indexReadded prometheus.Counter     // rains its repairs added back
	handler      fasthttp.RequestHandler
}

func newMetrics(st *store, members func() []gossip.Member) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redrain_coordinator_admin_requests_total",
		Help: "Admin API answers, by route (the action) and HTTP status code.",
	}, []string{"route", "code"})}
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redrain_coordinator_refused_total",
		Help: "Admin requests refused before any action, by reason: unauthorized (401, admin token missing or wrong), and what the server could not read: bad_request (400, malformed), timeout (408), body_too_large (413, declared over 1 MiB), headers_too_large (431). Their log lines are paced; these count every one.",
	}, []string{"reason"})
	for _, r := range refusalReasons {
		m.refused.WithLabelValues(r)
	}
	m.indexRepairs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "redrain_coordinator_rains_index_repairs_total",
		Help: "Times redrain:rains listed fewer rains than were started (Redis wiped or restored) and every started rain was re-asserted.",
	})
	m.indexReadded = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "redrain_coordinator_rains_index_readded_total",
		Help: "Started rains those re-assertions added back to redrain:rains (ZADD NX that added).",
	})
	reg.MustRegister(m.requests, m.refused, m.indexRepairs, m.indexReadded, &stateCollector{store: st, members: members},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return m
}

// refusalReasons are the reasons of redrain_coordinator_refused_total: the error words of the
// answers.
var refusalReasons = []string{"unauthorized", "bad_request", "timeout", "body_too_large", "headers_too_large"}

// refuse counts one refused request; reason is the answer's error word.
func (m *metrics) refuse(reason string) { m.refused.WithLabelValues(reason).Inc() }

// request counts one admin answer.
func (m *metrics) request(route string, code int) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
}

var (
	rainsDesc = prometheus.NewDesc("redrain_coordinator_rains", "Rains in the store, by status.",
		[]string{"status"}, nil)
	nodesDesc = prometheus.NewDesc("redrain_coordinator_nodes", "Node members of the cluster, by state.",
		[]string{"state"}, nil)
	allStatuses = []rain.Status{rain.Waiting, rain.Prepared, rain.Raining, rain.Finished, rain.Settled, rain.Cancelled}
	allStates   = []gossip.State{gossip.StateAlive, gossip.StateSuspect, gossip.StateDead, gossip.StateLeft}
)

// stateCollector reads the store's status counts and the membership at scrape time.
type stateCollector struct {
	store   *store
	members func() []gossip.Member
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- rainsDesc; ch <- nodesDesc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if counts, err := c.store.countByStatus(); err == nil {
		for _, s := range allStatuses {
			ch <- prometheus.MustNewConstMetric(rainsDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
		}
	} else {
		ch <- prometheus.NewInvalidMetric(rainsDesc, err)
	}
	states := map[gossip.State]int{}
	for _, m := range c.members() {
		if m.Role == gossip.RoleNode {
			states[m.State]++
		}
	}
	for _, s := range allStates {
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(states[s]), string(s))
	}
}
