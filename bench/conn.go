package bench

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"time"
)

// claimConn is a load worker's keep-alive HTTP/1.1 connection to one node. The claim request
// is built once; per claim only the user id (and, in token mode, the user's token) is
// rewritten in place, and the answer is read into a reused buffer and parsed where it lies:
// a claim allocates nothing. A claim is never retried: a POST that failed may have been served.
type claimConn struct {
	addr   string
	dialer *net.Dialer
	c      net.Conn
	req    []byte // the last request; req[:head] is what every request of this conn shares
	head   int
	buf    []byte // the answer is read here (maxAnswerSize)
	expire time.Time
}

const (
	// connTimeout bounds one exchange: an answer slower than this is a network error. The
	// connection's deadline is renewed only when less than half of it is left (a deadline set
	// per request costs a timer update each), so an exchange times out after 5 to 10 s.
	connTimeout = 10 * time.Second
	dialTimeout = 5 * time.Second
	// maxAnswerSize bounds an answer, head and body: a claim answer is ~200 bytes.
	maxAnswerSize = 8 << 10
)

// Errors of an exchange that got bytes back but no answer this driver reads.
var (
	errAnswerTooBig  = errors.New("answer larger than 8 KiB")
	errBadHTTP       = errors.New("malformed HTTP answer")
	errNoLength      = errors.New("answer without Content-Length (chunked or read-to-close bodies are not supported)")
	errTrailingBytes = errors.New("bytes after the answer")
)

// newClaimConn prepares (does not dial) a connection to addr for claims of the rain code,
// bound to the local IP local ("" = any).
func newClaimConn(addr, code, local string) *claimConn {
	d := &net.Dialer{Timeout: dialTimeout}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	k := &claimConn{addr: addr, dialer: d, buf: make([]byte, maxAnswerSize)}
	k.req = append(k.req, "POST /v1/rains/"...)
	k.req = append(k.req, code...)
	k.req = append(k.req, "/claim HTTP/1.1\r\nHost: "...)
	k.req = append(k.req, addr...)
	k.req = append(k.req, "\r\nContent-Length: 0\r\nX-User-Id: "...)
	k.head = len(k.req)
	return k
}

// request writes user's request over the previous one (token "" = no Authorization header).
func (k *claimConn) request(user uint64, token string) []byte {
	r := strconv.AppendUint(k.req[:k.head], user, 10)
	if token != "" {
		r = append(append(append(r, "\r\nAuthorization: Bearer "...), token...), "\r\n\r\n"...)
	} else {
		r = append(r, "\r\n\r\n"...)
	}
	k.req = r
	return r
}

// claim sends user's claim and reads the answer: its status and body (in k's buffer, valid
// until the next claim). now is about the send time; it renews the deadline. On any error
// the connection is closed (the next claim dials again).
func (k *claimConn) claim(user uint64, token string, now time.Time) (status int, body []byte, err error) {
	if k.c == nil {
		if k.c, err = k.dialer.Dial("tcp", k.addr); err != nil {
			k.c = nil
			return 0, nil, err
		}
		k.expire = time.Time{}
	}
	if now.Add(connTimeout / 2).After(k.expire) {
		k.expire = now.Add(connTimeout)
		if err := k.c.SetDeadline(k.expire); err != nil {
			k.close()
			return 0, nil, err
		}
	}
	if _, err := k.c.Write(k.request(user, token)); err != nil {
		k.close()
		return 0, nil, err
	}
	status, body, closing, err := k.read()
	if err != nil || closing {
		k.close()
	}
	return status, body, err
}

// read reads one answer. A status with an error means the answer came but cannot be read.
func (k *claimConn) read() (status int, body []byte, closing bool, err error) {
	n := 0
	for {
		m, rerr := k.c.Read(k.buf[n:])
		n += m
		a, perr := parseHTTPAnswer(k.buf[:n])
		switch {
		case perr != nil:
			return a.status, nil, true, perr
		case a.size > 0 && a.size < n:
			return a.status, nil, true, errTrailingBytes
		case a.size > 0:
			return a.status, k.buf[a.size-a.bodyLen : a.size], a.closing, nil
		case rerr != nil:
			return 0, nil, true, rerr
		case n == len(k.buf):
			return 0, nil, true, errAnswerTooBig
		}
	}
}

func (k *claimConn) close() {
	if k.c != nil {
		k.c.Close()
		k.c = nil
	}
}

// httpAnswer is what parseHTTPAnswer read of an answer's head.
type httpAnswer struct {
	status  int
	size    int // head + body; 0: not complete yet
	bodyLen int
	closing bool // Connection: close
}

// parseHTTPAnswer reads an HTTP/1.x answer from the bytes received so far: size 0 means
// more are needed. It takes what a claim server sends: a status line, headers with a
// Content-Length, a body of that length; anything else is an error.
func parseHTTPAnswer(b []byte) (httpAnswer, error) {
	var a httpAnswer
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return a, nil
	}
	line, rest, _ := bytes.Cut(b[:end+2], []byte("\r\n"))
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[7] < '0' || line[7] > '9' || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return a, errBadHTTP
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return a, errBadHTTP
		}
		a.status = a.status*10 + int(c-'0')
	}
	length := -1
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return a, errBadHTTP
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, ok := parseLength(value)
			if !ok || (length >= 0 && n != length) {
				return a, errBadHTTP
			}
			length = n
		case asciiEqualFold(name, "Transfer-Encoding"):
			return a, errNoLength
		case asciiEqualFold(name, "Connection"):
			a.closing = asciiEqualFold(value, "close")
		}
	}
	if length < 0 {
		return a, errNoLength
	}
	if size := end + 4 + length; len(b) >= size {
		a.size, a.bodyLen = size, length
	}
	return a, nil
}

// parseLength reads a Content-Length no larger than an answer may be.
func parseLength(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= maxAnswerSize
}

// asciiEqualFold is strings.EqualFold for ASCII, without converting b to a string.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
