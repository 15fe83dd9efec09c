package bridge

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// Produce error reasons, the values of the reason label of
// rtm2kafka_produce_errors_total. The set is fixed so the label's cardinality
// is bounded.
const (
	reasonAttempt      = "attempt"      // one failed produce attempt that kafka-go retries
	reasonTooLarge     = "too_large"    // record larger than the broker or writer allows
	reasonInvalid      = "invalid"      // broker rejected the record (corrupt, invalid, policy)
	reasonUnauthorized = "unauthorized" // topic or cluster authorization failed
	reasonOther        = "other"        // any other error kafka-go gave up on
	reasonClosed       = "closed"       // the bridge closed before the record was acked
	reasonCanceled     = "canceled"     // the push's context ended before it was handed to Kafka
	reasonSpool        = "spool"        // the spool could not take a record (disk full, I/O error): left unanswered
)

var produceReasons = [...]string{reasonAttempt, reasonTooLarge, reasonInvalid, reasonUnauthorized, reasonOther, reasonClosed, reasonCanceled, reasonSpool}

// Number of scope and kind values, including the invalid zero of each.
const (
	numScopes = int(rtm.ScopeEvent) + 1
	numKinds  = int(rtm.KindEvent) + 1
)

// latencyBuckets spans 0.5 ms to 10 s for the push → ack latency.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics holds the bridge's Prometheus collectors, registered under the
// "rtm2kafka" namespace on a registry the caller owns. Every labelled series
// is created up front, so counting on the push path allocates nothing. A nil
// *Metrics is valid: every method is then a no-op.
type Metrics struct {
	pushes        [numScopes][numKinds]prometheus.Counter
	produceErrors map[string]prometheus.Counter // fixed at construction, read-only after
	deadLetters   prometheus.Counter
	inflightRecs  prometheus.Gauge
	inflightBytes prometheus.Gauge
	latency       prometheus.Histogram
	linkState     *prometheus.GaugeVec
	ctlApplied    prometheus.Counter
	ctlRejected   prometheus.Counter
	answersLost   prometheus.Counter

	spilled    prometheus.Counter
	drained    prometheus.Counter
	spoolDups  prometheus.Counter
	spoolFull  prometheus.Counter
	spoolStats *spoolCollector

	linkMu     sync.Mutex
	linkLabels []string // states seen so far, to zero the others
}

// NewMetrics creates the bridge's collectors and registers them on reg (never
// the global default registry: cmd makes its own). It panics if a collector
// is already registered on reg, like [prometheus.MustRegister].
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "rtm2kafka"
	m := &Metrics{produceErrors: make(map[string]prometheus.Counter, len(produceReasons))}
	pushes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "pushes_total",
		Help: "Pushes handed to the bridge, by scope and kind (unknown for undecodable pushes).",
	}, []string{"scope", "kind"})
	for s := range numScopes {
		for k := range numKinds {
			m.pushes[s][k] = pushes.WithLabelValues(rtm.Scope(s).String(), rtm.Kind(k).String())
		}
	}
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "produce_errors_total",
		Help: "Failed produce attempts (reason=attempt, retried by the writer) and records given up on, by reason.",
	}, []string{"reason"})
	for _, r := range produceReasons {
		m.produceErrors[r] = errs.WithLabelValues(r)
	}
	m.deadLetters = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "dead_letters_total",
		Help: "Pushes written to the dead-letter topic because they could not be decoded or routed.",
	})
	m.inflightRecs = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Name: "inflight_records",
		Help: "Records handed to Kafka and not yet settled (the window's fill, by count).",
	})
	m.inflightBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Name: "inflight_bytes",
		Help: "Bytes of records handed to Kafka and not yet settled (the window's fill, by size).",
	})
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Name: "push_ack_latency_seconds",
		Help:    "Time from a push reaching the bridge to its Kafka ack.",
		Buckets: latencyBuckets,
	})
	m.linkState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: ns, Name: "link_state",
		Help: "1 for the RTM link's current state, 0 for the others.",
	}, []string{"state"})
	ctl := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "control_commands_total",
		Help: "Control-topic commands, by result (applied or rejected).",
	}, []string{"result"})
	m.ctlApplied = ctl.WithLabelValues("applied")
	m.ctlRejected = ctl.WithLabelValues("rejected")
	m.answersLost = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "answers_lost_total",
		Help: "Pushes acked by Kafka whose answer could not be sent because the RTM link had closed.",
	})
	m.spilled = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "spool_spilled_total",
		Help: "Records fsynced to the spool and answered from there (Kafka too slow or down).",
	})
	m.drained = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "spool_drained_total",
		Help: "Spooled records produced to Kafka, acked and trimmed from the spool.",
	})
	m.spoolDups = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "spool_duplicates_total",
		Help: "Spilled records that Kafka acked as well (written twice; consumers dedupe on rtm-mid).",
	})
	m.spoolFull = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "spool_full_total",
		Help: "Times a push had to wait because the spool's disk budget (SPOOL_MAX_BYTES) was exhausted.",
	})
	m.spoolStats = &spoolCollector{}
	reg.MustRegister(pushes, errs, m.deadLetters, m.inflightRecs, m.inflightBytes,
		m.latency, m.linkState, ctl, m.answersLost,
		m.spilled, m.drained, m.spoolDups, m.spoolFull, m.spoolStats)
	return m
}

// push counts one push by scope and kind; out-of-range values count as unknown.
func (m *Metrics) push(s rtm.Scope, k rtm.Kind) {
	if m == nil {
		return
	}
	if int(s) >= numScopes {
		s = 0
	}
	if int(k) >= numKinds {
		k = 0
	}
	m.pushes[s][k].Inc()
}

func (m *Metrics) produceError(reason string) {
	if m == nil {
		return
	}
	m.produceErrors[reason].Inc()
}

func (m *Metrics) deadLetter() {
	if m != nil {
		m.deadLetters.Inc()
	}
}

func (m *Metrics) setInflight(records int, bytes int64) {
	if m == nil {
		return
	}
	m.inflightRecs.Set(float64(records))
	m.inflightBytes.Set(float64(bytes))
}

func (m *Metrics) acked(d time.Duration) {
	if m != nil {
		m.latency.Observe(d.Seconds())
	}
}

func (m *Metrics) answerLost() {
	if m != nil {
		m.answersLost.Inc()
	}
}

func (m *Metrics) control(applied bool) {
	if m == nil {
		return
	}
	if applied {
		m.ctlApplied.Inc()
	} else {
		m.ctlRejected.Inc()
	}
}

// SetLinkState sets the link_state gauge to 1 for state and to 0 for every
// other state seen before. state should come from a small fixed set (the
// session's state names), since each value becomes a series.
func (m *Metrics) SetLinkState(state string) {
	if m == nil {
		return
	}
	m.linkMu.Lock()
	defer m.linkMu.Unlock()
	known := false
	for _, l := range m.linkLabels {
		if l == state {
			known = true
			continue
		}
		m.linkState.WithLabelValues(l).Set(0)
	}
	if !known {
		m.linkLabels = append(m.linkLabels, state)
	}
	m.linkState.WithLabelValues(state).Set(1)
}
