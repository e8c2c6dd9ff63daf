package gossip

import (
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"redrain/internal/proc"
	"redrain/internal/testcluster"
)

const testSecret = "test-secret"

// settle bounds every wait for the cluster to converge. Typical waits are far shorter (a crash is
// declared dead in ~1.2 s; the tests log it); the margin is for loaded CI machines.
const settle = 10 * time.Second

// testLogger discards memberlist's chatter unless GOSSIP_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("GOSSIP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// recorder keeps every callback a member got.
type recorder struct {
	mu      sync.Mutex
	members map[string][]State // member id -> states in the order OnMember reported them
	last    map[string]Member
	news    []News
}

func newRecorder() *recorder {
	return &recorder{members: make(map[string][]State), last: make(map[string]Member)}
}

func (r *recorder) onMember(m Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.members[m.ID] = append(r.members[m.ID], m.State)
	r.last[m.ID] = m
}

func (r *recorder) onNews(n News) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.news = append(r.news, n)
}

// states returns the states reported for a member so far.
func (r *recorder) states(id string) []State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]State(nil), r.members[id]...)
}

// gotNews reports whether OnNews delivered exactly n.
func (r *recorder) gotNews(n News) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, got := range r.news {
		if got == n {
			return true
		}
	}
	return false
}

func (r *recorder) newsCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.news)
}

// testMember is a started Cluster with its recorded callbacks.
type testMember struct {
	*Cluster
	rec *recorder
}

// testOptions are LocalOptions for a member with this id.
func testOptions(id string, role Role, join ...string) Options {
	o := LocalOptions()
	o.Meta = Meta{ID: id, Role: role, HTTPAddr: "127.0.0.1:8" + strconv.Itoa(len(id)) + "00/" + id}
	o.Secret = testSecret
	o.Join = join
	o.Logger = testLogger()
	return o
}

// start starts a member (shut down when the test ends) recording its callbacks.
func start(t *testing.T, o Options) *testMember {
	t.Helper()
	rec := newRecorder()
	o.OnMember, o.OnNews = rec.onMember, rec.onNews
	c, err := New(o)
	if err != nil {
		t.Fatalf("New(%s): %v", o.Meta.ID, err)
	}
	t.Cleanup(func() {
		if err := c.Shutdown(); err != nil {
			t.Errorf("Shutdown(%s): %v", o.Meta.ID, err)
		}
	})
	return &testMember{Cluster: c, rec: rec}
}

// seesAs reports whether c sees member id in state s.
func seesAs(c *testMember, id string, s State) bool {
	m, ok := c.Member(id)
	return ok && m.State == s
}

// allSeeAlive waits until every member sees every other alive.
func allSeeAlive(t *testing.T, ms ...*testMember) {
	t.Helper()
	testcluster.Eventually(t, settle, "members see each other alive", func() bool {
		for _, a := range ms {
			for _, b := range ms {
				if !seesAs(a, b.opts.Meta.ID, StateAlive) {
					return false
				}
			}
		}
		return true
	})
}

// freePort returns a port that was free for both TCP and UDP on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// indexOf is the position of s in states at or after from, or -1.
func indexOf(states []State, s State, from int) int {
	for i := from; i < len(states); i++ {
		if states[i] == s {
			return i
		}
	}
	return -1
}

// LocalMember is this member as the cluster sees it (tests only).
func (c *Cluster) LocalMember() Member {
	m, _ := c.Member(c.opts.Meta.ID)
	return m
}
