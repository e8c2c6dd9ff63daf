// Package roomevents is the pure core of a room's viewer events (GET /v1/rooms/{room_id}/events
// on every node): the event of a rain's lifecycle transition, its id, its Server-Sent Events
// frame, and the bounded log a node keeps per room for Last-Event-ID resume. No clock, no I/O:
// time comes in as an argument.
//
// An event's id is derived from the transition itself — "<unix ns of the transition>.<status>.<code>"
// — never from a per-node counter, so every node names the same transition with the same id and
// a viewer that reconnects through a balancer to another node resumes where it was. Ids order
// events by transition time, then code, then status rank (prepared < raining < finished <
// cancelled): resume sends what sorts after the id the viewer presents.
package roomevents

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"redrain/rain"
)

// Statuses a viewer hears about, in rank order.
const (
	Prepared  = "prepared"
	Raining   = "raining"
	Finished  = "finished"
	Cancelled = "cancelled"
)

func rank(status string) int {
	switch status {
	case Prepared:
		return 1
	case Raining:
		return 2
	case Finished:
		return 3
	case Cancelled:
		return 4
	}
	return 0
}

// Key orders events and names them: the transition's time, the rain's code and its status.
type Key struct {
	At     int64 // unix ns of the transition (as the coordinator recorded it)
	Code   string
	Status string
}

// Less orders keys by time, then code, then status rank.
func (k Key) Less(o Key) bool {
	if k.At != o.At {
		return k.At < o.At
	}
	if k.Code != o.Code {
		return k.Code < o.Code
	}
	return rank(k.Status) < rank(o.Status)
}

// ID is the event id: "<at>.<status>.<code>" (a code has no '.', a status none either).
func (k Key) ID() string {
	return strconv.FormatInt(k.At, 10) + "." + k.Status + "." + k.Code
}

// MaxIDLen bounds a Last-Event-ID: 19 digits, a status, a code and two dots.
const MaxIDLen = 19 + 1 + 9 + 1 + rain.MaxCodeLen

// ErrBadID: a Last-Event-ID that is not an id this package made.
var ErrBadID = errors.New("roomevents: malformed event id")

// ParseID parses an event id. It accepts exactly what Key.ID makes: a decimal time >= 0 without
// sign or leading zeros, a known status, a valid rain code.
func ParseID(s string) (Key, error) {
	if len(s) == 0 || len(s) > MaxIDLen {
		return Key{}, ErrBadID
	}
	at, rest, ok := strings.Cut(s, ".")
	if !ok {
		return Key{}, ErrBadID
	}
	status, code, ok := strings.Cut(rest, ".")
	if !ok || rank(status) == 0 || !rain.ValidCode(code) {
		return Key{}, ErrBadID
	}
	n, ok := parseDecimal(at)
	if !ok {
		return Key{}, ErrBadID
	}
	return Key{At: n, Code: code, Status: status}, nil
}

// parseDecimal parses a canonical non-negative decimal int64: digits only, no leading zero
// (except "0" itself), no overflow.
func parseDecimal(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 19 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// ErrBadRoom: a room id that is not a canonical decimal int64 >= 0.
var ErrBadRoom = errors.New("roomevents: room_id must be a decimal integer >= 0")

// ParseRoom parses a room id as a path carries it: canonical decimal, 0..2^63-1.
func ParseRoom(s []byte) (int64, error) {
	n, ok := parseDecimal(string(s))
	if !ok {
		return 0, ErrBadRoom
	}
	return n, nil
}

// Event is one transition of one rain, as a viewer of its room hears it.
type Event struct {
	Key
	Room       int64
	StartsAt   int64 // unix ns; 0 = not started (the prepared event)
	EndsAt     int64 // unix ns; the scheduled end
	TotalCount int64
}

// Data is the JSON an event carries (what a subscriber decodes).
type Data struct {
	Code       string  `json:"code"`
	RoomID     int64   `json:"room_id"`
	Status     string  `json:"status"`
	At         string  `json:"at"`
	StartsAt   *string `json:"starts_at"`
	EndsAt     *string `json:"ends_at"`
	TotalCount int64   `json:"total_count"`
}

// Frame is the event as Server-Sent Events: "id: ...\ndata: {json}\n\n". Every node renders the
// same event to the same bytes.
func (e Event) Frame() []byte {
	d := Data{Code: e.Code, RoomID: e.Room, Status: e.Status, At: rain.FormatTime(e.At), TotalCount: e.TotalCount}
	if e.StartsAt != 0 {
		s, x := rain.FormatTime(e.StartsAt), rain.FormatTime(e.EndsAt)
		d.StartsAt, d.EndsAt = &s, &x
	}
	b, _ := json.Marshal(d) // plain struct: cannot fail
	out := make([]byte, 0, len(b)+len(e.ID())+16)
	out = append(out, "id: "...)
	out = append(out, e.ID()...)
	out = append(out, "\ndata: "...)
	out = append(out, b...)
	return append(out, "\n\n"...)
}

// Lifecycle is what a node knows of a rain's lifecycle at once (from gossip news, which carries
// the latest stage and the times of the earlier ones).
type Lifecycle struct {
	Code       string
	Room       int64
	TotalCount int64
	PreparedAt int64 // 0: unknown
	StartsAt   int64 // 0: not started
	EndsAt     int64
	StoppedAt  int64 // finished or cancelled at; 0: neither
	Cancelled  bool
}

// Events are the transitions l implies, in order: a node that missed the earlier news of a rain
// (gossip keeps only the latest per rain) still has every stage, with the same ids as the
// nodes that heard each one.
func (l Lifecycle) Events() []Event {
	var out []Event
	ev := func(status string, at int64, started bool) {
		e := Event{Key: Key{At: at, Code: l.Code, Status: status}, Room: l.Room, TotalCount: l.TotalCount}
		if started {
			e.StartsAt, e.EndsAt = l.StartsAt, l.EndsAt
		}
		out = append(out, e)
	}
	if l.PreparedAt != 0 {
		ev(Prepared, l.PreparedAt, false)
	}
	if l.StartsAt != 0 {
		ev(Raining, l.StartsAt, true)
	}
	switch {
	case l.StoppedAt != 0 && l.Cancelled:
		ev(Cancelled, l.StoppedAt, false)
	case l.StoppedAt != 0 && l.StartsAt != 0:
		ev(Finished, l.StoppedAt, true)
	}
	return out
}

// Log keeps each room's recent events, sorted by key: at most PerRoom per room and none older
// than Window before the latest time it was told. Not safe for concurrent use.
type Log struct {
	PerRoom int   // events kept per room (the oldest go first); >= 1
	Window  int64 // ns: events older than now-Window are dropped, and refused when they arrive
	rooms   map[int64][]Event
}

// NewLog makes an empty log.
func NewLog(perRoom int, window int64) *Log {
	if perRoom < 1 {
		panic(fmt.Sprintf("roomevents: perRoom %d < 1", perRoom))
	}
	return &Log{PerRoom: perRoom, Window: window, rooms: map[int64][]Event{}}
}

// Add files e under its room and reports whether it is new: false for an event already held
// (the same transition heard again, by another route) or one too old to matter.
func (l *Log) Add(e Event, now int64) bool {
	if e.At < now-l.Window {
		return false
	}
	evs := l.rooms[e.Room]
	i, found := slices.BinarySearchFunc(evs, e.Key, cmpKey)
	if found {
		return false
	}
	evs = slices.Insert(evs, i, e)
	if len(evs) > l.PerRoom {
		evs = slices.Delete(evs, 0, len(evs)-l.PerRoom)
	}
	l.rooms[e.Room] = evs
	return true
}

func cmpKey(e Event, k Key) int {
	switch {
	case e.Key.Less(k):
		return -1
	case k.Less(e.Key):
		return 1
	}
	return 0
}

// After returns the room's events that sort after k and are not older than now-Window, in order.
func (l *Log) After(room int64, k Key, now int64) []Event {
	var out []Event
	for _, e := range l.rooms[room] {
		if k.Less(e.Key) && e.At >= now-l.Window {
			out = append(out, e)
		}
	}
	return out
}

// Prune drops events older than now-Window, and rooms left empty.
func (l *Log) Prune(now int64) {
	for room, evs := range l.rooms {
		i := 0
		for i < len(evs) && evs[i].At < now-l.Window {
			i++
		}
		if i == len(evs) {
			delete(l.rooms, room)
		} else if i > 0 {
			l.rooms[room] = slices.Clone(evs[i:])
		}
	}
}

// Rooms is how many rooms hold events.
func (l *Log) Rooms() int { return len(l.rooms) }
