package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

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
