package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// EnsureTopics creates every topic the bridge uses that does not exist yet:
// the data topics and the dead-letter topic with Config.Partitions and
// Config.ReplicationFactor, and the control and control-results topics with
// one partition and unlimited retention (the whole history is the listen
// state, and the results say which commands the gateway accepted). Topics
// that exist already are left alone; for an existing control topic it logs
// a warning when it has more than one partition or a finite retention.
func (b *Bridge) EnsureTopics(ctx context.Context) error {
	adm := kadm.NewClient(b.cl)
	forever := map[string]*string{"retention.ms": kadm.StringPtr("-1"), "retention.bytes": kadm.StringPtr("-1")}
	rf := int16(b.cfg.ReplicationFactor)
	data := append(b.router.Topics(), b.router.DeadLetterTopic())
	var (
		errs    []error
		created []string
	)
	check := func(rs kadm.CreateTopicResponses, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("bridge: create topics: %w", b.denied("CREATE", "topics", err)))
			return
		}
		for _, r := range rs.Sorted() {
			switch {
			case r.Err == nil:
				created = append(created, r.Topic)
				b.log.Info("bridge: created topic", slog.String("topic", r.Topic), slog.Int("partitions", int(r.NumPartitions)))
			case errors.Is(r.Err, kerr.TopicAlreadyExists):
				if r.Topic == b.router.ControlTopic() {
					for _, w := range b.checkControlTopic(ctx, adm) {
						b.log.Warn("bridge: control topic: "+w, slog.String("topic", r.Topic))
					}
				}
			default:
				errs = append(errs, fmt.Errorf("bridge: create topic %s: %w", r.Topic, b.denied("CREATE", "topic "+r.Topic, r.Err)))
			}
		}
	}
	// A data or dead-letter topic takes any batch the producer makes: its
	// max.message.bytes is Config.BatchBytes, whatever the broker's default.
	sized := map[string]*string{"max.message.bytes": kadm.StringPtr(strconv.Itoa(int(b.cfg.BatchBytes)))}
	check(adm.CreateTopics(ctx, int32(b.cfg.Partitions), rf, sized, data...))
	if len(errs) == 0 {
		check(adm.CreateTopics(ctx, 1, rf, forever, b.router.ControlTopic(), b.router.ControlResultsTopic()))
	}
	if len(errs) == 0 && len(created) > 0 {
		// New partitions have no leader for a moment: wait for them here,
		// quietly, so that the first reads and writes do not fail.
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := (Backoff{Min: 20 * time.Millisecond, Max: 500 * time.Millisecond}).Retry(wctx, func() error {
			return topicsLed(wctx, adm, created)
		}, nil); err != nil {
			errs = append(errs, fmt.Errorf("bridge: topics created but without leaders after 30 s: %w", err))
		}
	}
	if len(errs) == 0 {
		b.checkMessageLimits(ctx, adm)
	}
	return errors.Join(errs...)
}

// checkMessageLimits warns about every data or dead-letter topic whose
// max.message.bytes is below Config.BatchBytes: Kafka refuses a batch
// larger than its topic allows as a whole, so the small records batched
// with one too large for the topic would be dead-lettered with it. Topics
// the bridge creates get the right limit; this is for topics made by
// others. Without DESCRIBE_CONFIGS on the topics it says so at INFO.
func (b *Bridge) checkMessageLimits(ctx context.Context, adm *kadm.Client) {
	names := append(b.router.Topics(), b.router.DeadLetterTopic())
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		b.log.Info("bridge: cannot read the topics' max.message.bytes to compare with KAFKA_BATCH_BYTES", slog.String("error", err.Error()))
		return
	}
	var unread []string
	var unreadErr error
	defer func() {
		if len(unread) > 0 {
			b.log.Info("bridge: cannot read the max.message.bytes of some topics to compare with KAFKA_BATCH_BYTES",
				slog.Any("topics", unread), slog.String("error", unreadErr.Error()))
		}
	}()
	for _, rc := range rcs {
		if rc.Err != nil {
			unread, unreadErr = append(unread, rc.Name), rc.Err
			continue
		}
		for _, c := range rc.Configs {
			if c.Key != "max.message.bytes" {
				continue
			}
			if n, err := strconv.ParseInt(c.MaybeValue(), 10, 64); err == nil && n < int64(b.cfg.BatchBytes) {
				b.log.Warn("bridge: topic takes smaller batches than KAFKA_BATCH_BYTES: a record too large for it makes Kafka refuse its whole batch, and the records batched with it are dead-lettered too; set KAFKA_BATCH_BYTES at most max.message.bytes, or raise the topic's max.message.bytes",
					slog.String("topic", rc.Name), slog.Int64("max_message_bytes", n), slog.Int("kafka_batch_bytes", int(b.cfg.BatchBytes)))
			}
		}
	}
}

// topicsLed reports an error until every partition of topics has a leader.
func topicsLed(ctx context.Context, adm *kadm.Client, topics []string) error {
	td, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return err
	}
	for _, t := range topics {
		d, ok := td[t]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			return fmt.Errorf("topic %s not ready", t)
		}
		for _, p := range d.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return fmt.Errorf("topic %s partition %d has no leader yet", t, p.Partition)
			}
		}
	}
	return nil
}

// CheckTopics checks that every topic the bridge uses exists, for a bridge
// that does not create them; see the package-level [CheckTopics].
func (b *Bridge) CheckTopics(ctx context.Context) error {
	adm := kadm.NewClient(b.cl)
	if err := CheckTopics(ctx, adm, b.router, b.cfg.Principal); err != nil {
		return err
	}
	b.checkMessageLimits(ctx, adm)
	return nil
}

// checkControlTopic returns what is wrong with an existing control topic:
// more than one partition, or a finite retention.
func (b *Bridge) checkControlTopic(ctx context.Context, adm *kadm.Client) []string {
	topic := b.router.ControlTopic()
	var warns []string
	td, err := adm.ListTopics(ctx, topic)
	switch {
	case err != nil:
		warns = append(warns, "cannot read its metadata: "+err.Error())
	case len(td[topic].Partitions) > 1:
		warns = append(warns, fmt.Sprintf("has %d partitions; only partition 0 is read, so commands in the others are ignored", len(td[topic].Partitions)))
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return append(warns, "cannot read its config: "+err.Error())
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			warns = append(warns, "cannot read its config: "+rc.Err.Error())
			continue
		}
		for _, c := range rc.Configs {
			v := c.MaybeValue()
			switch c.Key {
			case "retention.ms", "retention.bytes":
				if v != "-1" {
					warns = append(warns, fmt.Sprintf("%s=%s: old commands will be deleted and the listen state restored at start will miss them; set it to -1", c.Key, v))
				}
			case "cleanup.policy":
				if v != "delete" {
					warns = append(warns, fmt.Sprintf("cleanup.policy=%s: compaction keeps only the last command per id; use delete", v))
				}
			}
		}
	}
	return warns
}

// denied describes err; when it is an authorization failure, it names the
// principal, the operation and the resource, as an operator writes the ACL.
func (b *Bridge) denied(op, resource string, err error) error {
	if errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed) ||
		errors.Is(err, kerr.GroupAuthorizationFailed) {
		return fmt.Errorf("%s may not %s %s: %w", b.cfg.Principal, op, resource, err)
	}
	return Described(err)
}

// writableTTL is how long a CheckWritable result is reused.
const writableTTL = time.Second

// CheckWritable reports whether Kafka is reachable and the leader of the
// control topic's partition answers (a ListOffsets request goes to it every
// time), for /readyz; the error names the brokers that cannot be reached and
// why. A result is reused for one second so that frequent probes do not turn
// into frequent requests; a check takes at most two seconds.
func (b *Bridge) CheckWritable(ctx context.Context) error {
	b.writableMu.Lock()
	defer b.writableMu.Unlock()
	if !b.writableAt.IsZero() && time.Since(b.writableAt) < writableTTL {
		return b.writableErr
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := b.endOffsets(ctx, b.router.ControlTopic())
	if err != nil {
		err = fmt.Errorf("kafka not writable: %w", Described(err))
		if f := b.health.failing(); len(f) > 0 {
			err = fmt.Errorf("%w (brokers: %s)", err, strings.Join(f, "; "))
		}
	}
	b.writableAt, b.writableErr = time.Now(), err
	return err
}

// KafkaProblem says which brokers cannot be reached and why ("" when the
// last attempt to each succeeded), for /readyz while the bridge prepares.
func (b *Bridge) KafkaProblem() string {
	if f := b.health.failing(); len(f) > 0 {
		return "kafka brokers unreachable: " + strings.Join(f, "; ")
	}
	return ""
}

// KafkaStatus is the Kafka side of /status.
type KafkaStatus struct {
	Brokers       []BrokerStatus `json:"brokers"`            // every broker tried, with the last connection result
	LastAckAgeMs  int64          `json:"last_ack_age_ms"`    // since Kafka last acked a record; -1 before the first
	BufferRecords int            `json:"buffer_records"`     // records in the window
	BufferBytes   int64          `json:"buffer_bytes"`       // their bytes
	BufferMaxRecs int            `json:"buffer_max_records"` // BRIDGE_WINDOW_RECORDS
	BufferMaxByte int64          `json:"buffer_max_bytes"`   // BRIDGE_WINDOW_BYTES
	Idempotent    bool           `json:"idempotent"`
	Acks          string         `json:"acks"`
}

// KafkaStatus returns what the bridge knows of Kafka, for /status.
func (b *Bridge) KafkaStatus() KafkaStatus {
	st := b.Stats()
	acks := "all"
	if b.cfg.Acks == AcksLeader {
		acks = "leader"
	}
	return KafkaStatus{
		Brokers: b.health.snapshot(), LastAckAgeMs: st.LastAckAgeMs,
		BufferRecords: st.InFlightRecords, BufferBytes: st.InFlightBytes,
		BufferMaxRecs: b.cfg.WindowRecords, BufferMaxByte: b.cfg.WindowBytes,
		Idempotent: b.cfg.Acks == AcksAll && !b.cfg.DisableIdempotence, Acks: acks,
	}
}
