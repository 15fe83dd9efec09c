package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// admin is a kadm client for broker; close it with closeAdmin.
func admin(broker string) (*kadm.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DialTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("bench: client for %s: %w", broker, err)
	}
	return kadm.NewClient(cl), nil
}

// topicsWithPrefix lists the topics whose name starts with prefix+".".
func topicsWithPrefix(ctx context.Context, broker, prefix string) (map[string][]int, error) {
	adm, err := admin(broker)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench: list topics: %w", err)
	}
	out := make(map[string][]int)
	for name, td := range tds {
		if !strings.HasPrefix(name, prefix+".") {
			continue
		}
		for _, p := range td.Partitions.Numbers() {
			out[name] = append(out[name], int(p))
		}
	}
	return out, nil
}

// recordSizes is the average size of the records the bridge wrote.
type recordSizes struct {
	Records      int64              `json:"records"`      // records in the data topics
	Sampled      int                `json:"sampled"`      // records read to measure
	AvgValue     float64            `json:"avg_value"`    // bytes
	AvgKeyHeader float64            `json:"avg_key_hdrs"` // key + header keys and values, bytes
	ValueByTopic map[string]float64 `json:"value_by_topic"`
}

// sampleRecordSizes reads up to perPartition of the last records of every
// data topic of prefix and weighs each partition's average by its record
// count.
func sampleRecordSizes(ctx context.Context, broker, prefix string, perPartition int) (recordSizes, error) {
	var rs recordSizes
	rs.ValueByTopic = make(map[string]float64)
	tps, err := topicsWithPrefix(ctx, broker, prefix)
	if err != nil {
		return rs, err
	}
	var wValue, wKH float64
	for topic := range tps {
		if strings.Contains(topic, "control") || strings.Contains(topic, "dead") || strings.HasSuffix(topic, ".dlq") {
			continue
		}
		parts, err := sampleTopic(ctx, broker, topic, perPartition)
		if err != nil {
			return rs, err
		}
		var tCount int64
		var tValue float64
		for _, ps := range parts {
			if ps.n == 0 {
				continue
			}
			rs.Records += ps.count
			rs.Sampled += ps.n
			wValue += float64(ps.count) * float64(ps.sumV) / float64(ps.n)
			wKH += float64(ps.count) * float64(ps.sumKH) / float64(ps.n)
			tCount += ps.count
			tValue += float64(ps.count) * float64(ps.sumV) / float64(ps.n)
		}
		if tCount > 0 {
			rs.ValueByTopic[topic] = tValue / float64(tCount)
		}
	}
	if rs.Records > 0 {
		rs.AvgValue = wValue / float64(rs.Records)
		rs.AvgKeyHeader = wKH / float64(rs.Records)
	}
	return rs, nil
}

// partSample is what sampleTopic measured in one partition.
type partSample struct {
	count       int64 // records in the partition
	sumV, sumKH int64 // value bytes; key and header bytes
	n           int   // records read
}

// sampleTopic reads up to max of the last records of every partition of
// topic (up to the end offsets listed first; at most 10 s).
func sampleTopic(ctx context.Context, broker, topic string, max int) (map[int32]*partSample, error) {
	adm, err := admin(broker)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("bench: start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("bench: end offsets of %s: %w", topic, err)
	}
	out := map[int32]*partSample{}
	from := map[int32]kgo.Offset{}
	left := map[int32]int64{}
	ends.Each(func(e kadm.ListedOffset) {
		st, _ := starts.Lookup(topic, e.Partition)
		out[e.Partition] = &partSample{count: e.Offset - st.Offset}
		if e.Offset > st.Offset {
			from[e.Partition] = kgo.NewOffset().At(max64(st.Offset, e.Offset-int64(max)))
			left[e.Partition] = e.Offset
		}
	})
	if len(from) == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
	if err != nil {
		return nil, fmt.Errorf("bench: consumer for %s: %w", topic, err)
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for len(left) > 0 && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			ps := out[r.Partition]
			ps.sumV += int64(len(r.Value))
			kh := len(r.Key)
			for _, h := range r.Headers {
				kh += len(h.Key) + len(h.Value)
			}
			ps.sumKH += int64(kh)
			ps.n++
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
	}
	return out, nil // a partition cut short by the 10 s bound is sampled with what was read
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// createTopic creates topic with partitions (the broker's replication
// factor).
func createTopic(ctx context.Context, broker, topic string, partitions int) error {
	adm, err := admin(broker)
	if err != nil {
		return err
	}
	defer adm.Close()
	if _, err := adm.CreateTopic(ctx, int32(partitions), -1, nil, topic); err != nil {
		return fmt.Errorf("bench: create topic %s: %w", topic, err)
	}
	return nil
}

// deleteTopics deletes every topic of prefix.
func deleteTopics(ctx context.Context, broker, prefix string) error {
	tps, err := topicsWithPrefix(ctx, broker, prefix)
	if err != nil {
		return err
	}
	if len(tps) == 0 {
		return nil
	}
	var names []string
	for t := range tps {
		names = append(names, t)
	}
	adm, err := admin(broker)
	if err != nil {
		return err
	}
	defer adm.Close()
	res, err := adm.DeleteTopics(ctx, names...)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return fmt.Errorf("bench: delete topics: %w", err)
	}
	return nil
}

// ceiling is one run of Kafka's own ProducerPerformance.
type ceiling struct {
	RecordSize int      `json:"record_size"`
	Throughput float64  `json:"throughput"`            // the --throughput asked for; -1 = unthrottled
	ExtraProps []string `json:"extra_props,omitempty"` // producer properties beyond acks=all linger.ms=2
	Records    int64    `json:"records"`
	PerSec     float64  `json:"records_per_sec"`
	MBPerSec   float64  `json:"mb_per_sec"`
	AvgMs      float64  `json:"avg_ms"`
	MaxMs      float64  `json:"max_ms"`
	P50Ms      float64  `json:"p50_ms"`
	P95Ms      float64  `json:"p95_ms"`
	P99Ms      float64  `json:"p99_ms"`
	P999Ms     float64  `json:"p999_ms"`
	Line       string   `json:"line"`
}

var ppFinal = regexp.MustCompile(`^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, ([\d.]+) ms 50th, ([\d.]+) ms 95th, ([\d.]+) ms 99th, ([\d.]+) ms 99.9th`)

// runCeiling runs ProducerPerformance against a fresh topic of partitions
// with n records of size bytes, acks=all, linger.ms=2 and extraProps
// (more producer properties, k=v), at throughput records/s (-1: as fast as
// it can).
func runCeiling(ctx context.Context, classpath, broker, topic string, partitions, size int, n int64, throughput float64, extraProps []string) (ceiling, error) {
	c := ceiling{RecordSize: size, Throughput: throughput, ExtraProps: extraProps}
	if err := createTopic(ctx, broker, topic, partitions); err != nil {
		return c, err
	}
	cmd := exec.CommandContext(ctx, "java", "-Xmx512m", "-cp", classpath, "org.apache.kafka.tools.ProducerPerformance",
		"--topic", topic, "--num-records", strconv.FormatInt(n, 10), "--record-size", strconv.Itoa(size),
		"--throughput", strconv.FormatFloat(throughput, 'f', 0, 64), "--producer-props", "acks=all", "bootstrap.servers="+broker, "linger.ms=2")
	cmd.Args = append(cmd.Args, extraProps...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return c, fmt.Errorf("bench: ProducerPerformance: %w\n%s", err, tail(out.String(), 2000))
	}
	for _, line := range strings.Split(out.String(), "\n") {
		m := ppFinal.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		c.Line = strings.TrimSpace(line)
		c.Records, _ = strconv.ParseInt(m[1], 10, 64)
		f := func(i int) float64 { v, _ := strconv.ParseFloat(m[i], 64); return v }
		c.PerSec, c.MBPerSec, c.AvgMs, c.MaxMs = f(2), f(3), f(4), f(5)
		c.P50Ms, c.P95Ms, c.P99Ms, c.P999Ms = f(6), f(7), f(8), f(9)
	}
	if c.Line == "" {
		return c, fmt.Errorf("bench: no final line in ProducerPerformance output:\n%s", tail(out.String(), 2000))
	}
	return c, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// brokerUp reports whether broker accepts TCP connections.
func brokerUp(broker string) bool {
	c, err := net.DialTimeout("tcp", broker, 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
