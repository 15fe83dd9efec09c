package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rtm2kafka/rtm2kafka/integration/testkit"
	"github.com/rtm2kafka/rtm2kafka/rtm"
)

// fakeListen is a ListenController that applies changes to a state it keeps,
// as rtm.Session does minus the gateway, and is always listening; uid 666
// makes the "gateway" refuse a change.
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

func (f *fakeListen) State() rtm.StateChange {
	return rtm.StateChange{State: rtm.Listening, Attempt: 1, At: time.Now()}
}

func (f *fakeListen) Watch() (<-chan rtm.StateChange, func()) {
	return make(chan rtm.StateChange), func() {}
}

func (f *fakeListen) state() rtm.ListenState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.Clone()
}

// runControl runs b.RunControl from offset from until the test ends, and
// checks that it then stops with the context's error.
func runControl(t *testing.T, b *Bridge, lc ListenController, from int64) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- b.RunControl(ctx, lc, from) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-runErr:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("RunControl = %v, want context.Canceled", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("RunControl did not stop with its context")
		}
	})
}

type keyedResult struct {
	key string
	raw []byte
	res Result
}

// readResults waits until the (one-partition) results topic holds n
// results and returns them in order.
func readResults(t *testing.T, b *Bridge, brokers []string, n int) []keyedResult {
	t.Helper()
	topic := b.router.ControlResultsTopic()
	ctx := ctxFor(t, 60*time.Second)
	eventually(t, 60*time.Second, fmt.Sprintf("%d results in %s", n, topic), func() (bool, string) {
		got, err := testkit.Count(ctx, brokers, topic)
		if err != nil {
			return false, err.Error()
		}
		return got >= int64(n), fmt.Sprintf("%d results", got)
	})
	var out []keyedResult
	for _, r := range readTopic(t, brokers, topic) {
		kr := keyedResult{key: string(r.Key), raw: r.Value}
		if err := json.Unmarshal(r.Value, &kr.res); err != nil {
			t.Fatalf("result at %d: %v", r.Offset, err)
		}
		out = append(out, kr)
	}
	return out
}

// TestControlRestoreAndRun: without results a restore applies nothing and
// points at the first command; RunControl then applies every command live
// and writes its result (ok for those the gateway accepted; ok=false with
// the reason for garbage, invalid and refused ones, keyed by id or by
// offset); a later restore rebuilds exactly the accepted state.
func TestControlRestoreAndRun(t *testing.T) {
	b, brokers := testBridge(t, func(c *Config) { c.Now = nil })
	produceRaw(t, brokers, b.router.ControlTopic(),
		`{"id":"a","op":"add","gids":[1,2]}`,
		`not json`,
		`{"id":"b","op":"set_all","p2p":true}`,
		`{"id":"c","op":"remove","gids":[1]}`,
		`{"id":"d","op":"add","gids":[-1]}`,
	)
	initial := rtm.ListenState{Events: []string{"logout"}}
	st, next, err := b.RestoreListen(ctxFor(t, 60*time.Second), initial)
	if err != nil {
		t.Fatalf("RestoreListen: %v", err)
	}
	if !st.Equal(initial) || next != 0 {
		t.Fatalf("RestoreListen without results = %+v, %d; want the initial state and offset 0", st, next)
	}

	lc := &fakeListen{st: st}
	runControl(t, b, lc, next)
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	send := func(cmd string) Result {
		t.Helper()
		res, err := SendControl(ctxFor(t, 60*time.Second), opts, b.router, []byte(cmd))
		if err != nil {
			t.Fatalf("SendControl %s: %v", cmd, err)
		}
		return res
	}
	res := send(`{"id":"e","op":"add","uids":[7]}`)
	want := rtm.ListenState{P2P: true, GIDs: []int64{2}, UIDs: []int64{7}, Events: []string{"logout"}}
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
		t.Fatalf("refused apply: result %+v, want ok=false with the controller's error and unchanged state", res)
	}
	if _, err := SendControl(ctxFor(t, 30*time.Second), opts, b.router, []byte(`{"op":"add","uids":[1]}`)); err == nil {
		t.Fatal("SendControl sent a command without id")
	}

	// Garbage written by someone else gets a result keyed by its offset.
	produceRaw(t, brokers, b.router.ControlTopic(), `[1,2]`, `{"id":"h","op":"add","gids":[1.5]}`)
	got := readResults(t, b, brokers, 10)
	if len(got) != 10 {
		t.Fatalf("%d results, want 10", len(got))
	}
	for i, k := range []string{"a", "offset-1", "b", "c", "d", "e", "f", "g", "offset-8", "h"} {
		if got[i].key != k || got[i].res.Offset != int64(i) {
			t.Errorf("result %d: key %q offset %d, want %q at %d", i, got[i].key, got[i].res.Offset, k, i)
		}
	}
	if r := got[1].res; r.OK || r.ID != "" || r.Error != "bridge: command: not a JSON object" {
		t.Errorf("not-json result %+v", r)
	}
	if r := got[4].res; r.OK || !strings.Contains(r.Error, "gids") {
		t.Errorf("invalid gid result %+v", r)
	}
	garbage := got[8]
	if garbage.res.OK || garbage.res.ID != "" || garbage.res.Error != "bridge: command: not a JSON object" {
		t.Errorf("garbage result %s %+v", garbage.key, garbage.res)
	}
	bad := got[9]
	if bad.res.OK || bad.res.Error != `bridge: command: field "gids": element 0: 1.5 is not an integer` {
		t.Errorf("invalid command result %s %+v", bad.key, bad.res)
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
	if st := b.Stats(); st.ControlApplied != 5 || st.ControlRejected != 5 {
		t.Fatalf("stats %+v: want 5 applied, 5 rejected", st)
	}

	// A restart: the restore applies what the gateway accepted (not g) and
	// continues after the last command.
	st, next, err = b.RestoreListen(ctxFor(t, 60*time.Second), initial)
	if err != nil {
		t.Fatalf("RestoreListen after the run: %v", err)
	}
	if !st.Equal(want) || next != 10 {
		t.Fatalf("RestoreListen after the run = %+v, %d; want %+v, 10", st, next, want)
	}
}

// TestRestoreListenSkipsRefused: a command whose result says ok=false is
// skipped, and the restore stops at the first command without a result,
// returning its offset, even when later commands have results.
func TestRestoreListenSkipsRefused(t *testing.T) {
	b, brokers := testBridge(t, nil)
	produceRaw(t, brokers, b.router.ControlTopic(),
		`{"id":"a","op":"add","gids":[1]}`,
		`{"id":"b","op":"add","gids":[2]}`,
		`{"id":"c","op":"add","gids":[3]}`,
		`{"id":"d","op":"add","gids":[4]}`,
		`{"id":"e","op":"add","gids":[5]}`,
	)
	result := func(id string, off int64, ok bool) string {
		v, err := json.Marshal(Result{ID: id, OK: ok, Offset: off})
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	produceRaw(t, brokers, b.router.ControlResultsTopic(),
		result("a", 0, true),
		result("b", 1, false), // refused by the gateway
		result("c", 2, true),
		result("e", 4, true), // after the gap: not reached
	)
	st, next, err := b.RestoreListen(ctxFor(t, 60*time.Second), rtm.ListenState{})
	if err != nil {
		t.Fatalf("RestoreListen: %v", err)
	}
	if want := (rtm.ListenState{GIDs: []int64{1, 3}}); !st.Equal(want) || next != 3 {
		t.Fatalf("RestoreListen = %+v, %d; want %+v, 3 (b refused, d without a result)", st, next, want)
	}
	if cur := b.currentListen(); !cur.Equal(st) {
		t.Fatalf("bridge's listen state %+v, want the restored %+v", cur, st)
	}
}

// TestBigCommandResultKeyedByID: a command over MaxCommandBytes is rejected,
// and its result is keyed by the id read from the record's start.
func TestBigCommandResultKeyedByID(t *testing.T) {
	b, brokers := testBridge(t, nil)
	adm := testkit.Admin(testkit.ClientFor(t, brokers))
	ctx := ctxFor(t, 60*time.Second)
	topic := b.router.ControlTopic()
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr("4194304")}}, topic)
	if err == nil {
		_, err = rs.On(topic, nil)
	}
	if err != nil {
		t.Fatalf("alter max.message.bytes: %v", err)
	}
	pad := strings.Repeat("1,", MaxCommandBytes/2)
	big := `{"id":"big-1","op":"add","gids":[` + pad + `1]}`
	if len(big) <= MaxCommandBytes {
		t.Fatalf("command of %d bytes is not over the limit", len(big))
	}
	// The topic config may take a moment to reach the partition leader.
	cl := testkit.ClientFor(t, brokers, kgo.ProducerBatchMaxBytes(8<<20), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	eventually(t, 60*time.Second, "the broker takes the big command", func() (bool, string) {
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(big)}).FirstErr()
		return err == nil, fmt.Sprint(err)
	})
	runControl(t, b, &fakeListen{}, 0)
	got := readResults(t, b, brokers, 1)
	r := got[0]
	if r.key != "big-1" || r.res.ID != "big-1" || r.res.OK || !strings.Contains(r.res.Error, "more than 1048576") || r.res.Offset != 0 {
		t.Fatalf("result of the big command: key %q %+v; want keyed big-1, ok=false, too large", r.key, r.res)
	}
}

func TestPeekCommandID(t *testing.T) {
	for in, want := range map[string]string{
		`{"id":"x-1","op":"add"}`:                 "x-1",
		`  {"op":"add","gids":[1,2],"id":"late"}`: "late",
		`{"op":{"id":"nested"},"id":"top"}`:       "top",
		`{"op":{"id":"nested"}}`:                  "",
		`{"id":7}`:                                "",
		`{"id":""}`:                               "",
		`[{"id":"x"}]`:                            "",
		`not json`:                                "",
		`{"id":"cut`:                              "",
		`{"gids":[1,2,`:                           "",
	} {
		if got := peekCommandID([]byte(in)); got != want {
			t.Errorf("peekCommandID(%s) = %q, want %q", in, got, want)
		}
	}
}
