package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"redrain/gossip"
	"redrain/internal/roomevents"
	"redrain/internal/sseclient"
	"redrain/internal/testcluster"
	"redrain/internal/usertoken"
)

// sse is one subscription over real HTTP (internal/sseclient), failing its test on errors.
type sse struct {
	t testing.TB
	*sseclient.Stream
}

// frame is one Server-Sent Events block: an event (id, data) or a comment.
type frame struct {
	id, data, comment string
}

// eventData is an event's data as the node writes it.
type eventData = sseclient.Event

// subscribe opens path on addr with the headers given (tcp, 127.0.0.1) and reads the answer's head.
func subscribe(t testing.TB, addr, path string, headers ...string) *sse {
	t.Helper()
	st, err := sseclient.Dial(addr, path, 10*time.Second, headers...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &sse{t: t, Stream: st}
}

// errorWord is the status and error word of a refused subscription.
func (s *sse) errorWord() string { return fmt.Sprintf("%d %s", s.Status, s.Word) }

// next reads one frame within 5 s.
func (s *sse) next() (frame, error) {
	f, err := s.Next(time.Now().Add(5 * time.Second))
	return frame{id: f.ID, data: f.Data, comment: f.Comment}, err
}

// event reads frames, skipping heartbeats, until an event.
func (s *sse) event() (frame, eventData) {
	s.t.Helper()
	for {
		f, err := s.next()
		if err != nil {
			s.t.Fatalf("read event: %v", err)
		}
		if f.comment == "heartbeat" {
			continue
		}
		var d eventData
		if err := json.Unmarshal([]byte(f.data), &d); err != nil {
			s.t.Fatalf("event data %q: %v", f.data, err)
		}
		return f, d
	}
}

// quiet asserts the next frame is a heartbeat (no event waiting).
func (s *sse) quiet() {
	s.t.Helper()
	f, err := s.next()
	if err != nil || f.comment != "heartbeat" {
		s.t.Fatalf("want a heartbeat, got %+v, %v", f, err)
	}
}

func eventsHarness(t *testing.T, tweak func(*Options)) *harness {
	return newHarness(t, true, func(o *Options) {
		o.Heartbeat = 50 * time.Millisecond
		if tweak != nil {
			tweak(o)
		}
	})
}

// news of a rain's stages: prepared, started and stopped (versions 1..3), times near now.
func stagesOf(code string, room int64) []gossip.News {
	t0 := time.Now().UnixNano()
	n := gossip.News{Code: code, Epoch: 1, RoomID: room, TotalCount: 100, PreparedAt: t0}
	p, s, f := n, n, n
	p.Kind, p.Version = gossip.KindPrepared, 1
	s.Kind, s.Version, s.StartsAt, s.EndsAt = gossip.KindStarted, 2, t0+1e6, t0+60e9
	f.Kind, f.Version, f.StartsAt, f.EndsAt, f.StoppedAt = gossip.KindStopped, 3, t0+1e6, t0+60e9, t0+2e6
	return []gossip.News{p, s, f}
}

func TestEventsStreamResumeAndRooms(t *testing.T) {
	h := eventsHarness(t, nil)
	a := subscribe(t, h.addr(), "/v1/rooms/7/events")
	other := subscribe(t, h.addr(), "/v1/rooms/8/events")
	if a.Status != 200 || a.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("answer %d %q", a.Status, a.Header.Get("Content-Type"))
	}
	a.quiet() // registered: a heartbeat came
	other.quiet()
	stages := stagesOf("RainSeven", 7)
	var ids []string
	for i, ns := range stages {
		h.n.onNews(ns)
		if i == 1 {
			h.n.onNews(ns) // heard twice (by another route): told once
		}
		f, d := a.event()
		want := []string{"prepared", "raining", "finished"}[i]
		if d.Status != want || d.Code != "RainSeven" || d.RoomID != 7 || d.TotalCount != 100 {
			t.Fatalf("event %d: %+v", i, d)
		}
		if (d.StartsAt == nil) != (want == "prepared") {
			t.Fatalf("event %d starts_at %v", i, d.StartsAt)
		}
		if k, err := roomevents.ParseID(f.id); err != nil || k.Status != want || k.Code != "RainSeven" {
			t.Fatalf("event %d id %q: %+v %v", i, f.id, k, err)
		}
		ids = append(ids, f.id)
	}
	a.quiet()
	other.quiet() // another room hears nothing

	// Resume after the first: the two others, in order; after the last: nothing.
	r := subscribe(t, h.addr(), "/v1/rooms/7/events", "Last-Event-ID", ids[0])
	for _, want := range ids[1:] {
		if f, _ := r.event(); f.id != want {
			t.Fatalf("resumed %q, want %q", f.id, want)
		}
	}
	r.quiet()
	subscribe(t, h.addr(), "/v1/rooms/7/events", "Last-Event-ID", ids[2]).quiet()
	subscribe(t, h.addr(), "/v1/rooms/7/events").quiet() // no Last-Event-ID: live only

	// A node that hears only the latest news of a rain still tells every stage, same ids.
	late := stagesOf("RainLate", 7)
	h.n.onNews(late[2])
	for _, want := range []string{"prepared", "raining", "finished"} {
		if _, d := a.event(); d.Status != want || d.Code != "RainLate" {
			t.Fatalf("late rain: %+v, want %s", d, want)
		}
	}
}

func TestEventsCancelled(t *testing.T) {
	h := eventsHarness(t, nil)
	s := subscribe(t, h.addr(), "/v1/rooms/0/events")
	s.quiet()
	t0 := time.Now().UnixNano()
	h.n.onNews(gossip.News{Code: "Off", Kind: gossip.KindCancelled, Epoch: 1, Version: 2, PreparedAt: t0, StoppedAt: t0 + 5})
	for _, want := range []string{"prepared", "cancelled"} {
		if _, d := s.event(); d.Status != want || d.StartsAt != nil {
			t.Fatalf("%+v, want %s", d, want)
		}
	}
}

func TestEventsBadRequests(t *testing.T) {
	h := eventsHarness(t, nil)
	for _, room := range []string{"abc", "-1", "+1", "01", "1.5", "", "9223372036854775808", "%31"} {
		if got := subscribe(t, h.addr(), "/v1/rooms/"+room+"/events").errorWord(); got != "400 bad_room" {
			t.Errorf("room %q: %s", room, got)
		}
	}
	for _, id := range []string{"x", "1.raining", "1.nope.Code", "01.raining.Code", "1.raining.bad code", "-1.raining.C"} {
		if got := subscribe(t, h.addr(), "/v1/rooms/1/events", "Last-Event-ID", id).errorWord(); got != "400 bad_last_event_id" {
			t.Errorf("id %q: %s", id, got)
		}
	}
	s := subscribe(t, h.addr(), "/v1/rooms/1/events", "Last-Event-ID", "1.raining.A", "Last-Event-ID", "1.raining.A")
	if got := s.errorWord(); got != "400 bad_last_event_id" {
		t.Errorf("Last-Event-ID twice: %s", got)
	}
	if code, body := h.do("POST", "/v1/rooms/1/events", nil, nil); code != 405 || !strings.Contains(body, "method_not_allowed") {
		t.Errorf("POST: %d %s", code, body)
	}
	if n := h.n.events.subscribers(); n != 0 {
		t.Fatalf("refused requests left %d subscribers counted", n)
	}
}

func TestEventsLimits(t *testing.T) {
	h := eventsHarness(t, func(o *Options) {
		o.MaxSubscribers, o.MaxSubscribersPerIP = 3, 2
		o.TrustedProxies = []string{"127.0.0.1/32"} // X-Forwarded-For names the client
	})
	from := func(ip string) *sse { return subscribe(t, h.addr(), "/v1/rooms/1/events", "X-Forwarded-For", ip) }
	a1, a2 := from("10.0.0.1"), from("10.0.0.1")
	a1.quiet()
	a2.quiet()
	if got := from("10.0.0.1").errorWord(); got != "429 too_many_subscribers" {
		t.Fatalf("third from one address: %s", got)
	}
	from("10.0.0.2").quiet()
	if got := from("10.0.0.3").errorWord(); got != "503 too_many_subscribers" {
		t.Fatalf("fourth on the node: %s", got)
	}
	// A subscriber that leaves frees its place once a write to it fails (the next heartbeat).
	a1.Conn.Close()
	testcluster.Eventually(t, 5*time.Second, "a place freed", func() bool { return h.n.events.subscribers() == 2 })
	from("10.0.0.3").quiet()
	a2.quiet() // the others are still served
}

func TestEventsSlowConsumerDropped(t *testing.T) {
	// The deadline leaves the reader room to be descheduled for a while on a loaded machine.
	h := eventsHarness(t, func(o *Options) { o.EventWriteTimeout = 300 * time.Millisecond; o.Heartbeat = time.Hour })
	// A subscriber that never reads, with a small receive window, and one that reads everything.
	c, err := net.Dial("tcp", h.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	io.WriteString(c, "GET /v1/rooms/5/events HTTP/1.1\r\nHost: x\r\n\r\n")
	good := subscribe(t, h.addr(), "/v1/rooms/5/events")
	good.Conn.(*net.TCPConn).SetReadBuffer(4 << 20)
	got := make(chan int, 1)
	go func() { // the reader: counts events until its stream ends
		n := 0
		for {
			if _, err := good.Next(time.Now().Add(time.Minute)); err != nil {
				got <- n
				return
			}
			n++
		}
	}()
	testcluster.Eventually(t, 5*time.Second, "both subscribed", func() bool { return h.n.events.subscribers() == 2 })
	t0 := time.Now().UnixNano()
	i := 0
	testcluster.Eventually(t, 30*time.Second, "the slow subscriber dropped", func() bool {
		for range 200 { // 600 events a round, each ~250 bytes
			i++
			h.n.events.publish(roomevents.Lifecycle{Code: fmt.Sprintf("R%d", i), Room: 5, TotalCount: 1,
				PreparedAt: t0 + int64(i), StartsAt: t0 + int64(i), EndsAt: t0 + 1e12, StoppedAt: t0 + int64(i)})
		}
		return h.n.events.slow.Load() >= 1
	})
	// Counted slow by the write that failed; released by its shard right after.
	testcluster.Eventually(t, 5*time.Second, "the reader alone subscribed", func() bool { return h.n.events.subscribers() == 1 })
	if n := h.n.events.slow.Load(); n != 1 {
		t.Fatalf("%d subscribers dropped as slow, want 1", n)
	}
	select {
	case n := <-got:
		t.Fatalf("the reading subscriber was dropped too, after %d frames", n)
	default:
	}
}

func TestEventsTokenMode(t *testing.T) {
	const key = "events-test-user-key-0123456789"
	h := eventsHarness(t, func(o *Options) { o.Auth, o.UserKey = AuthToken, key })
	k := usertoken.NewKey([]byte(key))
	tok := k.Mint(usertoken.Claims{User: 9, Room: 7, ExpiresAt: time.Now().Add(time.Hour).Unix()})
	for _, c := range []struct {
		path, auth, want string
	}{
		{"/v1/rooms/7/events", "", "401 bad_token"},
		{"/v1/rooms/7/events", "Bearer nonsense", "401 bad_token"},
		{"/v1/rooms/7/events?access_token=nonsense", "", "401 bad_token"},
		{"/v1/rooms/8/events", "Bearer " + tok, "403 wrong_room"},
		{"/v1/rooms/8/events?access_token=" + tok, "", "403 wrong_room"},
	} {
		var s *sse
		if c.auth == "" {
			s = subscribe(t, h.addr(), c.path)
		} else {
			s = subscribe(t, h.addr(), c.path, "Authorization", c.auth)
		}
		if got := s.errorWord(); got != c.want {
			t.Errorf("%s %q: %s, want %s", c.path, c.auth, got, c.want)
		}
	}
	subscribe(t, h.addr(), "/v1/rooms/7/events", "Authorization", "Bearer "+tok).quiet()
	subscribe(t, h.addr(), "/v1/rooms/7/events?access_token="+tok).quiet()
}

func TestEventsCloseDisconnects(t *testing.T) {
	h := eventsHarness(t, nil)
	s := subscribe(t, h.addr(), "/v1/rooms/3/events")
	s.quiet()
	h.n.Close()
	for {
		if _, err := s.next(); err == io.EOF || err == io.ErrUnexpectedEOF {
			return
		} else if err != nil {
			t.Fatalf("after Close: %v", err)
		}
	}
}

// BenchmarkEventsFanout is one event written to 1000 subscribers over loopback TCP (their
// readers drain in the background): the hub's cost per event, so per subscriber it is the
// figure divided by 1000.
func BenchmarkEventsFanout(b *testing.B) {
	const subs = 1000
	h := newEventHub(hubOptions{max: subs, perAddr: subs, heartbeat: time.Hour, writeTimeout: time.Second})
	h.start()
	defer h.close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var readers []net.Conn
	for range subs {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		readers = append(readers, c)
		go io.Copy(io.Discard, c)
		if err := h.reserve("a"); err != nil {
			b.Fatal(err)
		}
		h.join(&subscriber{conn: s, room: 1, addr: "a"}, roomevents.Key{}, false)
	}
	defer func() {
		for _, c := range readers {
			c.Close()
		}
	}()
	t0 := time.Now().UnixNano()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		want := h.sent.Load() + subs
		h.publish(roomevents.Lifecycle{Code: "B", Room: 1, TotalCount: 1, PreparedAt: t0 + int64(i)})
		for h.sent.Load() < want {
			runtime.Gosched()
		}
	}
	b.StopTimer()
	if h.slow.Load() != 0 {
		b.Fatalf("%d subscribers dropped as slow", h.slow.Load())
	}
}
