package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

const testNowMs = 1700000000123

// TestHandlePushProducesThenAnswers drives HandlePush with one push of each
// scope plus two invalid ones, and checks that each record lands in the
// right topic with the right key, headers and value, and that the reply
// fires only once the record is in Kafka.
func TestHandlePushProducesThenAnswers(t *testing.T) {
	b, brokers := testBridge(t, nil)
	r := b.router
	pushes := []rtm.Push{
		{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 101, To: 202, MType: 30, MID: 1, Msg: []byte("hello"), Attrs: []byte("{}"), MTime: 1700000000000},
		{Scope: rtm.ScopeGroup, Kind: rtm.KindFile, From: 101, To: 303, MType: 40, MID: 2, Msg: []byte(`{"url":"u","size":1}`), MTime: 1700000000001},
		{Scope: rtm.ScopeRoom, Kind: rtm.KindMessage, From: 101, To: 404, MType: 77, MID: 3, Msg: []byte{0xff, 0x00}, MsgBinary: true},
		{Scope: rtm.ScopeEvent, Kind: rtm.KindEvent, PID: 11000001, Event: []byte("login"), UID: 505, Time: 1700000000, Endpoint: []byte("1.2.3.4:5")},
		{Scope: rtm.ScopeP2P, Seq: 9, Raw: []byte{1, 2, 3}, Err: errors.New("rtm: pushmsg: key \"mid\" missing")},
		{Scope: 0, Kind: 0, Seq: 10, Raw: []byte{4, 5}},
	}
	deadReason := "bridge: no topic for a unknown push of kind unknown"
	wantTopic := []string{r.Topic(&pushes[0]), r.Topic(&pushes[1]), r.Topic(&pushes[2]), r.Topic(&pushes[3]), r.DeadLetterTopic(), r.DeadLetterTopic()}

	// inKafka[i] is how many records the push's topic held when its reply fired.
	var inKafka [6]atomic.Int64
	rs := newReplies(len(pushes))
	for i := range pushes {
		topic := wantTopic[i]
		inner := rs.reply(i)
		reply := rtm.NewReply(func(code int, ex string) error {
			n, err := recordCount(brokers, topic, 6)
			if err != nil {
				n = -1
				t.Errorf("push %d: count records: %v", i, err)
			}
			inKafka[i].Store(n)
			if code == 0 {
				return inner.OK()
			}
			return inner.Error(code, ex)
		})
		p := pushes[i]
		p.Msg = bytes.Clone(p.Msg)
		b.HandlePush(context.Background(), &p, reply)
		for j := range p.Msg { // the push is the caller's again: the record must not change
			p.Msg[j] = 'X'
		}
	}
	rs.wait(t, len(pushes), 10*time.Second)

	for i := range pushes {
		a := rs.get(i)
		if len(a) != 1 {
			t.Fatalf("push %d answered %d times", i, len(a))
		}
		if inKafka[i].Load() < 1 {
			t.Errorf("push %d answered before its record was in %s", i, wantTopic[i])
		}
		switch {
		case i < 4 && a[0].code != 0:
			t.Errorf("push %d: answer %d %q, want OK", i, a[0].code, a[0].ex)
		case i == 4 && (a[0].code != rtm.CodeDecoding || a[0].ex != pushes[4].Err.Error()):
			t.Errorf("invalid push: answer %d %q, want %d %q", a[0].code, a[0].ex, rtm.CodeDecoding, pushes[4].Err.Error())
		case i == 5 && (a[0].code != rtm.CodeDecoding || a[0].ex != deadReason):
			t.Errorf("unroutable push: answer %d %q, want %d %q", a[0].code, a[0].ex, rtm.CodeDecoding, deadReason)
		}
	}

	for i := 0; i < 4; i++ {
		p := &pushes[i]
		msgs := readAllKafkaGo(t, brokers, wantTopic[i], 1, 10*time.Second)
		if len(msgs) != 1 {
			t.Fatalf("push %d: %d records in %s", i, len(msgs), wantTopic[i])
		}
		m := msgs[0]
		if want := r.AppendKey(nil, p); !bytes.Equal(m.Key, want) {
			t.Errorf("push %d: key %q, want %q", i, m.Key, want)
		}
		if want := AppendRecord(nil, FormatJSON, p, 11000001, testNowMs); !bytes.Equal(m.Value, want) {
			t.Errorf("push %d: value\n%s\nwant\n%s", i, m.Value, want)
		}
		hs, _ := topics.AppendHeaders(nil, nil, p, 11000001)
		got := headerMap(t, m.Headers)
		if len(got) != len(hs) {
			t.Errorf("push %d: %d headers, want %d", i, len(got), len(hs))
		}
		for _, h := range hs {
			if got[h.Key] != string(h.Value) {
				t.Errorf("push %d: header %s=%q, want %q", i, h.Key, got[h.Key], h.Value)
			}
		}
		if !m.Time.Equal(time.UnixMilli(testNowMs)) {
			t.Errorf("push %d: timestamp %v, want the receive time", i, m.Time)
		}
	}

	dead := readAllKafkaGo(t, brokers, r.DeadLetterTopic(), 2, 10*time.Second)
	if len(dead) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dead))
	}
	want := map[string]bool{
		string(AppendDeadLetter(nil, &pushes[4], pushes[4].Err, testNowMs)):          true,
		string(AppendDeadLetter(nil, &pushes[5], errors.New(deadReason), testNowMs)): true,
	}
	for _, m := range dead {
		if m.Key != nil {
			t.Errorf("dead letter keyed %q, want no key", m.Key)
		}
		if !want[string(m.Value)] {
			t.Errorf("unexpected dead letter %s", m.Value)
		}
		delete(want, string(m.Value))
	}

	st := b.Stats()
	if st.Pushes != 6 || st.Acked != 4 || st.DeadLetters != 2 || st.InFlightRecords != 0 || st.InFlightBytes != 0 {
		t.Errorf("stats %+v: want 6 pushes, 4 acked, 2 dead letters, empty window", st)
	}
}

// TestOrderPerKey has 50 goroutines, one per key, each push 200 messages to
// that key concurrently with the others; each key's records must be in
// Kafka in push order, and every push answered OK.
func TestOrderPerKey(t *testing.T) {
	const keys, per = 50, 200
	b, brokers := testBridge(t, nil)
	rs := newReplies(keys * per)
	var wg sync.WaitGroup
	for k := 0; k < keys; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				p := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 7, To: int64(1000 + k), MType: 30, MID: int64(i), Msg: []byte("m")}
				b.HandlePush(context.Background(), &p, rs.reply(k*per+i))
			}
		}()
	}
	wg.Wait()
	rs.wait(t, keys*per, 15*time.Second)
	for i := 0; i < keys*per; i++ {
		if a := rs.get(i); len(a) != 1 || a[0].code != 0 {
			t.Fatalf("push %d: answers %+v, want one OK", i, a)
		}
	}
	topic := b.router.Topic(&rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat})
	msgs := readAllKafkaGo(t, brokers, topic, keys*per, 15*time.Second)
	if len(msgs) != keys*per {
		t.Fatalf("read %d records, want %d", len(msgs), keys*per)
	}
	next := make(map[string]int64)
	partOf := make(map[string]int)
	for _, m := range msgs {
		h := headerMap(t, m.Headers)
		k := string(m.Key)
		var mid int64
		fmt.Sscan(h[topics.HeaderMID], &mid)
		if mid != next[k] {
			t.Fatalf("key %s: mid %d at offset %d of partition %d, want %d", k, mid, m.Offset, m.Partition, next[k])
		}
		next[k]++
		if p, ok := partOf[k]; ok && p != m.Partition {
			t.Fatalf("key %s in partitions %d and %d", k, p, m.Partition)
		}
		partOf[k] = m.Partition
		want := kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: m.Key}, 0, 1, 2, 3, 4, 5)
		if m.Partition != want {
			t.Fatalf("key %s in partition %d, murmur2 says %d", k, m.Partition, want)
		}
	}
	if len(next) != keys {
		t.Fatalf("%d keys, want %d", len(next), keys)
	}
}

// TestWindowBackpressure fills a 10-record window whose records sit in a
// batch for a while: the 11th HandlePush must wait until acks free room.
func TestWindowBackpressure(t *testing.T) {
	b, _ := testBridge(t, func(c *Config) {
		c.WindowRecords = 10
		c.BatchSize = 1000
		c.BatchTimeout = 700 * time.Millisecond
	})
	rs := newReplies(11)
	push := func(i int) time.Duration {
		p := rtm.Push{Scope: rtm.ScopeGroup, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: int64(i), Msg: []byte("x")}
		start := time.Now()
		b.HandlePush(context.Background(), &p, rs.reply(i))
		return time.Since(start)
	}
	for i := 0; i < 10; i++ {
		if d := push(i); d > 300*time.Millisecond {
			t.Fatalf("push %d took %v with room in the window", i, d)
		}
	}
	if n, _ := b.win.inflight(); n != 10 {
		t.Fatalf("window holds %d records, want 10", n)
	}
	if rs.count() != 0 {
		t.Fatalf("%d answers before the batch was sent", rs.count())
	}
	d := push(10)
	acked := b.Stats().Acked
	if d < 400*time.Millisecond {
		t.Fatalf("11th push returned after %v: it should wait for the batch's acks", d)
	}
	if acked < 1 {
		t.Fatalf("11th push returned before any record was acked")
	}
	rs.wait(t, 11, 10*time.Second)
}

// TestHandlePushCancelled checks that a full window's wait ends with the
// push's context, leaving the push unanswered.
func TestHandlePushCancelled(t *testing.T) {
	b, _ := testBridge(t, func(c *Config) {
		c.WindowRecords = 1
		c.BatchSize = 1000
		c.BatchTimeout = 2 * time.Second
	})
	rs := newReplies(2)
	p := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindCmd, From: 1, To: 2, MType: 32, MID: 1}
	b.HandlePush(context.Background(), &p, rs.reply(0))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	b.HandlePush(ctx, &p, rs.reply(1))
	if d := time.Since(start); d < 90*time.Millisecond || d > time.Second {
		t.Fatalf("cancelled HandlePush returned after %v, want about 100ms", d)
	}
	rs.wait(t, 1, 5*time.Second)
	if len(rs.get(1)) != 0 {
		t.Fatalf("cancelled push was answered")
	}
	if st := b.Stats(); st.Dropped != 1 || st.Acked != 1 {
		t.Fatalf("stats %+v: want 1 dropped, 1 acked", st)
	}
}

// TestShutdownDrains checks that Shutdown waits for every record to be acked
// and answered, that later pushes are ignored, and that Run then returns
// ErrClosed.
func TestShutdownDrains(t *testing.T) {
	b, _ := testBridge(t, func(c *Config) {
		c.BatchSize = 1000
		c.BatchTimeout = 300 * time.Millisecond
	})
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(context.Background()) }()
	const n = 20
	rs := newReplies(n + 1)
	for i := 0; i < n; i++ {
		p := rtm.Push{Scope: rtm.ScopeRoom, Kind: rtm.KindChat, From: 1, To: int64(i), MType: 30, MID: int64(i)}
		b.HandlePush(context.Background(), &p, rs.reply(i))
	}
	if rs.count() != 0 {
		t.Fatalf("answers before the batch timeout")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := rs.count(); got != n {
		t.Fatalf("Shutdown returned with %d of %d pushes answered", got, n)
	}
	for i := 0; i < n; i++ {
		if a := rs.get(i); len(a) != 1 || a[0].code != 0 {
			t.Fatalf("push %d: answers %+v", i, a)
		}
	}
	p := rtm.Push{Scope: rtm.ScopeRoom, Kind: rtm.KindChat, From: 1, To: 1, MType: 30, MID: 99}
	b.HandlePush(context.Background(), &p, rs.reply(n))
	select {
	case err := <-runErr:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Run = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Shutdown")
	}
	if len(rs.get(n)) != 0 || b.Stats().Pushes != n {
		t.Fatalf("a push after Shutdown was taken")
	}
}

// TestCloseWithKafkaUnreachable points a bridge at a closed port: a push
// waits (unanswered) at most for its context, and Close returns promptly.
func TestCloseWithKafkaUnreachable(t *testing.T) {
	b, err := New(Config{Brokers: []string{"127.0.0.1:1"}, WriteBackoffMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rs := newReplies(1)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	p := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: 1}
	start := time.Now()
	b.HandlePush(ctx, &p, rs.reply(0))
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("HandlePush took %v with a 500ms context", d)
	}
	start = time.Now()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if rs.count() != 0 {
		t.Fatalf("push answered although Kafka was unreachable: %+v", rs.get(0))
	}
	if err := b.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
}
