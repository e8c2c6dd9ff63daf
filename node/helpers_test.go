package node

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"redrain/internal/testredis"
	"redrain/internal/wire"
	"redrain/ledger"
	"redrain/rain"
)

const testSecret = "test-cluster-secret"

// harness is one node under test with its Redis and an HTTP client to it.
type harness struct {
	t      testing.TB
	n      *Node
	redis  *testredis.Server // the redis-server of newRedisHarness; nil on fakes
	client *fasthttp.Client
	wire   *wire.Client
	dir    string
	ln     *fasthttputil.InmemoryListener

	audited bool // auditAll ran
}

// newHarness starts a node on fakes (a ledger.MemRedis and a LoneCluster: no redis-server, no
// memberlist) on an in-memory listener (handler tests) or, with real=true, on 127.0.0.1:0.
func newHarness(t testing.TB, real bool, tweak func(*Options)) *harness {
	t.Helper()
	return newHarnessOn(t, false, real, tweak)
}

// newRedisHarness is newHarness on a real redis-server and memberlist, for the tests of what a
// node does to and with Redis (retention, leftovers) and of its gossip.
func newRedisHarness(t testing.TB, real bool, tweak func(*Options)) *harness {
	t.Helper()
	return newHarnessOn(t, true, real, tweak)
}

func newHarnessOn(t testing.TB, withRedis, real bool, tweak func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir()}
	url := ""
	if withRedis {
		h.redis = testredis.New(t)
		url = h.redis.URL()
	}
	o := LocalOptions("n1", h.dir, url, testSecret)
	if !withRedis {
		o.Redis, o.Cluster = ledger.NewMemRedis(), LoneCluster{}
	}
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if !real {
		h.ln = fasthttputil.NewInmemoryListener()
		o.Listener = h.ln
	}
	if tweak != nil {
		tweak(&o)
	}
	h.start(o)
	return h
}

// heldRedis reads what the node's Redis (real or MemRedis) holds of a rain.
type heldRedis interface {
	ReadTotals(ctx context.Context, code string) (ledger.RainTotals, error)
	ReadNodes(ctx context.Context, code string) (map[string]ledger.NodeTotals, error)
	ReadCredits(ctx context.Context, code string) ([]ledger.Credit, error)
}

// held is the node's Redis, to read.
func (h *harness) held() heldRedis { return h.n.rdb.(heldRedis) }

// rdb is the go-redis client of a newRedisHarness node.
func (h *harness) rdb() redis.UniversalClient { return h.n.rdb.(*ledger.RedisClient).Client() }

func (h *harness) start(o Options) {
	h.t.Helper()
	n, err := New(o)
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	if err := n.Start(); err != nil {
		h.t.Fatalf("Start: %v", err)
	}
	h.n = n
	h.client = &fasthttp.Client{MaxConnsPerHost: 256, ReadTimeout: 10 * time.Second}
	if h.ln != nil {
		ln := h.ln
		h.client.Dial = func(string) (net.Conn, error) { return ln.Dial() }
	}
	h.wire = wire.NewClient(testSecret, 10*time.Second)
	if h.ln != nil {
		ln := h.ln
		h.wire.HTTP.Transport = &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return ln.Dial() }}
	}
	h.t.Cleanup(func() {
		h.auditAll()
		h.n.Close()
	})
}

// restart closes the node gracefully and starts it again on the same data dir, on 127.0.0.1:0.
func (h *harness) restart() {
	h.t.Helper()
	h.n.Close()
	o := h.n.opts
	o.Listener = nil
	o.HTTPAddr = "127.0.0.1:0"
	h.ln = nil
	h.start(o)
}

// do sends one request and returns status and body.
func (h *harness) do(method, path string, headers map[string]string, body []byte) (int, string) {
	h.t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + h.addr() + path)
	req.Header.SetMethod(method)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.SetBody(body)
	if err := h.client.Do(req, resp); err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode(), string(resp.Body())
}

func (h *harness) addr() string {
	if h.ln != nil {
		return "inmemory"
	}
	return h.n.HTTPAddr()
}

func (h *harness) claim(code string, user uint64) (int, string) {
	return h.do("POST", "/v1/rains/"+code+"/claim", map[string]string{"X-User-Id": strconv.FormatUint(user, 10)}, nil)
}

// internal calls the node's internal API with a signed request.
func (h *harness) internal(method, path string, in any) error {
	h.t.Helper()
	return h.wire.Do(context.Background(), method, h.addr(), path, in, nil)
}

// rainOf prepares (assigns one slice) and optionally starts a rain on the harness's node.
func (h *harness) rainOf(code string, count, amount int64, maxPerUser int, start bool) rain.Slice {
	h.t.Helper()
	sl := rain.Slice{Code: code, ID: 1, Epoch: 1, Node: "n1", Count: count, Amount: amount, Seed: 42,
		Algorithm: rain.DoubleAverage}
	a := wire.SliceAssignment{Rules: wire.RainRules{Code: code, MaxPerUser: maxPerUser}, Slice: sl}
	if err := h.internal("POST", wire.PathSlices, a); err != nil {
		h.t.Fatalf("assign: %v", err)
	}
	if start {
		now := time.Now()
		s := wire.Start{Epoch: 1, StartsAt: now.Add(-time.Second).UnixNano(), EndsAt: now.Add(time.Hour).UnixNano()}
		if err := h.internal("POST", wire.RainPath(wire.PathStart, code), s); err != nil {
			h.t.Fatalf("start: %v", err)
		}
	}
	return sl
}

// auditAll checks the invariants of every rain the current node journaled, once, at the
// harness's cleanup (STYLE: invariants after every test, not only in the tests that target
// them). It is skipped when the test already failed or left the journal failed or closed.
func (h *harness) auditAll() {
	if h.audited || h.t.Failed() || h.n.journal.Failed() {
		return
	}
	h.audited = true
	if err := h.n.journal.Scan("", 0, 1, func(uint64, ledger.Record) bool { return false }); errors.Is(err, ledger.ErrClosed) {
		return
	}
	for code := range h.n.journal.AllTotals() {
		h.checkInvariants(code, nil)
	}
}

// checkInvariants flushes and runs ledger.Audit, the one journal-against-Redis rule, on the rain
// (markers, nodes hash, totals, every claim credited once as journaled), and checks that every
// claim answered (claim_id -> amount) is journaled with its amount.
func (h *harness) checkInvariants(code string, answered map[string]int64) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.n.flusher.FlushAll(ctx); err != nil {
		h.t.Fatalf("flush: %v", err)
	}
	problems, err := ledger.Audit(ctx, h.n.rdb.(ledger.Reader), code, h.n.journal)
	if err != nil {
		h.t.Fatalf("audit: %v", err)
	}
	for _, p := range problems {
		h.t.Error(p)
	}
	ids := map[string]int64{}
	err = h.n.journal.Scan(code, 0, 0, func(seq uint64, r ledger.Record) bool {
		ids[string(ledger.AppendClaimID(nil, h.n.opts.ID, h.n.Incarnation(), seq))] = r.Amount
		return true
	})
	if err != nil {
		h.t.Fatalf("scan: %v", err)
	}
	for id, amt := range answered {
		if got, ok := ids[id]; !ok || got != amt {
			h.t.Errorf("answered claim %s (%d) not journaled as such (journal: %d, %v)", id, amt, got, ok)
		}
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (h *harness) rainSlice(code string, count, amount int64) rain.Slice {
	return rain.Slice{Code: code, ID: 1, Epoch: 1, Node: "n1", Count: count, Amount: amount, Seed: 9, Algorithm: rain.DoubleAverage}
}

func (h *harness) startRain(code string) { h.startRainEpoch(code, 1) }

func (h *harness) startRainEpoch(code string, epoch uint64) {
	h.t.Helper()
	now := time.Now()
	s := wire.Start{Epoch: epoch, StartsAt: now.Add(-time.Second).UnixNano(), EndsAt: now.Add(time.Hour).UnixNano()}
	if err := h.internal("POST", wire.RainPath(wire.PathStart, code), s); err != nil {
		h.t.Fatalf("start: %v", err)
	}
}

// raw writes a hand-made request on a new connection and reads one answer.
func (h *harness) raw(t *testing.T, req string) (int, string) {
	t.Helper()
	resp := h.rawResponse(t, req)
	return resp.StatusCode(), string(resp.Body())
}

// rawResponse writes a hand-made request on a new connection and returns the whole answer,
// headers included.
func (h *harness) rawResponse(t *testing.T, req string) *fasthttp.Response {
	t.Helper()
	var c net.Conn
	var err error
	if h.ln != nil {
		c, err = h.ln.Dial()
	} else {
		c, err = net.Dial("tcp", h.n.HTTPAddr())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	if strings.HasPrefix(req, "HEAD ") {
		resp.SkipBody = true
	}
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return &resp
}
