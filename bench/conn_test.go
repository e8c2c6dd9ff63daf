package bench

import (
	"bytes"
	"context"
	"errors"
	"net"
	"redrain/internal/check"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseHTTPAnswer(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n"
	for _, c := range []struct {
		in      string
		partial bool // the answer is not complete yet: size 0
		extra   int  // bytes after the answer
		status  int
		bodyLen int
		closing bool
		err     error
	}{
		{in: ok + `{"amount":1`, partial: true, status: 200, bodyLen: 0},
		{in: "HTTP/1.1 200 OK\r\nContent-Le", partial: true},
		{in: ok + `{"amount":1}`, status: 200, bodyLen: 12},
		{in: ok + `{"amount":1}extra`, extra: 5, status: 200, bodyLen: 12}, // read() refuses the extra
		{in: "HTTP/1.1 410 Gone\r\ncontent-length:  2 \r\nCONNECTION: Close\r\n\r\n{}", status: 410, bodyLen: 2, closing: true},
		{in: "HTTP/1.0 429\r\nContent-Length: 0\r\n\r\n", status: 429}, // no reason phrase
		{in: "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", status: 200},
		{in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", status: 200, bodyLen: 2},
		{in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", err: errBadHTTP},
		{in: "HTTP/1.1 200 OK\r\n\r\n", err: errNoLength},
		{in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", err: errNoLength},
		{in: "HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n", err: errBadHTTP}, // beyond maxAnswerSize
		{in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: errBadHTTP},
		{in: "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", err: errBadHTTP},
		{in: "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", err: errBadHTTP},
		{in: "HTTP/1.1 20x OK\r\nContent-Length: 0\r\n\r\n", err: errBadHTTP},
		{in: "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", err: errBadHTTP},
		{in: "HELLO\r\n\r\n", err: errBadHTTP},
	} {
		want := httpAnswer{status: c.status, bodyLen: c.bodyLen, closing: c.closing}
		if !c.partial && c.err == nil {
			want.size = len(c.in) - c.extra
		}
		got, err := parseHTTPAnswer([]byte(c.in))
		if !errors.Is(err, c.err) || (c.err == nil && got != want) || (c.err != nil && got.size != 0) {
			t.Errorf("parseHTTPAnswer(%q) = %+v, %v; want %+v, %v", c.in, got, err, want, c.err)
		}
	}
}

// rawServer answers every request on every connection with answer(n, request head): n counts
// requests from 1; nil closes the connection instead. accepts counts connections. It
// allocates nothing per request, so that BenchmarkTap counts the driver's allocations only.
type rawServer struct {
	addr    string
	accepts atomic.Int64
	mu      sync.Mutex
	last    []byte // the last request head
}

func startRaw(t testing.TB, answer func(n int, req []byte) []byte) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{addr: ln.Addr().String()}
	var conns sync.WaitGroup
	var n atomic.Int64
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			conns.Add(1)
			go func() { defer conns.Done(); s.serve(c, &n, answer) }()
		}
	}()
	return s
}

func (s *rawServer) serve(c net.Conn, n *atomic.Int64, answer func(int, []byte) []byte) {
	defer c.Close()
	buf, have := make([]byte, 8192), 0
	for {
		m, err := c.Read(buf[have:])
		if err != nil {
			return
		}
		have += m
		for {
			i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
			if i < 0 {
				break
			}
			s.mu.Lock()
			s.last = append(s.last[:0], buf[:i+4]...)
			s.mu.Unlock()
			a := answer(int(n.Add(1)), buf[:i+4])
			copy(buf, buf[i+4:have])
			have -= i + 4
			if a == nil {
				return
			}
			c.Write(a)
		}
	}
}

func (s *rawServer) lastRequest() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.last)
}

func httpText(status, body string) []byte {
	return []byte("HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) +
		"\r\n\r\n" + body)
}

func httpOK(body string) []byte { return httpText("200 OK", body) }

// A claimConn keeps its connection across claims, rewrites only the user id (and token) of
// its request, redials after Connection: close and after any error, and reports a broken
// answer as an error with the connection closed.
func TestClaimConn(t *testing.T) {
	s := startRaw(t, func(n int, _ []byte) []byte {
		switch n {
		case 3:
			return []byte("HTTP/1.1 410 Gone\r\nContent-Length: 21\r\nConnection: close\r\n\r\n" + `{"error":"exhausted"}`)
		case 5:
			return []byte("HELLO\r\n\r\n")
		case 6:
			return nil // hang up without an answer
		}
		return httpOK(`{"amount":5,"claim_id":"n1-x-` + strconv.Itoa(n) + `"}`)
	})
	k := newClaimConn(s.addr, "CODE", "")
	now := time.Now()
	for _, c := range []struct {
		user    uint64
		token   string
		status  int
		body    string
		err     bool
		accepts int64
	}{
		{7, "", 200, `{"amount":5,"claim_id":"n1-x-1"}`, false, 1},
		{123456789, "tok.en", 200, `{"amount":5,"claim_id":"n1-x-2"}`, false, 1},
		{8, "", 410, `{"error":"exhausted"}`, false, 1},
		{9, "", 200, `{"amount":5,"claim_id":"n1-x-4"}`, false, 2}, // redialed after Connection: close
		{10, "", 0, "", true, 2},
		{11, "", 0, "", true, 3}, // redialed after the garbage; the server hangs up
		{12, "", 200, `{"amount":5,"claim_id":"n1-x-7"}`, false, 4},
	} {
		status, body, err := k.claim(c.user, c.token, now)
		if status != c.status || string(body) != c.body || (err != nil) != c.err || s.accepts.Load() != c.accepts {
			t.Fatalf("user %d: %d %q %v, %d connections; want %d %q err %v, %d", c.user, status, body, err,
				s.accepts.Load(), c.status, c.body, c.err, c.accepts)
		}
		if c.err {
			continue
		}
		want := "POST /v1/rains/CODE/claim HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Length: 0\r\nX-User-Id: " +
			strconv.FormatUint(c.user, 10) + "\r\n"
		if c.token != "" {
			want += "Authorization: Bearer " + c.token + "\r\n"
		}
		if got := s.lastRequest(); got != want+"\r\n" {
			t.Fatalf("request %q, want %q", got, want+"\r\n")
		}
	}
	k.close()
	if status, _, err := newClaimConn("127.0.0.1:1", "CODE", "").claim(1, "", now); status != 0 || err == nil {
		t.Fatalf("claim at a closed port: %d %v", status, err)
	}
}

// Every answer is kept, across the workers' chunks: more answers per worker than a chunk
// holds, and each one's claim_id intact.
func TestLoadKeepsAnswersAcrossChunks(t *testing.T) {
	a := startFake(t, "a", 2*chunkRecs+100, 1_000_000, 0)
	res := Load(context.Background(), LoadOptions{Nodes: fakeAddrs(a), Code: "r", Users: 10, Conns: 1, Time: time.Minute})
	if res.Stop != StopDrained || len(res.Answers) != 2*chunkRecs+100+1 { // and the exhausted answer
		t.Fatalf("stop %q, %d answers", res.Stop, len(res.Answers))
	}
	ids := map[string]bool{}
	for _, an := range res.Answers {
		if an.Status != 200 {
			continue
		}
		if ids[an.ClaimID] || !strings.HasPrefix(an.ClaimID, "a-") || an.Amount < 1 || an.Error != "" {
			t.Fatalf("answer %+v (seen: %v)", an, ids[an.ClaimID])
		}
		ids[an.ClaimID] = true
	}
	if len(ids) != 2*chunkRecs+100 {
		t.Fatalf("%d claim_ids", len(ids))
	}
}

// Answers that are not claim answers are kept as such: a dead node's taps as network errors,
// a 200 that is not JSON as undecodable (a 200 without claim_id, as the fasthttp client kept
// it), an error word as the Error.
func TestLoadKeepsBrokenAnswers(t *testing.T) {
	s := startRaw(t, func(n int, _ []byte) []byte {
		if n%2 == 0 {
			return httpText("503 Service Unavailable", `{"error":"store_unavailable","message":"try again"}`)
		}
		return httpOK("not json")
	})
	dead := "127.0.0.1:1"
	res := Load(context.Background(), LoadOptions{Nodes: []string{s.addr, dead}, Code: "r", Users: 20, Conns: 2,
		Time: 300 * time.Millisecond})
	by := map[string]int{}
	for _, a := range res.Answers {
		w := check.StatusWord(a)
		by[w]++
		switch {
		case w == "network" && a.Node == dead && a.Error != "":
		case w == "ok" && a.ClaimID == "" && a.Error == `undecodable answer: "not json"`: // check.Check flags it: no claim_id
		case w == "store_unavailable" && a.Status == 503 && a.Error == w:
		default:
			t.Fatalf("answer %+v (%s)", a, w)
		}
	}
	if by["network"] == 0 || by["ok"] == 0 || by["store_unavailable"] == 0 {
		t.Fatalf("answers by word %v", by)
	}
}

func TestUseProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	undo1 := useProcs(1)
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("GOMAXPROCS %d during a load, want 1", got)
	}
	undo2 := useProcs(3) // a second load asking for more gets it
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Fatalf("GOMAXPROCS %d with a load asking 3, want 3", got)
	}
	undo1()
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Fatalf("GOMAXPROCS %d while a load still runs, want 3", got)
	}
	undo2()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("GOMAXPROCS %d after the loads, want %d", got, before)
	}
}

// One tap of a worker against a server answering at once: the driver's own cost per claim
// (the server's too: it runs in this process), which must allocate nothing.
func BenchmarkTap(b *testing.B) {
	answer := httpOK(`{"amount":123,"claim_id":"n1-1c8bad1a94ff58e3-1","message":"congratulations"}`)
	s := startRaw(b, func(int, []byte) []byte { return answer })
	l := &loader{o: LoadOptions{Nodes: []string{s.addr}, Code: "CODE"}, live: &Live{}, start: time.Now()}
	w := splitUsers(LoadOptions{Nodes: l.o.Nodes, Users: 1000, Conns: 1, FirstUser: 1})[0]
	w.conns = make([]*claimConn, 1)
	defer w.closeConns()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if status, _, _ := w.tap(l, w.users[i%len(w.users)], 0, time.Now()); status != 200 {
			b.Fatalf("status %d", status)
		}
	}
}
