package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/topics"
)

// Shown is the listen state as the active bridge last reported it: the
// newest [Result] on the control-results topic and where it was read.
type Shown struct {
	Result Result    // its Listen is the whole listen state after the command
	At     time.Time // when the bridge applied it (Result.AppliedAt)
	Topic  string    // the control-results topic
	// Partition and Offset locate the result record.
	Partition int32
	Offset    int64
}

// ShowListen reads the newest result on the control-results topic (the
// latest applied_at over every partition, skipping role announcements, i.e.
// records with the rtm2kafka-role header) without a consumer group and
// without writing anything. It returns nil and no error when the topic
// holds no result: no control command was ever applied, and a bridge
// listens to its RTM_LISTEN_ALL defaults. It reads each partition backwards
// from its end, in growing steps, so a long history costs little. opts are
// the connection options (brokers, TLS, SASL); router may be nil for the
// default topic names.
func ShowListen(ctx context.Context, opts []kgo.Opt, router *topics.Router) (*Shown, error) {
	if router == nil {
		router = &topics.Router{}
	}
	topic := router.ControlResultsTopic()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, fmt.Errorf("topic %s does not exist: no bridge has run with this topic prefix (KAFKA_TOPIC_PREFIX)", topic)
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", topic, Described(err))
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, Described(err))
	}
	var best *Shown
	var ferr error
	ends.Each(func(end kadm.ListedOffset) {
		if ferr != nil {
			return
		}
		start, _ := starts.Lookup(topic, end.Partition)
		s, err := lastResult(ctx, opts, topic, end.Partition, start.Offset, end.Offset)
		if err != nil {
			ferr = err
			return
		}
		if s != nil && (best == nil || s.Result.AppliedAt > best.Result.AppliedAt) {
			best = s
		}
	})
	return best, ferr
}

// lastResult returns the last Result in [start, end) of one partition,
// reading ever larger tails until it finds one or reaches start.
func lastResult(ctx context.Context, opts []kgo.Opt, topic string, part int32, start, end int64) (*Shown, error) {
	for step := int64(64); end > start; step *= 8 {
		from := max(start, end-step)
		var found *Shown
		err := readRange(ctx, opts, topic, part, from, end, func(r *kgo.Record) {
			if isRoleRecord(r) {
				return
			}
			var res Result
			if json.Unmarshal(r.Value, &res) != nil || (res.ID == "" && res.AppliedAt == 0) {
				return
			}
			found = &Shown{Result: resultJSON(res), At: time.UnixMilli(res.AppliedAt), Topic: topic, Partition: part, Offset: r.Offset}
		})
		if err != nil || found != nil || from == start {
			return found, err
		}
		end = from
	}
	return nil, nil
}

// readRange calls fn for each record of topic/part in [from, end), in
// offset order.
func readRange(ctx context.Context, opts []kgo.Opt, topic string, part int32, from, end int64, fn func(*kgo.Record)) error {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: kgo.NewOffset().At(from)}}))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("read %s/%d: %w", topic, part, ctx.Err())
		}
		if err := fetchErr(fs); err != nil {
			return fmt.Errorf("read %s: %w", topic, Described(err))
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if done || r.Offset >= end {
				done = true
				return
			}
			fn(r)
			if r.Offset+1 >= end {
				done = true
			}
		})
		if done {
			return nil
		}
	}
}
