package k8s

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"redrain/internal/flagenv"
	"redrain/internal/testcluster"
	"redrain/node"
)

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }

// bundle is every manifest, decoded.
type bundle struct {
	sets     []*appsv1.StatefulSet
	services []*corev1.Service
	secrets  []*corev1.Secret
	pdbs     []*policyv1.PodDisruptionBudget
}

// binary is what the manifests may rely on of one of the image's commands.
type binary struct {
	flags    map[string]bool // from its -h: every flag it has
	required []string        // flags it refuses to start without
	routes   []string        // GET paths a probe or a scraper may use (runTest asks the real process)
	ready    string          // the readiness path
	drain    time.Duration   // the most its SIGTERM stop takes (see grace)
}

// Routes and drains of the binaries. A node's stop (node.Node.Close) shares one
// node.ShutdownTimeout between the HTTP drain, the final flush and the leftover records, then
// leaves the gossip cluster (2 s); the coordinator drains its admin API (5 s), then leaves (2 s).
var (
	nodeRoutes  = []string{"/healthz", "/readyz", "/metrics"}
	coordRoutes = []string{"/healthz", "/metrics"}
	nodeDrain   = node.ShutdownTimeout + 2*time.Second
	coordDrain  = 7 * time.Second
)

// graceMargin is what a grace period must leave beyond the preStop pause and the drain: the
// journal's close (its last write-ahead log applied to bbolt) and the process's exit.
const graceMargin = 10 * time.Second

// The rules of the pods that can be checked without the cluster.
const (
	binDir     = "/usr/local/bin/"
	bindHost   = "0.0.0.0" // a pod binds every interface and advertises its IP
	envPrefix  = "REDRAIN_"
	hostLabel  = "kubernetes.io/hostname"
	httpPort   = "http"
	gossipTCP  = "gossip-tcp"
	gossipUDP  = "gossip-udp"
	dataVolume = "data"
)

// fieldRefs are the downward-API fields an env variable may take, and which variable each
// belongs to.
var fieldRefs = map[string]string{"REDRAIN_ID": "metadata.name", "REDRAIN_ADVERTISE": "status.podIP"}

// manifestFiles reads every manifest: what `kubectl apply -f deploy/k8s/` applies, and the
// Secret's shape in example/.
func manifestFiles(t *testing.T) map[string]string {
	t.Helper()
	paths, _ := filepath.Glob("*.yaml")
	more, _ := filepath.Glob("example/*.yaml")
	files := map[string]string{}
	for _, p := range append(paths, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = string(b)
	}
	if len(files) < 4 {
		t.Fatalf("only %d manifests found", len(files))
	}
	return files
}

func dockerfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// binaries builds the image's commands and reads each one's flags from its -h.
func binaries(t *testing.T) map[string]binary {
	t.Helper()
	return map[string]binary{
		"node": {flags: flagsOf(t, "node"), required: []string{"id", "data", "redis", "secret"},
			routes: nodeRoutes, ready: "/readyz", drain: nodeDrain},
		"coordinator": {flags: flagsOf(t, "coordinator"), required: []string{"data", "redis", "secret", "admin-token"},
			routes: coordRoutes, ready: "/healthz", drain: coordDrain},
	}
}

var flagLine = regexp.MustCompile(`(?m)^  -([a-z0-9][a-z0-9-]*)`)

func flagsOf(t *testing.T, name string) map[string]bool {
	t.Helper()
	cmd := exec.Command(testcluster.Bin(t, name), "-h")
	cmd.Env = []string{} // nothing of ours may reach its flags
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s -h: %v\n%s", name, err, out)
	}
	flags := map[string]bool{}
	for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if !flags["data"] || !flags["secret"] {
		t.Fatalf("%s -h lists no --data or --secret: %q", name, out)
	}
	return flags
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decode decodes every document of every file strictly (an unknown or duplicated field fails)
// into the Kubernetes type its apiVersion and kind name.
func decode(files map[string]string) (*bundle, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	b := &bundle{}
	for _, name := range names {
		for i, doc := range docSep.Split(files[name], -1) {
			if empty(doc) {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				return nil, fmt.Errorf("%s document %d: %w", name, i+1, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 StatefulSet":
				s := &appsv1.StatefulSet{}
				b.sets, obj = append(b.sets, s), s
			case "v1 Service":
				s := &corev1.Service{}
				b.services, obj = append(b.services, s), s
			case "v1 Secret":
				s := &corev1.Secret{}
				b.secrets, obj = append(b.secrets, s), s
			case "policy/v1 PodDisruptionBudget":
				p := &policyv1.PodDisruptionBudget{}
				b.pdbs, obj = append(b.pdbs, p), p
			default:
				return nil, fmt.Errorf("%s document %d: apiVersion %q kind %q is not a kind this test checks",
					name, i+1, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				return nil, fmt.Errorf("%s document %d (%s): %w", name, i+1, tm.Kind, err)
			}
		}
	}
	return b, nil
}

// empty reports whether a YAML document holds nothing but comments and blank lines.
func empty(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// checker collects the problems of one bundle.
type checker struct {
	b      *bundle
	bins   map[string]binary
	docker string
	probs  []string
}

func (c *checker) fail(format string, args ...any) {
	c.probs = append(c.probs, fmt.Sprintf(format, args...))
}

// drift returns every drift between the manifests, the binaries and the Dockerfile.
func drift(b *bundle, bins map[string]binary, docker string) []string {
	c := &checker{b: b, bins: bins, docker: docker}
	seen := map[string]bool{}
	for _, s := range b.sets {
		c.set(s)
		seen[binOf(s)] = true
	}
	for name := range bins {
		if !seen[name] {
			c.fail("no StatefulSet runs %s", name)
		}
	}
	for _, svc := range b.services {
		c.service(svc)
	}
	c.pdb()
	return c.probs
}

// binOf is the image's command a StatefulSet runs ("" if not one).
func binOf(s *appsv1.StatefulSet) string {
	cs := s.Spec.Template.Spec.Containers
	if len(cs) != 1 || len(cs[0].Command) != 1 {
		return ""
	}
	return strings.TrimPrefix(cs[0].Command[0], binDir)
}

func (c *checker) set(s *appsv1.StatefulSet) {
	pod := &s.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		c.fail("StatefulSet %s: %d containers, want 1", s.Name, len(pod.Containers))
		return
	}
	ct := &pod.Containers[0]
	name := binOf(s)
	bin, ok := c.bins[name]
	if !ok || len(ct.Command) != 1 || !strings.HasPrefix(ct.Command[0], binDir) {
		c.fail("StatefulSet %s: command %q is not %s<node|coordinator>", s.Name, ct.Command, binDir)
		return
	}
	c.image(s, name)
	if sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector); err != nil || !sel.Matches(labels.Set(s.Spec.Template.Labels)) {
		c.fail("StatefulSet %s: its selector does not select its pod template's labels (%v)", s.Name, err)
	}
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		c.fail("StatefulSet %s: enableServiceLinks must be false: Services named redrain-* would put REDRAIN_* variables in the pod, read as flags", s.Name)
	}
	env := c.env(s, ct, bin)
	ports := c.ports(s, ct, env)
	c.probes(s, ct, bin, ports)
	c.scrape(s, bin, ports)
	c.stop(s, ct, bin)
	c.volume(s, ct, env)
	c.gossip(s, env, ports)
	c.security(s, ct)
	if name == "coordinator" && replicas(s) != 1 {
		c.fail("StatefulSet %s: %d replicas; the coordinator runs alone (its store is its volume)", s.Name, replicas(s))
	}
	if name == "node" {
		c.antiAffinity(s)
	}
}

func replicas(s *appsv1.StatefulSet) int32 {
	if s.Spec.Replicas == nil {
		return 1
	}
	return *s.Spec.Replicas
}

// image: the Dockerfile builds the command and puts it where the manifest runs it.
func (c *checker) image(s *appsv1.StatefulSet, name string) {
	built := regexp.MustCompile(`for cmd in ([a-z ]+);`).FindStringSubmatch(c.docker)
	if built == nil || !slices.Contains(strings.Fields(built[1]), name) || !strings.Contains(c.docker, "./cmd/$cmd") {
		c.fail("StatefulSet %s: the Dockerfile does not build ./cmd/%s", s.Name, name)
	}
	if !regexp.MustCompile(`(?m)^COPY --from=build .*/out/` + name + `\b.* ` + binDir + `$`).MatchString(c.docker) {
		c.fail("StatefulSet %s: command %s%s: the Dockerfile does not copy %s there", s.Name, binDir, name, name)
	}
}

// envValue is one flag's setting in a pod: a literal, or where Kubernetes takes it from.
type envValue struct {
	value string
	from  *corev1.EnvVarSource
}

// env checks every variable and argument the container sets against the binary's flags and
// returns the settings by flag name.
func (c *checker) env(s *appsv1.StatefulSet, ct *corev1.Container, bin binary) map[string]envValue {
	set := map[string]envValue{}
	for _, e := range ct.Env {
		if !strings.HasPrefix(e.Name, envPrefix) {
			continue
		}
		flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(e.Name, envPrefix), "_", "-"))
		if flagenv.EnvName(envPrefix, flag) != e.Name || !bin.flags[flag] {
			c.fail("StatefulSet %s: sets %s, but %s has no flag --%s (flags map to %s + upper case, - as _)",
				s.Name, e.Name, binOf(s), flag, envPrefix)
			continue
		}
		if _, dup := set[flag]; dup {
			c.fail("StatefulSet %s: %s set twice", s.Name, e.Name)
		}
		set[flag] = envValue{value: e.Value, from: e.ValueFrom}
		c.source(s, e)
	}
	for _, a := range ct.Args {
		flag, val, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !bin.flags[flag] {
			c.fail("StatefulSet %s: argument %q is not a flag of %s (give flags as --name=value)", s.Name, a, binOf(s))
			continue
		}
		set[flag] = envValue{value: val} // the command line wins over the environment
	}
	for _, f := range bin.required {
		if _, ok := set[f]; !ok {
			c.fail("StatefulSet %s: %s requires --%s, not set (%s)", s.Name, binOf(s), f, flagenv.EnvName(envPrefix, f))
		}
	}
	return set
}

// source checks where a variable's value comes from: a Secret's key that exists, or the
// downward-API field that variable needs.
func (c *checker) source(s *appsv1.StatefulSet, e corev1.EnvVar) {
	want, wantsField := fieldRefs[e.Name]
	switch from := e.ValueFrom; {
	case wantsField && (from == nil || from.FieldRef == nil || from.FieldRef.FieldPath != want):
		c.fail("StatefulSet %s: %s must come from the downward API's %s", s.Name, e.Name, want)
	case from == nil:
	case from.FieldRef != nil && !wantsField:
		c.fail("StatefulSet %s: %s from field %s: no rule says why", s.Name, e.Name, from.FieldRef.FieldPath)
	case from.SecretKeyRef != nil:
		if !c.secretHas(from.SecretKeyRef.Name, from.SecretKeyRef.Key) {
			c.fail("StatefulSet %s: %s reads key %q of Secret %q: no such Secret or key", s.Name, e.Name,
				from.SecretKeyRef.Key, from.SecretKeyRef.Name)
		}
	case from.FieldRef == nil:
		c.fail("StatefulSet %s: %s: only literal values, Secret keys and %v are checked", s.Name, e.Name, fieldRefs)
	}
}

func (c *checker) secretHas(name, key string) bool {
	for _, sec := range c.b.secrets {
		if sec.Name != name {
			continue
		}
		_, inData := sec.Data[key]
		_, inString := sec.StringData[key]
		return inData || inString
	}
	return false
}

// containerPorts are a container's ports by name.
type containerPorts map[string]corev1.ContainerPort

// ports checks the container's named ports against the addresses the binary binds.
func (c *checker) ports(s *appsv1.StatefulSet, ct *corev1.Container, env map[string]envValue) containerPorts {
	ports := containerPorts{}
	for _, p := range ct.Ports {
		ports[p.Name] = p
	}
	want := []struct {
		name, flag string
		proto      corev1.Protocol
	}{{httpPort, "http", corev1.ProtocolTCP}, {gossipTCP, "gossip", corev1.ProtocolTCP}, {gossipUDP, "gossip", corev1.ProtocolUDP}}
	for _, w := range want {
		p, ok := ports[w.name]
		if !ok || protocol(p.Protocol) != w.proto {
			c.fail("StatefulSet %s: no %s container port named %q", s.Name, w.proto, w.name)
			continue
		}
		host, port, err := net.SplitHostPort(env[w.flag].value)
		if err != nil || host != bindHost || port != strconv.Itoa(int(p.ContainerPort)) {
			c.fail("StatefulSet %s: --%s is %q; want %s:%d (container port %s: bind every interface, advertise the pod IP)",
				s.Name, w.flag, env[w.flag].value, bindHost, p.ContainerPort, w.name)
		}
	}
	if _, ok := env["advertise"]; !ok {
		c.fail("StatefulSet %s: bound to %s, it must advertise its pod IP (REDRAIN_ADVERTISE)", s.Name, bindHost)
	}
	return ports
}

func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// resolve is the container port a Service's or probe's port names.
func (ports containerPorts) resolve(p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

// probes: HTTP GETs of the binary's routes on its HTTP port; readiness and liveness the right ones.
func (c *checker) probes(s *appsv1.StatefulSet, ct *corev1.Container, bin binary, ports containerPorts) {
	want := map[string]string{"readiness": bin.ready, "liveness": "/healthz"}
	for kind, p := range map[string]*corev1.Probe{"startup": ct.StartupProbe, "readiness": ct.ReadinessProbe, "liveness": ct.LivenessProbe} {
		if p == nil {
			if kind != "startup" {
				c.fail("StatefulSet %s: no %s probe", s.Name, kind)
			}
			continue
		}
		g := p.HTTPGet
		if g == nil {
			c.fail("StatefulSet %s: %s probe is not an HTTP GET (the image has no shell)", s.Name, kind)
			continue
		}
		if cp, ok := ports.resolve(g.Port); !ok || cp.Name != httpPort {
			c.fail("StatefulSet %s: %s probe port %s is not the container's %q port", s.Name, kind, g.Port.String(), httpPort)
		}
		if !slices.Contains(bin.routes, g.Path) {
			c.fail("StatefulSet %s: %s probe path %q: %s serves %v", s.Name, kind, g.Path, binOf(s), bin.routes)
		} else if w, ok := want[kind]; ok && g.Path != w {
			c.fail("StatefulSet %s: %s probe path %q, want %s", s.Name, kind, g.Path, w)
		}
	}
}

// scrape: the Prometheus annotations name the metrics route on the HTTP port.
func (c *checker) scrape(s *appsv1.StatefulSet, bin binary, ports containerPorts) {
	a := s.Spec.Template.Annotations
	port := strconv.Itoa(int(ports[httpPort].ContainerPort))
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != port || a["prometheus.io/path"] != "/metrics" ||
		!slices.Contains(bin.routes, a["prometheus.io/path"]) {
		c.fail("StatefulSet %s: prometheus.io annotations %v; want scrape \"true\", port %q, path /metrics", s.Name, a, port)
	}
}

// stop: the preStop pause is the kubelet's sleep (no shell in the image) and the grace period
// covers it, the SIGTERM drain and a margin.
func (c *checker) stop(s *appsv1.StatefulSet, ct *corev1.Container, bin binary) {
	var pause time.Duration
	if l := ct.Lifecycle; l != nil && l.PreStop != nil {
		if l.PreStop.Sleep == nil {
			c.fail("StatefulSet %s: preStop must be the kubelet's sleep: the image has no shell to exec in", s.Name)
		} else {
			pause = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
		}
	}
	grace := 30 * time.Second // Kubernetes' default
	if g := s.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if need := pause + bin.drain + graceMargin; grace < need {
		c.fail("StatefulSet %s: terminationGracePeriodSeconds %v < preStop %v + drain %v + margin %v",
			s.Name, grace, pause, bin.drain, graceMargin)
	}
}

// volume: --data is a mount of the pod's own claim, the path the image declares a volume.
func (c *checker) volume(s *appsv1.StatefulSet, ct *corev1.Container, env map[string]envValue) {
	dir := env["data"].value
	ok := false
	for _, m := range ct.VolumeMounts {
		if m.MountPath == dir && m.Name == dataVolume && !m.ReadOnly {
			ok = true
		}
	}
	claimed := false
	for _, t := range s.Spec.VolumeClaimTemplates {
		claimed = claimed || t.Name == dataVolume
	}
	if !ok || !claimed {
		c.fail("StatefulSet %s: --data %q is not where volumeClaimTemplate %q is mounted", s.Name, dir, dataVolume)
	}
	if !strings.Contains(c.docker, `VOLUME ["`+dir+`"]`) {
		c.fail("StatefulSet %s: --data %q is not the Dockerfile's VOLUME", s.Name, dir)
	}
}

// gossip: the StatefulSet is governed by a headless Service that publishes every pod (ready or
// not) on the gossip port, TCP and UDP, and each join address is a pod of a StatefulSet here.
func (c *checker) gossip(s *appsv1.StatefulSet, env map[string]envValue, ports containerPorts) {
	svc := c.serviceNamed(s.Spec.ServiceName)
	if svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
		c.fail("StatefulSet %s: serviceName %q is not a headless Service here publishing not-ready pods", s.Name, s.Spec.ServiceName)
		return
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(s.Spec.Template.Labels)) || len(svc.Spec.Selector) == 0 {
		c.fail("StatefulSet %s: the gossip Service %s does not select its pods", s.Name, svc.Name)
	}
	gossipPort := ports[gossipTCP].ContainerPort
	for _, want := range []string{gossipTCP, gossipUDP} {
		found := false
		for _, p := range svc.Spec.Ports {
			cp, ok := ports.resolve(p.TargetPort)
			if p.TargetPort.IntValue() == 0 && p.TargetPort.StrVal == "" {
				cp, ok = ports.resolve(intstr.FromInt32(p.Port))
			}
			found = found || ok && cp.Name == want && p.Port == gossipPort && protocol(p.Protocol) == protocol(cp.Protocol)
		}
		if !found {
			c.fail("StatefulSet %s: the gossip Service %s has no %s port %d (memberlist uses TCP and UDP)",
				s.Name, svc.Name, ports[want].Protocol, gossipPort)
		}
	}
	joinsCoordinator := false
	for _, addr := range flagenv.List(env["join"].value) {
		target, ok := c.joinTarget(addr, gossipPort)
		if !ok {
			c.fail("StatefulSet %s: join address %q is not <pod>.<headless service>:%d of a pod here "+
				"(an address that resolves to the pod itself counts as joined: the bare Service is never joined)",
				s.Name, addr, gossipPort)
		}
		joinsCoordinator = joinsCoordinator || target == "coordinator"
	}
	if binOf(s) == "node" && !joinsCoordinator {
		c.fail("StatefulSet %s: its join list %q names no coordinator pod", s.Name, env["join"].value)
	}
}

// joinTarget resolves "<set>-<ordinal>.<service>[.<namespace>...]:<port>" to the command of
// the StatefulSet whose pod it names.
func (c *checker) joinTarget(addr string, port int32) (string, bool) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil || p != strconv.Itoa(int(port)) {
		return "", false
	}
	parts := strings.Split(host, ".")
	if len(parts) < 2 {
		return "", false
	}
	for _, t := range c.b.sets {
		ord, found := strings.CutPrefix(parts[0], t.Name+"-")
		n, err := strconv.Atoi(ord)
		if found && err == nil && n >= 0 && int32(n) < replicas(t) && parts[1] == t.Spec.ServiceName {
			return binOf(t), true
		}
	}
	return "", false
}

func (c *checker) serviceNamed(name string) *corev1.Service {
	for _, svc := range c.b.services {
		if svc.Name == name {
			return svc
		}
	}
	return nil
}

// security: non-root, read-only root, no privilege escalation (the image runs as 65532).
func (c *checker) security(s *appsv1.StatefulSet, ct *corev1.Container) {
	p, sc := s.Spec.Template.Spec.SecurityContext, ct.SecurityContext
	if p == nil || p.RunAsNonRoot == nil || !*p.RunAsNonRoot || p.FSGroup == nil ||
		sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		c.fail("StatefulSet %s: want runAsNonRoot, an fsGroup (the volume writable), a read-only root and no privilege escalation", s.Name)
	}
}

// antiAffinity: nodes avoid sharing a machine with each other.
func (c *checker) antiAffinity(s *appsv1.StatefulSet) {
	a := s.Spec.Template.Spec.Affinity
	var terms []corev1.PodAffinityTerm
	if a != nil && a.PodAntiAffinity != nil {
		terms = append(terms, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			terms = append(terms, w.PodAffinityTerm)
		}
	}
	for _, t := range terms {
		sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector)
		if err == nil && t.TopologyKey == hostLabel && sel.Matches(labels.Set(s.Spec.Template.Labels)) && !sel.Empty() {
			return
		}
	}
	c.fail("StatefulSet %s: no pod anti-affinity on %s selecting its own pods", s.Name, hostLabel)
}

// service: a non-headless Service selects exactly one StatefulSet's pods, on its ports.
func (c *checker) service(svc *corev1.Service) {
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return // the gossip Service, checked from its StatefulSets
	}
	var picked []*appsv1.StatefulSet
	for _, s := range c.b.sets {
		if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(s.Spec.Template.Labels)) {
			picked = append(picked, s)
		}
	}
	if len(picked) != 1 {
		c.fail("Service %s selects %d StatefulSets' pods, want 1", svc.Name, len(picked))
		return
	}
	ct := picked[0].Spec.Template.Spec.Containers[0]
	ports := containerPorts{}
	for _, p := range ct.Ports {
		ports[p.Name] = p
	}
	for _, p := range svc.Spec.Ports {
		if cp, ok := ports.resolve(p.TargetPort); !ok || cp.Name != httpPort || protocol(p.Protocol) != protocol(cp.Protocol) {
			c.fail("Service %s: port %d targets %s, not %s's %q port", svc.Name, p.Port, p.TargetPort.String(), picked[0].Name, httpPort)
		}
	}
}

// pdb: a budget selects the node pods, and only them.
func (c *checker) pdb() {
	for _, p := range c.b.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		for _, s := range c.b.sets {
			if err == nil && !sel.Empty() && sel.Matches(labels.Set(s.Spec.Template.Labels)) != (binOf(s) == "node") {
				c.fail("PodDisruptionBudget %s: selects %s's pods: %v, want the nodes' only", p.Name, s.Name, !(binOf(s) == "node"))
			}
		}
		if err != nil || sel.Empty() {
			c.fail("PodDisruptionBudget %s: no usable selector (%v)", p.Name, err)
		}
		if p.Spec.MaxUnavailable == nil && p.Spec.MinAvailable == nil {
			c.fail("PodDisruptionBudget %s: neither maxUnavailable nor minAvailable", p.Name)
		}
	}
	if len(c.b.pdbs) == 0 {
		c.fail("no PodDisruptionBudget for the nodes")
	}
}

// The manifests as committed: decoded strictly, no drift from the binaries or the Dockerfile.
func TestManifestsMatchTheBinaries(t *testing.T) {
	b, err := decode(manifestFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.sets) != 2 || len(b.services) != 3 || len(b.secrets) != 1 || len(b.pdbs) != 1 {
		t.Fatalf("decoded %d StatefulSets, %d Services, %d Secrets, %d budgets; want 2, 3, 1, 1",
			len(b.sets), len(b.services), len(b.secrets), len(b.pdbs))
	}
	for _, p := range drift(b, binaries(t), dockerfile(t)) {
		t.Error(p)
	}
}

// Each way a manifest (or the Dockerfile) can drift is caught, naming the drift.
func TestSpoiledManifestsAreCaught(t *testing.T) {
	bins := binaries(t)
	files := manifestFiles(t)
	docker := dockerfile(t)
	cases := []struct {
		name, file, old, new string
		want                 string // in the decode error or a problem
	}{
		{"unknown field", "node.yaml", "  serviceName: redrain-gossip", "  serviceNam: redrain-gossip", `unknown field "serviceNam"`},
		{"field of another kind", "gossip-service.yaml", "  clusterIP: None", "  clusterIP: None\n  replicas: 2", `unknown field "replicas"`},
		{"apiVersion gone", "node.yaml", "apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n", "not a kind this test checks"},
		{"env not a flag", "node.yaml", "name: REDRAIN_ADVERTISE", "name: REDRAIN_ADVERTISE_IP", "no flag --advertise-ip"},
		{"env in lower case", "coordinator.yaml", "name: REDRAIN_ADMIN_TOKEN", "name: REDRAIN_admin_token", "REDRAIN_admin_token"},
		{"argument not a flag", "node.yaml", `command: ["/usr/local/bin/node"]`, `command: ["/usr/local/bin/node"]` + "\n          args: [\"--join-all\"]", `"--join-all" is not a flag`},
		{"required flag missing", "coordinator.yaml", "name: REDRAIN_ADMIN_TOKEN", "name: ADMIN_TOKEN", "requires --admin-token"},
		{"id not the pod name", "node.yaml", "fieldPath: metadata.name", "fieldPath: metadata.namespace", "REDRAIN_ID must come from"},
		{"advertise not set", "node.yaml", "            - name: REDRAIN_ADVERTISE\n              valueFrom:\n                fieldRef:\n                  fieldPath: status.podIP\n", "", "must advertise its pod IP"},
		{"secret key missing", "node.yaml", "key: redis-url", "key: redis", `key "redis" of Secret "redrain"`},
		{"secret missing", "coordinator.yaml", "name: redrain\n                  key: secret", "name: redrain-secrets\n                  key: secret", `Secret "redrain-secrets"`},
		{"http bound to loopback", "node.yaml", "value: 0.0.0.0:8080", "value: 127.0.0.1:8080", "--http is \"127.0.0.1:8080\""},
		{"container port drifted", "node.yaml", "containerPort: 8080", "containerPort: 8081", "want 0.0.0.0:8081"},
		{"gossip port drifted", "coordinator.yaml", "value: 0.0.0.0:7946", "value: 0.0.0.0:7000", "--gossip is \"0.0.0.0:7000\""},
		{"readiness path", "node.yaml", "path: /readyz", "path: /ready", `readiness probe path "/ready"`},
		{"readiness on liveness", "node.yaml", "path: /readyz", "path: /healthz", "readiness probe path \"/healthz\", want /readyz"},
		{"coordinator has no readyz", "coordinator.yaml", "path: /healthz", "path: /readyz", `path "/readyz": coordinator serves`},
		{"probe port", "node.yaml", "port: http\n            periodSeconds: 10", "port: 9090\n            periodSeconds: 10", "liveness probe port 9090"},
		{"probe by exec", "node.yaml", "livenessProbe:\n            httpGet:\n              path: /healthz\n              port: http", "livenessProbe:\n            exec:\n              command: [\"true\"]", "not an HTTP GET"},
		{"scrape path", "node.yaml", "prometheus.io/path: /metrics", "prometheus.io/path: /metric", "prometheus.io annotations"},
		{"scrape port", "coordinator.yaml", `prometheus.io/port: "9090"`, `prometheus.io/port: "8080"`, "prometheus.io annotations"},
		{"gossip service port", "gossip-service.yaml", "port: 7946\n      targetPort: gossip-udp", "port: 7947\n      targetPort: gossip-udp", "no UDP port 7946"},
		{"gossip service TCP only", "gossip-service.yaml", "protocol: UDP", "protocol: TCP", "no UDP port 7946"},
		{"gossip service not headless", "gossip-service.yaml", "  clusterIP: None\n", "", "not a headless Service"},
		{"gossip service hides unready pods", "gossip-service.yaml", "publishNotReadyAddresses: true", "publishNotReadyAddresses: false", "not a headless Service"},
		{"join the bare service", "node.yaml", "value: redrain-coordinator-0.redrain-gossip:7946,redrain-node-0.redrain-gossip:7946", "value: redrain-gossip:7946", `join address "redrain-gossip:7946"`},
		{"join a pod that is not there", "coordinator.yaml", "value: redrain-node-0.redrain-gossip:7946", "value: redrain-node-3.redrain-gossip:7946", `join address "redrain-node-3.redrain-gossip:7946"`},
		{"nodes do not join the coordinator", "node.yaml", "value: redrain-coordinator-0.redrain-gossip:7946,", "value: ", "names no coordinator pod"},
		{"claims service selects nothing", "node.yaml", "  selector:\n    app.kubernetes.io/name: redrain\n    app.kubernetes.io/component: node\n  ports:", "  selector:\n    app.kubernetes.io/name: redrain\n    app.kubernetes.io/component: nodes\n  ports:", "Service redrain-claims selects 0"},
		{"admin service port", "coordinator.yaml", "      targetPort: http\n", "      targetPort: 9091\n", "Service redrain-admin: port 9090 targets 9091"},
		{"selector misses the template", "coordinator.yaml", "  selector:\n    matchLabels:\n      app.kubernetes.io/name: redrain\n      app.kubernetes.io/component: coordinator", "  selector:\n    matchLabels:\n      app.kubernetes.io/name: redrain\n      app.kubernetes.io/component: coord", "its selector does not select"},
		{"budget selects the coordinator", "node.yaml", "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: redrain\n      app.kubernetes.io/component: node", "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: redrain", "PodDisruptionBudget redrain-node: selects redrain-coordinator's pods"},
		{"preStop by shell", "node.yaml", "sleep:\n                seconds: 5", "exec:\n                command: [\"sleep\", \"5\"]", "no shell"},
		{"grace too short", "node.yaml", "terminationGracePeriodSeconds: 40", "terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds 20s"},
		{"service links", "node.yaml", "enableServiceLinks: false", "enableServiceLinks: true", "enableServiceLinks"},
		{"data elsewhere", "node.yaml", "mountPath: /data", "mountPath: /var/data", `--data "/data" is not where`},
		{"two coordinators", "coordinator.yaml", "replicas: 1", "replicas: 2", "2 replicas"},
		{"anti-affinity on the wrong pods", "node.yaml", "                    app.kubernetes.io/component: node", "                    app.kubernetes.io/component: coordinator", "no pod anti-affinity"},
		{"runs as root", "node.yaml", "runAsNonRoot: true", "runAsNonRoot: false", "want runAsNonRoot"},
		{"command not in the image", "node.yaml", `command: ["/usr/local/bin/node"]`, `command: ["/bin/node"]`, "command [\"/bin/node\"]"},
		{"Dockerfile builds no coordinator", "Dockerfile", "for cmd in node coordinator;", "for cmd in node;", "does not build ./cmd/coordinator"},
		{"Dockerfile volume", "Dockerfile", `VOLUME ["/data"]`, `VOLUME ["/var/lib/redrain"]`, "is not the Dockerfile's VOLUME"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spoiled, d := map[string]string{}, docker
			for k, v := range files {
				spoiled[k] = v
			}
			text := docker
			if tc.file != "Dockerfile" {
				text = files[tc.file]
			}
			if !strings.Contains(text, tc.old) {
				t.Fatalf("%s has no %q: the case no longer spoils anything", tc.file, tc.old)
			}
			if tc.file == "Dockerfile" {
				d = strings.Replace(docker, tc.old, tc.new, 1)
			} else {
				spoiled[tc.file] = strings.Replace(text, tc.old, tc.new, 1)
			}
			b, err := decode(spoiled)
			var got []string
			if err != nil {
				got = []string{err.Error()}
			} else {
				got = drift(b, bins, d)
			}
			for _, p := range got {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Fatalf("spoiled (%q -> %q) but no problem says %q; got:\n%s", tc.old, tc.new, tc.want, strings.Join(got, "\n"))
		})
	}
}
