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
// to the control topic (acks=all, keyed by id; retryable errors are retried
// until ctx ends), and then reads the results
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
	var md *kafka.MetadataResponse
	err = retryCtl(ctx, func() error {
		md, err = c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{results}})
		return err
	})
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
	var start int64
	err = retryCtl(ctx, func() error {
		_, start, err = listOffsets(ctx, c, results, partition)
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("bridge: ctl: %w", err)
	}

	err = retryCtl(ctx, func() error {
		// A record's key and value are readers, used up by one attempt.
		pr, err := c.Produce(ctx, &kafka.ProduceRequest{
			Topic:        router.ControlTopic(),
			Partition:    controlPartition,
			RequiredAcks: kafka.RequireAll,
			Records:      kafka.NewRecordReader(kafka.Record{Time: time.Now(), Key: kafka.NewBytes([]byte(id)), Value: kafka.NewBytes(cmd)}),
		})
		if err == nil {
			err = pr.Error
		}
		return err
	})
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

// retryCtl runs op until it succeeds, fails with an error that is not
// retryable, or ctx ends; SendControl's only retry loop. A produce retried
// after a timeout may reach the control topic twice: the daemon then applies
// the command twice and writes two results under the id (the first one is
// returned); add, remove, set and set_all give the same state either way.
func retryCtl(ctx context.Context, op func() error) error {
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		if serr := sleepCtx(ctx, context.Background(), backoff(attempt, 50*time.Millisecond, time.Second)); serr != nil {
			return err
		}
	}
}
