package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
)

// controlTopicConfig is what the control topic is created with: one
// partition (commands are applied in one total order) and no retention (the
// whole history is the listen state, replayed at start).
var controlTopicConfig = []kafka.ConfigEntry{
	{ConfigName: "retention.ms", ConfigValue: "-1"},
	{ConfigName: "retention.bytes", ConfigValue: "-1"},
}

// EnsureTopics creates every topic the bridge uses that does not exist yet:
// the data topics and the dead-letter topic with Config.Partitions and
// Config.ReplicationFactor, the control topic with one partition and
// unlimited retention (retention.ms=-1, retention.bytes=-1), and the
// control-results topic with one partition. Topics that exist already are
// left alone; for an existing control topic it logs a warning when it has
// more than one partition or a finite retention, since the listen state is
// then not a single complete history.
func (b *Bridge) EnsureTopics(ctx context.Context) error {
	c := b.client(30 * time.Second)
	rf := b.cfg.ReplicationFactor
	var req kafka.CreateTopicsRequest
	for _, t := range b.router.Topics() {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: b.cfg.Partitions, ReplicationFactor: rf})
	}
	req.Topics = append(req.Topics,
		kafka.TopicConfig{Topic: b.router.DeadLetterTopic(), NumPartitions: b.cfg.Partitions, ReplicationFactor: rf},
		kafka.TopicConfig{Topic: b.router.ControlTopic(), NumPartitions: 1, ReplicationFactor: rf, ConfigEntries: controlTopicConfig},
		kafka.TopicConfig{Topic: b.router.ControlResultsTopic(), NumPartitions: 1, ReplicationFactor: rf},
	)
	res, err := c.CreateTopics(ctx, &req)
	if err != nil {
		return fmt.Errorf("bridge: create topics: %w", err)
	}
	controlExisted := false
	for _, t := range req.Topics {
		err := res.Errors[t.Topic]
		switch {
		case err == nil:
			b.log.Info("bridge: created topic", slog.String("topic", t.Topic), slog.Int("partitions", t.NumPartitions))
		case errors.Is(err, kafka.TopicAlreadyExists):
			if t.Topic == b.router.ControlTopic() {
				controlExisted = true
			}
		default:
			return fmt.Errorf("bridge: create topic %s: %w", t.Topic, err)
		}
	}
	if controlExisted {
		for _, w := range b.checkControlTopic(ctx, c) {
			b.log.Warn("bridge: control topic: "+w, slog.String("topic", b.router.ControlTopic()))
		}
	}
	return nil
}

// checkControlTopic returns what is wrong with an existing control topic:
// more than one partition, or a finite retention.
func (b *Bridge) checkControlTopic(ctx context.Context, c *kafka.Client) []string {
	topic := b.router.ControlTopic()
	var warns []string
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	switch {
	case err != nil:
		warns = append(warns, "cannot read its metadata: "+err.Error())
	case len(md.Topics) == 1 && len(md.Topics[0].Partitions) > 1:
		warns = append(warns, fmt.Sprintf("has %d partitions; only partition 0 is read, so commands in the others are ignored", len(md.Topics[0].Partitions)))
	}
	dc, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic,
		ResourceName: topic,
		ConfigNames:  []string{"retention.ms", "retention.bytes", "cleanup.policy"},
	}}})
	if err != nil {
		return append(warns, "cannot read its config: "+err.Error())
	}
	for _, r := range dc.Resources {
		if r.Error != nil {
			warns = append(warns, "cannot read its config: "+r.Error.Error())
			continue
		}
		for _, e := range r.ConfigEntries {
			switch e.ConfigName {
			case "retention.ms", "retention.bytes":
				if e.ConfigValue != "-1" {
					warns = append(warns, fmt.Sprintf("%s=%s: old commands will be deleted and the listen state restored at start will miss them; set it to -1", e.ConfigName, e.ConfigValue))
				}
			case "cleanup.policy":
				if e.ConfigValue != "delete" {
					warns = append(warns, fmt.Sprintf("cleanup.policy=%s: compaction keeps only the last command per id; use delete", e.ConfigValue))
				}
			}
		}
	}
	return warns
}

// writableTTL is how long a CheckWritable result is reused.
const writableTTL = time.Second

// CheckWritable reports whether Kafka is reachable and the leader of the
// control topic's partition answers (a ListOffsets request), for /readyz. A result is reused for one second so
// that frequent probes do not turn into frequent requests; a check takes at
// most two seconds.
func (b *Bridge) CheckWritable(ctx context.Context) error {
	b.writableMu.Lock()
	defer b.writableMu.Unlock()
	if !b.writableAt.IsZero() && time.Since(b.writableAt) < writableTTL {
		return b.writableErr
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := b.checkWritable(ctx)
	b.writableAt, b.writableErr = time.Now(), err
	return err
}

func (b *Bridge) checkWritable(ctx context.Context) error {
	// Metadata would come from the transport's cache, which keeps the last
	// good answer while Kafka is down; ListOffsets goes to the partition's
	// leader every time.
	if _, _, err := listOffsets(ctx, b.client(2*time.Second), b.router.ControlTopic(), controlPartition); err != nil {
		return fmt.Errorf("bridge: kafka not writable: %w", err)
	}
	return nil
}
