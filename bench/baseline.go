package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"redrain/internal/userid"
	"redrain/ledger"
	"redrain/rain"
)

// The baseline is the seed's design (seed-red-packet-rain.md), served for comparison: a rain's
// amounts are generated up front with double-average and LPUSHed to one Redis list in chunks
// of 100; each claim is one RPOP. It answers with the node's JSON shape and status codes, caps
// packets per user in process memory (as a node does), and journals nothing: the seed hands
// the amount to Kafka after answering, which is not durable either.

// BaselineOptions configure a baseline server. Zero values mean the documented defaults.
type BaselineOptions struct {
	HTTP       string // listen address; "" means 127.0.0.1:8080 (":0" picks a port: see Addr)
	RedisURL   string // "" means redis://127.0.0.1:6379/0
	Pool       int    // go-redis connections; 0 means 256 (more than the load's conns: no pool waits)
	AdminToken string // bearer token of POST /v1/rains; "" means none needed
	MaxRains   int    // rains held at once; 0 means 64
}

// BaselinePrepare is the body of POST /v1/rains: the rain to generate and push.
type BaselinePrepare struct {
	Code        string `json:"code,omitempty"` // "" means a random one
	TotalAmount int64  `json:"total_amount"`
	TotalCount  int64  `json:"total_count"`
	MaxPerUser  int    `json:"max_per_user"` // 0 means 1
}

// BaselinePrepared is the answer of POST /v1/rains.
type BaselinePrepared struct {
	Code        string  `json:"code"`
	Key         string  `json:"key"` // the Redis list
	TotalAmount int64   `json:"total_amount"`
	TotalCount  int64   `json:"total_count"`
	MaxPerUser  int     `json:"max_per_user"`
	GenerateS   float64 `json:"generate_s"` // double-average generation
	PushS       float64 `json:"push_s"`     // LPUSH in chunks of 100
}

// BaselineChunk is how many amounts one LPUSH carries, as in the seed.
const BaselineChunk = 100

// BaselineKey is the Redis list of a rain's packets.
func BaselineKey(code string) string { return "baseline:{" + code + "}:packets" }

// Errors of Baseline.Prepare.
var (
	ErrBaselineExists = errors.New("baseline: rain exists")
	ErrBaselineFull   = errors.New("baseline: too many rains")
)

// Baseline is a running baseline server.
type Baseline struct {
	o           BaselineOptions
	rdb         *redis.Client
	srv         *fasthttp.Server
	ln          net.Listener
	incarnation uint64
	seq         atomic.Uint64
	mu          sync.Mutex                        // serializes Prepare
	rains       atomic.Pointer[map[string]*bRain] // copy on write
}

// bRain is one rain's claim state: its list and the per-user counts.
type bRain struct {
	code, key  string
	maxPerUser uint16
	stripes    [256]userStripe
}

type userStripe struct {
	mu sync.Mutex
	n  map[uint64]uint16
}

// NewBaseline connects to Redis (checked with PING) and listens; Serve serves.
func NewBaseline(ctx context.Context, o BaselineOptions) (*Baseline, error) {
	if o.HTTP == "" {
		o.HTTP = "127.0.0.1:8080"
	}
	if o.RedisURL == "" {
		o.RedisURL = "redis://127.0.0.1:6379/0"
	}
	if o.Pool <= 0 {
		o.Pool = 256
	}
	if o.MaxRains <= 0 {
		o.MaxRains = 64
	}
	ro, err := redis.ParseURL(o.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("baseline: redis url: %w", err)
	}
	ro.PoolSize = o.Pool
	b := &Baseline{o: o, rdb: redis.NewClient(ro), incarnation: randomUint64()}
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		b.rdb.Close()
		return nil, fmt.Errorf("baseline: redis %s: %w", o.RedisURL, err)
	}
	if b.ln, err = net.Listen("tcp", o.HTTP); err != nil {
		b.rdb.Close()
		return nil, err
	}
	b.rains.Store(&map[string]*bRain{})
	b.srv = &fasthttp.Server{Handler: b.route, Name: "redrain-baseline", ReadTimeout: 5 * time.Second,
		WriteTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second, MaxRequestBodySize: 4 << 10,
		NoDefaultServerHeader: true, NoDefaultDate: true}
	return b, nil
}

// Addr is the listening address (host:port).
func (b *Baseline) Addr() string { return b.ln.Addr().String() }

// Serve serves until Close.
func (b *Baseline) Serve() error { return b.srv.Serve(b.ln) }

// Close stops serving (in-flight claims finish) and closes the Redis client. Safe twice.
func (b *Baseline) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := b.srv.ShutdownWithContext(ctx)
	b.ln.Close() // in case Serve never ran
	b.rdb.Close()
	return err
}

// Prepare generates a rain's amounts (double-average over one slice covering the whole rain)
// and LPUSHes them to the rain's list in chunks of 100, one round trip each, as the seed does.
func (b *Baseline) Prepare(ctx context.Context, p BaselinePrepare) (BaselinePrepared, error) {
	if p.MaxPerUser == 0 {
		p.MaxPerUser = 1
	}
	if p.Code == "" {
		p.Code = randomCode()
	}
	out := BaselinePrepared{Code: p.Code, Key: BaselineKey(p.Code), TotalAmount: p.TotalAmount, TotalCount: p.TotalCount,
		MaxPerUser: p.MaxPerUser}
	switch {
	case p.MaxPerUser < 1 || p.MaxPerUser > rain.MaxMaxPerUser:
		return out, fmt.Errorf("%w: max_per_user %d out of range 1..%d", rain.ErrInvalid, p.MaxPerUser, rain.MaxMaxPerUser)
	case len(p.Code) > 64:
		return out, fmt.Errorf("%w: code longer than 64 bytes", rain.ErrInvalid)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	rains := *b.rains.Load()
	switch {
	case rains[p.Code] != nil:
		return out, fmt.Errorf("%w: %s", ErrBaselineExists, p.Code)
	case len(rains) >= b.o.MaxRains:
		return out, fmt.Errorf("%w (%d)", ErrBaselineFull, b.o.MaxRains)
	}
	began := time.Now()
	amounts, err := rain.Generate(rain.Slice{Code: p.Code, ID: 1, Epoch: 1, Node: "baseline", Count: p.TotalCount,
		Amount: p.TotalAmount, Seed: randomUint64(), Algorithm: rain.DoubleAverage})
	if err != nil {
		return out, err
	}
	out.GenerateS = time.Since(began).Seconds()
	began = time.Now()
	if err := b.push(ctx, out.Key, &amounts); err != nil {
		return out, err
	}
	out.PushS = time.Since(began).Seconds()
	r := &bRain{code: p.Code, key: out.Key, maxPerUser: uint16(p.MaxPerUser)}
	for i := range r.stripes {
		r.stripes[i].n = map[uint64]uint16{}
	}
	next := make(map[string]*bRain, len(rains)+1)
	for k, v := range rains {
		next[k] = v
	}
	next[p.Code] = r
	b.rains.Store(&next)
	return out, nil
}

// push replaces key with the amounts, BaselineChunk per LPUSH.
func (b *Baseline) push(ctx context.Context, key string, a *rain.Amounts) error {
	if err := b.rdb.Del(ctx, key).Err(); err != nil {
		return err
	}
	chunk := make([]any, 0, BaselineChunk)
	for i, n := 0, a.Len(); i < n; i += BaselineChunk {
		chunk = chunk[:0]
		for j := i; j < min(i+BaselineChunk, n); j++ {
			chunk = append(chunk, a.At(j))
		}
		if err := b.rdb.LPush(ctx, key, chunk...).Err(); err != nil {
			return fmt.Errorf("lpush %s: %w", key, err)
		}
	}
	return nil
}

// take counts a packet for user unless the user has its cap already.
func (r *bRain) take(user uint64) bool {
	s := &r.stripes[user%uint64(len(r.stripes))]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[user] >= r.maxPerUser {
		return false
	}
	s.n[user]++
	return true
}

// give takes back a count of take's (the list was empty, or Redis failed).
func (r *bRain) give(user uint64) {
	s := &r.stripes[user%uint64(len(r.stripes))]
	s.mu.Lock()
	s.n[user]--
	s.mu.Unlock()
}

var (
	bErrBadUser     = newBaselineError(400, "bad_user", "X-User-Id must be a decimal user id > 0")
	bErrUnknownRain = newBaselineError(404, "unknown_rain", "no such rain here")
	bErrExhausted   = newBaselineError(410, "exhausted", "no packets left here")
	bErrUserLimit   = newBaselineError(429, "user_limit", "you already have the most packets of this rain a user may have")
	bErrStore       = newBaselineError(503, "store_unavailable", "redis failed; no packet was handed out, try again")
	bErrNotFound    = newBaselineError(404, "not_found", "no such endpoint")
	bErrMethod      = newBaselineError(405, "method_not_allowed", "method not allowed")
	bErrAuth        = newBaselineError(401, "unauthorized", "admin token required")
	bContentJSON    = []byte("application/json")
	bClaimMessage   = []byte(`,"message":"congratulations"}`)
)

type baselineError struct {
	status int
	body   []byte
}

func newBaselineError(status int, word, msg string) baselineError {
	return baselineError{status, []byte(`{"error":"` + word + `","message":` + strconv.Quote(msg) + `}`)}
}

func (e baselineError) write(ctx *fasthttp.RequestCtx) {
	ctx.SetStatusCode(e.status)
	ctx.Response.Header.SetContentTypeBytes(bContentJSON)
	ctx.Response.SetBodyRaw(e.body)
}

func (b *Baseline) route(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	switch {
	case string(path) == "/healthz":
		ctx.SetBodyString("ok\n")
	case string(path) == "/v1/rains":
		if !ctx.IsPost() {
			bErrMethod.write(ctx)
			return
		}
		b.handlePrepare(ctx)
	case len(path) > len("/v1/rains//claim") && string(path[:len("/v1/rains/")]) == "/v1/rains/" &&
		string(path[len(path)-len("/claim"):]) == "/claim":
		if !ctx.IsPost() {
			bErrMethod.write(ctx)
			return
		}
		b.claim(ctx, path[len("/v1/rains/"):len(path)-len("/claim")])
	default:
		bErrNotFound.write(ctx)
	}
}

// claim is the seed's claim path: one RPOP.
func (b *Baseline) claim(ctx *fasthttp.RequestCtx, code []byte) {
	user, ok := userid.Parse(ctx.Request.Header.Peek("X-User-Id"))
	if !ok {
		bErrBadUser.write(ctx)
		return
	}
	r := (*b.rains.Load())[string(code)]
	if r == nil {
		bErrUnknownRain.write(ctx)
		return
	}
	if !r.take(user) {
		bErrUserLimit.write(ctx)
		return
	}
	amount, err := b.rdb.RPop(context.Background(), r.key).Int64()
	if err != nil {
		r.give(user)
		if errors.Is(err, redis.Nil) {
			bErrExhausted.write(ctx)
		} else {
			bErrStore.write(ctx)
		}
		return
	}
	var buf [128]byte
	dst := append(buf[:0], `{"amount":`...)
	dst = strconv.AppendInt(dst, amount, 10)
	dst = append(dst, `,"claim_id":"`...)
	dst = ledger.AppendClaimID(dst, "baseline", b.incarnation, b.seq.Add(1))
	dst = append(append(dst, '"'), bClaimMessage...)
	ctx.Response.Header.SetContentTypeBytes(bContentJSON)
	ctx.Response.AppendBody(dst)
}

func (b *Baseline) handlePrepare(ctx *fasthttp.RequestCtx) {
	if b.o.AdminToken != "" && string(ctx.Request.Header.Peek("Authorization")) != "Bearer "+b.o.AdminToken {
		bErrAuth.write(ctx)
		return
	}
	var p BaselinePrepare
	if err := json.Unmarshal(ctx.PostBody(), &p); err != nil {
		writeBaselineError(ctx, 400, "bad_request", err.Error())
		return
	}
	out, err := b.Prepare(context.Background(), p)
	switch {
	case errors.Is(err, ErrBaselineExists):
		writeBaselineError(ctx, 409, "conflict", err.Error())
	case errors.Is(err, rain.ErrInvalid), errors.Is(err, rain.ErrInvalidSlice):
		writeBaselineError(ctx, 400, "invalid", err.Error())
	case err != nil:
		writeBaselineError(ctx, 503, "unavailable", err.Error())
	default:
		body, _ := json.Marshal(out)
		ctx.SetStatusCode(201)
		ctx.Response.Header.SetContentTypeBytes(bContentJSON)
		ctx.Response.SetBody(body)
	}
}

func writeBaselineError(ctx *fasthttp.RequestCtx, status int, word, msg string) {
	newBaselineError(status, word, msg).write(ctx)
}

func randomUint64() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return binary.LittleEndian.Uint64(b[:])
}

// randomCode is 128 random bits, URL-safe, like a coordinator's rain code.
func randomCode() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
