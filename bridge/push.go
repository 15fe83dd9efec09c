package bridge

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// What happens to one push, top to bottom:
//
//	HandlePush      count it, build its record (newRecord: route + encode)
//	  submit        take window room (the only wait), then the producer or,
//	                while spilling, the spool (spool_path.go)
//	promise         kgo calls it once Kafka acked or refused the record
//	  finish        claim once, count once, release once, answer once
//
// Produce retries are kgo's alone: the client retries a partition's records
// in place, idempotently and in order, for as long as the bridge runs. What
// reaches finish with an error is a refusal for good (too large, invalid,
// not authorized) or the client closing.

// maxInlineHeaders is the most headers a record carries without another
// allocation; topics.AppendHeaders writes at most 8.
const maxInlineHeaders = 8

// codeProduceFailed is the FPNN code of the error answer for a push Kafka
// refused for good ("unknown error"; the ex says why).
const codeProduceFailed = 20001

// Record states (record.state): exactly one of Kafka's promise, the submit
// path and the spool wins a record, so it is answered once and its window
// room freed once.
const (
	stInflight int32 = iota // handed to Kafka (or about to be), not settled
	stSettled               // settled by the Kafka path: acked, refused or abandoned
	stSpilled               // taken by the spool: answered once its append is durable
)

// record is one push on its way to Kafka: the Kafka record, the reply to
// send and what settling needs. It is the kgo.Record's Context (record
// implements context.Context as a never-cancelled context), so the promise
// finds it without a closure or a map; the spool stores the same record.
type record struct {
	kr      kgo.Record
	reply   rtm.Reply
	start   time.Time // when HandlePush began: push → answer latency, ack budget
	size    int64     // window bytes held
	code    int       // non-zero: answer with this error code once durable (a dead letter)
	ex      string    // the error answer's text
	state   atomic.Int32
	copyOut atomic.Int32 // spilled records only: what became of the producer's copy (copy*)
	copyID  uint64       // spilled records only: the id the spool record carries
	atMs    int64        // when the record was made (unix ms): its spool time (kr.Timestamp is the producer's once handed over)
	ts      *topicStats  // its topic's counts
	hdrs    [maxInlineHeaders]kgo.RecordHeader
}

// record is a context.Context that is never cancelled: kgo only reads
// Done (nil: never) and Value.
func (r *record) Deadline() (time.Time, bool) { return time.Time{}, false }
func (r *record) Done() <-chan struct{}       { return nil }
func (r *record) Err() error                  { return nil }
func (r *record) Value(any) any               { return nil }

// claim takes the record for the Kafka path; false means the spool took it.
func (r *record) claim() bool { return r.state.CompareAndSwap(stInflight, stSettled) }

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
	if b.ha != nil && b.fence() {
		b.drop(reasonFenced) // the lease ended: the active instance gets the redelivery
		return
	}
	b.stats.push(p.Scope, p.Kind)
	rec := b.newRecord(p, r)
	b.submit(ctx, rec)
}

// newRecord routes p and encodes its record into one new allocation.
func (b *Bridge) newRecord(p *rtm.Push, reply rtm.Reply) *record {
	rec := &record{reply: reply, start: time.Now()}
	sp := b.scratch.Get().(*[]byte)
	buf := (*sp)[:0]
	now := b.cfg.Now()
	var (
		topic     string
		vlen, kln int
		hdrArr    [maxInlineHeaders]topics.Header
		hdrs      []topics.Header
	)
	switch {
	case p.Err != nil:
		topic = b.router.DeadLetterTopic()
		rec.code, rec.ex = rtm.CodeDecoding, p.Err.Error()
		buf = AppendDeadLetter(buf, p, p.Err, now.UnixMilli())
		vlen = len(buf)
	default:
		topic = b.router.Topic(p)
		if topic == b.router.DeadLetterTopic() {
			err := fmt.Errorf("bridge: no topic for a %s push of kind %s", p.Scope, p.Kind)
			rec.code, rec.ex = rtm.CodeDecoding, err.Error()
			buf = AppendDeadLetter(buf, p, err, now.UnixMilli())
			vlen = len(buf)
			break
		}
		buf = AppendRecord(buf, b.cfg.Format, p, b.cfg.PID, now.UnixMilli())
		vlen = len(buf)
		buf = b.router.AppendKey(buf, p)
		kln = len(buf) - vlen
		hdrs, buf = topics.AppendHeaders(hdrArr[:0], buf, p, b.cfg.PID)
	}
	total := vlen + kln
	for i := range hdrs {
		total += len(hdrs[i].Value)
	}
	// The one allocation besides the record that outlives HandlePush:
	// value, key and header values.
	data := make([]byte, 0, total)
	data = append(data, buf[:vlen+kln]...)
	kr := &rec.kr
	kr.Topic, kr.Value, kr.Timestamp, kr.Context = topic, data[:vlen:vlen], now, rec
	rec.atMs, rec.ts = now.UnixMilli(), b.stats.topic(topic)
	if kln > 0 {
		kr.Key = data[vlen : vlen+kln : vlen+kln]
	}
	for i, h := range hdrs {
		s := len(data)
		data = append(data, h.Value...)
		rec.hdrs[i] = kgo.RecordHeader{Key: h.Key, Value: data[s:len(data):len(data)]}
	}
	kr.Headers = rec.hdrs[:len(hdrs)]
	rec.size = int64(total)
	if cap(buf) <= 1<<20 { // keep small buffers only, so one huge push does not pin memory
		*sp = buf[:0]
		b.scratch.Put(sp)
	}
	return rec
}

// submit takes window room for rec — the one wait on the push path — and
// hands it to the producer, or to the spool while the bridge spills. A
// record too large for Kafka is refused here, before it can be spilled.
func (b *Bridge) submit(ctx context.Context, rec *record) {
	if err := b.win.acquire(ctx, rec.size); err != nil {
		reason := reasonCanceled
		if errors.Is(err, ErrClosed) {
			reason = reasonClosed
		}
		b.drop(reason)
		return
	}
	// The wait for room can be long: an HA lease that ended meanwhile
	// means another instance may be writing this key's later pushes.
	if b.ha != nil && b.fence() {
		b.win.release(rec.size)
		b.drop(reasonFenced)
		return
	}
	if b.sp != nil && b.routeToSpool(ctx, rec) {
		return
	}
	b.produce(rec, false)
}

// produce hands rec, whose window room is held, to the producer. The
// producer's buffer is larger than the window, so this does not wait; from
// a promise (inPromise), where waiting would deadlock the client, it uses
// TryProduce, which fails at once instead.
func (b *Bridge) produce(rec *record, inPromise bool) {
	if !inPromise {
		// The read side of the recovery's barrier: a recovery that starts
		// after the check below purges the topic only once this record is
		// in the producer, so it fails there and is parked in order. A
		// promise never takes it (it must not wait for the barrier).
		b.rec.gate.RLock()
		defer b.rec.gate.RUnlock()
	}
	if b.rec.active.Load() > 0 && b.parkIfRecovering(rec) {
		return // its topic is being re-created: it waits behind the records parked before it
	}
	rec.ts.inflight.Add(1)
	if inPromise {
		if b.sp != nil {
			b.sp.track(rec)
		}
		b.cl.TryProduce(b.stopCtx, &rec.kr, b.promise)
		return
	}
	b.cl.Produce(b.stopCtx, &rec.kr, b.promise)
}

// promise is the producer's callback for every record the bridge hands it.
// kgo calls promises one at a time, so it must not block: it answers
// (queued by the connection, never waiting on the network), counts and
// frees window room.
func (b *Bridge) promise(kr *kgo.Record, err error) {
	b.finish(kr.Context.(*record), err)
}

// finish is the one place that settles a record: claim once, count once,
// release once, answer once.
//
//   - Acked: answered OK (or with its dead-letter error).
//   - The producer closed: left unanswered (the gateway redelivers it).
//   - Refused for good: written to the dead-letter topic when it is not
//     already a dead letter, then answered with an error; the records
//     behind it are not held up.
//
// A record the spool took (stSpilled) was answered from there; finish only
// tells the spool what became of the producer's copy.
func (b *Bridge) finish(rec *record, err error) {
	rec.ts.inflight.Add(-1)
	if err == nil {
		b.stats.ack(rec.ts)
	} else if topicRecreated(err) && rec.state.Load() == stInflight && b.stopCtx.Err() == nil {
		b.park(rec) // not refused: produced again once the producer forgot the old topic
		return
	}
	if !rec.claim() {
		b.sp.copyDone(rec, err) // the spool took it and answered it
		return
	}
	switch {
	case err == nil:
		b.answer(rec)
	case errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.Canceled):
		b.drop(reasonClosed)
		b.win.release(rec.size)
	default:
		b.refuse(rec, err)
	}
}

// answer answers a record that is durable (acked by Kafka, or fsynced to
// the spool) and frees its window room; its state has been claimed. The
// counting and the room come first, so whoever sees the answer sees them.
func (b *Bridge) answer(rec *record) {
	var err error
	if rec.code != 0 {
		b.stats.deadLetters.Add(1)
		b.recent.deadLetter(rec.ex, rec.size)
		b.win.release(rec.size)
		err = rec.reply.Error(rec.code, rec.ex)
	} else {
		b.stats.acked.Add(1)
		b.metrics.observeLatency(time.Since(rec.start))
		b.win.release(rec.size)
		err = rec.reply.OK()
	}
	if errors.Is(err, rtm.ErrConnClosed) {
		// In Kafka, but the gateway will not hear it: it redelivers, and the
		// duplicate can be recognised by its rtm-mid header.
		b.stats.lost.Add(1)
	}
}

// refuse settles a record Kafka refused for good: a data record becomes a
// dead letter (same key and headers; the value describes the refusal and
// carries the original value when it fits) produced in its place, keeping
// its window room; its push is answered with an error once that is acked.
// A dead letter that is refused too is answered with the error at once.
func (b *Bridge) refuse(rec *record, err error) {
	reason := classify(err)
	b.stats.refused.Add(1)
	b.stats.produceErr(reason)
	topic := rec.kr.Topic
	b.errLog.warn("bridge: Kafka refused a record for good; dead-lettering it and answering the push with an error",
		slog.String("topic", topic), slog.String("reason", reason), slog.String("error", err.Error()))
	ex := fmt.Sprintf("bridge: produce %s: %v", topic, err)
	if rec.code != 0 || topic == b.router.DeadLetterTopic() {
		b.win.release(rec.size)
		if aerr := rec.reply.Error(codeProduceFailed, ex); errors.Is(aerr, rtm.ErrConnClosed) {
			b.stats.lost.Add(1)
		}
		return
	}
	rec.code, rec.ex = codeProduceFailed, ex
	rec.ts = b.stats.topic(b.router.DeadLetterTopic())
	rec.kr = kgo.Record{
		Topic: b.router.DeadLetterTopic(), Key: rec.kr.Key, Headers: rec.kr.Headers, Timestamp: rec.kr.Timestamp,
		Value:   appendRefusal(nil, &rec.kr, reason, err, b.cfg.Now().UnixMilli(), refusalValueMax(b.cfg.BatchBytes)),
		Context: rec,
	}
	rec.state.Store(stInflight)
	b.produce(rec, true)
}

// refusalValueMax is the largest refused value a dead letter carries: its
// base64 (4/3 of it) and the dead letter's other fields must fit in one
// batch of batchBytes.
func refusalValueMax(batchBytes int32) int {
	return max(0, int(batchBytes)-16<<10) / 4 * 3
}

// appendRefusal appends the JSON dead letter of a record Kafka refused:
// {"error", "reason", "topic", "key_b64", "value_bytes", "value_b64" (when
// the value is at most maxValue bytes), "at"}; the original headers travel
// as the dead letter's headers.
func appendRefusal(dst []byte, kr *kgo.Record, reason string, err error, atMs int64, maxValue int) []byte {
	dst = append(dst, `{"error":`...)
	dst = recAppendJSONString(dst, err.Error())
	dst = append(dst, `,"reason":`...)
	dst = recAppendJSONString(dst, reason)
	dst = append(dst, `,"topic":`...)
	dst = recAppendJSONString(dst, kr.Topic)
	if kr.Key != nil {
		dst = append(dst, `,"key_b64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, kr.Key)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"value_bytes":`...)
	dst = strconv.AppendInt(dst, int64(len(kr.Value)), 10)
	if len(kr.Value) <= maxValue {
		dst = append(dst, `,"value_b64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, kr.Value)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"at":`...)
	dst = strconv.AppendInt(dst, atMs, 10)
	return append(dst, '}')
}

// drop counts a push that is left unanswered: the gateway redelivers it.
func (b *Bridge) drop(reason string) {
	b.stats.dropped.Add(1)
	b.stats.produceErr(reason)
}
