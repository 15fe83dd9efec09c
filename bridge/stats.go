package bridge

import (
	"sync/atomic"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// Number of scope and kind values, including the invalid zero of each.
const (
	numScopes = int(rtm.ScopeEvent) + 1
	numKinds  = int(rtm.KindEvent) + 1
)

// Produce error reasons: the values of the reason label of
// rtm2kafka_produce_errors_total and the keys of Stats.ProduceErrors. The
// set is fixed so the label's cardinality is bounded.
const (
	reasonAttempt      = "attempt"      // a request to a broker failed; the client retries it
	reasonTooLarge     = "too_large"    // record larger than the broker or the producer allows
	reasonInvalid      = "invalid"      // broker rejected the record (corrupt, invalid, policy)
	reasonUnauthorized = "unauthorized" // topic or cluster authorization failed
	reasonOther        = "other"        // any other refusal for good
	reasonClosed       = "closed"       // the bridge closed before the record was acked: left unanswered
	reasonCanceled     = "canceled"     // the push's context ended before it was handed to Kafka: left unanswered
	reasonSpool        = "spool"        // the spool could not take a record (disk full, I/O error): left unanswered
	reasonFenced       = "fenced"       // HA: no lease to answer (lease ended, or a standby): left unanswered for the active one
)

var produceReasons = [...]string{reasonAttempt, reasonTooLarge, reasonInvalid, reasonUnauthorized, reasonOther, reasonClosed, reasonCanceled, reasonSpool, reasonFenced}

// counters are the bridge's counts. /status (Stats) and /metrics (the
// Metrics collector) both read these, so each event is counted once.
type counters struct {
	pushes       [numScopes][numKinds]atomic.Uint64
	acked        atomic.Uint64 // answered OK: acked by Kafka or fsynced to the spool
	deadLetters  atomic.Uint64 // dead-lettered (undecodable, unroutable or refused) and answered with an error
	refused      atomic.Uint64 // records Kafka refused for good
	dropped      atomic.Uint64 // left unanswered
	lost         atomic.Uint64 // answer could not be sent: the link was gone
	errs         [len(produceReasons)]atomic.Uint64
	ctlApplied   atomic.Uint64
	ctlRejected  atomic.Uint64
	spilled      atomic.Uint64
	drained      atomic.Uint64
	drainSkipped atomic.Uint64 // spooled records the drain skipped: their first copy reached Kafka
	spoolFull    atomic.Uint64
	lastAckMs    atomic.Int64

	// topics holds per-topic counts: records Kafka acked, and records
	// handed to the producer and not yet settled. The map is built in New
	// from the router's topics and only read afterwards; other holds any
	// topic not in it (none expected).
	topics map[string]*topicStats
	other  topicStats
}

// topicStats are one topic's counts; a record keeps a pointer to its
// topic's, so the push path looks the topic up once.
type topicStats struct {
	acked    atomic.Uint64
	inflight atomic.Int64 // handed to the producer, promise not yet called
}

func (c *counters) init(r *topics.Router) {
	c.topics = make(map[string]*topicStats)
	for _, t := range r.Topics() {
		c.topics[t] = new(topicStats)
	}
	c.topics[r.DeadLetterTopic()] = new(topicStats)
}

// topic returns topic's counts.
func (c *counters) topic(topic string) *topicStats {
	if ts := c.topics[topic]; ts != nil {
		return ts
	}
	return &c.other
}

// acked counts one record Kafka acked.
func (c *counters) ack(ts *topicStats) {
	ts.acked.Add(1)
	c.lastAckMs.Store(time.Now().UnixMilli())
}

func (c *counters) produceErr(reason string) {
	for i, r := range produceReasons {
		if r == reason {
			c.errs[i].Add(1)
			return
		}
	}
}

func (c *counters) push(s rtm.Scope, k rtm.Kind) {
	if int(s) >= numScopes {
		s = 0
	}
	if int(k) >= numKinds {
		k = 0
	}
	c.pushes[s][k].Add(1)
}

// Stats is a snapshot of the bridge's counters, for /status.
type Stats struct {
	Pushes          uint64            `json:"pushes"`            // pushes handed to HandlePush while open
	Acked           uint64            `json:"acked"`             // answered OK after their ack (with a spool: or their fsync there)
	Produced        map[string]uint64 `json:"produced_by_topic"` // records Kafka acked, by topic
	DeadLetters     uint64            `json:"dead_letters"`      // dead-lettered and answered with an error
	Refused         uint64            `json:"refused"`           // records Kafka refused for good
	Dropped         uint64            `json:"dropped"`           // left unanswered: closing, cancelled or the spool refused
	AnswersLost     uint64            `json:"answers_lost"`      // in Kafka, but the link was gone
	ProduceErrors   map[string]uint64 `json:"produce_errors"`    // by reason
	InFlightRecords int               `json:"inflight_records"`  // records in the window now
	InFlightBytes   int64             `json:"inflight_bytes"`    // bytes in the window now
	LastAckAgeMs    int64             `json:"last_ack_age_ms"`   // since Kafka last acked a record; -1 before the first
	ControlApplied  uint64            `json:"control_applied"`   // control commands applied
	ControlRejected uint64            `json:"control_rejected"`  // control commands rejected
	Spilled         uint64            `json:"spilled"`           // records answered from the spool (fsynced there)
	Drained         uint64            `json:"drained"`           // spooled records produced to Kafka by the drain
	DrainSkipped    uint64            `json:"drain_skipped"`     // spooled records whose first copy Kafka acked: not written again
}

// Stats returns the bridge's counters.
func (b *Bridge) Stats() Stats {
	c := &b.stats
	r, n := b.win.inflight()
	s := Stats{
		Acked:           c.acked.Load(),
		Produced:        make(map[string]uint64, len(c.topics)),
		DeadLetters:     c.deadLetters.Load(),
		Refused:         c.refused.Load(),
		Dropped:         c.dropped.Load(),
		AnswersLost:     c.lost.Load(),
		ProduceErrors:   make(map[string]uint64, len(produceReasons)),
		InFlightRecords: r,
		InFlightBytes:   n,
		LastAckAgeMs:    -1,
		ControlApplied:  c.ctlApplied.Load(),
		ControlRejected: c.ctlRejected.Load(),
		Spilled:         c.spilled.Load(),
		Drained:         c.drained.Load(),
		DrainSkipped:    c.drainSkipped.Load(),
	}
	for i := range c.pushes {
		for j := range c.pushes[i] {
			s.Pushes += c.pushes[i][j].Load()
		}
	}
	for t, v := range c.topics {
		s.Produced[t] = v.acked.Load()
	}
	for i, r := range produceReasons {
		s.ProduceErrors[r] = c.errs[i].Load()
	}
	if ms := c.lastAckMs.Load(); ms > 0 {
		s.LastAckAgeMs = max(0, b.cfg.Now().UnixMilli()-ms)
	}
	return s
}
