package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// ErrClosed is returned by [Bridge.Run] once the bridge has been shut down or
// closed, and by the bridge's operations afterwards; cmd treats it as a clean
// exit.
var ErrClosed = errors.New("bridge: closed")

// Defaults for the zero fields of [Config].
const (
	DefaultWindowRecords = 10000
	DefaultWindowBytes   = 64 << 20
	DefaultBatchBytes    = 1 << 20 // Kafka's default message.max.bytes is slightly above
	DefaultLinger        = 2 * time.Millisecond
	DefaultPartitions    = 6
)

// Acks is the acknowledgement a produce request waits for.
type Acks int8

const (
	// AcksAll (the zero value) waits for every in-sync replica: the only
	// setting under which "answered ⇒ in Kafka" survives a broker failure.
	AcksAll Acks = iota
	// AcksLeader waits for the partition leader only. It turns the
	// idempotent producer off (Kafka requires acks=all for it).
	AcksLeader
)

// Config configures a [Bridge]. The zero value of every field but Brokers
// means the documented default; [Config.Validate] rejects the rest.
type Config struct {
	// Brokers are the bootstrap addresses, host:port. Required.
	Brokers []string
	// ClientOpts are extra franz-go options for every Kafka client the
	// bridge makes (TLS dialer, SASL, client id); cmd builds them.
	ClientOpts []kgo.Opt
	// Principal names who the brokers see this bridge as ("User:bridge"),
	// for errors about missing ACLs; empty means "this client".
	Principal string
	// Router maps pushes to topics, keys and headers; nil means the zero
	// [topics.Router] (rtm.<scope>.<kind>, keyed by target). A Router with a
	// prefix or overrides must have been initialised with Init.
	Router *topics.Router
	// Format is the encoding of record values; the zero value is JSON.
	Format Format
	// PID is the RTM project id, written into the rtm-pid header and records.
	PID int64
	// Acks is what every produce request waits for; default AcksAll.
	Acks Acks
	// DisableIdempotence turns the idempotent producer off, for clusters
	// that refuse it (no IDEMPOTENT_WRITE permission on old brokers). Then
	// one produce request per broker is in flight, so order per key still
	// holds, but a retried request can write a record twice.
	DisableIdempotence bool
	// Linger is how long a partition's batch waits for more records before
	// it is sent; default 2 ms.
	Linger time.Duration
	// BatchBytes is the most bytes per partition batch, and so the largest
	// record accepted; default 1 MiB. A larger record is refused at once
	// (dead-lettered, its push answered with an error).
	BatchBytes int32
	// WindowRecords and WindowBytes bound the records handed to Kafka and not
	// yet settled; a full window blocks HandlePush. Defaults 10,000 and
	// 64 MiB.
	WindowRecords int
	WindowBytes   int64
	// Partitions and ReplicationFactor are used by [Bridge.EnsureTopics] for
	// the data and dead-letter topics it creates (the control topics get one
	// partition). Defaults: 6 partitions and the broker's
	// default.replication.factor. -1 for either means the broker's default.
	Partitions        int
	ReplicationFactor int
	// Logger receives the bridge's logs; nil discards them.
	Logger *slog.Logger
	// Metrics exports the bridge's counters; nil exports nothing.
	Metrics *Metrics
	// Now gives the time stamped into records; nil means time.Now.
	Now func() time.Time

	// SpoolDir, when set, turns on the durable spool (spool_path.go): a
	// record Kafka does not ack within SpoolAckBudget is fsynced to this
	// directory and its push answered from there. Empty: no spool, every
	// push is answered after its Kafka ack.
	SpoolDir string
	// SpoolMaxBytes is the spool's disk budget; default 1 GiB. A full spool
	// back-pressures the gateway.
	SpoolMaxBytes int64
	// SpoolAckBudget is how long a record may wait for Kafka's ack before
	// the bridge spills; default 2 s (the gateway waits about 5 s).
	SpoolAckBudget time.Duration
	// SpoolMaxAge, when positive, logs a warning while the oldest spooled
	// record is older than this. Nothing is dropped for its age.
	SpoolMaxAge time.Duration

	// HA, when set, makes this instance a member of a high-availability
	// group (ha.go): run it with [Bridge.RunHA]. nil: a single bridge,
	// always active.
	HA *HAConfig
}

// defaults fills every zero field with its default.
func (c *Config) defaults() {
	if c.Router == nil {
		c.Router = &topics.Router{}
	}
	if c.Principal == "" {
		c.Principal = "this client"
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.WindowRecords == 0 {
		c.WindowRecords = DefaultWindowRecords
	}
	if c.WindowBytes == 0 {
		c.WindowBytes = DefaultWindowBytes
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SpoolMaxBytes == 0 {
		c.SpoolMaxBytes = DefaultSpoolMaxBytes
	}
	if c.SpoolAckBudget == 0 {
		c.SpoolAckBudget = DefaultSpoolAckBudget
	}
	if c.HA != nil {
		ha := *c.HA
		if ha.Group == "" {
			prefix := c.Router.Prefix
			if prefix == "" {
				prefix = topics.DefaultPrefix
			}
			ha.Group = prefix + ".bridge"
		}
		if ha.SessionTimeout == 0 {
			ha.SessionTimeout = 6 * time.Second
		}
		if ha.Instance == "" {
			ha.Instance = defaultInstance()
		}
		c.HA = &ha
	}
}

// Validate reports every setting that cannot work, joined. It checks a copy
// with the defaults applied, so zero fields are fine; New calls it.
func (c Config) Validate() error {
	c.defaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("bridge: config: "+format, a...)) }
	if len(c.Brokers) == 0 {
		bad("no brokers")
	}
	for _, b := range c.Brokers {
		if err := CheckBrokerAddr(b); err != nil {
			bad("%v", err)
		}
	}
	if c.Acks != AcksAll && c.Acks != AcksLeader {
		bad("unknown acks setting %d", c.Acks)
	}
	if c.Format != FormatJSON && c.Format != FormatMsgpack {
		bad("unknown record format %d", c.Format)
	}
	if c.Linger < 0 || c.BatchBytes < 0 || c.WindowRecords < 0 || c.WindowBytes < 0 {
		bad("linger, batch and window sizes must not be negative")
	}
	if c.Partitions < -1 || c.ReplicationFactor < -1 {
		bad("partitions and replication factor must be positive, or -1 for the broker's default")
	}
	if c.SpoolMaxBytes < 0 || c.SpoolAckBudget < 0 || c.SpoolMaxAge < 0 {
		bad("spool budget, ack budget and max age must not be negative")
	}
	if c.HA != nil && c.HA.SessionTimeout < time.Second {
		bad("HA session timeout %v: want at least 1 s (brokers refuse less than group.min.session.timeout.ms, 6 s by default)", c.HA.SessionTimeout)
	}
	return errors.Join(errs...)
}

// CheckBrokerAddr reports whether addr is a usable host:port: a non-empty
// host and a port from 1 to 65535.
func CheckBrokerAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("broker %q: want host:port: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("broker %q: empty host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("broker %q: port %q is not a number from 1 to 65535", addr, port)
	}
	return nil
}

// Bridge produces every push it is handed into its Kafka topic and answers
// the push only after Kafka acknowledged the record; it also runs the
// control topic. It is safe for concurrent use. Create it with [New]; end it
// with [Bridge.Shutdown] or [Bridge.Close].
type Bridge struct {
	cfg     Config
	router  *topics.Router
	log     *slog.Logger
	metrics *Metrics
	cl      *kgo.Client // the producer: every data, dead-letter and spool record
	health  *brokerHealth
	win     *window

	stopCtx  context.Context // cancelled by Close
	stopNow  context.CancelFunc
	stopping atomic.Bool   // no new pushes
	done     chan struct{} // closed once shut down or closed
	closeMu  sync.Mutex    // serialises closing

	scratch sync.Pool // *[]byte encoding buffers
	errLog  burstLog  // produce failures, once per burst

	stats counters
	rec   recreated // topics deleted and re-created under the producer (recreated.go)

	listenMu sync.Mutex
	listen   rtm.ListenState // last listen state the gateway accepted, for set_all
	restored atomic.Pointer[Restored]

	sp *spoolPath // nil without Config.SpoolDir; see spool_path.go
	ha *ha        // nil without Config.HA; see ha.go

	recent recent // the last dead letters and control results, for the console

	writableMu  sync.Mutex
	writableAt  time.Time
	writableErr error
}

// New validates cfg and returns a Bridge with its producer ready. It does not
// wait for Kafka; [Bridge.EnsureTopics] and [Bridge.CheckWritable] do.
func New(cfg Config) (*Bridge, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bridge{
		cfg:     cfg,
		router:  cfg.Router,
		log:     cfg.Logger,
		metrics: cfg.Metrics,
		done:    make(chan struct{}),
	}
	b.stopCtx, b.stopNow = context.WithCancel(context.Background())
	b.win = newWindow(cfg.WindowRecords, cfg.WindowBytes)
	b.errLog = burstLog{log: b.log, every: 10 * time.Second}
	b.scratch.New = func() any { s := make([]byte, 0, 4096); return &s }
	b.stats.init(b.router)
	b.health = newBrokerHealth(b.log, cfg.Brokers, &b.stats)
	cl, err := kgo.NewClient(b.producerOpts()...)
	if err != nil {
		b.stopNow()
		return nil, fmt.Errorf("bridge: kafka client: %w", err)
	}
	b.cl = cl
	if cfg.HA != nil {
		b.ha = &ha{cfg: *cfg.HA, log: b.log, changes: make(chan struct{}, 1), base: time.Now()}
		b.ha.lastHB.Store(math.MinInt64 / 2) // no lease until an assignment starts one
		b.ha.setRole(RoleStandby)
	}
	if cfg.SpoolDir != "" {
		if err := b.openSpool(); err != nil {
			b.cl.Close()
			b.stopNow()
			return nil, err
		}
	}
	b.metrics.attach(b)
	return b, nil
}

// Shutdown stops taking pushes (HandlePush returns at once from now on,
// without answering), waits until every record in the window has been acked
// and answered, then closes the producer. If ctx ends first it returns
// ctx.Err() and leaves the bridge stopped; call Close to give up on the
// records still in flight (they stay unanswered and are redelivered).
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.stopping.Store(true)
	b.win.stop()
	if err := b.win.waitEmpty(ctx); err != nil {
		return fmt.Errorf("bridge: shutdown: %w", err)
	}
	b.closeAll()
	return nil
}

// Close stops the bridge now: pushes are no longer taken, records not yet
// acked stay unanswered (the gateway redelivers them) and the producer is
// closed.
func (b *Bridge) Close() error {
	b.stopping.Store(true)
	b.win.stop()
	b.closeAll()
	return nil
}

// closeAll stops the spool loops, closes the producer (records it still
// holds fail with kgo.ErrClientClosed: spilled copies, whose spool records
// are drained at the next start) and the spool, once.
func (b *Bridge) closeAll() {
	b.closeMu.Lock()
	defer b.closeMu.Unlock()
	select {
	case <-b.done:
		return
	default:
	}
	b.stopNow()
	if b.sp != nil {
		b.stopSpoolLoops()
	}
	b.cl.Close()
	b.dropParked()
	// The client fails what it still held (ErrClientClosed) through the
	// promises, which may run after Close returns: wait for them, so that
	// every record is settled and counted before the bridge says done.
	wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := b.win.waitEmpty(wctx); err != nil {
		r, n := b.win.inflight()
		b.log.Error("bridge: close: records still unsettled after the producer closed", slog.Int("records", r), slog.Int64("bytes", n))
	}
	cancel()
	if b.sp != nil {
		b.closeSpool()
	}
	close(b.done)
}

// Run blocks until the bridge is shut down or closed, and then returns
// ErrClosed, or until ctx ends, and then returns ctx.Err(). It gives cmd one
// lifetime to wait on.
func (b *Bridge) Run(ctx context.Context) error {
	select {
	case <-b.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed once the bridge has been shut down or closed.
func (b *Bridge) Done() <-chan struct{} { return b.done }
