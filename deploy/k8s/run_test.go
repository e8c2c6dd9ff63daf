package k8s

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"redrain/internal/check"
	"redrain/internal/cluster"
	"redrain/internal/proc"
	"redrain/internal/tap"
	"redrain/internal/testcluster"
	"redrain/internal/testredis"
	"redrain/rain"
)

// podIP stands for the pod's IP: the processes bind 0.0.0.0 as in a pod and advertise this.
const podIP = "127.0.0.1"

// pod is one of the manifests' pods run as a process on this machine.
type pod struct {
	name string // the pod's name: the StatefulSet's, "-<ordinal>"
	http string // podIP:port of its HTTP listener
	p    *proc.Proc
}

// runPod starts pod ordinal of s as Kubernetes would: the container's command with its
// environment, the downward API and the Secret's keys resolved. The command line (which wins
// over the environment) gives only what cannot be the manifest's here: free ports instead of
// the fixed ones (still bound on 0.0.0.0), a test data dir, a join address of this machine
// (by name, like the pod DNS names), and fast gossip.
func runPod(t *testing.T, s *appsv1.StatefulSet, ordinal int, secrets map[string]string, data string, gossipPort int, join string) *pod {
	t.Helper()
	ct := s.Spec.Template.Spec.Containers[0]
	name := s.Name + "-" + strconv.Itoa(ordinal)
	var env []string
	for _, e := range ct.Env {
		v, ok := e.Value, true
		switch from := e.ValueFrom; {
		case from == nil:
		case from.FieldRef != nil && from.FieldRef.FieldPath == "metadata.name":
			v = name
		case from.FieldRef != nil && from.FieldRef.FieldPath == "status.podIP":
			v = podIP
		case from.SecretKeyRef != nil:
			v, ok = secrets[from.SecretKeyRef.Key]
			if !ok && (from.SecretKeyRef.Optional == nil || !*from.SecretKeyRef.Optional) {
				t.Fatalf("%s: %s needs key %q of the Secret", s.Name, e.Name, from.SecretKeyRef.Key)
			}
		default:
			t.Fatalf("%s: %s: no value for %+v", s.Name, e.Name, from)
		}
		if ok {
			env = append(env, e.Name+"="+v)
		}
	}
	httpPort := freePort(t)
	args := []string{"--http", "0.0.0.0:" + strconv.Itoa(httpPort), "--gossip", "0.0.0.0:" + strconv.Itoa(gossipPort),
		"--data", data, "--join", join, "--fast-gossip"}
	bin := strings.TrimPrefix(ct.Command[0], binDir)
	p := testcluster.Start(t, name, testcluster.Bin(t, bin), args, env...)
	addr := net.JoinHostPort(podIP, strconv.Itoa(httpPort))
	testcluster.WaitHTTP(t, p, "http://"+addr+"/healthz", time.Minute)
	return &pod{name: name, http: addr, p: p}
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// get answers a GET's status and body ("" and 0 when the request failed).
func get(url string) (int, string) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// probesAnswer checks that every probe path, the scrape path and every route the static check
// trusts answer 200 on the real process, and that a path not in the route table does not.
func probesAnswer(t *testing.T, s *appsv1.StatefulSet, pd *pod, bin binary) {
	t.Helper()
	ct := s.Spec.Template.Spec.Containers[0]
	paths := append([]string{s.Spec.Template.Annotations["prometheus.io/path"]}, bin.routes...)
	if ct.StartupProbe != nil {
		paths = append(paths, ct.StartupProbe.HTTPGet.Path)
	}
	paths = append(paths, ct.ReadinessProbe.HTTPGet.Path, ct.LivenessProbe.HTTPGet.Path)
	for _, path := range paths {
		url := "http://" + pd.http + path
		testcluster.Eventually(t, 30*time.Second, pd.name+" GET "+path+" answers 200", func() bool {
			code, _ := get(url)
			return code == 200
		})
	}
	if _, body := get("http://" + pd.http + "/metrics"); !strings.Contains(body, "# TYPE ") {
		t.Errorf("%s /metrics is not Prometheus text: %.200q", pd.name, body)
	}
	for _, path := range nodeRoutes {
		if code, _ := get("http://" + pd.http + path); !slices.Contains(bin.routes, path) && code == 200 {
			t.Errorf("%s answers 200 on %s, which its route table lacks: the table is stale", pd.name, path)
		}
	}
}

// The manifests' pods run for real: the coordinator and a node started with the environment
// the StatefulSets give them, bound to 0.0.0.0 and advertising their "pod IP". Every probe and
// scrape path answers; the node is listed, and reached, at its advertised address; a rain runs
// over it (a node added mid-rain has no slice of it); the node's SIGTERM drain ends within the grace the static check demands and leaves
// its remainder as leftover (not lost); the pod back under the same name and volume recovers its
// journal; the rain settles and balances.
func TestManifestsPodsRun(t *testing.T) {
	b, err := decode(manifestFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	bins := binaries(t)
	sets := map[string]*appsv1.StatefulSet{}
	for _, s := range b.sets {
		sets[binOf(s)] = s
	}
	redis := testredis.New(t)
	secrets := map[string]string{"secret": cluster.RandomHex(16), "admin-token": cluster.RandomHex(16),
		"redis-url": redis.URL(), "user-key": cluster.RandomHex(16)}
	dir := t.TempDir()
	coordGossip := freePort(t)
	coord := runPod(t, sets["coordinator"], 0, secrets, filepath.Join(dir, "coord"), coordGossip, "")
	// A name, as the manifests' pod DNS names are: the nodes resolve it (and retry) themselves.
	join := net.JoinHostPort("localhost", strconv.Itoa(coordGossip))
	nodeData := filepath.Join(dir, "node")
	nd := runPod(t, sets["node"], 0, secrets, nodeData, freePort(t), join)
	probesAnswer(t, sets["coordinator"], coord, bins["coordinator"])
	probesAnswer(t, sets["node"], nd, bins["node"])

	ctx := context.Background()
	adm := cluster.NewAdmin("http://"+coord.http, secrets["admin-token"])
	listedAt := func() string {
		nodes, err := adm.Nodes(ctx)
		for _, n := range nodes {
			if n.ID == nd.name && n.State == "alive" && err == nil {
				return n.Addr
			}
		}
		return ""
	}
	testcluster.Eventually(t, 30*time.Second, "the node listed alive by the coordinator", func() bool { return listedAt() != "" })
	if got := listedAt(); got != nd.http {
		t.Fatalf("the coordinator lists %s at %s; want its advertised %s (bound on 0.0.0.0)", nd.name, got, nd.http)
	}

	const total, count = int64(20_000), int64(200)
	r, err := adm.Create(ctx, rain.Config{AnchorID: 7, TotalAmount: total, TotalCount: count, MaxPerUser: 1, DurationS: 600})
	if err != nil {
		t.Fatal(err)
	}
	for _, act := range []string{"prepare", "start"} {
		if _, err := adm.Act(ctx, r.Code, act, 7); err != nil {
			t.Fatalf("%s: %v", act, err)
		}
	}
	answers := claim(nd, r.Code, 1, 60)

	// A node added mid-rain holds no slice of it.
	added := runPod(t, sets["node"], 1, secrets, filepath.Join(dir, "node-1"), freePort(t), join)
	testcluster.WaitHTTP(t, added.p, "http://"+added.http+"/readyz", 30*time.Second)
	if a := tap.NewClaimer(1).Claim(added.http, r.Code, 1000); a.Status != 404 || a.Error != "unknown_rain" {
		t.Fatalf("a claim on a node added mid-rain: %+v; want 404 unknown_rain (README says so)", a)
	}

	// The pod goes: SIGTERM, drained within the node's bound.
	began := time.Now()
	if err := nd.p.Term(bins["node"].drain + graceMargin); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	t.Logf("SIGTERM drain took %v (grace demanded: preStop + %v + %v)", time.Since(began).Round(time.Millisecond), bins["node"].drain, graceMargin)
	rep, err := adm.Report(ctx, r.Code)
	if err != nil {
		t.Fatal(err)
	}
	claimed := sum(answers)
	if rep.LostAmount != 0 || rep.ClaimedAmount != claimed || rep.LeftoverAmount != total-claimed {
		t.Fatalf("after the drain: claimed %d leftover %d lost %d; want %d, %d, 0", rep.ClaimedAmount,
			rep.LeftoverAmount, rep.LostAmount, claimed, total-claimed)
	}

	// The pod comes back under its name with its volume: it recovers and serves the rest.
	nd = runPod(t, sets["node"], 0, secrets, nodeData, freePort(t), join)
	testcluster.Eventually(t, 30*time.Second, "the node back, alive", func() bool { return listedAt() == nd.http })
	answers = append(answers, claim(nd, r.Code, 61, 120)...)
	if _, err := adm.Act(ctx, r.Code, "stop", 7); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, time.Minute, "rain settled", func() bool {
		g, err := adm.Get(ctx, r.Code)
		return err == nil && g.Status == rain.Settled
	})
	if rep, err = adm.Report(ctx, r.Code); err != nil {
		t.Fatal(err)
	}
	credits, totals, nodes, err := check.ReadRedis(ctx, redis.Client(), r.Code)
	if err != nil {
		t.Fatal(err)
	}
	v := check.Check(answers, credits, totals, nodes, check.Expect{Code: r.Code, TotalAmount: total, TotalCount: count, MaxPerUser: 1})
	for _, s := range append(v.Violations, check.Report(rep)...) {
		t.Error(s)
	}
	if v.Answered != 120 || rep.ClaimedAmount != sum(answers) || rep.LostAmount != 0 {
		t.Errorf("%d claims answered, report %+v", v.Answered, *rep)
	}
}

// claim has users from..to (one claim each) tap the pod.
func claim(pd *pod, code string, from, to uint64) []check.Answer {
	var out []check.Answer
	c := tap.NewClaimer(1)
	for u := from; u <= to; u++ {
		a := c.Claim(pd.http, code, u)
		a.Node = pd.name
		out = append(out, a)
	}
	return out
}

func sum(answers []check.Answer) int64 {
	var s int64
	for _, a := range answers {
		if a.Status == 200 {
			s += a.Amount
		}
	}
	return s
}
