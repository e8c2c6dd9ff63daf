package gossip

import (
	"encoding/json"
	"fmt"
	"time"

	"redrain/rain"
)

// Kinds of News.
const (
	KindPrepared  = "prepared" // slices acknowledged: for viewers' events only
	KindStarted   = "started"
	KindStopped   = "stopped"
	KindCancelled = "cancelled" // stopped before it started: for viewers' events only
)

// News is the latest lifecycle fact about one rain. The publisher raises Version with every
// change; a member keeps, and passes on, only the highest version of each rain's news.
type News struct {
	Code      string `json:"code"`
	Kind      string `json:"kind"` // KindPrepared, KindStarted, KindStopped or KindCancelled
	Epoch     uint64 `json:"epoch"`
	StartsAt  int64  `json:"starts_at,omitempty"`  // unix ns
	EndsAt    int64  `json:"ends_at,omitempty"`    // unix ns
	StoppedAt int64  `json:"stopped_at,omitempty"` // unix ns (finished or cancelled)
	Version   uint64 `json:"version"`              // >= 1; higher wins

	// What viewers' events (GET /v1/rooms/{room_id}/events) need, so that a node holding no
	// slice of the rain can still tell its room: the room, the count and when it was prepared.
	RoomID     int64 `json:"room_id,omitempty"`
	TotalCount int64 `json:"total_count,omitempty"`
	PreparedAt int64 `json:"prepared_at,omitempty"` // unix ns
}

// Validate reports (wrapping ErrInvalidNews) what makes n unfit to publish.
func (n News) Validate() error {
	switch {
	case !rain.ValidCode(n.Code):
		return fmt.Errorf("%w: code must be 1..%d base64url characters", ErrInvalidNews, rain.MaxCodeLen)
	case n.Kind != KindPrepared && n.Kind != KindStarted && n.Kind != KindStopped && n.Kind != KindCancelled:
		return fmt.Errorf("%w: kind %q", ErrInvalidNews, n.Kind)
	case n.Version == 0:
		return fmt.Errorf("%w: version must be >= 1", ErrInvalidNews)
	case n.RoomID < 0 || n.TotalCount < 0:
		return fmt.Errorf("%w: room_id and total_count must be >= 0", ErrInvalidNews)
	}
	return nil
}

// end is when the rain's news stops mattering: the latest of its times.
func (n News) end() time.Time {
	return time.Unix(0, max(n.StartsAt, n.EndsAt, n.StoppedAt, n.PreparedAt))
}

// Wire formats. A broadcast is one type byte and a JSON body; push-pull state is JSON.
const (
	msgNews byte = 1

	maxMsgLen   = 4 << 10  // a broadcast larger than this is dropped unread
	maxStateLen = 16 << 20 // push-pull state larger than this is dropped unread
)

func encodeNewsMsg(n News) []byte {
	b, _ := json.Marshal(n) // plain struct: cannot fail
	return append([]byte{msgNews}, b...)
}

// decodeNewsMsg parses a broadcast; ok is false for anything that is not valid news.
func decodeNewsMsg(buf []byte) (News, bool) {
	var n News
	if len(buf) < 2 || len(buf) > maxMsgLen || buf[0] != msgNews {
		return n, false
	}
	if err := json.Unmarshal(buf[1:], &n); err != nil || n.Validate() != nil {
		return News{}, false
	}
	return n, true
}

// pushState is what LocalState sends and MergeRemoteState reads.
type pushState struct {
	News map[string]News `json:"news"` // code -> latest news
}

// decodeState parses push-pull state, keeping only valid entries filed under their own code.
func decodeState(buf []byte) []News {
	var s pushState
	if len(buf) == 0 || len(buf) > maxStateLen || json.Unmarshal(buf, &s) != nil {
		return nil
	}
	out := make([]News, 0, len(s.News))
	for code, n := range s.News {
		if code == n.Code && n.Validate() == nil {
			out = append(out, n)
		}
	}
	return out
}

// newsStore keeps the latest news of each rain, bounded in count (those ending last are kept)
// and in age (news of rains that ended more than retention ago is dropped and refused, so a peer
// cannot bring it back by push-pull). It is not safe for concurrent use.
type newsStore struct {
	byCode    map[string]News
	max       int
	retention time.Duration
}

func newNewsStore(max int, retention time.Duration) *newsStore {
	return &newsStore{byCode: make(map[string]News), max: max, retention: retention}
}

// offer stores n if it is newer than what is known, and reports whether it did.
func (s *newsStore) offer(n News, now time.Time) bool {
	if s.expired(n, now) {
		return false
	}
	old, ok := s.byCode[n.Code]
	if ok && old.Version >= n.Version {
		return false
	}
	if !ok && len(s.byCode) >= s.max && !s.evictFor(n) {
		return false
	}
	s.byCode[n.Code] = n
	return true
}

// expired: the rain ended more than retention ago. News without any time never expires (the
// count bound still applies).
func (s *newsStore) expired(n News, now time.Time) bool {
	return max(n.StartsAt, n.EndsAt, n.StoppedAt, n.PreparedAt) > 0 && n.end().Add(s.retention).Before(now)
}

// evictFor makes room for n by dropping the news that ends first, if it ends before n does.
// Every member applies the same rule, so the cluster converges on the same set.
func (s *newsStore) evictFor(n News) bool {
	var victim News
	found := false
	for _, o := range s.byCode {
		if !found || o.end().Before(victim.end()) || (o.end().Equal(victim.end()) && o.Code < victim.Code) {
			victim, found = o, true
		}
	}
	if !found || !victim.end().Before(n.end()) {
		return false
	}
	delete(s.byCode, victim.Code)
	return true
}

// prune drops expired news and returns how many it dropped.
func (s *newsStore) prune(now time.Time) int {
	dropped := 0
	for code, n := range s.byCode {
		if s.expired(n, now) {
			delete(s.byCode, code)
			dropped++
		}
	}
	return dropped
}

func (s *newsStore) encode() []byte {
	b, _ := json.Marshal(pushState{News: s.byCode}) // plain structs: cannot fail
	return b
}
