package bridge

// A copy of the kafka-go reader that integration/kafkatest had before it
// moved to franz-go (see integration/testkit), kept only so these tests
// compile until they move to testkit.ReadAll too; delete it then.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rtm2kafka/rtm2kafka/integration/kafkatest"
)

// readAllKafkaGo reads topic from the beginning of every partition, without a consumer
// group, until n messages arrived or timeout passed, and returns what it read (at
// most n; fewer on timeout — the caller asserts). Order is per partition only.
func readAllKafkaGo(t testing.TB, brokers []string, topic string, n int, timeout time.Duration) []kafka.Message {
	t.Helper()
	msgs, err := readAllKafkaGoErr(context.Background(), brokers, topic, n, timeout)
	if err != nil {
		t.Fatalf("ReadAll %q: %v", topic, err)
	}
	return msgs
}

// readAllKafkaGoErr is readAllKafkaGo without testing.TB; a timeout is not an error.
func readAllKafkaGoErr(ctx context.Context, brokers []string, topic string, n int, timeout time.Duration) ([]kafka.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	parts, err := kafkatest.Partitions(ctx, brokers, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan kafka.Message)
	errc := make(chan error, len(parts))
	var wg sync.WaitGroup
	for _, p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:   brokers,
			Topic:     topic,
			Partition: p,
			MinBytes:  1,
			MaxBytes:  16 << 20,
			MaxWait:   200 * time.Millisecond,
		})
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			_ = r.Close()
			cancel()
			wg.Wait()
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("partition %d: %w", p, err)
					}
					return
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	var msgs []kafka.Message
	var firstErr error
loop:
	for len(msgs) < n {
		select {
		case m, ok := <-out:
			if !ok {
				break loop
			}
			msgs = append(msgs, m)
		case err := <-errc:
			firstErr = err
			break loop
		}
	}
	cancel()
	for range out { // drain so the readers can exit
	}
	return msgs, firstErr
}
