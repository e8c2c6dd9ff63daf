package roomevents

import (
	"strconv"
	"strings"
	"testing"
)

func TestIDRoundTrip(t *testing.T) {
	for _, k := range []Key{{At: 0, Code: "A", Status: Prepared}, {At: 1764452345123456789, Code: "ab-_Z09", Status: Raining},
		{At: 1<<63 - 1, Code: strings.Repeat("x", 22), Status: Cancelled}} {
		got, err := ParseID(k.ID())
		if err != nil || got != k {
			t.Fatalf("%q: %+v %v", k.ID(), got, err)
		}
	}
	for _, bad := range []string{"", "1", "1.raining", "1.raining.", ".raining.A", "01.raining.A", "+1.raining.A",
		"1.settled.A", "1.raining.A.B", "1.raining.a b", "9223372036854775808.raining.A", "1.raining." + strings.Repeat("x", 23)} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseRoom(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "7": 7, "9223372036854775807": 1<<63 - 1} {
		if got, err := ParseRoom([]byte(s)); err != nil || got != want {
			t.Errorf("%q: %d %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "-1", "+1", "01", "1e3", " 1", "9223372036854775808", "99999999999999999999"} {
		if _, err := ParseRoom([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLifecycleEvents(t *testing.T) {
	l := Lifecycle{Code: "C", Room: 3, TotalCount: 10, PreparedAt: 100, StartsAt: 200, EndsAt: 900, StoppedAt: 300}
	var got []string
	for _, e := range l.Events() {
		got = append(got, e.ID())
	}
	if strings.Join(got, " ") != "100.prepared.C 200.raining.C 300.finished.C" {
		t.Fatalf("%v", got)
	}
	l.StartsAt, l.Cancelled = 0, true
	got = got[:0]
	for _, e := range l.Events() {
		got = append(got, e.ID())
	}
	if strings.Join(got, " ") != "100.prepared.C 300.cancelled.C" {
		t.Fatalf("cancelled: %v", got)
	}
	// The same transition renders to the same bytes whichever news it came from.
	started := Lifecycle{Code: "C", Room: 3, TotalCount: 10, PreparedAt: 100, StartsAt: 200, EndsAt: 900}
	stopped := started
	stopped.StoppedAt = 300
	if string(started.Events()[1].Frame()) != string(stopped.Events()[1].Frame()) {
		t.Fatalf("raining frame differs by news:\n%s\n%s", started.Events()[1].Frame(), stopped.Events()[1].Frame())
	}
}

func TestLogOrderBoundsWindow(t *testing.T) {
	l := NewLog(3, 1000)
	now := int64(10_000)
	ev := func(at int64, code string) Event {
		return Event{Key: Key{At: at, Code: code, Status: Raining}, Room: 1}
	}
	for _, e := range []Event{ev(9500, "b"), ev(9400, "a"), ev(9600, "c")} {
		if !l.Add(e, now) {
			t.Fatalf("%v refused", e.Key)
		}
	}
	if l.Add(ev(9500, "b"), now) {
		t.Fatal("a duplicate was added")
	}
	if l.Add(ev(8000, "old"), now) {
		t.Fatal("an event older than the window was added")
	}
	ids := func(es []Event) string {
		var s []string
		for _, e := range es {
			s = append(s, e.Code)
		}
		return strings.Join(s, ",")
	}
	if got := ids(l.After(1, Key{}, now)); got != "a,b,c" {
		t.Fatalf("after nothing: %s", got)
	}
	if got := ids(l.After(1, ev(9400, "a").Key, now)); got != "b,c" {
		t.Fatalf("after a: %s", got)
	}
	l.Add(ev(9700, "d"), now) // the fourth pushes the oldest out
	if got := ids(l.After(1, Key{}, now)); got != "b,c,d" {
		t.Fatalf("bounded: %s", got)
	}
	if got := ids(l.After(2, Key{}, now)); got != "" {
		t.Fatalf("another room: %s", got)
	}
	l.Prune(10_550) // b (9500) is now older than the window
	if got := ids(l.After(1, Key{}, 10_550)); got != "c,d" || l.Rooms() != 1 {
		t.Fatalf("pruned: %s, %d rooms", got, l.Rooms())
	}
	l.Prune(1 << 40)
	if l.Rooms() != 0 {
		t.Fatal("an empty room was kept")
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"1.raining.A", "0.prepared.x-_", "01.raining.A", "1..A", "9223372036854775807.cancelled.Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseID(s)
		if err != nil {
			return
		}
		if k.ID() != s { // only the canonical form is accepted
			t.Fatalf("%q parsed to %+v, which prints %q", s, k, k.ID())
		}
	})
}

func FuzzParseRoom(f *testing.F) {
	for _, s := range []string{"0", "7", "-1", "01", "9223372036854775807", "9223372036854775808"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseRoom([]byte(s))
		if err != nil {
			return
		}
		if n < 0 || strconv.FormatInt(n, 10) != s {
			t.Fatalf("%q parsed to %d", s, n)
		}
	})
}

func BenchmarkFrame(b *testing.B) {
	e := Lifecycle{Code: "AbCdEfGhIjKlMnOpQrStUv", Room: 42, TotalCount: 1000, PreparedAt: 1, StartsAt: 2, EndsAt: 3}.Events()[1]
	b.ReportAllocs()
	for b.Loop() {
		_ = e.Frame()
	}
}
