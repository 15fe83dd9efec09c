// Command consumer-go is a small consumer of the records rtm2kafka writes,
// with franz-go. It reads the message topics and the events topic in a
// consumer group, drops the duplicates that at-least-once delivery produces,
// and prints each record once, as one line:
//
//	<dedupe key> TAB <topic> TAB <record value>
//
// The dedupe key is m/<scope>/<from>/<to>/<mid> for a message and
// e/<rtm-event-id> for an event, both read from the rtm-* headers (see
// docs/consuming.md). A record with neither is printed with an empty key and
// never dropped.
//
// Run it next to a bridge:
//
//	go run ./docs/examples/consumer-go -brokers 127.0.0.1:19092 -prefix rtm -group my-team
//
// With -until-end it stops once it has read every partition up to the end
// it saw at start (what the test in integration/consumer_examples_test.go
// uses). Offsets are committed after the records are printed, so a crash
// repeats records rather than losing them; the in-memory dedupe window does
// not survive a restart (docs/consuming.md says what to do about that).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "consumer-go:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("consumer-go", flag.ContinueOnError)
	brokers := fs.String("brokers", envOr("KAFKA_BROKERS", "127.0.0.1:19092"), "comma-separated bootstrap brokers (env KAFKA_BROKERS)")
	prefix := fs.String("prefix", envOr("KAFKA_TOPIC_PREFIX", "rtm"), "the bridge's topic prefix (env KAFKA_TOPIC_PREFIX)")
	group := fs.String("group", "rtm-consumer-example", "consumer group id")
	window := fs.Duration("window", 24*time.Hour, "keep dedupe keys this long, measured in record timestamps")
	maxKeys := fs.Int("max-keys", 1_000_000, "keep at most this many dedupe keys (the oldest go first)")
	untilEnd := fs.Bool("until-end", false, "stop after reading up to the end offsets seen at start")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	seeds := strings.Split(*brokers, ",")
	// Resolve the topics once: the 15 message topics and the events topic
	// that exist now. (kgo.ConsumeRegex would also pick up topics created
	// later; a fixed list is what -until-end needs.)
	topics, ends, err := dataTopics(ctx, seeds, *prefix)
	if err != nil {
		return err
	}
	if len(topics) == 0 {
		return fmt.Errorf("no rtm topics with prefix %q on %s: is a bridge running?", *prefix, *brokers)
	}

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ConsumerGroup(*group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),    // commit only what was printed
		kgo.BlockRebalanceOnPoll(), // no rebalance between a poll and its commit
	)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	seen := newDedupe(*window, *maxKeys)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	var printed, dropped int
	for {
		if *untilEnd && ends.done() {
			break
		}
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		if err := fetches.Err0(); errors.Is(err, kgo.ErrClientClosed) {
			break
		}
		fetches.EachError(func(t string, p int32, err error) {
			slog.Warn("fetch", "topic", t, "partition", p, "err", err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			ends.consumed(r.Topic, r.Partition, r.Offset)
			key := dedupeKey(r)
			if key != "" && !seen.add(key, r.Timestamp) {
				dropped++
				return
			}
			printed++
			fmt.Fprintf(out, "%s\t%s\t%s\n", key, r.Topic, r.Value)
		})
		if err := out.Flush(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
			slog.Warn("commit", "err", err) // the records come again after a restart: dedupe covers it
		}
		cl.AllowRebalance()
	}
	slog.Info("done", "printed", printed, "duplicates_dropped", dropped)
	return nil
}

// dedupeKey returns the identity of the push a record came from, from its
// headers: m/scope/from/to/mid for a message, e/<event id> for an event, or
// "" when the record carries neither.
func dedupeKey(r *kgo.Record) string {
	var scope, from, to, mid, eventID string
	for _, h := range r.Headers {
		switch h.Key {
		case "rtm-scope":
			scope = string(h.Value)
		case "rtm-from":
			from = string(h.Value)
		case "rtm-to":
			to = string(h.Value)
		case "rtm-mid":
			mid = string(h.Value)
		case "rtm-event-id":
			eventID = string(h.Value)
		}
	}
	switch {
	case scope == "event" && eventID != "":
		return "e/" + eventID
	case scope != "" && scope != "event" && mid != "":
		return "m/" + scope + "/" + from + "/" + to + "/" + mid
	}
	return ""
}

// dedupe remembers keys for a window of record time, and at most max of
// them: a map for lookups and a FIFO of (key, time) for expiry.
type dedupe struct {
	window time.Duration
	max    int
	keys   map[string]struct{}
	fifo   []entry
	head   int
}

type entry struct {
	key string
	at  time.Time
}

func newDedupe(window time.Duration, max int) *dedupe {
	return &dedupe{window: window, max: max, keys: make(map[string]struct{})}
}

// add reports whether key is new, and remembers it if so. Keys older than
// the window, measured from at (the newest record's time), are forgotten.
func (d *dedupe) add(key string, at time.Time) bool {
	for d.head < len(d.fifo) && at.Sub(d.fifo[d.head].at) > d.window {
		d.evict()
	}
	if _, dup := d.keys[key]; dup {
		return false
	}
	for len(d.keys) >= d.max && d.head < len(d.fifo) {
		d.evict()
	}
	if d.head > len(d.fifo)/2 && d.head > 1024 { // compact the FIFO now and then
		d.fifo = append(d.fifo[:0], d.fifo[d.head:]...)
		d.head = 0
	}
	d.keys[key] = struct{}{}
	d.fifo = append(d.fifo, entry{key, at})
	return true
}

// evict forgets the oldest key.
func (d *dedupe) evict() {
	delete(d.keys, d.fifo[d.head].key)
	d.fifo[d.head] = entry{}
	d.head++
}

// endOffsets tracks, per partition, the end offset seen at start and the
// next offset to consume.
type endOffsets map[string]map[int32]int64

// dataTopics lists the rtm message and event topics under prefix and their
// end offsets.
func dataTopics(ctx context.Context, seeds []string, prefix string) ([]string, endOffsets, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	details, err := adm.ListTopics(tctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list topics: %w", err)
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `\.((p2p|group|room)\.(chat|audio|cmd|file|message)|events)$`)
	var names []string
	for _, d := range details.Sorted() {
		if re.MatchString(d.Topic) {
			names = append(names, d.Topic)
		}
	}
	if len(names) == 0 {
		return nil, endOffsets{}, nil
	}
	listed, err := adm.ListEndOffsets(tctx, names...)
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets: %w", err)
	}
	ends := endOffsets{}
	var lerr error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			lerr = fmt.Errorf("end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
			return
		}
		if o.Offset > 0 {
			if ends[o.Topic] == nil {
				ends[o.Topic] = map[int32]int64{}
			}
			ends[o.Topic][o.Partition] = o.Offset
		}
	})
	return names, ends, lerr
}

// consumed notes that offset of topic/partition was read.
func (e endOffsets) consumed(topic string, partition int32, offset int64) {
	if end, ok := e[topic][partition]; ok && offset+1 >= end {
		delete(e[topic], partition)
		if len(e[topic]) == 0 {
			delete(e, topic)
		}
	}
}

// done reports whether every partition was read up to its end.
func (e endOffsets) done() bool { return len(e) == 0 }

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
