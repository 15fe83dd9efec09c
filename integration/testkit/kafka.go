package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// EnvBrokers names the variable with the brokers' bootstrap list.
	EnvBrokers = "KAFKA_BROKERS"
	// EnvKeepTopics set to 1 keeps the topics tests create.
	EnvKeepTopics = "KAFKATEST_KEEP_TOPICS"

	// FixHint says how to get a broker; every "no broker" failure ends
	// with it.
	FixHint = "start one with `bash scripts/kafka.sh start` and set KAFKA_BROKERS=127.0.0.1:19092 " +
		"(or run `make test`, which does both)"

	reachTimeout = 10 * time.Second
	adminTimeout = 30 * time.Second
)

// Brokers returns the bootstrap brokers of KAFKA_BROKERS once one of them
// answers. Without the variable, or when no broker answers within 10 s,
// the test fails (it never skips) and the message says how to get one.
// integration/kafkatest adds a Docker fallback on top of it.
func Brokers(t testing.TB) []string {
	t.Helper()
	env := os.Getenv(EnvBrokers)
	brokers := ParseBrokers(env)
	if len(brokers) == 0 {
		t.Fatalf("testkit: this test needs a Kafka broker and %s is not set: %s", EnvBrokers, FixHint)
	}
	if err := Reachable(context.Background(), brokers, reachTimeout); err != nil {
		t.Fatalf("testkit: %s=%q is set but no broker answers: %v\nfix: %s (check `bash scripts/kafka.sh status`)",
			EnvBrokers, env, err, FixHint)
	}
	return brokers
}

// ParseBrokers splits a comma, space or newline separated broker list,
// dropping empty entries and any "scheme://" prefix.
func ParseBrokers(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		if _, rest, ok := strings.Cut(f, "://"); ok {
			f = rest
		}
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Reachable returns nil as soon as one of brokers answers a request (a
// broker still starting is waited for), or the last error after timeout.
func Reachable(ctx context.Context, brokers []string, timeout time.Duration) error {
	if len(brokers) == 0 {
		return errors.New("testkit: empty broker list")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DialTimeout(2*time.Second))
	if err != nil {
		return fmt.Errorf("testkit: client for %v: %w", brokers, err)
	}
	defer cl.Close()
	var last error
	for {
		if last = cl.Ping(ctx); last == nil {
			return nil
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("testkit: no answer from %v within %v: %w", brokers, timeout, last)
		case <-t.C:
		}
	}
}

// NewClient is the client tests use, without a testing.TB: seeds brokers,
// then opts (which may override anything). The caller closes it.
func NewClient(brokers []string, opts ...kgo.Opt) (*kgo.Client, error) {
	all := append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.DialTimeout(5 * time.Second),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.MetadataMinAge(100 * time.Millisecond), // tests create topics and want to see them soon
		kgo.UnknownTopicRetries(-1),                // a topic just created by the daemon: retry until ctx ends
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("testkit: new client: %w", err)
	}
	return cl, nil
}

// Client returns a franz-go client of the broker from [Brokers], closed
// when the test ends. opts come after the defaults and override them;
// kgo.SeedBrokers in opts points it elsewhere (see [ClientFor]).
func Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return ClientFor(t, Brokers(t), opts...)
}

// ClientFor is [Client] for given brokers (a private broker, a container).
func ClientFor(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := NewClient(brokers, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns a kadm client over cl (closing cl closes it).
func Admin(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }

// UniqueName returns a name unique to this test run, for topics and
// groups: "t-", the test name in Kafka-legal characters (at most 80), "-",
// 8 random hex digits.
func UniqueName(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, r := range t.Name() {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := b.String()
	if len(name) > 80 {
		name = name[:80]
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("testkit: unique name: %v", err)
	}
	return "t-" + name + "-" + hex.EncodeToString(rnd[:])
}

// CreateTopic creates topic on brokers with the given partitions,
// replication factor 1 and configs (nil: broker defaults), waits until
// every partition has a leader, and deletes it when the test ends (unless
// KAFKATEST_KEEP_TOPICS=1). A topic that exists already is fine.
func CreateTopic(t testing.TB, brokers []string, topic string, partitions int, configs map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := CreateTopicErr(ctx, brokers, topic, partitions, configs); err != nil {
		t.Fatal(err)
	}
	if os.Getenv(EnvKeepTopics) != "1" {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = DeleteTopics(ctx, brokers, topic) // best effort: the broker may be gone by now
		})
	}
}

// CreateTopicErr is [CreateTopic] without a testing.TB and without the
// cleanup.
func CreateTopicErr(ctx context.Context, brokers []string, topic string, partitions int, configs map[string]string) error {
	cl, err := NewClient(brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	var cfg map[string]*string
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		if cfg == nil {
			cfg = map[string]*string{}
		}
		cfg[k] = kadm.StringPtr(configs[k])
	}
	_, err = Admin(cl).CreateTopic(ctx, int32(partitions), 1, cfg, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("testkit: create topic %s: %w", topic, err)
	}
	return WaitTopic(ctx, brokers, topic, partitions)
}

// DeleteTopics deletes topics; unknown ones are fine.
func DeleteTopics(ctx context.Context, brokers []string, topics ...string) error {
	cl, err := NewClient(brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := Admin(cl).DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("testkit: delete topics: %w", err)
	}
	for _, r := range res {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("testkit: delete topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// WaitTopic waits until topic has the given number of partitions, each with
// a leader (creation is asynchronous in KRaft), asking the broker each time.
func WaitTopic(ctx context.Context, brokers []string, topic string, partitions int) error {
	cl, err := NewClient(brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	var last error
	err = Wait(ctx, "topic "+topic, func() bool {
		var ps []kadm.PartitionDetail
		ps, last = partitionsOf(ctx, Admin(cl), topic)
		if last == nil && len(ps) != partitions {
			last = fmt.Errorf("%d of %d partitions visible", len(ps), partitions)
		}
		for _, p := range ps {
			if last == nil && (p.Err != nil || p.Leader < 0) {
				last = fmt.Errorf("partition %d has no leader yet (%v)", p.Partition, p.Err)
			}
		}
		return last == nil
	})
	if err != nil {
		return fmt.Errorf("testkit: %w (last: %v)", err, last)
	}
	return nil
}

// Partitions returns the partition numbers of topic, sorted. A topic that
// does not exist is an error wrapping kerr.UnknownTopicOrPartition.
func Partitions(ctx context.Context, brokers []string, topic string) ([]int32, error) {
	cl, err := NewClient(brokers)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ps, err := partitionsOf(ctx, Admin(cl), topic)
	if err != nil {
		return nil, err
	}
	out := make([]int32, len(ps))
	for i, p := range ps {
		out[i] = p.Partition
	}
	return out, nil
}

func partitionsOf(ctx context.Context, adm *kadm.Client, topic string) ([]kadm.PartitionDetail, error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("testkit: metadata of %s: %w", topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok {
		return nil, fmt.Errorf("testkit: metadata of %s: topic missing from the answer", topic)
	}
	if td.Err != nil {
		return nil, fmt.Errorf("testkit: metadata of %s: %w", topic, td.Err)
	}
	return td.Partitions.Sorted(), nil
}

// ReadToEnd reads every record of topic that is there now: it lists each
// partition's start and end offsets first, then consumes each partition
// from its start up to that end and stops. Records written meanwhile are
// not waited for, so the answer is a consistent snapshot: every partition
// complete up to the same moment. Records come partition after partition,
// each in offset order. A topic that does not exist reads as empty. It
// expects offsets without gaps up to the end (no transactions, no
// compaction), as the bridge writes them; otherwise it waits for ctx.
func ReadToEnd(ctx context.Context, brokers []string, topic string) ([]*kgo.Record, error) {
	adm, err := NewClient(brokers)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	starts, err := Admin(adm).ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("testkit: start offsets of %s: %w", topic, err)
	}
	ends, err := Admin(adm).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("testkit: end offsets of %s: %w", topic, err)
	}
	from := map[int32]kgo.Offset{}
	left := map[int32]int64{} // partition → end offset still to reach
	starts.Each(func(o kadm.ListedOffset) {
		end, _ := ends.Lookup(o.Topic, o.Partition)
		if end.Offset > o.Offset {
			from[o.Partition] = kgo.NewOffset().At(o.Offset)
			left[o.Partition] = end.Offset
		}
	})
	if len(from) == 0 {
		return nil, nil
	}
	cl, err := NewClient(brokers, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	byPart := map[int32][]*kgo.Record{}
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("testkit: read %s: %d partitions short of their end offsets: %w", topic, len(left), err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("testkit: fetch %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			byPart[r.Partition] = append(byPart[r.Partition], r)
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
	}
	var out []*kgo.Record
	for _, p := range slices.Sorted(maps.Keys(byPart)) {
		out = append(out, byPart[p]...)
	}
	return out, nil
}

// Count returns how many records topic holds now (end minus start offset,
// summed over partitions); 0 for a topic that does not exist.
func Count(ctx context.Context, brokers []string, topic string) (int64, error) {
	cl, err := NewClient(brokers)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	starts, err := Admin(cl).ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("testkit: start offsets of %s: %w", topic, err)
	}
	ends, err := Admin(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("testkit: end offsets of %s: %w", topic, err)
	}
	var n int64
	ends.Each(func(e kadm.ListedOffset) {
		s, _ := starts.Lookup(e.Topic, e.Partition)
		n += e.Offset - s.Offset
	})
	return n, nil
}

// ReadAll waits (up to timeout) until topic holds at least n records, then
// reads it to the end offsets of that moment with [ReadToEnd] and returns
// everything, which may be more than n (late duplicates, say): the caller
// asserts. It fails the test if n records never arrive, naming how many
// did. Unlike "stop after n records from any partitions", it never returns
// a partition cut short while another one is read past the records that
// were awaited.
func ReadAll(t testing.TB, brokers []string, topic string, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var have int64
	var cerr error
	if err := Wait(ctx, fmt.Sprintf("%d records in %s", n, topic), func() bool {
		have, cerr = Count(ctx, brokers, topic)
		return cerr == nil && have >= int64(n)
	}); err != nil {
		t.Fatalf("testkit: %v: %d there (last error: %v)", err, have, cerr)
	}
	recs, err := ReadToEnd(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// Produce writes recs synchronously (acks=all, idempotent: kgo's defaults)
// and fails the test on any error. Records without a Topic need
// kgo.DefaultProduceTopic on cl.
func Produce(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("testkit: produce %d records: %v", len(recs), err)
	}
}

// Headers returns a record's headers as a map (the last value of each key).
func Headers(r *kgo.Record) map[string]string {
	out := make(map[string]string, len(r.Headers))
	for _, h := range r.Headers {
		out[h.Key] = string(h.Value)
	}
	return out
}
