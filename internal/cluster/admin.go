package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"redrain/adminapi"
	"redrain/rain"
)

// Admin is a client of the coordinator's admin API.
type Admin struct {
	Base  string // "http://127.0.0.1:9090"
	Token string
	HTTP  *http.Client
}

// NewAdmin returns a client for the coordinator at base with the admin token.
func NewAdmin(base, token string) *Admin {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Admin{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: 60 * time.Second}}
}

// APIError is a non-2xx admin answer.
type APIError struct {
	Status  int
	Word    string `json:"error"`
	Message string `json:"message"`
}

func (e *APIError) Error() string { return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Word, e.Message) }

// Do sends in as JSON (nil: no body) and decodes the answer into out (nil: discard).
func (a *Admin) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Status: resp.StatusCode}
		_ = json.Unmarshal(data, e)
		return e
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Create posts a rain config.
func (a *Admin) Create(ctx context.Context, cfg rain.Config) (*adminapi.Rain, error) {
	var r adminapi.Rain
	return &r, a.Do(ctx, "POST", "/v1/rains", cfg, &r)
}

// Get reads a rain.
func (a *Admin) Get(ctx context.Context, code string) (*adminapi.Rain, error) {
	var r adminapi.Rain
	return &r, a.Do(ctx, "GET", "/v1/rains/"+code, nil, &r)
}

// Act calls prepare, start or stop with the anchor id.
func (a *Admin) Act(ctx context.Context, code, action string, anchor int64) (*adminapi.Rain, error) {
	var r adminapi.Rain
	return &r, a.Do(ctx, "POST", "/v1/rains/"+code+"/"+action, map[string]int64{"anchor_id": anchor}, &r)
}

// Report reads a rain's reconciliation.
func (a *Admin) Report(ctx context.Context, code string) (*adminapi.Report, error) {
	var r adminapi.Report
	return &r, a.Do(ctx, "GET", "/v1/rains/"+code+"/report", nil, &r)
}

// Nodes lists the cluster's nodes.
func (a *Admin) Nodes(ctx context.Context) ([]adminapi.Node, error) {
	var r struct {
		Nodes []adminapi.Node `json:"nodes"`
	}
	return r.Nodes, a.Do(ctx, "GET", "/v1/nodes", nil, &r)
}

// RainConfig is a rain config with the usual fields set.
func RainConfig(anchor, amount, count int64, maxPerUser, durationS int) rain.Config {
	return rain.Config{AnchorID: anchor, TotalAmount: amount, TotalCount: count, MaxPerUser: maxPerUser, DurationS: durationS}
}
