package trust

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"redrain/adminapi"
	"redrain/internal/cluster"
	"redrain/internal/proc"
	"redrain/internal/testcluster"
	"redrain/internal/testlocal"
	"redrain/internal/wire"
	"redrain/rain"
)

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }

const anchor = 4242

// kit is one running cluster (redis, coordinator, nodes as processes) and what its subtests share.
type kit struct {
	c     *cluster.LocalCluster
	extra []*cluster.LocalNode // node processes started beside the cluster's: outsiders, late members
	http  *http.Client

	raining  *adminapi.Rain // on sale (started by the join subtest)
	prepared *adminapi.Rain // prepared, not started

	outsiderSecret string // the wrong secret an outsider holds
	wrongToken     string // the wrong admin token an outsider tried
}

// newKit starts a cluster of n nodes with recognisable secrets (so a leak is found by grep).
func newKit(t *testing.T, n int) *kit {
	t.Helper()
	c := testlocal.Cluster(t, cluster.ClusterOptions{Nodes: n, Secret: "trust-secret-" + randomHex(t),
		AdminToken: "trust-admin-token-" + randomHex(t)})
	k := &kit{c: c, http: &http.Client{Timeout: 10 * time.Second},
		outsiderSecret: "outsider-secret-" + randomHex(t), wrongToken: "outsider-token-" + randomHex(t)}
	t.Cleanup(func() { // before the cluster's own cleanup, which prints its logs
		for _, x := range k.extra {
			if t.Failed() {
				testlocal.PrintLogs(t, x.Proc.Log)
			}
			x.Proc.Kill()
		}
	})
	return k
}

func randomHex(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// startNode runs one more node binary with its own secret, joining the coordinator, and waits
// until it answers /healthz (not /readyz: an outsider never becomes ready). A port taken
// between picking it and binding it is picked again.
func (k *kit) startNode(t *testing.T, id, secret string) *cluster.LocalNode {
	t.Helper()
	for try := 1; ; try++ {
		n := &cluster.LocalNode{ID: id, HTTP: testcluster.FreeAddr(t), Gossip: testcluster.FreeAddr(t),
			Data: filepath.Join(k.c.Opts.Dir, id)}
		args := []string{"--id", id, "--http", n.HTTP, "--gossip", n.Gossip, "--data", n.Data,
			"--join", k.c.CoordGossip, "--fast-gossip"}
		env := []string{"REDRAIN_SECRET=" + secret, "REDRAIN_REDIS=" + k.c.RedisURL()}
		p, err := proc.Start(id, testcluster.Bin(t, "node"), args, env, filepath.Join(k.c.Opts.Dir, id+".log"))
		if err != nil {
			t.Fatal(err)
		}
		n.Proc = p
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = p.WaitHTTP(ctx, "http://"+n.HTTP+"/healthz")
		cancel()
		if err == nil {
			k.extra = append(k.extra, n)
			return n
		}
		p.Kill()
		if try == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("start %s: %v", id, err)
		}
	}
}

// members are the nodes holding the cluster secret (the cluster's and the late members).
func (k *kit) members() []*cluster.LocalNode {
	out := append([]*cluster.LocalNode(nil), k.c.Nodes...)
	for _, x := range k.extra {
		if x.ID != "evil" {
			out = append(out, x)
		}
	}
	return out
}

// logs are the paths of every process log.
func (k *kit) logs() []string {
	out := k.c.Logs()
	for _, n := range k.extra {
		out = append(out, n.Proc.Log)
	}
	return out
}

// send makes one HTTP request and returns the status and the body.
func (k *kit) send(t *testing.T, method, url string, body []byte, h http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range h {
		req.Header[name] = v
	}
	resp, err := k.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

// signed returns the headers of an internal request signed with secret at the given time.
func signed(secret, method, path string, body []byte, at time.Time) http.Header {
	ts, nonce, sig := wire.NewSigner(secret).Sign(method, path, body, at)
	h := http.Header{}
	h.Set(wire.HeaderTime, ts)
	h.Set(wire.HeaderNonce, nonce)
	h.Set(wire.HeaderSignature, sig)
	return h
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// progress reads a node's internal progress, signed with secret.
func (k *kit) progress(t *testing.T, addr, secret string) wire.ProgressList {
	t.Helper()
	var pl wire.ProgressList
	if err := wire.NewClient(secret, 10*time.Second).Do(context.Background(), "GET", addr, wire.PathProgress, nil, &pl); err != nil {
		t.Fatalf("progress of %s: %v", addr, err)
	}
	return pl
}

// money is what every member holds of every rain, without what moves by itself (Redis flushes).
func (k *kit) money(t *testing.T) map[string][]wire.Progress {
	t.Helper()
	out := map[string][]wire.Progress{}
	for _, n := range k.members() {
		for _, p := range k.progress(t, n.HTTP, k.c.Opts.Secret).Rains {
			p.FlushedCount, p.FlushedAmount = 0, 0
			out[n.ID] = append(out[n.ID], p)
		}
	}
	return out
}

func (k *kit) claim(t *testing.T, addr, code string, user uint64) (int, string) {
	t.Helper()
	return k.send(t, "POST", "http://"+addr+"/v1/rains/"+code+"/claim", nil,
		http.Header{"X-User-Id": {strconv.FormatUint(user, 10)}})
}

// createPrepare creates a rain of the test's anchor and prepares it.
func (k *kit) createPrepare(t *testing.T, count, amount int64) *adminapi.Rain {
	t.Helper()
	adm := k.c.Admin()
	r, err := adm.Create(context.Background(), rain.Config{AnchorID: anchor, TotalAmount: amount, TotalCount: count,
		MaxPerUser: 5, DurationS: 900})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = adm.Act(context.Background(), r.Code, "prepare", anchor); err != nil {
		t.Fatal(err)
	}
	return r
}

// nodeState is the coordinator's view of member id ("" when it does not list it).
func (k *kit) nodeState(id string) string {
	nodes, err := k.c.Admin().Nodes(context.Background())
	if err != nil {
		return ""
	}
	for _, n := range nodes {
		if n.ID == id {
			return n.State
		}
	}
	return ""
}

// count is how often s occurs in the file at path.
func count(t *testing.T, path, s string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), s)
}
