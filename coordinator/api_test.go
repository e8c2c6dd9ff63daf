package coordinator

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"redrain/internal/testredis"
	"redrain/rain"
)

// newAPI runs a coordinator with no nodes in its cluster, for the admin API's own rules.
func newAPI(t *testing.T) *running {
	return startCoordinator(t, testredis.New(t).URL(), "", nil)
}

func TestAuth(t *testing.T) {
	c := newAPI(t)
	for _, tc := range []struct{ name, header string }{
		{"none", ""}, {"wrong", "Bearer nope"}, {"prefix", "Bearer " + testToken[:4]},
		{"longer", "Bearer " + testToken + "x"}, {"no scheme", testToken}, {"basic", "Basic " + testToken},
		{"two spaces", "Bearer  " + testToken}, {"empty", "Bearer "},
	} {
		for _, p := range []string{"GET /v1/rains", "POST /v1/rains", "GET /v1/nodes", "GET /v1/rains/abc",
			"POST /v1/rains/abc/prepare", "GET /v1/rains/abc/report", "GET /nope", "DELETE /v1/rains"} {
			method, path, _ := strings.Cut(p, " ")
			st, b := rawCall(t, c.base, method, path, tc.header, `{"anchor_id":1}`)
			checkError(t, st, b, 401, "unauthorized", tc.name+" "+p)
		}
	}
	if st, b := rawCall(t, c.base, "GET", "/v1/nodes", "bEaReR "+testToken, ""); st != 200 {
		t.Fatalf("the scheme is case-insensitive: %d %s", st, b)
	}
	for _, p := range []string{"/healthz", "/metrics"} {
		if st, b := rawCall(t, c.base, "GET", p, "", ""); st != 200 {
			t.Fatalf("%s without token: %d %s", p, st, b)
		}
	}
}

// rawCall sends an exact Authorization header (or none).
func rawCall(t *testing.T, base, method, path, auth, body string) (int, []byte) {
	t.Helper()
	return callAuth(t, base, auth, method, path, body)
}

func TestCreateDefaultsAndGet(t *testing.T) {
	c := newAPI(t)
	before := time.Now().Add(-time.Second)
	r := c.create(t, `{"anchor_id":7,"total_amount":1000,"total_count":10}`)
	if len(r.Code) != 22 || !rain.ValidCode(r.Code) {
		t.Fatalf("code %q: want 22 base64url characters", r.Code)
	}
	want := Rain{Code: r.Code, AnchorID: 7, Status: rain.Waiting, TotalAmount: 1000, TotalCount: 10,
		MaxPerUser: 1, DurationS: 60, Algorithm: rain.DoubleAverage, Slices: []SliceView{}}
	if r.CreatedAt == nil || r.StartedAt != nil || r.EndsAt != nil || r.StoppedAt != nil {
		t.Fatalf("timestamps: %+v", r)
	}
	created, err := time.Parse(time.RFC3339, *r.CreatedAt)
	if err != nil || created.Before(before) || created.After(time.Now()) || !strings.HasSuffix(*r.CreatedAt, "Z") {
		t.Fatalf("created_at %q: %v", *r.CreatedAt, err)
	}
	r.CreatedAt = nil
	if fmt.Sprint(*r) != fmt.Sprint(want) {
		t.Fatalf("got %+v\nwant %+v", *r, want)
	}
	got := c.mustRain(t, 200, "GET", "/v1/rains/"+r.Code, "")
	if got.Code != r.Code || got.Status != rain.Waiting || got.TotalAmount != 1000 {
		t.Fatalf("get: %+v", got)
	}
	// Raw JSON: unset times are null, never omitted; slices is [].
	_, b := c.call(t, "GET", "/v1/rains/"+r.Code, "")
	for _, k := range []string{`"started_at":null`, `"ends_at":null`, `"slices":[]`, `"claimed_amount":0`, `"max_amount":0`, `"epoch":0`} {
		if !strings.Contains(string(b), k) {
			t.Fatalf("%s missing in %s", k, b)
		}
	}
	other := c.create(t, `{"anchor_id":7,"total_amount":1000,"total_count":10}`)
	if other.Code == r.Code {
		t.Fatal("two rains got one code")
	}
}

// TestCreateValidation covers each field at its edges, and every way a body can be wrong.
func TestCreateValidation(t *testing.T) {
	c := newAPI(t)
	base := map[string]string{"anchor_id": "1", "total_amount": "1000", "total_count": "10"}
	body := func(set ...string) string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(set); i += 2 {
			if set[i+1] == "-" {
				delete(m, set[i])
			} else {
				m[set[i]] = set[i+1]
			}
		}
		parts := []string{}
		for k, v := range m {
			parts = append(parts, fmt.Sprintf("%q:%s", k, v))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	remark := func(n int) string { return `"` + strings.Repeat("x", n) + `"` }
	ok := [][]string{
		{"anchor_id", "1"}, {"anchor_id", "9223372036854775807"}, {"room_id", "0"}, {"room_id", "5"},
		{"total_count", "1", "total_amount", "1"}, {"total_count", "100000000", "total_amount", "100000000"},
		{"total_amount", "10"}, {"total_amount", "1000000000000"},
		{"max_per_user", "1"}, {"max_per_user", "1000"}, {"max_per_user", "-"},
		{"duration_s", "1"}, {"duration_s", "86400"}, {"duration_s", "-"},
		{"min_claim_interval_ms", "0"}, {"min_claim_interval_ms", "60000"},
		{"remark", remark(0)}, {"remark", remark(256)}, {"remark", `"` + strings.Repeat("红", 85) + `"`},
		{"algorithm", `"double_average"`}, {"algorithm", `"line_cut"`}, {"algorithm", `"equal"`},
		{"remark", `"\ud83e\udde7 \u7ea2"`}, {"remark", `"\\ud800"`}, // a surrogate pair; an escaped backslash
		{"room_id", "null"}, {"remark", "null"},
	}
	for _, set := range ok {
		st, b := c.call(t, "POST", "/v1/rains", body(set...))
		if st != 201 {
			t.Errorf("%v: got %d %s, want 201", set, st, b)
		}
	}
	bad := []struct {
		set   []string
		field string
	}{
		{[]string{"anchor_id", "0"}, "anchor_id"}, {[]string{"anchor_id", "-1"}, "anchor_id"},
		{[]string{"anchor_id", "-"}, "anchor_id"}, {[]string{"room_id", "-1"}, "room_id"},
		{[]string{"total_count", "0"}, "total_count"}, {[]string{"total_count", "-"}, "total_count"},
		{[]string{"total_count", "100000001", "total_amount", "100000001"}, "total_count"},
		{[]string{"total_amount", "9"}, "total_amount"}, {[]string{"total_amount", "1000000000001"}, "total_amount"},
		{[]string{"max_per_user", "1001"}, "max_per_user"}, {[]string{"max_per_user", "-1"}, "max_per_user"},
		{[]string{"duration_s", "86401"}, "duration_s"}, {[]string{"duration_s", "-1"}, "duration_s"},
		// an absent field takes its default; an explicit one out of range, 0 included, is refused
		{[]string{"max_per_user", "0"}, "max_per_user"}, {[]string{"duration_s", "0"}, "duration_s"},
		{[]string{"algorithm", `""`}, "algorithm"},
		// JSON is UTF-8: not rewritten to U+FFFD
		{[]string{"remark", "\"ok \xff\""}, "remark"}, {[]string{"remark", "\"\xe7\xba\""}, "remark"},
		{[]string{"remark", `"\ud800"`}, "remark"}, {[]string{"remark", `"\udc00\ud800"`}, "remark"},
		{[]string{"remark", `"x\ud83ey"`}, "remark"},
		{[]string{"min_claim_interval_ms", "60001"}, "min_claim_interval_ms"},
		{[]string{"min_claim_interval_ms", "-1"}, "min_claim_interval_ms"},
		{[]string{"remark", remark(257)}, "remark"}, {[]string{"remark", `"` + strings.Repeat("红", 86) + `"`}, "remark"},
		{[]string{"algorithm", `"bogus"`}, "algorithm"}, {[]string{"algorithm", `"Equal"`}, "algorithm"},
		// wrong types name the field too
		{[]string{"anchor_id", `"1"`}, "anchor_id"}, {[]string{"anchor_id", "1.5"}, "anchor_id"},
		{[]string{"total_amount", "1e3"}, "total_amount"}, {[]string{"total_count", "true"}, "total_count"},
		{[]string{"anchor_id", "9223372036854775808"}, "anchor_id"}, {[]string{"remark", "5"}, "remark"},
		{[]string{"algorithm", "[]"}, "algorithm"}, {[]string{"max_per_user", "{}"}, "max_per_user"},
		// unknown fields, exact names only
		{[]string{"bonus", "1"}, "bonus"}, {[]string{"ANCHOR_ID", "1"}, "ANCHOR_ID"}, {[]string{"Remark", `""`}, "Remark"},
	}
	for _, tc := range bad {
		e := c.expectError(t, 400, "bad_request", "POST", "/v1/rains", body(tc.set...))
		if e.Field != tc.field || !strings.HasPrefix(e.Message, tc.field+": ") {
			t.Errorf("%v: error %+v does not name %s", tc.set, e, tc.field)
		}
	}
	for _, b := range []string{"", " ", "{", `{"anchor_id":1,}`, "null", "[]", "1", `"x"`, `{"anchor_id":1} {}`,
		`{"anchor_id":1}x`, "\xff", `{"anchor_id":1`} {
		c.expectError(t, 400, "bad_request", "POST", "/v1/rains", b)
	}
}

func TestBodyLimit(t *testing.T) {
	c := newAPI(t)
	valid := `{"anchor_id":1,"total_amount":1000,"total_count":10}`
	exact := valid + strings.Repeat(" ", MaxAdminBody-len(valid))
	if st, b := c.call(t, "POST", "/v1/rains", exact); st != 201 {
		t.Fatalf("body of exactly %d bytes: %d %s", MaxAdminBody, st, b)
	}
	c.expectError(t, 413, "body_too_large", "POST", "/v1/rains", exact+" ")
	st, b := declaredPost(t, c.Addr(), "/v1/rains", 1<<30, "{")
	checkError(t, st, b, 413, "body_too_large", "1 GiB declared")
	// The same for a chunked body without Content-Length, and on the other POST routes.
	// Repeated: the client is still writing when the server decides, and an answer sent
	// before the body is read can be lost to a connection reset (seen in CI on prepare).
	r := c.create(t, valid)
	big := exact + strings.Repeat(" ", 7*MaxAdminBody)
	for i := 0; i < 20; i++ {
		c.expectError(t, 413, "body_too_large", "POST", "/v1/rains/"+r.Code+"/prepare", exact+" ")
		c.expectError(t, 413, "body_too_large", "POST", "/v1/rains/"+r.Code+"/start", big)
		c.expectError(t, 413, "body_too_large", "POST", "/v1/tokens", big)
		st, b = chunkedPost(t, c.Addr(), "/v1/rains", big)
		checkError(t, st, b, 413, "body_too_large", "chunked")
	}
	if st, b := c.call(t, "GET", "/v1/rains/"+r.Code, ""); st != 200 || !strings.Contains(string(b), `"status":"waiting"`) {
		t.Fatalf("refused bodies changed the rain: %d %s", st, b)
	}
}

// declaredPost declares a Content-Length but sends only body: a too large one is refused
// before it is read.
func declaredPost(t *testing.T, addr, path string, length int, body string) (int, []byte) {
	t.Helper()
	return rawExchange(t, addr, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
		path, testToken, length, body))
}

// chunkedPost sends a body with Transfer-Encoding: chunked over a raw connection.
func chunkedPost(t *testing.T, addr, path, body string) (int, []byte) {
	t.Helper()
	var req strings.Builder
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n", path, testToken)
	for i := 0; i < len(body); i += 4096 {
		chunk := body[i:min(i+4096, len(body))]
		fmt.Fprintf(&req, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	req.WriteString("0\r\n\r\n")
	return rawExchange(t, addr, req.String())
}

// rawExchange writes req as is on a new connection and reads one response.
func rawExchange(t *testing.T, addr, req string) (int, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return readBody(t, resp)
}

// A keep-alive admin connection left idle after an answer is cut off after the read timeout,
// like the node's (SPEC.md), not kept for a minute.
func TestIdleKeepAliveDisconnectedAfterReadTimeout(t *testing.T) {
	c := newAPI(t)
	conn, err := net.Dial("tcp", c.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	patience := adminReadTO + 5*time.Second // well under the old 60 s idle limit
	_ = conn.SetReadDeadline(time.Now().Add(patience))
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, b := readBody(t, resp); st != 200 || resp.Close {
		t.Fatalf("healthz: %d %s, close %v", st, b, resp.Close)
	}
	answered := time.Now()
	_, err = rd.ReadByte() // blocks until the server closes the idle connection, or the deadline
	idle := time.Since(answered)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("idle keep-alive connection still open after %v (read timeout %v)", idle, adminReadTO)
	}
	if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("unexpected read error %v after %v", err, idle)
	}
	if idle < adminReadTO/2 {
		t.Fatalf("idle connection cut after %v, before the read timeout %v", idle, adminReadTO)
	}
}

func TestRoutes(t *testing.T) {
	c := newAPI(t)
	r := c.create(t, `{"anchor_id":1,"total_amount":1000,"total_count":10}`)
	c.expectError(t, 404, "not_found", "GET", "/v2/rains", "")
	c.expectError(t, 404, "not_found", "GET", "/v1/rains/"+r.Code+"/nope", "")
	c.expectError(t, 404, "not_found", "GET", "/v1/rains/", "")
	c.expectError(t, 404, "unknown_rain", "GET", "/v1/rains/AAAAAAAAAAAAAAAAAAAAAA", "")
	c.expectError(t, 404, "unknown_rain", "GET", "/v1/rains/has.dot", "")
	c.expectError(t, 404, "unknown_rain", "GET", "/v1/rains/"+strings.Repeat("a", rain.MaxCodeLen+1), "")
	c.expectError(t, 404, "unknown_rain", "GET", "/v1/rains/AAAAAAAAAAAAAAAAAAAAAA/report", "")
	for _, op := range []string{"prepare", "start", "stop"} {
		c.expectError(t, 404, "unknown_rain", "POST", "/v1/rains/AAAAAAAAAAAAAAAAAAAAAA/"+op, anchorJSON(1))
		c.expectError(t, 405, "method_not_allowed", "GET", "/v1/rains/"+r.Code+"/"+op, "")
	}
	c.expectError(t, 405, "method_not_allowed", "DELETE", "/v1/rains/"+r.Code, "")
	c.expectError(t, 405, "method_not_allowed", "PUT", "/v1/rains", "")
	c.expectError(t, 405, "method_not_allowed", "POST", "/v1/nodes", "")
	c.expectError(t, 405, "method_not_allowed", "POST", "/v1/rains/"+r.Code+"/report", "")
}

func TestLifecycleErrors(t *testing.T) {
	c := newAPI(t)
	r := c.create(t, `{"anchor_id":5,"total_amount":1000,"total_count":10}`)
	p := "/v1/rains/" + r.Code
	for _, op := range []string{"/prepare", "/start", "/stop"} {
		for _, b := range []string{"", "{}", `{"anchor_id":0}`, `{"anchor_id":-5}`, `{"anchor_id":"5"}`,
			`{"anchor_id":5,"x":1}`, `{"anchor":5}`, "[5]", "{"} {
			c.expectError(t, 400, "bad_request", "POST", p+op, b)
		}
		c.expectError(t, 403, "forbidden", "POST", p+op, anchorJSON(6))
	}
	c.expectError(t, 409, "conflict", "POST", p+"/start", anchorJSON(5))
	c.expectError(t, 503, "no_nodes", "POST", p+"/prepare", anchorJSON(5))
	if got := c.mustRain(t, 200, "GET", p, ""); got.Status != rain.Waiting || got.Epoch != 0 {
		t.Fatalf("after a refused prepare: %+v", got)
	}
	stopped := c.mustRain(t, 200, "POST", p+"/stop", anchorJSON(5))
	if stopped.Status != rain.Cancelled || stopped.StoppedAt == nil {
		t.Fatalf("stop of a waiting rain: %+v", stopped)
	}
	for _, op := range []string{"/prepare", "/start", "/stop"} {
		c.expectError(t, 409, "conflict", "POST", p+op, anchorJSON(5))
		c.expectError(t, 403, "forbidden", "POST", p+op, anchorJSON(1))
	}
	rep := c.report(t, r.Code)
	if rep.Status != rain.Cancelled || rep.LeftoverAmount != 1000 || len(rep.Nodes) != 0 {
		t.Fatalf("report of a cancelled rain: %+v", rep)
	}
}

func TestList(t *testing.T) {
	c := newAPI(t)
	var codes []string
	for i := range 5 {
		r := c.create(t, fmt.Sprintf(`{"anchor_id":%d,"total_amount":1000,"total_count":10}`, 1+i%2))
		codes = append(codes, r.Code)
	}
	c.mustRain(t, 200, "POST", "/v1/rains/"+codes[0]+"/stop", anchorJSON(1))
	list := func(q string) []string {
		t.Helper()
		st, b := c.call(t, "GET", "/v1/rains"+q, "")
		if st != 200 {
			t.Fatalf("list %s: %d %s", q, st, b)
		}
		var out struct{ Rains []Rain }
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range out.Rains {
			got = append(got, r.Code)
		}
		return got
	}
	eq := func(q string, want ...string) {
		t.Helper()
		if got := list(q); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("list %s: got %v, want %v", q, got, want)
		}
	}
	// Newest first.
	eq("", codes[4], codes[3], codes[2], codes[1], codes[0])
	eq("?anchor_id=1", codes[4], codes[2], codes[0])
	eq("?anchor_id=2", codes[3], codes[1])
	eq("?anchor_id=3")
	eq("?status=cancelled", codes[0])
	eq("?anchor_id=1&status=waiting", codes[4], codes[2])
	eq("?anchor_id=2&status=cancelled")
	eq("?status=raining")
	eq("?limit=2", codes[4], codes[3])
	eq("?anchor_id=1&limit=1", codes[4])
	_, b := c.call(t, "GET", "/v1/rains?status=settled", "")
	if strings.TrimSpace(string(b)) != `{"rains":[]}` {
		t.Fatalf("empty list: %s", b)
	}
	for q, field := range map[string]string{
		"?anchor_id=0": "anchor_id", "?anchor_id=-1": "anchor_id", "?anchor_id=x": "anchor_id", "?anchor_id=": "anchor_id",
		"?status=done": "status", "?status=": "status", "?status=WAITING": "status", "?limit=0": "limit",
		"?limit=1001": "limit", "?anchor=1": "anchor", "?anchor_id=1&anchor_id=2": "anchor_id",
	} {
		e := c.expectError(t, 400, "bad_request", "GET", "/v1/rains"+q, "")
		if e.Field != field {
			t.Errorf("%s: %+v does not name %s", q, e, field)
		}
	}
}

func TestNodesAndMetrics(t *testing.T) {
	c := newAPI(t)
	st, b := c.call(t, "GET", "/v1/nodes", "")
	if st != 200 || strings.TrimSpace(string(b)) != `{"nodes":[]}` {
		t.Fatalf("nodes: %d %s", st, b)
	}
	c.create(t, `{"anchor_id":1,"total_amount":1000,"total_count":10}`)
	c.expectError(t, 400, "bad_request", "POST", "/v1/rains", "{")
	st, b = rawCall(t, c.base, "GET", "/metrics", "", "")
	for _, want := range []string{
		`redrain_coordinator_rains{status="waiting"} 1`,
		`redrain_coordinator_admin_requests_total{code="201",route="create"} 1`,
		`redrain_coordinator_admin_requests_total{code="400",route="create"} 1`,
		`redrain_coordinator_nodes{state="alive"} 0`,
	} {
		if st != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("metrics lack %q:\n%s", want, b)
		}
	}
}

// Two Authorization headers are an ambiguous credential: 401, even when one of them is right.
func TestTwoAuthorizationHeadersRefused(t *testing.T) {
	c := newAPI(t)
	for _, pair := range [][2]string{{"Bearer " + testToken, "Bearer wrong"}, {"Bearer " + testToken, "Bearer " + testToken}} {
		req, err := http.NewRequest("GET", c.base+"/v1/nodes", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Add("Authorization", pair[0])
		req.Header.Add("Authorization", pair[1])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		st, b := readBody(t, resp)
		checkError(t, st, b, 401, "unauthorized", "two Authorization headers")
	}
	if st, b := c.call(t, "GET", "/v1/nodes", ""); st != 200 {
		t.Fatalf("one Authorization header: %d %s", st, b)
	}
}
