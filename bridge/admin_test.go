package bridge

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rtm2kafka/rtm2kafka/integration/kafkatest"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// lockedBuf is a goroutine-safe log sink.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestEnsureTopicsCreatesAndChecks(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	prefix := strings.TrimSuffix(kafkatest.UniquePrefix(t), "-")
	r := &topics.Router{Prefix: prefix}
	if err := r.Init(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A control topic made by hand, wrongly: two partitions, finite retention.
	kafkatest.CreateTopic(t, brokers, r.ControlTopic(), 2)
	c, done := testClient(brokers)
	defer done()
	if _, err := c.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: r.ControlTopic(),
		Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: "retention.ms", Value: "60000", ConfigOperation: kafka.ConfigOperationSet}},
	}}}); err != nil {
		t.Fatalf("alter config: %v", err)
	}
	var logs lockedBuf
	b, err := New(Config{Brokers: brokers, Router: r, Partitions: 3, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	all := append(r.Topics(), r.DeadLetterTopic(), r.ControlResultsTopic())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, done := testClient(brokers)
		defer done()
		_, _ = c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: all})
		quietDefaultTransport()
	})
	if err := b.EnsureTopics(ctx); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	if err := b.EnsureTopics(ctx); err != nil {
		t.Fatalf("EnsureTopics again (all exist): %v", err)
	}
	for _, tp := range all {
		want := 3
		if tp == r.ControlResultsTopic() {
			want = 1
		}
		if err := kafkatest.WaitTopic(ctx, brokers, tp, want); err != nil {
			t.Fatalf("topic %s: %v", tp, err)
		}
	}
	out := logs.String()
	for _, want := range []string{"has 2 partitions", "retention.ms=60000"} {
		if !strings.Contains(out, want) {
			t.Errorf("no warning containing %q in:\n%s", want, out)
		}
	}
	if err := b.CheckWritable(ctx); err != nil {
		t.Fatalf("CheckWritable: %v", err)
	}
}

// TestEnsureTopicsControlConfig checks the control topic EnsureTopics makes:
// one partition, unlimited retention.
func TestEnsureTopicsControlConfig(t *testing.T) {
	b, brokers := testBridge(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, done := testClient(brokers)
	defer done()
	if w := b.checkControlTopic(ctx, c); len(w) != 0 {
		t.Fatalf("control topic made by EnsureTopics has warnings: %v", w)
	}
	ids, err := kafkatest.Partitions(ctx, brokers, b.router.ControlTopic())
	if err != nil || len(ids) != 1 {
		t.Fatalf("control topic partitions %v, %v; want one", ids, err)
	}
}

func TestCheckWritableUnreachable(t *testing.T) {
	b, err := New(Config{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	start := time.Now()
	if err := b.CheckWritable(context.Background()); err == nil {
		t.Fatal("CheckWritable succeeded without a broker")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("CheckWritable took %v", d)
	}
}
