package gossip

import (
	"encoding/hex"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"redrain/internal/testcluster"
	"redrain/rain"
)

func TestGossipKeyIsPinned(t *testing.T) {
	// HMAC-SHA256(key "test-secret", "redrain/gossip/v1"), computed outside Go.
	const want = "449bb0ced8326a6385ce7231ef1622a545b67d2c5c81eb19496c026e430c5c07"
	if got := hex.EncodeToString(GossipKey("test-secret")); got != want {
		t.Errorf("GossipKey = %s, want %s", got, want)
	}
	if len(GossipKey("")) != 32 {
		t.Error("key is not 32 bytes (AES-256)")
	}
}

func TestNewsStoreKeepsTheNewestVersion(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	at := func(d time.Duration) int64 { return now.Add(d).UnixNano() }
	news := func(code string, v uint64, ends time.Duration) News {
		return News{Code: code, Kind: KindStarted, StartsAt: at(ends - time.Minute), EndsAt: at(ends), Version: v}
	}
	s := newNewsStore(2, time.Hour)
	steps := []struct {
		name string
		n    News
		want bool
	}{
		{"first", news("a", 2, 0), true},
		{"older", news("a", 1, 0), false},
		{"same version", news("a", 2, time.Second), false},
		{"newer", news("a", 3, 0), true},
		{"ended longer ago than retention", news("old", 1, -2*time.Hour), false},
		{"second rain", news("b", 1, time.Minute), true},
		{"full, ends before all kept", news("c", 1, -time.Minute), false},
		{"full, ends after the first to end: evicts it", news("d", 1, 2*time.Minute), true},
		{"no times: never expires", News{Code: "e", Kind: KindStopped, Version: 1}, false}, // full, ends "first"
	}
	for _, st := range steps {
		if got := s.offer(st.n, now); got != st.want {
			t.Errorf("%s: offer = %v, want %v", st.name, got, st.want)
		}
	}
	if _, ok := s.byCode["a"]; ok {
		t.Error("a (ends first) should have been evicted for d")
	}
	if got := s.byCode["d"]; got.Version != 1 {
		t.Errorf("d = %+v", got)
	}
	if n := s.prune(now.Add(time.Hour + 90*time.Second)); n != 1 || len(s.byCode) != 1 {
		t.Errorf("prune dropped %d, left %v; want b dropped, d kept", n, s.byCode)
	}
	if got := newNewsStore(1, time.Hour); !got.offer(News{Code: "z", Kind: KindStopped, Version: 1}, now) || got.prune(now.Add(1e6*time.Hour)) != 0 {
		t.Error("news without times must be accepted and never expire")
	}
}

func TestNewsValidate(t *testing.T) {
	ok := News{Code: "c", Kind: KindStopped, Version: 1}
	bad := []News{
		{Kind: KindStarted, Version: 1},
		{Code: strings.Repeat("c", rain.MaxCodeLen+1), Kind: KindStarted, Version: 1},
		{Code: "c", Kind: "", Version: 1},
		{Code: "c", Kind: KindStarted},
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", ok, err)
	}
	for _, n := range bad {
		if n.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", n)
		}
	}
}

func TestDecodeRefusesBadInput(t *testing.T) {
	n := News{Code: "c", Kind: KindStarted, Epoch: 3, EndsAt: 5, Version: 2}
	if got, ok := decodeNewsMsg(encodeNewsMsg(n)); !ok || got != n {
		t.Errorf("round trip = %+v %v", got, ok)
	}
	for _, buf := range [][]byte{nil, {msgNews}, {2, '{', '}'}, []byte("\x01[]"), []byte(`\x01{"code":"c","kind":"started"}`),
		append([]byte{msgNews}, make([]byte, maxMsgLen)...)} {
		if got, ok := decodeNewsMsg(buf); ok {
			t.Errorf("decodeNewsMsg(%q) = %+v", buf, got)
		}
	}
	state := []byte(`{"news":{"c":{"code":"c","kind":"started","version":1},"x":{"code":"y","kind":"started","version":1},"z":{"code":"z","kind":"nope","version":1}}}`)
	if got := decodeState(state); len(got) != 1 || got[0].Code != "c" {
		t.Errorf("decodeState kept %+v, want only c", got)
	}
	if got := decodeState([]byte("not json")); got != nil {
		t.Errorf("decodeState(garbage) = %+v", got)
	}
}

func TestPushPullStateRoundTrip(t *testing.T) {
	s := newNewsStore(10, time.Hour)
	n := News{Code: "c", Kind: KindStarted, Version: 1}
	s.offer(n, time.Now())
	if got := decodeState(s.encode()); len(got) != 1 || got[0] != n {
		t.Errorf("decodeState(encode()) = %+v", got)
	}
}

func TestSuspectStep(t *testing.T) {
	cases := []struct {
		from     State
		misses   int
		answered bool
		want     State
		misses2  int
	}{
		{StateAlive, 0, false, StateAlive, 1},
		{StateAlive, 1, false, StateSuspect, 2},
		{StateAlive, 1, true, StateAlive, 0},
		{StateSuspect, 5, false, StateSuspect, 6},
		{StateSuspect, 5, true, StateAlive, 0},
		{StateDead, 5, true, StateDead, 0},
		{StateLeft, 0, false, StateLeft, 1},
	}
	for _, tc := range cases {
		m := tc.misses
		if got := suspectStep(tc.from, &m, tc.answered); got != tc.want || m != tc.misses2 {
			t.Errorf("suspectStep(%s, %d, %v) = %s, %d; want %s, %d", tc.from, tc.misses, tc.answered, got, m, tc.want, tc.misses2)
		}
	}
}

func TestParseLogLine(t *testing.T) {
	cases := []struct {
		line  string
		level slog.Level
		msg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=1.2.3.4\n", slog.LevelDebug, "Stream connection from=1.2.3.4"},
		{"[WARN] memberlist: Refuting a suspect message", slog.LevelWarn, "Refuting a suspect message"},
		{"[ERR] memberlist: Failed to send", slog.LevelError, "Failed to send"},
		{"[INFO] memberlist: Marking n1 as failed", slog.LevelInfo, "Marking n1 as failed"},
		{"something else", slog.LevelInfo, "something else"},
	}
	for _, tc := range cases {
		if level, msg := parseLogLine([]byte(tc.line)); level != tc.level || msg != tc.msg {
			t.Errorf("parseLogLine(%q) = %v %q, want %v %q", tc.line, level, msg, tc.level, tc.msg)
		}
	}
}

func TestMemberOfTellsLeftFromDead(t *testing.T) {
	node := func(meta Meta, leaving bool) *memberlist.Node {
		return &memberlist.Node{Name: meta.ID, Addr: net.IPv4(10, 0, 0, 1), Port: 7946, Meta: meta.encode(leaving)}
	}
	meta := Meta{ID: "n1", Role: RoleNode, HTTPAddr: "10.0.0.1:8080"}
	cases := []struct {
		leaving, gone bool
		want          State
	}{
		{false, false, StateAlive},
		{false, true, StateDead},
		{true, false, StateLeft},
		{true, true, StateLeft},
	}
	for _, tc := range cases {
		m, err := memberOf(node(meta, tc.leaving), tc.gone)
		want := Member{ID: "n1", Role: RoleNode, HTTPAddr: "10.0.0.1:8080", GossipAddr: "10.0.0.1:7946", State: tc.want}
		if err != nil || m != want {
			t.Errorf("leaving=%v gone=%v: %+v, %v; want %+v", tc.leaving, tc.gone, m, err, want)
		}
	}
	if m, err := memberOf(&memberlist.Node{Name: "x", Addr: net.IPv4(10, 0, 0, 2), Port: 1, Meta: []byte("{")}, true); err == nil || m.State != StateDead || m.ID != "x" {
		t.Errorf("bad meta: %+v, %v", m, err)
	}
}

func TestDispatcherCoalescesAndNeverBlocksTheCaller(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var got []Member
	d := newDispatcher(func(m Member) {
		<-release
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}, nil)
	defer d.close()
	d.member(Member{ID: "first"}) // the callback is now stuck on it
	testcluster.Eventually(t, 5*time.Second, "first event taken", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.order) == 0
	})
	for _, s := range []State{StateAlive, StateSuspect, StateDead} { // enqueued while the callback is stuck
		d.member(Member{ID: "n1", State: s})
	}
	d.member(Member{ID: "n2", State: StateAlive})
	d.newsArrived(News{Code: "c"}) // no OnNews: dropped
	close(release)
	testcluster.Eventually(t, 5*time.Second, "events delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	})
	want := []Member{{ID: "first"}, {ID: "n1", State: StateDead}, {ID: "n2", State: StateAlive}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestPruneForgetsLongDeadMembersAndOldNews(t *testing.T) {
	c := &Cluster{
		opts:    Options{Meta: Meta{ID: "self"}, MemberRetention: time.Hour},
		members: make(map[string]*memberEntry),
		news:    newNewsStore(10, time.Hour),
	}
	now := time.Now()
	c.members["self"] = &memberEntry{m: Member{ID: "self", State: StateLeft}, changed: now.Add(-2 * time.Hour)}
	c.members["alive"] = &memberEntry{m: Member{ID: "alive", State: StateAlive}, changed: now.Add(-2 * time.Hour)}
	c.members["dead-old"] = &memberEntry{m: Member{ID: "dead-old", State: StateDead}, changed: now.Add(-2 * time.Hour)}
	c.members["left-new"] = &memberEntry{m: Member{ID: "left-new", State: StateLeft}, changed: now.Add(-time.Minute)}
	old := News{Code: "old", Kind: KindStopped, StoppedAt: now.Add(-90 * time.Minute).UnixNano(), Version: 1}
	if !c.news.offer(old, now.Add(-time.Hour)) {
		t.Fatal("news refused while still within retention")
	}
	c.prune(now)
	for id, want := range map[string]bool{"self": true, "alive": true, "dead-old": false, "left-new": true} {
		if _, ok := c.members[id]; ok != want {
			t.Errorf("member %s kept = %v, want %v", id, ok, want)
		}
	}
	if len(c.news.byCode) != 0 {
		t.Errorf("expired news kept: %v", c.news.byCode)
	}
}
