package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/rtm2kafka/rtm2kafka/rtm/rtmsim"
)

// outageResult is the bridge's memory while its (private) broker is down
// under load.
type outageResult struct {
	Rate           float64 `json:"rate"`
	Body           int     `json:"body"`
	OutageSec      float64 `json:"outage_sec"`
	RSSBeforeMiB   float64 `json:"rss_before_mib"` // peak in the 5 s before the kill
	PeakRSSMiB     float64 `json:"peak_rss_mib"`   // peak from the kill to the restart
	WindowRecords  int     `json:"window_records"`
	WindowBytes    int64   `json:"window_bytes"`
	AnsweredBefore int64   `json:"answered_before"`
	AnsweredAfter  int64   `json:"answered_after"` // from the restart to the end of the run
	Overdue        int64   `json:"overdue"`
	Unanswered     int64   `json:"unanswered"`
}

// Ports and state of the private broker of the outage run.
const (
	outagePort  = "29092"
	outageCPort = "29093"
	outageState = "/tmp/rtm2kafka-bench-outage-kafka"
	kafkaScript = "scripts/kafka.sh"
)

func kafkaSh(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "bash", append([]string{kafkaScript}, args...)...)
	cmd.Env = append(os.Environ(), "KAFKA_PORT="+outagePort, "KAFKA_CONTROLLER_PORT="+outageCPort, "RTM2KAFKA_STATE="+outageState)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("bench: kafka.sh %v: %w\n%s", args, err, tail(string(out), 1500))
	}
	return nil
}

// runOutage starts a private broker, runs 1 KiB p2p chat at a fixed rate,
// kills the broker for 20 s while sampling the bridge's RSS, restarts it and
// lets the run finish.
func runOutage(ctx context.Context, o options, e *env, prefix, logPath string) (*outageResult, error) {
	const (
		rate    = 2000.0
		body    = 1024
		outage  = 20 * time.Second
		windowR = 10000
		windowB = 64 << 20
	)
	r := &outageResult{Rate: rate, Body: body, OutageSec: outage.Seconds(), WindowRecords: windowR, WindowBytes: windowB}
	logf("outage: starting a private broker on 127.0.0.1:%s", outagePort)
	if err := kafkaSh(ctx, "start", "--fresh"); err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := kafkaSh(sctx, "stop"); err != nil {
			logf("outage: %v", err)
		}
	}()
	oo := o
	oo.brokers = "127.0.0.1:" + outagePort
	br, err := startListening(ctx, oo, e, prefix, logPath)
	if err != nil {
		return nil, err
	}
	defer br.stop()
	lc := rtmsim.LoadConfig{Mix: rtmsim.Mix{P2P: 1, Chat: 1}, BodySize: body, Rate: rate, Duration: 5*time.Second + outage + 15*time.Second,
		MaxInFlight: 50_000, Seed: 2}
	type out struct {
		r   rtmsim.LoadResult
		err error
	}
	done := make(chan out, 1)
	br.resetPeak()
	a0 := e.answered.Load()
	go func() {
		res, err := e.sim.Generate(ctx, lc)
		done <- out{res, err}
	}()
	time.Sleep(5 * time.Second)
	r.RSSBeforeMiB = br.peakRSSMiB()
	r.AnsweredBefore = e.answered.Load() - a0
	logf("outage: killing the broker for %s (bridge RSS %.1f MiB)", outage, r.RSSBeforeMiB)
	if err := kafkaSh(ctx, "kill"); err != nil {
		return r, err
	}
	br.resetPeak()
	time.Sleep(outage)
	r.PeakRSSMiB = br.peakRSSMiB()
	logf("outage: peak RSS during the outage %.1f MiB; restarting the broker", r.PeakRSSMiB)
	a1 := e.answered.Load()
	if err := kafkaSh(ctx, "start"); err != nil {
		return r, err
	}
	res := <-done
	r.AnsweredAfter = e.answered.Load() - a1
	r.Overdue, r.Unanswered = res.r.Overdue, res.r.Unanswered
	if res.err != nil {
		return r, res.err
	}
	return r, nil
}
