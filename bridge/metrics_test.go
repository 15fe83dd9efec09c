package bridge

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// metricValue returns the value of the series of family name whose labels
// include want.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for k, v := range want {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			return value(m)
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	b, _ := testBridge(t, func(c *Config) { c.Metrics = m })
	rs := newReplies(2)
	ok := rtm.Push{Scope: rtm.ScopeGroup, Kind: rtm.KindCmd, From: 1, To: 2, MType: 32, MID: 1}
	b.HandlePush(context.Background(), &ok, rs.reply(0))
	bad := rtm.Push{Raw: []byte{1}, Err: errors.New("bad push")}
	b.HandlePush(context.Background(), &bad, rs.reply(1))
	rs.wait(t, 2, 30*time.Second)
	m.SetLinkState("listening")
	m.SetLinkState("disconnected")

	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"rtm2kafka_pushes_total", map[string]string{"scope": "group", "kind": "cmd"}, 1},
		{"rtm2kafka_pushes_total", map[string]string{"scope": "unknown", "kind": "unknown"}, 1},
		{"rtm2kafka_dead_letters_total", nil, 1},
		{"rtm2kafka_push_ack_latency_seconds", nil, 1},
		{"rtm2kafka_inflight_records", nil, 0},
		{"rtm2kafka_inflight_bytes", nil, 0},
		{"rtm2kafka_link_state", map[string]string{"state": "listening"}, 0},
		{"rtm2kafka_link_state", map[string]string{"state": "disconnected"}, 1},
		{"rtm2kafka_answers_lost_total", nil, 0},
		{"rtm2kafka_produce_errors_total", map[string]string{"reason": "too_large"}, 0},
		{"rtm2kafka_control_commands_total", map[string]string{"result": "applied"}, 0},
		{"rtm2kafka_records_produced_total", map[string]string{"topic": b.router.Topic(&ok)}, 1},
		{"rtm2kafka_records_produced_total", map[string]string{"topic": b.router.DeadLetterTopic()}, 1},
	}
	for _, c := range checks {
		if got := metricValue(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// TestProducedAgrees: after pushes to several topics, Stats().Produced and
// the rtm2kafka_records_produced_total series agree topic by topic, and
// both say what was sent.
func TestProducedAgrees(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, _ := testBridge(t, func(c *Config) { c.Metrics = NewMetrics(reg) })
	sends := []struct {
		p rtm.Push
		n int
	}{
		{rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, MType: 30}, 7},
		{rtm.Push{Scope: rtm.ScopeGroup, Kind: rtm.KindFile, MType: 40}, 3},
		{rtm.Push{Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, Event: []byte("login")}, 2},
		{rtm.Push{Raw: []byte{1}, Err: errors.New("bad push")}, 1},
	}
	total := 0
	for _, s := range sends {
		total += s.n
	}
	rs := newReplies(total)
	want := map[string]uint64{}
	i := 0
	for _, s := range sends {
		topic := b.router.DeadLetterTopic()
		if s.p.Err == nil {
			topic = b.router.Topic(&s.p)
		}
		want[topic] += uint64(s.n)
		for range s.n {
			p := s.p
			p.From, p.To, p.MID = 1, int64(i), int64(i)
			b.HandlePush(context.Background(), &p, rs.reply(i))
			i++
		}
	}
	rs.wait(t, total, 30*time.Second)
	st := b.Stats()
	series := map[string]float64{}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "rtm2kafka_records_produced_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" {
					series[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	if len(series) != len(st.Produced) {
		t.Errorf("%d produced series, %d topics in Stats().Produced", len(series), len(st.Produced))
	}
	for topic, n := range st.Produced {
		if v, ok := series[topic]; !ok || v != float64(n) {
			t.Errorf("topic %s: Stats().Produced %d, rtm2kafka_records_produced_total %v (present %v)", topic, n, v, ok)
		}
		if n != want[topic] {
			t.Errorf("topic %s: %d produced, want %d", topic, n, want[topic])
		}
	}
	for topic, n := range want {
		if st.Produced[topic] != n {
			t.Errorf("topic %s: Stats().Produced %d, want %d", topic, st.Produced[topic], n)
		}
	}
}

// TestPushesTotalPairs: rtm2kafka_pushes_total exports exactly the possible
// (scope, kind) pairs — message kinds in the message scopes, event/event,
// unknown/unknown — and never an impossible one such as event/chat; each
// push is counted once, in its own series.
func TestPushesTotalPairs(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	// Kafka unreachable: HandlePush hands each record to the producer and
	// returns; Close drops them unanswered. Only the counting matters here.
	b, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	scopes := []rtm.Scope{rtm.ScopeP2P, rtm.ScopeGroup, rtm.ScopeRoom}
	kinds := []rtm.Kind{rtm.KindChat, rtm.KindAudio, rtm.KindCmd, rtm.KindFile, rtm.KindMessage}
	want := map[string]float64{"event/event": 1, "unknown/unknown": 1}
	rs := newReplies(32)
	i := 0
	handle := func(p rtm.Push) {
		b.HandlePush(context.Background(), &p, rs.reply(i))
		i++
	}
	for _, s := range scopes {
		for _, k := range kinds {
			want[s.String()+"/"+k.String()] = 1
			handle(rtm.Push{Scope: s, Kind: k, From: 1, To: 2, MType: 30, MID: int64(i)})
		}
	}
	handle(rtm.Push{Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, Event: []byte("login")})
	handle(rtm.Push{Raw: []byte{1}, Err: errors.New("bad push")})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "rtm2kafka_pushes_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var scope, kind string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "scope":
					scope = l.GetValue()
				case "kind":
					kind = l.GetValue()
				}
			}
			pair := scope + "/" + kind
			if _, ok := want[pair]; !ok {
				t.Errorf("impossible pair exported: pushes_total{scope=%q,kind=%q} = %v", scope, kind, m.GetCounter().GetValue())
			}
			got[pair] = m.GetCounter().GetValue()
		}
	}
	for pair, n := range want {
		if v, ok := got[pair]; !ok || v != n {
			t.Errorf("pushes_total %s = %v (exported %v), want %v", pair, v, ok, n)
		}
	}
	if st := b.Stats(); st.Pushes != uint64(i) {
		t.Errorf("Stats().Pushes = %d, want %d", st.Pushes, i)
	}
}

// TestNilMetrics: every method of a nil *Metrics is a no-op.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.attach(nil)
	m.observeLatency(time.Millisecond)
	m.SetLinkState("x")
}
