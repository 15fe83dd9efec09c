package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rtm2kafka/rtm2kafka/topics"
)

// NewCommandID returns a fresh random command id, "ctl-" and 16 hex digits.
func NewCommandID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "ctl-" + hex.EncodeToString(b[:])
}

// SendControl is the synchronous helper behind the ctl subcommand: it checks
// cmd with [ParseCommand] (so it must carry its id; see [NewCommandID]),
// notes where the control-results partition for that id ends, produces cmd
// to the control topic (acks=all, keyed by id), and then reads the results
// topic from the noted offset until the result for the id arrives, which it
// returns, or until ctx ends. A command the daemon rejects is a Result with
// OK false, not an error. transport may be nil for plain TCP; router may be
// nil for the default topic names.
func SendControl(ctx context.Context, brokers []string, transport *kafka.Transport, router *topics.Router, cmd []byte) (Result, error) {
	parsed, err := ParseCommand(cmd)
	if err != nil {
		return Result{}, fmt.Errorf("bridge: ctl: %w", err)
	}
	id := parsed.ID
	if router == nil {
		router = &topics.Router{}
	}
	var rt kafka.RoundTripper = transport
	if transport == nil {
		own := &kafka.Transport{}
		defer own.CloseIdleConnections()
		rt = own
	}
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: rt, Timeout: 10 * time.Second}
	results := router.ControlResultsTopic()

	// The daemon keys results by id with murmur2, so the result lands in a
	// partition we can compute.
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{results}})
	if err != nil {
		return Result{}, fmt.Errorf("bridge: ctl: metadata of %s: %w", results, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) == 0 {
		var terr error
		if len(md.Topics) == 1 {
			terr = md.Topics[0].Error
		}
		return Result{}, fmt.Errorf("bridge: ctl: topic %s not available: %v", results, terr)
	}
	parts := make([]int, len(md.Topics[0].Partitions))
	for i := range parts {
		parts[i] = i
	}
	partition := kafka.Murmur2Balancer{Consistent: true}.Balance(kafka.Message{Key: []byte(id)}, parts...)
	_, start, err := listOffsets(ctx, c, results, partition)
	if err != nil {
		return Result{}, fmt.Errorf("bridge: ctl: %w", err)
	}

	pr, err := c.Produce(ctx, &kafka.ProduceRequest{
		Topic:        router.ControlTopic(),
		Partition:    controlPartition,
		RequiredAcks: kafka.RequireAll,
		Records:      kafka.NewRecordReader(kafka.Record{Time: time.Now(), Key: kafka.NewBytes([]byte(id)), Value: kafka.NewBytes(cmd)}),
	})
	if err == nil {
		err = pr.Error
	}
	if err != nil {
		return Result{}, fmt.Errorf("bridge: ctl: produce to %s: %w", router.ControlTopic(), err)
	}

	for off := start; ; {
		recs, next, err := fetchFrom(ctx, c, results, partition, off, 500*time.Millisecond)
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("bridge: ctl: waiting for the result of %s (is the daemon running?): %w", id, ctx.Err())
		}
		if err != nil {
			if err := sleepCtx(ctx, context.Background(), 200*time.Millisecond); err != nil {
				return Result{}, fmt.Errorf("bridge: ctl: waiting for the result of %s: %w", id, err)
			}
			continue
		}
		off = next
		for _, r := range recs {
			if string(r.key) != id {
				continue
			}
			var res Result
			if err := json.Unmarshal(r.value, &res); err != nil {
				return Result{}, fmt.Errorf("bridge: ctl: result of %s at offset %d: %w", id, r.offset, err)
			}
			if res.ID != id {
				return res, errors.New("bridge: ctl: result carries a different id")
			}
			return res, nil
		}
	}
}
