package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// fakeListen is a ListenController that applies changes to a state it keeps,
// as rtm.Session does minus the gateway; uid 666 makes it fail.
type fakeListen struct {
	mu      sync.Mutex
	st      rtm.ListenState
	applied []rtm.ListenChange
}

func (f *fakeListen) ApplyListen(_ context.Context, c rtm.ListenChange) (rtm.ListenState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Contains(c.UIDs, 666) {
		return f.st.Clone(), errors.New("gateway said no")
	}
	f.applied = append(f.applied, c)
	f.st = f.st.Apply(c)
	return f.st.Clone(), nil
}

func (f *fakeListen) state() rtm.ListenState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Clone()
}

// produceControl writes raw records to the control topic's partition 0.
func produceControl(t *testing.T, b *Bridge, values ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var lastErr error
	for ctx.Err() == nil { // a new partition may answer NOT_LEADER for a moment
		// Records are readers, consumed by an attempt: make them per attempt.
		recs := make([]kafka.Record, len(values))
		for i, v := range values {
			recs[i] = kafka.Record{Time: time.Now(), Value: kafka.NewBytes([]byte(v))}
		}
		res, err := b.client(5*time.Second).Produce(ctx, &kafka.ProduceRequest{
			Topic: b.router.ControlTopic(), Partition: 0, RequiredAcks: kafka.RequireAll,
			Records: kafka.NewRecordReader(recs...),
		})
		if err == nil {
			err = res.Error
		}
		if err == nil {
			return
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("produce to control topic: %v", lastErr)
}

func TestControlRestoreAndRun(t *testing.T) {
	b, brokers := testBridge(t, func(c *Config) { c.Now = nil })
	produceControl(t, b,
		`{"id":"a","op":"add","gids":[1,2]}`,
		`not json`,
		`{"id":"b","op":"set_all","p2p":true}`,
		`{"id":"c","op":"remove","gids":[1]}`,
		`{"id":"d","op":"add","gids":[-1]}`,
	)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	initial := rtm.ListenState{Events: []string{"logout"}}
	st, next, err := b.RestoreListen(ctx, initial)
	if err != nil {
		t.Fatalf("RestoreListen: %v", err)
	}
	want := rtm.ListenState{P2P: true, GIDs: []int64{2}, Events: []string{"logout"}}
	if !st.Equal(want) || next != 5 {
		t.Fatalf("RestoreListen = %+v, %d; want %+v, 5", st, next, want)
	}

	lc := &fakeListen{st: st}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- b.RunControl(runCtx, lc, next) }()

	send := func(cmd string) Result {
		t.Helper()
		res, err := SendControl(ctx, brokers, nil, b.router, []byte(cmd))
		if err != nil {
			t.Fatalf("SendControl %s: %v", cmd, err)
		}
		return res
	}
	res := send(`{"id":"e","op":"add","uids":[7]}`)
	want = rtm.ListenState{P2P: true, GIDs: []int64{2}, UIDs: []int64{7}, Events: []string{"logout"}}
	if !res.OK || res.ID != "e" || res.Error != "" || res.Offset != 5 || !res.Listen.Equal(want) || res.AppliedAt == 0 {
		t.Fatalf("result %+v; want ok for e at offset 5 with %+v", res, want)
	}
	res = send(`{"id":"f","op":"set_all","group":true}`)
	want.Group = true
	if !res.OK || !res.Listen.Equal(want) || !lc.state().Equal(want) {
		t.Fatalf("set_all result %+v, controller %+v; want %+v (p2p kept)", res, lc.state(), want)
	}
	res = send(`{"id":"g","op":"add","uids":[666]}`)
	if res.OK || res.Error != "gateway said no" || !res.Listen.Equal(want) {
		t.Fatalf("failing apply: result %+v, want ok=false with the controller's error and unchanged state", res)
	}
	if _, err := SendControl(ctx, brokers, nil, b.router, []byte(`{"op":"add","uids":[1]}`)); err == nil {
		t.Fatal("SendControl sent a command without id")
	}

	// Garbage written by someone else gets a result keyed by its offset.
	produceControl(t, b, `[1,2]`, `{"id":"h","op":"add","gids":[1.5]}`)
	got := readResults(t, b, 5)
	if len(got) != 5 {
		t.Fatalf("%d results, want 5", len(got))
	}
	garbage := got[3]
	if garbage.key != "offset-8" || garbage.res.OK || garbage.res.ID != "" || garbage.res.Offset != 8 ||
		garbage.res.Error != "bridge: command: not a JSON object" {
		t.Fatalf("garbage result %s %+v", garbage.key, garbage.res)
	}
	bad := got[4]
	if bad.key != "h" || bad.res.OK || bad.res.Error != `bridge: command: field "gids": element 0: 1.5 is not an integer` {
		t.Fatalf("invalid command result %s %+v", bad.key, bad.res)
	}
	var raw map[string]any
	if err := json.Unmarshal(got[0].raw, &raw); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !reflect.DeepEqual(keys, []string{"applied_at", "error", "id", "listen", "offset", "ok"}) {
		t.Fatalf("result JSON keys %v", keys)
	}
	if st := b.Stats(); st.ControlApplied != 2 || st.ControlRejected != 3 {
		t.Fatalf("stats %+v: want 2 applied, 3 rejected", st)
	}

	stop()
	select {
	case err := <-runErr:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("RunControl = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunControl did not stop with its context")
	}
}

type keyedResult struct {
	key string
	raw []byte
	res Result
}

// readResults reads the first n results of the (one-partition) results topic.
func readResults(t *testing.T, b *Bridge, n int) []keyedResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := b.client(5 * time.Second)
	var out []keyedResult
	for off := int64(0); len(out) < n; {
		recs, next, err := fetchFrom(ctx, c, b.router.ControlResultsTopic(), 0, off, 200*time.Millisecond)
		if ctx.Err() != nil {
			t.Fatalf("read results: %d of %d: %v", len(out), n, ctx.Err())
		}
		if err != nil {
			continue
		}
		off = next
		for _, r := range recs {
			kr := keyedResult{key: string(r.key), raw: r.value}
			if err := json.Unmarshal(r.value, &kr.res); err != nil {
				t.Fatalf("result at %d: %v", r.offset, err)
			}
			out = append(out, kr)
		}
	}
	return out
}
