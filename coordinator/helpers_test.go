package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"redrain/gossip"
	"redrain/internal/testcluster"
	"redrain/internal/testredis"
	"redrain/internal/wire"
	"redrain/rain"
)

const (
	testSecret = "test-cluster-secret"
	testToken  = "test-admin-token"
)

func testLogger() *slog.Logger {
	if testing.Verbose() && os.Getenv("REDRAIN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// running is a coordinator served by Run in the background, stopped at cleanup.
type running struct {
	*Coordinator
	base   string
	cancel context.CancelFunc
	done   chan error
}

// startCoordinator runs a coordinator with LocalOptions on dataDir (t.TempDir() if ""),
// stopped at cleanup.
func startCoordinator(t testing.TB, redisURL, dataDir string, tweak func(*Options)) *running {
	t.Helper()
	r := launchCoordinator(t, redisURL, dataDir, tweak)
	t.Cleanup(r.stop)
	return r
}

// launchCoordinator is startCoordinator without the cleanup: the caller stops it.
func launchCoordinator(t testing.TB, redisURL, dataDir string, tweak func(*Options)) *running {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	o := LocalOptions(dataDir, redisURL, testSecret, testToken)
	o.Logger = testLogger()
	if tweak != nil {
		tweak(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Coordinator: c, base: "http://" + c.Addr(), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	return r
}

// stop cancels Run and waits for it (idempotent).
func (r *running) stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		panic("coordinator did not stop")
	}
	r.done <- nil // let a second stop return at once
}

// call makes an admin request with the test token; body "" sends none.
func (r *running) call(t testing.TB, method, path, body string) (int, []byte) {
	return call(t, r.base, testToken, method, path, body)
}

func call(t testing.TB, base, token, method, path, body string) (int, []byte) {
	t.Helper()
	return callAuth(t, base, "Bearer "+token, method, path, body)
}

// callAuth sends auth as the Authorization header ("" sends none).
func callAuth(t testing.TB, base, auth, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return readBody(t, resp)
}

// readBody returns resp's status and whole body, and closes it.
func readBody(t testing.TB, resp *http.Response) (int, []byte) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// mustRain decodes a rain object answer with the wanted status.
func (r *running) mustRain(t testing.TB, want int, method, path, body string) *Rain {
	t.Helper()
	st, b := r.call(t, method, path, body)
	if st != want {
		t.Fatalf("%s %s: got %d %s, want %d", method, path, st, b, want)
	}
	var out Rain
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %v in %s", method, path, err, b)
	}
	return &out
}

// expectError checks an error answer's status and word.
func (r *running) expectError(t testing.TB, status int, word, method, path, body string) apiError {
	t.Helper()
	st, b := r.call(t, method, path, body)
	return checkError(t, st, b, status, word, method+" "+path+" "+body)
}

func checkError(t testing.TB, st int, b []byte, status int, word, what string) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(b, &e); err != nil || st != status || e.Word != word || e.Message == "" {
		t.Fatalf("%s: got %d %s, want %d %q", what, st, b, status, word)
	}
	return e
}

func (r *running) create(t testing.TB, body string) *Rain {
	t.Helper()
	return r.mustRain(t, 201, "POST", "/v1/rains", body)
}

func anchorJSON(a int64) string { return fmt.Sprintf(`{"anchor_id":%d}`, a) }

func (r *running) report(t testing.TB, code string) *Report {
	t.Helper()
	st, b := r.call(t, "GET", "/v1/rains/"+code+"/report", "")
	if st != 200 {
		t.Fatalf("report: %d %s", st, b)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	checkBalance(t, &rep)
	return &rep
}

// checkBalance asserts every invariant of a report (Report.Problems: claimed + leftover + lost
// == total, the node lines add up, nothing negative, no overpay).
func checkBalance(t testing.TB, rep *Report) {
	t.Helper()
	if ps := rep.Problems(); len(ps) > 0 {
		t.Fatalf("report of %s breaks its invariants:\n%s\n%+v", rep.Code, strings.Join(ps, "\n"), rep)
	}
}

// fakeNode is a gossip member with role node whose HTTP address serves the internal wire
// endpoints: it verifies every signature, records what it was sent, and reports progress
// computed from the slices it acked and the claims the test sets.
type fakeNode struct {
	t        testing.TB
	id       string
	cluster  *gossip.Cluster
	srv      *http.Server
	addr     string
	verifier *wire.Verifier

	mu       sync.Mutex
	hang     bool                           // slice assignments are never acked
	acked    []rain.Slice                   // slices acknowledged
	starts   map[string][]wire.Start        // code -> starts received
	stops    map[string]int                 // code -> stops received
	discards map[string][]uint64            // code -> epochs discarded
	settles  map[string]int                 // code -> settles received
	claims   map[string]wire.Progress       // code -> claimed/flushed figures set by the test
	badSigs  int                            // requests refused for their signature
	rules    map[string]wire.RainRules      // code -> rules received
	seen     map[string]map[uint64]struct{} // code -> epochs of slices received (acked or not)
}

// newFakeNode starts a fake node that joins the cluster at join.
func newFakeNode(t testing.TB, id string, join ...string) *fakeNode {
	t.Helper()
	f := &fakeNode{t: t, id: id, verifier: wire.NewVerifier(testSecret),
		starts: map[string][]wire.Start{}, stops: map[string]int{}, discards: map[string][]uint64{},
		settles: map[string]int{}, claims: map[string]wire.Progress{}, rules: map[string]wire.RainRules{},
		seen: map[string]map[uint64]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	o := gossip.LocalOptions()
	o.Meta = gossip.Meta{ID: id, Role: gossip.RoleNode, HTTPAddr: f.addr}
	o.Secret, o.Join, o.Logger = testSecret, join, testLogger()
	if f.cluster, err = gossip.New(o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
	return f
}

func (f *fakeNode) close() {
	_ = f.cluster.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.srv.Shutdown(ctx)
}

// die stops gossiping without leaving (peers see it dead) and stops answering HTTP.
func (f *fakeNode) die() {
	_ = f.cluster.Shutdown()
	_ = f.srv.Close()
}

func (f *fakeNode) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, wire.MaxBody))
	if err != nil {
		return
	}
	if err := f.verifier.Verify(r.Method, r.RequestURI, body, r.Header.Get(wire.HeaderTime),
		r.Header.Get(wire.HeaderNonce), r.Header.Get(wire.HeaderSignature), time.Now()); err != nil {
		f.mu.Lock()
		f.badSigs++
		f.mu.Unlock()
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if r.URL.Path == wire.PathProgress && r.Method == "GET" {
		writeAny(w, f.progressList(r.URL.Query().Get("code")))
		return
	}
	if r.URL.Path == wire.PathSlices && r.Method == "POST" {
		f.assign(w, r, body)
		return
	}
	code, op, ok := splitRainPath(r.URL.Path)
	if !ok || r.Method != "POST" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch op {
	case "start":
		var m wire.Start
		_ = json.Unmarshal(body, &m)
		f.starts[code] = append(f.starts[code], m)
	case "stop":
		f.stops[code]++
	case "discard":
		var m wire.Discard
		_ = json.Unmarshal(body, &m)
		f.discards[code] = append(f.discards[code], m.Epoch)
	case "settle":
		f.settles[code]++
	}
	writeAny(w, wire.Ack{OK: true})
}

func splitRainPath(p string) (code, op string, ok bool) {
	rest, found := strings.CutPrefix(p, "/internal/v1/rains/")
	if !found {
		return "", "", false
	}
	code, op, ok = strings.Cut(rest, "/")
	return code, op, ok
}

func (f *fakeNode) assign(w http.ResponseWriter, r *http.Request, body []byte) {
	var a wire.SliceAssignment
	if err := json.Unmarshal(body, &a); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	if f.seen[a.Slice.Code] == nil {
		f.seen[a.Slice.Code] = map[uint64]struct{}{}
	}
	f.seen[a.Slice.Code][a.Slice.Epoch] = struct{}{}
	hang := f.hang
	f.mu.Unlock()
	if hang {
		<-r.Context().Done() // never ack: the coordinator gives up and disconnects
		return
	}
	f.mu.Lock()
	f.acked = append(f.acked, a.Slice)
	f.rules[a.Slice.Code] = a.Rules
	f.mu.Unlock()
	writeAny(w, wire.Ack{OK: true})
}

func writeAny(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// servedEpoch is the epoch a rain is (or would be) served from: the started one, else the
// latest acked and not discarded. Caller holds mu.
func (f *fakeNode) servedEpoch(code string) uint64 {
	if s := f.starts[code]; len(s) > 0 {
		return s[0].Epoch
	}
	var e uint64
	for _, s := range f.acked {
		if s.Code == code && s.Epoch > e && !f.discarded(code, s.Epoch) {
			e = s.Epoch
		}
	}
	return e
}

func (f *fakeNode) discarded(code string, epoch uint64) bool {
	for _, e := range f.discards[code] {
		if e == epoch {
			return true
		}
	}
	return false
}

func (f *fakeNode) progressList(code string) wire.ProgressList {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := wire.ProgressList{Node: f.id, Rains: []wire.Progress{}}
	byCode := map[string]*wire.Progress{}
	for _, s := range f.acked {
		if code != "" && s.Code != code || s.Epoch != f.servedEpoch(s.Code) {
			continue
		}
		p := byCode[s.Code]
		if p == nil {
			p = &wire.Progress{Code: s.Code, Epoch: s.Epoch}
			byCode[s.Code] = p
		}
		p.SliceCount += s.Count
		p.SliceAmount += s.Amount
	}
	for c, p := range byCode {
		cl := f.claims[c]
		p.ClaimedCount, p.ClaimedAmount = cl.ClaimedCount, cl.ClaimedAmount
		p.FlushedCount, p.FlushedAmount = cl.FlushedCount, cl.FlushedAmount
		p.RemainingCount, p.RemainingAmount = p.SliceCount-p.ClaimedCount, p.SliceAmount-p.ClaimedAmount
		p.Started = len(f.starts[c]) > 0
		p.Exhausted = p.RemainingCount == 0
		out.Rains = append(out.Rains, *p)
	}
	return out
}

// setClaims sets what the node has journaled and flushed of a rain.
func (f *fakeNode) setClaims(code string, count, amount, flushedCount, flushedAmount int64) {
	f.mu.Lock()
	f.claims[code] = wire.Progress{ClaimedCount: count, ClaimedAmount: amount, FlushedCount: flushedCount, FlushedAmount: flushedAmount}
	f.mu.Unlock()
}

// slicesOf returns the acked slices of code (of any epoch).
func (f *fakeNode) slicesOf(code string) []rain.Slice {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rain.Slice
	for _, s := range f.acked {
		if s.Code == code {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeNode) startsOf(code string) []wire.Start {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wire.Start(nil), f.starts[code]...)
}

func (f *fakeNode) discardsOf(code string) []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint64(nil), f.discards[code]...)
}

func (f *fakeNode) count(m map[string]int, code string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return m[code]
}

func (f *fakeNode) setHang(h bool) {
	f.mu.Lock()
	f.hang = h
	f.mu.Unlock()
}

// cluster is one coordinator, its Redis and fake nodes, with the invariant check registered.
type testCluster struct {
	t     *testing.T
	redis *testredis.Server
	c     *running
	fakes []*fakeNode
	dir   string
}

// newTestCluster starts redis, a coordinator and n fake nodes joined to it, and waits until
// the coordinator sees them all alive. The invariants are checked when the test ends.
func newTestCluster(t *testing.T, n int, tweak func(*Options)) *testCluster {
	tc := &testCluster{t: t, redis: testredis.New(t), dir: t.TempDir()}
	tc.restart(tweak)
	for i := range n {
		tc.fakes = append(tc.fakes, newFakeNode(t, fmt.Sprintf("n%d", i+1), tc.c.GossipAddr()))
	}
	tc.waitAlive(n)
	t.Cleanup(func() { // before the fakes stop
		tc.checkInvariants()
		tc.c.stop()
	})
	return tc
}

// restart stops the coordinator (if any) and starts a new one on the same data dir.
func (tc *testCluster) restart(tweak func(*Options)) {
	if tc.c != nil {
		tc.c.stop()
	}
	tc.c = launchCoordinator(tc.t, tc.redis.URL(), tc.dir, tweak)
}

func (tc *testCluster) waitAlive(n int) {
	tc.t.Helper()
	testcluster.Eventually(tc.t, 10*time.Second, fmt.Sprintf("%d live nodes", n), func() bool { return len(tc.c.liveNodes()) == n })
}

// waitTicks waits until the coordinator's loop has done n more rounds.
func (tc *testCluster) waitTicks(n uint64) {
	tc.t.Helper()
	from := tc.c.ticks.Load()
	testcluster.Eventually(tc.t, 10*time.Second, fmt.Sprintf("%d loop rounds", n), func() bool { return tc.c.ticks.Load() >= from+n })
}

// checkInvariants: every rain's report balances, at most one epoch per rain was ever started
// on any node (the stored one, whose acked slices add up to the rain), no node was started on
// an epoch it was told to discard, and every internal request was correctly signed.
func (tc *testCluster) checkInvariants() {
	t := tc.t
	if t.Failed() {
		return
	}
	recs, err := tc.c.store.list(filter{Limit: MaxList})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		tc.c.report(t, r.Code)
		tc.checkEpochs(r)
	}
	for _, f := range tc.fakes {
		f.mu.Lock()
		bad := f.badSigs
		f.mu.Unlock()
		if bad != 0 {
			t.Errorf("node %s refused %d requests for their signature", f.id, bad)
		}
	}
}

func (tc *testCluster) checkEpochs(r *record) {
	t := tc.t
	started := map[uint64]bool{}
	var amount, count int64
	for _, f := range tc.fakes {
		for _, s := range f.startsOf(r.Code) {
			started[s.Epoch] = true
			for _, d := range f.discardsOf(r.Code) {
				if d == s.Epoch {
					t.Errorf("rain %s: node %s started on discarded epoch %d", r.Code, f.id, d)
				}
			}
		}
		for _, s := range f.slicesOf(r.Code) {
			if s.Epoch == r.Epoch && r.Status != rain.Waiting {
				amount += s.Amount
				count += s.Count
			}
		}
	}
	tc.checkStoredSlices(r)
	if len(started) > 1 || len(started) == 1 && !started[r.Epoch] {
		t.Errorf("rain %s: epochs started on nodes %v, stored epoch %d", r.Code, started, r.Epoch)
	}
	if len(started) == 1 && (amount != r.Config.TotalAmount || count != r.Config.TotalCount) {
		t.Errorf("rain %s: served epoch's slices add up to %d/%d, want %d/%d", r.Code, amount, count,
			r.Config.TotalAmount, r.Config.TotalCount)
	}
}

// checkStoredSlices: a rain's stored slices are exactly the ones its nodes acknowledged for
// the stored epoch.
func (tc *testCluster) checkStoredSlices(r *record) {
	for _, s := range r.Slices {
		found := false
		for _, f := range tc.fakes {
			for _, a := range f.slicesOf(r.Code) {
				found = found || a == s
			}
		}
		if !found || s.Epoch != r.Epoch {
			tc.t.Errorf("rain %s: stored slice %+v was not acknowledged by a node (epoch %d)", r.Code, s, r.Epoch)
		}
	}
}
