package bench

import (
	"context"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"redrain/node"
)

// The ceiling is the loopback ceiling of Setup A (scripts/setup-a.sh): a fasthttp server with
// the node's server settings that answers every POST /v1/rains/{code}/claim with one fixed
// 200 body shaped like a node's answer. No Redis, no journal, no user id parsed: what a claim
// costs beyond it is what the node (or the seed's design) adds to plain HTTP over loopback.

// CeilingBody is the ceiling's answer to every claim: a node's 200 answer, fixed.
const CeilingBody = `{"amount":1000,"claim_id":"ceiling-0000000000000000-1","message":"congratulations"}`

// CeilingOptions configure a ceiling server.
type CeilingOptions struct {
	HTTP string // listen address; "" means 127.0.0.1:8080 (":0" picks a port: see Addr)
}

// Ceiling is a running fixed-body server.
type Ceiling struct {
	srv *fasthttp.Server
	ln  net.Listener
}

var (
	ceilingBody   = []byte(CeilingBody)
	ceilingPrefix = []byte("/v1/rains/")
	ceilingSuffix = []byte("/claim")
)

// NewCeiling listens on o.HTTP; Serve serves.
func NewCeiling(o CeilingOptions) (*Ceiling, error) {
	if o.HTTP == "" {
		o.HTTP = "127.0.0.1:8080"
	}
	ln, err := net.Listen("tcp", o.HTTP)
	if err != nil {
		return nil, err
	}
	d := node.DefaultOptions()
	c := &Ceiling{ln: ln}
	// The node's newServer settings (node/http.go), with its default timeouts.
	c.srv = &fasthttp.Server{
		Handler:               c.route,
		Name:                  "redrain-ceiling",
		ReadTimeout:           d.ReadTimeout,
		WriteTimeout:          d.WriteTimeout,
		IdleTimeout:           d.IdleTimeout,
		MaxRequestBodySize:    node.MaxInternalBody,
		ReadBufferSize:        node.MaxHeaderBytes,
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		Logger:                discardLog{},
	}
	return c, nil
}

type discardLog struct{}

func (discardLog) Printf(string, ...any) {}

// Addr is the listening address (host:port).
func (c *Ceiling) Addr() string { return c.ln.Addr().String() }

// Serve serves until Close.
func (c *Ceiling) Serve() error { return c.srv.Serve(c.ln) }

// Close stops serving (in-flight requests finish). Safe twice.
func (c *Ceiling) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.srv.ShutdownWithContext(ctx)
	c.ln.Close() // in case Serve never ran
	return err
}

func (c *Ceiling) route(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	if len(path) <= len(ceilingPrefix)+len(ceilingSuffix) || string(path[:len(ceilingPrefix)]) != string(ceilingPrefix) ||
		string(path[len(path)-len(ceilingSuffix):]) != string(ceilingSuffix) {
		bErrNotFound.write(ctx)
		return
	}
	if !ctx.IsPost() {
		bErrMethod.write(ctx)
		return
	}
	ctx.Response.Header.SetContentTypeBytes(bContentJSON)
	ctx.Response.SetBodyRaw(ceilingBody)
}
