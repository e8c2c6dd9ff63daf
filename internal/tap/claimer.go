package tap

import (
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"redrain/internal/check"
)

// Claimer sends claims over keep-alive connections and decodes the answers. Safe for
// concurrent use. A claim is never retried: a POST that failed may have been served.
type Claimer struct {
	client *fasthttp.Client
}

// NewClaimer returns a claimer holding up to conns connections per node.
func NewClaimer(conns int) *Claimer { return NewClaimerFrom(conns, "") }

// NewClaimerFrom is NewClaimer with its connections bound to the local address local (an IP,
// e.g. 127.0.1.7; "" = any), so a node's per-address limits see it as that client.
func NewClaimerFrom(conns int, local string) *Claimer {
	var dial fasthttp.DialFunc
	if local != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		dial = func(addr string) (net.Conn, error) { return d.Dial("tcp", addr) }
	}
	return &Claimer{client: &fasthttp.Client{
		Dial:                dial,
		MaxConnsPerHost:     conns,
		ReadTimeout:         10 * time.Second,
		WriteTimeout:        10 * time.Second,
		MaxIdleConnDuration: time.Minute,
		MaxConnWaitTimeout:  10 * time.Second,
		RetryIfErr:          func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}}
}

var (
	headerUserID = []byte("X-User-Id")
	uriScheme    = []byte("http://")
	uriRains     = []byte("/v1/rains/")
	uriClaim     = []byte("/claim")
)

// Claim asks the node at addr (host:port) for a packet of the rain for user. It allocates
// only the answer's claim_id (and an unknown error word).
func (c *Claimer) Claim(addr, code string, user uint64) check.Answer {
	return c.ClaimWith(addr, code, user, "", nil, nil)
}

// ClaimWith is Claim with a bearer token (token mode; "" = none), extra headers (name, value
// pairs) and a request body.
func (c *Claimer) ClaimWith(addr, code string, user uint64, token string, hdr []string, body []byte) check.Answer {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	var ub [256]byte
	u := append(ub[:0], uriScheme...)
	u = append(append(append(append(u, addr...), uriRains...), code...), uriClaim...)
	req.SetRequestURIBytes(u)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetBytesKV(headerUserID, strconv.AppendUint(ub[:0], user, 10))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if body != nil {
		req.SetBody(body)
	}
	a := check.Answer{Node: addr, User: user}
	if err := c.client.Do(req, resp); err != nil {
		a.Error = err.Error()
		return a
	}
	a.Status = resp.StatusCode()
	amount, id, word, err := ParseAnswer(resp.Body())
	if err != nil {
		b := resp.Body()
		a.Error = "undecodable answer: " + strconv.Quote(string(b[:min(len(b), 64)]))
		return a
	}
	a.Amount, a.Error = amount, internWord(word)
	if len(id) > 0 {
		a.ClaimID = string(id)
	}
	return a
}

// Route picks the node of a user, as a load balancer hashing the user id would.
func Route(user uint64, nodes int) int {
	z := user + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return int((z ^ (z >> 31)) % uint64(nodes))
}
