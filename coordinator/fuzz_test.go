package coordinator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"redrain/internal/testredis"
)

// FuzzCreateRain posts arbitrary bodies to POST /v1/rains: the answer is always 201, 400 or 413
// with a JSON body, and a created rain is stored valid and as answered.
func FuzzCreateRain(f *testing.F) {
	for _, s := range []string{
		`{"anchor_id":1,"total_amount":1000,"total_count":10}`,
		`{"anchor_id":1,"room_id":2,"total_amount":1000000,"total_count":100000,"max_per_user":3,"duration_s":60,"algorithm":"double_average","min_claim_interval_ms":0,"remark":"hi"}`,
		`{"anchor_id":9223372036854775807,"total_amount":1000000000000,"total_count":100000000,"algorithm":"line_cut","max_per_user":1000,"duration_s":86400,"min_claim_interval_ms":60000}`,
		`{"anchor_id":1,"total_amount":1,"total_count":1,"algorithm":"equal"}`,
		`{"anchor_id":1,"total_amount":9,"total_count":10}`,
		`{"anchor_id":"1"}`, `{"ANCHOR_ID":1}`, `{"anchor_id":1e2}`, `{"remark":"\u0000\ud800"}`,
		`{`, `[]`, `null`, ``, `{"anchor_id":1}{}`, "{\"remark\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	c := startCoordinator(f, testredis.New(f).URL(), "", nil)
	client := &http.Client{}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := http.NewRequest("POST", c.base+"/v1/rains", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out json.RawMessage
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("answer %d is not JSON: %v", resp.StatusCode, err)
		}
		switch resp.StatusCode {
		case 201:
			checkCreated(t, c, out)
		case 400, 413:
			var e apiError
			if json.Unmarshal(out, &e) != nil || e.Message == "" ||
				(resp.StatusCode == 400) != (e.Word == "bad_request") || (resp.StatusCode == 413) != (len(body) > MaxAdminBody) {
				t.Fatalf("%d %s for a body of %d bytes", resp.StatusCode, out, len(body))
			}
		default:
			t.Fatalf("status %d: %s", resp.StatusCode, out)
		}
	})
}

// checkCreated: the stored rain validates and is the one answered.
func checkCreated(t *testing.T, c *running, out []byte) {
	var r Rain
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	rec, err := c.store.get(r.Code)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rec.Config
	if err := cfg.Validate(); err != nil {
		t.Fatalf("stored config invalid: %v: %+v", err, cfg)
	}
	again := cfg
	again.Normalize()
	if again != cfg {
		t.Fatalf("stored config not normalized: %+v", cfg)
	}
	want, _ := json.Marshal(view(rec, Totals{}))
	if !bytes.Equal(bytes.TrimSpace(out), want) {
		t.Fatalf("answered %s, stored %s", out, want)
	}
}
