package viewers

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/sseclient"
	"redrain/internal/tap"
	"redrain/internal/testcluster"
	"redrain/internal/testlocal"
)

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }

const (
	room   = 21
	anchor = 3
)

// A rain of one packet on two nodes: one node holds its only slice, the other none. Viewers on
// both hear prepared, raining and finished, under the same ids, and a viewer that reconnects with
// Last-Event-ID to the node without a slice gets what it missed.
func TestViewersHearEveryTransitionOnEveryNode(t *testing.T) {
	c := testlocal.Cluster(t, cluster.ClusterOptions{Nodes: 2})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := "/v1/rooms/" + strconv.Itoa(room) + "/events"
	var streams []*sseclient.Stream
	for _, n := range c.Nodes {
		s, err := sseclient.Dial(n.HTTP, path, 5*time.Second)
		if err != nil || s.Status != 200 {
			t.Fatalf("subscribe on %s: %v %+v", n.ID, err, s)
		}
		defer s.Close()
		streams = append(streams, s)
	}
	other, err := sseclient.Dial(c.Nodes[0].HTTP, "/v1/rooms/22/events", 5*time.Second)
	if err != nil || other.Status != 200 {
		t.Fatalf("subscribe to another room: %v", err)
	}
	defer other.Close()

	adm := c.Admin()
	cfg := cluster.RainConfig(anchor, 500, 1, 1, 600)
	cfg.RoomID = room
	r, err := adm.Create(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([][]string, len(streams))
	hear := func(status string) []sseclient.Event {
		t.Helper()
		var out []sseclient.Event
		for i, s := range streams {
			f, e, err := s.NextEvent(time.Now().Add(10 * time.Second))
			if err != nil {
				t.Fatalf("node %s waiting for %s: %v", c.Nodes[i].ID, status, err)
			}
			if e.Status != status || e.Code != r.Code || e.RoomID != room || e.TotalCount != 1 {
				t.Fatalf("node %s: %+v, want %s", c.Nodes[i].ID, e, status)
			}
			ids[i] = append(ids[i], f.ID)
			out = append(out, e)
		}
		return out
	}
	p, err := adm.Act(ctx, r.Code, "prepare", anchor)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Slices) != 1 {
		t.Fatalf("a rain of one packet on %d slices", len(p.Slices))
	}
	holder := slices.IndexFunc(c.Nodes, func(n *cluster.LocalNode) bool { return n.ID == p.Slices[0].Node })
	bare := 1 - holder
	hear("prepared")
	st, err := adm.Act(ctx, r.Code, "start", anchor)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range hear("raining") {
		if e.StartsAt == nil || *e.StartsAt != *st.StartedAt || *e.EndsAt != *st.EndsAt {
			t.Fatalf("node %s: raining %+v, rain started_at %s ends_at %s", c.Nodes[i].ID, e, *st.StartedAt, *st.EndsAt)
		}
	}
	claimer := tap.NewClaimer(1)
	a := claimer.Claim(c.Nodes[holder].HTTP, r.Code, 77)
	if a.Status != 200 {
		t.Fatalf("claim: %+v", a)
	}
	if _, err := adm.Act(ctx, r.Code, "stop", anchor); err != nil {
		t.Fatal(err)
	}
	hear("finished")
	if !slices.Equal(ids[0], ids[1]) {
		t.Fatalf("the nodes named the transitions differently:\n%v\n%v", ids[0], ids[1])
	}
	if f, err := other.Next(time.Now().Add(200 * time.Millisecond)); err == nil {
		t.Fatalf("room 22 heard %+v", f)
	}

	// Reconnect to the node without a slice after the first event: the two others come back.
	re, err := sseclient.Dial(c.Nodes[bare].HTTP, path, 5*time.Second, "Last-Event-ID", ids[0][0])
	if err != nil || re.Status != 200 {
		t.Fatalf("resume: %v %+v", err, re)
	}
	defer re.Close()
	for _, want := range ids[0][1:] {
		f, _, err := re.NextEvent(time.Now().Add(5 * time.Second))
		if err != nil || f.ID != want {
			t.Fatalf("resumed %q (%v), want %q", f.ID, err, want)
		}
	}
	checkRain(ctx, t, c, r.Code, a)

	// A rain that runs out its time finishes by the coordinator's loop, and one stopped before it
	// started is cancelled: every viewer hears both, the node without a slice too.
	short := cluster.RainConfig(anchor, 500, 1, 1, 1)
	short.RoomID = room
	for _, c2 := range []struct {
		steps []string
		want  []string
	}{
		{[]string{"prepare", "start"}, []string{"prepared", "raining", "finished"}},
		{[]string{"prepare", "stop"}, []string{"prepared", "cancelled"}},
	} {
		r, err = adm.Create(ctx, short)
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range c2.steps {
			if _, err := adm.Act(ctx, r.Code, step, anchor); err != nil {
				t.Fatal(err)
			}
		}
		for _, status := range c2.want {
			hear(status)
		}
		rep, err := adm.Report(ctx, r.Code)
		if err != nil {
			t.Fatal(err)
		}
		if p := check.Report(rep); len(p) > 0 {
			t.Fatalf("report of %s: %v", r.Code, p)
		}
	}
}

// checkRain waits until Redis holds the claim, then checks the report and SPEC's invariants.
func checkRain(ctx context.Context, t *testing.T, c *cluster.LocalCluster, code string, a check.Answer) {
	t.Helper()
	var v *check.Verdict
	testcluster.Eventually(t, 20*time.Second, "the claim flushed and every invariant held", func() bool {
		credits, totals, nodes, err := check.ReadRedis(ctx, c.Client(), code)
		if err != nil {
			return false
		}
		v = check.Check([]check.Answer{a}, credits, totals, nodes, check.Expect{Code: code, TotalAmount: 500, TotalCount: 1, MaxPerUser: 1, Drained: true})
		return v.Err() == nil
	})
	rep, err := c.Admin().Report(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if p := check.Report(rep); len(p) > 0 {
		t.Fatalf("report: %v", p)
	}
}

// Event streams refuse what they must over real processes too: a bad room, a token-less viewer
// in token mode is covered by node's tests; here, the per-address limit a node was started with.
func TestViewersPerAddressLimitFromFlags(t *testing.T) {
	c := testlocal.Cluster(t, cluster.ClusterOptions{Nodes: 1, NodeArgs: []string{"--max-subscribers-per-ip", "2", "--heartbeat", "100ms"}})
	addr := c.Nodes[0].HTTP
	for i := range 2 {
		s, err := sseclient.Dial(addr, "/v1/rooms/1/events", 5*time.Second)
		if err != nil || s.Status != 200 {
			t.Fatalf("subscriber %d: %v %+v", i, err, s)
		}
		defer s.Close()
		if f, err := s.Next(time.Now().Add(5 * time.Second)); err != nil || f.Comment != "heartbeat" {
			t.Fatalf("subscriber %d: %+v %v", i, f, err)
		}
	}
	s, err := sseclient.Dial(addr, "/v1/rooms/1/events", 5*time.Second)
	if err != nil || s.Status != http.StatusTooManyRequests || s.Word != "too_many_subscribers" {
		t.Fatalf("third: %v %+v", err, s)
	}
}
