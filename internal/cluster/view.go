package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"redrain/internal/check"
)

// RainView is a node's public view of a rain (GET /v1/rains/{code} on its claim API).
type RainView struct {
	Code            string `json:"code"`
	Status          string `json:"status"`
	RemainingCount  int64  `json:"remaining_count"`
	RemainingAmount int64  `json:"remaining_amount"`
}

// ViewRain reads the node at addr (host:port or a URL)'s public view of the rain.
func ViewRain(ctx context.Context, addr, code string) (RainView, error) {
	var v RainView
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(addr, "/")+"/v1/rains/"+code, nil)
	if err != nil {
		return v, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return v, err
	}
	if resp.StatusCode != 200 {
		return v, fmt.Errorf("GET %s/v1/rains/%s: HTTP %d: %.200s", addr, code, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("GET %s/v1/rains/%s: %w", addr, code, err)
	}
	return v, nil
}

// JournalPath is the node's journal file (node.Options.DataDir/journal.db).
func (n *LocalNode) JournalPath() string { return filepath.Join(n.Data, "journal.db") }

// StopNodes stops every running node with SIGTERM (graceful: each flushes and records its
// leftovers), leaving the coordinator and Redis up; a node that already exited (a test killed it)
// is left as it is. It returns the first node that did not exit cleanly.
func (c *LocalCluster) StopNodes() error {
	var first error
	for _, n := range c.Nodes {
		if n.Proc != nil && !n.Proc.Exited() {
			if err := n.Proc.Term(30 * time.Second); err != nil && first == nil {
				first = fmt.Errorf("%s: %w", n.ID, err)
			}
		}
	}
	return first
}

// Journals stops the nodes (StopNodes: a running node holds its journal's lock) and reads what
// each node's journal holds of the rain (check.ReadJournal), for check.CheckJournals.
func (c *LocalCluster) Journals(code string) ([]*check.Journal, error) {
	if err := c.StopNodes(); err != nil {
		return nil, err
	}
	var js []*check.Journal
	for _, n := range c.Nodes {
		j, err := check.ReadJournal(n.JournalPath(), n.ID, code)
		if err != nil {
			return nil, err
		}
		js = append(js, j)
	}
	return js, nil
}
