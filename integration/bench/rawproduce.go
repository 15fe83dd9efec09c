package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// rawResult is the Kafka half's yardstick: a plain franz-go produce loop
// with the bridge's record shape (value and key+headers sizes measured in
// the same run), to the same topics, with the bridge's producer settings
// (idempotent, acks=all, linger 2 ms, the window as the buffer bound).
type rawResult struct {
	Records       int64   `json:"records"`
	PerSec        float64 `json:"per_sec"`
	CPUUsPerRec   float64 `json:"cpu_us_per_record"`
	TargetPerSec  float64 `json:"target_per_sec,omitempty"` // 0: as fast as it goes
	ElapsedSec    float64 `json:"elapsed_sec"`
	Errors        int64   `json:"errors"`
	ValueBytes    int     `json:"value_bytes"`
	KeyHeaderByte int     `json:"key_header_bytes"`
}

// cpuSelf returns this process's user+system CPU time.
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runRawProduce produces n records spread over topics (weighted equally,
// keys over 10,000 ids) and waits for every ack; rate > 0 paces it.
func runRawProduce(ctx context.Context, broker string, topics []string, n int64, valueSize, keyHdrSize int, rate float64, window int) (rawResult, error) {
	res := rawResult{Records: n, TargetPerSec: rate, ValueBytes: valueSize, KeyHeaderByte: keyHdrSize}
	if len(topics) == 0 {
		return res, fmt.Errorf("raw produce: no topics")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(window),
	)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	value := make([]byte, valueSize)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	// Seven headers like the bridge's rtm-* set, sized so key+headers
	// match the measured average.
	hdrVal := make([]byte, max(0, (keyHdrSize-8-7*7)/7))
	var wg sync.WaitGroup
	var errs int64
	var mu sync.Mutex
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			errs++
			mu.Unlock()
		}
		wg.Done()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	c0, t0 := cpuSelf(), time.Now()
	for i := int64(0); i < n && ctx.Err() == nil; i++ {
		if rate > 0 {
			if d := time.Until(t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		r := &kgo.Record{Topic: topics[i%int64(len(topics))], Key: strconv.AppendInt(nil, int64(rng.IntN(10000))+1000000, 10), Value: value}
		r.Headers = make([]kgo.RecordHeader, 7)
		for j := range r.Headers {
			r.Headers[j] = kgo.RecordHeader{Key: "rtm-hdr" + strconv.Itoa(j), Value: hdrVal}
		}
		wg.Add(1)
		cl.Produce(ctx, r, promise)
	}
	wg.Wait()
	el := time.Since(t0)
	res.ElapsedSec = el.Seconds()
	res.PerSec = float64(n) / el.Seconds()
	res.CPUUsPerRec = float64((cpuSelf() - c0).Microseconds()) / float64(n)
	res.Errors = errs
	if errs > 0 {
		return res, fmt.Errorf("raw produce: %d of %d records failed", errs, n)
	}
	return res, nil
}

// rawYardstick runs the raw loop twice against the scenario's data topics
// (those the bridge wrote to): unpaced, and paced at 50% of the bridge's
// max, and compares CPU per record with the bridge's CPU per push there.
func rawYardstick(ctx context.Context, o options, prefix string, res *scenarioResult) {
	var topics []string
	for t := range res.Records.ValueByTopic {
		topics = append(topics, t)
	}
	size, kh := int(res.Records.AvgValue), int(res.Records.AvgKeyHeader)
	n := int64(min(max(1.5*res.MaxPerSec*o.dur.Seconds(), 50_000), float64((1536<<20)/max(size, 1))))
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	raw, err := runRawProduce(cctx, o.brokers, topics, n, size, kh, 0, 10000)
	cancel()
	if err != nil {
		logf("  raw franz-go loop: %v", err)
		return
	}
	res.Raw = &raw
	logf("  raw franz-go loop (%d topics, %d B values): %.0f records/s, %.2f µs CPU per record", len(topics), size, raw.PerSec, raw.CPUUsPerRec)
	rate := 0.5 * res.MaxPerSec
	cctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	raw50, err := runRawProduce(cctx, o.brokers, topics, int64(rate*o.shortDur.Seconds()), size, kh, rate, 10000)
	cancel()
	if err != nil {
		logf("  raw franz-go loop at 50%%: %v", err)
		return
	}
	res.Raw50 = &raw50
	for _, p := range res.Phases {
		if p.Fraction == 0.5 && p.AnsweredPerSec > 0 {
			res.CPUPerPushUs50 = p.CPUCores / p.AnsweredPerSec * 1e6
		}
	}
	if raw50.CPUUsPerRec > 0 {
		res.CPURatio50 = res.CPUPerPushUs50 / raw50.CPUUsPerRec
	}
	logf("  at %.0f/s: bridge %.2f µs CPU per push, raw loop %.2f µs per record: ratio %.2f (target ≤ 2.5)",
		rate, res.CPUPerPushUs50, raw50.CPUUsPerRec, res.CPURatio50)
}
