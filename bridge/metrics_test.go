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
	rs.wait(t, 2, 10*time.Second)
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
	}
	for _, c := range checks {
		if got := metricValue(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// TestNilMetrics: every method of a nil *Metrics is a no-op.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.push(rtm.ScopeP2P, rtm.KindChat)
	m.produceError(reasonOther)
	m.deadLetter()
	m.setInflight(1, 2)
	m.acked(time.Millisecond)
	m.answerLost()
	m.control(true)
	m.SetLinkState("x")
}
