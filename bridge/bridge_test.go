package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/rtm"
	"github.com/rtm2kafka/rtm2kafka/topics"
)

// testNowMs is the receive time test bridges stamp into records: fixed for
// the run, but recent. A record stamped years ago would be deleted by the
// broker's time-based retention (7 days by default; the check, every 5
// minutes, rolls and deletes even the active segment) between its write
// and its read.
var testNowMs = time.Now().UnixMilli()

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
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n, err := testkit.Count(ctx, brokers, topic)
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
	rs.wait(t, len(pushes), 30*time.Second)

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
		msgs := readTopic(t, brokers, wantTopic[i])
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
		if !m.Timestamp.Equal(time.UnixMilli(testNowMs)) {
			t.Errorf("push %d: timestamp %v, want the receive time", i, m.Timestamp)
		}
	}

	dead := readTopic(t, brokers, r.DeadLetterTopic())
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

// murmur2 is Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2),
// written out here so the test checks the bridge against the Java client's
// partitioning rather than against the client library's own.
func murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// javaPartition is the Java producer's partition of a keyed record.
func javaPartition(key []byte, partitions int) int32 {
	return (murmur2(key) & 0x7fffffff) % int32(partitions)
}

func TestMurmur2Vectors(t *testing.T) {
	// From Kafka's UtilsTest.testMurmur2.
	for in, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := murmur2([]byte(in)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestOrderPerKey has 50 goroutines, one per key, each push 200 messages to
// that key concurrently with the others; each key's records must be in
// Kafka in push order, in the partition the Java client would pick, and
// every push answered OK.
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
	rs.wait(t, keys*per, 60*time.Second)
	for i := 0; i < keys*per; i++ {
		if a := rs.get(i); len(a) != 1 || a[0].code != 0 {
			t.Fatalf("push %d: answers %+v, want one OK", i, a)
		}
	}
	topic := b.router.Topic(&rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat})
	msgs := readTopic(t, brokers, topic)
	if len(msgs) != keys*per {
		t.Fatalf("read %d records, want %d", len(msgs), keys*per)
	}
	next := make(map[string]int64)
	for _, m := range msgs {
		h := headerMap(t, m.Headers)
		k := string(m.Key)
		var mid int64
		fmt.Sscan(h[topics.HeaderMID], &mid)
		if mid != next[k] {
			t.Fatalf("key %s: mid %d at offset %d of partition %d, want %d", k, mid, m.Offset, m.Partition, next[k])
		}
		next[k]++
		if want := javaPartition(m.Key, 6); m.Partition != want {
			t.Fatalf("key %s in partition %d, murmur2 says %d", k, m.Partition, want)
		}
	}
	if len(next) != keys {
		t.Fatalf("%d keys, want %d", len(next), keys)
	}
}

// waitClosed waits for ch to be closed; the bound only catches a hang.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(60 * time.Second):
		t.Fatalf("still waiting for %s after a minute", what)
	}
}

// windowWaiters reports whether somebody waits on the window now.
func windowWaiters(w *window) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wake != nil
}

// TestWindowBackpressure fills a 10-record window whose records linger in
// the producer (a one-minute linger: nothing is sent until flushed): the
// 11th HandlePush must wait, and return only after an ack freed room. It
// asserts on states (window fill, a waiter, acks), never on elapsed time.
func TestWindowBackpressure(t *testing.T) {
	b, _ := testBridge(t, func(c *Config) {
		c.WindowRecords = 10
		c.Linger = time.Minute
	})
	rs := newReplies(11)
	push := func(i int) {
		p := rtm.Push{Scope: rtm.ScopeGroup, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: int64(i), Msg: []byte("x")}
		b.HandlePush(context.Background(), &p, rs.reply(i))
	}
	for i := 0; i < 10; i++ {
		push(i) // room in the window: returns at once (a hang fails the test's timeout)
	}
	if n, _ := b.win.inflight(); n != 10 {
		t.Fatalf("window holds %d records, want 10", n)
	}
	if rs.count() != 0 || b.Stats().Acked != 0 {
		t.Fatalf("%d answers while every record lingers", rs.count())
	}
	var ackedAtReturn atomic.Int64
	ackedAtReturn.Store(-1)
	returned := make(chan struct{})
	go func() {
		push(10)
		ackedAtReturn.Store(int64(b.Stats().Acked))
		close(returned)
	}()
	eventually(t, 30*time.Second, "the 11th push waits for room", func() (bool, string) {
		return windowWaiters(b.win), "no waiter on the window"
	})
	select {
	case <-returned:
		t.Fatal("the 11th push returned while the window was full and nothing was acked")
	default:
	}
	if err := b.cl.Flush(ctxFor(t, 30*time.Second)); err != nil { // end the linger: the acks free room
		t.Fatalf("Flush: %v", err)
	}
	waitClosed(t, returned, "HandlePush to return")
	if n := ackedAtReturn.Load(); n < 1 {
		t.Fatalf("the 11th push returned with %d records acked: it must wait for an ack", n)
	}
	if err := b.cl.Flush(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	rs.wait(t, 11, 30*time.Second)
	for i := 0; i < 11; i++ {
		if a := rs.get(i); len(a) != 1 || a[0].code != 0 {
			t.Fatalf("push %d: answers %+v, want one OK", i, a)
		}
	}
}

// TestHandlePushCancelled checks that a full window's wait ends with the
// push's context, leaving the push unanswered and counted as dropped.
func TestHandlePushCancelled(t *testing.T) {
	b, _ := testBridge(t, func(c *Config) {
		c.WindowRecords = 1
		c.Linger = time.Minute
	})
	rs := newReplies(2)
	p := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindCmd, From: 1, To: 2, MType: 32, MID: 1}
	b.HandlePush(context.Background(), &p, rs.reply(0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	returned := make(chan struct{})
	go func() {
		b.HandlePush(ctx, &p, rs.reply(1))
		close(returned)
	}()
	eventually(t, 30*time.Second, "the second push waits for room", func() (bool, string) {
		return windowWaiters(b.win), "no waiter on the window"
	})
	cancel()
	waitClosed(t, returned, "HandlePush to return")
	if err := b.cl.Flush(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	rs.wait(t, 1, 30*time.Second)
	if len(rs.get(1)) != 0 {
		t.Fatalf("cancelled push was answered")
	}
	if st := b.Stats(); st.Dropped != 1 || st.Acked != 1 || st.ProduceErrors[reasonCanceled] != 1 || st.InFlightRecords != 0 {
		t.Fatalf("stats %+v: want 1 dropped (canceled), 1 acked, empty window", st)
	}
}

// TestShutdownDrains checks that Shutdown waits for every record to be acked
// and answered, that later pushes are ignored, and that Run then returns
// ErrClosed.
func TestShutdownDrains(t *testing.T) {
	b, _ := testBridge(t, func(c *Config) { c.Linger = 500 * time.Millisecond })
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(context.Background()) }()
	const n = 20
	rs := newReplies(n + 1)
	for i := 0; i < n; i++ {
		p := rtm.Push{Scope: rtm.ScopeRoom, Kind: rtm.KindChat, From: 1, To: int64(i), MType: 30, MID: int64(i)}
		b.HandlePush(context.Background(), &p, rs.reply(i))
	}
	pending := n - rs.count()
	if err := b.Shutdown(ctxFor(t, 30*time.Second)); err != nil {
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
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after Shutdown")
	}
	if len(rs.get(n)) != 0 || b.Stats().Pushes != n {
		t.Fatalf("a push after Shutdown was taken")
	}
	t.Logf("%d of %d pushes were still unanswered when Shutdown began", pending, n)
}

// TestCloseWithKafkaUnreachable points a bridge at a closed port: a push is
// handed to the producer (which retries) and stays unanswered; Close ends
// it without an answer and returns; Run then says ErrClosed. The bounds
// only catch a hang.
func TestCloseWithKafkaUnreachable(t *testing.T) {
	testkit.CheckLeaks(t)
	b, err := New(Config{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	rs := newReplies(1)
	p := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: 1}
	handled := make(chan struct{})
	go func() {
		b.HandlePush(ctxFor(t, 30*time.Second), &p, rs.reply(0))
		close(handled)
	}()
	select {
	case <-handled:
	case <-time.After(20 * time.Second):
		t.Fatal("HandlePush blocked with room in the window")
	}
	if st := b.Stats(); st.InFlightRecords != 1 {
		t.Fatalf("stats %+v: the record must hold its window room until Kafka answers", st)
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close hangs with Kafka unreachable")
	}
	if rs.count() != 0 {
		t.Fatalf("push answered although Kafka was unreachable: %+v", rs.get(0))
	}
	if st := b.Stats(); st.Dropped != 1 || st.ProduceErrors[reasonClosed] != 1 || st.InFlightRecords != 0 {
		t.Fatalf("stats %+v: want the push dropped (closed) and the window empty", st)
	}
	if err := b.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
}

// TestTooLargeRecord: a record larger than Config.BatchBytes is refused at
// once: it goes to the dead-letter topic (the refusal as JSON with
// "reason":"too_large", the original key and headers), its push gets error
// code 20001, and the next record with the same key is acked and answered
// OK.
func TestTooLargeRecord(t *testing.T) {
	b, brokers := testBridge(t, func(c *Config) { c.BatchBytes = 4096 })
	rs := newReplies(2)
	big := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: 1, Msg: bytes.Repeat([]byte("a"), 8000)}
	small := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: 2, Msg: []byte("b")}
	b.HandlePush(context.Background(), &big, rs.reply(0))
	b.HandlePush(context.Background(), &small, rs.reply(1))
	rs.wait(t, 2, 30*time.Second)
	topic := b.router.Topic(&big)
	a := rs.get(0)
	if len(a) != 1 || a[0].code != codeProduceFailed || !strings.Contains(a[0].ex, "produce "+topic) {
		t.Fatalf("too-large push answered %+v, want one error %d naming the topic", a, codeProduceFailed)
	}
	if a := rs.get(1); len(a) != 1 || a[0].code != 0 {
		t.Fatalf("next push with the same key answered %+v, want OK", a)
	}
	checkRefusal(t, b, brokers, &big, reasonTooLarge)
	data := readTopic(t, brokers, topic)
	if len(data) != 1 || headerMap(t, data[0].Headers)[topics.HeaderMID] != "2" {
		t.Fatalf("%s holds %d records, want only the small one", topic, len(data))
	}
	st := b.Stats()
	if st.Refused != 1 || st.DeadLetters != 1 || st.Acked != 1 || st.ProduceErrors[reasonTooLarge] != 1 || st.InFlightRecords != 0 {
		t.Fatalf("stats %+v: want 1 refused (too_large), 1 dead letter, 1 acked, empty window", st)
	}
}

// checkRefusal checks the one dead letter of a refused push p: the
// refusal's JSON with reason, p's key, and p's headers.
func checkRefusal(t *testing.T, b *Bridge, brokers []string, p *rtm.Push, reason string) {
	t.Helper()
	dead := readTopic(t, brokers, b.router.DeadLetterTopic())
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	m := dead[0]
	if want := b.router.AppendKey(nil, p); !bytes.Equal(m.Key, want) {
		t.Errorf("dead letter key %q, want the original %q", m.Key, want)
	}
	for _, want := range []string{`"reason":"` + reason + `"`, `"topic":"` + b.router.Topic(p) + `"`, `"value_bytes":`} {
		if !bytes.Contains(m.Value, []byte(want)) {
			t.Errorf("dead letter %s lacks %s", m.Value, want)
		}
	}
	hs, _ := topics.AppendHeaders(nil, nil, p, 11000001)
	got := headerMap(t, m.Headers)
	if len(got) != len(hs) {
		t.Errorf("dead letter has %d headers, want the original %d", len(got), len(hs))
	}
	for _, h := range hs {
		if got[h.Key] != string(h.Value) {
			t.Errorf("dead letter header %s=%q, want %q", h.Key, got[h.Key], h.Value)
		}
	}
}

// TestRefusedByBroker: the topic's max.message.bytes is below the record
// (even compressed),
// so the broker refuses it for good; it is dead-lettered, its push gets an
// error answer saying why, and the next record with the same key flows.
func TestRefusedByBroker(t *testing.T) {
	noise := make([]byte, 8000) // incompressible: the producer compresses batches
	_, _ = rand.Read(noise)
	big := rtm.Push{Scope: rtm.ScopeGroup, Kind: rtm.KindMessage, From: 1, To: 9, MType: 88, MID: 1, Msg: noise, MsgBinary: true}
	b, brokers := testBridge(t, func(c *Config) {
		if err := testkit.CreateTopicErr(ctxFor(t, 60*time.Second), c.Brokers, c.Router.Topic(&big), 6, map[string]string{"max.message.bytes": "2000"}); err != nil {
			t.Fatalf("create topic: %v", err)
		}
	})
	rs := newReplies(2)
	b.HandlePush(context.Background(), &big, rs.reply(0))
	rs.wait(t, 1, 30*time.Second)
	small := big
	small.MID, small.Msg = 2, []byte("ok")
	b.HandlePush(context.Background(), &small, rs.reply(1))
	rs.wait(t, 1, 30*time.Second)
	a := rs.get(0)
	if len(a) != 1 || a[0].code != codeProduceFailed || !strings.Contains(a[0].ex, "MESSAGE_TOO_LARGE") {
		t.Fatalf("refused push answered %+v, want one error %d saying the message is too large", a, codeProduceFailed)
	}
	if a := rs.get(1); len(a) != 1 || a[0].code != 0 {
		t.Fatalf("next push on the same key answered %+v, want OK", a)
	}
	checkRefusal(t, b, brokers, &big, reasonTooLarge)
	if st := b.Stats(); st.Refused != 1 || st.Acked != 1 || st.DeadLetters != 1 || st.InFlightRecords != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestNewRecordAllocs: building a routed push's record costs two
// allocations (the record and its bytes) once the scratch buffer is warm.
func TestNewRecordAllocs(t *testing.T) {
	b, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Router: &topics.Router{}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: 3, Msg: []byte("hello"), Attrs: []byte("{}")}
	n := testing.AllocsPerRun(200, func() { b.newRecord(&p, rtm.Reply{}) })
	if n > 2 {
		t.Fatalf("newRecord: %v allocations per push, want 2", n)
	}
	rec := b.newRecord(&p, rtm.Reply{})
	kr := &rec.kr
	if len(kr.Headers) != 7 || string(kr.Key) != "2" || kr.Topic != "rtm.p2p.chat" || kr.Context != context.Context(rec) {
		t.Fatalf("record %s key %q with %d headers", kr.Topic, kr.Key, len(kr.Headers))
	}
	if rec.size != int64(len(kr.Key)+len(kr.Value)+headerBytes(rec)) {
		t.Fatalf("record size %d, want key + value + header values", rec.size)
	}
}

func headerBytes(rec *record) int {
	n := 0
	for _, h := range rec.kr.Headers {
		n += len(h.Value)
	}
	return n
}

// TestNoGoroutineLeft: after Close, the bridge's and the client's
// goroutines are gone.
func TestNoGoroutineLeft(t *testing.T) {
	brokers := testkit.Brokers(t)
	r := testRouter(t)
	defer func() {
		deleteTopics(brokers, append(r.Topics(), r.DeadLetterTopic(), r.ControlTopic(), r.ControlResultsTopic())...)
	}()
	t.Run("bridge", func(t *testing.T) {
		testkit.CheckLeaks(t)
		b, err := New(Config{Brokers: brokers, Router: r, Partitions: 2})
		if err != nil {
			t.Fatal(err)
		}
		ctx := ctxFor(t, 60*time.Second)
		if err := b.EnsureTopics(ctx); err != nil {
			t.Fatal(err)
		}
		if err := testkit.WaitTopic(ctx, brokers, r.Topic(&rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat}), 2); err != nil {
			t.Fatal(err)
		}
		rs := newReplies(50)
		for i := 0; i < 50; i++ {
			p := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: int64(i), MType: 30, MID: int64(i)}
			b.HandlePush(ctx, &p, rs.reply(i))
		}
		rs.wait(t, 50, 30*time.Second)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTopicGoneThenBack deletes a topic under a running bridge: the push
// must stay unanswered, keeping its window room, while the producer retries,
// and be answered OK once the topic is back. Each phase has its own
// deadline, and every wait is on a condition (the broker no longer knows
// the topic; the producer has retried), not on a clock or a metadata cache.
func TestTopicGoneThenBack(t *testing.T) {
	var metaReads atomic.Int64
	b, brokers := testBridge(t, func(c *Config) {
		c.ClientOpts = append(c.ClientOpts, kgo.WithHooks(metadataCounter{&metaReads}))
	})
	adm := testkit.Admin(testkit.ClientFor(t, brokers))
	p := rtm.Push{Scope: rtm.ScopeRoom, Kind: rtm.KindCmd, From: 1, To: 5, MType: 32, MID: 1, Msg: []byte("x")}
	topic := b.router.Topic(&p)
	rs := newReplies(3)

	// Phase 1: the producer knows the topic.
	b.HandlePush(context.Background(), &p, rs.reply(0))
	rs.wait(t, 1, 30*time.Second)

	// Phase 2: the topic is deleted, and the broker says so.
	ctx := ctxFor(t, 30*time.Second)
	if rs, err := adm.DeleteTopics(ctx, topic); err != nil || rs[topic].Err != nil {
		t.Fatalf("delete topic: %v %v", err, rs[topic].Err)
	}
	eventually(t, 30*time.Second, "the broker forgets the deleted topic", func() (bool, string) {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		d, ok := td[topic]
		return !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition), fmt.Sprintf("metadata: %+v", d)
	})

	// Phase 3: a push while it is gone stays unanswered, holding its room,
	// while the producer keeps asking for the topic.
	p.MID = 2
	before := metaReads.Load()
	b.HandlePush(context.Background(), &p, rs.reply(1))
	eventually(t, 60*time.Second, "the producer retries the missing topic", func() (bool, string) {
		n := metaReads.Load() - before
		return n >= 3, fmt.Sprintf("%d metadata responses since the push", n)
	})
	if a := rs.get(1); len(a) != 0 {
		t.Fatalf("push answered %+v while its topic was gone", a)
	}
	if st := b.Stats(); st.InFlightRecords != 1 {
		t.Fatalf("stats %+v: the record must keep its window room", st)
	}

	// Phase 4: the topic is back; the record is produced and answered.
	if err := testkit.CreateTopicErr(ctxFor(t, 60*time.Second), brokers, topic, 6, nil); err != nil {
		t.Fatalf("recreate topic: %v", err)
	}
	rs.wait(t, 1, 90*time.Second)
	if a := rs.get(1); len(a) != 1 || a[0].code != 0 {
		t.Fatalf("answers %+v, want one OK", a)
	}
	if st := b.Stats(); st.InFlightRecords != 0 || st.Acked != 2 || st.Refused != 0 {
		t.Fatalf("stats %+v", st)
	}

	// Phase 5: later pushes to the recreated topic flow too.
	p.MID = 3
	b.HandlePush(context.Background(), &p, rs.reply(2))
	rs.wait(t, 1, 60*time.Second)
	if a := rs.get(2); len(a) != 1 || a[0].code != 0 {
		t.Fatalf("a push after the topic came back answered %+v, want one OK", a)
	}
	recs := readTopic(t, brokers, topic)
	if len(recs) != 2 || headerMap(t, recs[0].Headers)[topics.HeaderMID] != "2" || headerMap(t, recs[1].Headers)[topics.HeaderMID] != "3" {
		t.Fatalf("recreated topic holds %d records, want the second and third push", len(recs))
	}
}

// metadataCounter counts the client's metadata responses.
type metadataCounter struct{ n *atomic.Int64 }

func (m metadataCounter) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 3 && err == nil { // Metadata
		m.n.Add(1)
	}
}

// TestCheckBrokerAddr covers the host:port check of every KAFKA_BROKERS
// entry.
func TestCheckBrokerAddr(t *testing.T) {
	for _, c := range []struct {
		addr string
		want string // "" for valid; else a part of the error
	}{
		{"127.0.0.1:9092", ""},
		{"kafka-1.example.com:19092", ""},
		{"[::1]:9092", ""},
		{"localhost:1", ""},
		{"localhost:65535", ""},
		{"localhost", "want host:port"},
		{"localhost:", "is not a number"},
		{":9092", "empty host"},
		{"localhost:0", "is not a number from 1 to 65535"},
		{"localhost:65536", "is not a number from 1 to 65535"},
		{"localhost:http", "is not a number"},
		{"::1:9092", "want host:port"},
		{"", "want host:port"},
	} {
		err := CheckBrokerAddr(c.addr)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("CheckBrokerAddr(%q) = %v, want nil", c.addr, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), fmt.Sprintf("%q", c.addr))):
			t.Errorf("CheckBrokerAddr(%q) = %v, want an error naming it and saying %q", c.addr, err, c.want)
		}
	}
	_, err := New(Config{Brokers: []string{"127.0.0.1:9092", "kafka:0"}})
	if err == nil || !strings.Contains(err.Error(), `"kafka:0"`) {
		t.Fatalf("New with a bad broker = %v, want an error naming it", err)
	}
}

// TestHAFence checks which pushes an HA bridge answers: none as a standby
// (before any term, and after a term ended: pushes sent before its "listen
// to nothing" took effect belong to the active instance), those of a
// serving term while its lease runs, none once the lease expired, and
// those of a handover's overlap. A CI run saw a zombie, back to standby,
// answer a push that reached it after its term had ended.
func TestHAFence(t *testing.T) {
	b, _ := testBridge(t, func(c *Config) {
		c.HA = &HAConfig{Group: "g", SessionTimeout: time.Minute, Instance: "t"}
	})
	h := b.ha
	rs := newReplies(8)
	n := 0
	push := func() int {
		n++
		p := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: int64(n)}
		b.HandlePush(context.Background(), &p, rs.reply(n))
		return n
	}
	flush := func() {
		t.Helper()
		if err := b.cl.Flush(ctxFor(t, 30*time.Second)); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	}
	standby := push() // a standby that never served
	h.lastHB.Store(h.now())
	h.serving.Store(true)
	served := push()
	rs.wait(t, 1, 30*time.Second)
	h.lastHB.Store(h.now() - int64(2*time.Minute)) // the lease ran out
	expired := push()
	if !h.fenced.Load() {
		t.Fatalf("an expired lease did not fence the bridge")
	}
	h.fenced.Store(false) // the term ended: a standby again (as RunHA's endTerm leaves it)
	h.serving.Store(false)
	afterTerm := push()
	h.handing.Store(true) // a handover's overlap: answered until listening stops
	overlap := push()
	rs.wait(t, 1, 30*time.Second)
	flush()
	for _, c := range []struct {
		name string
		i    int
		want int
	}{{"standby", standby, 0}, {"serving", served, 1}, {"lease expired", expired, 0}, {"standby after a term", afterTerm, 0}, {"handover overlap", overlap, 1}} {
		if got := len(rs.get(c.i)); got != c.want {
			t.Errorf("%s: push answered %d times, want %d", c.name, got, c.want)
		}
	}
	if st := b.Stats(); st.ProduceErrors[reasonFenced] != 3 || st.Acked != 2 {
		t.Errorf("stats: fenced %d acked %d, want 3 and 2", st.ProduceErrors[reasonFenced], st.Acked)
	}
}

// TestHAFenceAfterWindowWait checks that a push which waited for window
// room while the HA lease ended is left unanswered, not written: another
// instance may be writing the same key's later pushes by then.
func TestHAFenceAfterWindowWait(t *testing.T) {
	b, _ := testBridge(t, func(c *Config) {
		c.HA = &HAConfig{Group: "g", SessionTimeout: time.Minute, Instance: "t"}
		c.WindowRecords = 1
		c.Linger = time.Minute
	})
	h := b.ha
	h.lastHB.Store(h.now())
	h.serving.Store(true)
	rs := newReplies(2)
	p := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: 1}
	b.HandlePush(context.Background(), &p, rs.reply(0)) // takes the whole window
	returned := make(chan struct{})
	go func() {
		p2 := rtm.Push{Scope: rtm.ScopeP2P, Kind: rtm.KindChat, From: 1, To: 2, MType: 30, MID: 2}
		b.HandlePush(context.Background(), &p2, rs.reply(1))
		close(returned)
	}()
	eventually(t, 30*time.Second, "the second push waits for room", func() (bool, string) {
		return windowWaiters(b.win), "no waiter on the window"
	})
	h.lastHB.Store(h.now() - int64(2*time.Minute)) // the lease ran out during the wait
	if err := b.cl.Flush(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	waitClosed(t, returned, "HandlePush to return")
	rs.wait(t, 1, 30*time.Second)
	if err := b.cl.Flush(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if len(rs.get(1)) != 0 {
		t.Fatalf("the push that waited through the end of the lease was answered: %+v", rs.get(1))
	}
	if st := b.Stats(); st.ProduceErrors[reasonFenced] != 1 || st.Acked != 1 || st.InFlightRecords != 0 {
		t.Fatalf("stats: fenced %d acked %d in flight %d; want 1, 1, 0", st.ProduceErrors[reasonFenced], st.Acked, st.InFlightRecords)
	}
}
