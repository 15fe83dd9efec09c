package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// ErrClosed is returned by [Bridge.Run] once the bridge has been shut down or
// closed, and by the bridge's operations afterwards; cmd treats it as a clean
// exit.
var ErrClosed = errors.New("bridge: closed")

// Defaults for the zero fields of [Config].
const (
	DefaultWindowRecords   = 10000
	DefaultWindowBytes     = 64 << 20
	DefaultBatchSize       = 200     // kafka-go preallocates this many Messages (~150 B each) per batch
	DefaultBatchBytes      = 1 << 20 // Kafka's default message.max.bytes is slightly above
	DefaultBatchTimeout    = 2 * time.Millisecond
	DefaultPartitions      = 6
	DefaultMaxAttempts     = 1 << 30 // effectively forever: see settle.go
	DefaultWriteBackoffMin = 50 * time.Millisecond
	DefaultWriteBackoffMax = time.Second
)

// Config configures a [Bridge]. The zero value of every field but Brokers
// means the documented default; [Config.Validate] rejects the rest.
type Config struct {
	// Brokers are the bootstrap addresses, host:port. Required.
	Brokers []string
	// Router maps pushes to topics, keys and headers; nil means the zero
	// [topics.Router] (rtm.<scope>.<kind>, keyed by target). A Router with a
	// prefix or overrides must have been initialised with Init.
	Router *topics.Router
	// Format is the encoding of record values; the zero value is JSON.
	Format Format
	// PID is the RTM project id, written into the rtm-pid header and records.
	PID int64
	// RequiredAcks is the acks setting of every produce request. Zero means
	// kafka.RequireAll, the only setting that makes "answered ⇒ in Kafka"
	// survive a broker failure; RequireOne is allowed, none is not offered.
	RequiredAcks kafka.RequiredAcks
	// BatchSize is the most records per partition batch; default 200.
	// kafka-go allocates room for BatchSize messages for every batch, also
	// for a batch of one under light load: larger batches raise throughput
	// under bursts (about 3x from 100 to 500 in BenchmarkHandlePush) and
	// cost memory churn when traffic is light.
	BatchSize int
	// BatchBytes is the most bytes per partition batch, and so the largest
	// record accepted; default 1 MiB.
	BatchBytes int64
	// BatchTimeout is how long a partition batch waits to fill before it is
	// sent anyway; default 2 ms (the push → ack latency target is 20 ms).
	BatchTimeout time.Duration
	// WindowRecords and WindowBytes bound the records handed to Kafka and not
	// yet settled; a full window blocks HandlePush. Defaults 10,000 and
	// 64 MiB.
	WindowRecords int
	WindowBytes   int64
	// Transport carries TLS and SASL settings; cmd builds it. nil means a
	// plain-TCP transport owned (and closed) by the bridge.
	Transport *kafka.Transport
	// Partitions and ReplicationFactor are used by [Bridge.EnsureTopics] for
	// the data and dead-letter topics it creates (the control topics get one
	// partition). Defaults: 6 partitions, enough for ordering per key to
	// spread over a few consumers, and the broker's default.replication.factor
	// (sent as -1; 1 on the local single-node broker, the cluster's policy in
	// production). -1 for either means the broker's default.
	Partitions        int
	ReplicationFactor int
	// MaxAttempts is how often kafka-go tries one batch. The default, 1<<30,
	// means "until it succeeds or the bridge closes" — see settle.go for why a
	// finite value weakens ordering.
	MaxAttempts int
	// WriteBackoffMin and WriteBackoffMax bound kafka-go's back-off between
	// attempts; defaults 50 ms and 1 s. The maximum also bounds how long
	// Close waits for a writer that is backing off.
	WriteBackoffMin, WriteBackoffMax time.Duration
	// Logger receives the bridge's logs; nil discards them.
	Logger *slog.Logger
	// Metrics receives the bridge's counters; nil counts nothing.
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
}

// defaults fills every zero field with its default.
func (c *Config) defaults() {
	if c.Router == nil {
		c.Router = &topics.Router{}
	}
	if c.RequiredAcks == 0 {
		c.RequiredAcks = kafka.RequireAll
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = DefaultBatchTimeout
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
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.WriteBackoffMin == 0 {
		c.WriteBackoffMin = DefaultWriteBackoffMin
	}
	if c.WriteBackoffMax == 0 {
		c.WriteBackoffMax = DefaultWriteBackoffMax
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
}

// Validate reports the first setting that cannot work. It checks a copy
// with the defaults applied, so zero fields are fine; New calls it.
func (c Config) Validate() error {
	c.defaults()
	switch {
	case len(c.Brokers) == 0:
		return errors.New("bridge: config: no brokers")
	case c.RequiredAcks != kafka.RequireAll && c.RequiredAcks != kafka.RequireOne:
		return fmt.Errorf("bridge: config: required acks %d: want all (-1) or one (1)", int(c.RequiredAcks))
	case c.Format != FormatJSON && c.Format != FormatMsgpack:
		return fmt.Errorf("bridge: config: unknown record format %d", c.Format)
	case c.BatchSize < 0, c.BatchBytes < 0, c.BatchTimeout < 0, c.WindowRecords < 0, c.WindowBytes < 0:
		return errors.New("bridge: config: batch and window sizes must not be negative")
	case c.Partitions < -1 || c.ReplicationFactor < -1:
		return errors.New("bridge: config: partitions and replication factor must be positive, or -1 for the broker's default")
	case c.MaxAttempts < 0:
		return errors.New("bridge: config: max attempts must not be negative")
	case c.SpoolMaxBytes < 0 || c.SpoolAckBudget < 0 || c.SpoolMaxAge < 0:
		return errors.New("bridge: config: spool budget, ack budget and max age must not be negative")
	case c.WriteBackoffMin < 0 || c.WriteBackoffMax < c.WriteBackoffMin:
		return fmt.Errorf("bridge: config: write back-off %v..%v is not a valid range", c.WriteBackoffMin, c.WriteBackoffMax)
	}
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) == "" {
			return errors.New("bridge: config: empty broker address")
		}
	}
	return nil
}

// Bridge produces every push it is handed into its Kafka topic and answers
// the push only after Kafka acknowledged the record; it also runs the
// control topic. It is safe for concurrent use. Create it with [New]; end it
// with [Bridge.Shutdown] or [Bridge.Close].
type Bridge struct {
	cfg       Config
	router    *topics.Router
	log       *slog.Logger
	metrics   *Metrics
	transport *kafka.Transport // what cfg.Transport or New made
	ownsTrans bool             // New made transport and closes it
	rt        *stopTransport   // transport as every kafka-go call sees it
	w         *kafka.Writer
	win       *window

	stopCtx  context.Context // cancelled by Close: in-flight requests fail
	stopNow  context.CancelFunc
	stopping atomic.Bool   // no new pushes
	done     chan struct{} // closed once shut down or closed
	doneOnce sync.Once
	closeMu  sync.Mutex // serialises closing the writer

	scratch sync.Pool // *[]byte encoding buffers

	errLog burstLog // produce failures, once per burst

	stats counters

	listenMu sync.Mutex
	listen   rtm.ListenState // last known listen state, for set_all

	sp *spoolPath // nil without Config.SpoolDir; see spool_path.go

	recent recent // the last dead letters and control results, for the console

	writableMu  sync.Mutex
	writableAt  time.Time
	writableErr error
}

// counters backs [Stats].
type counters struct {
	pushes, acked, deadLetters, rejected, dropped, lost, resubmitted atomic.Uint64
	ctlApplied, ctlRejected                                          atomic.Uint64
	spilled, drained, spoolDups                                      atomic.Uint64
}

// Stats is a snapshot of the bridge's counters, for /status.
type Stats struct {
	Pushes          uint64 `json:"pushes"`           // pushes handed to HandlePush while open
	Acked           uint64 `json:"acked"`            // answered OK after their ack (with a spool: or their fsync there)
	DeadLetters     uint64 `json:"dead_letters"`     // dead-lettered, acked, answered with an error
	Rejected        uint64 `json:"rejected"`         // answered with an error: Kafka refused the record for good
	Dropped         uint64 `json:"dropped"`          // left unanswered: closing or cancelled
	AnswersLost     uint64 `json:"answers_lost"`     // acked, but the link was gone
	Resubmitted     uint64 `json:"resubmitted"`      // records re-handed to the writer after it gave up
	InFlightRecords int    `json:"inflight_records"` // records in the window now
	InFlightBytes   int64  `json:"inflight_bytes"`   // bytes in the window now
	ControlApplied  uint64 `json:"control_applied"`  // control commands applied
	ControlRejected uint64 `json:"control_rejected"` // control commands rejected
	Spilled         uint64 `json:"spilled"`          // records answered from the spool (fsynced there)
	Drained         uint64 `json:"drained"`          // spooled records produced to Kafka, acked and trimmed
	SpoolDuplicates uint64 `json:"spool_duplicates"` // spilled records Kafka acked too (a second copy)
}

// Stats returns the bridge's counters.
func (b *Bridge) Stats() Stats {
	r, n := b.win.inflight()
	return Stats{
		Pushes:          b.stats.pushes.Load(),
		Acked:           b.stats.acked.Load(),
		DeadLetters:     b.stats.deadLetters.Load(),
		Rejected:        b.stats.rejected.Load(),
		Dropped:         b.stats.dropped.Load(),
		AnswersLost:     b.stats.lost.Load(),
		Resubmitted:     b.stats.resubmitted.Load(),
		InFlightRecords: r,
		InFlightBytes:   n,
		ControlApplied:  b.stats.ctlApplied.Load(),
		ControlRejected: b.stats.ctlRejected.Load(),
		Spilled:         b.stats.spilled.Load(),
		Drained:         b.stats.drained.Load(),
		SpoolDuplicates: b.stats.spoolDups.Load(),
	}
}

// New validates cfg and returns a Bridge with its writer ready. It does not
// contact Kafka; [Bridge.EnsureTopics] and [Bridge.CheckWritable] do.
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
	b.transport = cfg.Transport
	if b.transport == nil {
		b.transport = &kafka.Transport{Context: b.stopCtx}
		b.ownsTrans = true
	}
	b.rt = &stopTransport{rt: b.transport, stop: b.stopCtx}
	b.win = newWindow(cfg.WindowRecords, cfg.WindowBytes, cfg.Metrics)
	b.errLog = burstLog{log: b.log, every: 10 * time.Second}
	b.scratch.New = func() any { s := make([]byte, 0, 4096); return &s }
	b.w = &kafka.Writer{
		Addr: kafka.TCP(cfg.Brokers...),
		// murmur2 of the key, like the Java client's default partitioner, so
		// that other producers and consumers agree on a key's partition.
		Balancer:               kafka.Murmur2Balancer{},
		MaxAttempts:            cfg.MaxAttempts,
		WriteBackoffMin:        cfg.WriteBackoffMin,
		WriteBackoffMax:        cfg.WriteBackoffMax,
		BatchSize:              cfg.BatchSize,
		BatchBytes:             cfg.BatchBytes,
		BatchTimeout:           cfg.BatchTimeout,
		RequiredAcks:           cfg.RequiredAcks,
		Async:                  true,
		Completion:             b.completion,
		ErrorLogger:            attemptLogger{b},
		Transport:              b.rt,
		AllowAutoTopicCreation: false,
	}
	if cfg.SpoolDir != "" {
		if err := b.openSpool(); err != nil {
			b.stopNow()
			return nil, err
		}
	}
	return b, nil
}

// client returns a kafka-go client on the bridge's transport.
func (b *Bridge) client(timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(b.cfg.Brokers...), Transport: b.rt, Timeout: timeout}
}

// maxInlineHeaders is the most headers a record carries without another
// allocation; topics.AppendHeaders writes at most 7.
const maxInlineHeaders = 8

// pending is one record between HandlePush and its settlement: the reply to
// send and what settling needs. It travels in kafka.Message.WriterData (a
// pointer, so storing it in the interface does not allocate) and owns the
// record's header array.
type pending struct {
	reply   rtm.Reply
	start   time.Time // when HandlePush began, for the latency histogram
	size    int64     // window bytes held
	deadErr string    // non-empty for a dead letter: the ex of its error answer
	// resubmits counts how often settle handed the record to the writer
	// again; only settle's timer goroutine touches it after submit.
	resubmits int
	// state says who settles the record (stInflight, stSettled, stSpilled):
	// exactly one of Kafka's completion, the submit path and the spool
	// wins it, so the reply is sent once and the window room freed once.
	state atomic.Int32
	hdrs  [maxInlineHeaders]kafka.Header
}

// Record states (pending.state).
const (
	stInflight int32 = iota // handed to Kafka (or about to be), not settled
	stSettled               // settled by the Kafka path: acked, refused or abandoned
	stSpilled               // taken by the spool: answered once its append completes
)

// claim takes the record for the Kafka path; false means the spool took it.
func (p *pending) claim() bool { return p.state.CompareAndSwap(stInflight, stSettled) }

// HandlePush produces p into its topic and arranges for r to be answered once
// Kafka has acknowledged the record: r.OK for a routed push, r.Error with
// [rtm.CodeDecoding] for a push that had to go to the dead-letter topic
// (p.Err set, or no topic for it). It implements [rtm.PushHandler].
//
// The record (value, key and header bytes) is copied into one allocation
// owned by the bridge, so p may be reused as soon as HandlePush returns. The
// only step that blocks is waiting for room in the window: while the window
// is full HandlePush waits, which is how backpressure reaches the gateway;
// ctx ending ends the wait. A push that cannot be handed to Kafka because ctx
// ended or the bridge is stopping is left unanswered (the gateway redelivers
// it); after Shutdown or Close, HandlePush returns at once and answers
// nothing.
func (b *Bridge) HandlePush(ctx context.Context, p *rtm.Push, r rtm.Reply) {
	if b.stopping.Load() {
		return
	}
	start := time.Now()
	b.stats.pushes.Add(1)
	b.metrics.push(p.Scope, p.Kind)
	rec := &pending{reply: r, start: start}
	msg := b.encode(p, rec)
	rec.size = int64(len(msg.Value) + len(msg.Key))
	for i := range msg.Headers {
		rec.size += int64(len(msg.Headers[i].Value))
	}
	if err := b.win.acquire(ctx, rec.size); err != nil {
		if errors.Is(err, ErrClosed) {
			b.drop(reasonClosed)
		} else {
			b.drop(reasonCanceled)
		}
		return
	}
	if b.sp != nil {
		b.route(ctx, msg)
		return
	}
	b.submit(ctx, msg)
}

// encode routes p and encodes its record into one new allocation; it fills
// rec.hdrs and rec.deadErr and returns the message to write.
func (b *Bridge) encode(p *rtm.Push, rec *pending) kafka.Message {
	sp := b.scratch.Get().(*[]byte)
	buf := (*sp)[:0]
	nowMs := b.cfg.Now().UnixMilli()
	var (
		topic     string
		vlen, kln int
		hdrArr    [maxInlineHeaders]topics.Header
		hdrs      []topics.Header
	)
	switch {
	case p.Err != nil:
		topic = b.router.DeadLetterTopic()
		rec.deadErr = p.Err.Error()
		buf = AppendDeadLetter(buf, p, p.Err, nowMs)
		vlen = len(buf)
	default:
		topic = b.router.Topic(p)
		if topic == b.router.DeadLetterTopic() {
			err := fmt.Errorf("bridge: no topic for a %s push of kind %s", p.Scope, p.Kind)
			rec.deadErr = err.Error()
			buf = AppendDeadLetter(buf, p, err, nowMs)
			vlen = len(buf)
			break
		}
		buf = AppendRecord(buf, b.cfg.Format, p, b.cfg.PID, nowMs)
		vlen = len(buf)
		buf = b.router.AppendKey(buf, p)
		kln = len(buf) - vlen
		hdrs, buf = topics.AppendHeaders(hdrArr[:0], buf, p, b.cfg.PID)
	}
	total := vlen + kln
	for i := range hdrs {
		total += len(hdrs[i].Value)
	}
	// The one allocation that outlives HandlePush: value, key, header values.
	data := make([]byte, 0, total)
	data = append(data, buf[:vlen+kln]...)
	msg := kafka.Message{Topic: topic, Value: data[:vlen:vlen], Time: time.UnixMilli(nowMs), WriterData: rec}
	if kln > 0 {
		msg.Key = data[vlen : vlen+kln : vlen+kln]
	}
	nh := 0
	var extra []kafka.Header
	for _, h := range hdrs {
		s := len(data)
		data = append(data, h.Value...)
		kh := kafka.Header{Key: h.Key, Value: data[s:len(data):len(data)]}
		if nh < maxInlineHeaders {
			rec.hdrs[nh] = kh
			nh++
		} else {
			extra = append(extra, kh)
		}
	}
	if len(hdrs) > 0 {
		msg.Headers = rec.hdrs[:nh]
		if extra != nil {
			msg.Headers = append(append([]kafka.Header(nil), msg.Headers...), extra...)
		}
	}
	if cap(buf) <= 1<<20 { // keep small buffers only, so one huge push does not pin memory
		*sp = buf[:0]
		b.scratch.Put(sp)
	}
	return msg
}

// submit hands msg, whose window room is held, to the async writer. The
// writer refuses a message at once only when it cannot route it (no cached
// metadata yet, unknown topic, record too large, writer closed); settle
// decides what then happens, and for a retryable refusal submit waits and
// tries again while holding the window room, so the reader stays parked.
func (b *Bridge) submit(ctx context.Context, msg kafka.Message) {
	rec := msg.WriterData.(*pending)
	for attempt := 0; ; attempt++ {
		if rec.state.Load() != stInflight {
			return // spilled while waiting: the spool answers it
		}
		err := b.w.WriteMessages(ctx, msg)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			b.abandon(&msg, reasonCanceled)
			return
		}
		if !b.settleOne(&msg, err, true) {
			return
		}
		if err := sleepCtx(ctx, b.stopCtx, backoff(attempt, b.cfg.WriteBackoffMin, b.cfg.WriteBackoffMax)); err != nil {
			if errors.Is(err, ErrClosed) {
				b.abandon(&msg, reasonClosed)
			} else {
				b.abandon(&msg, reasonCanceled)
			}
			return
		}
	}
}

// drop counts a push that is left unanswered: the gateway redelivers it.
func (b *Bridge) drop(reason string) {
	b.stats.dropped.Add(1)
	b.metrics.produceError(reason)
}

// abandon leaves the record of m unanswered, counts it and frees its room.
func (b *Bridge) abandon(m *kafka.Message, reason string) {
	if !m.WriterData.(*pending).claim() {
		return // spilled: the spool answers it
	}
	b.drop(reason)
	b.win.release(m.WriterData.(*pending).size)
}

// Shutdown stops taking pushes (HandlePush returns at once from now on,
// without answering), waits until every record in the window has been acked
// and answered, then closes the writer. If ctx ends first it returns
// ctx.Err() and leaves the bridge stopped; call Close to give up on the
// records still in flight (they stay unanswered and are redelivered).
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.stopping.Store(true)
	b.win.stop()
	if err := b.win.waitEmpty(ctx); err != nil {
		return fmt.Errorf("bridge: shutdown: %w", err)
	}
	if b.sp != nil {
		// Every push is answered (acked or spooled); what kafka-go still
		// retries was spilled, so cut it short.
		b.stopSpoolLoops()
		b.stopNow()
	}
	return b.closeWriter()
}

// Close stops the bridge now: pushes are no longer taken, requests in flight
// are abandoned, records not yet acked stay unanswered (the gateway
// redelivers them) and the writer is closed. It waits at most about
// WriteBackoffMax for kafka-go's goroutines.
func (b *Bridge) Close() error {
	b.stopping.Store(true)
	b.win.stop()
	b.stopNow()
	if b.sp != nil {
		b.stopSpoolLoops()
	}
	return b.closeWriter()
}

// closeWriter closes the writer and the owned transport once and marks the
// bridge done.
func (b *Bridge) closeWriter() error {
	b.closeMu.Lock()
	defer b.closeMu.Unlock()
	select {
	case <-b.done:
		return nil
	default:
	}
	err := b.w.Close()
	b.stopNow()
	if b.sp != nil {
		err = errors.Join(err, b.closeSpool())
	}
	if b.ownsTrans {
		b.transport.CloseIdleConnections()
	}
	b.doneOnce.Do(func() { close(b.done) })
	if err != nil {
		return fmt.Errorf("bridge: close writer: %w", err)
	}
	return nil
}

// Run blocks until the bridge is shut down or closed, and then returns
// ErrClosed, or until ctx ends, and then returns ctx.Err(). The bridge has no
// goroutine of its own besides kafka-go's and the control loop; Run gives cmd
// one lifetime to wait on.
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

// sleepCtx waits d, or until one of the contexts ends.
func sleepCtx(ctx, stop context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop.Done():
		return ErrClosed
	}
}

// backoff returns the wait before attempt+1: exponential from lo, capped at
// hi, with up to 25% jitter subtracted.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	if d > hi {
		d = hi
	}
	if q := int64(d / 4); q > 0 {
		d -= time.Duration(time.Now().UnixNano() % q)
	}
	return d
}
