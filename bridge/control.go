package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// ListenController is what the control topic steers: *rtm.Session
// implements it. ApplyListen applies c to the connection's listen state,
// sends it to the gateway when connected, and returns the whole state
// afterwards; State and Watch tell whether the link is listening.
type ListenController interface {
	ApplyListen(ctx context.Context, c rtm.ListenChange) (rtm.ListenState, error)
	State() rtm.StateChange
	Watch() (<-chan rtm.StateChange, func())
}

// Result is the outcome of one control command, written as JSON to the
// control-results topic under the command's id (or "offset-<n>" when the
// record had no readable id):
//
//	{"id":"c-1","ok":true,"error":"","listen":{…},"applied_at":1700000000000,"offset":42}
//
// ok is true only when the gateway accepted the change; a command it refused
// has ok false and the gateway's error, and is not part of the listen state
// (nor replayed at the next start).
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

// RestoreListen rebuilds the listen state at start: it reads the
// control-results topic, then the control topic's partition 0 from its
// first offset, and applies to initial every command whose result says the
// gateway accepted it (ok true), skipping those refused or invalid. It stops
// at the first command without a result (the previous run stopped before
// answering it) and returns that offset: [Bridge.RunControl] applies it and
// everything after it live, through the gateway, and writes their results.
// No consumer group is used: the history itself is the state. A read error
// is returned (cmd retries the whole restore) and initial is left unchanged.
func (b *Bridge) RestoreListen(ctx context.Context, initial rtm.ListenState) (rtm.ListenState, int64, error) {
	topic := b.router.ControlTopic()
	accepted := make(map[int64]bool) // control offset → the gateway accepted it
	err := b.readToEnd(ctx, b.router.ControlResultsTopic(), func(r *kgo.Record) bool {
		if isRoleRecord(r) {
			return true
		}
		var res Result
		if json.Unmarshal(r.Value, &res) == nil {
			accepted[res.Offset] = accepted[res.Offset] || res.OK
		}
		return true
	})
	if err != nil {
		return initial, 0, fmt.Errorf("bridge: restore listen: %w", err)
	}
	state := initial.Clone()
	applied, skipped := 0, 0
	next := int64(-1)
	err = b.readToEnd(ctx, topic, func(r *kgo.Record) bool {
		if r.Partition != controlPartition {
			return true
		}
		ok, seen := accepted[r.Offset]
		if !seen {
			next = r.Offset
			return false
		}
		cmd, perr := ParseCommand(r.Value)
		if !ok || perr != nil {
			skipped++
			return true
		}
		state = state.Apply(cmd.Change(state))
		applied++
		return true
	})
	if err != nil {
		return initial, 0, fmt.Errorf("bridge: restore listen: %w", err)
	}
	if next < 0 {
		ends, err := b.endOffsets(ctx, topic)
		if err != nil {
			return initial, 0, fmt.Errorf("bridge: restore listen: %w", err)
		}
		next = ends[controlPartition]
	}
	b.setListen(state)
	b.restored.Store(&Restored{Applied: applied, Skipped: skipped, NextOffset: next})
	b.log.Info("bridge: listen state restored from the control topic", slog.String("topic", topic),
		slog.Int("applied", applied), slog.Int("skipped_refused_or_invalid", skipped), slog.Int64("next_offset", next))
	return state, next, nil
}

// Restored says what the last [Bridge.RestoreListen] did: how many commands
// of the control topic's history it applied (accepted by the gateway) and
// skipped (refused or invalid), and the offset live application went on
// from.
type Restored struct {
	Applied    int   `json:"applied"`
	Skipped    int   `json:"skipped"`
	NextOffset int64 `json:"next_offset"`
}

// LastRestore returns what the last RestoreListen did; ok is false before
// the first one (or, with HA, before this instance was first active).
func (b *Bridge) LastRestore() (r Restored, ok bool) {
	if p := b.restored.Load(); p != nil {
		return *p, true
	}
	return Restored{}, false
}

// endOffsets returns the end offset (high watermark) of every partition of
// topic.
func (b *Bridge) endOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	adm := kadm.NewClient(b.cl)
	lo, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, b.denied("DESCRIBE", "topic "+topic, err))
	}
	out := make(map[int32]int64)
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	if len(out) == 0 {
		return nil, fmt.Errorf("list end offsets of %s: no partitions", topic)
	}
	return out, nil
}

// readToEnd reads every partition of topic from its start up to its end
// offsets as of the call, in offset order per partition, calling fn for each
// record until fn returns false.
func (b *Bridge) readToEnd(ctx context.Context, topic string, fn func(*kgo.Record) bool) error {
	ends, err := b.endOffsets(ctx, topic)
	if err != nil {
		return err
	}
	parts := make(map[int32]kgo.Offset, len(ends))
	left := 0
	for p, end := range ends {
		if end > 0 {
			parts[p] = kgo.NewOffset().AtStart()
			left++
		}
	}
	if left == 0 {
		return nil
	}
	cl, err := b.NewClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxPartitionBytes(4*MaxCommandBytes))
	if err != nil {
		return err
	}
	defer cl.Close()
	done := make(map[int32]bool)
	for len(done) < left {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fetchErr(fs); err != nil {
			return fmt.Errorf("read %s: %w", topic, b.denied("READ", "topic "+topic, err))
		}
		stop := false
		fs.EachRecord(func(r *kgo.Record) {
			if stop || done[r.Partition] {
				return
			}
			if r.Offset >= ends[r.Partition] {
				done[r.Partition] = true
				return
			}
			if !fn(r) {
				stop = true
				return
			}
			if r.Offset+1 >= ends[r.Partition] {
				done[r.Partition] = true
			}
		})
		if stop {
			return nil
		}
	}
	return nil
}

// fetchErr returns the first error of fs that is not a context error.
func fetchErr(fs kgo.Fetches) error {
	var first error
	fs.EachError(func(t string, p int32, err error) {
		if first == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			first = fmt.Errorf("%s/%d: %w", t, p, err)
		}
	})
	return first
}

// RunControl tails the control topic's partition 0 from offset from (as
// returned by RestoreListen) until ctx ends, and returns ctx.Err() (or
// ErrClosed once the bridge is closed). Each command is applied in order
// through lc once the link is listening, and its [Result] is written to the
// control-results topic, acked, before the next command is read. A record
// that is not a valid command gets a result with ok=false and the loop goes
// on. Fetch errors are retried by the client, which keeps its position: no
// record is skipped.
func (b *Bridge) RunControl(ctx context.Context, lc ListenController, from int64) error {
	topic := b.router.ControlTopic()
	cl, err := b.NewClient(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {controlPartition: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxPartitionBytes(4*MaxCommandBytes),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if b.stopCtx.Err() != nil {
			return ErrClosed
		}
		if err := fetchErr(fs); err != nil {
			b.errLog.warn("bridge: control topic: fetch failed; the client retries", slog.String("error", err.Error()))
		}
		var out error
		fs.EachRecord(func(r *kgo.Record) {
			if out != nil {
				return
			}
			if b.ha != nil && b.fence() {
				out = errors.New("bridge: control: HA lease ended: this instance no longer applies commands")
				return
			}
			res := b.applyCommand(ctx, lc, r)
			if ctx.Err() != nil {
				out = ctx.Err()
				return
			}
			if out = b.writeResult(ctx, res); out == nil {
				b.recent.result(res)
			}
		})
		if out != nil {
			return out
		}
	}
}

// applyCommand parses one control record, waits until the link listens,
// applies it and returns its result.
func (b *Bridge) applyCommand(ctx context.Context, lc ListenController, r *kgo.Record) Result {
	res := Result{Offset: r.Offset}
	cmd, err := ParseCommand(r.Value)
	res.ID = cmd.ID
	if res.ID == "" && len(r.Value) > MaxCommandBytes {
		res.ID = peekCommandID(r.Value)
	}
	if err == nil {
		if err = waitListening(ctx, lc); err == nil {
			var st rtm.ListenState
			if st, err = lc.ApplyListen(ctx, cmd.Change(b.currentListen())); err == nil {
				b.setListen(st)
			}
		}
	}
	res.Listen = b.currentListen()
	res.AppliedAt = b.cfg.Now().UnixMilli()
	if err != nil {
		res.Error = err.Error()
		b.stats.ctlRejected.Add(1)
		b.log.Warn("bridge: control command rejected", slog.String("id", res.ID), slog.Int64("offset", r.Offset), slog.String("error", res.Error))
		return res
	}
	res.OK = true
	b.stats.ctlApplied.Add(1)
	b.log.Info("bridge: control command applied", slog.String("id", res.ID), slog.Int64("offset", r.Offset))
	return res
}

// waitListening waits until lc's link is listening, so that a command is
// applied (and accepted or refused) by the gateway itself.
func waitListening(ctx context.Context, lc ListenController) error {
	if lc.State().State == rtm.Listening {
		return nil
	}
	ch, cancel := lc.Watch()
	defer cancel()
	for {
		select {
		case sc, ok := <-ch:
			if !ok {
				return errors.New("bridge: control: the RTM session stopped")
			}
			if sc.State == rtm.Listening {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// peekCommandID returns the top-level "id" of a JSON object that is too
// large to parse as a command, reading only as far as that field; "" when
// there is none or the start is not a JSON object.
func peekCommandID(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		if key == "id" {
			var id string
			if dec.Decode(&id) != nil || checkID(id) != nil {
				return ""
			}
			return id
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	return ""
}

// writeResult writes res to the control-results topic and waits for the
// ack (the producer retries until then). A result Kafka refuses for good is
// logged and the loop goes on.
func (b *Bridge) writeResult(ctx context.Context, res Result) error {
	val, err := json.Marshal(resultJSON(res))
	if err != nil {
		return fmt.Errorf("bridge: control: encode result: %w", err)
	}
	key := res.ID
	if key == "" {
		key = "offset-" + strconv.FormatInt(res.Offset, 10)
	}
	topic := b.router.ControlResultsTopic()
	err = b.cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: val}).FirstErr()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, kgo.ErrClientClosed):
		return ErrClosed
	}
	b.log.Error("bridge: control: Kafka refused the result of a command; it is applied but has no result",
		slog.String("topic", topic), slog.String("id", res.ID), slog.Int64("offset", res.Offset), slog.String("error", DescribeKafkaError(err)))
	return nil
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
