package bridge

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rtm2kafka/rtm2kafka/integration/kafkatest"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// TestTooLargeForWriter: a record above BatchBytes is refused by the
// writer at once; the push gets an error answer and the window is freed.
func TestTooLargeForWriter(t *testing.T) {
	b, _ := testBridge(t, func(c *Config) { c.BatchBytes = 2000 })
	rs := newReplies(2)
	big := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: 1, Msg: bytes.Repeat([]byte("a"), 3000)}
	b.HandlePush(context.Background(), &big, rs.reply(0))
	small := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: 2, Msg: []byte("b")}
	b.HandlePush(context.Background(), &small, rs.reply(1))
	rs.wait(t, 2, 10*time.Second)
	a := rs.get(0)
	if len(a) != 1 || a[0].code != codeProduceFailed || !strings.Contains(a[0].ex, "produce "+b.router.Topic(&big)) {
		t.Fatalf("too-large push answered %+v, want one error %d naming the topic", a, codeProduceFailed)
	}
	if a := rs.get(1); len(a) != 1 || a[0].code != 0 {
		t.Fatalf("next push answered %+v, want OK", a)
	}
	if st := b.Stats(); st.Rejected != 1 || st.Acked != 1 || st.InFlightRecords != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRejectedByBroker: the topic's max.message.bytes is below the
// record; Kafka refuses the batch for good, Completion reports it, settle
// answers with an error, and the partition keeps working.
func TestRejectedByBroker(t *testing.T) {
	big := rtm.Push{Scope: rtm.ScopeGroup, Kind: rtm.KindMessage, From: 1, To: 9, MType: 88, MID: 1, Msg: bytes.Repeat([]byte("z"), 5000)}
	b, _ := testBridge(t, func(c *Config) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := kafkatest.CreateTopicErr(ctx, c.Brokers, c.Router.Topic(&big), 6, map[string]string{"max.message.bytes": "2000"}); err != nil {
			t.Fatalf("create topic: %v", err)
		}
	})
	rs := newReplies(2)
	b.HandlePush(context.Background(), &big, rs.reply(0))
	rs.wait(t, 1, 10*time.Second)
	small := big
	small.MID, small.Msg = 2, []byte("ok")
	b.HandlePush(context.Background(), &small, rs.reply(1))
	rs.wait(t, 1, 10*time.Second)
	a := rs.get(0)
	if len(a) != 1 || a[0].code != codeProduceFailed || !strings.Contains(a[0].ex, "Message Size Too Large") {
		t.Fatalf("rejected push answered %+v, want one error %d saying the message is too large", a, codeProduceFailed)
	}
	if a := rs.get(1); len(a) != 1 || a[0].code != 0 {
		t.Fatalf("next push on the same key answered %+v, want OK", a)
	}
	if st := b.Stats(); st.Rejected != 1 || st.Acked != 1 || st.InFlightRecords != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestEncodeAllocatesOnce: encoding a routed push costs one allocation (the
// record bytes) once the scratch buffer is warm.
func TestEncodeAllocatesOnce(t *testing.T) {
	b, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Router: &topics.Router{}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: 3, Msg: []byte("hello"), Attrs: []byte("{}")}
	rec := &pending{}
	n := testing.AllocsPerRun(200, func() { b.encode(&p, rec) })
	if n > 1 {
		t.Fatalf("encode: %v allocations per push, want 1", n)
	}
	m := b.encode(&p, rec)
	if len(m.Headers) != 7 || string(m.Key) != "2" || m.Topic != "rtm.p2p.chat" {
		t.Fatalf("encoded %s key %q with %d headers", m.Topic, m.Key, len(m.Headers))
	}
}

// TestNoGoroutineLeft: after Close, the bridge's and kafka-go's goroutines
// are gone.
func TestNoGoroutineLeft(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	prefix := strings.TrimSuffix(kafkatest.UniquePrefix(t), "-")
	r := &topics.Router{Prefix: prefix}
	if err := r.Init(); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	b, err := New(Config{Brokers: brokers, Router: r, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.EnsureTopics(ctx); err != nil {
		t.Fatal(err)
	}
	rs := newReplies(50)
	for i := 0; i < 50; i++ {
		p := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: int64(i), MType: 30, MID: int64(i)}
		b.HandlePush(ctx, &p, rs.reply(i))
	}
	rs.wait(t, 50, 15*time.Second)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTopicGoneThenBack deletes a topic under a running bridge, so that
// produces fail with UNKNOWN_TOPIC_OR_PARTITION (retryable) or, once the
// metadata cache notices, WriteMessages refuses the record at once. Either
// way the push must stay unanswered, keeping its window room, until the
// topic is back, and then be answered OK — both when kafka-go retries the
// batch itself (the default: MaxAttempts "forever") and when it gives up
// after 2 attempts and settle re-submits it.
func TestTopicGoneThenBack(t *testing.T) {
	for _, attempts := range []int{0, 2} {
		t.Run(fmt.Sprintf("MaxAttempts=%d", attempts), func(t *testing.T) {
			b, brokers := testBridge(t, func(c *Config) {
				c.MaxAttempts = attempts
				c.WriteBackoffMin, c.WriteBackoffMax = 20*time.Millisecond, 100*time.Millisecond
			})
			p := rtm.Push{Scope: rtm.ScopeRoom, Kind: rtm.KindCmd, From: 1, To: 5, MType: 32, MID: 1, Msg: []byte("x")}
			topic := b.router.Topic(&p)
			rs := newReplies(2)
			b.HandlePush(context.Background(), &p, rs.reply(0)) // warms the writer for the topic
			rs.wait(t, 1, 10*time.Second)

			c, done := testClient(brokers)
			defer done()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if _, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}}); err != nil {
				t.Fatalf("delete topic: %v", err)
			}
			for { // wait until the broker no longer knows it
				md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
				if err == nil && len(md.Topics) == 1 && md.Topics[0].Error != nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("topic still there: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			p.MID = 2
			handled := make(chan struct{})
			go func() { // HandlePush may itself wait, retrying the hand-over
				b.HandlePush(context.Background(), &p, rs.reply(1))
				close(handled)
			}()
			time.Sleep(1500 * time.Millisecond) // many failed attempts
			if a := rs.get(1); len(a) != 0 {
				t.Fatalf("push answered %+v while its topic was gone", a)
			}
			if st := b.Stats(); st.InFlightRecords != 1 {
				t.Fatalf("stats %+v: the record must keep its window room", st)
			}
			if err := kafkatest.CreateTopicErr(ctx, brokers, topic, 6, nil); err != nil {
				t.Fatalf("recreate topic: %v", err)
			}
			rs.wait(t, 1, 15*time.Second)
			<-handled
			if a := rs.get(1); len(a) != 1 || a[0].code != 0 {
				t.Fatalf("answers %+v, want one OK", a)
			}
			st := b.Stats()
			if st.InFlightRecords != 0 || st.Acked != 2 || st.Rejected != 0 {
				t.Fatalf("stats %+v", st)
			}
			t.Logf("stats %+v", st)
		})
	}
}

func setTopicConfig(t *testing.T, brokers []string, topic, name, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, done := testClient(brokers)
	defer done()
	res, err := c.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
		Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: name, Value: value, ConfigOperation: kafka.ConfigOperationSet}},
	}}})
	if err == nil && len(res.Resources) == 1 {
		err = res.Resources[0].Error
	}
	if err != nil {
		t.Fatalf("set %s=%s on %s: %v", name, value, topic, err)
	}
}
