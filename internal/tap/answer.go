package tap

import (
	"encoding/json"
	"errors"
	"math"
)

// ErrBadAnswer is returned by ParseAnswer for a body that is not a flat JSON object of the
// claim API's answer shape.
var ErrBadAnswer = errors.New("tap: undecodable answer")

// ParseAnswer reads a claim answer, `{"amount":N,"claim_id":"...","message":"..."}` or
// `{"error":"word","message":"..."}`, without allocating: claimID and word point into body.
// It accepts any flat JSON object (fields in any order, whitespace, unknown fields with string,
// number, true, false or null values, duplicates: the last wins; null changes nothing, as in encoding/json) and refuses
// everything else: nested values, a non-integer amount, a non-string claim_id or error,
// trailing data. A claim_id or error with escapes is decoded on a slow path that allocates.
// What it accepts, encoding/json accepts too, with the same values.
func ParseAnswer(body []byte) (amount int64, claimID, word []byte, err error) {
	p := answerParser{b: body}
	if !p.object() {
		return 0, nil, nil, ErrBadAnswer
	}
	if p.idEsc {
		if p.claimID, err = unescape(p.claimID); err != nil {
			return 0, nil, nil, err
		}
	}
	if p.wordEsc {
		if p.word, err = unescape(p.word); err != nil {
			return 0, nil, nil, err
		}
	}
	return p.amount, p.claimID, p.word, nil
}

type answerParser struct {
	b              []byte
	i              int
	amount         int64
	claimID, word  []byte
	idEsc, wordEsc bool
}

func (p *answerParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips whitespace and consumes c if it comes next.
func (p *answerParser) next(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *answerParser) object() bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return p.end()
	}
	for {
		p.space()
		key, esc, ok := p.str()
		if !ok || !p.next(':') || !p.member(key, esc) {
			return false
		}
		if p.next('}') {
			return p.end()
		}
		if !p.next(',') {
			return false
		}
	}
}

func (p *answerParser) end() bool {
	p.space()
	return p.i == len(p.b)
}

// member reads the value of key. A key with escapes is never one of ours: keep it unknown.
func (p *answerParser) member(key []byte, esc bool) bool {
	p.space()
	if esc {
		return p.skipValue()
	}
	switch string(key) {
	case "amount":
		if p.null() {
			return true
		}
		n, ok := p.integer()
		p.amount = n
		return ok
	case "claim_id":
		if p.null() {
			return true
		}
		var ok bool
		p.claimID, p.idEsc, ok = p.str()
		return ok
	case "error":
		if p.null() {
			return true
		}
		var ok bool
		p.word, p.wordEsc, ok = p.str()
		return ok
	}
	return p.skipValue()
}

func (p *answerParser) null() bool { return p.lit("null") }

func (p *answerParser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// str reads a JSON string at p.i and returns its raw contents (between the quotes) and
// whether it holds escapes.
func (p *answerParser) str() (raw []byte, esc, ok bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false, false
	}
	start := p.i + 1
	for i := start; i < len(p.b); i++ {
		switch c := p.b[i]; {
		case c == '"':
			p.i = i + 1
			return p.b[start:i], esc, true
		case c < 0x20:
			return nil, false, false
		case c == '\\':
			esc = true
			n := escapeLen(p.b[i+1:])
			if n == 0 {
				return nil, false, false
			}
			i += n
		}
	}
	return nil, false, false
}

// escapeLen is the length of a valid escape's tail (after the backslash), 0 if invalid.
func escapeLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	switch b[0] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 1
	case 'u':
		if len(b) < 5 {
			return 0
		}
		for _, c := range b[1:5] {
			if !isHex(c) {
				return 0
			}
		}
		return 5
	}
	return 0
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// integer reads -?(0|[1-9][0-9]*) fitting an int64, not followed by a fraction or exponent.
func (p *answerParser) integer() (int64, bool) {
	neg := p.i < len(p.b) && p.b[p.i] == '-'
	if neg {
		p.i++
	}
	start := p.i
	var u uint64
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if u > (math.MaxUint64-d)/10 {
			return 0, false
		}
		u = u*10 + d
		p.i++
	}
	digits := p.i - start
	switch {
	case digits == 0, digits > 1 && p.b[start] == '0':
		return 0, false
	case p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E'):
		return 0, false
	case neg && u <= 1<<63:
		return -int64(u-1) - 1, true
	case !neg && u <= math.MaxInt64:
		return int64(u), true
	}
	return 0, false
}

// skipValue skips a string, number, true, false or null.
func (p *answerParser) skipValue() bool {
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		_, _, ok := p.str()
		return ok
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return p.lit("true") || p.lit("false") || p.null()
}

// number skips a JSON number: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
func (p *answerParser) number() bool {
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case p.digits() == 0:
		return false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return false
		}
	}
	return true
}

func (p *answerParser) digits() int {
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

// unescape decodes a string's raw contents with escapes (rare: ids and words are plain).
func unescape(raw []byte) ([]byte, error) {
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return nil, ErrBadAnswer
	}
	return []byte(s), nil
}

// errorWords are the claim API's error words, interned so an answer's word costs no allocation.
var errorWords = map[string]string{}

func init() {
	for _, w := range []string{"bad_user", "unknown_rain", "not_started", "finished", "exhausted", "user_limit",
		"journal_unavailable", "rate_limited", "body_too_large", "not_found", "method_not_allowed", "unauthorized",
		"forbidden", "shutting_down", "timeout", "headers_too_large", "bad_request", "store_unavailable"} {
		errorWords[w] = w
	}
}

// internWord returns w as a string, shared for the known error words.
func internWord(w []byte) string {
	if len(w) == 0 {
		return ""
	}
	if s, ok := errorWords[string(w)]; ok {
		return s
	}
	return string(w)
}
