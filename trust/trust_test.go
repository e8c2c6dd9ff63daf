package trust

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"redrain/adminapi"
	"redrain/gossip"
	"redrain/internal/testcluster"
	"redrain/internal/wire"
	"redrain/rain"
)

// TestClusterTrust runs one cluster of real processes (redis-server, coordinator, two nodes)
// and checks each trust boundary against it in turn; the last subtest greps everything the
// processes wrote and served for the secrets.
func TestClusterTrust(t *testing.T) {
	k := newKit(t, 2)
	steps := []struct {
		name string
		run  func(*testing.T)
	}{
		{"outsider cannot join or get a slice", k.outsiderCannotJoin},
		{"internal API refuses requests without the secret", k.internalRefusesOutsiders},
		{"replayed, altered or stale request refused", k.replayRefused},
		{"every admin action audited", k.adminAudited},
		{"secrets stay out of logs and metrics", k.noSecretInLogsOrMetrics},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) && k.raining == nil { // the later steps need the first one's rains
			t.FailNow()
		}
	}
}

// A node started with a wrong secret knocks on the coordinator's gossip port again and again:
// it is never listed, never ready, and gets no slice, while a node with the secret, started at
// the same time, is let in and gets its share.
func (k *kit) outsiderCannotJoin(t *testing.T) {
	evil := k.startNode(t, "evil", k.outsiderSecret)
	k.startNode(t, "good", k.c.Opts.Secret)
	testcluster.Eventually(t, 30*time.Second, "the member with the secret alive", func() bool { return k.nodeState("good") == "alive" })
	// Each join attempt is a push-pull the coordinator cannot decrypt (memberlist logs it).
	testcluster.Eventually(t, 30*time.Second, "three refused join attempts", func() bool {
		return count(t, k.c.Coord.Log, "could decrypt") >= 3
	})
	if st := k.nodeState("evil"); st != "" {
		t.Fatalf("the coordinator lists the outsider as %q", st)
	}
	if st, body := k.send(t, "GET", "http://"+evil.HTTP+"/readyz", nil, nil); st != 503 {
		t.Errorf("outsider's /readyz: %d %s, want 503 (never joined)", st, body)
	}
	k.raining, k.prepared = k.createPrepare(t, 3000, 3_000_000), k.createPrepare(t, 300, 30_000)
	for _, r := range []struct {
		name  string
		views []string
	}{{"raining", nodesOf(k.raining.Slices)}, {"prepared", nodesOf(k.prepared.Slices)}} {
		if want := []string{"good", "n1", "n2"}; !reflect.DeepEqual(r.views, want) {
			t.Errorf("%s rain's slices on %v, want %v", r.name, r.views, want)
		}
	}
	r, err := k.c.Admin().Act(context.Background(), k.raining.Code, "start", anchor)
	if err != nil {
		t.Fatal(err)
	}
	k.raining = r
	if pl := k.progress(t, evil.HTTP, k.outsiderSecret); len(pl.Rains) != 0 {
		t.Errorf("the outsider holds rains: %+v", pl.Rains)
	}
}

func nodesOf(s []adminapi.SliceView) []string {
	var out []string
	for _, x := range s {
		out = append(out, x.Node)
	}
	slices.Sort(out)
	return out
}

// Every internal endpoint, on every member, answers 401 without a signature and 403 with a
// signature made with a wrong secret or forged, tells nothing in the answer, and changes
// nothing: the money each member holds is the same afterwards, the rain on sale still serves,
// the prepared one still waits, the outsider's rain does not exist; the coordinator still steers.
func (k *kit) internalRefusesOutsiders(t *testing.T) {
	n1, a, b := k.c.Nodes[0], k.raining, k.prepared
	for u := uint64(1); u <= 5; u++ {
		if st, body := k.claim(t, n1.HTTP, a.Code, u); st != 200 {
			t.Fatalf("claim before the attacks: %d %s", st, body)
		}
	}
	before := k.money(t)
	now := time.Now()
	slice := func(code string, epoch uint64, rules wire.RainRules) wire.SliceAssignment {
		return wire.SliceAssignment{Rules: rules, Slice: rain.Slice{Code: code, ID: 99, Epoch: epoch, Node: n1.ID,
			Count: 10, Amount: 10_000_000, Seed: 7, Algorithm: rain.DoubleAverage}}
	}
	attacks := []struct {
		name, method, path string
		in                 any
	}{
		{"slice into the rain on sale", "POST", wire.PathSlices,
			slice(a.Code, a.Epoch, wire.RainRules{Code: a.Code, MaxPerUser: a.MaxPerUser})},
		{"slice of a rain of its own", "POST", wire.PathSlices,
			slice("outsiders-rain", 1, wire.RainRules{Code: "outsiders-rain", MaxPerUser: 1000})},
		{"start the prepared rain", "POST", wire.RainPath(wire.PathStart, b.Code),
			wire.Start{Epoch: b.Epoch, StartsAt: now.Add(-time.Second).UnixNano(), EndsAt: now.Add(time.Hour).UnixNano()}},
		{"stop the rain on sale", "POST", wire.RainPath(wire.PathStop, a.Code), wire.Stop{At: now.UnixNano()}},
		{"discard the prepared slices", "POST", wire.RainPath(wire.PathDiscard, b.Code), wire.Discard{Epoch: b.Epoch}},
		{"settle the rain on sale", "POST", wire.RainPath(wire.PathSettle, a.Code), wire.Settle{}},
		{"read progress", "GET", wire.PathProgress, nil},
		{"read one rain's progress", "GET", wire.PathProgress + "?code=" + a.Code, nil},
	}
	for _, at := range attacks {
		body := mustJSON(t, at.in)
		path := at.path // the request target: the signature covers the query too
		forged := signed(k.c.Opts.Secret, at.method, path, body, time.Now())
		forged.Set(wire.HeaderSignature, strings.Repeat("ab", 32))
		tries := []struct {
			how  string
			h    http.Header
			want int
		}{
			{"unsigned", nil, 401},
			{"signed with a wrong secret", signed(k.outsiderSecret, at.method, path, body, time.Now()), 403},
			{"forged signature", forged, 403},
		}
		for _, n := range k.members() {
			for _, try := range tries {
				st, resp := k.send(t, at.method, "http://"+n.HTTP+at.path, body, try.h)
				word := map[int]string{401: `"unauthorized"`, 403: `"forbidden"`}[try.want]
				if st != try.want || !strings.Contains(resp, word) || strings.Contains(resp, a.Code) {
					t.Errorf("%s, %s, on %s: %d %s; want %d %s telling nothing", at.name, try.how, n.ID, st, resp, try.want, word)
				}
			}
		}
	}
	if after := k.money(t); !reflect.DeepEqual(after, before) {
		t.Errorf("refused requests changed what the nodes hold:\nbefore %+v\nafter  %+v", before, after)
	}
	k.expectClaim(t, n1.HTTP, a.Code, 6, 200)
	k.expectClaim(t, n1.HTTP, b.Code, 6, 425)
	k.expectClaim(t, n1.HTTP, "outsiders-rain", 6, 404)
	for code, want := range map[string]rain.Status{a.Code: rain.Raining, b.Code: rain.Prepared} {
		if r, err := k.c.Admin().Get(context.Background(), code); err != nil || r.Status != want {
			t.Errorf("rain %s: %v %v, want %s", code, r.Status, err, want)
		}
	}
	// The members still obey the coordinator (no cache or lock was exhausted by the refusals).
	if _, err := k.c.Admin().Act(context.Background(), b.Code, "start", anchor); err != nil {
		t.Fatal(err)
	}
	k.expectClaim(t, n1.HTTP, b.Code, 7, 200)
}

func (k *kit) expectClaim(t *testing.T, addr, code string, user uint64, want int) {
	t.Helper()
	if st, body := k.claim(t, addr, code, user); st != want {
		t.Errorf("claim of rain %s: %d %s, want %d", code, st, body, want)
	}
}

// A request signed with the secret is accepted once: sent again it is refused, and so is its
// signature on another body, path, query or method; a signing time outside the 30 s window is refused,
// one inside is accepted; a slice for one node is refused by another. The node counts why
// (redrain_internal_refused_total{reason}; its log of refusals is paced to one line a second).
func (k *kit) replayRefused(t *testing.T) {
	n1, n2, a := k.c.Nodes[0], k.c.Nodes[1], k.raining
	secret, url := k.c.Opts.Secret, "http://"+n1.HTTP
	refusedBefore := refusedCounts(t, n1.HTTP)
	startOf := func(epoch uint64) []byte { // an idempotent repeat of the rain's start
		now := time.Now()
		return mustJSON(t, wire.Start{Epoch: epoch, StartsAt: now.Add(-time.Second).UnixNano(), EndsAt: now.Add(time.Hour).UnixNano()})
	}
	path, body := wire.RainPath(wire.PathStart, a.Code), startOf(a.Epoch)
	h := signed(secret, "POST", path, body, time.Now())
	get := signed(secret, "GET", wire.PathProgress, nil, time.Now())
	sends := []struct {
		what         string
		method, path string
		body         []byte
		h            http.Header
		want         int
	}{
		{"captured start, first time", "POST", path, body, h, 200},
		{"captured start, replayed", "POST", path, body, h, 403},
		{"its signature on another body", "POST", path, startOf(a.Epoch + 1), h, 403},
		{"its signature on another rain", "POST", wire.RainPath(wire.PathStart, k.prepared.Code), body, h, 403},
		{"its signature on another method", "GET", wire.PathProgress, nil, h, 403},
		{"captured progress read, a query appended", "GET", wire.PathProgress + "?code=" + a.Code, nil, get, 403},
		{"captured progress read, first time", "GET", wire.PathProgress, nil, get, 200},
		{"captured progress read, replayed", "GET", wire.PathProgress, nil, get, 403},
		{"signed 31 s ago", "POST", path, body, signed(secret, "POST", path, body, time.Now().Add(-31*time.Second)), 403},
		{"signed 31 s ahead", "POST", path, body, signed(secret, "POST", path, body, time.Now().Add(31*time.Second)), 403},
		{"signed 20 s ago", "POST", path, body, signed(secret, "POST", path, body, time.Now().Add(-20*time.Second)), 200},
	}
	for _, s := range sends {
		if st, resp := k.send(t, s.method, url+s.path, s.body, s.h); st != s.want {
			t.Errorf("%s: %d %s, want %d", s.what, st, resp, s.want)
		}
	}
	after := refusedCounts(t, n1.HTTP)
	for r, want := range map[string]int{"replay": 2, "stale": 2, "bad_signature": 4} {
		if got := after[r] - refusedBefore[r]; got != want {
			t.Errorf("n1 counted %d %q refusals, want %d", got, r, want)
		}
	}
	if count(t, n1.Proc.Log, "internal request refused") == 0 {
		t.Error("n1 logged no refusal at all")
	}
	// A slice names its node: signed for n1, it is refused by n2 (so a captured one cannot be
	// replayed elsewhere).
	sl := mustJSON(t, wire.SliceAssignment{Rules: wire.RainRules{Code: a.Code, MaxPerUser: a.MaxPerUser},
		Slice: rain.Slice{Code: a.Code, ID: 98, Epoch: a.Epoch, Node: n1.ID, Count: 1, Amount: 1, Algorithm: rain.Equal}})
	hs := signed(secret, "POST", wire.PathSlices, sl, time.Now())
	if st, resp := k.send(t, "POST", "http://"+n2.HTTP+wire.PathSlices, sl, hs); st != 400 {
		t.Errorf("n1's slice sent to n2: %d %s, want 400", st, resp)
	}
}

// Every admin action, refused or not, is one JSON line "admin" in coordinator.log with the
// action, the rain, the anchor_id, the status, the outcome and the remote address: never the token.
func (k *kit) adminAudited(t *testing.T) {
	ctx, adm, base := context.Background(), k.c.Admin(), "http://"+k.c.CoordHTTP
	r, err := adm.Create(ctx, rain.Config{AnchorID: anchor, TotalAmount: 3000, TotalCount: 30, DurationS: 900})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		method, path, token string
		body                any
		want                auditLine
	}{
		{"POST", "/prepare", "", map[string]int64{"anchor_id": anchor}, auditLine{"prepare", r.Code, anchor, 200, "ok"}},
		{"POST", "/start", "", map[string]int64{"anchor_id": anchor}, auditLine{"start", r.Code, anchor, 200, "ok"}},
		{"GET", "", "", nil, auditLine{"get", r.Code, 0, 200, "ok"}},
		{"GET", "/report", "", nil, auditLine{"report", r.Code, 0, 200, "ok"}},
		{"POST", "/stop", "", map[string]int64{"anchor_id": anchor + 1}, auditLine{"stop", r.Code, anchor + 1, 403, "forbidden"}},
		{"GET", "", k.wrongToken, nil, auditLine{"get", r.Code, 0, 401, "unauthorized"}},
		{"POST", "/stop", k.wrongToken, map[string]int64{"anchor_id": anchor}, auditLine{"stop", r.Code, 0, 401, "unauthorized"}},
		{"POST", "/stop", "", map[string]int64{"anchor_id": anchor}, auditLine{"stop", r.Code, anchor, 200, "ok"}},
	}
	want := []auditLine{{"create", r.Code, anchor, 201, "ok"}}
	for _, s := range steps {
		tok := k.c.Opts.AdminToken
		if s.token != "" {
			tok = s.token
		}
		st, resp := k.send(t, s.method, base+"/v1/rains/"+r.Code+s.path, mustJSON(t, s.body), http.Header{"Authorization": {"Bearer " + tok}})
		if st != s.want.Status {
			t.Fatalf("%s %s: %d %s, want %d", s.method, s.path, st, resp, s.want.Status)
		}
		want = append(want, s.want)
	}
	if st, resp := k.send(t, "GET", fmt.Sprintf("%s/v1/rains?anchor_id=%d", base, anchor), nil,
		http.Header{"Authorization": {"Bearer " + k.c.Opts.AdminToken}}); st != 200 {
		t.Fatalf("list: %d %s", st, resp)
	}
	want = append(want, auditLine{"list", "", anchor, 200, "ok"})
	got := k.auditLines(t)
	i := 0
	for _, w := range want { // in order, other admin lines (polls) may come between
		for i < len(got) && got[i] != w {
			i++
		}
		if i == len(got) {
			t.Errorf("no audit line %+v in order in coordinator.log (%d admin lines)", w, len(got))
			return
		}
	}
}

// auditLine is what an "admin" log line says about one request.
type auditLine struct {
	Action   string `json:"action"`
	Rain     string `json:"rain"`
	AnchorID int64  `json:"anchor_id"`
	Status   int    `json:"status"`
	Outcome  string `json:"outcome"`
}

// auditLines reads coordinator.log's "admin" lines, checking each carries every audit field and
// a remote address, and no token.
func (k *kit) auditLines(t *testing.T) []auditLine {
	t.Helper()
	f, err := os.Open(k.c.Coord.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil || m["msg"] != "admin" {
			continue
		}
		for _, f := range []string{"time", "level", "action", "rain", "anchor_id", "status", "outcome", "remote"} {
			if _, ok := m[f]; !ok {
				t.Errorf("audit line without %q: %s", f, sc.Text())
			}
		}
		if r, _ := m["remote"].(string); !strings.HasPrefix(r, "127.0.0.1:") {
			t.Errorf("audit line's remote %q is not the client's address: %s", r, sc.Text())
		}
		if strings.Contains(sc.Text(), k.c.Opts.AdminToken) || strings.Contains(sc.Text(), k.wrongToken) {
			t.Errorf("audit line carries a token: %s", sc.Text())
		}
		var a auditLine
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Errorf("audit line %s: %v", sc.Text(), err)
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// After the whole run (create, prepare, start, claims, refused and replayed requests, stop), no
// process log and no /metrics page holds a secret: the cluster secret, the admin token, the keys
// derived from the secret (gossip, internal API; hex, base64 or raw), nor the outsider's.
func (k *kit) noSecretInLogsOrMetrics(t *testing.T) {
	for _, r := range []string{k.raining.Code, k.prepared.Code} {
		if _, err := k.c.Admin().Act(context.Background(), r, "stop", anchor); err != nil {
			t.Fatal(err)
		}
	}
	needles := map[string]string{"admin token": k.c.Opts.AdminToken, "outsider's admin token": k.wrongToken}
	for who, s := range map[string]string{"cluster": k.c.Opts.Secret, "outsider's": k.outsiderSecret} {
		needles[who+" secret"] = s
		for kind, key := range map[string][]byte{"gossip key": gossip.GossipKey(s), "internal key": wire.DeriveKey(s, wire.InternalLabel)} {
			needles[who+" "+kind+" (hex)"] = hex.EncodeToString(key)
			needles[who+" "+kind+" (HEX)"] = strings.ToUpper(hex.EncodeToString(key))
			needles[who+" "+kind+" (base64)"] = base64.StdEncoding.EncodeToString(key)
			needles[who+" "+kind+" (base64url)"] = base64.RawURLEncoding.EncodeToString(key)
			needles[who+" "+kind+" (raw)"] = string(key)
		}
	}
	haystacks := map[string]string{}
	for _, p := range k.logs() {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		haystacks[p] = string(b)
	}
	haystacks["coordinator /metrics"] = k.metrics(t, k.c.CoordHTTP)
	for _, n := range append(k.c.Nodes, k.extra...) {
		haystacks[n.ID+" /metrics"] = k.metrics(t, n.HTTP)
	}
	for where, text := range haystacks {
		for what, s := range needles {
			if strings.Contains(text, s) {
				t.Errorf("%s holds the %s", where, what)
			}
		}
	}
	// The haystacks are the real ones: the run is in them.
	if !strings.Contains(haystacks[k.c.Coord.Log], k.raining.Code) || !strings.Contains(haystacks["n1 /metrics"], "redrain_claims_total") {
		t.Errorf("logs or metrics do not show the run")
	}
}

func (k *kit) metrics(t *testing.T, addr string) string {
	t.Helper()
	resp, err := k.http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("metrics of %s: %d %v", addr, resp.StatusCode, err)
	}
	return string(b)
}

// refusedCounts reads a node's redrain_internal_refused_total by reason.
func refusedCounts(t *testing.T, addr string) map[string]int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, `redrain_internal_refused_total{reason="`)
		if !ok {
			continue
		}
		reason, val, _ := strings.Cut(rest, `"} `)
		var n float64
		fmt.Sscan(val, &n)
		out[reason] = int(n)
	}
	return out
}
