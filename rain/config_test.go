package rain

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

func validConfig() Config {
	return Config{AnchorID: 1, RoomID: 2, TotalAmount: 1_000_000, TotalCount: 100_000, MaxPerUser: 3,
		DurationS: 60, Algorithm: DoubleAverage, Remark: "hi"}
}

// Each SPEC.md rule at its edges: field is the JSON field the error must name ("" = valid).
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mut   func(*Config)
		field string
	}{
		{"valid", func(c *Config) {}, ""},
		{"anchor_id 0", func(c *Config) { c.AnchorID = 0 }, "anchor_id"},
		{"anchor_id -1", func(c *Config) { c.AnchorID = -1 }, "anchor_id"},
		{"anchor_id 1", func(c *Config) { c.AnchorID = 1 }, ""},
		{"room_id -1", func(c *Config) { c.RoomID = -1 }, "room_id"},
		{"room_id 0", func(c *Config) { c.RoomID = 0 }, ""},
		{"total_count 0", func(c *Config) { c.TotalCount = 0 }, "total_count"},
		{"total_count -5", func(c *Config) { c.TotalCount = -5 }, "total_count"},
		{"total_count 1", func(c *Config) { c.TotalCount = 1 }, ""},
		{"total_count max", func(c *Config) { c.TotalCount, c.TotalAmount = MaxTotalCount, MaxTotalCount }, ""},
		{"total_count max+1", func(c *Config) { c.TotalCount, c.TotalAmount = MaxTotalCount+1, MaxTotalAmount }, "total_count"},
		{"total_amount count-1", func(c *Config) { c.TotalAmount = c.TotalCount - 1 }, "total_amount"},
		{"total_amount count", func(c *Config) { c.TotalAmount = c.TotalCount }, ""},
		{"total_amount 0", func(c *Config) { c.TotalAmount = 0 }, "total_amount"},
		{"total_amount max", func(c *Config) { c.TotalAmount = MaxTotalAmount }, ""},
		{"total_amount max+1", func(c *Config) { c.TotalAmount = MaxTotalAmount + 1 }, "total_amount"},
		{"max_per_user 0 (default 1)", func(c *Config) { c.MaxPerUser = 0 }, ""},
		{"max_per_user -1", func(c *Config) { c.MaxPerUser = -1 }, "max_per_user"},
		{"max_per_user 1000", func(c *Config) { c.MaxPerUser = 1000 }, ""},
		{"max_per_user 1001", func(c *Config) { c.MaxPerUser = 1001 }, "max_per_user"},
		{"duration_s 0 (default 60)", func(c *Config) { c.DurationS = 0 }, ""},
		{"duration_s -1", func(c *Config) { c.DurationS = -1 }, "duration_s"},
		{"duration_s 1", func(c *Config) { c.DurationS = 1 }, ""},
		{"duration_s 86400", func(c *Config) { c.DurationS = 86400 }, ""},
		{"duration_s 86401", func(c *Config) { c.DurationS = 86401 }, "duration_s"},
		{"min_claim_interval_ms -1", func(c *Config) { c.MinClaimIntervalMS = -1 }, "min_claim_interval_ms"},
		{"min_claim_interval_ms 0", func(c *Config) { c.MinClaimIntervalMS = 0 }, ""},
		{"min_claim_interval_ms 60000", func(c *Config) { c.MinClaimIntervalMS = 60000 }, ""},
		{"min_claim_interval_ms 60001", func(c *Config) { c.MinClaimIntervalMS = 60001 }, "min_claim_interval_ms"},
		{"remark empty", func(c *Config) { c.Remark = "" }, ""},
		{"remark 256 bytes", func(c *Config) { c.Remark = strings.Repeat("a", 256) }, ""},
		{"remark 257 bytes", func(c *Config) { c.Remark = strings.Repeat("a", 257) }, "remark"},
		{"remark 85 runes, 255 bytes", func(c *Config) { c.Remark = strings.Repeat("红", 85) }, ""},
		{"remark 86 runes, 258 bytes", func(c *Config) { c.Remark = strings.Repeat("红", 86) }, "remark"},
		{"algorithm empty (default)", func(c *Config) { c.Algorithm = "" }, ""},
		{"algorithm line_cut", func(c *Config) { c.Algorithm = LineCut }, ""},
		{"algorithm equal", func(c *Config) { c.Algorithm = Equal }, ""},
		{"algorithm unknown", func(c *Config) { c.Algorithm = "lottery" }, "algorithm"},
		{"algorithm upper case", func(c *Config) { c.Algorithm = "DOUBLE_AVERAGE" }, "algorithm"},
	} {
		c := validConfig()
		tc.mut(&c)
		c.Normalize()
		err := c.Validate()
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), tc.field+": ") {
			t.Errorf("%s: %v, want a FieldError naming %s", tc.name, err, tc.field)
		}
	}
}

func TestConfigNormalize(t *testing.T) {
	var c Config
	c.Normalize()
	if c.MaxPerUser != DefaultMaxPerUser || c.DurationS != DefaultDurationS || c.Algorithm != DoubleAverage || c.MinClaimIntervalMS != DefaultClaimInterval {
		t.Errorf("defaults: %+v", c)
	}
	c = Config{MaxPerUser: 5, DurationS: 10, Algorithm: Equal, MinClaimIntervalMS: 7}
	want := c
	c.Normalize()
	if c != want {
		t.Errorf("Normalize changed set fields: %+v", c)
	}
}

// The JSON names are SPEC.md's, and SPEC.md's example body decodes with unknown fields refused.
func TestConfigJSON(t *testing.T) {
	body := `{"anchor_id":1,"room_id":2,"total_amount":1000000,"total_count":100000,
	  "max_per_user":3,"duration_s":60,"algorithm":"double_average","min_claim_interval_ms":0,"remark":"..."}`
	c, err := decodeConfig([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Config{1, 2, 1_000_000, 100_000, 3, 60, DoubleAverage, 0, "..."}); c != want {
		t.Errorf("decoded %+v, want %+v", c, want)
	}
	if _, err := decodeConfig([]byte(`{"anchor_id":1,"total_count":1,"total_amount":1,"colour":"red"}`)); err == nil {
		t.Error("unknown field accepted")
	}
	var fields map[string]any
	out, _ := json.Marshal(c)
	_ = json.Unmarshal(out, &fields)
	want := []string{"algorithm", "anchor_id", "duration_s", "max_per_user", "min_claim_interval_ms", "remark", "room_id", "total_amount", "total_count"}
	if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
		t.Errorf("JSON fields %v, want %v", got, want)
	}
}

// decodeConfig is what the admin API does with a POST /v1/rains body: decode over the
// defaults, validate what was given, then normalize.
func decodeConfig(data []byte) (Config, error) {
	c := DefaultConfig()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	c.Normalize()
	return c, nil
}

// In JSON an absent optional field takes its default; an explicit one is checked as given, so
// an explicit 0 (or "") is out of range, never silently the default. A Go zero is sent absent.
func TestConfigJSONAbsentAndExplicit(t *testing.T) {
	const base = `"anchor_id":1,"total_amount":100,"total_count":10`
	c, err := decodeConfig([]byte("{" + base + "}"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxPerUser != DefaultMaxPerUser || c.DurationS != DefaultDurationS || c.Algorithm != DoubleAverage ||
		c.MinClaimIntervalMS != DefaultClaimInterval || c.RoomID != 0 || c.Remark != "" {
		t.Fatalf("absent fields: %+v, want the defaults", c)
	}
	for field, v := range map[string]string{"max_per_user": "0", "duration_s": "0", "algorithm": `""`} {
		_, err := decodeConfig([]byte("{" + base + `,"` + field + `":` + v + "}"))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("explicit %s %s: %v, want a FieldError naming it", field, v, err)
		}
	}
	if c, err := decodeConfig([]byte("{" + base + `,"min_claim_interval_ms":0,"room_id":0,"remark":""}`)); err != nil || c.MinClaimIntervalMS != 0 {
		t.Errorf("explicit zeros in range: %+v %v", c, err)
	}
	out, _ := json.Marshal(Config{AnchorID: 1, TotalAmount: 100, TotalCount: 10})
	back, err := decodeConfig(out)
	if err != nil || back.MaxPerUser != DefaultMaxPerUser || back.DurationS != DefaultDurationS {
		t.Errorf("a Go config with zero optional fields, sent as %s: %+v %v", out, back, err)
	}
}
