package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rtm2kafka/rtm2kafka/bridge"
	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// The operator's console: a page at / (plain HTML, CSS and JS embedded in
// the binary, no build step, nothing fetched from elsewhere) that polls one
// JSON document, /api/console, every second, and a control form that posts
// to /api/control behind a bearer token.
//
// The console does no work per push: the document is built when it is
// requested, from the bridge's Stats, the session's state and the
// Prometheus registry (Gather, families picked by name), and cached for
// consoleCacheFor so that any number of open pages cost at most two builds
// per second (about 1.5 ms of CPU each on the daemon's registry, most of
// it the process collector reading /proc: BenchmarkConsoleView). Each build also appends a sample (at most one per
// consoleSampleEvery) to a fixed ring that feeds the sparklines; the
// history therefore covers the time some console was open, up to
// consoleHistory.

//go:embed console
var consoleAssets embed.FS

const (
	consoleCacheFor    = 500 * time.Millisecond // so any number of open pages cost at most two builds a second
	consoleSampleEvery = 900 * time.Millisecond
	consoleHistory     = 300             // samples: 5 minutes at one per second
	consoleRateWindow  = 5 * time.Second // rates and quantiles are over about this long
	consoleGap         = 5 * time.Second // samples further apart are drawn with a gap
	consoleListMax     = 100             // ids of each listen list shown
	consoleControlWait = 30 * time.Second
)

// Metric families the console reads from the registry.
const (
	metricPushesReceived = "rtm2kafka_rtm_pushes_received_total"
	metricPushes         = "rtm2kafka_pushes_total"
	metricLatency        = "rtm2kafka_push_ack_latency_seconds"
	metricProduceErrors  = "rtm2kafka_produce_errors_total"
	// metricProduced is added with the franz-go producer: records Kafka
	// acknowledged, by topic. Until it exists the console shows pushes/s
	// by scope and kind instead.
	metricProduced = "rtm2kafka_records_produced_total"
)

// controlSender writes one control command (JSON, with its id) to the
// control topic exactly as `rtm2kafka ctl` does and waits for the bridge's
// result on the results topic. run.go wires it to bridge.SendControl.
type controlSender func(ctx context.Context, cmd []byte) (bridge.Result, error)

// console serves the page and its two endpoints. Build it with
// [RunCommand.newConsole].
type console struct {
	version  string
	started  time.Time
	gateway  string
	winRecs  int
	winBytes int64
	gather   prometheus.Gatherer
	bridge   *bridge.Bridge
	session  func() *rtm.Session // nil until Kafka is prepared
	ready    readiness
	stopping func() bool
	// role is the hook for high availability: it says whether this
	// instance is "active" or "standby". nil means a single instance,
	// always active.
	role  func() string
	send  controlSender
	token []byte // empty: the control form is disabled (403)
	log   *slog.Logger

	mu       sync.Mutex
	cached   []byte
	cachedAt time.Time
	hist     [consoleHistory]sample
	histNext int
	histLen  int
}

// newConsole builds the console of this run; send writes control commands.
func (c *RunCommand) newConsole(send controlSender) *console {
	cfg := c.Config
	k := &console{
		version: buildVersion(), started: c.started, gateway: cfg.RTMEndpoint,
		winRecs: cfg.WindowRecords, winBytes: cfg.WindowBytes,
		gather: c.reg, bridge: c.bridge, session: c.Session, ready: c.ready,
		stopping: c.stopping.Load, send: send, log: c.log.With("component", "console"),
		role: func() string {
			if r := c.bridge.Role(); r != bridge.RoleSingle {
				return r.String()
			}
			return "active"
		},
	}
	c.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "rtm2kafka", Name: "active",
		Help: "1 while this instance is the active one (takes pushes), 0 while on standby; always 1 for a single instance.",
	}, func() float64 {
		if k.currentRole() == "active" {
			return 1
		}
		return 0
	}))
	if tok := cfg.controlToken(); tok != "" {
		k.token = []byte(tok)
		k.log.Info("console control form enabled (HTTP_CONTROL_TOKEN is set): anyone with the token can change the listen state")
	} else {
		k.log.Info("console is read-only: set HTTP_CONTROL_TOKEN or HTTP_CONTROL_TOKEN_FILE to enable its control form")
	}
	return k
}

// currentRole is "active" or "standby"; see console.role.
func (k *console) currentRole() string {
	if k.role == nil {
		return "active"
	}
	return k.role()
}

// controlToken is HTTP_CONTROL_TOKEN, else the trimmed content of
// HTTP_CONTROL_TOKEN_FILE, else empty.
func (c *RunConfig) controlToken() rtm.Secret {
	if c.HTTPControlTok != "" {
		return c.HTTPControlTok
	}
	return rtm.Secret(strings.TrimSpace(string(c.HTTPControlFile)))
}

// register adds the console's routes to mux.
func (k *console) register(mux *http.ServeMux) {
	assets, err := fs.Sub(consoleAssets, "console")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	files := http.FileServerFS(assets)
	mux.Handle("GET /{$}", pageHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, assets, "index.html")
	})))
	mux.Handle("GET /console/", pageHeaders(http.StripPrefix("/console/", files)))
	mux.HandleFunc("GET /api/console", k.serveView)
	mux.HandleFunc("POST /api/control", k.serveControl)
}

// pageHeaders adds the headers every console asset carries: nothing but
// our own origin may run or be loaded, and no other site may frame it.
func pageHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// serveView answers GET /api/console.
func (k *console) serveView(w http.ResponseWriter, r *http.Request) {
	body := k.viewJSON(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body) // a failed write means the page went away
}

// viewJSON returns the console document, built at most once per
// consoleCacheFor.
func (k *console) viewJSON(ctx context.Context) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	if k.cached != nil && now.Sub(k.cachedAt) < consoleCacheFor {
		return k.cached
	}
	v := k.build(ctx, now)
	body, err := json.Marshal(v)
	if err != nil {
		body, _ = json.Marshal(map[string]string{"error": "console: encode: " + err.Error()}) // a map of strings always encodes
	}
	k.cached, k.cachedAt = body, now
	return body
}

// sample is what the console remembers of one moment, for rates,
// quantiles and sparklines.
type sample struct {
	at       time.Time
	pushes   float64            // pushes received from the gateway
	answered float64            // pushes answered after their ack (or fsync)
	produced map[string]float64 // records acked by topic; nil without metricProduced
	byKind   map[string]float64 // pushes by scope.kind
	latency  histo
	inflight int
	spool    int64
	// The sparkline points, against the sample remembered before this one
	// (nil after a gap), computed once when the sample is remembered.
	pushRate, ansRate, p99 *float64
}

// histo is a cumulative histogram snapshot.
type histo struct {
	upper []float64 // finite upper bounds
	cum   []float64 // cumulative counts at each bound
	count float64   // all observations (+Inf)
}

// consoleView is the document of /api/console. Ids are strings: they may
// exceed 2^53, which a JavaScript number cannot hold.
type consoleView struct {
	Version   string                  `json:"version"`
	Role      string                  `json:"role"`
	Now       int64                   `json:"now"` // ms since the epoch
	StartedAt int64                   `json:"started_at"`
	Stopping  bool                    `json:"stopping"`
	Ready     readyV                  `json:"ready"`
	Link      linkV                   `json:"link"`
	Listen    *listenV                `json:"listen"` // nil before the session exists
	Rates     ratesV                  `json:"rates"`
	Latency   latencyV                `json:"latency"`
	Buffer    bufferV                 `json:"buffer"`
	Spool     bridge.SpoolStatus      `json:"spool"`
	Totals    totalsV                 `json:"totals"`
	Errors    map[string]uint         `json:"produce_errors"` // by reason
	Dead      []bridge.DeadLetterNote `json:"dead_letters"`
	Results   []resultV               `json:"results"`
	Control   struct {
		Enabled bool `json:"enabled"`
	} `json:"control"`
	History historyV `json:"history"`
}

type readyV struct {
	OK       bool   `json:"ok"`
	Degraded bool   `json:"degraded"`
	Reason   string `json:"reason"`
}

type linkV struct {
	State   string `json:"state"`
	Reason  string `json:"reason"`
	Attempt int    `json:"attempt"`
	Since   int64  `json:"since"` // ms since the epoch; 0 before the session exists
	Gateway string `json:"gateway"`
}

type listenV struct {
	P2P    bool     `json:"p2p"`
	Group  bool     `json:"group"`
	Room   bool     `json:"room"`
	Ev     bool     `json:"ev"`
	GIDs   []string `json:"gids"`
	RIDs   []string `json:"rids"`
	UIDs   []string `json:"uids"`
	Events []string `json:"events"`
	// Counts are the full lengths of the four lists (the lists above are
	// cut at consoleListMax).
	Counts map[string]int `json:"counts"`
}

type ratesV struct {
	PushesPerSec   *float64 `json:"pushes_per_sec"`
	AnsweredPerSec *float64 `json:"answered_per_sec"`
	// ByTopic is records acked per second by topic when the bridge exports
	// metricProduced; otherwise ByKind (pushes/s by scope.kind) is set.
	ByTopic map[string]float64 `json:"by_topic,omitempty"`
	ByKind  map[string]float64 `json:"by_kind,omitempty"`
	Window  float64            `json:"window_sec"`
}

type latencyV struct {
	P50    *float64 `json:"p50_ms"`
	P99    *float64 `json:"p99_ms"`
	Count  float64  `json:"count"` // observations in the window
	Window float64  `json:"window_sec"`
}

type bufferV struct {
	Records    int   `json:"records"`
	MaxRecords int   `json:"max_records"`
	Bytes      int64 `json:"bytes"`
	MaxBytes   int64 `json:"max_bytes"`
}

type totalsV struct {
	Pushes            uint64 `json:"pushes"`
	Answered          uint64 `json:"answered"`
	DeadLetters       uint64 `json:"dead_letters"`
	Rejected          uint64 `json:"rejected"`
	Dropped           uint64 `json:"dropped"`
	AnswersLost       uint64 `json:"answers_lost"`
	Reconnects        uint64 `json:"reconnects"`
	DuplicatesDropped uint64 `json:"duplicates_dropped"`
	InvalidPushes     uint64 `json:"invalid_pushes"`
	ControlApplied    uint64 `json:"control_applied"`
	ControlRejected   uint64 `json:"control_rejected"`
}

type resultV struct {
	ID        string  `json:"id"`
	OK        bool    `json:"ok"`
	Error     string  `json:"error"`
	Listen    listenV `json:"listen"`
	AppliedAt int64   `json:"applied_at"`
	Offset    int64   `json:"offset"`
}

// historyV holds aligned series, one point per sample; null is a gap.
type historyV struct {
	T        []int64    `json:"t"`
	Pushes   []*float64 `json:"pushes_per_sec"`
	Answered []*float64 `json:"answered_per_sec"`
	P99      []*float64 `json:"p99_ms"`
	Inflight []int      `json:"inflight"`
	Spool    []int64    `json:"spool_records"`
}

// build assembles the document; k.mu is held.
func (k *console) build(ctx context.Context, now time.Time) consoleView {
	st := k.bridge.Stats()
	v := consoleView{
		Version: k.version, Role: "active", Now: now.UnixMilli(), StartedAt: k.started.UnixMilli(),
		Stopping: k.stopping(),
		Buffer:   bufferV{Records: st.InFlightRecords, MaxRecords: k.winRecs, Bytes: st.InFlightBytes, MaxBytes: k.winBytes},
		Spool:    k.bridge.SpoolStatus(),
		Dead:     k.bridge.RecentDeadLetters(),
		Totals: totalsV{Pushes: st.Pushes, Answered: st.Acked, DeadLetters: st.DeadLetters, Rejected: st.Refused,
			Dropped: st.Dropped, AnswersLost: st.AnswersLost, ControlApplied: st.ControlApplied, ControlRejected: st.ControlRejected},
		Link: linkV{State: "starting", Reason: "preparing Kafka topics and the listen state", Gateway: k.gateway},
	}
	v.Role = k.currentRole()
	v.Control.Enabled = len(k.token) > 0
	v.Results = []resultV{}
	for _, r := range k.bridge.RecentResults() {
		v.Results = append(v.Results, viewResult(r))
	}
	if sess := k.session(); sess != nil {
		sc := sess.State()
		v.Link = linkV{State: sc.State.String(), Reason: sc.Reason, Attempt: sc.Attempt, Since: sc.At.UnixMilli(), Gateway: k.gateway}
		lv := viewListen(sess.Listen())
		v.Listen = &lv
		ss := sess.Stats()
		v.Totals.Reconnects, v.Totals.DuplicatesDropped, v.Totals.InvalidPushes = ss.Reconnects, ss.DuplicatesDropped, ss.InvalidPushes
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var deg degradedError
	switch err := k.ready(rctx); {
	case err == nil:
		v.Ready.OK = true
	case errors.As(err, &deg):
		v.Ready = readyV{OK: true, Degraded: true, Reason: deg.why}
	default:
		v.Ready.Reason = err.Error()
	}

	cur := k.sampleNow(now, st, v.Spool.Records)
	cur.pushes = float64(v.Totals.Pushes) // fallback when the session counter is missing
	v.Errors = k.gatherInto(&cur)
	k.remember(cur)
	k.fillRates(&v, cur)
	v.History = k.history()
	return v
}

// sampleNow takes what Stats gives; gatherInto adds the registry's part.
func (k *console) sampleNow(now time.Time, st bridge.Stats, spooled int64) sample {
	return sample{at: now, answered: float64(st.Acked), inflight: st.InFlightRecords, spool: spooled}
}

// gatherInto reads the registry into s and returns the produce errors by
// reason. A failed gather leaves what it could read (Gather returns what
// it collected along with the error).
func (k *console) gatherInto(s *sample) map[string]uint {
	mfs, err := k.gather.Gather()
	if err != nil {
		k.log.Debug("console: gather", "err", err)
	}
	errs := map[string]uint{}
	for _, mf := range mfs {
		switch mf.GetName() {
		case metricPushesReceived:
			s.pushes = sum(mf)
		case metricPushes:
			s.byKind = map[string]float64{}
			for _, m := range mf.GetMetric() {
				if v := m.GetCounter().GetValue(); v > 0 {
					s.byKind[label(m, "scope")+"."+label(m, "kind")] += v
				}
			}
		case metricProduced:
			s.produced = map[string]float64{}
			for _, m := range mf.GetMetric() {
				s.produced[label(m, "topic")] += m.GetCounter().GetValue()
			}
		case metricLatency:
			if ms := mf.GetMetric(); len(ms) > 0 {
				s.latency = snapHisto(ms[0].GetHistogram())
			}
		case metricProduceErrors:
			for _, m := range mf.GetMetric() {
				n := uint(m.GetCounter().GetValue())
				if n == 0 {
					continue
				}
				errs[label(m, "reason")] = n
			}
		}
	}
	return errs
}

func sum(mf *dto.MetricFamily) float64 {
	var t float64
	for _, m := range mf.GetMetric() {
		t += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return t
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func snapHisto(h *dto.Histogram) histo {
	out := histo{count: float64(h.GetSampleCount())}
	for _, b := range h.GetBucket() {
		if math.IsInf(b.GetUpperBound(), 1) {
			continue
		}
		out.upper = append(out.upper, b.GetUpperBound())
		out.cum = append(out.cum, float64(b.GetCumulativeCount()))
	}
	return out
}

// remember appends s to the history unless the last sample is too recent,
// and computes its sparkline points against the last one.
func (k *console) remember(s sample) {
	if k.histLen > 0 {
		prev := k.hist[(k.histNext-1+consoleHistory)%consoleHistory]
		dt := s.at.Sub(prev.at)
		if dt < consoleSampleEvery {
			return
		}
		if dt <= consoleGap {
			sec := dt.Seconds()
			s.pushRate = ptr(max(0, s.pushes-prev.pushes) / sec)
			s.ansRate = ptr(max(0, s.answered-prev.answered) / sec)
			s.p99 = quantiles(prev.latency, s.latency).P99
		}
	}
	k.hist[k.histNext] = s
	k.histNext = (k.histNext + 1) % consoleHistory
	k.histLen = min(k.histLen+1, consoleHistory)
}

// samples returns the history, oldest first.
func (k *console) samples() []sample {
	out := make([]sample, 0, k.histLen)
	for i := k.histLen; i >= 1; i-- {
		out = append(out, k.hist[(k.histNext-i+consoleHistory)%consoleHistory])
	}
	return out
}

// fillRates sets the rates and quantiles of v: between cur and the oldest
// remembered sample at most about consoleRateWindow older, else the newest
// older one if it is not stale (nobody looked for a while).
func (k *console) fillRates(v *consoleView, cur sample) {
	var base *sample
	hs := k.samples()
	for i := range hs {
		age := cur.at.Sub(hs[i].at)
		if age <= 0 {
			break
		}
		base = &hs[i]
		if age <= consoleRateWindow+consoleSampleEvery {
			break
		}
	}
	if base != nil && cur.at.Sub(base.at) > 6*consoleRateWindow {
		base = nil
	}
	if base == nil {
		// The first look: quantiles over everything observed so far.
		v.Latency = quantiles(histo{}, cur.latency)
		return
	}
	dt := cur.at.Sub(base.at).Seconds()
	v.Rates.Window = dt
	v.Rates.PushesPerSec = ptr(max(0, cur.pushes-base.pushes) / dt)
	v.Rates.AnsweredPerSec = ptr(max(0, cur.answered-base.answered) / dt)
	if cur.produced != nil {
		v.Rates.ByTopic = rates(cur.produced, base.produced, dt)
	} else {
		v.Rates.ByKind = rates(cur.byKind, base.byKind, dt)
	}
	v.Latency = quantiles(base.latency, cur.latency)
	v.Latency.Window = dt
}

func ptr(f float64) *float64 { return &f }

func rates(cur, base map[string]float64, dt float64) map[string]float64 {
	out := make(map[string]float64, len(cur))
	for k, v := range cur {
		out[k] = max(0, v-base[k]) / dt
	}
	return out
}

// quantiles returns p50 and p99 of the observations between two snapshots
// of one histogram (a zero from means since the start).
func quantiles(from, to histo) latencyV {
	d := histo{upper: to.upper, cum: make([]float64, len(to.cum)), count: to.count - from.count}
	for i := range to.cum {
		d.cum[i] = to.cum[i]
		if i < len(from.cum) {
			d.cum[i] -= from.cum[i]
		}
	}
	out := latencyV{Count: d.count}
	if p, ok := histQuantile(0.5, d); ok {
		out.P50 = ptr(p * 1000)
	}
	if p, ok := histQuantile(0.99, d); ok {
		out.P99 = ptr(p * 1000)
	}
	return out
}

// histQuantile estimates the q-quantile of a cumulative histogram the way
// PromQL's histogram_quantile does: linear interpolation inside the bucket
// that holds the rank, the first bucket starting at 0, and the highest
// finite bound for a rank in the +Inf bucket.
func histQuantile(q float64, h histo) (float64, bool) {
	if h.count <= 0 || len(h.upper) == 0 {
		return 0, false
	}
	rank := q * h.count
	lower, prev := 0.0, 0.0
	for i, up := range h.upper {
		if h.cum[i] >= rank {
			if h.cum[i] == prev {
				return up, true
			}
			return lower + (up-lower)*(rank-prev)/(h.cum[i]-prev), true
		}
		lower, prev = up, h.cum[i]
	}
	return h.upper[len(h.upper)-1], true
}

// history returns the remembered samples as series, oldest first.
func (k *console) history() historyV {
	n := k.histLen
	h := historyV{T: make([]int64, 0, n), Pushes: make([]*float64, 0, n), Answered: make([]*float64, 0, n),
		P99: make([]*float64, 0, n), Inflight: make([]int, 0, n), Spool: make([]int64, 0, n)}
	for i := n; i >= 1; i-- {
		s := &k.hist[(k.histNext-i+consoleHistory)%consoleHistory]
		h.T = append(h.T, s.at.UnixMilli())
		h.Pushes, h.Answered, h.P99 = append(h.Pushes, s.pushRate), append(h.Answered, s.ansRate), append(h.P99, s.p99)
		h.Inflight, h.Spool = append(h.Inflight, s.inflight), append(h.Spool, s.spool)
	}
	return h
}

func viewListen(s rtm.ListenState) listenV {
	ids := func(l []int64) []string {
		l = slices.Sorted(slices.Values(l))
		out := make([]string, 0, min(len(l), consoleListMax))
		for _, id := range l[:min(len(l), consoleListMax)] {
			out = append(out, strconv.FormatInt(id, 10))
		}
		return out
	}
	ev := slices.Sorted(slices.Values(s.Events))
	return listenV{
		P2P: s.P2P, Group: s.Group, Room: s.Room, Ev: s.Ev,
		GIDs: ids(s.GIDs), RIDs: ids(s.RIDs), UIDs: ids(s.UIDs), Events: append([]string{}, ev[:min(len(ev), consoleListMax)]...),
		Counts: map[string]int{"gids": len(s.GIDs), "rids": len(s.RIDs), "uids": len(s.UIDs), "events": len(s.Events)},
	}
}

func viewResult(r bridge.Result) resultV {
	return resultV{ID: r.ID, OK: r.OK, Error: r.Error, Listen: viewListen(r.Listen), AppliedAt: r.AppliedAt, Offset: r.Offset}
}

// serveControl answers POST /api/control: the body is one control command
// (JSON, as on the control topic, with its id). The token is checked first
// (403 when none is configured, 401 when it is missing or wrong), then the
// command is checked with bridge.ParseCommand (400 with the same error the
// control topic would give), then it is sent and the bridge's result is
// returned (200, also for a command the bridge rejected: ok is false).
// The token is never logged or echoed.
func (k *console) serveControl(w http.ResponseWriter, r *http.Request) {
	if len(k.token) == 0 {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "console: control is disabled: start the bridge with HTTP_CONTROL_TOKEN or HTTP_CONTROL_TOKEN_FILE to enable it"})
		return
	}
	if !k.authorized(r) {
		k.log.Warn("console: control command refused: missing or wrong token", "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="rtm2kafka control"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "console: missing or wrong control token (send it as Authorization: Bearer <token>)"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, bridge.MaxCommandBytes+1))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "console: read command: " + err.Error()})
		return
	}
	cmd, err := bridge.ParseCommand(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error(), "id": cmd.ID})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), consoleControlWait)
	defer cancel()
	res, err := k.send(ctx, body)
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			code = http.StatusGatewayTimeout
		}
		k.log.Warn("console: control command not confirmed", "id", cmd.ID, "err", err)
		writeJSON(w, code, map[string]string{"error": err.Error(), "id": cmd.ID})
		return
	}
	k.log.Info("console: control command sent", "id", res.ID, "ok", res.OK, "remote", r.RemoteAddr)
	k.mu.Lock()
	k.cached = nil // the next poll shows the result
	k.mu.Unlock()
	writeJSON(w, http.StatusOK, viewResult(res))
}

// authorized compares the bearer token in constant time (hashes of equal
// length, so not even the token's length leaks).
func (k *console) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256(k.token)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1 && ok
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // a failed write means the client went away
}
