package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// MaxBody bounds internal request and answer bodies.
const MaxBody = 1 << 20

// Client makes signed internal calls to nodes. Safe for concurrent use.
type Client struct {
	Signer *Signer
	HTTP   *http.Client
}

// NewClient returns a client for the cluster secret with a bounded per-call timeout.
func NewClient(secret string, timeout time.Duration) *Client {
	return &Client{Signer: NewSigner(secret), HTTP: &http.Client{Timeout: timeout}}
}

// StatusError is a non-2xx answer from a node.
type StatusError struct {
	Status int
	Body   Error
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("wire: HTTP %d %s: %s", e.Status, e.Body.Error, e.Body.Message)
}

// Do sends in (JSON, or no body when nil) to http://addr+path and decodes the answer into out.
// path is the request target: a path, with a query if any; the signature covers all of it.
func (c *Client) Do(ctx context.Context, method, addr, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("wire: encode: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("wire: %w", err)
	}
	ts, nonce, sig := c.Signer.Sign(method, req.URL.RequestURI(), body, time.Now()) // what net/http puts on the request line
	req.Header.Set(HeaderTime, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, sig)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("wire: %s %s: %w", method, addr+path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return fmt.Errorf("wire: read %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		se := &StatusError{Status: resp.StatusCode}
		_ = json.Unmarshal(data, &se.Body)
		return se
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("wire: decode %s: %w", path, err)
		}
	}
	return nil
}
