package testkit_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
)

func TestWait(t *testing.T) {
	var n atomic.Int32
	testkit.Eventually(t, 5*time.Second, func() bool { return n.Add(1) >= 5 }, "n to reach %d", 5)
	if n.Load() != 5 {
		t.Fatalf("cond called %d times, want 5", n.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := testkit.Wait(ctx, "never", func() bool { return false })
	if !errors.Is(err, context.DeadlineExceeded) || err.Error() != "waiting for never: context deadline exceeded" {
		t.Fatalf("Wait on a false condition: %v", err)
	}
}

func TestLeakCheck(t *testing.T) {
	base := testkit.StableGoroutines()
	stop := make(chan struct{})
	for range 3 {
		go func() { <-stop }()
	}
	if testkit.StableGoroutines() < base+3 {
		t.Fatal("StableGoroutines does not see three parked goroutines")
	}
	close(stop)
	testkit.WaitGoroutines(t, base)
}

func TestParseBrokers(t *testing.T) {
	for in, want := range map[string][]string{
		"127.0.0.1:19092":                 {"127.0.0.1:19092"},
		" a:1, b:2 ,,":                    {"a:1", "b:2"},
		"PLAINTEXT://a:1,plaintext://b:2": {"a:1", "b:2"},
		"":                                nil,
	} {
		if got := testkit.ParseBrokers(in); !reflect.DeepEqual(got, want) {
			t.Errorf("ParseBrokers(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFranzGoCalls checks the franz-go calls the tests rely on against the
// real broker: topic creation (twice is fine), an idempotent acks=all
// ProduceSync with keys and headers, ReadAll/ReadToEnd stopping at the end
// offsets of their start (not at n records), per-partition order, a
// missing topic reading as empty, and deletion.
func TestFranzGoCalls(t *testing.T) {
	brokers := testkit.Brokers(t)
	topic := testkit.UniqueName(t)
	testkit.CreateTopic(t, brokers, topic, 4, map[string]string{"retention.ms": "-1"})
	testkit.CreateTopic(t, brokers, topic, 4, nil)

	cl := testkit.ClientFor(t, brokers, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	recs := make([]*kgo.Record, 40)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte("k" + strconv.Itoa(i%7)), Value: []byte(fmt.Sprintf("v-%02d", i)),
			Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.Itoa(i))}}}
	}
	testkit.Produce(t, cl, recs...)

	got := testkit.ReadAll(t, brokers, topic, 30, 20*time.Second) // fewer than there are: all 40 come back
	parts := map[int32]int64{}
	for _, r := range got {
		if last, ok := parts[r.Partition]; ok && r.Offset != last+1 {
			t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, last)
		}
		parts[r.Partition] = r.Offset
		if h := testkit.Headers(r); h["seq"] == "" {
			t.Fatalf("record %s/%d@%d lost its header", r.Topic, r.Partition, r.Offset)
		}
	}
	if len(got) != 40 || len(parts) != 4 {
		t.Fatalf("ReadAll: %d records from partitions %v, want 40 from 4", len(got), parts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if n, err := testkit.Count(ctx, brokers, topic); err != nil || n != 40 {
		t.Fatalf("Count = %d, %v; want 40", n, err)
	}
	if ps, err := testkit.Partitions(ctx, brokers, topic); err != nil || !reflect.DeepEqual(ps, []int32{0, 1, 2, 3}) {
		t.Fatalf("Partitions = %v, %v", ps, err)
	}
	if got, err := testkit.ReadToEnd(ctx, brokers, topic+"-missing"); err != nil || len(got) != 0 {
		t.Fatalf("ReadToEnd of a missing topic: %d records, %v; want none, nil", len(got), err)
	}
	if err := testkit.DeleteTopics(ctx, brokers, topic, topic+"-missing"); err != nil {
		t.Fatal(err)
	}
}
