package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/topics"
)

// NewCommandID returns a fresh random command id, "ctl-" and 16 hex digits.
func NewCommandID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "ctl-" + hex.EncodeToString(b[:])
}

// QueuedError is returned by [SendControl] when the command is in the
// control topic but no result arrived before ctx ended: no bridge is running,
// or the active one has not read it yet. It will be applied when a bridge
// reads it (the control topic keeps every command).
type QueuedError struct {
	ID     string
	Topic  string
	Offset int64
	Err    error // why the wait ended
}

func (e *QueuedError) Error() string {
	return fmt.Sprintf("command %s queued at %s offset %d; no result yet (%v): it will be applied when a bridge reads it",
		e.ID, e.Topic, e.Offset, e.Err)
}

func (e *QueuedError) Unwrap() error { return e.Err }

// SendControl is the synchronous helper behind `rtm2kafka ctl` and the
// console: it checks cmd with [ParseCommand] (so it must carry its id; see
// [NewCommandID]), notes where every partition of the control-results topic
// ends, produces cmd to partition 0 of the control topic (acks=all, keyed by
// id), and then reads the results topic from the noted offsets until the
// result for the id arrives, which it returns. If ctx ends first it returns
// a *QueuedError. A command the bridge rejects is a Result with OK false,
// not an error. opts are the connection options (brokers, TLS, SASL); router
// may be nil for the default topic names.
func SendControl(ctx context.Context, opts []kgo.Opt, router *topics.Router, cmd []byte) (Result, error) {
	parsed, err := ParseCommand(cmd)
	if err != nil {
		return Result{}, err
	}
	id := parsed.ID
	if router == nil {
		router = &topics.Router{}
	}
	results := router.ControlResultsTopic()
	pcl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return Result{}, fmt.Errorf("kafka client: %w", err)
	}
	defer pcl.Close()
	lo, err := kadm.NewClient(pcl).ListEndOffsets(ctx, results)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return Result{}, fmt.Errorf("list end offsets of %s: %w", results, Described(err))
	}
	from := make(map[int32]kgo.Offset)
	lo.Each(func(o kadm.ListedOffset) { from[o.Partition] = kgo.NewOffset().At(o.Offset) })
	if len(from) == 0 {
		return Result{}, fmt.Errorf("topic %s has no partitions (is a bridge set up with this KAFKA_TOPIC_PREFIX?)", results)
	}

	rec := &kgo.Record{Topic: router.ControlTopic(), Partition: controlPartition, Key: []byte(id), Value: cmd}
	if err := pcl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return Result{}, fmt.Errorf("produce to %s: %w", router.ControlTopic(), Described(err))
	}

	ccl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{results: from}))...)
	if err != nil {
		return Result{}, fmt.Errorf("kafka client: %w", err)
	}
	defer ccl.Close()
	for {
		fs := ccl.PollFetches(ctx)
		if ctx.Err() != nil {
			return Result{}, &QueuedError{ID: id, Topic: rec.Topic, Offset: rec.Offset, Err: ctx.Err()}
		}
		var (
			res   Result
			found bool
			perr  error
		)
		fs.EachRecord(func(r *kgo.Record) {
			if found || string(r.Key) != id || isRoleRecord(r) {
				return
			}
			found = true
			if err := json.Unmarshal(r.Value, &res); err != nil {
				perr = fmt.Errorf("result of %s at %s offset %d: %w", id, results, r.Offset, err)
			}
		})
		if found {
			return res, perr
		}
	}
}

// SendControl sends cmd like the package-level [SendControl], with the
// bridge's connection settings and topic names.
func (b *Bridge) SendControl(ctx context.Context, cmd []byte) (Result, error) {
	return SendControl(ctx, b.clientOpts(), b.router, cmd)
}
