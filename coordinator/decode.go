package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"redrain/rain"
)

// decodeBody decodes a JSON object body into v (a pointer to a struct with json tags). Keys
// must match the tags exactly (encoding/json alone would accept "ANCHOR_ID"); unknown keys,
// wrong types, malformed JSON, trailing data and an empty body are 400 bad_request naming the
// field where there is one; a body over MaxAdminBody is 413.
func decodeBody(body []byte, v any) *apiError {
	if len(body) > MaxAdminBody {
		return errTooLarge
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("", "a JSON object body is required")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return syntaxError(err)
	}
	if raw == nil {
		return badRequest("", "body must be a JSON object, not null")
	}
	if e := checkText(body, raw); e != nil {
		return e
	}
	known := jsonFields(reflect.TypeOf(v).Elem())
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !known[k] {
			return badRequest(k, "unknown field")
		}
	}
	if k, dup := duplicateKey(body); dup { // encoding/json would keep the last silently
		return badRequest(k, "given more than once")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return typeError(err)
	}
	return nil
}

// checkText refuses what encoding/json would silently turn into U+FFFD: bytes that are not
// UTF-8, and a \u escape of a lone surrogate (JSON is UTF-8, SPEC.md). The field is named when
// the fault is in one value.
func checkText(body []byte, raw map[string]json.RawMessage) *apiError {
	if validText(body) {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		if !validText(raw[k]) {
			return badRequest(k, "not valid UTF-8 (a JSON body is UTF-8 text, without lone surrogates)")
		}
	}
	return badRequest("", "body is not valid UTF-8 (a JSON body is UTF-8 text, without lone surrogates)")
}

// validText reports whether b, JSON text, is valid UTF-8 and every \u escape in it is a
// Unicode scalar value: a surrogate only as a high-low pair.
func validText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escaped character: an escaped backslash is skipped whole
		if i >= len(b) || b[i] != 'u' {
			continue
		}
		r := hex4(b[i+1:])
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return false // a low surrogate first
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
				return false
			}
			if lo := hex4(b[i+3:]); lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 6
		}
	}
	return true
}

// hex4 is the value of the 4 hex digits b starts with, or -1 (the JSON parser has already
// refused a malformed escape).
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}

// duplicateKey returns a key the JSON object body names twice, so {"anchor_id":8,"anchor_id":7}
// cannot mean one anchor to a first-wins reader and another to us. body is a valid JSON object.
func duplicateKey(body []byte) (string, bool) {
	d := json.NewDecoder(bytes.NewReader(body))
	if _, err := d.Token(); err != nil {
		return "", false
	}
	seen := make(map[string]bool)
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return "", false
		}
		k, _ := t.(string)
		if seen[k] {
			return k, true
		}
		seen[k] = true
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

func syntaxError(err error) *apiError {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return badRequest("", fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se))
	case errors.As(err, &te):
		return badRequest("", "body must be a JSON object")
	}
	return badRequest("", "malformed JSON: "+err.Error())
}

func typeError(err error) *apiError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return badRequest(te.Field, fmt.Sprintf("must be %s, not %s", kindName(te.Type), te.Value))
	}
	return badRequest("", "malformed JSON: "+err.Error())
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	}
	return t.String()
}

var fieldCache sync.Map // reflect.Type -> map[string]bool

// jsonFields are the JSON names of t's exported fields.
func jsonFields(t reflect.Type) map[string]bool {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]bool)
	}
	m := make(map[string]bool)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = true
	}
	fieldCache.Store(t, m)
	return m
}

// listQuery is GET /v1/rains's query.
type listQuery struct {
	AnchorID int64
	Status   rain.Status
	Limit    int
}

func parseListQuery(args *fasthttp.Args) (listQuery, *apiError) {
	q := listQuery{Limit: DefaultList}
	var e *apiError
	seen := map[string]bool{}
	args.All()(func(k, v []byte) bool {
		key := string(k)
		if seen[key] {
			e = badRequest(key, "given more than once")
			return false
		}
		seen[key] = true
		e = q.set(key, string(v))
		return e == nil
	})
	return q, e
}

func (q *listQuery) set(key, v string) *apiError {
	switch key {
	case "anchor_id":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return badRequest(key, "must be an integer > 0")
		}
		q.AnchorID = n
	case "status":
		st, err := rain.ParseStatus(v)
		if err != nil {
			return badRequest(key, "must be one of waiting, prepared, raining, finished, settled, cancelled")
		}
		q.Status = st
	case "limit":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxList {
			return badRequest(key, fmt.Sprintf("must be an integer in 1..%d", MaxList))
		}
		q.Limit = n
	default:
		return badRequest(key, "unknown parameter (anchor_id, status and limit are known)")
	}
	return nil
}
