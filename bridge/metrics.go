package bridge

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtm2kafka/rtm2kafka/bridge/spool"
	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// latencyBuckets spans 0.5 ms to 10 s for the push → answer latency.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics exports the bridge's state to Prometheus under the "rtm2kafka"
// namespace, on a registry the caller owns. Counters are read at scrape
// time from the same counters /status shows (Bridge.Stats), so every event
// is counted once; the latency histogram and the link-state gauge are its
// own. A nil *Metrics is valid: every method is then a no-op.
type Metrics struct {
	latency   prometheus.Histogram
	linkState *prometheus.GaugeVec
	b         atomic.Pointer[Bridge] // attached by New

	linkMu     sync.Mutex
	linkLabels []string // states seen so far, to zero the others
}

// NewMetrics creates the bridge's collectors and registers them on reg (never
// the global default registry: cmd makes its own). It panics if a collector
// is already registered on reg, like [prometheus.MustRegister].
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{}
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "rtm2kafka", Name: "push_ack_latency_seconds",
		Help:    "Time from a push reaching the bridge to its answer after Kafka's ack.",
		Buckets: latencyBuckets,
	})
	m.linkState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "rtm2kafka", Name: "link_state",
		Help: "1 for the RTM link's current state, 0 for the others.",
	}, []string{"state"})
	reg.MustRegister(m.latency, m.linkState, (*statsCollector)(m))
	return m
}

func (m *Metrics) attach(b *Bridge) {
	if m != nil {
		m.b.Store(b)
	}
}

func (m *Metrics) observeLatency(d time.Duration) {
	if m != nil {
		m.latency.Observe(d.Seconds())
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

// statsCollector exports the attached bridge's counters at scrape time.
type statsCollector Metrics

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("rtm2kafka_"+name, help, labels, nil)
}

// The descriptions are immutable values, built once per collector call.
type statsDescs struct {
	pushes, produced, produceErrs, deadLetters, refused, dropped, answersLost,
	inflightRecs, inflightBytes, lastAck, control *prometheus.Desc
	spilled, drained, skipped, spoolFull, spoolBytes, spoolMax, spoolRecords, spoolAge, spoolDisk,
	spilling, fsync, recDropped, recTrunc *prometheus.Desc
	takeovers, handovers, generation, fenced *prometheus.Desc
}

func newStatsDescs() *statsDescs {
	return &statsDescs{
		pushes:        desc("pushes_total", "Pushes handed to the bridge, by scope and kind (unknown for undecodable pushes).", "scope", "kind"),
		produced:      desc("records_produced_total", "Records Kafka acknowledged, by topic.", "topic"),
		produceErrs:   desc("produce_errors_total", "Failed broker requests the client retries (reason=attempt), records refused for good and pushes left unanswered, by reason.", "reason"),
		deadLetters:   desc("dead_letters_total", "Pushes written to the dead-letter topic (undecodable, unroutable or refused by Kafka) and answered with an error."),
		refused:       desc("records_refused_total", "Records Kafka refused for good (too large, invalid, not authorized)."),
		dropped:       desc("pushes_unanswered_total", "Pushes left unanswered (bridge closing, spool failure): the gateway redelivers them."),
		answersLost:   desc("answers_lost_total", "Pushes in Kafka whose answer could not be sent because the RTM link had closed."),
		inflightRecs:  desc("inflight_records", "Records handed to Kafka and not yet settled (the window's fill, by count)."),
		inflightBytes: desc("inflight_bytes", "Bytes of records handed to Kafka and not yet settled (the window's fill, by size)."),
		lastAck:       desc("last_ack_age_seconds", "Seconds since Kafka last acknowledged a record; -1 before the first."),
		control:       desc("control_commands_total", "Control-topic commands, by result (applied or rejected).", "result"),
		spilled:       desc("spool_spilled_total", "Records fsynced to the spool and answered from there (Kafka too slow or down)."),
		drained:       desc("spool_drained_total", "Spooled records the drain produced to Kafka."),
		skipped:       desc("spool_drain_skipped_total", "Spooled records not written again because Kafka acked their first copy."),
		spoolFull:     desc("spool_full_total", "Times a push had to wait because the spool's disk budget (SPOOL_MAX_BYTES) was exhausted."),
		spoolBytes:    desc("spool_bytes", "Encoded bytes of spooled records not yet drained to Kafka."),
		spoolMax:      desc("spool_max_bytes", "The spool's disk budget (SPOOL_MAX_BYTES)."),
		spoolRecords:  desc("spool_records", "Spooled records not yet drained to Kafka."),
		spoolAge:      desc("spool_oldest_age_seconds", "Age of the oldest spooled record; 0 when empty."),
		spoolDisk:     desc("spool_disk_bytes", "Size of the spool's segment files, trimmed prefix included."),
		spilling:      desc("spool_spilling", "1 while pushes go to the spool (degraded), else 0."),
		fsync:         desc("spool_fsync_seconds", "Duration of the spool's group-commit fsyncs."),
		recDropped:    desc("spool_recovered_dropped_records", "Records lost with a torn or corrupt tail cut when the spool was opened (estimate)."),
		recTrunc:      desc("spool_recovered_truncated_bytes", "Bytes cut from torn or corrupt segment tails when the spool was opened."),
		takeovers:     desc("ha_takeovers_total", "Times this instance became the active one (BRIDGE_HA)."),
		handovers:     desc("ha_handovers_total", "Times this instance handed the active role to a standby before stopping (BRIDGE_HA)."),
		generation:    desc("ha_generation", "The HA group's generation as this instance last saw it (BRIDGE_HA)."),
		fenced:        desc("ha_fenced", "1 while this instance's lease has ended and it leaves pushes unanswered (BRIDGE_HA)."),
	}
}

// Describe implements prometheus.Collector; it describes nothing, which
// makes it an unchecked collector (the spool series exist only with a
// spool, the topic series only once a bridge is attached).
func (c *statsCollector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.b.Load()
	if b == nil {
		return
	}
	d := newStatsDescs()
	st := &b.stats
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	// Only the pairs that can happen: message kinds in the three message
	// scopes, the event kind in the event scope, unknown/unknown for
	// pushes that could not be decoded.
	for s := range numScopes {
		for k := range numKinds {
			scope, kind := rtm.Scope(s), rtm.Kind(k)
			possible := (scope == rtm.ScopeEvent) == (kind == rtm.KindEvent) && (s == 0) == (k == 0)
			if n := st.pushes[s][k].Load(); possible || n > 0 {
				counter(d.pushes, n, scope.String(), kind.String())
			}
		}
	}
	for t, n := range st.topics {
		counter(d.produced, n.acked.Load(), t)
	}
	for i, r := range produceReasons {
		counter(d.produceErrs, st.errs[i].Load(), r)
	}
	counter(d.deadLetters, st.deadLetters.Load())
	counter(d.refused, st.refused.Load())
	counter(d.dropped, st.dropped.Load())
	counter(d.answersLost, st.lost.Load())
	r, n := b.win.inflight()
	gauge(d.inflightRecs, float64(r))
	gauge(d.inflightBytes, float64(n))
	age := -1.0
	if ms := st.lastAckMs.Load(); ms > 0 {
		age = max(0, float64(time.Now().UnixMilli()-ms)/1000)
	}
	gauge(d.lastAck, age)
	counter(d.control, st.ctlApplied.Load(), "applied")
	counter(d.control, st.ctlRejected.Load(), "rejected")
	if h := b.ha; h != nil {
		counter(d.takeovers, h.takeovers.Load())
		counter(d.handovers, h.handovers.Load())
		gauge(d.generation, float64(h.generation.Load()))
		fenced := 0.0
		if h.fenced.Load() {
			fenced = 1
		}
		gauge(d.fenced, fenced)
	}
	if b.sp == nil {
		return
	}
	counter(d.spilled, st.spilled.Load())
	counter(d.drained, st.drained.Load())
	counter(d.skipped, st.drainSkipped.Load())
	counter(d.spoolFull, st.spoolFull.Load())
	ss := b.sp.sp.Stats()
	gauge(d.spoolBytes, float64(ss.Bytes))
	gauge(d.spoolMax, float64(b.sp.maxBytes))
	gauge(d.spoolRecords, float64(ss.Records))
	gauge(d.spoolAge, float64(ss.OldestAgeMs)/1000)
	gauge(d.spoolDisk, float64(ss.DiskBytes))
	spilling := 0.0
	if b.sp.spilling.Load() {
		spilling = 1
	}
	gauge(d.spilling, spilling)
	gauge(d.recDropped, float64(ss.Recovered.DroppedRecords))
	gauge(d.recTrunc, float64(ss.Recovered.TruncatedBytes))
	bounds := spool.FsyncBucketBounds()
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, ub := range bounds {
		cum += ss.FsyncHist[i]
		buckets[ub.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(d.fsync, ss.FsyncCount, ss.FsyncTotal.Seconds(), buckets)
}
