package kafkatest_test

import (
	"context"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rtm2kafka/rtm2kafka/integration/kafkatest"
)

func TestParseBrokers(t *testing.T) {
	for in, want := range map[string][]string{
		"127.0.0.1:19092":                 {"127.0.0.1:19092"},
		" a:1, b:2 ,,":                    {"a:1", "b:2"},
		"PLAINTEXT://a:1,plaintext://b:2": {"a:1", "b:2"},
		"":                                nil,
	} {
		if got := kafkatest.ParseBrokers(in); !reflect.DeepEqual(got, want) {
			t.Errorf("ParseBrokers(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUniquePrefix(t *testing.T) {
	a, b := kafkatest.UniquePrefix(t), kafkatest.UniquePrefix(t)
	if a == b {
		t.Fatalf("UniquePrefix repeated: %q", a)
	}
	legal := regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	t.Run("sub test/with spaces & ünïcode", func(t *testing.T) {
		p := kafkatest.UniquePrefix(t)
		if !legal.MatchString(p+"topic") || !strings.HasSuffix(p, "-") || len(p) > 120 {
			t.Fatalf("UniquePrefix = %q: not a legal, short topic prefix", p)
		}
	})
}

func TestCreateTopicReadAll(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.UniquePrefix(t) + "readall"
	kafkatest.CreateTopic(t, brokers, topic, 4)
	kafkatest.CreateTopic(t, brokers, topic, 4) // already exists: fine

	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
		Balancer: &kafka.RoundRobin{}, BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs(40, "ra")...); err != nil {
		t.Fatalf("write: %v", err)
	}

	got := kafkatest.ReadAll(t, brokers, topic, 40, 20*time.Second)
	parts := map[int]int{}
	for _, m := range got {
		parts[m.Partition]++
	}
	if len(got) != 40 || len(parts) != 4 {
		t.Fatalf("ReadAll: %d messages from partitions %v, want 40 from 4", len(got), parts)
	}

	start := time.Now()
	got = kafkatest.ReadAll(t, brokers, topic, 41, time.Second) // one more than there is
	if len(got) != 40 || time.Since(start) > 5*time.Second {
		t.Fatalf("ReadAll(n=41, 1s): %d messages after %v, want 40 after ~1s", len(got), time.Since(start))
	}

	if _, err := kafkatest.ReadAllErr(ctx, brokers, topic+"-missing", 1, time.Second); err == nil {
		t.Fatal("ReadAllErr on a missing topic: want an error")
	}
}
