package bridge

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/bridge/spool"
)

// The durable spool path (Config.SpoolDir set). Decisions:
//
//   - Promise. A push is answered only once its record is durable: acked by
//     Kafka (the fast path, unchanged), or fsynced to the spool, which drains
//     to Kafka. Without SpoolDir none of this runs.
//   - Ack budget. No timer per record: every fast-path record is appended, in
//     submission order, to a FIFO under a short mutex. One watcher goroutine
//     ticks every min(SpoolAckBudget/4, 100 ms), pops settled records off the
//     FIFO's front and looks at the oldest unsettled one; once its age (since
//     HandlePush began: the gateway's clock started then) exceeds the budget,
//     the bridge spills.
//   - Spill mode. Entering it (under routeMu, which submit also takes to
//     choose a path) takes every unsettled FIFO record, in order, from the
//     Kafka path (state stInflight → stSpilled, a CAS the promise also races
//     for: the winner settles the record, once) and appends it to the spool;
//     each is answered after the group-commit fsync. The producer keeps its
//     copy and keeps retrying it (idempotently, in order). The spool record
//     carries a private header with the record's copy id; when the
//     producer's copy is acked, the drain skips the spool record instead of
//     writing it again. While spilling, every new push goes to the spool,
//     behind them: nothing overtakes the spool, so order per key holds.
//   - Drain. One goroutine: Wait, Peek, then per record: a copy the producer
//     acked is skipped; a copy still pending stops the batch there until it
//     is settled (so order holds and nothing is written twice); any other
//     record is produced through the same idempotent producer, behind the
//     copies in its partition buffers. Once the batch is acked it is trimmed.
//     A record Kafka refuses for good is dead-lettered (or, if even that is
//     refused, logged and counted) and trimmed; the drain goes on.
//   - Leaving spill mode: the drainer (after a trim) and the watcher (every
//     tick) leave it when spool.Empty() — nothing untrimmed, no append in
//     progress — holding routeMu, so no push is between "decided to spool"
//     and "append started".
//   - Budget. An append waits while the spool's bytes plus appends in
//     progress plus the record would exceed SpoolMaxBytes: the push stays
//     unanswered, the reader stops, the gateway is back-pressured. If the
//     spool refuses a record (disk full, I/O error) the push is left
//     unanswered — never answered without being durable.
//   - Too large. A record larger than Kafka takes (Config.BatchBytes) is
//     never spilled: it takes the fast path, whose answer is a dead letter
//     and an error answer.
//   - Start. A spool left non-empty by a previous run puts the bridge in
//     spill mode from New on; its records carry copy ids of the old process,
//     which match nothing, so all of them are drained.
//   - Shutdown: stop taking pushes; the watcher keeps spilling and the
//     drainer keeps draining until the window is empty; then both stop, the
//     producer closes (pending copies fail: their spool records stay) and the
//     spool closes, maybe non-empty: it is drained at the next start.

// Spool defaults for the zero fields of [Config].
const (
	DefaultSpoolMaxBytes  = spool.DefaultMaxBytes
	DefaultSpoolAckBudget = 2 * time.Second
)

const (
	drainBatchRecords = spool.DefaultPeekRecords
	drainBatchBytes   = spool.DefaultPeekBytes
	fullPoll          = 20 * time.Millisecond
	// spoolFrameFixed is the spool's per-record overhead: frame header (8)
	// and fixed body fields (28); each header adds 6. See spool/doc.go.
	spoolFrameFixed = 8 + 28
	// copyHeader is the private spool header of a spilled record whose
	// producer copy is still in flight: 8 bytes of process nonce, 8 of id.
	// It never reaches Kafka.
	copyHeader = "rtm2kafka-copy"
)

// What became of the producer's copy of a spilled record (record.copyOut).
const (
	copyPending int32 = iota
	copyAcked
	copyFailed
)

// spoolPath is the state of the spool path.
type spoolPath struct {
	sp       *spool.Spool
	maxBytes int64
	budget   time.Duration
	tick     time.Duration
	nonce    [8]byte // this process's copy-id prefix

	routeMu  sync.Mutex   // held while choosing a path for a record and starting its append
	spilling atomic.Bool  // written under routeMu
	since    atomic.Int64 // unix ms spill mode began; 0 when not spilling
	pending  atomic.Int64 // bytes of appends started and not completed
	full     atomic.Bool  // a push is waiting for spool room now

	fifoMu sync.Mutex
	fifo   []*record // fast-path records in submission order; fifo[head:] live
	head   int

	copyMu   sync.Mutex
	copies   map[uint64]*record // spilled records by copy id, until the drain passes them
	nextCopy uint64
	copyWake chan struct{} // closed and replaced when a copy settles

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
		tick:     max(min(cfg.SpoolAckBudget/4, 100*time.Millisecond), time.Millisecond),
		copies:   make(map[uint64]*record),
		copyWake: make(chan struct{}),
		fullLog:  burstLog{log: b.log, every: 10 * time.Second},
	}
	_, _ = rand.Read(p.nonce[:]) // crypto/rand.Read never fails (Go 1.24+)
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
	p.loops.Add(2)
	go b.watch()
	go b.drain()
	return nil
}

// routeToSpool decides rec's path: in spill mode it appends rec to the spool
// and reports true; otherwise it records rec in the FIFO the watcher checks
// and reports false (the caller produces it).
func (b *Bridge) routeToSpool(ctx context.Context, rec *record) bool {
	p := b.sp
	p.routeMu.Lock()
	defer p.routeMu.Unlock()
	if !p.spilling.Load() || rec.size > int64(b.cfg.BatchBytes) {
		p.track(rec)
		return false
	}
	rec.state.Store(stSpilled)
	b.appendSpool(ctx, rec, false)
	return true
}

// track appends a fast-path record to the FIFO.
func (p *spoolPath) track(rec *record) {
	p.fifoMu.Lock()
	p.fifo = append(p.fifo, rec)
	p.fifoMu.Unlock()
}

// spoolSize is rec's encoded size in the spool, copy header included.
func spoolSize(kr *kgo.Record) int64 {
	n := int64(spoolFrameFixed + len(kr.Topic) + len(kr.Key) + len(kr.Value) + 6 + len(copyHeader) + 16)
	for i := range kr.Headers {
		n += int64(6 + len(kr.Headers[i].Key) + len(kr.Headers[i].Value))
	}
	return n
}

// appendSpool appends rec, which the spool path owns (stSpilled), and
// answers it once durable; routeMu is held. hasCopy says the producer holds
// a copy: the spool record then carries its copy id.
func (b *Bridge) appendSpool(ctx context.Context, rec *record, hasCopy bool) {
	p := b.sp
	need := spoolSize(&rec.kr)
	if err := b.waitSpoolRoom(ctx, need); err != nil {
		b.spoolFailed(rec, err)
		return
	}
	kr := &rec.kr
	hs := make([]spool.Header, len(kr.Headers), len(kr.Headers)+1)
	for i, h := range kr.Headers {
		hs[i] = spool.Header{Key: h.Key, Value: h.Value}
	}
	if hasCopy {
		p.copyMu.Lock()
		p.nextCopy++
		rec.copyID = p.nextCopy
		p.copies[rec.copyID] = rec
		p.copyMu.Unlock()
		id := make([]byte, 16)
		copy(id, p.nonce[:])
		binary.BigEndian.PutUint64(id[8:], rec.copyID)
		hs = append(hs, spool.Header{Key: copyHeader, Value: id})
	}
	r := [1]spool.Record{{Topic: kr.Topic, Key: kr.Key, Value: kr.Value, Time: rec.atMs, Headers: hs}}
	p.pending.Add(need)
	err := p.sp.AppendAsync(ctx, r[:], func(err error) {
		p.pending.Add(-need)
		if err != nil {
			if hasCopy {
				p.forget(rec) // the drain will never see it
			}
			b.spoolFailed(rec, err)
			return
		}
		b.stats.spilled.Add(1)
		b.answer(rec)
	})
	if err != nil {
		p.pending.Add(-need)
		if hasCopy {
			p.forget(rec)
		}
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
		if b.stopCtx.Err() != nil {
			return ErrClosed
		}
		if !waited {
			waited = true
			p.full.Store(true)
			b.stats.spoolFull.Add(1)
			p.fullLog.warn("bridge: SPOOL IS FULL (SPOOL_MAX_BYTES reached): pushes are not answered until the drainer makes room; the gateway is back-pressured",
				slog.Int64("spool_bytes", p.sp.Bytes()), slog.Int64("max_bytes", p.maxBytes), slog.Int("spool_records", p.sp.Len()))
		}
		if err := sleepCtx(ctx, fullPoll); err != nil {
			return err
		}
	}
}

// spoolFailed leaves a spool-owned record unanswered (not durable: the
// gateway redelivers it) and frees its room.
func (b *Bridge) spoolFailed(rec *record, err error) {
	b.drop(reasonSpool)
	b.win.release(rec.size)
	if b.stopping.Load() && (errors.Is(err, ErrClosed) || errors.Is(err, spool.ErrClosed) || errors.Is(err, context.Canceled)) {
		return
	}
	b.errLog.warn("bridge: the spool could not take a record; its push is left unanswered (the gateway redelivers it)",
		slog.String("error", err.Error()))
}

// copyDone records what became of the producer's copy of a spilled record
// and wakes the drainer.
func (p *spoolPath) copyDone(rec *record, err error) {
	out := copyAcked
	if err != nil {
		out = copyFailed
	}
	rec.copyOut.Store(out)
	p.copyMu.Lock()
	close(p.copyWake)
	p.copyWake = make(chan struct{})
	p.copyMu.Unlock()
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
		if age, n := p.oldestInflight(); age > p.budget {
			b.spill(age, n)
		}
	}
}

// oldestInflight drops settled records off the FIFO's front and returns
// the age of the oldest unsettled one and the FIFO's length.
func (p *spoolPath) oldestInflight() (time.Duration, int) {
	p.fifoMu.Lock()
	defer p.fifoMu.Unlock()
	for p.head < len(p.fifo) && p.fifo[p.head].state.Load() != stInflight {
		p.fifo[p.head] = nil
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
	return time.Since(p.fifo[p.head].start), len(p.fifo) - p.head
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
	for _, rec := range recs {
		if rec.size > int64(b.cfg.BatchBytes) {
			continue // too large for Kafka: never spilled; its promise refuses it (error answer, dead letter)
		}
		if !rec.state.CompareAndSwap(stInflight, stSpilled) {
			continue // settled by Kafka meanwhile
		}
		b.appendSpool(b.stopCtx, rec, true)
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
			slog.Uint64("spilled_total", b.stats.spilled.Load()), slog.Uint64("drained_total", b.stats.drained.Load()),
			slog.Uint64("skipped_total", b.stats.drainSkipped.Load()))
	}
}

// drain is the drainer goroutine: it moves spooled records to Kafka in
// order and trims them once acked.
func (b *Bridge) drain() {
	p := b.sp
	defer p.loops.Done()
	ctx := p.loopCtx
	var bo Backoff
	attempt := 0
	for {
		if err := p.sp.Wait(ctx); err != nil {
			return
		}
		wait, err := b.drainBatch(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			b.errLog.warn("bridge: draining the spool failed; retrying", slog.String("error", err.Error()),
				slog.Int("spool_records", p.sp.Len()))
			if sleepCtx(ctx, bo.Wait(attempt)) != nil {
				return
			}
			attempt++
			continue
		case wait != nil:
			select { // a copy is still in flight: wait until some copy settles
			case <-wait:
			case <-ctx.Done():
				return
			}
		}
		attempt = 0
		b.tryLeaveSpill()
	}
}

// drainBatch produces the oldest spooled records and trims them. It stops
// before a record whose producer copy is still in flight and returns a
// channel closed when some copy settles.
func (b *Bridge) drainBatch(ctx context.Context) (<-chan struct{}, error) {
	p := b.sp
	batch, err := p.sp.Peek(drainBatchRecords, drainBatchBytes)
	if err != nil || len(batch) == 0 {
		return nil, err
	}
	var (
		wait    <-chan struct{}
		last    = -1 // index of the last entry settled in this batch
		results = make([]error, len(batch))
		wg      sync.WaitGroup
		skipped int
	)
	for i := range batch {
		e := &batch[i]
		if rec := p.takeCopy(e); rec != nil {
			p.copyMu.Lock()
			out := rec.copyOut.Load()
			if out == copyPending {
				wait = p.copyWake
			}
			p.copyMu.Unlock()
			if out == copyPending {
				break // wait for it: writing it now could put it twice in Kafka
			}
			p.forget(rec)
			if out == copyAcked {
				skipped++
				last = i
				continue
			}
			// The copy failed: write it ourselves.
		}
		wg.Add(1)
		kr := &kgo.Record{Topic: e.Topic, Key: e.Key, Value: e.Value, Timestamp: time.UnixMilli(e.Time)}
		for _, h := range e.Headers {
			if h.Key != copyHeader {
				kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
			}
		}
		b.cl.Produce(ctx, kr, func(r *kgo.Record, err error) {
			if err == nil {
				b.stats.ack(b.stats.topic(r.Topic))
			}
			results[i] = err
			wg.Done()
		})
		last = i
	}
	wg.Wait()
	if last < 0 {
		return wait, nil
	}
	drained := 0
	for i := 0; i <= last; i++ {
		err := results[i]
		switch {
		case err == nil:
		case errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.Canceled) || ctx.Err() != nil:
			return nil, fmt.Errorf("produce spooled records: %w", err)
		case topicRecreated(err):
			// Not refused: the producer must forget the old topic first;
			// the batch is written again after the back-off.
			b.recoverTopic(batch[i].Topic)
			return nil, fmt.Errorf("produce spooled records: topic %s was deleted and re-created: %w", batch[i].Topic, err)
		default:
			b.deadLetterDrained(ctx, &batch[i], err)
			continue
		}
		drained++
	}
	if err := p.sp.Trim(batch[last].Pos); err != nil {
		return nil, err
	}
	b.stats.drainSkipped.Add(uint64(skipped))
	b.stats.drained.Add(uint64(drained - skipped))
	return wait, nil
}

// takeCopy returns the spilled record whose copy id e carries, if it is
// one of this process's; nil otherwise.
func (p *spoolPath) takeCopy(e *spool.Entry) *record {
	for _, h := range e.Headers {
		if h.Key != copyHeader || len(h.Value) != 16 || [8]byte(h.Value[:8]) != p.nonce {
			continue
		}
		p.copyMu.Lock()
		defer p.copyMu.Unlock()
		return p.copies[binary.BigEndian.Uint64(h.Value[8:])]
	}
	return nil
}

func (p *spoolPath) forget(rec *record) {
	p.copyMu.Lock()
	delete(p.copies, rec.copyID)
	p.copyMu.Unlock()
}

// deadLetterDrained writes a spooled record Kafka refused for good to the
// dead-letter topic (its push was answered when it was spilled); if that is
// refused too, it logs and counts the loss. Either way the drain goes on.
func (b *Bridge) deadLetterDrained(ctx context.Context, e *spool.Entry, err error) {
	reason := classify(err)
	b.stats.refused.Add(1)
	b.stats.produceErr(reason)
	kr := kgo.Record{Topic: e.Topic, Key: e.Key, Value: e.Value}
	dl := &kgo.Record{
		Topic: b.router.DeadLetterTopic(), Key: e.Key, Timestamp: time.UnixMilli(e.Time),
		Value: appendRefusal(nil, &kr, reason, err, b.cfg.Now().UnixMilli(), refusalValueMax(b.cfg.BatchBytes)),
	}
	for _, h := range e.Headers {
		if h.Key != copyHeader {
			dl.Headers = append(dl.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
	}
	derr := b.cl.ProduceSync(ctx, dl).FirstErr()
	if derr == nil {
		b.stats.ack(b.stats.topic(dl.Topic))
	}
	if derr != nil {
		b.log.Error("bridge: a spooled record was refused by Kafka and could not be dead-lettered either: it is LOST",
			slog.String("topic", e.Topic), slog.String("error", err.Error()), slog.String("dead_letter_error", derr.Error()))
		b.stats.dropped.Add(1)
		return
	}
	b.stats.deadLetters.Add(1)
	b.errLog.warn("bridge: Kafka refused a spooled record for good; it went to the dead-letter topic",
		slog.String("topic", e.Topic), slog.String("reason", reason), slog.String("error", err.Error()))
}

// stopSpoolLoops ends the watcher and the drainer and waits for them.
func (b *Bridge) stopSpoolLoops() {
	b.sp.stopOnce.Do(func() {
		b.sp.loopStop()
		b.sp.loops.Wait()
	})
}

// closeSpool closes the spool (appends in progress complete first), logging
// what stays spooled for the next start.
func (b *Bridge) closeSpool() {
	p := b.sp
	n, by := p.sp.Len(), p.sp.Bytes()
	if err := p.sp.Close(); err != nil {
		b.log.Error("bridge: close spool", slog.String("error", err.Error()))
	}
	if n > 0 {
		b.log.Warn("bridge: spool closed with records not yet in Kafka: they are durable and drained at the next start",
			slog.Int("records", n), slog.Int64("bytes", by))
	} else {
		b.log.Info("bridge: spool closed empty")
	}
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
	Drained        uint64 `json:"drained"`                   // records the drain produced to Kafka since start
	Skipped        uint64 `json:"skipped"`                   // spooled records whose producer copy Kafka acked: not written again
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
		Spilled: b.stats.spilled.Load(), Drained: b.stats.drained.Load(), Skipped: b.stats.drainSkipped.Load(),
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
