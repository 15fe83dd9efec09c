package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// ListenController is what the control topic steers: *rtm.Session
// implements it. ApplyListen applies c to the connection's desired listen
// state, sends it to the gateway when connected (a reconnect replays it),
// and returns the whole state afterwards.
type ListenController interface {
	ApplyListen(ctx context.Context, c rtm.ListenChange) (rtm.ListenState, error)
}

// Result is the outcome of one control command, written as JSON to the
// control-results topic under the command's id (or "offset-<n>" when the
// record had no readable id):
//
//	{"id":"c-1","ok":true,"error":"","listen":{…},"applied_at":1700000000000,"offset":42}
type Result struct {
	ID        string          `json:"id"`
	OK        bool            `json:"ok"`
	Error     string          `json:"error"`
	Listen    rtm.ListenState `json:"listen"`     // the whole listen state after the command
	AppliedAt int64           `json:"applied_at"` // ms since the epoch
	Offset    int64           `json:"offset"`     // the command's offset in the control topic
}

// controlPartition is the only partition of the control topic that is read.
const controlPartition = 0

// controlMaxWait is how long one fetch of the control topic waits for data.
const controlMaxWait = time.Second

// RestoreListen reads the control topic's partition 0 from its first offset
// up to its high watermark as of the start of the call, applies every valid
// command to initial in order (invalid ones are skipped, as they were
// rejected when first seen), and returns the resulting state and the offset
// to continue from with [Bridge.RunControl]. No consumer group is used: the
// history itself is the state. It does not retry: a read error is returned
// (cmd retries the whole restore), and initial is left unchanged.
func (b *Bridge) RestoreListen(ctx context.Context, initial rtm.ListenState) (rtm.ListenState, int64, error) {
	topic := b.router.ControlTopic()
	c := b.client(10 * time.Second)
	first, end, err := listOffsets(ctx, c, topic, controlPartition)
	if err != nil {
		return initial, 0, fmt.Errorf("bridge: restore listen: %w", err)
	}
	state := initial.Clone()
	applied, skipped := 0, 0
	for off := first; off < end; {
		var recs []ctlRecord
		recs, off, err = fetchFrom(ctx, c, topic, controlPartition, off, controlMaxWait)
		if err != nil {
			return initial, 0, fmt.Errorf("bridge: restore listen: %w", err)
		}
		for _, r := range recs {
			if r.offset >= end {
				break
			}
			if r.tooLarge {
				skipped++
				continue
			}
			cmd, err := ParseCommand(r.value)
			if err != nil {
				skipped++
				continue
			}
			state = state.Apply(cmd.Change(state))
			applied++
		}
	}
	b.setListen(state)
	b.log.Info("bridge: listen state restored from the control topic", slog.String("topic", topic),
		slog.Int("applied", applied), slog.Int("skipped", skipped), slog.Int64("next_offset", end))
	return state, end, nil
}

// RunControl tails the control topic's partition 0 from offset from (as
// returned by RestoreListen) until ctx ends, and returns ctx.Err(). Each
// command is applied in order through lc, and its [Result] is written to the
// control-results topic, and acknowledged, before the next command is read.
// A record that is not a valid command gets a result with ok=false and the
// loop goes on. Read and write errors are retried with back-off: the loop
// ends only with ctx, or with ErrClosed once the bridge is closed. A set_all leaves the flags it does not mention as they
// were in the last state returned by RestoreListen or lc.
func (b *Bridge) RunControl(ctx context.Context, lc ListenController, from int64) error {
	topic := b.router.ControlTopic()
	c := b.client(10 * time.Second)
	rw := &kafka.Writer{
		Addr:         kafka.TCP(b.cfg.Brokers...),
		Topic:        b.router.ControlResultsTopic(),
		Balancer:     kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1,
		BatchTimeout: time.Millisecond,
		MaxAttempts:  3,
		Transport:    b.rt,
	}
	defer rw.Close()
	off := from
	for {
		var recs []ctlRecord
		err := b.retryControl(ctx, "read "+topic, func() error {
			var err error
			recs, off, err = fetchFrom(ctx, c, topic, controlPartition, off, controlMaxWait)
			return err
		})
		if err != nil {
			return err
		}
		for _, r := range recs {
			res := b.applyCommand(ctx, lc, r)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := b.writeResult(ctx, rw, res); err != nil {
				return err
			}
			b.recent.result(res)
		}
	}
}

// applyCommand parses and applies one control record and returns its result.
func (b *Bridge) applyCommand(ctx context.Context, lc ListenController, r ctlRecord) Result {
	res := Result{Offset: r.offset}
	var err error
	if r.tooLarge {
		err = fmt.Errorf("bridge: command: %d bytes, more than %d", r.size, MaxCommandBytes)
	} else {
		var cmd Command
		cmd, err = ParseCommand(r.value)
		res.ID = cmd.ID
		if err == nil {
			var st rtm.ListenState
			st, err = lc.ApplyListen(ctx, cmd.Change(b.currentListen()))
			b.setListen(st)
		}
	}
	res.Listen = b.currentListen()
	res.AppliedAt = b.cfg.Now().UnixMilli()
	if err != nil {
		res.Error = err.Error()
		b.stats.ctlRejected.Add(1)
		b.metrics.control(false)
		b.log.Warn("bridge: control command rejected", slog.String("id", res.ID), slog.Int64("offset", r.offset), slog.String("error", res.Error))
		return res
	}
	res.OK = true
	b.stats.ctlApplied.Add(1)
	b.metrics.control(true)
	b.log.Info("bridge: control command applied", slog.String("id", res.ID), slog.Int64("offset", r.offset))
	return res
}

// writeResult writes res to the control-results topic and waits for the ack,
// retrying until ctx ends.
func (b *Bridge) writeResult(ctx context.Context, rw *kafka.Writer, res Result) error {
	val, err := json.Marshal(resultJSON(res))
	if err != nil {
		return fmt.Errorf("bridge: control: encode result: %w", err)
	}
	key := res.ID
	if key == "" {
		key = "offset-" + strconv.FormatInt(res.Offset, 10)
	}
	return b.retryControl(ctx, "write result to "+rw.Topic, func() error {
		return rw.WriteMessages(ctx, kafka.Message{Key: []byte(key), Value: val})
	})
}

// resultJSON returns res with nil lists replaced by empty ones, so they
// encode as [] rather than null.
func resultJSON(res Result) Result {
	l := &res.Listen
	for _, s := range []*[]int64{&l.GIDs, &l.RIDs, &l.UIDs} {
		if *s == nil {
			*s = []int64{}
		}
	}
	if l.Events == nil {
		l.Events = []string{}
	}
	return res
}

// retryControl runs op until it succeeds or ctx ends, backing off between
// failures and logging once per burst. It is the control loop's only retry
// loop, for reads and result writes alike.
func (b *Bridge) retryControl(ctx context.Context, what string, op func() error) error {
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if b.stopCtx.Err() != nil {
			return ErrClosed // the bridge, and so its transport, is closed
		}
		b.errLog.warn("bridge: control topic: "+what+" failed; retrying", slog.String("error", err.Error()), slog.Int("attempt", attempt+1))
		if err := sleepCtx(ctx, context.Background(), backoff(attempt, 100*time.Millisecond, 5*time.Second)); err != nil {
			return err
		}
	}
}

func (b *Bridge) currentListen() rtm.ListenState {
	b.listenMu.Lock()
	defer b.listenMu.Unlock()
	return b.listen.Clone()
}

func (b *Bridge) setListen(s rtm.ListenState) {
	b.listenMu.Lock()
	b.listen = s.Clone()
	b.listenMu.Unlock()
}

// ctlRecord is one record read from a control or results topic.
type ctlRecord struct {
	offset   int64
	key      []byte
	value    []byte
	size     int  // value size
	tooLarge bool // value larger than MaxCommandBytes: not read
}

// listOffsets returns the first offset and the high watermark of a partition.
func listOffsets(ctx context.Context, c *kafka.Client, topic string, partition int) (first, end int64, err error) {
	res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.FirstOffsetOf(partition), kafka.LastOffsetOf(partition)},
	}})
	if err != nil {
		return 0, 0, fmt.Errorf("list offsets %s/%d: %w", topic, partition, err)
	}
	for _, p := range res.Topics[topic] {
		if p.Partition != partition {
			continue
		}
		if p.Error != nil {
			return 0, 0, fmt.Errorf("list offsets %s/%d: %w", topic, partition, p.Error)
		}
		return p.FirstOffset, p.LastOffset, nil
	}
	return 0, 0, fmt.Errorf("list offsets %s/%d: partition missing from the answer", topic, partition)
}

// fetchFrom reads the records of one partition at and after offset, waiting
// up to maxWait for some to arrive, and returns them with the offset to
// fetch next. An offset below the log start (records deleted by retention)
// moves to the log start.
func fetchFrom(ctx context.Context, c *kafka.Client, topic string, partition int, offset int64, maxWait time.Duration) ([]ctlRecord, int64, error) {
	res, err := c.Fetch(ctx, &kafka.FetchRequest{
		Topic: topic, Partition: partition, Offset: offset,
		MinBytes: 1, MaxBytes: 4 * MaxCommandBytes, MaxWait: maxWait,
	})
	if err != nil {
		return nil, offset, fmt.Errorf("fetch %s/%d@%d: %w", topic, partition, offset, err)
	}
	if res.Error != nil {
		if errors.Is(res.Error, kafka.OffsetOutOfRange) && offset < res.LogStartOffset {
			return nil, res.LogStartOffset, nil
		}
		return nil, offset, fmt.Errorf("fetch %s/%d@%d: %w", topic, partition, offset, res.Error)
	}
	var recs []ctlRecord
	next := offset
	for {
		r, err := res.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return recs, next, fmt.Errorf("fetch %s/%d@%d: read records: %w", topic, partition, offset, err)
		}
		if r.Offset < next {
			continue // a batch may start before the requested offset
		}
		cr := ctlRecord{offset: r.Offset}
		if r.Key != nil {
			cr.key, err = readBytes(r.Key)
			if err != nil {
				return recs, next, fmt.Errorf("fetch %s/%d@%d: read key: %w", topic, partition, r.Offset, err)
			}
		}
		if r.Value != nil {
			cr.size = r.Value.Len()
			if cr.size > MaxCommandBytes {
				cr.tooLarge = true
			} else if cr.value, err = readBytes(r.Value); err != nil {
				return recs, next, fmt.Errorf("fetch %s/%d@%d: read value: %w", topic, partition, r.Offset, err)
			}
		}
		recs = append(recs, cr)
		next = r.Offset + 1
	}
	return recs, next, nil
}

func readBytes(b kafka.Bytes) ([]byte, error) {
	defer b.Close()
	out := make([]byte, b.Len())
	_, err := io.ReadFull(b, out)
	return out, err
}
