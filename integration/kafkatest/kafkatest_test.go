package kafkatest_test

import (
	"context"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rtm2kafka/rtm2kafka/integration/kafkatest"
)

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

// TestBrokersAndTopics: the broker lookup answers (KAFKA_BROKERS or
// Docker) and the forwarding helpers the bridge tests call work on it.
func TestBrokersAndTopics(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.UniquePrefix(t) + "topics"
	kafkatest.CreateTopic(t, brokers, topic, 4)
	kafkatest.CreateTopic(t, brokers, topic, 4) // already exists: fine
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := kafkatest.WaitTopic(ctx, brokers, topic, 4); err != nil {
		t.Fatal(err)
	}
	if ps, err := kafkatest.Partitions(ctx, brokers, topic); err != nil || !reflect.DeepEqual(ps, []int{0, 1, 2, 3}) {
		t.Fatalf("Partitions = %v, %v; want [0 1 2 3]", ps, err)
	}
	if _, err := kafkatest.Partitions(ctx, brokers, topic+"-missing"); err == nil {
		t.Fatal("Partitions of a missing topic: want an error")
	}
}
