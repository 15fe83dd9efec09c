// Command bench is the end-to-end benchmark behind `make bench`: it runs
// the simulated RTM gateway in-process, the real rtm2kafka binary as a
// separate process against a real Kafka broker, finds the sustained maximum
// push rate for several body sizes and mixes, measures push → answer
// latency at fractions of that rate, the bridge's CPU, peak RSS and GC
// pauses, and the ceiling from Kafka's own ProducerPerformance tool; it
// prints a table and writes bench-results/bench-<timestamp>.{json,png}.
//
// Targets are reported, never asserted. See docs/performance.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

const (
	benchPID    = 90000001
	benchSecret = "bench-secret-not-a-real-key"
)

// scenario is one body size and mix.
type scenario struct {
	Name string `json:"name"`
	Body int    `json:"body"`
	Mix  string `json:"mix"` // "p2p-chat" or "default"
}

func (s scenario) loadMix() rtmsim.Mix {
	if s.Mix == "p2p-chat" {
		return rtmsim.Mix{P2P: 1, Chat: 1}
	}
	return rtmsim.Mix{} // the generator's default: scopes 4:3:2:1, kinds 5:1:1:2:1
}

// phaseResult is one load run against the bridge.
type phaseResult struct {
	Label          string  `json:"label"`           // "max" or "50%" …
	Fraction       float64 `json:"fraction"`        // of the max rate; 0 for the max run
	OfferedPerSec  float64 `json:"offered_per_sec"` // 0: as fast as the window allows
	Seconds        float64 `json:"seconds"`
	Messages       int     `json:"messages"`
	Answered       int64   `json:"answered"`
	Errored        int64   `json:"errored"`
	Overdue        int64   `json:"overdue"`
	Unanswered     int64   `json:"unanswered"`
	NotCovered     int     `json:"not_covered"`
	AnsweredPerSec float64 `json:"answered_per_sec"` // in the steady part (after warm-up)
	Samples        int     `json:"latency_samples"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
	P999Ms         float64 `json:"p999_ms"`
	MaxMs          float64 `json:"max_ms"`
	BridgeAckAvgMs float64 `json:"bridge_ack_avg_ms"` // the daemon's own push_ack_latency histogram, mean
	CPUCores       float64 `json:"cpu_cores"`         // the bridge process
	BrokerCores    float64 `json:"broker_cpu_cores"`  // the Kafka broker's JVM
	DriverCores    float64 `json:"driver_cpu_cores"`  // this process: simulator and load generator
	MachineCores   float64 `json:"machine_cpu_cores"` // all processes on the machine (others' too)
	PeakRSSMiB     float64 `json:"peak_rss_mib"`
	GCPauseMs      float64 `json:"gc_pause_ms"`
	GCCycles       float64 `json:"gc_cycles"`
}

// scenarioResult is everything measured for one scenario.
type scenarioResult struct {
	scenario
	MaxPerSec float64       `json:"max_per_sec"`
	Phases    []phaseResult `json:"phases"`
	Records   recordSizes   `json:"records"`
	Ceiling   *ceiling      `json:"ceiling,omitempty"`
	// Ceiling50 is ProducerPerformance throttled to 50% of the bridge's max
	// rate: the broker's own latency at the load of the 50% run.
	Ceiling50 *ceiling `json:"ceiling_at_50,omitempty"`
	Ratio     float64  `json:"ratio"` // bridge max / ceiling records/s
	// Raw and Raw50 are the Kafka half's yardstick: a plain franz-go
	// produce loop with the bridge's record shape, as fast as it goes and
	// paced at 50% of the bridge's max.
	Raw   *rawResult `json:"raw_franz_go,omitempty"`
	Raw50 *rawResult `json:"raw_franz_go_at_50,omitempty"`
	// CPUPerPushUs50 is the bridge's CPU per answered push at 50% of max;
	// CPURatio50 divides it by Raw50's CPU per record (target ≤ 2.5).
	CPUPerPushUs50 float64 `json:"bridge_cpu_us_per_push_at_50"`
	CPURatio50     float64 `json:"cpu_ratio_at_50"`
	Error          string  `json:"error,omitempty"`
}

// report is the JSON file.
type report struct {
	Started    time.Time        `json:"started"`
	Machine    map[string]any   `json:"machine"`
	Config     map[string]any   `json:"config"`
	Scenarios  []scenarioResult `json:"scenarios"`
	Outage     *outageResult    `json:"outage,omitempty"`
	ElapsedSec float64          `json:"elapsed_sec"`
}

type options struct {
	bin, brokers, out, classpath string
	partitions                   int
	dur, warm, shortDur          time.Duration
	fractions                    []float64
	sizes                        []int
	mixes                        []string
	ceilingOn                    bool
	outage                       bool
	maxInFlight                  int
	bridgeEnv                    []string
	ceilingProps                 []string
}

func main() {
	var o options
	var fr, sz, mx string
	flag.StringVar(&o.bin, "bin", "bin/rtm2kafka", "the rtm2kafka binary")
	flag.StringVar(&o.brokers, "brokers", os.Getenv("KAFKA_BROKERS"), "Kafka bootstrap broker host:port")
	flag.StringVar(&o.out, "out", "bench-results", "output directory")
	flag.StringVar(&o.classpath, "classpath", os.Getenv("KAFKA_TOOLS_CP"), "java classpath of the Kafka tools (scripts/kafka.sh tools-classpath); empty skips the ceiling")
	flag.IntVar(&o.partitions, "partitions", 6, "partitions per topic")
	flag.DurationVar(&o.dur, "duration", 10*time.Second, "length of the max run and of the 50% and 90% runs")
	flag.DurationVar(&o.shortDur, "short-duration", 5*time.Second, "length of the other fixed-rate runs")
	flag.DurationVar(&o.warm, "warmup", 2*time.Second, "start of each run not measured")
	flag.StringVar(&fr, "fractions", "0.5,0.25,0.75,0.9", "fractions of the max rate to run at, in this order (the bridge is restarted before 0.5)")
	flag.StringVar(&sz, "sizes", "100,1024,16384", "body sizes, bytes")
	flag.StringVar(&mx, "mixes", "p2p-chat,default", "mixes: p2p-chat, default; none runs no scenario (e.g. with -outage)")
	flag.IntVar(&o.maxInFlight, "max-inflight", 20000, "generator window (capped at 96 MiB of bodies)")
	var benv, cprops string
	flag.StringVar(&cprops, "ceiling-props", "", "extra ProducerPerformance producer properties, comma-separated k=v (e.g. batch.size=1048576); default: only acks=all linger.ms=2")
	flag.StringVar(&benv, "bridge-env", "", "extra environment of the bridge process, comma-separated K=V (e.g. GOGC=50,GOMEMLIMIT=64MiB)")
	flag.BoolVar(&o.outage, "outage", false, "also measure memory during a Kafka outage (private broker)")
	flag.Parse()
	o.ceilingOn = o.classpath != ""
	for _, f := range strings.Split(fr, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 || v >= 1 {
			fatalf("bad -fractions %q", fr)
		}
		o.fractions = append(o.fractions, v)
	}
	for _, s := range strings.Split(sz, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v <= 0 {
			fatalf("bad -sizes %q", sz)
		}
		o.sizes = append(o.sizes, v)
	}
	if mx != "none" {
		o.mixes = strings.Split(mx, ",")
	}
	if cprops != "" {
		o.ceilingProps = strings.Split(cprops, ",")
	}
	if benv != "" {
		o.bridgeEnv = strings.Split(benv, ",")
	}
	if o.brokers == "" {
		fatalf("set KAFKA_BROKERS or -brokers (start a broker with: bash scripts/kafka.sh start)")
	}
	if !brokerUp(o.brokers) {
		fatalf("no Kafka broker at %s (start one with: bash scripts/kafka.sh start)", o.brokers)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Printf("[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// env is the simulator and the counters its hooks feed.
type env struct {
	sim      *rtmsim.Server
	addr     string
	tr       *tracker
	answered atomic.Int64 // answered OK in time
}

func run(ctx context.Context, o options) error {
	started := time.Now()
	stamp := started.UTC().Format("20060102-150405")
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	e := &env{tr: newTracker()}
	e.sim = rtmsim.New(rtmsim.Config{
		PID: benchPID, Secret: rtm.Secret(benchSecret), AnswerTimeout: 5 * time.Second,
		OnAnswered: func(_ rtm.Scope, _, _, _ int64, ok, late bool) {
			if ok && !late {
				e.answered.Add(1)
			}
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	defer e.sim.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e.addr = ln.Addr().String()
	go func() { _ = e.sim.Serve(ctx, &trackListener{Listener: ln, t: e.tr}) }()

	rep := report{Started: started, Machine: machineInfo(), Config: map[string]any{
		"brokers": o.brokers, "partitions": o.partitions, "acks": "all", "duration_s": o.dur.Seconds(),
		"short_duration_s": o.shortDur.Seconds(), "warmup_s": o.warm.Seconds(), "fractions": o.fractions,
		"answer_timeout_s": 5, "max_inflight": o.maxInFlight, "ceiling_props": append([]string{"acks=all", "linger.ms=2"}, o.ceilingProps...),
		"bridge_env": o.bridgeEnv,
	}}
	var scen []scenario
	for _, mix := range o.mixes {
		for _, size := range o.sizes {
			scen = append(scen, scenario{Name: fmt.Sprintf("%s %s", sizeName(size), mix), Body: size, Mix: mix})
		}
	}
	base := "bench" + strings.ReplaceAll(stamp, "-", "")
	for i, sc := range scen {
		if ctx.Err() != nil {
			break
		}
		prefix := fmt.Sprintf("%s-%d", base, i)
		logf("scenario %s (topics %s.*)", sc.Name, prefix)
		res := runScenario(ctx, o, e, sc, prefix, filepath.Join(o.out, fmt.Sprintf("bridge-%s-%d.log", stamp, i)))
		if res.Error != "" {
			logf("scenario %s: %s", sc.Name, res.Error)
		}
		rep.Scenarios = append(rep.Scenarios, res)
		dctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		if err := deleteTopics(dctx, o.brokers, prefix); err != nil {
			logf("cleanup: %v", err)
		}
		cancel()
	}
	if o.outage && ctx.Err() == nil {
		r, err := runOutage(ctx, o, e, base+"-outage", filepath.Join(o.out, fmt.Sprintf("bridge-%s-outage.log", stamp)))
		if err != nil {
			logf("outage: %v", err)
		}
		rep.Outage = r
	}
	rep.ElapsedSec = time.Since(started).Seconds()
	printTable(os.Stdout, rep)
	jsonPath := filepath.Join(o.out, "bench-"+stamp+".json")
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
		return err
	}
	pngPath := filepath.Join(o.out, "bench-"+stamp+".png")
	if err := writePlot(pngPath, rep); err != nil {
		return fmt.Errorf("bench: plot: %w", err)
	}
	logf("wrote %s and %s (%.0f s)", jsonPath, pngPath, rep.ElapsedSec)
	return ctx.Err()
}

func sizeName(n int) string {
	switch {
	case n >= 1024 && n%1024 == 0:
		return fmt.Sprintf("%dKiB", n/1024)
	default:
		return fmt.Sprintf("%dB", n)
	}
}

func bridgeEnv(o options, addr, prefix string) []string {
	return append([]string{
		"RTM_ENDPOINT=" + addr, fmt.Sprintf("RTM_PID=%d", benchPID), "RTM_SECRET=" + benchSecret,
		"KAFKA_BROKERS=" + o.brokers, "KAFKA_TOPIC_PREFIX=" + prefix,
		fmt.Sprintf("KAFKA_PARTITIONS=%d", o.partitions), "KAFKA_ACKS=all",
		"LOG_LEVEL=warn",
	}, o.bridgeEnv...)
}

// startListening starts the bridge and waits until it listens at the
// simulator.
func startListening(ctx context.Context, o options, e *env, prefix, logPath string) (*bridgeProc, error) {
	br, err := startBridge(ctx, o.bin, bridgeEnv(o, e.addr, prefix), logPath)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for e.sim.Stats().Listening < 1 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			br.stop()
			return nil, fmt.Errorf("bench: the bridge did not listen at the simulator within 30 s; see %s", logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return br, nil
}

func runScenario(ctx context.Context, o options, e *env, sc scenario, prefix, logPath string) scenarioResult {
	res := scenarioResult{scenario: sc}
	br, err := startListening(ctx, o, e, prefix, logPath)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	inflight := min(o.maxInFlight, max(1000, (96<<20)/sc.Body))
	// Every run has its own Seed: runs with the same seed generate the same
	// messages, which the bridge's duplicate filter (RTM_DEDUP_WINDOW, 5 min)
	// would answer at once without Kafka. With distinct seeds a message
	// repeats an earlier run's (same from, to and mid) with p ≈ 1/1000.
	seed := uint64(1000 * (sc.Body + len(sc.Mix)))
	lc := rtmsim.LoadConfig{Mix: sc.loadMix(), BodySize: sc.Body, MaxInFlight: inflight, Seed: seed}

	// The sustained maximum: offered load as fast as the window allows.
	lc.Duration = o.dur
	pmax, err := runPhase(ctx, e, br, lc, o.warm, "max", 0)
	if err != nil {
		br.stop()
		res.Error = err.Error()
		return res
	}
	res.MaxPerSec = pmax.AnsweredPerSec
	res.Phases = append(res.Phases, pmax)
	logf("  max: %.0f answered/s (p99 %.1f ms, peak RSS %.1f MiB; CPU cores: bridge %.2f, broker %.2f, simulator %.2f, whole machine %.2f)",
		pmax.AnsweredPerSec, pmax.P99Ms, pmax.PeakRSSMiB, pmax.CPUCores, pmax.BrokerCores, pmax.DriverCores, pmax.MachineCores)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	rs, err := sampleRecordSizes(sctx, o.brokers, prefix, 200)
	cancel()
	if err != nil {
		logf("  record sizes: %v", err)
	}
	res.Records = rs
	logf("  records: avg value %.0f B, key+headers %.0f B (%d sampled of %d)", rs.AvgValue, rs.AvgKeyHeader, rs.Sampled, rs.Records)
	for _, f := range o.fractions {
		if ctx.Err() != nil {
			break
		}
		if f == 0.5 {
			// A fresh process, so that the 50% run's peak RSS is not the
			// heap the max run grew (Go returns memory to the OS lazily).
			br.stop()
			if br, err = startListening(ctx, o, e, prefix, logPath+".50"); err != nil {
				res.Error = err.Error()
				return res
			}
		}
		time.Sleep(time.Second)
		lc.Rate = f * res.MaxPerSec
		seed++
		lc.Seed = seed
		lc.Duration = o.shortDur
		if f == 0.5 || f == 0.9 {
			lc.Duration = o.dur
		}
		label := fmt.Sprintf("%.0f%%", f*100)
		p, err := runPhase(ctx, e, br, lc, o.warm, label, f)
		if err != nil {
			res.Error = err.Error()
			break
		}
		res.Phases = append(res.Phases, p)
		logf("  %s (%.0f/s): %.0f answered/s, p50 %.2f p99 %.2f p99.9 %.2f ms, peak RSS %.1f MiB, GC %.1f ms; CPU cores: bridge %.2f, broker %.2f, simulator %.2f, machine %.2f",
			label, lc.Rate, p.AnsweredPerSec, p.P50Ms, p.P99Ms, p.P999Ms, p.PeakRSSMiB, p.GCPauseMs, p.CPUCores, p.BrokerCores, p.DriverCores, p.MachineCores)
	}
	br.stop()
	if ctx.Err() == nil && res.Records.AvgValue > 0 {
		rawYardstick(ctx, o, prefix, &res)
	}
	if o.ceilingOn && ctx.Err() == nil && res.Records.AvgValue > 0 {
		size := int(math.Round(res.Records.AvgValue))
		n := int64(1.5 * res.MaxPerSec * o.dur.Seconds())
		n = max(n, 50_000)
		n = min(n, int64((1536<<20)/size))
		cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		c, err := runCeiling(cctx, o.classpath, o.brokers, prefix+".ceiling", o.partitions, size, n, -1, o.ceilingProps)
		cancel()
		if err != nil {
			logf("  ceiling: %v", err)
		} else {
			res.Ceiling = &c
			res.Ratio = res.MaxPerSec / c.PerSec
			logf("  ceiling (ProducerPerformance, %d B records): %s", size, c.Line)
		}
		rate := 0.5 * res.MaxPerSec
		cctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
		c50, err := runCeiling(cctx, o.classpath, o.brokers, prefix+".ceiling50", o.partitions, size, int64(rate*o.shortDur.Seconds()), rate, o.ceilingProps)
		cancel()
		if err != nil {
			logf("  ceiling at 50%%: %v", err)
		} else {
			res.Ceiling50 = &c50
			logf("  ceiling at %.0f/s: %s", rate, c50.Line)
		}
	}
	return res
}

// runPhase runs one load run and measures it.
func runPhase(ctx context.Context, e *env, br *bridgeProc, lc rtmsim.LoadConfig, warm time.Duration, label string, frac float64) (phaseResult, error) {
	p := phaseResult{Label: label, Fraction: frac, OfferedPerSec: lc.Rate}
	m0, err := br.metrics()
	if err != nil {
		return p, err
	}
	br.resetPeak()
	bpid := brokerPID()
	bc0, dc0, mc0 := procCPUSeconds(bpid), procCPUSeconds(os.Getpid()), machineBusySeconds()
	t0 := time.Now()
	type out struct {
		r   rtmsim.LoadResult
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := e.sim.Generate(ctx, lc)
		done <- out{r, err}
	}()
	// Steady window: [warm, Duration).
	time.Sleep(time.Until(t0.Add(warm)))
	a1, tA := e.answered.Load(), time.Now()
	e.tr.start()
	time.Sleep(time.Until(t0.Add(lc.Duration)))
	a2, tB := e.answered.Load(), time.Now()
	samples := e.tr.stop()
	r := <-done
	t1 := time.Now()
	m1, err := br.metrics()
	if err != nil {
		return p, err
	}
	if r.err != nil {
		return p, fmt.Errorf("bench: generate: %w", r.err)
	}
	p.Seconds = t1.Sub(t0).Seconds()
	p.Messages, p.NotCovered = r.r.Messages, r.r.NotCovered
	p.Answered, p.Errored, p.Overdue, p.Unanswered = r.r.Answered, r.r.Errored, r.r.Overdue, r.r.Unanswered
	p.AnsweredPerSec = float64(a2-a1) / tB.Sub(tA).Seconds()
	p.Samples = len(samples)
	p.P50Ms, p.P99Ms, p.P999Ms = quantile(samples, 0.50), quantile(samples, 0.99), quantile(samples, 0.999)
	if len(samples) > 0 {
		p.MaxMs = float64(samples[len(samples)-1]) / 1e6
	}
	d := func(k string) float64 { return m1[k] - m0[k] }
	wall := t1.Sub(t0).Seconds()
	p.CPUCores = d("process_cpu_seconds_total") / wall
	p.BrokerCores = (procCPUSeconds(bpid) - bc0) / wall
	p.DriverCores = (procCPUSeconds(os.Getpid()) - dc0) / wall
	p.MachineCores = (machineBusySeconds() - mc0) / wall
	p.GCPauseMs = d("go_gc_duration_seconds_sum") * 1000
	p.GCCycles = d("go_gc_duration_seconds_count")
	if n := d("rtm2kafka_push_ack_latency_seconds_count"); n > 0 {
		p.BridgeAckAvgMs = d("rtm2kafka_push_ack_latency_seconds_sum") / n * 1000
	}
	p.PeakRSSMiB = br.peakRSSMiB()
	if p.Errored+p.Overdue+p.Unanswered > 0 || p.NotCovered > 0 {
		logf("  %s: WARNING errored %d overdue %d unanswered %d not covered %d", label, p.Errored, p.Overdue, p.Unanswered, p.NotCovered)
	}
	return p, nil
}

// machineInfo describes the machine for the report.
func machineInfo() map[string]any {
	m := map[string]any{}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "processor") {
				n++
			}
			if v, ok := strings.CutPrefix(l, "model name"); ok && m["cpu_model"] == nil {
				m["cpu_model"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
			}
		}
		m["cpus"] = n
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				m["mem_gib"] = math.Round(kb/1024/1024*10) / 10
			}
		}
	}
	return m
}

func printTable(w *os.File, rep report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\tmix\trec B\tbridge max/s\tceiling rec/s\tratio\tp50/p99/p99.9 ms @50%\tp50/p99/p99.9 ms @90%\tCPU cores @50%/max\tpeak RSS MiB @50%/max\tGC pause ms @50%/max\tKafka's own p50/p99 ms @50%\t")
	for _, s := range rep.Scenarios {
		var p50, p90, pm *phaseResult
		for i := range s.Phases {
			switch s.Phases[i].Label {
			case "50%":
				p50 = &s.Phases[i]
			case "90%":
				p90 = &s.Phases[i]
			case "max":
				pm = &s.Phases[i]
			}
		}
		lat := func(p *phaseResult) string {
			if p == nil {
				return "-"
			}
			return fmt.Sprintf("%.2f/%.2f/%.2f", p.P50Ms, p.P99Ms, p.P999Ms)
		}
		pair := func(f func(p *phaseResult) float64, format string) string {
			a, b := "-", "-"
			if p50 != nil {
				a = fmt.Sprintf(format, f(p50))
			}
			if pm != nil {
				b = fmt.Sprintf(format, f(pm))
			}
			return a + "/" + b
		}
		ceil, ratio := "-", "-"
		if s.Ceiling != nil {
			ceil, ratio = fmt.Sprintf("%.0f", s.Ceiling.PerSec), fmt.Sprintf("%.2f", s.Ratio)
		}
		c50 := "-"
		if s.Ceiling50 != nil {
			c50 = fmt.Sprintf("%.0f/%.0f", s.Ceiling50.P50Ms, s.Ceiling50.P99Ms)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", sizeName(s.Body), s.Mix, s.Records.AvgValue, s.MaxPerSec, ceil, ratio,
			lat(p50), lat(p90),
			pair(func(p *phaseResult) float64 { return p.CPUCores }, "%.2f"),
			pair(func(p *phaseResult) float64 { return p.PeakRSSMiB }, "%.0f"),
			pair(func(p *phaseResult) float64 { return p.GCPauseMs }, "%.1f"), c50)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nKafka-half yardstick (raw franz-go produce loop, same record shape and topics, acks=all, idempotent):\n")
	for _, s := range rep.Scenarios {
		if s.Raw == nil {
			continue
		}
		line := fmt.Sprintf("  %s %s: raw %.0f rec/s at %.2f µs CPU/rec (bridge max %.0f/s = %.2f× raw)",
			sizeName(s.Body), s.Mix, s.Raw.PerSec, s.Raw.CPUUsPerRec, s.MaxPerSec, s.MaxPerSec/s.Raw.PerSec)
		if s.Raw50 != nil {
			line += fmt.Sprintf("; at 50%%: bridge %.2f µs CPU/push vs raw %.2f µs/rec = %.2f× (target ≤ 2.5)",
				s.CPUPerPushUs50, s.Raw50.CPUUsPerRec, s.CPURatio50)
		}
		fmt.Fprintln(w, line)
	}
	if rep.Outage != nil {
		o := rep.Outage
		fmt.Fprintf(w, "\nKafka outage under load: peak RSS %.1f MiB before, %.1f MiB during %.0f s outage (window %d records / %d MiB); answered before %d, after restart %d; overdue %d, unanswered %d\n",
			o.RSSBeforeMiB, o.PeakRSSMiB, o.OutageSec, o.WindowRecords, o.WindowBytes>>20, o.AnsweredBefore, o.AnsweredAfter, o.Overdue, o.Unanswered)
	}
}
