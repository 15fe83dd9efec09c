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

	"github.com/segmentio/kafka-go"
)

// topicsWithPrefix lists the topics whose name starts with prefix+".".
func topicsWithPrefix(ctx context.Context, broker, prefix string) (map[string][]int, error) {
	c, err := kafka.DialContext(ctx, "tcp", broker)
	if err != nil {
		return nil, fmt.Errorf("bench: dial %s: %w", broker, err)
	}
	defer c.Close()
	parts, err := c.ReadPartitions()
	if err != nil {
		return nil, fmt.Errorf("bench: read partitions: %w", err)
	}
	out := make(map[string][]int)
	for _, p := range parts {
		if strings.HasPrefix(p.Topic, prefix+".") {
			out[p.Topic] = append(out[p.Topic], p.ID)
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
	for topic, parts := range tps {
		if strings.Contains(topic, "control") || strings.Contains(topic, "dead") || strings.HasSuffix(topic, ".dlq") {
			continue
		}
		var tCount int64
		var tValue float64
		for _, p := range parts {
			count, sumV, sumKH, n, err := samplePartition(ctx, broker, topic, p, perPartition)
			if err != nil {
				return rs, err
			}
			if n == 0 {
				continue
			}
			rs.Records += count
			rs.Sampled += n
			wValue += float64(count) * float64(sumV) / float64(n)
			wKH += float64(count) * float64(sumKH) / float64(n)
			tCount += count
			tValue += float64(count) * float64(sumV) / float64(n)
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

func samplePartition(ctx context.Context, broker, topic string, part, max int) (count, sumV, sumKH int64, n int, err error) {
	c, err := kafka.DialLeader(ctx, "tcp", broker, topic, part)
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("bench: dial leader %s/%d: %w", topic, part, err)
	}
	defer c.Close()
	first, last, err := c.ReadOffsets()
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("bench: offsets %s/%d: %w", topic, part, err)
	}
	count = last - first
	if count == 0 {
		return 0, 0, 0, 0, nil
	}
	from := max64(first, last-int64(max))
	if _, err := c.Seek(from, kafka.SeekAbsolute); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("bench: seek %s/%d: %w", topic, part, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	batch := c.ReadBatch(1, 64<<20)
	defer batch.Close()
	for off := from; off < last; off++ {
		m, err := batch.ReadMessage()
		if err != nil {
			break
		}
		sumV += int64(len(m.Value))
		kh := len(m.Key)
		for _, h := range m.Headers {
			kh += len(h.Key) + len(h.Value)
		}
		sumKH += int64(kh)
		n++
	}
	return count, sumV, sumKH, n, nil
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// kafkaClient is a kafka-go admin client for broker.
func kafkaClient(broker string) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(broker), Timeout: 60 * time.Second}
}

// createTopic creates topic with partitions.
func createTopic(ctx context.Context, broker, topic string, partitions int) error {
	res, err := kafkaClient(broker).CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: -1}},
	})
	if err != nil {
		return fmt.Errorf("bench: create topic %s: %w", topic, err)
	}
	if err := res.Errors[topic]; err != nil {
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
	_, err = kafkaClient(broker).DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: names})
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
