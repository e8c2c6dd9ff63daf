package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"redrain/gossip"
	"redrain/internal/logpace"
	"redrain/internal/redisconn"
	"redrain/internal/usertoken"
	"redrain/internal/wire"
)

// cluster is what the coordinator needs of gossip (a *gossip.Cluster).
type cluster interface {
	Members() []gossip.Member
	Publish(gossip.News) error
	GossipAddr() string
	Leave(timeout time.Duration) error
	Shutdown() error
}

// caller makes signed internal calls to nodes (a *wire.Client).
type caller interface {
	Do(ctx context.Context, method, addr, path string, in, out any) error
}

// Coordinator is one coordinator process: admin API, store, gossip member and background loop.
type Coordinator struct {
	opts    Options
	log     *slog.Logger
	store   *store
	rdb     redis.UniversalClient
	nodes   caller
	cluster cluster
	metrics *metrics
	userKey *usertoken.Key // nil unless Options.UserKey: POST /v1/tokens
	webhook *webhook       // nil unless Options.Webhook

	ln     net.Listener
	srv    *fasthttp.Server
	gossip *gossip.Bound // the gossip address, bound first; open turns it into cluster

	ctx    context.Context // cancelled by Close: stops the loop and every delivery
	cancel context.CancelFunc
	bg     sync.WaitGroup
	ticks  atomic.Uint64 // loop rounds done (tests wait on it)

	refusedLog   logpace.Limiter // paces the audit lines of 401s (anyone can send them); Burst set in New
	startedRains atomic.Int64    // rains ever started: counted at New, then one per Start
	repair       indexRepair     // redrain:rains re-assertion under way (the loop's own)

	mu        sync.Mutex
	running   bool // Run was called
	closed    bool // Close was called
	closeOnce sync.Once
	closeErr  error
	served    chan struct{} // closed when Serve has returned
}

// Timeouts of the coordinator's own calls.
const (
	callTimeout     = 3 * time.Second       // one internal call to a node
	progressTimeout = 2 * time.Second       // one progress read
	redisTimeout    = 2 * time.Second       // one Redis read or write
	leaveTimeout    = 2 * time.Second       // gossip Leave at shutdown
	shutdownTimeout = 5 * time.Second       // draining the admin API
	retryFor        = time.Minute           // how long stop/discard/settle messages are retried
	syncWait        = 1 * time.Second       // how long start/stop wait for nodes before answering
	storeFile       = "coordinator.db"      // in DataDir
	maxBackoff      = 2 * time.Second       // between retries of one message
	firstBackoff    = 50 * time.Millisecond // first retry
	clientTimeout   = 30 * time.Second      // wire client's own bound; contexts are shorter
	adminReadTO     = 5 * time.Second       // a request's headers and body, the first on a connection included
	adminIdleTO     = 0                     // between requests on a keep-alive connection: 0 = adminReadTO (fasthttp's rule)
	adminWriteTO    = 5 * time.Second       // the answer's write
)

// New checks the options, listens on Options.HTTPAddr and binds the gossip address, then opens
// the store, connects Redis and joins gossip; Run serves. A bad option (ErrOptions) or an
// address it cannot bind (ErrListen) is reported before anything is created or opened on
// disk. A rain left mid-prepare by an earlier process is abandoned here (see package doc).
func New(opts Options) (*Coordinator, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	c := &Coordinator{opts: opts, log: opts.Logger, served: make(chan struct{})}
	c.refusedLog.Burst = refusalBurst
	if opts.UserKey != "" {
		c.userKey = usertoken.NewKey([]byte(opts.UserKey))
	}
	if opts.Webhook != "" {
		c.webhook = newWebhook(c.opts)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if err := c.open(); err != nil {
		c.cancel()
		c.release()
		return nil, err
	}
	c.abandonPreparing()
	return c, nil
}

// open acquires every resource, the addresses first; on error the caller releases what was
// acquired.
func (c *Coordinator) open() error {
	if err := c.listen(); err != nil {
		return err
	}
	if err := os.MkdirAll(c.opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("coordinator: data dir: %w", err)
	}
	st, err := openStore(filepath.Join(c.opts.DataDir, storeFile), openTimeout)
	if err != nil {
		return err
	}
	c.store = st
	started, err := st.countStarted()
	if err != nil {
		return fmt.Errorf("coordinator: count started rains: %w", err)
	}
	c.startedRains.Store(started)
	c.rdb = redisconn.Open(c.opts.RedisURL, c.opts.RedisCluster) // validate checked them, before the disk
	c.nodes = wire.NewClient(c.opts.Secret, clientTimeout)
	c.metrics = newMetrics(c.store, func() []gossip.Member { return c.cluster.Members() })
	c.srv = c.newServer()
	if c.cluster, err = c.gossip.Start(); err != nil {
		return fmt.Errorf("coordinator: gossip: %w", err)
	}
	return nil
}

// listen binds the admin API's address and the gossip address.
func (c *Coordinator) listen() error {
	var err error
	if c.ln, err = net.Listen("tcp", c.opts.HTTPAddr); err != nil {
		return fmt.Errorf("%w: HTTPAddr %s: %v", ErrListen, c.opts.HTTPAddr, err)
	}
	g := gossip.LocalOptions()
	if !c.opts.FastGossip {
		g = gossip.DefaultOptions()
	}
	httpAddr := c.ln.Addr().String()
	if c.opts.Advertise != "" {
		_, port, _ := net.SplitHostPort(httpAddr)
		httpAddr = net.JoinHostPort(c.opts.Advertise, port)
		g.AdvertiseAddr = net.JoinHostPort(c.opts.Advertise, "0") // port 0: the one bound
	}
	g.Meta = gossip.Meta{ID: c.opts.ID, Role: gossip.RoleCoordinator, HTTPAddr: httpAddr}
	g.BindAddr, g.Secret, g.Join = c.opts.GossipAddr, c.opts.Secret, c.opts.Join
	g.TrackSuspects = true
	g.Logger = c.log
	if c.gossip, err = gossip.Bind(g); err != nil {
		if errors.Is(err, gossip.ErrBind) {
			return fmt.Errorf("%w: GossipAddr %s: %v", ErrListen, c.opts.GossipAddr, err)
		}
		return fmt.Errorf("%w: gossip: %v", ErrOptions, err)
	}
	return nil
}

// Addr is the admin API's listening address (useful with port 0).
func (c *Coordinator) Addr() string { return c.ln.Addr().String() }

// GossipAddr is the address other members join.
func (c *Coordinator) GossipAddr() string { return c.cluster.GossipAddr() }

// ErrClosed: Run after Close, or a second Run.
var ErrClosed = errors.New("coordinator: closed or already running")

// Run serves the admin API and runs the background loop until ctx is done or the server
// fails, then stops gracefully (see Close). It returns nil after a stop by ctx.
func (c *Coordinator) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running || c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.running = true
	c.mu.Unlock()
	c.bg.Add(1)
	go func() { defer c.bg.Done(); c.loop() }()
	if c.webhook != nil {
		c.bg.Add(1)
		go func() { defer c.bg.Done(); c.webhook.run(c.ctx) }()
	}
	errc := make(chan error, 1)
	go func() { defer close(c.served); errc <- c.srv.Serve(c.ln) }()
	var err error
	select {
	case <-ctx.Done():
	case <-c.ctx.Done():
	case err = <-errc:
		if err != nil {
			err = fmt.Errorf("coordinator: serve: %w", err)
		}
	}
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close stops the coordinator: no new admin requests, in-flight ones drained, the loop and
// retries stopped, gossip left, the store and Redis closed. Safe to call more than once.
func (c *Coordinator) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		running := c.running
		c.mu.Unlock()
		c.cancel() // in-flight prepares fail fast, retries and the loop stop
		if running {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			if err := c.srv.ShutdownWithContext(ctx); err != nil {
				c.closeErr = err
			}
			cancel()
			// Shutdown closes only the listeners Serve has taken: a Serve not started yet
			// would wait on ours for ever. Closed, it returns at once.
			_ = c.ln.Close()
			<-c.served
		}
		c.bg.Wait()
		c.release()
	})
	return c.closeErr
}

// release frees whatever open acquired.
func (c *Coordinator) release() {
	if c.ln != nil {
		_ = c.ln.Close()
	}
	if c.cluster != nil {
		if err := c.cluster.Leave(leaveTimeout); err != nil {
			c.log.Warn("gossip leave", "err", err)
		}
		_ = c.cluster.Shutdown()
	}
	if c.gossip != nil {
		_ = c.gossip.Close() // releases the address if gossip never started
	}
	if c.rdb != nil {
		_ = c.rdb.Close()
	}
	if c.store != nil {
		if err := c.store.close(); err != nil && c.closeErr == nil {
			c.closeErr = err
		}
	}
}
