package bridge

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

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
