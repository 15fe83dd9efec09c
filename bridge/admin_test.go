package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
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

// TestEnsureTopicsCreatesAndChecks: CheckTopics names the missing topics;
// EnsureTopics creates them (twice is fine), warns about a control topic
// made wrongly by hand, and then CheckTopics and CheckWritable pass.
func TestEnsureTopicsCreatesAndChecks(t *testing.T) {
	brokers := testkit.Brokers(t)
	r := testRouter(t)
	adm := testkit.Admin(testkit.ClientFor(t, brokers))
	all := append(r.Topics(), r.DeadLetterTopic(), r.ControlTopic(), r.ControlResultsTopic())
	t.Cleanup(func() { deleteTopics(brokers, all...) })
	// A control topic made by hand, wrongly: two partitions, finite retention.
	ctx := ctxFor(t, 60*time.Second)
	if err := testkit.CreateTopicErr(ctx, brokers, r.ControlTopic(), 2, nil); err != nil {
		t.Fatal(err)
	}
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("60000")}}, r.ControlTopic())
	if err == nil {
		_, err = rs.On(r.ControlTopic(), nil)
	}
	if err != nil {
		t.Fatalf("alter config: %v", err)
	}
	var logs lockedBuf
	b, err := New(Config{Brokers: brokers, Router: r, Partitions: 3, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.CheckTopics(ctx)
	if err == nil || !strings.Contains(err.Error(), r.DeadLetterTopic()) || strings.Contains(err.Error(), r.ControlTopic()+",") {
		t.Fatalf("CheckTopics before EnsureTopics = %v, want the missing topics named (not the control topic)", err)
	}
	if err := b.EnsureTopics(ctx); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	if err := b.EnsureTopics(ctx); err != nil {
		t.Fatalf("EnsureTopics again (all exist): %v", err)
	}
	for _, tp := range all {
		want := 3
		switch tp {
		case r.ControlResultsTopic():
			want = 1
		case r.ControlTopic():
			want = 2 // made by hand, left alone
		}
		if err := testkit.WaitTopic(ctx, brokers, tp, want); err != nil {
			t.Fatalf("topic %s: %v", tp, err)
		}
	}
	out := logs.String()
	for _, want := range []string{"has 2 partitions", "retention.ms=60000"} {
		if !strings.Contains(out, want) {
			t.Errorf("no warning containing %q in:\n%s", want, out)
		}
	}
	// CheckTopics asks through the producer's client, whose metadata cache
	// (kadm answers from it, MetadataMinAge: 5 s) still holds the "missing"
	// answer of the first check for a few seconds.
	eventually(t, 30*time.Second, "CheckTopics passes once the topics exist", func() (bool, string) {
		err := b.CheckTopics(ctx)
		return err == nil, fmt.Sprint(err)
	})
	if err := b.CheckWritable(ctx); err != nil {
		t.Fatalf("CheckWritable: %v", err)
	}
	// Data and dead-letter topics take any batch the producer makes; one
	// made smaller by someone else is named at the next check.
	const smaller = "takes smaller batches than KAFKA_BATCH_BYTES"
	rcs, err := adm.DescribeTopicConfigs(ctx, r.DeadLetterTopic())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := rcs.On(r.DeadLetterTopic(), nil); err != nil || !slices.ContainsFunc(c.Configs, func(c kadm.Config) bool {
		return c.Key == "max.message.bytes" && c.MaybeValue() == strconv.Itoa(DefaultBatchBytes)
	}) {
		t.Errorf("dead-letter topic max.message.bytes: %+v, %v; want %d", c.Configs, err, DefaultBatchBytes)
	}
	if strings.Contains(logs.String(), smaller) {
		t.Fatalf("warned about topics it made itself:\n%s", logs.String())
	}
	small := r.Topics()[0]
	rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr("700000")}}, small)
	if err == nil {
		_, err = rs.On(small, nil)
	}
	if err != nil {
		t.Fatalf("alter config: %v", err)
	}
	if err := b.CheckTopics(ctx); err != nil {
		t.Fatalf("CheckTopics: %v", err)
	}
	if out := logs.String(); !strings.Contains(out, smaller) || !strings.Contains(out, "topic="+small) || !strings.Contains(out, "max_message_bytes=700000") {
		t.Errorf("no warning naming %s and its max.message.bytes in:\n%s", small, out)
	}
}

// TestEnsureTopicsControlConfig checks the control topic EnsureTopics makes:
// one partition, unlimited retention.
func TestEnsureTopicsControlConfig(t *testing.T) {
	b, brokers := testBridge(t, nil)
	adm := testkit.Admin(testkit.ClientFor(t, brokers))
	ctx := ctxFor(t, 30*time.Second)
	if w := b.checkControlTopic(ctx, adm); len(w) != 0 {
		t.Fatalf("control topic made by EnsureTopics has warnings: %v", w)
	}
	td, err := adm.ListTopics(ctx, b.router.ControlTopic())
	if err != nil || len(td[b.router.ControlTopic()].Partitions) != 1 {
		t.Fatalf("control topic partitions %v, %v; want one", td[b.router.ControlTopic()].Partitions, err)
	}
}

// TestCheckWritableNamesCause: with a broker that refuses connections, or
// one whose name does not resolve, CheckWritable fails within its bound and
// its error names the broker and the cause (DescribeKafkaError's words).
func TestCheckWritableNamesCause(t *testing.T) {
	for _, c := range []struct {
		broker, host, cause string
	}{
		{"127.0.0.1:1", "127.0.0.1:1", "connection refused"},
		{"no-such-broker.invalid:9092", "no-such-broker.invalid", "cannot resolve host"},
	} {
		t.Run(c.cause, func(t *testing.T) {
			testkit.CheckLeaks(t)
			b, err := New(Config{Brokers: []string{c.broker}})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			var last error
			// The broker-health hook learns the cause from the client's
			// first dial; a check that ended before it says so less well.
			eventually(t, 60*time.Second, "CheckWritable names the cause", func() (bool, string) {
				b.writableMu.Lock()
				b.writableAt = time.Time{} // no cached result
				b.writableMu.Unlock()
				last = b.CheckWritable(context.Background())
				if last == nil {
					return false, "CheckWritable succeeded without a broker"
				}
				msg := last.Error()
				return strings.Contains(msg, c.cause) && strings.Contains(msg, c.host), msg
			})
			t.Logf("CheckWritable: %v", last)
			if st := b.KafkaStatus(); len(st.Brokers) == 0 || st.Brokers[0].Reachable || !strings.Contains(st.Brokers[0].Error, c.cause) {
				t.Errorf("KafkaStatus brokers %+v, want %s unreachable with %q", st.Brokers, c.broker, c.cause)
			}
		})
	}
}

// TestDescribeKafkaErrorDial: the dial errors themselves get kcat's words.
func TestDescribeKafkaErrorDial(t *testing.T) {
	_, err := net.DialTimeout("tcp", "127.0.0.1:1", 5*time.Second)
	if got := DescribeKafkaError(fmt.Errorf("unable to dial: %w", err)); !strings.Contains(got, "connection refused") {
		t.Errorf("DescribeKafkaError(%v) = %q, want connection refused", err, got)
	}
	_, err = net.DialTimeout("tcp", "no-such-broker.invalid:9092", 5*time.Second)
	if got := DescribeKafkaError(err); !strings.Contains(got, `cannot resolve host "no-such-broker.invalid"`) {
		t.Errorf("DescribeKafkaError(%v) = %q, want cannot resolve host", err, got)
	}
	if got := DescribeKafkaError(errors.New("something else")); got != "something else" {
		t.Errorf("DescribeKafkaError(other) = %q, want it unchanged", got)
	}
}
