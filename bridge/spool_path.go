package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/rtm2kafka/rtm2kafka/bridge/spool"
)

// The durable spool path (Config.SpoolDir set). Decisions:
//
//   - Promise. A push is answered only once its record is durable: acked by
//     Kafka (the fast path, unchanged), or fsynced to the spool, which drains
//     to Kafka. With no SpoolDir none of this runs and HandlePush behaves as
//     before (the one difference is an atomic state per record, see below).
//   - Ack budget. No timer per record: every fast-path record is appended, in
//     submission order, to a FIFO (inflight) under a short mutex. One watcher
//     goroutine ticks every min(SpoolAckBudget/4, 100 ms), pops settled
//     entries off the FIFO's front and looks at the oldest unsettled one; once
//     its age (since HandlePush began, so time spent waiting for window room
//     counts: the gateway's clock started then) exceeds the budget, the
//     bridge enters spill mode.
//   - Spill mode. Entering it (under routeMu, which HandlePush also takes to
//     choose a path) takes every unsettled FIFO record, in order, from the
//     Kafka path (state stInflight → stSpilled, a CAS that Kafka's completion
//     also races for: whoever wins settles the record, exactly once) and
//     appends it to the spool with AppendAsync; each is answered from the
//     append's done callback, after the group-commit fsync. kafka-go keeps
//     (and, with MaxAttempts "forever", keeps retrying) its copy: if Kafka
//     acks it later, that is a second copy in Kafka, counted as a spool
//     duplicate and not answered again. While in spill mode every new push
//     goes to the spool, behind them: nothing overtakes the spool (order per
//     key is kept; a late kafka-go copy can only repeat a record, never come
//     first). Spilled and spool-bound records hold window room until their
//     append completes, so the window still bounds memory.
//   - Leaving spill mode. The drainer (after a trim) and the watcher (every
//     tick) try routeMu without waiting and leave spill mode when
//     spool.Empty() — no untrimmed record, no append in progress. As every
//     append is made under routeMu, no push can be between "decided to
//     spool" and "append started" at that moment.
//   - Drainer. One goroutine: Wait, Peek (1024 records / 1 MiB), produce the
//     batch with a synchronous kafka.Writer of its own on the bridge's
//     transport (acks as configured, murmur2 like the fast path, one batch in
//     flight, so order per partition is kept), Trim, repeat. Any failure —
//     produce, peek, trim — backs off in one place (100 ms doubling to 5 s)
//     and retries the same batch; records Kafka acked before a failed batch
//     was retried are written again (duplicates, never losses).
//   - Budget. HandlePush (and the spill) waits before an append while the
//     spool's bytes plus appends in progress plus the record would exceed
//     SpoolMaxBytes: the push stays unanswered, the reader stops, the gateway
//     is back-pressured, exactly as with a full window. It is logged loudly
//     (once per burst) and counted (spool_full_total). If the spool refuses
//     a record anyway (disk full, I/O error, too large for a segment) the
//     push is left unanswered — never answered without being durable — and
//     counted as a produce error with reason "spool".
//   - Start. A spool left non-empty by a previous run puts the bridge in
//     spill mode from New on: new pushes go behind it until it has drained.
//     Open's recovery (torn tail cut at the last good record) is logged and
//     exported as metrics; a directory locked by another running bridge
//     makes New fail with an error wrapping spool.ErrLocked.
//   - Shutdown: stop taking pushes; the watcher keeps spilling and the
//     drainer keeps draining until the window is empty (every push answered);
//     then both stop, kafka-go's leftover retries are cut, and the spool is
//     closed, possibly non-empty: it is logged and drained at the next start.
//   - Bytes. The record's one allocation (value, key, header values) is
//     handed to the spool as is; only the small []spool.Header is new. The
//     bytes are never changed after encode, so AppendAsync's rule (untouched
//     until done) holds.

// Spool defaults for the zero fields of [Config].
const (
	DefaultSpoolMaxBytes  = spool.DefaultMaxBytes
	DefaultSpoolAckBudget = 2 * time.Second
)

const (
	drainBackoffMin = 100 * time.Millisecond
	drainBackoffMax = 5 * time.Second
	fullPoll        = 20 * time.Millisecond
	// spoolFrameFixed is the spool's per-record overhead: frame header (8)
	// and fixed body fields (28); each header adds 6. See spool/doc.go.
	spoolFrameFixed = 8 + 28
)

// spoolPath is the state of the spool path.
type spoolPath struct {
	sp       *spool.Spool
	maxBytes int64
	budget   time.Duration
	tick     time.Duration

	routeMu  sync.Mutex   // held while choosing a path for a record and starting its append
	spilling atomic.Bool  // written under routeMu
	since    atomic.Int64 // unix ms spill mode began; 0 when not spilling
	pending  atomic.Int64 // bytes of appends started and not completed
	full     atomic.Bool  // a push is waiting for spool room now

	fifoMu sync.Mutex
	fifo   []kafka.Message // fast-path records in submission order; fifo[head:] live
	head   int

	dw       *kafka.Writer // the drainer's synchronous writer
	loopCtx  context.Context
	loopStop context.CancelFunc
	loops    sync.WaitGroup
	stopOnce sync.Once
	fullLog  burstLog
}

// openSpool opens cfg.SpoolDir and starts the watcher and the drainer.
func (b *Bridge) openSpool() error {
	cfg := &b.cfg
	sp, err := spool.Open(cfg.SpoolDir, spool.Options{
		MaxBytes: cfg.SpoolMaxBytes, MaxAge: cfg.SpoolMaxAge,
		Logger: b.log.With("component", "spool"),
	})
	if err != nil {
		if errors.Is(err, spool.ErrLocked) {
			return fmt.Errorf("bridge: spool dir in use by another running bridge (one bridge per SPOOL_DIR): %w", err)
		}
		return fmt.Errorf("bridge: open spool: %w", err)
	}
	p := &spoolPath{
		sp: sp, maxBytes: cfg.SpoolMaxBytes, budget: cfg.SpoolAckBudget,
		tick:    min(cfg.SpoolAckBudget/4, 100*time.Millisecond),
		fullLog: burstLog{log: b.log, every: 10 * time.Second},
	}
	p.tick = max(p.tick, time.Millisecond)
	p.dw = &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Balancer:               kafka.Murmur2Balancer{},
		MaxAttempts:            3,
		WriteBackoffMin:        cfg.WriteBackoffMin,
		WriteBackoffMax:        cfg.WriteBackoffMax,
		BatchSize:              spool.DefaultPeekRecords,
		BatchBytes:             cfg.BatchBytes,
		BatchTimeout:           time.Millisecond,
		RequiredAcks:           cfg.RequiredAcks,
		Transport:              b.rt,
		AllowAutoTopicCreation: false,
	}
	st := sp.Stats()
	if rc := st.Recovered; rc.TruncatedBytes > 0 || rc.DroppedRecords > 0 || rc.CheckpointBad {
		b.log.Error("bridge: spool recovery cut a torn or corrupt tail; the records after the cut are lost",
			slog.String("dir", cfg.SpoolDir), slog.Int64("truncated_bytes", rc.TruncatedBytes),
			slog.Int64("dropped_records", rc.DroppedRecords), slog.Bool("checkpoint_bad", rc.CheckpointBad),
			slog.Int("cuts", len(rc.Cuts)))
	}
	if !sp.Empty() {
		p.spilling.Store(true)
		p.since.Store(time.Now().UnixMilli())
		b.log.Warn("bridge: spool left by a previous run: draining it before anything else; new pushes queue behind it",
			slog.String("dir", cfg.SpoolDir), slog.Int64("records", st.Records), slog.Int64("bytes", st.Bytes))
	}
	p.loopCtx, p.loopStop = context.WithCancel(b.stopCtx)
	b.sp = p
	b.metrics.attachSpool(b)
	p.loops.Add(2)
	go b.watch()
	go b.drain()
	return nil
}

// route sends msg, whose window room is held, to Kafka or, in spill mode,
// to the spool.
func (b *Bridge) route(ctx context.Context, msg kafka.Message) {
	p := b.sp
	rec := msg.WriterData.(*pending)
	p.routeMu.Lock()
	if p.spilling.Load() {
		rec.state.Store(stSpilled)
		b.appendSpool(ctx, msg, rec)
		p.routeMu.Unlock()
		return
	}
	p.fifoMu.Lock()
	p.fifo = append(p.fifo, msg)
	p.fifoMu.Unlock()
	p.routeMu.Unlock()
	b.submit(ctx, msg)
}

// spoolSize is msg's encoded size in the spool.
func spoolSize(msg *kafka.Message) int64 {
	n := int64(spoolFrameFixed + len(msg.Topic) + len(msg.Key) + len(msg.Value))
	for i := range msg.Headers {
		n += int64(6 + len(msg.Headers[i].Key) + len(msg.Headers[i].Value))
	}
	return n
}

// appendSpool appends the record of msg, which the spool path owns
// (stSpilled), and answers it once durable; routeMu is held. It waits for
// room within the disk budget first.
func (b *Bridge) appendSpool(ctx context.Context, msg kafka.Message, rec *pending) {
	p := b.sp
	need := spoolSize(&msg)
	if err := b.waitSpoolRoom(ctx, need); err != nil {
		b.spoolFailed(rec, err)
		return
	}
	r := [1]spool.Record{{Topic: msg.Topic, Key: msg.Key, Value: msg.Value, Time: msg.Time.UnixMilli()}}
	if len(msg.Headers) > 0 {
		hs := make([]spool.Header, len(msg.Headers))
		for i, h := range msg.Headers {
			hs[i] = spool.Header{Key: h.Key, Value: h.Value}
		}
		r[0].Headers = hs
	}
	p.pending.Add(need)
	err := p.sp.AppendAsync(ctx, r[:], func(err error) {
		p.pending.Add(-need)
		if err != nil {
			b.spoolFailed(rec, err)
			return
		}
		b.stats.spilled.Add(1)
		b.metrics.spill()
		b.answer(rec)
	})
	if err != nil {
		p.pending.Add(-need)
		b.spoolFailed(rec, err)
	}
}

// waitSpoolRoom waits until need more bytes fit in the disk budget. A
// record larger than the whole budget is let through when the spool is
// empty (the spool then refuses it, and it is left unanswered).
func (b *Bridge) waitSpoolRoom(ctx context.Context, need int64) error {
	p := b.sp
	waited := false
	defer func() {
		if waited {
			p.full.Store(false)
		}
	}()
	for {
		used := p.sp.Bytes() + p.pending.Load()
		if used+need <= p.maxBytes || used == 0 {
			return nil
		}
		if b.stopping.Load() {
			return ErrClosed
		}
		if !waited {
			waited = true
			p.full.Store(true)
			b.metrics.spoolFullHit()
			p.fullLog.warn("bridge: SPOOL IS FULL (SPOOL_MAX_BYTES reached): pushes are not answered until the drainer makes room; the gateway is back-pressured",
				slog.Int64("spool_bytes", p.sp.Bytes()), slog.Int64("max_bytes", p.maxBytes), slog.Int("spool_records", p.sp.Len()))
		}
		if err := sleepCtx(ctx, b.stopCtx, fullPoll); err != nil {
			return err
		}
	}
}

// spoolFailed leaves a spool-owned record unanswered (not durable: the
// gateway redelivers it) and frees its room.
func (b *Bridge) spoolFailed(rec *pending, err error) {
	b.drop(reasonSpool)
	b.win.release(rec.size)
	if b.stopping.Load() && (errors.Is(err, ErrClosed) || errors.Is(err, spool.ErrClosed) || errors.Is(err, context.Canceled)) {
		return
	}
	b.errLog.warn("bridge: the spool could not take a record; its push is left unanswered (the gateway redelivers it)",
		slog.String("error", err.Error()))
}

// spoolDuplicate counts a spilled record that Kafka acked as well.
func (b *Bridge) spoolDuplicate() {
	b.stats.spoolDups.Add(1)
	b.metrics.spoolDup()
}

// watch is the watcher goroutine: it enforces the ack budget and leaves
// spill mode once the spool is empty.
func (b *Bridge) watch() {
	p := b.sp
	defer p.loops.Done()
	t := time.NewTicker(p.tick)
	defer t.Stop()
	for {
		select {
		case <-p.loopCtx.Done():
			return
		case <-t.C:
		}
		if p.spilling.Load() {
			b.tryLeaveSpill()
			continue
		}
		if age, n := b.oldestInflight(); age > p.budget {
			b.spill(age, n)
		}
	}
}

// oldestInflight drops settled records off the FIFO's front and returns
// the age of the oldest unsettled one and the FIFO's length.
func (b *Bridge) oldestInflight() (time.Duration, int) {
	p := b.sp
	p.fifoMu.Lock()
	defer p.fifoMu.Unlock()
	for p.head < len(p.fifo) && p.fifo[p.head].WriterData.(*pending).state.Load() != stInflight {
		p.fifo[p.head] = kafka.Message{}
		p.head++
	}
	if p.head == len(p.fifo) {
		p.fifo, p.head = p.fifo[:0], 0
		return 0, 0
	}
	if p.head > 1024 && p.head > len(p.fifo)/2 {
		n := copy(p.fifo, p.fifo[p.head:])
		clear(p.fifo[n:])
		p.fifo, p.head = p.fifo[:n], 0
	}
	return time.Since(p.fifo[p.head].WriterData.(*pending).start), len(p.fifo) - p.head
}

// spill enters spill mode: every unsettled fast-path record goes to the
// spool, in submission order, and so does every new push until the spool
// is empty again.
func (b *Bridge) spill(age time.Duration, n int) {
	p := b.sp
	p.routeMu.Lock()
	defer p.routeMu.Unlock()
	if p.spilling.Load() {
		return
	}
	p.spilling.Store(true)
	p.since.Store(time.Now().UnixMilli())
	p.fifoMu.Lock()
	recs := p.fifo[p.head:]
	p.fifo, p.head = nil, 0
	p.fifoMu.Unlock()
	b.log.Warn("bridge: Kafka did not ack within the ack budget: spilling to the spool; pushes are answered after fsync",
		slog.Duration("oldest_wait", age), slog.Duration("budget", p.budget), slog.Int("inflight", n))
	for i := range recs {
		rec := recs[i].WriterData.(*pending)
		if !rec.state.CompareAndSwap(stInflight, stSpilled) {
			continue // settled by Kafka meanwhile
		}
		b.appendSpool(b.stopCtx, recs[i], rec)
	}
}

// tryLeaveSpill leaves spill mode when the spool is empty; it does not wait
// for routeMu (a push waiting for spool room holds it).
func (b *Bridge) tryLeaveSpill() {
	p := b.sp
	if !p.spilling.Load() || !p.sp.Empty() || !p.routeMu.TryLock() {
		return
	}
	defer p.routeMu.Unlock()
	if p.spilling.Load() && p.sp.Empty() {
		p.spilling.Store(false)
		since := p.since.Swap(0)
		b.log.Info("bridge: spool drained: back to the fast path (answers after Kafka's ack)",
			slog.Duration("spilling_for", time.Since(time.UnixMilli(since)).Round(time.Millisecond)),
			slog.Uint64("spilled_total", b.stats.spilled.Load()), slog.Uint64("drained_total", b.stats.drained.Load()))
	}
}

// drain is the drainer goroutine: it moves spooled records to Kafka in
// order and trims them once acked.
func (b *Bridge) drain() {
	p := b.sp
	defer p.loops.Done()
	ctx := p.loopCtx
	attempt := 0
	var msgs []kafka.Message
	for {
		if err := p.sp.Wait(ctx); err != nil {
			return
		}
		err := b.drainBatch(ctx, &msgs)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			b.errLog.warn("bridge: draining the spool failed; retrying", slog.String("error", err.Error()),
				slog.Int("spool_records", p.sp.Len()))
			if sleepCtx(ctx, ctx, backoff(attempt, drainBackoffMin, drainBackoffMax)) != nil {
				return
			}
			attempt++
			continue
		}
		attempt = 0
		b.tryLeaveSpill()
	}
}

// drainBatch produces the oldest spooled records and trims them.
func (b *Bridge) drainBatch(ctx context.Context, msgs *[]kafka.Message) error {
	p := b.sp
	batch, err := p.sp.Peek(0, 0)
	if err != nil || len(batch) == 0 {
		return err
	}
	m := (*msgs)[:0]
	for i := range batch {
		e := &batch[i]
		km := kafka.Message{Topic: e.Topic, Key: e.Key, Value: e.Value, Time: time.UnixMilli(e.Time)}
		if len(e.Headers) > 0 {
			km.Headers = make([]kafka.Header, len(e.Headers))
			for j, h := range e.Headers {
				km.Headers[j] = kafka.Header{Key: h.Key, Value: h.Value}
			}
		}
		m = append(m, km)
	}
	*msgs = m
	defer clear(m)
	if err := p.dw.WriteMessages(ctx, m...); err != nil {
		return fmt.Errorf("produce %d spooled records: %w", len(m), err)
	}
	if err := p.sp.Trim(batch[len(batch)-1].Pos); err != nil {
		return err
	}
	b.stats.drained.Add(uint64(len(batch)))
	b.metrics.drain(len(batch))
	return nil
}

// stopSpoolLoops ends the watcher and the drainer and waits for them.
func (b *Bridge) stopSpoolLoops() {
	b.sp.stopOnce.Do(func() {
		b.sp.loopStop()
		b.sp.loops.Wait()
	})
}

// closeSpool closes the drainer's writer and the spool (appends in
// progress complete first), logging what stays spooled for the next start.
func (b *Bridge) closeSpool() error {
	p := b.sp
	b.stopSpoolLoops()
	err := p.dw.Close()
	n, by := p.sp.Len(), p.sp.Bytes()
	if cerr := p.sp.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if n > 0 {
		b.log.Warn("bridge: spool closed with records not yet in Kafka: they are durable and drained at the next start",
			slog.Int("records", n), slog.Int64("bytes", by))
	} else {
		b.log.Info("bridge: spool closed empty")
	}
	if err != nil {
		return fmt.Errorf("bridge: close spool: %w", err)
	}
	return nil
}

// SpoolStatus is the spool's state for /status.
type SpoolStatus struct {
	Enabled        bool   `json:"enabled"`
	Spilling       bool   `json:"spilling"`                  // new pushes go to the spool (degraded)
	SpillingSince  string `json:"spilling_since"`            // RFC 3339, empty when not spilling
	Full           bool   `json:"full"`                      // a push waits for room: the gateway is back-pressured
	Records        int64  `json:"records"`                   // spooled, not yet drained
	Bytes          int64  `json:"bytes"`                     // their encoded size
	MaxBytes       int64  `json:"max_bytes"`                 // the disk budget
	OldestAgeMs    int64  `json:"oldest_age_ms"`             // age of the oldest spooled record
	Spilled        uint64 `json:"spilled"`                   // records answered from the spool since start
	Drained        uint64 `json:"drained"`                   // records drained to Kafka since start
	Duplicates     uint64 `json:"duplicates"`                // spilled records Kafka acked too
	FsyncCount     uint64 `json:"fsync_count"`               // group-commit fsyncs
	FsyncMaxMs     int64  `json:"fsync_max_ms"`              // the slowest of them
	Broken         string `json:"broken"`                    // a failed fsync: every later append fails
	RecoveredCut   int64  `json:"recovered_truncated_bytes"` // bytes cut from a torn tail at start
	RecoveredDrops int64  `json:"recovered_dropped_records"` // records lost with the cut (estimate)
}

// SpoolStatus returns the spool's state; Enabled is false without a spool.
func (b *Bridge) SpoolStatus() SpoolStatus {
	p := b.sp
	if p == nil {
		return SpoolStatus{}
	}
	st := p.sp.Stats()
	s := SpoolStatus{
		Enabled: true, Spilling: p.spilling.Load(), Full: p.full.Load(),
		Records: st.Records, Bytes: st.Bytes, MaxBytes: p.maxBytes, OldestAgeMs: st.OldestAgeMs,
		Spilled: b.stats.spilled.Load(), Drained: b.stats.drained.Load(), Duplicates: b.stats.spoolDups.Load(),
		FsyncCount: st.FsyncCount, FsyncMaxMs: st.FsyncMax.Milliseconds(), Broken: st.Broken,
		RecoveredCut: st.Recovered.TruncatedBytes, RecoveredDrops: st.Recovered.DroppedRecords,
	}
	if since := p.since.Load(); since != 0 && s.Spilling {
		s.SpillingSince = time.UnixMilli(since).UTC().Format(time.RFC3339Nano)
	}
	return s
}

// Spilling reports whether pushes currently go to the spool (Kafka slow or
// down, or the spool still draining) and how many records it holds.
func (b *Bridge) Spilling() (bool, int) {
	if b.sp == nil {
		return false, 0
	}
	return b.sp.spilling.Load(), b.sp.sp.Len()
}

// SpoolEnabled reports whether the bridge has a spool.
func (b *Bridge) SpoolEnabled() bool { return b.sp != nil }

// spoolCollector exports the spool's gauges and fsync histogram at scrape
// time from the attached bridge's spool statistics.
type spoolCollector struct {
	b atomic.Pointer[Bridge]
}

var (
	descSpoolBytes   = prometheus.NewDesc("rtm2kafka_spool_bytes", "Encoded bytes of spooled records not yet drained to Kafka.", nil, nil)
	descSpoolMax     = prometheus.NewDesc("rtm2kafka_spool_max_bytes", "The spool's disk budget (SPOOL_MAX_BYTES).", nil, nil)
	descSpoolRecords = prometheus.NewDesc("rtm2kafka_spool_records", "Spooled records not yet drained to Kafka.", nil, nil)
	descSpoolAge     = prometheus.NewDesc("rtm2kafka_spool_oldest_age_seconds", "Age of the oldest spooled record; 0 when empty.", nil, nil)
	descSpoolDisk    = prometheus.NewDesc("rtm2kafka_spool_disk_bytes", "Size of the spool's segment files, trimmed prefix included.", nil, nil)
	descSpilling     = prometheus.NewDesc("rtm2kafka_spool_spilling", "1 while pushes go to the spool (degraded), else 0.", nil, nil)
	descSpoolFsync   = prometheus.NewDesc("rtm2kafka_spool_fsync_seconds", "Duration of the spool's group-commit fsyncs.", nil, nil)
	descRecovered    = prometheus.NewDesc("rtm2kafka_spool_recovered_dropped_records", "Records lost with a torn or corrupt tail cut when the spool was opened (estimate).", nil, nil)
	descRecTrunc     = prometheus.NewDesc("rtm2kafka_spool_recovered_truncated_bytes", "Bytes cut from torn or corrupt segment tails when the spool was opened.", nil, nil)
)

// Describe implements prometheus.Collector; it describes nothing, which
// makes it an unchecked collector (its series exist only with a spool).
func (c *spoolCollector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *spoolCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.b.Load()
	if b == nil || b.sp == nil {
		return
	}
	st := b.sp.sp.Stats()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	g(descSpoolBytes, float64(st.Bytes))
	g(descSpoolMax, float64(b.sp.maxBytes))
	g(descSpoolRecords, float64(st.Records))
	g(descSpoolAge, float64(st.OldestAgeMs)/1000)
	g(descSpoolDisk, float64(st.DiskBytes))
	spilling := 0.0
	if b.sp.spilling.Load() {
		spilling = 1
	}
	g(descSpilling, spilling)
	g(descRecovered, float64(st.Recovered.DroppedRecords))
	g(descRecTrunc, float64(st.Recovered.TruncatedBytes))
	bounds := spool.FsyncBucketBounds()
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, ub := range bounds {
		cum += st.FsyncHist[i]
		buckets[ub.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(descSpoolFsync, st.FsyncCount, st.FsyncTotal.Seconds(), buckets)
}

func (m *Metrics) attachSpool(b *Bridge) {
	if m != nil {
		m.spoolStats.b.Store(b)
	}
}

func (m *Metrics) spill() {
	if m != nil {
		m.spilled.Inc()
	}
}

func (m *Metrics) drain(n int) {
	if m != nil {
		m.drained.Add(float64(n))
	}
}

func (m *Metrics) spoolDup() {
	if m != nil {
		m.spoolDups.Inc()
	}
}

func (m *Metrics) spoolFullHit() {
	if m != nil {
		m.spoolFull.Inc()
	}
}
