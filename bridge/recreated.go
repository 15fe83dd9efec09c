package bridge

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// A topic deleted and re-created while the bridge runs gets a new topic id.
// The producer (franz-go) then fails every record of the topic with
// UNKNOWN_TOPIC_ID until the topic is purged from it and produced to anew.
// That is no refusal of the records: the bridge parks them, in the order
// their promises arrive (per partition, the order they were produced),
// purges the topic, waits until the producer has handed back every record of
// the topic, and produces the parked ones again in order. New records of the
// topic queue behind them meanwhile, so order per key holds. They keep their
// window room throughout: a long recovery back-pressures the gateway, as an
// outage does.
//
// A produce that read active == 0 just before the first park must not reach
// the producer after the purge (it would be written to the new topic before
// the parked records of its key: found in review): the push path holds
// gate's read side from that check through Produce, and recoverLoop passes
// through the write side before it purges. Only recoverLoop's own goroutine
// takes the write side, and promises never take the read side, so no
// promise called inline by Produce can wait on it.

// recreated is the state of that recovery.
type recreated struct {
	active atomic.Int32 // topics being recovered; 0 keeps the push path to one atomic load
	gate   sync.RWMutex // push path: read side around check + Produce; recoverLoop: write side before the purge

	mu     sync.Mutex
	queues map[string][]*record // parked records by topic, in order
}

// purgedErr is the text of franz-go's (unexported) error for records failed
// by PurgeTopicsFromProducing.
const purgedErr = "topic purged while buffered"

// topicRecreated reports whether err means "the topic was re-created", not
// a refusal: UNKNOWN_TOPIC_ID, or a record failed by the purge that follows.
func topicRecreated(err error) bool {
	return errors.Is(err, kerr.UnknownTopicID) || (err != nil && err.Error() == purgedErr)
}

// park queues rec (its promise reported its topic re-created) and starts
// the topic's recovery if it is not running.
func (b *Bridge) park(rec *record) {
	r := &b.rec
	topic := rec.kr.Topic
	r.mu.Lock()
	q, running := r.queues[topic]
	if r.queues == nil {
		r.queues = make(map[string][]*record)
	}
	r.queues[topic] = append(q, rec)
	if !running {
		r.active.Add(1)
	}
	r.mu.Unlock()
	if !running {
		go b.recoverLoop(topic)
	}
}

// parkIfRecovering queues rec behind its topic's parked records when that
// topic is being recovered, and reports whether it did.
func (b *Bridge) parkIfRecovering(rec *record) bool {
	r := &b.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	q, running := r.queues[rec.kr.Topic]
	if !running {
		return false
	}
	r.queues[rec.kr.Topic] = append(q, rec)
	return true
}

// recoverTopic starts the recovery of topic with nothing parked (the spool
// drain found it re-created).
func (b *Bridge) recoverTopic(topic string) {
	r := &b.rec
	r.mu.Lock()
	_, running := r.queues[topic]
	if !running {
		if r.queues == nil {
			r.queues = make(map[string][]*record)
		}
		r.queues[topic] = nil
		r.active.Add(1)
	}
	r.mu.Unlock()
	if !running {
		go b.recoverLoop(topic)
	}
}

// errParkedNotProduced is the fate of a parked record's producer copy when
// the record was spilled before the recovery reached it.
var errParkedNotProduced = errors.New("bridge: parked record spilled before it was produced again")

// recoverLoop purges topic from the producer, waits until every record of
// it is back from the producer, then produces the parked records in order
// until none are left.
func (b *Bridge) recoverLoop(topic string) {
	r := &b.rec
	ts := b.stats.topic(topic)
	b.log.Warn("bridge: topic was deleted and re-created: producing its records again, in order, to the new topic",
		slog.String("topic", topic))
	r.gate.Lock() // a barrier: every produce that missed the registration is in the producer now
	r.gate.Unlock()
	b.cl.PurgeTopicsFromProducing(topic)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for ts.inflight.Load() > 0 {
		select {
		case <-t.C:
		case <-b.stopCtx.Done():
			return
		}
	}
	n := 0
	for {
		r.mu.Lock()
		q := r.queues[topic]
		if len(q) == 0 {
			delete(r.queues, topic)
			r.active.Add(-1)
			r.mu.Unlock()
			b.log.Info("bridge: re-created topic recovered", slog.String("topic", topic), slog.Int("records_produced_again", n))
			return
		}
		r.queues[topic] = q[len(q):]
		r.mu.Unlock()
		for _, rec := range q {
			if rec.state.Load() != stInflight {
				// Spilled meanwhile: the spool has it, under a copy id the
				// drain waits on. This copy is never produced: say so, or
				// the drain would wait for it forever.
				if b.sp != nil {
					b.sp.copyDone(rec, errParkedNotProduced)
				}
				continue
			}
			rec.ts.inflight.Add(1)
			b.cl.Produce(b.stopCtx, &rec.kr, b.promise)
			n++
		}
	}
}

// dropParked leaves every parked record unanswered (the bridge is closing:
// the gateway redelivers them) and frees its room.
func (b *Bridge) dropParked() {
	r := &b.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	for topic, q := range r.queues {
		for _, rec := range q {
			if rec.claim() {
				b.drop(reasonClosed)
				b.win.release(rec.size)
			}
		}
		delete(r.queues, topic)
	}
}
