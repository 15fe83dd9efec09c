package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// testConsole is a console over a real bridge that has not contacted Kafka
// (bridge.New never does) and over reg. Its control sender fails the test:
// nothing in these tests may get as far as Kafka (the integration tests
// cover that path against a real broker).
func testConsole(t testing.TB, token string, reg *prometheus.Registry, logs io.Writer) (*console, *httptest.Server) {
	t.Helper()
	b, err := bridge.New(bridge.Config{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	k := &console{
		version: "test", started: time.Now(), gateway: "gw:13315", winRecs: 100, winBytes: 1 << 20,
		gather: reg, bridge: b, session: func() *rtm.Session { return nil },
		ready:    func(context.Context) error { return nil },
		stopping: func() bool { return false },
		token:    []byte(token),
		log:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		send: func(context.Context, []byte) (bridge.Result, error) {
			t.Error("a command reached the control sender")
			return bridge.Result{}, context.Canceled
		},
	}
	mux := http.NewServeMux()
	k.register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return k, srv
}

func post(t *testing.T, url, auth, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

// TestConsoleControlGuard: no token configured → 403; a missing, wrong or
// malformed token → 401 with a Bearer challenge; the right token with a bad
// command → 400 with bridge.ParseCommand's own error. The token appears in
// no answer and no log line.
func TestConsoleControlGuard(t *testing.T) {
	const token = "s3cr3t-console-token"
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()

	_, off := testConsole(t, "", reg, &logs)
	if code, _, body := post(t, off.URL+"/api/control", "Bearer "+token, `{"id":"a","op":"add","gids":[1]}`); code != http.StatusForbidden || !strings.Contains(body, "HTTP_CONTROL_TOKEN") {
		t.Errorf("no token configured: %d %s, want 403 naming HTTP_CONTROL_TOKEN", code, body)
	}

	_, srv := testConsole(t, token, reg, &logs)
	url := srv.URL + "/api/control"
	good := `{"id":"a","op":"add","gids":[1]}`
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong", "bearer " + token, token, "Basic " + token, "Bearer " + token + "x", "Bearer " + token[:5]} {
		code, hdr, body := post(t, url, auth, good)
		if code != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("Authorization %q: %d (%q), want 401 with a Bearer challenge", auth, code, body)
		}
	}
	for _, c := range []struct{ body, err string }{
		{`{"id":"n","op":"add","gids":[-5]}`, `bridge: command: field "gids": element 0: -5 is not a positive id`},
		{`{"op":"add","gids":[1]}`, `bridge: command: field "id" is required`},
		{`{"id":"m","op":"set_all","p2p":true,"gids":[1]}`, `bridge: command: op set_all takes only the flags p2p, group, room and ev, not "gids"`},
		{`not json`, `bridge: command: not a JSON object`},
		{`{"id":"u","op":"frobnicate"}`, `unknown op "frobnicate"`},
	} {
		_, want := bridge.ParseCommand([]byte(c.body))
		code, _, body := post(t, url, "Bearer "+token, c.body)
		var got struct{ Error string }
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: %q: %v", c.body, body, err)
		}
		if code != http.StatusBadRequest || got.Error != want.Error() || !strings.Contains(got.Error, c.err) {
			t.Errorf("%s: %d %q, want 400 %q", c.body, code, got.Error, want)
		}
	}
	if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), token[:8]) {
		t.Errorf("the token appears in the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "missing or wrong token") {
		t.Errorf("refusals are not logged:\n%s", logs.String())
	}
}

// TestConsolePage: the page and its assets are served from the binary with
// a strict content security policy; nothing is loaded from elsewhere.
func TestConsolePage(t *testing.T) {
	_, srv := testConsole(t, "", prometheus.NewRegistry(), io.Discard)
	for _, c := range []struct{ path, ctype, has string }{
		{"/", "text/html", `src="/console/app.js"`},
		{"/console/app.js", "javascript", "/api/console"},
		{"/console/style.css", "text/css", ".spark"},
	} {
		res, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Type"), c.ctype) || !strings.Contains(string(body), c.has) {
			t.Errorf("GET %s: %d %s, want 200 %s containing %q", c.path, res.StatusCode, res.Header.Get("Content-Type"), c.ctype, c.has)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", c.path, csp)
		}
		own := strings.ReplaceAll(string(body), "http://www.w3.org/2000/svg", "") // a namespace name, not a fetch
		if strings.Contains(own, "http://") || strings.Contains(own, "https://") {
			t.Errorf("GET %s refers to another origin", c.path)
		}
	}
	if res, err := http.Get(srv.URL + "/nope"); err != nil || res.StatusCode != 404 {
		t.Errorf("GET /nope: %v %v, want 404", res.StatusCode, err)
	}
}

// TestConsoleView: rates, latency quantiles and the by-topic switch come
// from the registry, picked by name; history points one second apart.
func TestConsoleView(t *testing.T) {
	reg := prometheus.NewRegistry()
	received := prometheus.NewCounter(prometheus.CounterOpts{Name: metricPushesReceived, Help: "h"})
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: metricLatency, Help: "h",
		Buckets: []float64{0.001, 0.005, 0.01, 0.1, 1}})
	byKind := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPushes, Help: "h"}, []string{"scope", "kind"})
	reg.MustRegister(received, lat, byKind)
	k, _ := testConsole(t, "", reg, io.Discard)

	t0 := time.Now()
	v := k.build(context.Background(), t0)
	if v.Rates.PushesPerSec != nil || v.Link.State != "starting" || v.Role != "active" || v.Control.Enabled {
		t.Errorf("first view: rate %v, link %q, role %q, control %v", v.Rates.PushesPerSec, v.Link.State, v.Role, v.Control.Enabled)
	}
	received.Add(200)
	byKind.WithLabelValues("p2p", "chat").Add(150)
	for range 98 {
		lat.Observe(0.003) // in (0.001, 0.005]
	}
	lat.Observe(0.5)
	lat.Observe(0.5)
	v = k.build(context.Background(), t0.Add(2*time.Second))
	if v.Rates.PushesPerSec == nil || *v.Rates.PushesPerSec != 100 {
		t.Errorf("pushes/s = %v, want 100", v.Rates.PushesPerSec)
	}
	if v.Rates.ByTopic != nil || v.Rates.ByKind["p2p.chat"] != 75 {
		t.Errorf("without %s: by topic %v, by kind %v, want p2p.chat 75/s", metricProduced, v.Rates.ByTopic, v.Rates.ByKind)
	}
	// p50: rank 50 of 100, in (1 ms, 5 ms] holding 98 → 1 + 4×50/98 ms.
	if v.Latency.P50 == nil || math.Abs(*v.Latency.P50-(1+4*50.0/98)) > 1e-9 || v.Latency.Count != 100 {
		t.Errorf("p50 = %v over %v, want %.4f over 100", v.Latency.P50, v.Latency.Count, 1+4*50.0/98)
	}
	// p99: rank 99, in (100 ms, 1 s] holding 2 → 100 + 900×1/2 ms.
	if v.Latency.P99 == nil || math.Abs(*v.Latency.P99-550) > 1e-9 {
		t.Errorf("p99 = %v, want 550", v.Latency.P99)
	}
	if h := v.History; len(h.T) != 2 || h.Pushes[0] != nil || h.Pushes[1] == nil || *h.Pushes[1] != 100 {
		t.Errorf("history %+v, want two points, the second at 100/s", h)
	}

	// Once the producer exports records by topic, those are shown instead.
	produced := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricProduced, Help: "h"}, []string{"topic"})
	reg.MustRegister(produced)
	produced.WithLabelValues("rtm.p2p.chat").Add(0)
	k.build(context.Background(), t0.Add(3*time.Second))
	produced.WithLabelValues("rtm.p2p.chat").Add(40)
	v = k.build(context.Background(), t0.Add(4*time.Second))
	if v.Rates.ByTopic["rtm.p2p.chat"] == 0 || v.Rates.ByKind != nil {
		t.Errorf("with %s: by topic %v, by kind %v", metricProduced, v.Rates.ByTopic, v.Rates.ByKind)
	}
	// A sample less than a second after the last is not remembered.
	k.build(context.Background(), t0.Add(4*time.Second+100*time.Millisecond))
	if n := len(k.history().T); n != 4 {
		t.Errorf("history has %d points, want 4", n)
	}
}

func TestHistQuantile(t *testing.T) {
	h := histo{upper: []float64{1, 2, 4}, cum: []float64{10, 10, 20}, count: 30}
	for _, c := range []struct {
		q    float64
		want float64
		ok   bool
	}{
		{0.1, 0.3, true}, // rank 3 in (0, 1]
		{0.5, 3.0, true}, // rank 15: (2, 4] holds 10..20
		{0.9, 4, true},   // rank 27 is in +Inf: the highest finite bound
	} {
		got, ok := histQuantile(c.q, h)
		if ok != c.ok || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("q%.2f = %v %v, want %v", c.q, got, ok, c.want)
		}
	}
	if _, ok := histQuantile(0.5, histo{upper: []float64{1}, cum: []float64{0}}); ok {
		t.Error("an empty histogram gave a quantile")
	}
}

// BenchmarkConsoleView is the cost of one /api/console document on a
// registry like the daemon's (Go and process collectors, the bridge's
// metrics): what an open console costs per poll, off the push path.
func BenchmarkConsoleView(b *testing.B) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bridge.NewMetrics(reg)
	k, _ := testConsole(b, "", reg, io.Discard)
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Second) // a new sample every time: no cache
		body, err := json.Marshal(k.build(context.Background(), at))
		if err != nil || len(body) == 0 {
			b.Fatal(err)
		}
	}
}
