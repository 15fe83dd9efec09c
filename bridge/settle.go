package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// What kafka-go v0.4.51's Writer does (read in writer.go and transport.go),
// and what the bridge relies on:
//
//   - Ordering. Each topic-partition has one partitionWriter with one
//     goroutine (writeBatches) that takes batches from a FIFO queue and writes
//     them one at a time: one batch in flight per partition, and its retries
//     (writeBatch's attempt loop, MaxAttempts times with WriteBackoffMin/Max
//     between attempts) happen before the next batch is touched. So with
//     Async the records of one key, which murmur2 maps to one partition, are
//     written in the order WriteMessages saw them — as long as no batch is
//     given up on. When a batch does exhaust MaxAttempts, or fails with an
//     error kafka-go does not consider temporary (Error.Temporary or
//     ECONNREFUSED/ECONNRESET/EPIPE/unexpected EOF), Completion gets the
//     error and the goroutine moves on to the next batch: later records of
//     the same key get written while the failed ones are not. Re-submitting
//     the failed ones would put them behind their successors.
//   - Completion is called once per batch, from that partition's goroutine,
//     with the batch's messages (copies of what WriteMessages got: Key,
//     Value, Headers and WriterData preserved; Topic, Partition, Offset set
//     on success) and the batch's final error. Blocking in it stalls the
//     partition, and Writer.Close waits for it.
//   - WriteMessages with Async does not wait for Kafka, but it is not free:
//     it looks up the topic's partition count through the transport, which
//     answers from its metadata cache (refreshed in the background every
//     MetadataTTL, old metadata kept when a refresh fails). Before the first
//     metadata response it waits for it (bounded by ctx), and it fails at once
//     for a topic the cache does not know (UnknownTopicOrPartition), for a
//     cluster never reached, for a record larger than BatchBytes
//     (MessageTooLargeError) and after Close (io.ErrClosedPipe). It also
//     takes two short mutexes. The per-partition queue is unbounded: the
//     window is what bounds it.
//   - Not every passing failure is temporary to kafka-go. A produce the
//     transport cannot route because its cached layout lacks the topic, the
//     partition or its leader (protocol.ErrNoTopic, ErrNoPartition,
//     ErrNoLeader: a topic deleted and re-created, a leader election) fails
//     at once and is not retried, whatever MaxAttempts says — found by
//     TestTopicGoneThenBack. The bridge's transport wrapper (stopTransport)
//     marks these errors temporary, so kafka-go retries them in order too.
//   - A batch being retried is never abandoned by kafka-go, not even by
//     Close (which waits for it). So stopTransport also makes every request
//     fail at once with ErrClosed after Close; that is not temporary, so the
//     attempt loop ends within one back-off.
//
//   - kafka-go has no idempotent producer: an attempt that timed out may
//     still have been appended, and its retry appends the records again. So
//     delivery is at least once; a consumer drops duplicates by the rtm-mid
//     header (with rtm-from and rtm-to), as it does for gateway redeliveries.
//
// Hence the choice: MaxAttempts defaults to 1<<30, so kafka-go itself keeps
// retrying a failing batch, in order, for as long as Kafka is unreachable;
// the window stays full meanwhile and backpressure reaches the gateway. What
// reaches settle is then, in practice, only what kafka-go refuses to retry:
// records Kafka refuses for good (answered with an error), and the rare
// network failure kafka-go does not count as temporary but retryable does
// (say a broker name that stops resolving), which settle re-submits at the
// price of order for those records.

// codeProduceFailed is the FPNN code of the error answer for a push Kafka
// refused for good ("unknown error"; the ex says why).
const codeProduceFailed = 20001

// completion is the writer's Completion callback. It never blocks: it sends
// replies (queued by the connection, never waiting on the network), counts,
// logs at most once per burst and frees window room.
func (b *Bridge) completion(msgs []kafka.Message, err error) {
	if err != nil {
		b.settle(msgs, err)
		return
	}
	for i := range msgs {
		b.acked(msgs[i].WriterData.(*pending))
	}
}

// acked answers a record Kafka acknowledged and frees its window room. The
// counting and the room come first, so that whoever sees the answer also
// sees them.
func (b *Bridge) acked(rec *pending) {
	if !rec.claim() {
		// Spilled before Kafka acked it: the spool answers it, and this
		// copy in Kafka is a duplicate of the one the drainer writes.
		b.spoolDuplicate()
		return
	}
	b.answer(rec)
}

// answer answers a record that is durable (acked by Kafka, or fsynced to
// the spool) and frees its window room; its state has been claimed.
func (b *Bridge) answer(rec *pending) {
	var err error
	if rec.deadErr != "" {
		b.stats.deadLetters.Add(1)
		b.metrics.deadLetter()
		b.recent.deadLetter(rec.deadErr, rec.size)
		b.win.release(rec.size)
		err = rec.reply.Error(rtm.CodeDecoding, rec.deadErr)
	} else {
		b.stats.acked.Add(1)
		b.metrics.acked(time.Since(rec.start))
		b.win.release(rec.size)
		err = rec.reply.OK()
	}
	if errors.Is(err, rtm.ErrConnClosed) {
		// In Kafka, but the gateway will not hear it: it redelivers, and the
		// duplicate can be recognised by its rtm-mid header.
		b.stats.lost.Add(1)
		b.metrics.answerLost()
	}
}

// settle is the one place that decides what happens to records Kafka did not
// take: msgs failed together with err (one batch from Completion).
//
//   - The bridge is closing: the records stay unanswered (the gateway
//     redelivers them) and their room is freed.
//   - err is retryable (possible only with a finite MaxAttempts): after a
//     back-off (WriteBackoffMin doubling to WriteBackoffMax, on a timer) the
//     records are handed to the writer again, in their order, keeping their
//     window room, so nothing is lost and the window keeps the gateway
//     slowed. The
//     records behind them on the same key may already be in Kafka: ordering
//     per key is given up for these records, which is why MaxAttempts
//     defaults to "forever". If the writer refuses them at once, they are
//     answered with an error.
//   - Otherwise Kafka refused them for good (too large, invalid,
//     unauthorised): each is answered with an error answer, counted, and
//     logged once per burst. The gateway decides whether to redeliver.
func (b *Bridge) settle(msgs []kafka.Message, err error) {
	if b.closing(err) || !retryable(err) {
		for i := range msgs {
			b.settleOne(&msgs[i], err, false)
		}
		return
	}
	again := make([]kafka.Message, 0, len(msgs))
	for _, m := range msgs {
		if m.WriterData.(*pending).state.Load() != stInflight {
			continue // spilled: the spool answers it
		}
		m.Partition, m.Offset, m.HighWaterMark = 0, 0, 0
		again = append(again, m)
	}
	if len(again) == 0 {
		return
	}
	b.errLog.warn("bridge: kafka-go gave up on a batch; re-submitting it (order per key not kept for it)",
		slog.String("topic", msgs[0].Topic), slog.Int("records", len(msgs)), slog.String("error", err.Error()))
	b.resubmit(again)
}

// resubmit hands msgs to the writer again after a back-off, keeping their
// window room. Completion must not wait, so the back-off runs on a timer,
// off the partition's goroutine; only failing batches get one. If the writer
// refuses them at once with a retryable error (say the topic vanished from
// the metadata), they are scheduled again; any other refusal settles them.
func (b *Bridge) resubmit(msgs []kafka.Message) {
	attempt := 0
	for i := range msgs {
		rec := msgs[i].WriterData.(*pending)
		rec.resubmits++
		attempt = max(attempt, rec.resubmits)
	}
	time.AfterFunc(backoff(attempt-1, b.cfg.WriteBackoffMin, b.cfg.WriteBackoffMax), func() {
		msgs = slices.DeleteFunc(msgs, func(m kafka.Message) bool { return m.WriterData.(*pending).state.Load() != stInflight })
		if len(msgs) == 0 {
			return // all spilled meanwhile
		}
		err := b.w.WriteMessages(b.stopCtx, msgs...)
		switch {
		case err == nil:
			b.stats.resubmitted.Add(uint64(len(msgs)))
		case !b.closing(err) && retryable(err):
			b.resubmit(msgs)
		default:
			for i := range msgs {
				b.settleOne(&msgs[i], err, false)
			}
		}
	})
}

// settleOne settles one record that failed with err. With mayRetry (the
// submit path) a retryable error leaves the record and its room untouched and
// reports true: the caller waits and submits again. Otherwise the record is
// dropped unanswered (closing) or answered with an error, and its room freed.
func (b *Bridge) settleOne(m *kafka.Message, err error, mayRetry bool) (retry bool) {
	rec := m.WriterData.(*pending)
	if rec.state.Load() != stInflight {
		return false // spilled: the spool answers it
	}
	if b.closing(err) {
		b.abandon(m, reasonClosed)
		return false
	}
	if mayRetry && retryable(err) {
		b.errLog.warn("bridge: cannot hand a record to the writer yet; retrying",
			slog.String("topic", m.Topic), slog.String("error", err.Error()))
		return true
	}
	if !rec.claim() {
		return false // spilled meanwhile
	}
	reason := classify(err)
	b.stats.rejected.Add(1)
	b.metrics.produceError(reason)
	b.win.release(rec.size)
	b.errLog.warn("bridge: Kafka refused a record; answering the push with an error",
		slog.String("topic", m.Topic), slog.String("reason", reason), slog.String("error", err.Error()))
	if aerr := rec.reply.Error(codeProduceFailed, fmt.Sprintf("bridge: produce %s: %v", m.Topic, err)); errors.Is(aerr, rtm.ErrConnClosed) {
		b.stats.lost.Add(1)
		b.metrics.answerLost()
	}
	return false
}

// closing reports whether err, or the bridge's state, means the record was
// abandoned because the bridge is closing.
func (b *Bridge) closing(err error) bool {
	return b.stopCtx.Err() != nil || errors.Is(err, ErrClosed) || errors.Is(err, io.ErrClosedPipe)
}

// retryable reports whether trying again later may succeed: the errors
// kafka-go itself retries (temporary Kafka errors, broken or refused
// connections), timeouts and other network failures.
func retryable(err error) bool {
	var tmp interface{ Temporary() bool }
	if errors.As(err, &tmp) && tmp.Temporary() {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, context.DeadlineExceeded)
}

// classify names the reason label for a record given up on.
func classify(err error) string {
	var tooLarge kafka.MessageTooLargeError
	switch {
	case errors.As(err, &tooLarge), errors.Is(err, kafka.MessageSizeTooLarge), errors.Is(err, kafka.RecordListTooLarge):
		return reasonTooLarge
	case errors.Is(err, kafka.TopicAuthorizationFailed), errors.Is(err, kafka.ClusterAuthorizationFailed),
		errors.Is(err, kafka.SASLAuthenticationFailed):
		return reasonUnauthorized
	case errors.Is(err, kafka.InvalidRecord), errors.Is(err, kafka.InvalidMessage), errors.Is(err, kafka.InvalidTopic),
		errors.Is(err, kafka.PolicyViolation), errors.Is(err, kafka.InvalidTimestamp), errors.Is(err, kafka.InvalidRequiredAcks):
		return reasonInvalid
	}
	return reasonOther
}

// stopTransport is the transport every kafka-go call of the bridge goes
// through. After stop ends, requests fail at once with ErrClosed and
// requests in flight are cancelled, so kafka-go's retry loops (which Close
// would otherwise wait for) end. Routing failures of the transport's cached
// layout come back as a temporary layoutError.
type stopTransport struct {
	rt   kafka.RoundTripper
	stop context.Context
}

// RoundTrip implements kafka.RoundTripper.
func (t *stopTransport) RoundTrip(ctx context.Context, addr net.Addr, req kafka.Request) (kafka.Response, error) {
	if t.stop.Err() != nil {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(t.stop, cancel)()
	r, err := t.rt.RoundTrip(ctx, addr, req)
	switch {
	case err == nil:
	case t.stop.Err() != nil:
		return nil, ErrClosed
	case errors.Is(err, protocol.ErrNoTopic), errors.Is(err, protocol.ErrNoPartition), errors.Is(err, protocol.ErrNoLeader):
		return r, layoutError{err}
	}
	return r, err
}

// layoutError marks a request the transport could not route because its
// cached cluster layout lacks the topic, the partition or the partition's
// leader (a topic just created or deleted, a leader election). kafka-go does
// not retry those by itself; marked temporary, they are retried in order by
// its attempt loop until a metadata refresh fixes the layout.
type layoutError struct{ err error }

func (e layoutError) Error() string { return e.err.Error() }
func (e layoutError) Unwrap() error { return e.err }

// Temporary reports true: a metadata refresh may fix the layout.
func (e layoutError) Temporary() bool { return true }

// attemptLogger receives kafka-go's error log lines, one per failed produce
// attempt: it counts them and logs once per burst.
type attemptLogger struct{ b *Bridge }

// Printf implements kafka.Logger.
func (l attemptLogger) Printf(format string, args ...any) {
	l.b.metrics.produceError(reasonAttempt)
	if l.b.stopCtx.Err() != nil {
		return
	}
	l.b.errLog.warn("bridge: kafka produce attempt failed; kafka-go retries", slog.String("detail", fmt.Sprintf(format, args...)))
}

// burstLog logs at most one line per interval and reports how many it
// suppressed since the last one.
type burstLog struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *burstLog) warn(msg string, attrs ...slog.Attr) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.suppressed, l.last = 0, now
	l.mu.Unlock()
	if n > 0 {
		attrs = append(attrs, slog.Int("suppressed", n))
	}
	l.log.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}
